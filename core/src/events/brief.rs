//! The model follows the kernel's listeners between scans (#22): every `listen()` and every
//! listener's close comes with the process and the socket's inode, so [`Brief::follow`] puts
//! a new listener in the model at once (built as the scan would build it, by the caller's
//! `make`: `Collector::listener_now`) and takes a closed one out, with no scan; the next full
//! scan reconciles. A listener that opened and closed before it could be published is in no
//! state, so the diff has no event for it: it gets its `opened` and `closed` events from what
//! the kernel said (`brief: true`). A listen change that could not be followed (no inode, its
//! process gone before it was read) waits here until a scan either saw the listener (its id is
//! the scan's) or it closed before a scan could ([`Brief::missed`]).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::SystemTime;

use portscope_shared::{Event, EventKind, Family, OwnerStatus, Process, Proto, Socket};

use crate::model::State;
use crate::os::kernel::{Change, ChangeKind, KernelOwner};

/// Listeners followed at most; past it the oldest is forgotten and counted
/// ([`Brief::forgotten`]), so a process opening listeners in a loop cannot grow the agent.
pub const MAX_FOLLOWED: usize = 4096;

#[derive(Debug)]
struct Followed {
    opened: Change,
    closed: Option<SystemTime>,
}

/// The kernel's listeners not yet accounted for by a scan, and the owners it named for the
/// listeners the model follows.
#[derive(Debug, Default)]
pub struct Brief {
    followed: VecDeque<Followed>,
    forgotten: u64,
    /// The process that called `listen()`, by socket inode, while the listener is open: a
    /// scan that finds the listener without an owner gets this one ([`Brief::complete`]).
    owners: HashMap<u64, KernelOwner>,
}

impl Brief {
    /// Takes a listen or listen-closed change; others are ignored.
    pub fn see(&mut self, change: &Change) {
        match change.kind {
            ChangeKind::Listen => {
                if self.followed.len() >= MAX_FOLLOWED {
                    self.followed.pop_front();
                    self.forgotten += 1;
                }
                self.followed.push_back(Followed {
                    opened: change.clone(),
                    closed: None,
                });
            }
            ChangeKind::ListenClosed => {
                if let Some(f) = self
                    .followed
                    .iter_mut()
                    .rev()
                    .find(|f| f.opened.socket == change.socket && f.closed.is_none())
                {
                    f.closed = Some(change.at);
                }
            }
            _ => {}
        }
    }

    /// Applies a batch of the kernel's listener changes to `state` between scans: a listener
    /// opened is put in (by `make`, as the scan would build it), a closed one taken out; one
    /// that opened and closed within the batch gets its two events. `None` when nothing
    /// changed.
    pub fn follow(
        &mut self,
        state: &State,
        changes: &[Change],
        mut make: impl FnMut(&Change, u64, &KernelOwner) -> Option<(Socket, Process)>,
    ) -> Option<(State, Vec<(String, Event)>)> {
        let closed_in_batch: HashMap<u64, SystemTime> = changes
            .iter()
            .filter(|c| c.kind == ChangeKind::ListenClosed)
            .map(|c| (c.socket, c.at))
            .collect();
        let opened_in_batch: std::collections::HashSet<u64> = changes
            .iter()
            .filter(|c| c.kind == ChangeKind::Listen)
            .map(|c| c.socket)
            .collect();
        let mut next = state.clone();
        let mut told = Vec::new();
        let mut changed = false;
        for change in changes {
            match change.kind {
                ChangeKind::Listen => {
                    let (Some(id), Some(inode), Some(owner)) =
                        (id_of(change), change.inode, change.owner.as_ref())
                    else {
                        self.see(change);
                        continue;
                    };
                    if let Some(&closed) = closed_in_batch.get(&change.socket) {
                        if !state.sockets.contains_key(&id) {
                            let project = project_in(owner, state, state);
                            told.push((
                                id.clone(),
                                event(change, EventKind::Opened, change.at, project.clone()),
                            ));
                            told.push((id, event(change, EventKind::Closed, closed, project)));
                        }
                        continue;
                    }
                    self.remember(inode, owner);
                    if next.sockets.contains_key(&id) {
                        continue;
                    }
                    match make(change, inode, owner) {
                        Some((socket, process)) => {
                            next.sockets.insert(id, std::sync::Arc::new(socket));
                            if !next.processes.contains_key(&process.pid) {
                                next.processes.insert(process.pid, process);
                            }
                            changed = true;
                        }
                        None => self.see(change),
                    }
                }
                ChangeKind::ListenClosed => {
                    if let Some(inode) = change.inode {
                        self.owners.remove(&inode);
                        let id = format!("tcp {} - i{inode}", change.local);
                        if !opened_in_batch.contains(&change.socket)
                            && let Some(gone) = next.sockets.remove(&id)
                        {
                            changed = true;
                            // Its owners that hold nothing else leave the state, as a scan's
                            // would: the model then tells an owner's exit with its listener's
                            // close, and one that runs on as lingering.
                            for pid in &gone.pids {
                                if !next.sockets().any(|s| s.pids.contains(pid)) {
                                    next.processes.remove(pid);
                                }
                            }
                        }
                    }
                    self.see(change);
                }
                _ => {}
            }
        }
        (changed || !told.is_empty()).then_some((next, told))
    }

