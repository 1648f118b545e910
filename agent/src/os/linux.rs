//! Linux: sockets from the kernel's sock_diag netlink dump (netstat2), owners and process
//! details from `/proc` (procfs).
//!
//! netstat2's own owner lookup (`iterate_sockets_info`) panics when `/proc` is unreadable and
//! repeats the whole `/proc/*/fd` walk for every call, so we use its netlink dump without pids
//! and find owners ourselves, tolerating processes that vanish mid-walk.

use std::collections::HashMap;

use netstat2::{AddressFamilyFlags, ProtocolFlags, ProtocolSocketInfo, TcpState};
use portscope_shared::{Proto, SocketState};
use procfs::process::{FDTarget, Process};

use crate::collector::{Owners, Platform, RawProcess, RawSocket, SocketList};

/// The Linux implementation of [`Platform`].
#[derive(Debug, Default)]
pub struct System {
    /// uid → user name; users rarely change while the agent runs.
    users: HashMap<u32, Option<String>>,
}

impl System {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Platform for System {
    fn sockets(&mut self) -> Result<SocketList, String> {
        let af = AddressFamilyFlags::IPV4 | AddressFamilyFlags::IPV6;
        let proto = ProtocolFlags::TCP | ProtocolFlags::UDP;
        let iter = netstat2::iterate_sockets_info_without_pids(af, proto)
            .map_err(|e| format!("cannot read sockets from the kernel (netlink sock_diag): {e}"))?;
        let mut list = SocketList::default();
        for item in iter {
            match item {
                Ok(info) => list.sockets.push(convert(info)),
                Err(e) => list
                    .errors
                    .push(format!("skipped an unreadable socket entry: {e}")),
            }
        }
        if list.sockets.iter().any(|s| s.proto == Proto::Udp) {
            add_udp_peers(&mut list);
        }
        Ok(list)
    }

    fn owners(&mut self) -> Owners {
        let mut owners = Owners::default();
        let procs = match procfs::process::all_processes() {
            Ok(procs) => procs,
            Err(e) => {
                owners.errors.push(format!(
                    "cannot list /proc, so no socket owners are known: {e}"
                ));
                return owners;
            }
        };
        for process in procs {
            // A process that exited between the listing and this read is simply gone.
            let Ok(process) = process else { continue };
            let Ok(fds) = process.fd() else {
                // Permission denied (another user's process while we are not root), or it exited.
                owners.unreadable += 1;
                continue;
            };
            let pid = process.pid as u32;
            for fd in fds.flatten() {
                if let FDTarget::Socket(inode) = fd.target {
                    let pids = owners.by_inode.entry(inode).or_default();
                    if pids.last() != Some(&pid) {
                        pids.push(pid);
                    }
                }
            }
        }
        owners
    }

    fn process(&mut self, pid: u32) -> Option<RawProcess> {
        let process = Process::new(i32::try_from(pid).ok()?).ok()?;
        // stat is the one read we need; a process that vanished here is skipped.
        let stat = process.stat().ok()?;
        let uid = process.uid().ok();
        let start_time = procfs::boot_time_secs()
            .ok()
            .map(|boot| boot + stat.starttime / procfs::ticks_per_second());
        Some(RawProcess {
            pid,
            ppid: u32::try_from(stat.ppid).ok().filter(|&p| p != 0),
            name: stat.comm,
            exe: process.exe().ok().map(|p| p.display().to_string()),
            cmdline: process.cmdline().unwrap_or_default(),
            uid,
            user: uid.and_then(|uid| self.user_name(uid)),
            start_time,
            session: u32::try_from(stat.session).ok().filter(|&s| s != 0),
        })
    }

    fn cwd(&mut self, pid: u32) -> Option<String> {
        let process = Process::new(i32::try_from(pid).ok()?).ok()?;
        process.cwd().ok().map(|p| p.display().to_string())
    }

    fn euid(&self) -> Option<u32> {
        Process::myself()
            .and_then(|p| p.status())
            .ok()
            .map(|s| s.euid)
    }
}

impl System {
    fn user_name(&mut self, uid: u32) -> Option<String> {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                uzers::get_user_by_uid(uid).map(|u| u.name().to_string_lossy().into_owned())
            })
            .clone()
    }
}

/// The machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

fn convert(info: netstat2::SocketInfo) -> RawSocket {
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
    RawSocket {
        proto,
        local_addr: local.0,
        local_port: local.1,
        remote: remote.filter(|(addr, port)| *port != 0 || !addr.is_unspecified()),
        state,
        inode: u64::from(info.inode),
        // A TIME_WAIT socket belongs to no one any more; the kernel reports uid 0 for it.
        uid: (state != SocketState::TimeWait).then_some(info.uid),
    }
}

/// netstat2 reports no peer for UDP sockets; connected ones (after `connect(2)`) get theirs
/// from `/proc/net/udp{,6}`, matched by inode, and the state `ESTABLISHED` (`ss` says ESTAB).
fn add_udp_peers(list: &mut SocketList) {
    let mut peers = HashMap::new();
    for table in [procfs::net::udp(), procfs::net::udp6()] {
        match table {
            Ok(entries) => peers.extend(
                entries
                    .into_iter()
                    .filter(|e| e.state == procfs::net::UdpState::Established && e.inode != 0)
                    .map(|e| (e.inode, e.remote_address)),
            ),
            Err(e) => list.errors.push(format!(
                "cannot read /proc/net/udp ({e}): connected UDP sockets are shown as unconnected"
            )),
        }
    }
    for socket in list.sockets.iter_mut().filter(|s| s.proto == Proto::Udp) {
        if let Some(peer) = peers.get(&socket.inode) {
            socket.remote = Some((peer.ip(), peer.port()));
            socket.state = SocketState::Established;
        }
    }
}

fn tcp_state(state: TcpState) -> SocketState {
    match state {
        TcpState::Listen => SocketState::Listen,
        TcpState::Established => SocketState::Established,
        TcpState::SynSent => SocketState::SynSent,
        TcpState::SynReceived => SocketState::SynRecv,
        TcpState::FinWait1 => SocketState::FinWait1,
        TcpState::FinWait2 => SocketState::FinWait2,
        TcpState::TimeWait => SocketState::TimeWait,
        TcpState::Closed => SocketState::Close,
        TcpState::CloseWait => SocketState::CloseWait,
        TcpState::LastAck => SocketState::LastAck,
        TcpState::Closing => SocketState::Closing,
        TcpState::DeleteTcb | TcpState::Unknown => SocketState::Unknown,
    }
}
