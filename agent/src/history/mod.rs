//! What happened to sockets over time (#11): the events between two states of the machine —
//! opened, closed, owner changed — and `portscope watch`, which prints them as they happen.
//!
//! Owns the derivation of events from two [`State`]s, so that what `watch` prints and what a
//! history keeps are the same facts. It reads states only: scanning is the collector's, and the
//! wire form is `portscope_shared::Event`.

mod cli;
mod recorder;
pub mod store;
mod watch;

pub use cli::run as run_history;
pub use recorder::{Recorder, Retention};
pub use store::{HistoryError, Query, Store, default_path, millis};
pub use watch::run as watch;

use std::time::SystemTime;

use portscope_shared::{Event, EventKind, Socket};

use crate::model::State;

/// A moment: a duration ago (`10m`), an RFC 3339 time, or `HH:MM[:SS]` today in UTC.
pub fn moment(s: &str) -> Result<std::time::SystemTime, String> {
    let now = std::time::SystemTime::now();
    if let Ok(ago) = humantime::parse_duration(s) {
        return now
            .checked_sub(ago)
            .ok_or_else(|| format!("`{s}` ago is before the epoch"));
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t);
    }
    let parts: Vec<&str> = s.split(':').collect();
    if (2..=3).contains(&parts.len())
        && let Ok(numbers) = parts
            .iter()
            .map(|p| p.parse::<u64>())
            .collect::<Result<Vec<_>, _>>()
        && numbers[0] < 24
        && numbers[1] < 60
        && numbers.get(2).is_none_or(|s| *s < 60)
    {
        let secs = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        let midnight = secs - secs % 86_400;
        let at =
            midnight + numbers[0] * 3600 + numbers[1] * 60 + numbers.get(2).copied().unwrap_or(0);
        return Ok(std::time::UNIX_EPOCH + std::time::Duration::from_secs(at));
    }
    Err(format!(
        "`{s}` is not a moment; expected a duration ago (`10m`), an RFC 3339 time (`2026-11-29T14:02:00Z`) or `HH:MM` (today, UTC)"
    ))
}

/// The events that turn `old` into `new`, seen at `at`: sockets that appeared, that went, and
/// those whose owners changed, in socket id order (closed ones first). `keep` chooses the
/// sockets that matter (all of them, or listeners only). Each event comes with its socket's id.
pub fn events(
    old: &State,
    new: &State,
    at: SystemTime,
    keep: impl Fn(&Socket) -> bool,
) -> Vec<(String, Event)> {
    let time = humantime::format_rfc3339_seconds(at).to_string();
    let mut out = Vec::new();
    for (id, socket) in &old.sockets {
        if keep(socket) && !new.sockets.contains_key(id) {
            out.push((id.clone(), event(&time, EventKind::Closed, socket, old)));
        }
    }
    for (id, socket) in &new.sockets {
        if !keep(socket) {
            continue;
        }
        let kind = match old.sockets.get(id) {
            None => EventKind::Opened,
            Some(before) if before.pids != socket.pids && !socket.pids.is_empty() => {
                EventKind::OwnerChanged
            }
            Some(_) => continue,
        };
        out.push((id.clone(), event(&time, kind, socket, new)));
    }
    out
}

/// One event for a socket, with its first owner as `state` knows it.
fn event(time: &str, kind: EventKind, socket: &Socket, state: &State) -> Event {
    let owner = socket.pids.first().and_then(|pid| state.processes.get(pid));
    Event {
        time: time.to_owned(),
        since: None,
        kind,
        proto: socket.proto,
        family: socket.family,
        local_addr: socket.local_addr,
        local_port: socket.local_port,
        remote_addr: socket.remote_addr,
        remote_port: socket.remote_port,
        pid: socket.pids.first().copied(),
        process: owner.map(|p| p.name.clone()),
        cmdline: owner.map(|p| p.cmdline.clone()).unwrap_or_default(),
        user: owner.and_then(|p| p.user.clone()),
        app: socket.app.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use portscope_shared::SocketState;

    use super::*;
    use crate::model::tests::{listener, process, socket, state};

    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn opened_closed_and_passed_on_sockets_are_events() {
        let kept = listener(LO, 8080, 10);
        let closing = listener(LO, 9090, 11);
        let mut passed = listener(LO, 7070, 12);
        let mut old = state(&[kept.clone(), closing, passed.clone()]);
        old.processes
            .insert(11, process("python3", &["python3", "-m", "http.server"]));
        passed.pids = vec![13];
        let opened = listener(LO, 6060, 14);
        let mut conn = socket(
            "tcp 127.0.0.1:5000 127.0.0.1:6060 i9",
            SocketState::Established,
        );
        conn.local_port = 5000;
        let new = state(&[kept, passed, opened, conn]);
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000);
        let all = events(&old, &new, at, |_| true);
        let summary: Vec<(EventKind, u16, Option<u32>)> = all
            .iter()
            .map(|(_, e)| (e.kind, e.local_port, e.pid))
            .collect();
        assert_eq!(
            summary,
            [
                (EventKind::Closed, 9090, Some(11)),
                (EventKind::Opened, 5000, None),
                (EventKind::Opened, 6060, Some(14)),
                (EventKind::OwnerChanged, 7070, Some(13)),
            ]
        );
        // `date -u -d @1795000000 +%FT%TZ`
        assert_eq!(all[0].1.time, "2026-11-18T11:06:40Z");
        assert_eq!(
            all[0].1.process.as_deref(),
            Some("python3"),
            "the closed one's owner, from the old state"
        );
        let listening = events(&old, &new, at, Socket::is_listening);
        assert_eq!(
            listening.len(),
            3,
            "the connection is left out: {listening:?}"
        );
        assert!(events(&new, &new, at, |_| true).is_empty());
    }
}
