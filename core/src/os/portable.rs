//! The [`Platform`] of Windows and macOS: sockets with their owning pids from netstat2 (the IP
//! Helper tables on Windows, libproc on macOS), process details from sysinfo.
//!
//! Shared by `windows.rs` and `macos.rs`, which add what differs (port settings, signals, the
//! firewall). On Linux the agent finds owners itself from `/proc`; here the system hands each
//! socket's pids over with the socket, so this `System` gives every socket a synthetic inode
//! (stable while the socket lives) and answers the collector's owner questions
//! (`socket_inodes`, `fd_count`) from the last dump.
//!
//! # Platform-specific behavior
//!
//! Sockets carry no inode and no uid on these systems. A socket the system names no owner for
//! is shown without one, and a warning says how many there are: under Wine, whose server holds
//! the sockets of a program doing overlapped I/O (as tokio does), that is every such socket. Windows reports one owning pid per
//! socket (a socket inherited by a child is shown under the process that opened it) and no
//! numeric uid (the user is read as a name); a `TIME_WAIT` socket's pid is 0 there, so it has
//! no owner, as on Linux.
//!
//! [`Platform`]: super::Platform

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use netstat2::{AddressFamilyFlags, ProtocolFlags, ProtocolSocketInfo};
use portscope_shared::{Proto, SocketState};
use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, UpdateKind};

use super::netstat::tcp_state;

use super::{FdError, Platform, ProcessStat, RawProcess, RawSocket, ReadError, SocketList};

/// What tells two sockets apart in a dump: protocol, both ends, owners, and which of identical
/// ones (two listeners on one port with `SO_REUSEPORT`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    proto: Proto,
    local: (IpAddr, u16),
    remote: Option<(IpAddr, u16)>,
    pids: Vec<u32>,
    nth: usize,
}

/// The netstat2 + sysinfo implementation of [`Platform`].
#[derive(Debug)]
pub struct System {
    processes: sysinfo::System,
    #[cfg(not(windows))]
    users: Option<sysinfo::Users>,
    /// Each live socket's synthetic inode; dropped when the socket leaves the dump.
    ids: HashMap<Key, u64>,
    next_id: u64,
    /// pid → the synthetic inodes it held in the last dump.
    held: HashMap<u32, Vec<u64>>,
}

impl Default for System {
    fn default() -> Self {
        Self {
            processes: sysinfo::System::new(),
            #[cfg(not(windows))]
            users: None,
            ids: HashMap::new(),
            // 0 means "no file" to the collector (a TIME_WAIT socket).
            next_id: 1,
            held: HashMap::new(),
        }
    }
}