    /// Keeps the owners that listen changes not yet followed name, for [`Brief::complete`] (a
    /// scan that ran while they waited may have found their listeners without an owner).
    pub fn note(&mut self, changes: &[Change]) {
        for change in changes.iter().filter(|c| c.kind == ChangeKind::Listen) {
            if let (Some(inode), Some(owner)) = (change.inode, change.owner.as_ref()) {
                self.remember(inode, owner);
            }
        }
    }

    /// Keeps the owner of a listener the model follows, bounded by [`MAX_FOLLOWED`].
    fn remember(&mut self, inode: u64, owner: &KernelOwner) {
        if self.owners.len() >= MAX_FOLLOWED {
            self.owners.clear();
            self.forgotten += 1;
        }
        self.owners.insert(inode, owner.clone());
    }

    /// Gives the listeners a scan found without an owner (closed, or passed on, before its
    /// walk of descriptors reached them) the process the kernel saw listen: an owner looked up
    /// once, when its event came.
    pub fn complete(&self, state: &mut State) {
        let from_followed = self
            .followed
            .iter()
            .filter_map(|f| Some((f.opened.inode?, f.opened.owner.as_ref()?)));
        let owners: Vec<(u64, &KernelOwner)> = self
            .owners
            .iter()
            .map(|(inode, owner)| (*inode, owner))
            .chain(from_followed)
            .collect();
        if owners.is_empty() {
            return;
        }
        let ownerless: Vec<(String, u64)> = state
            .sockets()
            .filter(|s| s.is_listening() && s.pids.is_empty() && s.owner != OwnerStatus::Hidden)
            .filter_map(|s| {
                let inode = s.id.rsplit_once(" i")?.1.parse().ok()?;
                Some((s.id.clone(), inode))
            })
            .collect();
        for (id, inode) in ownerless {
            let Some((_, owner)) = owners.iter().find(|(i, _)| *i == inode) else {
                continue;
            };
            let Some(socket) = state.sockets.get_mut(&id) else {
                continue;
            };
            let process = process_of(owner);
            let socket = std::sync::Arc::make_mut(socket);
            socket.pids = vec![owner.pid];
            socket.owner = OwnerStatus::Known;
            socket.app =
                crate::ports::identify(Some(&process), socket.local_port).label(socket.local_port);
            if !state.processes.contains_key(&owner.pid) {
                state.processes.insert(owner.pid, process);
            }
        }
    }

    /// Listen changes waiting for a scan (not followed into the model).
    pub fn waiting(&self) -> usize {
        self.followed.len()
    }

