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

/// A moment: a duration ago (`10m`), an RFC 3339 time (`2026-11-29T14:02:00Z`, any offset),
/// a local date and time (`2026-11-29 14:02`), or a local time of day (`14:02`, `14:02:30`: the
/// latest such moment, today or else yesterday). Local means this machine's time zone.
pub fn moment(s: &str) -> Result<SystemTime, String> {
    moment_in(s, &jiff::Zoned::now())
}

/// [`moment`] as seen at `now`, in `now`'s time zone.
pub fn moment_in(s: &str, now: &jiff::Zoned) -> Result<SystemTime, String> {
    let s = s.trim();
    let at = if let Ok(ago) = humantime::parse_duration(s) {
        let ago = jiff::SignedDuration::try_from(ago).map_err(|e| e.to_string())?;
        now.timestamp()
            .checked_sub(ago)
            .map_err(|_| format!("`{s}` ago is before the epoch"))?
    } else if let Ok(t) = s.parse::<jiff::Timestamp>() {
        t
    } else if let Ok(civil) = s.parse::<jiff::civil::DateTime>() {
        civil
            .to_zoned(now.time_zone().clone())
            .map_err(|e| e.to_string())?
            .timestamp()
    } else if s.contains(':')
        && let Ok(time) = s.parse::<jiff::civil::Time>()
    {
        let today = now
            .date()
            .to_datetime(time)
            .to_zoned(now.time_zone().clone())
            .map_err(|e| e.to_string())?;
        if today.timestamp() <= now.timestamp() {
            today.timestamp()
        } else {
            today
                .checked_sub(jiff::Span::new().days(1))
                .map_err(|e| e.to_string())?
                .timestamp()
        }
    } else {
        return Err(format!(
            "`{s}` is not a moment; expected a duration ago (`10m`), an RFC 3339 time (`2026-11-29T14:02:00Z`), a local date and time (`2026-11-29 14:02`) or a local time of day (`14:02`)"
        ));
    };
    Ok(SystemTime::from(at))
}

/// An RFC 3339 UTC time (as events carry) in this machine's time zone, for people:
/// `2026-11-29 15:02:03 CET`; the text as it was when it does not parse.
pub fn local_time(rfc3339: &str) -> String {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S %Z")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_owned())
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

/// The same events as [`events`], read from the delta between the two states instead of a pass
/// over every socket: what a tick costs is then what changed.
pub fn events_of(
    old: &State,
    new: &State,
    delta: &portscope_shared::Delta,
    at: SystemTime,
    keep: impl Fn(&Socket) -> bool,
) -> Vec<(String, Event)> {
    let time = humantime::format_rfc3339_seconds(at).to_string();
    let mut out = Vec::new();
    for id in &delta.removed {
        if let Some(socket) = old.sockets.get(id).filter(|s| keep(s)) {
            out.push((id.clone(), event(&time, EventKind::Closed, socket, old)));
        }
    }
    let mut appeared: Vec<(String, Event)> = Vec::new();
    for socket in delta.added.iter().filter(|s| keep(s)) {
        appeared.push((
            socket.id.clone(),
            event(&time, EventKind::Opened, socket, new),
        ));
    }
    for socket in delta.changed.iter().filter(|s| keep(s)) {
        let passed = old
            .sockets
            .get(&socket.id)
            .is_some_and(|before| before.pids != socket.pids && !socket.pids.is_empty());
        if passed {
            appeared.push((
                socket.id.clone(),
                event(&time, EventKind::OwnerChanged, socket, new),
            ));
        }
    }
    appeared.sort_by(|a, b| a.0.cmp(&b.0));
    out.extend(appeared);
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
        cwd: owner.and_then(|p| p.cwd.clone()),
        exe: owner.and_then(|p| p.exe.clone()),
        start_time: owner.and_then(|p| p.start_time),
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

    proptest::proptest! {
        /// The events read from a delta are the events of the two states (the full pass is
        /// the oracle).
        #[test]
        fn events_from_the_delta_are_the_events_of_the_states(
            a in crate::model::tests::any_state(),
            b in crate::model::tests::any_state(),
        ) {
            let at = SystemTime::UNIX_EPOCH;
            for keep in [(|_: &Socket| true) as fn(&Socket) -> bool, Socket::is_listening] {
                proptest::prop_assert_eq!(
                    events_of(&a, &b, &a.diff(&b), at, keep),
                    events(&a, &b, at, keep)
                );
            }
        }
    }

    #[test]
    fn moments_are_read_in_the_local_time_zone() {
        let now: jiff::Zoned = "2026-11-29T10:30:00+01:00[Europe/Paris]".parse().unwrap();
        let utc = |s: &str| -> String {
            let t = moment_in(s, &now).unwrap();
            humantime::format_rfc3339_seconds(t).to_string()
        };
        assert_eq!(utc("10m"), "2026-11-29T09:20:00Z");
        assert_eq!(utc("2026-11-29T14:02:00Z"), "2026-11-29T14:02:00Z");
        assert_eq!(utc("2026-11-29T14:02:00+05:00"), "2026-11-29T09:02:00Z");
        assert_eq!(
            utc("2026-11-29 14:02"),
            "2026-11-29T13:02:00Z",
            "Paris is UTC+1"
        );
        assert_eq!(utc("09:15"), "2026-11-29T08:15:00Z", "earlier today");
        assert_eq!(
            utc("14:02:30"),
            "2026-11-28T13:02:30Z",
            "later today: yesterday's"
        );
        for bad in ["soon", "25:00", "", "14"] {
            let e = moment_in(bad, &now).unwrap_err();
            assert!(e.contains("is not a moment"), "{bad}: {e}");
        }
    }
}