impl System {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads one process afresh (`full`: with its command line, executable, user and working
    /// directory); `None` when it is gone.
    fn refresh(&mut self, pid: u32, full: bool) -> Option<&sysinfo::Process> {
        let kind = if full {
            ProcessRefreshKind::nothing()
                .with_cmd(UpdateKind::Always)
                .with_exe(UpdateKind::Always)
                .with_cwd(UpdateKind::Always)
                .with_user(UpdateKind::Always)
        } else {
            ProcessRefreshKind::nothing()
        };
        let id = Pid::from_u32(pid);
        self.processes
            .refresh_processes_specifics(ProcessesToUpdate::Some(&[id]), true, kind);
        self.processes.process(id)
    }

    /// Takes one dump: synthetic inodes for its sockets, and who holds which.
    fn assign(&mut self, infos: Vec<netstat2::SocketInfo>) -> SocketList {
        let mut list = SocketList::default();
        let mut ids = HashMap::with_capacity(infos.len());
        let mut held: HashMap<u32, Vec<u64>> = HashMap::new();
        let mut seen: HashMap<Key, usize> = HashMap::new();
        let mut unowned = 0usize;
        for info in infos {
            let (mut raw, pids) = convert(info);
            let mut key = Key {
                proto: raw.proto,
                local: (raw.local_addr, raw.local_port),
                remote: raw.remote,
                pids,
                nth: 0,
            };
            let nth = seen.entry(key.clone()).or_insert(0);
            key.nth = *nth;
            *nth += 1;
            if key.pids.is_empty() {
                if raw.state == SocketState::TimeWait {
                    list.sockets.push(raw);
                    continue;
                }
                unowned += 1;
            }
            let id = match self.ids.get(&key) {
                Some(&id) => id,
                None => {
                    self.next_id += 1;
                    self.next_id
                }
            };
            raw.inode = id;
            for &pid in &key.pids {
                held.entry(pid).or_default().push(id);
            }
            ids.insert(key, id);
            list.sockets.push(raw);
        }
        self.ids = ids;
        self.held = held;
        if unowned > 0 {
            list.errors.push(format!(
                "the system named no owning process for {unowned} open sockets (Wine does not \
                 for the sockets its server holds); they are shown without an owner"
            ));
        }
        list
    }

    /// The name of a process's user. On Windows, its security identifier (`S-1-5-21-…`):
    /// sysinfo's list of Windows users aborts the program under Wine (a null buffer from
    /// `NetUserEnum` fails its slice precondition), so it is not asked.
    #[cfg(windows)]
    fn user_name(&mut self, process: Pid) -> Option<String> {
        Some(self.processes.process(process)?.user_id()?.to_string())
    }

    /// The name of a process's user, from the system's user list (read once).
    #[cfg(not(windows))]
    fn user_name(&mut self, process: Pid) -> Option<String> {
        let uid = self.processes.process(process)?.user_id()?.clone();
        let users = self
            .users
            .get_or_insert_with(sysinfo::Users::new_with_refreshed_list);
        users.get_user_by_id(&uid).map(|u| u.name().to_owned())
    }
}

impl Platform for System {
    fn sockets(&mut self) -> Result<SocketList, ReadError> {
        let af = AddressFamilyFlags::IPV4 | AddressFamilyFlags::IPV6;
        let proto = ProtocolFlags::TCP | ProtocolFlags::UDP;
        let iter = netstat2::iterate_sockets_info(af, proto)
            .map_err(|e| ReadError::SocketTables(e.to_string()))?;
        let mut infos = Vec::new();
        let mut errors = Vec::new();
        for item in iter {
            match item {
                Ok(info) => infos.push(info),
                Err(e) => errors.push(format!("skipped an unreadable socket entry: {e}")),
            }
        }
        let mut list = self.assign(infos);
        errors.append(&mut list.errors);
        list.errors = errors;
        Ok(list)
    }

    /// The processes that hold sockets in the last dump: the only owners there are to find.
    fn pids(&mut self) -> Result<Vec<u32>, ReadError> {
        Ok(self.held.keys().copied().collect())
    }

    /// Not a descriptor count here: a number that changes when the sockets a process held in
    /// the last dump change, which is what makes the owner map look again.
    fn fd_count(&mut self, pid: u32) -> Option<usize> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.held.get(&pid)?.hash(&mut hasher);
        // Truncated on 32-bit targets: it only has to change.
        #[allow(
            clippy::cast_possible_truncation,
            reason = "a fingerprint, not a count"
        )]
        Some(hasher.finish() as usize)
    }

    fn socket_inodes(&mut self, pid: u32) -> Result<Vec<u64>, FdError> {
        match self.held.get(&pid) {
            Some(ids) => Ok(ids.clone()),
            None if is_running(pid) => Ok(Vec::new()),
            None => Err(FdError::Gone),
        }
    }

    fn process(&mut self, pid: u32) -> Option<RawProcess> {
        let p = self.refresh(pid, true)?;
        let stat = to_stat(p);
        let exe = p.exe().map(|e| e.display().to_string());
        let cmdline = p
            .cmd()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let cwd = p.cwd().map(|c| c.display().to_string());
        let uid = numeric_uid(p);
        let user = self.user_name(Pid::from_u32(pid));
        Some(RawProcess {
            pid,
            ppid: stat.ppid,
            name: stat.name,
            exe,
            cmdline,
            uid,
            user,
            start_time: stat.start_time,
            start_ms: stat.start_ms,
            session: stat.session,
            pgrp: stat.pgrp,
            state: stat.state,
            cwd,
            project: None,
        })
    }

    fn stat(&mut self, pid: u32) -> Option<ProcessStat> {
        self.refresh(pid, false).map(to_stat)
    }

    fn euid(&self) -> Option<u32> {
        super::effective_uid()
    }

    fn cwd(&mut self, pid: u32) -> Option<String> {
        let id = Pid::from_u32(pid);
        self.processes.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[id]),
            true,
            ProcessRefreshKind::nothing().with_cwd(UpdateKind::Always),
        );
        let cwd = self.processes.process(id)?.cwd()?;
        Some(cwd.display().to_string())
    }
}

