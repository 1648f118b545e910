//! The events between two states of the machine — opened, closed, owner changed, health, and
//! an owner's exit — derived from the model's diff. Part of the core: the model publishes them
//! with each change, and what `watch` prints, the WebSocket sends and the history keeps are
//! these same facts. The history only stores and answers them.

mod brief;
mod lingering;

pub use brief::{Brief, MAX_FOLLOWED};
pub use lingering::Lingering;

use std::collections::{BTreeSet, HashMap};
use std::time::SystemTime;

use portscope_shared::{Event, EventKind, Process, Socket};

use crate::model::State;

/// The events that turn `old` into `new`, seen at `at`: sockets that appeared, that went, those
/// whose owners changed and those whose health check told something new, in socket id order
/// (closed ones first). `keep` chooses the
/// sockets that matter (all of them, or listeners only). Each event comes with its socket's id.
///
/// Then an `exited` event for each listener whose owner exited: an owner of one of `old`'s kept
/// sockets that `new` does not have and that `alive` says no longer runs, or that `new` has
/// with another start time (its pid was given to another process).
pub fn events(
    old: &State,
    new: &State,
    at: SystemTime,
    keep: impl Fn(&Socket) -> bool,
    alive: impl Fn(&Process) -> bool,
) -> Vec<(String, Event)> {
    let time = time_text(at);
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
        match old.sockets.get(id) {
            None => out.push((id.clone(), event(&time, EventKind::Opened, socket, new))),
            Some(before) => {
                if before.pids != socket.pids && !socket.pids.is_empty() {
                    out.push((
                        id.clone(),
                        event(&time, EventKind::OwnerChanged, socket, new),
                    ));
                }
                if health_changed(before, socket) {
                    out.push((id.clone(), event(&time, EventKind::Health, socket, new)));
                }
            }
        }
    }
    out.extend(exits(
        old,
        new,
        old.processes.keys().copied(),
        &time,
        &keep,
        alive,
    ));
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
    alive: impl Fn(&Process) -> bool,
) -> Vec<(String, Event)> {
    let time = time_text(at);
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
        let Some(before) = old.sockets.get(&socket.id) else {
            continue;
        };
        if before.pids != socket.pids && !socket.pids.is_empty() {
            appeared.push((
                socket.id.clone(),
                event(&time, EventKind::OwnerChanged, socket, new),
            ));
        }
        if health_changed(before, socket) {
            appeared.push((
                socket.id.clone(),
                event(&time, EventKind::Health, socket, new),
            ));
        }
    }
    appeared.sort_by(|a, b| a.0.cmp(&b.0));
    out.extend(appeared);
    // Owners that went: no longer owning a socket, or their pid now another process's.
    let went = delta.processes_removed.iter().copied().chain(
        delta
            .processes
            .iter()
            .filter(|p| {
                old.processes
                    .get(&p.pid)
                    .is_some_and(|before| before.start_time != p.start_time)
            })
            .map(|p| p.pid),
    );
    out.extend(exits(old, new, went, &time, &keep, alive));
    out
}

/// Whether a listener's health check told something new: its first answer, or another
/// verdict or status than the last (a new latency alone is not news).
fn health_changed(before: &Socket, now: &Socket) -> bool {
    now.health.as_ref().is_some_and(|h| {
        before
            .health
            .as_ref()
            .is_none_or(|b| (b.up, b.status) != (h.up, h.status))
    })
}

