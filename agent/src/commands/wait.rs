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
    let mut out = std::io::stdout();
    loop {
        last.clear();
        let mut still = Vec::new();
        for &port in &pending {
            match try_port(&addrs, port, &args.host, args.http.as_deref()).await {
                State::Ready(ip) => {
                    writeln!(
                        out,
                        "port {port} is ready ({}) after {:.1} s",
                        SocketAddr::new(ip, port),
                        start.elapsed().as_secs_f64()
                    )?;
                }
                State::NotYet(why) => {
                    still.push(port);
                    last.push((port, why));
                }
            }
        }
        out.flush()?;
        pending = still;
        if pending.is_empty() {
            return Ok(true);
        }
        // The whole timeout, not a moment less: the last try is at the deadline itself.
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        tokio::time::sleep_until((now + EVERY).min(deadline).into()).await;
    }
    // Not ready: say why, in the doctor's words.
    let mut err = std::io::stderr().lock();
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
        writeln!(
            err,
            "portscope: port {port} is not ready after {}: {seen}. {summary} (`portscope why {}` says more)",
            humantime::format_duration(args.timeout),
            target.input
        )?;
    }
    Ok(false)
}

/// An IPv6 literal in brackets, for `host:port`.
fn bracket(host: &str) -> String {
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}
