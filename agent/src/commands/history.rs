//! `portscope history`: reads the history file directly (read-only, while an agent may write),
//! newest first, or who held a port at a moment.

use std::io::Write;

use anyhow::Context;
use portscope_shared::{Event, EventKind};

use crate::cli::HistoryArgs;
use portscope_history::store::{Query, Store, default_path, millis};

/// `Ok(true)` when there is something to show (exit 0), `Ok(false)` when nothing matched (1).
pub fn run(args: HistoryArgs) -> anyhow::Result<bool> {
    let Found {
        path,
        events,
        elsewhere,
    } = read(&args)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "events": events }))?;
        writeln!(out)?;
    } else if let (Some(at), Some(port)) = (args.at, args.port) {
        let when =
            portscope_history::local_time(&humantime::format_rfc3339_seconds(at).to_string());
        if events.is_empty() {
            writeln!(out, "Nothing held port {port} at {when}.")?;
        }
        for e in &events {
            writeln!(
                out,
                "At {when}, port {port} was held by {} (since {}).",
                owner(e),
                portscope_history::local_time(&e.time)
            )?;
        }
    } else {
        if events.is_empty() {
            let what = args.port.map_or_else(
                || "No events".to_owned(),
                |p| format!("No events for port {p}"),
            );
            writeln!(out, "{what} in {}.", path.display())?;
            if let Some(elsewhere) = &elsewhere {
                writeln!(out, "{elsewhere}")?;
            }
        }
        for e in &events {
            writeln!(out, "{}", line(e))?;
        }
    }
    out.flush()?;
    Ok(!events.is_empty())
}

/// What the history answered, and where it was read.
pub struct Found {
    pub path: std::path::PathBuf,
    pub events: Vec<Event>,
    /// The file a running agent writes, when it is not the one read, said as a sentence.
    pub elsewhere: Option<String>,
}

/// Reads the events `args` asks for from the history file: `--history`, else the running
/// agent's, else the default one.
pub fn read(args: &HistoryArgs) -> anyhow::Result<Found> {
    // The running agent's file when none is given (it may write another than the default).
    let running = portscope_history::running_agents_file();
    let path = args
        .history
        .clone()
        .or_else(|| running.as_ref().map(|(path, _)| path.clone()))
        .or_else(default_path)
        .context("neither XDG_STATE_HOME nor HOME is set: give --history PATH")?;
    // The file a running agent writes, when it is not the one read.
    let elsewhere = running
        .filter(|(other, _)| *other != path)
        .map(|(other, pid)| {
            let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            format!("The running agent{pid} writes {}.", other.display())
        });
    if !path.exists() {
        anyhow::bail!(portscope_doctor::UsageError(format!(
            "no history at {}: the agent (`portscope`) keeps one while it runs, unless started with --no-history",
            path.display()
        )));
    }
    let store = Store::open_read_only(&path)?;
    let events = match (args.at, args.port) {
        (Some(at), Some(port)) => store.holders_at(port, millis(at))?,
        _ => store.query(&Query {
            port: args.port,
            since: args.since.map(millis),
            until: args.until.map(millis),
            pid: args.pid,
            limit: i64::from(args.limit),
        })?,
    };
    Ok(Found {
        path,
        events,
        elsewhere,
    })
}

fn owner(e: &Event) -> String {
    let name = e.process.as_deref().map(portscope_core::text::one_line);
    match (name, e.pid) {
        (Some(name), Some(pid)) => format!("{name} (pid {pid})"),
        (None, Some(pid)) => format!("pid {pid}"),
        _ => "a hidden process".into(),
    }
}

/// `2026-11-29 15:02:03 CET  closed  tcp 127.0.0.1:5173  node (pid 4242)  Vite dev server`, in
/// local time.
fn line(e: &Event) -> String {
    // An opening seen when the agent started: the listener was open then, and opened at some
    // moment before (after `since`, when the agent last looked or its owner started).
    let open_before = e.kind == EventKind::Opened && e.since.is_some();
    let kind = match e.kind {
        EventKind::Opened if open_before => "open before",
        EventKind::Opened => "opened",
        EventKind::Closed => "closed",
        EventKind::OwnerChanged => "now held by",
        EventKind::Exited => "exited",
        EventKind::Health => "health",
        EventKind::BindFailed | EventKind::ConnectRefused => {
            return format!(
                "{}  {:<12} {}",
                portscope_history::local_time(&e.time),
                "failed",
                portscope_core::events::failure_text(e)
            );
        }
        EventKind::Unknown => "changed",
    };
    let ran = match (e.kind, portscope_core::events::ran_for(e), &e.health) {
        (EventKind::Exited, Some(d), _) => format!(", ran {}", portscope_core::text::ran(d)),
        (EventKind::Health, _, Some(health)) => {
            format!(": {}", portscope_history::health_text(health))
        }
        _ => String::new(),
    };
    let while_down = e
        .since
        .as_deref()
        .map(|s| {
            format!(
                " (between {} and then, while portscope was not running)",
                portscope_history::local_time(s)
            )
        })
        .unwrap_or_default();
    let proto = serde_json::to_value(e.proto)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!(
        "{}  {kind:<12} {proto} {}  {}{ran}{}{while_down}",
        portscope_history::local_time(&e.time),
        std::net::SocketAddr::new(e.local_addr, e.local_port),
        owner(e),
        e.app
            .as_deref()
            .map(|a| format!("  {}", portscope_core::text::one_line(a)))
            .unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use portscope_shared::{Event, EventKind, Family, Proto};

    fn opened(since: Option<&str>) -> Event {
        Event {
            error: None,
            holders: Vec::new(),
            count: None,
            fix: None,
            brief: false,
            time: "2026-11-29T14:02:03Z".into(),
            since: since.map(str::to_owned),
            kind: EventKind::Opened,
            proto: Proto::Tcp,
            family: Family::Ipv4,
            local_addr: "127.0.0.1".parse().unwrap(),
            local_port: 5432,
            remote_addr: None,
            remote_port: None,
            pid: Some(42),
            process: Some("postgres".into()),
            cmdline: vec![],
            user: None,
            cwd: None,
            exe: None,
            start_time: None,
            start_ms: None,
            app: None,
            health: None,
            project: None,
        }
    }

    #[test]
    fn a_listener_found_open_at_the_start_is_open_before_not_opened_then() {
        let seen = super::line(&opened(Some("2026-11-29T13:00:00Z")));
        assert!(seen.contains(" open before "), "{seen}");
        assert!(seen.contains("while portscope was not running"), "{seen}");
        let opened_then = super::line(&opened(None));
        assert!(opened_then.contains(" opened "), "{opened_then}");
        assert!(!opened_then.contains("before"), "{opened_then}");
    }
}
