//! `portscope wait`: until ports answer (or an HTTP path does), or the time is up.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Instant;

use crate::cli::WaitArgs;
use portscope_doctor::wait::{EVERY, State, TRY, try_port};
use portscope_doctor::{Source, UsageError, probe, target, why};

/// The CLI: `Ok(true)` when every port got ready in time (exit 0), `Ok(false)` when one did not
/// (exit 1, with why).
pub async fn run(args: WaitArgs) -> anyhow::Result<bool> {
    let mut out = std::io::stdout();
    let outcome = until_ready(&args, |port, addr, after| {
        // A closed stdout does not stop the wait: the exit status still says how it went.
        let _ = writeln!(
            out,
            "port {port} is ready ({addr}) after {:.1} s",
            after.as_secs_f64()
        );
        let _ = out.flush();
    })
    .await?;
    let mut err = std::io::stderr().lock();
    for late in &outcome.late {
        writeln!(
            err,
            "portscope: port {} is not ready after {}: {}. {} (`portscope why {}` says more)",
            late.port,
            humantime::format_duration(args.timeout),
            late.seen,
            late.summary,
            late.target
        )?;
    }
    Ok(outcome.late.is_empty())
}

/// A port still not ready at the deadline.
pub struct Late {
    pub port: u16,
    /// What the last try saw.
    pub seen: String,
    /// The doctor's one-line summary.
    pub summary: String,
    /// What to give `portscope why`.
    pub target: String,
}

/// How a wait ended.
pub struct Outcome {
    pub late: Vec<Late>,
}

/// Tries every port every [`EVERY`] until all are ready or `args.timeout` passes, calling
/// `ready` for each port as it gets ready; the ports still not ready are explained with the
/// doctor's one-line summary.
pub async fn until_ready(
    args: &WaitArgs,
    mut ready: impl FnMut(u16, SocketAddr, std::time::Duration),
) -> anyhow::Result<Outcome> {
    if let Some(path) = &args.http
        && !target::is_safe_path(path)
    {
        anyhow::bail!(UsageError(format!(
            "--http takes a URL path such as /health, not `{path}`"
        )));
    }
    let addrs = probe::resolve(&args.host, args.ports[0])
        .await
        .map_err(|e| UsageError(e.to_string()))?;
    let start = Instant::now();
    let deadline = start + args.timeout;
    let mut pending: Vec<u16> = args.ports.clone();
    pending.dedup();
    let mut last: Vec<(u16, String)> = Vec::new();
    loop {
        last.clear();
        let mut still = Vec::new();
        for &port in &pending {
            match try_port(&addrs, port, &args.host, args.http.as_deref()).await {
                State::Ready(ip) => ready(port, SocketAddr::new(ip, port), start.elapsed()),
                State::NotYet(why) => {
                    still.push(port);
                    last.push((port, why));
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(Outcome { late: Vec::new() });
        }
        // The whole timeout, not a moment less: the last try is at the deadline itself.
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        tokio::time::sleep_until((now + EVERY).min(deadline).into()).await;
    }
    // Not ready: say why, in the doctor's words.
    let mut late = Vec::new();
    for (port, seen) in last {
        let target = target::parse(&format!("{}:{port}", bracket(&args.host)))
            .map_err(|e| anyhow::anyhow!(e.0))?;
        let opts = why::Options {
            timeout: TRY,
            http_probe: false,
        };
        let summary = match why::gather(&target, addrs.clone(), Source::scan(), opts).await {
            Ok(facts) => why::analyze(&facts).summary,
            Err(e) => e.to_string(),
        };
        late.push(Late {
            port,
            seen,
            summary,
            target: target.input,
        });
    }
    Ok(Outcome { late })
}

/// An IPv6 literal in brackets, for `host:port`.
fn bracket(host: &str) -> String {
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}
