//! Listeners too brief for a scan (#22): the kernel reports every `listen()` and every
//! listener's close, with the process; a listener that opened and closed between two scans is
//! in neither state, so the diff has no event for it. [`Brief`] keeps the kernel's listen
//! changes until a scan either saw the listener (its id is the scan's: the kernel gives the
//! socket's inode) or it closed before a scan could, and then makes its `opened` and `closed`
//! events from what the kernel said.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::SystemTime;

use portscope_shared::{Event, EventKind, Family, OwnerStatus, Process, Proto};

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

/// The kernel's listeners not yet accounted for by a scan.
#[derive(Debug, Default)]
pub struct Brief {
    followed: VecDeque<Followed>,
    forgotten: u64,
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

    /// Gives the listeners a scan found without an owner (closed, or passed on, before its
    /// walk of descriptors reached them) the process the kernel saw listen: an owner looked up
    /// once, when its event came.
    pub fn complete(&self, state: &mut State) {
        for f in &self.followed {
            let (Some(id), Some(owner)) = (id_of(&f.opened), f.opened.owner.as_ref()) else {
                continue;
            };
            let Some(socket) = state.sockets.get_mut(&id) else {
                continue;
            };
            if !socket.pids.is_empty() || socket.owner == OwnerStatus::Hidden {
                continue;
            }
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