/// A process's uid as a number, where the system has numeric uids (not Windows, whose users
/// are security identifiers).
fn numeric_uid(p: &sysinfo::Process) -> Option<u32> {
    p.user_id()?.to_string().parse().ok()
}

fn to_stat(p: &sysinfo::Process) -> ProcessStat {
    ProcessStat {
        ppid: p.parent().map(Pid::as_u32).filter(|&pid| pid != 0),
        name: p.name().to_string_lossy().into_owned(),
        start_time: Some(p.start_time()).filter(|&t| t != 0),
        start_ms: None,
        session: p.session_id().map(Pid::as_u32),
        pgrp: super::process_group(p.pid().as_u32()),
        state: state_letter(p.status()),
    }
}

/// `ps`'s state letter for a sysinfo status; `None` where the system tells none (Windows says
/// every process "Run").
fn state_letter(status: ProcessStatus) -> Option<char> {
    Some(match status {
        ProcessStatus::Run => 'R',
        ProcessStatus::Sleep | ProcessStatus::Idle => 'S',
        ProcessStatus::Stop => 'T',
        ProcessStatus::Zombie => 'Z',
        ProcessStatus::UninterruptibleDiskSleep => 'D',
        _ => return None,
    })
}

/// Whether a process still runs: it exists and is not a zombie waiting for its parent.
pub fn is_running(pid: u32) -> bool {
    let mut system = sysinfo::System::new();
    let id = Pid::from_u32(pid);
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[id]),
        true,
        ProcessRefreshKind::nothing(),
    );
    system
        .process(id)
        .is_some_and(|p| !matches!(p.status(), ProcessStatus::Zombie | ProcessStatus::Dead))
}

/// The machine's host name.
pub fn hostname() -> String {
    sysinfo::System::host_name().unwrap_or_else(|| "localhost".to_owned())
}

/// The addresses of this machine's interfaces (loopback included).
pub fn local_addresses() -> Vec<IpAddr> {
    if_addrs::get_if_addrs()
        .map(|ifs| ifs.iter().map(|i| i.ip()).collect())
        .unwrap_or_default()
}

/// One netstat2 entry as a socket (inode not yet given) and its owners.
fn convert(info: netstat2::SocketInfo) -> (RawSocket, Vec<u32>) {
    let (proto, local, remote, state) = match info.protocol_socket_info {
        ProtocolSocketInfo::Tcp(tcp) => (
            Proto::Tcp,
            (tcp.local_addr, tcp.local_port),
            Some((tcp.remote_addr, tcp.remote_port)),
            tcp_state(tcp.state),
        ),
        ProtocolSocketInfo::Udp(udp) => (
            Proto::Udp,
            (udp.local_addr, udp.local_port),
            None,
            SocketState::Unconn,
        ),
    };
    let mut pids = info.associated_pids;
    // Windows names pid 0 (the idle process) as the owner of sockets nobody holds any more.
    pids.retain(|&p| p != 0);
    pids.sort_unstable();
    pids.dedup();
    let raw = RawSocket {
        proto,
        local_addr: local.0,
        local_port: local.1,
        remote: remote.filter(|(addr, port)| *port != 0 || !addr.is_unspecified()),
        state,
        inode: 0,
        uid: None,
    };
    (raw, pids)
}
