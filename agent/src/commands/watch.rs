//! `portscope watch`: prints socket changes as they happen, one line each (NDJSON with
//! `--json`). It follows the running agent's live model through the agent's local socket when
//! one answers (the agent may see more owners, e.g. running as root, and nothing scans twice),
//! else — or once the agent goes away — it scans by itself every `--interval`.

use std::io::Write;
use std::time::SystemTime;

use anyhow::Context;
use portscope_shared::{Event, EventKind, PROTOCOL_VERSION, Socket};

use crate::cli::WatchArgs;
use portscope_core::collector::Collector;
use portscope_core::model::{Mirror, State, Step};
use portscope_server::http::local;
use portscope_server::refresh;

/// Follows the agent while it answers, then scans, until stdout closes (a closed pipe ends it
/// cleanly) or Ctrl-C.
pub async fn run(args: WatchArgs) -> anyhow::Result<()> {
    let keep = move |s: &Socket| !args.listening || s.is_listening();
    let mut last = None;
    if let Some(path) = local::path()
        && let Some(agent) = local::Follower::connect(&path).await
    {
        match follow(agent, &args, &keep, &mut last).await {
            Ok(()) => return Ok(()),
            Err(Stop::Output(e)) => return Err(e),
            Err(Stop::Lost(why)) => eprintln!(
                "portscope: lost the agent ({why}); scanning by myself every {}",
                humantime::format_duration(args.interval)
            ),
        }
    }
    scan(&args, &keep, last).await
}

/// Why following the agent stopped.
enum Stop {
    /// Writing the output failed (stdout closed): the end.
    Output(anyhow::Error),
    /// The agent went away or speaks another protocol: scan instead.
    Lost(String),
}

impl From<local::LinkLost> for Stop {
    fn from(lost: local::LinkLost) -> Stop {
        Stop::Lost(lost.0)
    }
}

/// Reads the agent's stream (a snapshot, then deltas) into a state of its own and prints the
/// changes between its successive states. `last` keeps the latest state for the scans that
/// take over if the agent goes away.
async fn follow(
    agent: local::Follower,
    args: &WatchArgs,
    keep: &impl Fn(&Socket) -> bool,
    last: &mut Option<State>,
) -> Result<(), Stop> {
    let mut mirror = Mirror::default();
    let result = print_changes(agent, &mut mirror, args, keep).await;
    if let Some(state) = mirror.into_state() {
        *last = Some(state);
    }
    result
}

async fn print_changes(
    mut agent: local::Follower,
    mirror: &mut Mirror,
    args: &WatchArgs,
    keep: &impl Fn(&Socket) -> bool,
) -> Result<(), Stop> {
    while let Some(message) = agent.next().await? {
        // The diffs below show what scans saw; what only the kernel saw comes as events.
        if let portscope_shared::ServerMessage::Events(told) = &message {
            let kernel_only: Vec<(String, portscope_shared::Event)> = told
                .events
                .iter()
                .filter(|e| portscope_core::events::kernel_only(e))
                .map(|e| (String::new(), e.clone()))
                .collect();
            print(&kernel_only, args.json).map_err(Stop::Output)?;
        }
        match mirror.feed(message) {
            Step::Hello(hello) => {
                if hello.protocol_version != PROTOCOL_VERSION {
                    return Err(Stop::Lost(format!(
                        "the running agent speaks protocol {}, this portscope {PROTOCOL_VERSION}: \
                         run the same portscope version for both",
                        hello.protocol_version
                    )));
                }
                let every =
                    humantime::format_duration(std::time::Duration::from_millis(hello.tick_ms));
                if hello.changes == portscope_shared::Changes::Kernel {
                    eprintln!(
                        "portscope: following the running agent (the kernel reports changes; a \
                         full scan every {every})"
                    );
                } else {
                    eprintln!("portscope: following the running agent (every {every})");
                }
            }
            Step::Resync => agent.resync().await?,
            Step::Changed(Some(before)) => {
                let now = mirror.state().expect("a state follows a change");
                let events = portscope_core::events::events(
                    &before,
                    now,
                    SystemTime::now(),
                    keep,
                    portscope_core::events::process_runs,
                );
                print(&events, args.json).map_err(Stop::Output)?;
            }
            Step::Changed(None) => {}
            Step::Nothing => {}
        }
    }
    Err(Stop::Lost("it closed the connection".into()))
}

