//! `portscope serve`: the first scan, the listener, the printed URL, then the refresher and the
//! HTTP server until Ctrl-C or SIGTERM.

use std::io::Write;

use anyhow::{Context, bail};
use portscope_shared::{OwnerStatus, SocketState};
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use portscope_core::collector::Collector;
use portscope_core::live::Model;
use portscope_core::model::State;
use portscope_core::{os, private};
use portscope_server::http::{AppState, Guard, app, dashboard_url, new_token};
use portscope_server::refresh;

/// Environment variable that sets the access token instead of a fresh random one, so that open
/// dashboards reconnect by themselves after a restart. An environment variable, not a flag:
/// `/proc/<pid>/environ` is private to the user, `/proc/<pid>/cmdline` is not.
pub const TOKEN_ENV: &str = "PORTSCOPE_TOKEN";

/// How long a client may take to send its request headers.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A configured token must be as hard to guess as a generated one.
fn check_configured_token(token: String) -> anyhow::Result<String> {
    let ok_chars = token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if token.len() < 32 || !ok_chars {
        bail!(portscope_doctor::UsageError(format!(
            "{TOKEN_ENV} must be at least 32 characters of A-Z, a-z, 0-9, '-' or '_' \
             (e.g. the output of `openssl rand -hex 16`); unset it to get a fresh token per start"
        )));
    }
    Ok(token)
}

/// `--metrics-token-file`'s token: a private file (as the peers file), holding a token as hard
/// to guess as the agent's, and not the agent's own (it would read everything).
fn metrics_token(file: &std::path::Path, token: &str) -> anyhow::Result<String> {
    let usage =
        |what: String| portscope_doctor::UsageError(format!("--metrics-token-file: {what}"));
    let text = portscope_core::private::read(file).map_err(|e| usage(e.to_string()))?;
    let scrape = check_configured_token(text.trim().to_owned())
        .map_err(|_| usage(format!("{} must hold one token of at least 32 characters of A-Z, a-z, 0-9, '-' or '_' (e.g. `openssl rand -hex 16 > {}`)", file.display(), file.display())))?;
    if scrape == token {
        return Err(usage(format!(
            "{} holds the agent's own token, which reads everything; give the scraper a token of its own",
            file.display()
        ))
        .into());
    }
    Ok(scrape)
}

/// `--token-file`'s token: read from the file (private, as the peers file), or a new one
/// written there (0600, in a 0700 directory when it makes the directory) when the file does
/// not exist. Two agents starting at once agree: the second reads what the first wrote.
fn token_file(file: &std::path::Path) -> anyhow::Result<String> {
    let usage = |what: String| portscope_doctor::UsageError(format!("--token-file: {what}"));
    match std::fs::symlink_metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token =
                new_token().context("cannot read the OS random source for the access token")?;
            let text = format!("{token}\n");
            match private::write(file, text.as_bytes(), private::Existing::Keep) {
                Ok(()) => {
                    tracing::info!(file = %file.display(), "a new access token is kept in the token file");
                    return Ok(token);
                }
                // Another start wrote it first: read theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => bail!(usage(format!("cannot write {}: {e}", file.display()))),
            }
        }
        Err(e) => bail!(usage(format!("{}: {e}", file.display()))),
        Ok(_) => {}
    }
    let text = private::read(file).map_err(|e| usage(e.to_string()))?;
    check_configured_token(text.trim().to_owned()).map_err(|_| {
        usage(format!(
            "{} must hold one token of at least 32 characters of A-Z, a-z, 0-9, '-' or '_'; delete it to get a new one",
            file.display()
        ))
        .into()
    })
}

