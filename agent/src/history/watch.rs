//! `portscope watch`: prints socket changes as they happen, one line each (NDJSON with
//! `--json`), from its own incremental scans at the agent's default interval.

use std::io::Write;
use std::time::SystemTime;

use anyhow::Context;
use portscope_shared::{Event, EventKind, Socket};

use crate::cli::WatchArgs;
use crate::collector::Collector;
use crate::{os, refresh};

/// Scans every `interval` until stdout closes (a closed pipe ends it cleanly) or Ctrl-C.
pub async fn run(args: WatchArgs) -> anyhow::Result<()> {
    let keep = move |s: &Socket| !args.listening || s.is_listening();
    let (mut collector, first) = refresh::scan_blocking(Collector::new(os::System::new()))
        .await
        .context("the runtime stopped during the scan")?;
    let mut last = first.map_err(|what| anyhow::anyhow!("the scan failed: {what}"))?;
    for warning in &last.warnings {
        eprintln!("portscope: warning: {warning}");
    }
    let mut ticker = tokio::time::interval(args.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some((c, scanned)) = refresh::scan_blocking(collector).await else {
            return Ok(());
        };
        collector = c;
        let Ok(state) = scanned else {
            continue;
        };
        let events = super::events(&last, &state, SystemTime::now(), keep);
        last = state;
        if events.is_empty() {
            continue;
        }
        let mut out = std::io::stdout().lock();
        for (_, event) in &events {
            if args.json {
                serde_json::to_writer(&mut out, event)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{}", line(event))?;
            }
        }
        out.flush()?;
    }
}

/// `14:02:03  + tcp 127.0.0.1:5173 LISTEN  node (pid 4242)  Vite dev server`.
fn line(e: &Event) -> String {
    let mark = match e.kind {
        EventKind::Opened => "+",
        EventKind::Closed => "-",
        EventKind::OwnerChanged => "~",
        EventKind::Unknown => "?",
    };
    let clock = e.time.get(11..19).unwrap_or(&e.time);
    let proto = match (e.proto, e.family) {
        (portscope_shared::Proto::Tcp, portscope_shared::Family::Ipv4) => "tcp",
        (portscope_shared::Proto::Tcp, portscope_shared::Family::Ipv6) => "tcp6",
        (portscope_shared::Proto::Udp, portscope_shared::Family::Ipv4) => "udp",
        (portscope_shared::Proto::Udp, portscope_shared::Family::Ipv6) => "udp6",
    };
    let local = std::net::SocketAddr::new(e.local_addr, e.local_port);
    let remote = match (e.remote_addr, e.remote_port) {
        (Some(a), Some(p)) => format!(" → {}", std::net::SocketAddr::new(a, p)),
        _ => String::new(),
    };
    let owner = match (&e.process, e.pid) {
        (Some(name), Some(pid)) => format!("  {} (pid {pid})", crate::text::one_line(name)),
        (None, Some(pid)) => format!("  pid {pid}"),
        _ => String::new(),
    };
    let what = e
        .app
        .as_deref()
        .map(|a| format!("  {}", crate::text::one_line(a)))
        .unwrap_or_default();
    let verb = match e.kind {
        EventKind::OwnerChanged => " now held by",
        _ => "",
    };
    format!("{clock}  {mark} {proto} {local}{remote}{verb}{owner}{what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_one_readable_line() {
        let e = Event {
            time: "2026-11-29T14:02:03Z".into(),
            since: None,
            kind: EventKind::Opened,
            proto: portscope_shared::Proto::Tcp,
            family: portscope_shared::Family::Ipv6,
            local_addr: "::1".parse().unwrap(),
            local_port: 5173,
            remote_addr: None,
            remote_port: None,
            pid: Some(4242),
            process: Some("node\n".into()),
            cmdline: vec![],
            user: None,
            app: Some("Vite dev server".into()),
        };
        assert_eq!(
            line(&e),
            "14:02:03  + tcp6 [::1]:5173  node\\n (pid 4242)  Vite dev server"
        );
        let closed = Event {
            kind: EventKind::Closed,
            app: None,
            ..e
        };
        assert!(line(&closed).starts_with("14:02:03  - tcp6 [::1]:5173"));
    }
}
