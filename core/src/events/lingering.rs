//! Owners that closed their listeners and ran on: a server shutting down gracefully closes its
//! listener first, drains its connections, then exits (nginx's `QUIT`, PostgreSQL's smart
//! shutdown). Its exit is still that listener's story: each such owner is remembered for
//! [`REMEMBER`], and when it is seen gone, an `exited` event follows for each listener it closed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use portscope_shared::{Event, EventKind, Process};

use crate::model::State;

/// How long an owner is remembered after closing its last listener.
pub const REMEMBER: Duration = Duration::from_secs(600);

/// At most this many owners are remembered (the oldest go first).
const MAX_REMEMBERED: usize = 1024;

/// How often an owner that holds no socket any more is asked after.
const ASK_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct Owner {
    process: Process,
    /// Each listener it closed: its socket id and the closing event.
    closed: Vec<(String, Event)>,
    since: Instant,
    asked: Option<Instant>,
}

/// The owners of listeners that closed while they ran on, and the last owners of listeners
/// that lost theirs.
#[derive(Debug, Default)]
pub struct Lingering {
    owners: HashMap<u32, Owner>,
    /// Listeners seen without an owner after having one, by socket id: their last owner. An
    /// exiting process lets go of its descriptors a moment before the kernel drops its
    /// listener, so a scan can see the listener alone; its closing still names its owner.
    orphans: HashMap<String, (u32, Process)>,
}

impl Lingering {
    /// Before one change's events: remembers the last owner of each listener of `old` that
    /// has none in `new`.
    pub fn see(&mut self, old: &State, new: &State, delta: &portscope_shared::Delta) {
        for socket in delta
            .changed
            .iter()
            .filter(|s| s.is_listening() && s.pids.is_empty())
        {
            let owner = old.sockets.get(&socket.id).and_then(|before| {
                let pid = *before.pids.first()?;
                Some((pid, old.processes.get(&pid)?.clone()))
            });
            if let Some(owner) = owner {
                self.orphans.insert(socket.id.clone(), owner);
            }
        }
        // Kept only while the listener lasts without an owner.
        self.orphans.retain(|id, _| {
            new.sockets.get(id).is_some_and(|s| s.pids.is_empty()) || delta.removed.contains(id)
        });
        if self.orphans.len() > MAX_REMEMBERED {
            self.orphans.clear();
        }
    }

    /// Names the last owner in the closing of a listener that had lost it.
    pub fn name_closers(&mut self, events: &mut [(String, Event)]) {
        for (id, e) in events.iter_mut() {
            if e.kind == EventKind::Closed
                && e.pid.is_none()
                && let Some((pid, p)) = self.orphans.remove(id)
            {
                e.pid = Some(pid);
                e.process = Some(p.name);
                e.cmdline = p.cmdline;
                e.user = p.user;
                e.cwd = p.cwd;
                e.exe = p.exe;
                e.start_time = p.start_time;
            }
        }
    }

    /// Takes one change's `events` (between `old` and `new`): remembers the owners of the
    /// listeners that closed without exiting, and returns the `exited` events of remembered
    /// owners that are gone now (`alive` says whether one that holds no socket still runs).
    pub fn after(
        &mut self,
        old: &State,
        new: &State,
        events: &[(String, Event)],
        time: &str,
        alive: impl Fn(&Process) -> bool,
        now: Instant,
    ) -> Vec<(String, Event)> {
        for (id, e) in events {
            if e.kind != EventKind::Closed {
                continue;
            }
            let Some(pid) = e.pid else { continue };
            let exited = events
                .iter()
                .any(|(i, x)| x.kind == EventKind::Exited && i == id && x.pid == Some(pid));
            let Some(process) = old.processes.get(&pid) else {
                continue;
            };
            if exited {
                continue;
            }
            let owner = self.owners.entry(pid).or_insert_with(|| Owner {
                process: process.clone(),
                closed: Vec::new(),
                since: now,
                asked: None,
            });
            if owner.process.start_time != process.start_time {
                // The pid's earlier owner went unseen: this is another process.
                *owner = Owner {
                    process: process.clone(),
                    closed: Vec::new(),
                    since: now,
                    asked: None,
                };
            }
            owner.closed.push((id.clone(), e.clone()));
            owner.since = now;
        }
        if self.owners.len() > MAX_REMEMBERED {
            let mut by_age: Vec<(Instant, u32)> =
                self.owners.iter().map(|(pid, o)| (o.since, *pid)).collect();
            by_age.sort();
            for (_, pid) in by_age.iter().take(self.owners.len() - MAX_REMEMBERED) {
                self.owners.remove(pid);
            }
        }
        let mut out = Vec::new();
        self.owners.retain(|pid, owner| {
            if now.duration_since(owner.since) > REMEMBER {
                return false;
            }
            let gone = match new.processes.get(pid) {
                // It still holds sockets (its connections, while it drains them).
                Some(p) if p.start_time == owner.process.start_time => false,
                Some(_) => true,
                None => {
                    let ask = owner
                        .asked
                        .is_none_or(|t| now.duration_since(t) >= ASK_EVERY)
                        || old.processes.contains_key(pid);
                    if !ask {
                        return true;
                    }
                    owner.asked = Some(now);
                    !alive(&owner.process)
                }
            };
            if gone {
                for (id, closed) in &owner.closed {
                    let mut exited = closed.clone();
                    exited.kind = EventKind::Exited;
                    exited.time = time.to_owned();
                    out.push((id.clone(), exited));
                }
            }
            !gone
        });
        out.sort_by(|a, b| (&a.0, a.1.pid).cmp(&(&b.0, b.1.pid)));
        out
    }