/// Claims the history file at start (`history::claim`): a path that is wrong is a usage error
/// (exit 2), another agent's file an error; one whose directory cannot be made leaves the
/// history off, which the writer says in the warnings while the live view goes on.
fn claim_history(path: &std::path::Path) -> anyhow::Result<Option<portscope_history::Claim>> {
    use portscope_history::ClaimError;
    match portscope_history::claim(path) {
        Ok(claim) => {
            if let Some(said) = &claim.tightened {
                tracing::warn!("{said}");
            }
            portscope_history::announce(path);
            Ok(Some(claim))
        }
        Err(e) if e.is_usage() => bail!(portscope_doctor::UsageError(e.to_string())),
        Err(e @ (ClaimError::Directory { .. } | ClaimError::Io { .. })) => {
            tracing::warn!(%e, "the port history is off");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn run(mut args: ServeArgs) -> anyhow::Result<()> {
    settle_bind(&mut args)?;
    let learned = portscope_doctor::Learned::default();
    let checks = portscope_server::health::Checks::default();
    let collector = Collector::this_machine()
        .live_projects()
        .annotated_by(learned.clone())
        .annotated_by(checks.clone());
    let started = std::time::Instant::now();
    let (collector, first) = refresh::scan_blocking(collector)
        .await
        .context("the runtime stopped during the first scan")?;
    let first_took = started.elapsed();
    let first = first.map_err(|what| anyhow::anyhow!("the first scan failed: {what}"))?;

    let listener = match TcpListener::bind((args.bind, args.port)).await {
        Ok(listener) => listener,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            bail!("{}", port_in_use(&first, &args))
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot listen on {}:{}", args.bind, args.port));
        }
    };
    let addr = listener.local_addr()?;
    let token = match (std::env::var(TOKEN_ENV), &args.token_file) {
        (Ok(_), Some(_)) => bail!(portscope_doctor::UsageError(format!(
            "give the token either in {TOKEN_ENV} or with --token-file, not both"
        ))),
        (Ok(token), None) => check_configured_token(token)?,
        (Err(_), Some(file)) => token_file(file)?,
        (Err(_), None) => {
            new_token().context("cannot read the OS random source for the access token")?
        }
    };
    let hostname = os::hostname();
    let mut guard = Guard::new(args.bind, addr.port(), token.clone())
        .allowing(args.allow_host.clone(), args.allow_origin.clone());
    if let Some(file) = &args.metrics_token_file {
        guard = guard.with_metrics_token(metrics_token(file, &token)?);
    }
    let mut url = dashboard_url(addr, &token);
    let mut tls = None;
    if args.share.is_some() {
        let (shown, identity);
        (shown, guard, identity) = share(&args, addr, &hostname, guard)?;
        url = format!("https://{shown}/?token={token}");
        tls = Some(identity);
    }

    let model = Model::new(first);
    let kernel = kernel_events(&args);
    let period = if kernel.is_some() {
        args.reconcile
    } else {
        args.interval
    };
    let tick_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
    let can_kill = !args.no_kill && (args.share.is_none() || args.allow_kill);
    let history_path = if args.no_history {
        None
    } else {
        let path = args
            .history
            .clone()
            .or_else(portscope_history::default_path);
        if path.is_none() {
            tracing::warn!(
                "no port history: neither XDG_STATE_HOME nor HOME is set (give --history PATH)"
            );
        }
        path
    };
    // Held while the agent runs: the history file is this agent's alone.
    let _history_claim = match &history_path {
        Some(path) => claim_history(path)?,
        None => None,
    };
    let mut state = AppState::new(guard, hostname, tick_ms, model.watch(), can_kill);
    // The first scan is a scan too (with kernel events, the next may be 30 s away).
    state.metrics.scanned(first_took);
    if kernel.is_some() {
        state.hello.changes = portscope_shared::Changes::Kernel;
    }
    state.hello.kill_scope = Some(portscope_doctor::kill::scope_of_this_agent(
        collector.euid(),
        args.allow_kill_system,
    ));
    if let Some(file) = &args.peers {
        let peers = portscope_server::peers::config::load(file)?;
        if let Some(same) = peers.iter().find(|p| p.name == state.hello.hostname) {
            anyhow::bail!(
                "peer `{}` in {} has this machine's own host name; give it another name",
                same.name,
                file.display()
            );
        }
        tracing::info!(file = %file.display(), peers = peers.len(), "a hub: following peers");
        state.peers = portscope_server::peers::Peers::start(peers, args.peer_max_size.as_u64());
    }
    state.learned = learned;
    state.hello.history = history_path.is_some();
    state.history = history_path.clone();

    // `portscope watch` follows the live model through the local socket (not in share mode:
    // a shared agent is there for another machine). Bound before the URL is printed, which says
    // the agent is ready. Its file goes when `serve` returns.
    #[cfg(unix)]
    let _local = match (&args.share, portscope_server::http::local::path()) {
        (None, Some(path)) => match portscope_server::http::local::bind(&path).await {
            Ok((listener, unbind)) => {
                tracing::debug!(path = %path.display(), "serving the local socket");
                let app = portscope_server::http::local::app(state.hello.clone(), model.watch());
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, app).await {
                        tracing::warn!(%e, "the local socket stopped");
                    }
                });
                Some(unbind)
            }
            Err(e) => {
                tracing::info!(%e, "no local socket: `portscope watch` will scan by itself");
                None
            }
        },
        _ => None,
    };
    // The contract: the first line on stdout is the dashboard URL (in share mode, the second is
    // the certificate's fingerprint, for clients to check or pin).
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{url}")?;
    if let Some(identity) = &tls {
        writeln!(
            stdout,
            "TLS certificate SHA-256 fingerprint: {}",
            identity.fingerprint
        )?;
    }
    stdout.flush()?;
    drop(stdout);
    tracing::info!(%addr, interval = ?args.interval, "portscope is serving; open the URL above");
    if args.open {
        match open_browser(&state, &token, addr) {
            Ok(()) => {
                // A link nobody used is not left on disk.
                let link = state.open.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(OPEN_LINK_LIFETIME).await;
                    link.expire();
                });
            }
            Err(e) => {
                state.open.expire();
                tracing::warn!(%e, "could not open a browser; open the URL above by hand");
            }
        }
    }

    let history = history_path.map(|path| {
        tracing::info!(path = %path.display(), "keeping the port history");
        let retention = portscope_history::Retention {
            keep: args.history_keep,
            max_bytes: args.history_max_size.as_u64(),
        };
        portscope_history::Recorder::start(
            path,
            retention,
            &model.current().state,
            state.metrics.clone(),
        )
    });
    state.history_progress = history.as_ref().map(portscope_history::Recorder::progress);
    if !args.no_probe {
        let metrics = state.metrics.clone();
        tokio::spawn(portscope_server::health::run(
            model.watch(),
            checks,
            move || {
                // Only while a dashboard of this machine's own is open: never on behalf of a
                // remote browser or a hub's link to a shared agent.
                metrics.local_clients() > 0
            },
        ));
    }
    tokio::spawn(refresh::run(
        collector,
        model,
        args.interval,
        history,
        state.metrics.clone(),
        kernel,
    ));
    serve_http(listener, state, tls).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The kernel's changes, unless `--no-kernel-events`; where the kernel cannot give them, one