    /// Listeners forgotten because too many were followed at once.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// After a scan that started at `started` and turned `before` into `after`: the `opened`
    /// and `closed` events of each listener that closed before the scan began and that
    /// neither state held. Listeners a scan saw are dropped (the diff tells them); those still
    /// open, or closed after the scan began, wait for the next.
    pub fn missed(
        &mut self,
        before: &State,
        after: &State,
        started: SystemTime,
    ) -> Vec<(String, Event)> {
        let mut out = Vec::new();
        self.followed.retain(|f| {
            let id = id_of(&f.opened);
            let seen = id.as_ref().is_some_and(|id| {
                before.sockets.contains_key(id) || after.sockets.contains_key(id)
            });
            if seen {
                return false;
            }
            match f.closed {
                Some(closed) if closed <= started => {
                    let id = id.unwrap_or_else(|| {
                        format!("tcp {} - k{:x}", f.opened.local, f.opened.socket)
                    });
                    let project = f
                        .opened
                        .owner
                        .as_ref()
                        .and_then(|o| after.processes.get(&o.pid).or(before.processes.get(&o.pid)))
                        .and_then(|p| p.project.as_ref())
                        .map(|p| p.name.clone());
                    let opened = event(&f.opened, EventKind::Opened, f.opened.at, project.clone());
                    let gone = event(&f.opened, EventKind::Closed, closed, project);
                    out.push((id.clone(), opened));
                    out.push((id, gone));
                    false
                }
                _ => true,
            }
        });
        out
    }
}

/// The project of the kernel's owner, as either state knows its process (the same one).
fn project_in(owner: &KernelOwner, before: &State, after: &State) -> Option<String> {
    after
        .processes
        .get(&owner.pid)
        .or(before.processes.get(&owner.pid))
        .filter(|p| p.start_time == owner.start_time)
        .and_then(|p| p.project.as_ref())
        .map(|p| p.name.clone())
}

/// The scan's id of the listener a listen change names (`collector::socket_id`'s form).
fn id_of(change: &Change) -> Option<String> {
    change
        .inode
        .map(|inode| format!("tcp {} - i{inode}", change.local))
}

fn process_of(owner: &KernelOwner) -> Process {
    Process {
        pid: owner.pid,
        ppid: None,
        name: owner.comm.clone(),
        exe: owner.exe.clone(),
        cmdline: owner.cmdline.clone(),
        user: owner.user.clone(),
        uid: Some(owner.uid),
        start_time: owner.start_time,
        start_ms: owner.start_ms,
        stopped: false,
        cwd: owner.cwd.clone(),
        host: None,
        project: None,
    }
}

