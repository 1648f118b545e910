//! Connections the kernel reported changing (#22), read again one by one and put in the
//! model as a scan would show them, without reading every socket.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use portscope_shared::SocketState;

use super::{Collector, owner_status, to_wire, to_wire_process};
use crate::model::State;
use crate::os::{Platform, ReadError};
use crate::ports;

/// Connections read at once, at most; more changes than this at once call for a scan.
pub const MAX_READ_ALONE: usize = 256;

/// What [`Collector::connections_now`] made.
#[derive(Debug)]
pub struct Connections {
    /// The state given, with those connections as they are now.
    pub state: State,
    /// The ends of accepted connections that no process holds yet (not `accept()`ed: they have
    /// no file, so no owner): worth reading again shortly.
    pub unaccepted: Vec<(SocketAddr, SocketAddr)>,
}

impl<P: Platform> Collector<P> {
    /// The TCP connections with these ends (own end, other end), read again one by one and
    /// put in `state` as a scan would show them: a gone one taken out, a changed one replaced,
    /// a new one added with its owner (found among the processes whose descriptors changed,
    /// the owners of listeners on its port first) and the owner's details (looked up once;
    /// a project not known yet is asked without waiting, and the next scan completes it). A
    /// process left holding nothing leaves the state, as it would a scan's.
    ///
    /// Listeners are not touched (the kernel's listen changes follow them), so neither are
    /// the annotators run, nor containers labelled: what they add is a listener's. `Err` when
    /// the platform cannot read a connection alone: scan instead.
    pub fn connections_now(
        &mut self,
        state: &State,
        ends: &[(SocketAddr, SocketAddr)],
    ) -> Result<Connections, ReadError> {
        let mut found = Vec::with_capacity(ends.len());
        for &(local, remote) in ends {
            found.push((local, remote, self.platform.connection(local, remote)?));
        }
        let read: Vec<_> = found.iter().filter_map(|(.., raw)| raw.as_ref()).collect();
        let inodes: Vec<u64> = read.iter().map(|raw| raw.inode).collect();
        let ports: HashSet<u16> = read.iter().map(|raw| raw.local_port).collect();
        let likely: Vec<u32> = if inodes
            .iter()
            .any(|&i| i != 0 && self.owners.pids(i).is_empty())
        {
            state
                .sockets
                .values()
                .filter(|s| s.is_listening() && ports.contains(&s.local_port))
                .flat_map(|s| s.pids.iter().copied())
                .collect()
        } else {
            Vec::new()
        };
        self.owners
            .refresh_part(&mut self.platform, &inodes, &likely);
        let euid = self.platform.euid();
        let seen_every_process = self.owners.unreadable() == 0 && self.owners.error().is_none();
        let services = ports::Services::system();

        let mut next = state.clone();
        let mut unaccepted = Vec::new();
        let mut let_go = HashSet::new();
        for (local, remote, raw) in found {
            let prefix = format!("tcp {local} {remote} i");
            let old: Vec<String> = next
                .sockets
                .range(prefix.clone()..)
                .take_while(|(id, _)| id.starts_with(&prefix))
                .map(|(id, _)| id.clone())
                .collect();
            for id in old {
                if let Some(gone) = next.sockets.remove(&id) {
                    let_go.extend(gone.pids.iter().copied());
                }
            }
            let Some(raw) = raw else {
                continue;
            };
            if raw.inode == 0 && raw.state == SocketState::Established {
                unaccepted.push((local, remote));
            }
            let mut pids = self.owners.pids(raw.inode).to_vec();
            pids.sort_unstable();
            pids.dedup();
            let owner = owner_status(&raw, &pids, seen_every_process, euid);
            let mut socket = to_wire(raw, pids, owner);
            for &pid in &socket.pids {
                if next.processes.contains_key(&pid) {
                    continue;
                }
                if let Some(process) = self.details_now(pid) {
                    next.processes.insert(pid, process);
                }
            }
            let process = socket.pids.first().and_then(|pid| next.processes.get(pid));
            ports::annotate(&mut socket, process, services);
            let_go.retain(|pid| !socket.pids.contains(pid));
            next.sockets.insert(socket.id.clone(), Arc::new(socket));
        }
        if !let_go.is_empty() {
            for socket in next.sockets.values() {
                for pid in &socket.pids {
                    let_go.remove(pid);
                }
                if let_go.is_empty() {
                    break;
                }
            }
            for pid in let_go {
                next.processes.remove(&pid);
            }
        }
        Ok(Connections {
            state: next,
            unaccepted,
        })
    }

    /// Whether some process's project was asked and has not answered yet.
    pub fn projects_pending(&self) -> bool {
        !self.unsettled.is_empty()
    }

    /// `state` with the projects that answered since they were asked without waiting (the
    /// owner of a listener followed or of a connection read alone, #22: with kernel events the
    /// next scan may be the reconcile, 30 s away); `None` when none of its processes got one.
    pub fn projects_now(&mut self, state: &State) -> Option<State> {
        let waited = self.project_deadline.replace(std::time::Instant::now());
        let mut next: Option<State> = None;
        let pending: Vec<u32> = self.unsettled.iter().copied().collect();
        for pid in pending {
            let Some(mut raw) = self.processes.remove(&pid) else {
                self.unsettled.remove(&pid);
                continue;
            };
            self.settle_project(&mut raw);
            // A container's Compose project (a scan's label) is not the lookup's to replace.
            if !self.unsettled.contains(&pid)
                && let Some(process) = state.processes.get(&pid)
                && process.project != raw.project
                && process
                    .project
                    .as_ref()
                    .is_none_or(|p| p.source != portscope_shared::ProjectSource::Compose)
            {
                let mut process = process.clone();
                process.project.clone_from(&raw.project);
                next.get_or_insert_with(|| state.clone())
                    .processes
                    .insert(pid, process);
            }
            self.processes.insert(pid, raw);
        }
        self.project_deadline = waited;
        next
    }

    /// A process's details now, without waiting for its project (the next scan completes it):
    /// this collector's cached ones when it knows the process, else read. `None` when it is
    /// gone.
    pub(super) fn details_now(&mut self, pid: u32) -> Option<portscope_shared::Process> {
        let waited = self.project_deadline.replace(std::time::Instant::now());
        let cached = self.processes.remove(&pid);
        let details = self.process_details(pid, cached);
        self.project_deadline = waited;
        let details = details?;
        self.processes.insert(pid, details.clone());
        Some(to_wire_process(details))
    }
}