/// The `exited` events of the processes among `candidates` (pids of `old`) that held one of
/// `old`'s kept sockets and are gone in `new`: one per such socket, in socket id and then pid
/// order. `alive` is asked only about those.
fn exits(
    old: &State,
    new: &State,
    candidates: impl Iterator<Item = u32>,
    time: &str,
    keep: impl Fn(&Socket) -> bool,
    alive: impl Fn(&Process) -> bool,
) -> Vec<(String, Event)> {
    let candidates: BTreeSet<u32> = candidates.collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let mut held: Vec<(&String, u32, &Socket)> = Vec::new();
    for (id, socket) in &old.sockets {
        if keep(socket) {
            for pid in socket.pids.iter().filter(|p| candidates.contains(p)) {
                held.push((id, *pid, socket));
            }
        }
    }
    let mut gone: HashMap<u32, bool> = HashMap::new();
    let mut out = Vec::new();
    for (id, pid, socket) in held {
        let Some(before) = old.processes.get(&pid) else {
            continue;
        };
        let exited = *gone
            .entry(pid)
            .or_insert_with(|| match new.processes.get(&pid) {
                // A start time that could not be read is not a new process.
                Some(now) => {
                    now.start_time.is_some()
                        && before.start_time.is_some()
                        && now.start_time != before.start_time
                }
                None => !alive(before),
            });
        if exited {
            out.push((
                id.clone(),
                event_by(time, EventKind::Exited, socket, Some(pid), Some(before)),
            ));
        }
    }
    out
}

/// Two start times as different programs computed them: each from its own reading of the
/// boot time, which the kernel gives to the second and which moves when the clock is stepped.
pub const START_TIME_SLACK: u64 = 2;

/// Whether process `pid`, started at `start_time` (or, where that is not known, named
/// `name`), still runs: not a zombie waiting for its parent, and not a later process given
/// the same pid. The start time may have been recorded by another program (the history's
/// agent): it matches within [`START_TIME_SLACK`].
pub fn still_runs(pid: u32, start_time: Option<u64>, name: Option<&str>) -> bool {
    use crate::os::Platform;
    crate::os::System::new().stat(pid).is_some_and(|stat| {
        let same = match (start_time, stat.start_time) {
            (Some(then), Some(now)) => then.abs_diff(now) <= START_TIME_SLACK,
            _ => name == Some(stat.name.as_str()),
        };
        !matches!(stat.state, Some('Z' | 'X')) && same
    })
}

/// Whether only the kernel could tell this event (a failure, or a listener that opened and
/// closed between two scans): a diff of two states never shows it.
pub fn kernel_only(e: &Event) -> bool {
    e.brief || matches!(e.kind, EventKind::BindFailed | EventKind::ConnectRefused)
}

/// Events kept with the published state for clients that missed states.
pub const RECENT_KEPT: usize = 512;

/// `recent` with `events` (published under `seq`) added, the oldest dropped past
/// [`RECENT_KEPT`].
pub fn keep_recent(
    recent: &imbl::Vector<(u64, String, Event)>,
    seq: u64,
    events: &[(String, Event)],
) -> imbl::Vector<(u64, String, Event)> {
    let mut kept = recent.clone();
    for (id, e) in events {
        kept.push_back((seq, id.clone(), e.clone()));
    }
    while kept.len() > RECENT_KEPT {
        kept.pop_front();
    }
    kept
}

/// What a client that was sent `sent` and is now sent the diff to `now` would miss: the
/// events published in between of sockets neither state holds (they came and went, or had
/// none: failures).
pub fn missed_between(
    sent: &State,
    now: &State,
    recent: &imbl::Vector<(u64, String, Event)>,
) -> Vec<(String, Event)> {
    recent
        .iter()
        .filter(|(seq, id, _)| {
            *seq > sent.seq
                && *seq <= now.seq
                && !sent.sockets.contains_key(id)
                && !now.sockets.contains_key(id)
        })
        .map(|(_, id, e)| (id.clone(), e.clone()))
        .collect()
}