/// line in the log says why and the agent polls.
fn kernel_events(args: &ServeArgs) -> Option<refresh::Kernel> {
    if args.no_kernel_events {
        tracing::info!("polling every {:?} (--no-kernel-events)", args.interval);
        return None;
    }
    match portscope_core::os::kernel::start() {
        Ok(feed) => {
            tracing::info!(
                "the kernel reports changes as they happen (BPF); a full scan every {:?} \
                 reconciles",
                args.reconcile
            );
            Some(refresh::Kernel {
                feed,
                reconcile: args.reconcile,
            })
        }
        Err(why) => {
            tracing::warn!("no kernel events: {why} every {:?}", args.interval);
            None
        }
    }
}

/// `--share ADDR` is the address to listen on; without it, only a loopback `--bind`.
fn settle_bind(args: &mut ServeArgs) -> anyhow::Result<()> {
    if let Some(share) = args.share {
        if args.bind != ServeArgs::default_bind() {
            bail!(portscope_doctor::UsageError(format!(
                "--share takes the address to listen on (--share {share}); leave out --bind"
            )));
        }
        args.bind = share;
    } else if !args.bind.is_loopback() {
        bail!(portscope_doctor::UsageError(format!(
            "--bind {} is not a loopback address. portscope shows every process's command line, \
             so it serves only this machine; use 127.0.0.1 (the default) or ::1, or share it \
             with TLS and the token: --share {}",
            args.bind, args.bind
        )));
    }
    Ok(())
}