    /// Whether any owner is remembered (a quiet machine is then still asked after them).
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::testing::{listener, process, state};

    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn an_owner_that_closes_then_exits_has_its_exit_recorded() {
        let mut old = state(&[listener(LO, 8080, 10), listener(LO, 9090, 20)]);
        for pid in [10, 20] {
            old.processes.insert(
                pid,
                Process {
                    pid,
                    start_time: Some(100),
                    ..process("nginx", &[])
                },
            );
        }
        // Both close their listeners; 10 still holds a connection (draining), 20 nothing.
        let mut draining = state(&[]);
        draining.processes.insert(10, old.processes[&10].clone());
        let closed = crate::events::events(
            &old,
            &draining,
            std::time::SystemTime::UNIX_EPOCH,
            portscope_shared::Socket::is_listening,
            |_| true,
        );
        assert_eq!(closed.len(), 2, "{closed:?}");
        let t0 = Instant::now();
        let mut lingering = Lingering::default();
        let runs = std::cell::Cell::new(true);
        let alive = |_: &Process| runs.get();
        let none = lingering.after(&old, &draining, &closed, "t1", alive, t0);
        assert!(none.is_empty(), "both still run: {none:?}");
        // 20 exits; 10 drains on.
        runs.set(false);
        let exits = lingering.after(
            &draining,
            &draining,
            &[],
            "t2",
            alive,
            t0 + Duration::from_secs(3),
        );
        let seen: Vec<(u16, Option<u32>, &str)> = exits
            .iter()
            .map(|(_, e)| (e.local_port, e.pid, e.time.as_str()))
            .collect();
        assert_eq!(seen, [(9090, Some(20), "t2")]);
        assert!(exits.iter().all(|(_, e)| e.kind == EventKind::Exited));
        // 10 lets go of its last connection and exits.
        let gone = state(&[]);
        let exits = lingering.after(
            &draining,
            &gone,
            &[],
            "t3",
            alive,
            t0 + Duration::from_secs(4),
        );
        assert_eq!(
            exits.iter().map(|(_, e)| e.local_port).collect::<Vec<_>>(),
            [8080]
        );
        assert!(lingering.is_empty());
    }

    #[test]
    fn a_listener_that_outlives_its_owner_for_a_scan_still_names_it_when_it_closes() {
        let mut with = state(&[listener(LO, 8080, 10)]);
        with.processes.insert(
            10,
            Process {
                pid: 10,
                start_time: Some(100),
                ..process("python3", &["python3", "-m", "http.server"])
            },
        );
        // The process let go of its descriptors: the listener is seen alone, then goes.
        let mut alone = with.clone();
        alone.processes.clear();
        alone.sockets = alone
            .sockets
            .into_iter()
            .map(|(id, s)| {
                let alone = portscope_shared::Socket {
                    pids: vec![],
                    ..(*s).clone()
                };
                (id, std::sync::Arc::new(alone))
            })
            .collect();
        let gone = state(&[]);
        let mut lingering = Lingering::default();
        lingering.see(&with, &alone, &with.diff(&alone));
        let delta = alone.diff(&gone);
        lingering.see(&alone, &gone, &delta);
        let mut events = crate::events::events_of(
            &alone,
            &gone,
            &delta,
            std::time::SystemTime::UNIX_EPOCH,
            portscope_shared::Socket::is_listening,
            |_| false,
        );
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1.pid, None, "the state alone does not know it");
        lingering.name_closers(&mut events);
        let closed = &events[0].1;
        assert_eq!(
            (
                closed.kind,
                closed.pid,
                closed.process.as_deref(),
                closed.start_time
            ),
            (EventKind::Closed, Some(10), Some("python3"), Some(100))
        );
        assert!(lingering.orphans.is_empty(), "used once");
    }

    #[test]
    fn an_owner_is_forgotten_after_a_while() {
        let mut old = state(&[listener(LO, 8080, 10)]);
        old.processes.insert(
            10,
            Process {
                pid: 10,
                ..process("app", &[])
            },
        );
        let new = state(&[]);
        let closed = crate::events::events(
            &old,
            &new,
            std::time::SystemTime::UNIX_EPOCH,
            portscope_shared::Socket::is_listening,
            |_| true,
        );
        let t0 = Instant::now();
        let mut lingering = Lingering::default();
        assert!(
            lingering
                .after(&old, &new, &closed, "t", |_| true, t0)
                .is_empty()
        );
        assert!(!lingering.is_empty());
        let later = t0 + REMEMBER + Duration::from_secs(1);
        assert!(
            lingering
                .after(&new, &new, &[], "t", |_| false, later)
                .is_empty()
        );
        assert!(lingering.is_empty(), "forgotten, not reported late");
    }
}