/// A failure event (`bind_failed`, `connect_refused`) in words, safe for a terminal:
/// `node (pid 4300) could not bind 0.0.0.0:8000: EADDRINUSE (address already in use) — held by
/// 127.0.0.1:8000 python3 (pid 4242). Fix: …`, with `(×3)` when it repeated.
pub fn failure_text(e: &Event) -> String {
    use crate::text::one_line;
    let who = match (&e.process, e.pid) {
        (Some(name), Some(pid)) => format!("{} (pid {pid})", one_line(name)),
        (None, Some(pid)) => format!("pid {pid}"),
        _ => "a process".to_owned(),
    };
    let holders: Vec<String> = e
        .holders
        .iter()
        .map(|h| {
            let owner = match (&h.process, h.pids.first()) {
                (Some(name), Some(pid)) => format!(" {} (pid {pid})", one_line(name)),
                (None, Some(pid)) => format!(" pid {pid}"),
                _ => " (owner hidden)".to_owned(),
            };
            format!(
                "{}{owner}",
                std::net::SocketAddr::new(h.local_addr, h.local_port)
            )
        })
        .collect();
    let mut text = match (e.kind, e.remote_addr, e.remote_port) {
        (EventKind::ConnectRefused, Some(addr), Some(port)) => format!(
            "{who} was refused at {}",
            std::net::SocketAddr::new(addr, port)
        ),
        _ => format!(
            "{who} could not bind {}{}",
            std::net::SocketAddr::new(e.local_addr, e.local_port),
            e.error
                .as_deref()
                .map(|err| format!(": {}", one_line(err)))
                .unwrap_or_default()
        ),
    };
    if let Some(count) = e.count.filter(|&c| c > 1) {
        text.push_str(&format!(" (×{count})"));
    }
    if !holders.is_empty() {
        let said = match e.kind {
            EventKind::ConnectRefused => "listening elsewhere",
            _ => "held by",
        };
        text.push_str(&format!(" — {said} {}", holders.join(", ")));
    }
    if let Some(fix) = &e.fix {
        text.push_str(&format!(". Fix: {}", one_line(fix)));
    }
    text
}

/// An event's time: RFC 3339 in UTC to the millisecond, without a fraction on a whole second.
pub fn time_text(at: SystemTime) -> String {
    let whole = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .is_ok_and(|d| d.subsec_millis() == 0);
    if whole {
        humantime::format_rfc3339_seconds(at).to_string()
    } else {
        humantime::format_rfc3339_millis(at).to_string()
    }
}

/// [`still_runs`] for a process as a state knew it.
pub fn process_runs(process: &Process) -> bool {
    still_runs(process.pid, process.start_time, Some(&process.name))
}

/// One event for a socket, with its first owner as `state` knows it.
fn event(time: &str, kind: EventKind, socket: &Socket, state: &State) -> Event {
    let pid = socket.pids.first().copied();
    let owner = pid.and_then(|pid| state.processes.get(&pid));
    event_by(time, kind, socket, pid, owner)
}

/// One event for a socket and one of its owners.
fn event_by(
    time: &str,
    kind: EventKind,
    socket: &Socket,
    pid: Option<u32>,
    owner: Option<&Process>,
) -> Event {
    Event {
        error: None,
        holders: Vec::new(),
        count: None,
        fix: None,
        brief: false,
        time: time.to_owned(),
        since: None,
        kind,
        proto: socket.proto,
        family: socket.family,
        local_addr: socket.local_addr,
        local_port: socket.local_port,
        remote_addr: socket.remote_addr,
        remote_port: socket.remote_port,
        pid,
        process: owner.map(|p| p.name.clone()),
        cmdline: owner.map(|p| p.cmdline.clone()).unwrap_or_default(),
        user: owner.and_then(|p| p.user.clone()),
        cwd: owner.and_then(|p| p.cwd.clone()),
        exe: owner.and_then(|p| p.exe.clone()),
        start_time: owner.and_then(|p| p.start_time),
        start_ms: owner.and_then(|p| p.start_ms),
        app: socket.app.clone(),
        health: if kind == EventKind::Health {
            socket.health.clone()
        } else {
            None
        },
        project: owner
            .and_then(|p| p.project.as_ref())
            .map(|p| p.name.clone()),
    }
}