/// Share mode: the certificate for the machine's addresses and names, the guard that lets
/// them in, and the address the URL shows (the first address other machines can use, else
/// the machine's name).
fn share(
    args: &ServeArgs,
    addr: std::net::SocketAddr,
    hostname: &str,
    guard: Guard,
) -> anyhow::Result<(String, Guard, portscope_server::tls::Identity)> {
    // Reachable under the machine's addresses (all of them for 0.0.0.0 / ::) and names.
    let addresses: Vec<std::net::IpAddr> = if addr.ip().is_unspecified() {
        os::local_addresses()
            .into_iter()
            .filter(|ip| !ip.is_loopback() && (addr.is_ipv6() || ip.is_ipv4()))
            // Link-local IPv6 needs an interface zone in a URL: not an address to hand out.
            .filter(
                |ip| !matches!(ip, std::net::IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80),
            )
            .collect()
    } else {
        vec![addr.ip()]
    };
    let names = vec![hostname.to_owned()];
    let mut cert_names = args.allow_host.clone();
    cert_names.extend(names.iter().cloned());
    cert_names.extend(addresses.iter().map(ToString::to_string));
    let identity = portscope_server::tls::identity(
        args.tls_cert.as_deref(),
        args.tls_key.as_deref(),
        &cert_names,
    )?;
    let shown = match addresses.first() {
        Some(ip) => std::net::SocketAddr::new(*ip, addr.port()).to_string(),
        None => format!("{hostname}:{}", addr.port()),
    };
    tracing::info!(certificate = %identity.source, "sharing over HTTPS");
    Ok((shown, guard.shared(addresses, names), identity))
}

/// Serves the dashboard and the API on `listener` (over TLS in share mode) until a signal
/// stops it.
async fn serve_http(
    listener: TcpListener,
    state: AppState,
    tls: Option<portscope_server::tls::Identity>,
) -> anyhow::Result<()> {
    let service = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    // The first request must be complete within the timeout too (it bounds the protocol
    // detection before headers, which the header timeout does not cover).
    let mut server = axum_server::from_tcp(listener.into_std()?)?
        .handle(handle)
        .first_request_timeout(HEADER_READ_TIMEOUT);
    // A client must finish its request headers (the WebSocket handshake included) in time;
    // otherwise it could hold a connection open forever without ever authenticating.
    server
        .http_builder()
        .http1()
        .header_read_timeout(Some(HEADER_READ_TIMEOUT));
    match tls {
        None => server
            .serve(service)
            .await
            .context("the HTTP server failed")?,
        Some(identity) => {
            // rustls handshakes have their own deadline in axum-server (10 s).
            let config = axum_server::tls_rustls::RustlsConfig::from_config(identity.config);
            server
                .acceptor(axum_server::tls_rustls::RustlsAcceptor::new(config))
                .serve(service)
                .await
                .context("the HTTPS server failed")?;
        }
    }
    Ok(())
}

/// How long `--open`'s link works when the browser does not come for it.
const OPEN_LINK_LIFETIME: std::time::Duration = std::time::Duration::from_secs(120);