/// Scans every `interval`, printing the changes since `last` (or since the first scan).
async fn scan(
    args: &WatchArgs,
    keep: &impl Fn(&Socket) -> bool,
    last: Option<State>,
) -> anyhow::Result<()> {
    let (mut collector, first) = refresh::scan_blocking(Collector::this_machine())
        .await
        .context("the runtime stopped during the scan")?;
    let first = first.map_err(|what| anyhow::anyhow!("the scan failed: {what}"))?;
    for warning in &first.warnings {
        eprintln!("portscope: warning: {warning}");
    }
    let mut last = match last {
        Some(before) => {
            print(
                &portscope_core::events::events(
                    &before,
                    &first,
                    SystemTime::now(),
                    keep,
                    portscope_core::events::process_runs,
                ),
                args.json,
            )?;
            first
        }
        None => first,
    };
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
        let events = portscope_core::events::events(
            &last,
            &state,
            SystemTime::now(),
            keep,
            portscope_core::events::process_runs,
        );
        last = state;
        print(&events, args.json)?;
    }
}

/// Prints events, a line each.
fn print(events: &[(String, Event)], json: bool) -> anyhow::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for (_, event) in events {
        if json {
            serde_json::to_writer(&mut out, event)?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}", line(event))?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `14:02:03  + tcp 127.0.0.1:5173 LISTEN  node (pid 4242)  Vite dev server`.
fn line(e: &Event) -> String {
    let mark = match e.kind {
        EventKind::Opened => "+",
        EventKind::Closed => "-",
        EventKind::OwnerChanged => "~",
        EventKind::Exited => "x",
        EventKind::Health => "h",
        EventKind::BindFailed | EventKind::ConnectRefused => "!",
        EventKind::Unknown => "?",
    };
    let clock = e.time.get(11..19).unwrap_or(&e.time);
    if matches!(e.kind, EventKind::BindFailed | EventKind::ConnectRefused) {
        return format!(
            "{clock}  {mark} {}",
            portscope_core::events::failure_text(e)
        );
    }
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
        (Some(name), Some(pid)) => {
            format!("  {} (pid {pid})", portscope_core::text::one_line(name))
        }
        (None, Some(pid)) => format!("  pid {pid}"),
        _ => String::new(),
    };
    let what = e
        .app
        .as_deref()
        .map(|a| format!("  {}", portscope_core::text::one_line(a)))
        .unwrap_or_default();
    let verb = match e.kind {
        EventKind::OwnerChanged => " now held by",
        _ => "",
    };
    let exited = match (e.kind, portscope_core::events::ran_for(e), &e.health) {
        (EventKind::Exited, Some(ran), _) => {
            format!(" exited after {}", portscope_core::text::ran(ran))
        }
        (EventKind::Exited, None, _) => " exited".into(),
        (EventKind::Health, _, Some(health)) => {
            format!(" {}", portscope_history::health_text(health))
        }
        _ => String::new(),
    };
    format!("{clock}  {mark} {proto} {local}{remote}{verb}{owner}{exited}{what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_one_readable_line() {
        let e = Event {
            error: None,
            holders: Vec::new(),
            count: None,
            fix: None,
            brief: false,
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
            cwd: None,
            exe: None,
            start_time: None,
            start_ms: None,
            app: Some("Vite dev server".into()),
            health: None,
            project: None,
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
        // `date -u -d 2026-11-29T11:02:03Z +%s`: three hours before.
        let exited = Event {
            kind: EventKind::Exited,
            start_time: Some(1_795_950_123),
            ..closed
        };
        assert_eq!(
            line(&exited),
            "14:02:03  x tcp6 [::1]:5173  node\\n (pid 4242) exited after 3 h"
        );
        let check = |up, status, detail: Option<&str>| Event {
            kind: EventKind::Health,
            start_time: None,
            health: Some(portscope_shared::Health {
                up,
                status,
                latency_ms: 3,
                detail: detail.map(str::to_owned),
            }),
            ..exited.clone()
        };
        assert_eq!(
            line(&check(false, Some(500), Some("HTTP 500"))),
            "14:02:03  h tcp6 [::1]:5173  node\\n (pid 4242) answers 500"
        );
        assert!(line(&check(true, Some(200), None)).ends_with(" is up (200, 3 ms)"));
        assert!(
            line(&check(false, None, Some("timed out\nafter 1 s")))
                .ends_with(" is down (timed out\\nafter 1 s)"),
            "a detail is one line"
        );
    }
}