/// How long the process of an `exited` event ran: from its start time to the event's time;
/// `None` for an exit seen only at the agent's start (it happened some time in `since`…`time`).
pub fn ran_for(e: &Event) -> Option<std::time::Duration> {
    if e.since.is_some() {
        return None;
    }
    let end = humantime::parse_rfc3339(&e.time).ok()?;
    let start = match e.start_ms {
        Some(ms) => std::time::Duration::from_millis(ms),
        None => std::time::Duration::from_secs(e.start_time?),
    };
    end.duration_since(SystemTime::UNIX_EPOCH + start).ok()
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use portscope_shared::SocketState;

    use super::*;
    use crate::testing::{listener, process, socket, state};

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
        let all = events(&old, &new, at, |_| true, |_| true);
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
        let listening = events(&old, &new, at, Socket::is_listening, |_| true);
        assert_eq!(
            listening.len(),
            3,
            "the connection is left out: {listening:?}"
        );
        assert!(events(&new, &new, at, |_| true, |_| false).is_empty());
    }

    #[test]
    fn an_owner_that_exits_is_an_event_for_each_listener_it_held() {
        let owner = |pid, start| Process {
            pid,
            start_time: Some(start),
            ..process("python3", &["python3", "-m", "http.server"])
        };
        let mut v6 = listener(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), 8000, 11);
        v6.family = portscope_shared::Family::Ipv6;
        let mut old = state(&[
            listener(LO, 8000, 11),
            v6,
            listener(LO, 9000, 12),
            listener(LO, 7000, 13),
            listener(LO, 6000, 14),
        ]);
        for (pid, start) in [(11, 100), (12, 100), (13, 100), (14, 100)] {
            old.processes.insert(pid, owner(pid, start));
        }
        // 11 exits with both its listeners; 12 closes its listener and runs on; 13's pid is
        // another process's now; 14 passes its listener to 15 and exits.
        let mut passed = listener(LO, 6000, 15);
        passed.id = old
            .sockets()
            .find(|s| s.local_port == 6000)
            .unwrap()
            .id
            .clone();
        let mut reused = listener(LO, 7100, 13);
        reused.id = "tcp 127.0.0.1:7100 i99".into();
        let mut new = state(&[passed, reused]);
        new.processes.insert(13, owner(13, 200));
        new.processes.insert(15, owner(15, 150));
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(3700);
        let asked = std::cell::RefCell::new(Vec::new());
        let alive = |p: &Process| {
            asked.borrow_mut().push(p.pid);
            p.pid == 12
        };
        let all = events(&old, &new, at, Socket::is_listening, alive);
        let exits: Vec<(u16, Option<u32>)> = all
            .iter()
            .filter(|(_, e)| e.kind == EventKind::Exited)
            .map(|(_, e)| (e.local_port, e.pid))
            .collect();
        let mut sorted = exits.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                (6000, Some(14)),
                (7000, Some(13)),
                (8000, Some(11)),
                (8000, Some(11))
            ],
            "{all:?}"
        );
        let first_exit = all.iter().position(|(_, e)| e.kind == EventKind::Exited);
        assert_eq!(
            first_exit,
            Some(all.len() - exits.len()),
            "the listeners' own events come first"
        );
        let mut asked = asked.into_inner();
        asked.sort();
        assert_eq!(asked, [11, 12, 14], "only owners that went are looked at");
        let exit = &all.last().unwrap().1;
        assert_eq!(exit.process.as_deref(), Some("python3"));
        assert_eq!(exit.start_time, Some(100));
        assert_eq!(ran_for(exit), Some(std::time::Duration::from_secs(3600)));
    }

    proptest::proptest! {
        /// The events read from a delta are the events of the two states (the full pass is
        /// the oracle).
        #[test]
        fn events_from_the_delta_are_the_events_of_the_states(
            a in crate::testing::any_state(),
            b in crate::testing::any_state(),
        ) {
            let at = SystemTime::UNIX_EPOCH;
            // Some of the processes that went still run.
            let alive = |p: &Process| p.pid.is_multiple_of(2);
            for keep in [(|_: &Socket| true) as fn(&Socket) -> bool, Socket::is_listening] {
                let all = events(&a, &b, at, keep, alive);
                proptest::prop_assert_eq!(events_of(&a, &b, &a.diff(&b), at, keep, alive), all.clone());
                // The exits, against the rule as the protocol states it: for each kept socket
                // of `a` and each of its owners `a` knows, one exit when `b` lacks the owner
                // and it does not run, or has its pid with another known start time.
                let mut expected = Vec::new();
                for (id, s) in a.sockets.iter().filter(|(_, s)| keep(s)) {
                    for pid in &s.pids {
                        let Some(before) = a.processes.get(pid) else { continue };
                        let gone = match b.processes.get(pid) {
                            None => !alive(before),
                            Some(now) => matches!(
                                (before.start_time, now.start_time),
                                (Some(x), Some(y)) if x != y
                            ),
                        };
                        if gone {
                            expected.push((id.clone(), *pid));
                        }
                    }
                }
                let mut seen: Vec<(String, u32)> = all
                    .iter()
                    .filter(|(_, e)| e.kind == EventKind::Exited)
                    .map(|(id, e)| (id.clone(), e.pid.unwrap_or_default()))
                    .collect();
                expected.sort();
                seen.sort();
                proptest::prop_assert_eq!(seen, expected);
                // Health, as the protocol states it: a kept socket in both states whose check
                // answered for the first time, or with another verdict or status.
                let told: Vec<&String> = all
                    .iter()
                    .filter(|(_, e)| e.kind == EventKind::Health)
                    .map(|(id, _)| id)
                    .collect();
                let news: Vec<&String> = b
                    .sockets
                    .iter()
                    .filter(|(id, s)| {
                        let Some(now) = s.health.as_ref().filter(|_| keep(s)) else {
                            return false;
                        };
                        a.sockets.get(*id).is_some_and(|before| match &before.health {
                            None => true,
                            Some(then) => then.up != now.up || then.status != now.status,
                        })
                    })
                    .map(|(id, _)| id)
                    .collect();
                proptest::prop_assert_eq!(told, news);
            }
        }
    }

    #[test]
    fn an_event_names_its_owners_project() {
        let web = listener(LO, 8000, 10);
        let mut now = state(std::slice::from_ref(&web));
        let mut vite = process("node", &["node", "vite"]);
        vite.project = Some(portscope_shared::Project {
            name: "shop-app".into(),
            root: "/home/dev/shop-app".into(),
            source: portscope_shared::ProjectSource::Git,
        });
        now.processes.insert(10, vite);
        let opened = events(
            &state(&[]),
            &now,
            SystemTime::UNIX_EPOCH,
            |_| true,
            |_| true,
        );
        assert_eq!(opened.len(), 1);
        assert_eq!(opened[0].1.project.as_deref(), Some("shop-app"));
    }

    #[test]
    fn a_health_check_that_tells_something_new_is_an_event() {
        let check = |up: bool, status: u16, latency_ms: u32| portscope_shared::Health {
            up,
            status: Some(status),
            latency_ms,
            detail: (!up).then(|| format!("HTTP {status}")),
        };
        let mut web = listener(LO, 8000, 10);
        web.http = true;
        let unchecked = state(std::slice::from_ref(&web));
        web.health = Some(check(true, 200, 3));
        let first = state(std::slice::from_ref(&web));
        web.health = Some(check(true, 200, 40));
        let slower = state(std::slice::from_ref(&web));
        web.health = Some(check(false, 500, 5));
        let broken = state(std::slice::from_ref(&web));
        let at = SystemTime::UNIX_EPOCH;
        let told = |a: &State, b: &State| -> Vec<Option<portscope_shared::Health>> {
            events(a, b, at, Socket::is_listening, |_| true)
                .into_iter()
                .map(|(_, e)| {
                    assert_eq!(e.kind, EventKind::Health);
                    assert_eq!(e.local_port, 8000);
                    e.health
                })
                .collect()
        };
        assert_eq!(
            told(&unchecked, &first),
            [Some(check(true, 200, 3))],
            "the first answer"
        );
        assert_eq!(told(&first, &slower), [], "a new latency alone is not news");
        assert_eq!(told(&slower, &broken), [Some(check(false, 500, 5))]);
        assert_eq!(told(&broken, &broken), []);
    }
}