/// Opens the dashboard without putting the token on a command line (`/proc/*/cmdline` is
/// world-readable): the browser gets a file readable only by us — in `$XDG_RUNTIME_DIR` (a
/// private per-user directory), else in a fresh 0700 directory, under a random name — that
/// redirects to a one-time link; the agent deletes the file when the browser follows the link
/// ([`OpenLink`](portscope_server::http::OpenLink)), or after two minutes.
fn open_browser(state: &AppState, token: &str, addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .filter(|d| d.is_absolute() && d.is_dir());
    let (dir, made) = match runtime {
        Some(dir) => (dir, None),
        None => {
            let dir = portscope_core::os::private_temp_dir("portscope-")
                .context("cannot make a private directory for the browser's link")?;
            (dir.clone(), Some(dir))
        }
    };
    // tempfile creates the file 0600 with a random name, failing rather than reusing one.
    let mut file = tempfile::Builder::new()
        .prefix("portscope-open-")
        .suffix(".html")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot write the browser's link in {}", dir.display()))?;
    let nonce = new_token().context("cannot read the OS random source")?;
    let link = format!("http://{addr}/open/{nonce}");
    write!(
        file,
        "<!doctype html><meta http-equiv=\"refresh\" content=\"0;url={link}\">\
         <a href=\"{link}\">Open the portscope dashboard</a>"
    )?;
    let (_, path) = file.keep().context("cannot keep the browser's link file")?;
    state
        .open
        .issue(nonce, token.to_owned(), path.clone(), made);
    opener::open_browser(&path).map_err(anyhow::Error::from)
}

/// Explains an `address already in use` with the listener that holds the port.
fn port_in_use(state: &State, args: &ServeArgs) -> String {
    let holders: Vec<String> = state
        .sockets()
        .filter(|s| s.local_port == args.port && s.state == SocketState::Listen)
        .flat_map(|s| {
            let mut names: Vec<String> = s
                .pids
                .iter()
                .map(|pid| match state.processes.get(pid) {
                    Some(p) => format!("pid {pid} ({})", portscope_core::text::one_line(&p.name)),
                    None => format!("pid {pid}"),
                })
                .collect();
            if s.owner == OwnerStatus::Hidden {
                names.push(format!("a process of uid {}", s.uid.unwrap_or_default()));
            }
            names
        })
        .collect();
    let who = if holders.is_empty() {
        "another process".to_owned()
    } else {
        holders.join(", ")
    };
    let hint = if holders.iter().any(|h| h.contains("(portscope)")) {
        format!(
            " It is another portscope, already serving the dashboard at http://{}/ : open the URL \
             it printed (it carries the token), or stop it.",
            std::net::SocketAddr::new(args.bind, args.port)
        )
    } else {
        String::new()
    };
    let free = portscope_doctor::free::find(
        args.port,
        3,
        state,
        &os::port_settings(),
        portscope_core::ports::Services::system(),
    );
    let free: Vec<String> = free.iter().map(u16::to_string).collect();
    let suggestion = match free.first() {
        Some(port) => format!(
            " Start with --port {port} (free ports nearby: {}), or --port 0 for any free port.",
            free.join(", ")
        ),
        None => " Start with --port 0 for any free port, or --port N for another one.".into(),
    };
    format!(
        "port {} on {} is already in use by {who}.{hint}{suggestion} `portscope who {}` shows \
         what holds it.",
        args.port, args.bind, args.port
    )
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_token_must_be_long_and_plain() {
        assert!(check_configured_token("a".repeat(31)).is_err());
        let err = check_configured_token(format!("{} x", "a".repeat(40))).unwrap_err();
        assert!(err.to_string().contains("PORTSCOPE_TOKEN"), "{err}");
        let good = "0123456789abcdef0123456789ABCDEF-_".to_owned();
        assert_eq!(check_configured_token(good.clone()).unwrap(), good);
    }
}