fn event(change: &Change, kind: EventKind, at: SystemTime, project: Option<String>) -> Event {
    let process = change.owner.as_ref().map(process_of);
    let port = change.local.port();
    Event {
        time: super::time_text(at),
        since: None,
        kind,
        proto: Proto::Tcp,
        family: match change.local.ip() {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        },
        local_addr: change.local.ip(),
        local_port: port,
        remote_addr: None,
        remote_port: None,
        pid: process.as_ref().map(|p| p.pid),
        app: crate::ports::identify(process.as_ref(), port).label(port),
        process: process.as_ref().map(|p| p.name.clone()),
        cmdline: process
            .as_ref()
            .map(|p| p.cmdline.clone())
            .unwrap_or_default(),
        user: process.as_ref().and_then(|p| p.user.clone()),
        cwd: process.as_ref().and_then(|p| p.cwd.clone()),
        exe: process.as_ref().and_then(|p| p.exe.clone()),
        start_time: process.as_ref().and_then(|p| p.start_time),
        start_ms: process.as_ref().and_then(|p| p.start_ms),
        health: None,
        project,
        error: None,
        holders: Vec::new(),
        count: None,
        fix: None,
        brief: true,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use portscope_shared::EventKind;

    use super::*;
    use crate::testing::{listener, process};

    fn owner(pid: u32) -> KernelOwner {
        KernelOwner {
            pid,
            comm: "node".into(),
            uid: 1000,
            start_time: Some(1_795_000_000),
            ..KernelOwner::default()
        }
    }

    fn change(kind: ChangeKind, port: u16, inode: Option<u64>, at_ms: u64) -> Change {
        Change {
            kind,
            at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_100 + at_ms),
            proto: Some(Proto::Tcp),
            local: format!("127.0.0.1:{port}").parse().unwrap(),
            remote: None,
            errno: None,
            inode,
            socket: u64::from(port) * 16,
            owner: Some(owner(4242)),
        }
    }

    /// What the collector would build: the scan's id, owned by the kernel's process.
    fn make(change: &Change, inode: u64, owner: &KernelOwner) -> Option<(Socket, Process)> {
        let mut socket = listener(change.local.ip(), change.local.port(), owner.pid);
        socket.id = format!("tcp {} - i{inode}", change.local);
        let mut p = process("node", &["node", "server.js"]);
        p.pid = owner.pid;
        Some((socket, p))
    }

    #[test]
    fn a_listener_is_followed_in_and_out_without_a_scan() {
        let mut brief = Brief::default();
        let empty = State::default();
        let opened = [change(ChangeKind::Listen, 3000, Some(77), 0)];
        let (state, told) = brief
            .follow(&empty, &opened, make)
            .expect("a listener more");
        assert!(told.is_empty(), "the diff tells it: {told:?}");
        let socket = state
            .sockets
            .get("tcp 127.0.0.1:3000 - i77")
            .expect("in the model");
        assert_eq!(socket.pids, vec![4242]);
        assert!(state.processes.contains_key(&4242));
        // The same again (a scan saw it meanwhile): nothing to do.
        assert!(brief.follow(&state, &opened, make).is_none());
        let closed = [change(ChangeKind::ListenClosed, 3000, Some(77), 50)];
        let (after, _) = brief
            .follow(&state, &closed, make)
            .expect("a listener less");
        assert!(after.sockets.is_empty());
        assert!(brief.followed.is_empty() && brief.owners.is_empty());
    }

    #[test]
    fn a_listener_opened_and_closed_in_one_batch_is_two_brief_events() {
        let mut brief = Brief::default();
        let batch = [
            change(ChangeKind::Listen, 3000, Some(77), 0),
            change(ChangeKind::ListenClosed, 3000, Some(77), 3),
        ];
        let (state, told) = brief
            .follow(&State::default(), &batch, make)
            .expect("its events");
        assert!(state.sockets.is_empty());
        let kinds: Vec<(EventKind, bool, Option<u32>)> =
            told.iter().map(|(_, e)| (e.kind, e.brief, e.pid)).collect();
        assert_eq!(
            kinds,
            [
                (EventKind::Opened, true, Some(4242)),
                (EventKind::Closed, true, Some(4242))
            ]
        );
        assert_eq!(told[0].0, "tcp 127.0.0.1:3000 - i77");
        assert!(told[0].1.time < told[1].1.time);
    }

    #[test]
    fn a_listener_that_could_not_be_followed_waits_for_a_scan() {
        let mut brief = Brief::default();
        // Its process was gone before it could be read.
        let gone = |_: &Change, _: u64, _: &KernelOwner| None;
        let opened = [change(ChangeKind::Listen, 3000, Some(77), 0)];
        assert!(brief.follow(&State::default(), &opened, gone).is_none());
        let closed = [change(ChangeKind::ListenClosed, 3000, Some(77), 10)];
        assert!(brief.follow(&State::default(), &closed, gone).is_none());
        // A scan that began after it closed: its two events, once.
        let started = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_200);
        let empty = State::default();
        let told = brief.missed(&empty, &empty, started);
        assert_eq!(told.len(), 2);
        assert!(told.iter().all(|(_, e)| e.brief));
        assert!(brief.missed(&empty, &empty, started).is_empty());
    }

    #[test]
    fn a_scanned_listener_without_an_owner_gets_the_one_the_kernel_saw() {
        let mut brief = Brief::default();
        let opened = [change(ChangeKind::Listen, 3000, Some(77), 0)];
        let (mut state, _) = brief
            .follow(&State::default(), &opened, make)
            .expect("followed");
        // The next scan found it, but not its owner (its descriptor walk came too late).
        let socket = state.sockets.get_mut("tcp 127.0.0.1:3000 - i77").unwrap();
        let socket = Arc::make_mut(socket);
        socket.pids.clear();
        socket.owner = OwnerStatus::None;
        state.processes.remove(&4242);
        brief.complete(&mut state);
        let socket = state.sockets.get("tcp 127.0.0.1:3000 - i77").unwrap();
        assert_eq!(socket.pids, vec![4242]);
        assert_eq!(socket.owner, OwnerStatus::Known);
        assert_eq!(
            state.processes.get(&4242).map(|p| p.name.as_str()),
            Some("node")
        );
    }
}
