//! Linux: sockets from the kernel's sock_diag netlink dump (netstat2), owners and process
//! details from `/proc` (procfs).
//!
//! netstat2's own owner lookup (`iterate_sockets_info`) panics when `/proc` is unreadable and
//! repeats the whole `/proc/*/fd` walk for every call, so we use its netlink dump without pids
//! and find owners ourselves, tolerating processes that vanish mid-walk.

use std::collections::HashMap;

use netstat2::{AddressFamilyFlags, ProtocolFlags, ProtocolSocketInfo};
use portscope_shared::{Proto, SocketState};
use procfs::process::Process;

use super::netstat::tcp_state;

use super::{
    FdError, InsideError, Platform, ProcessStat, RawProcess, RawSocket, ReadError, SocketList,
};
use crate::ports::{self, PortSettings};

/// The Linux implementation of [`Platform`].
#[derive(Debug, Default)]
pub struct System {
    /// uid → user name; users rarely change while the agent runs.
    users: HashMap<u32, Option<String>>,
    /// Single connection lookups, opened on the first.
    lookup: Option<super::diag::Lookup>,
    /// The last dump was read from /proc (no inet sock_diag here): a single lookup would find
    /// nothing and call every connection gone.
    no_sock_diag: bool,
}

impl System {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Environment variable that makes the agent count a process's descriptors by listing
/// `/proc/<pid>/fd` (`PORTSCOPE_FD_COUNT=list`), as it must on kernels before 6.2: the tests use
/// it to run that path on a newer kernel.
pub const FD_COUNT_ENV: &str = "PORTSCOPE_FD_COUNT";

fn count_by_listing() -> bool {
    static LISTING: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LISTING.get_or_init(|| std::env::var(FD_COUNT_ENV).is_ok_and(|v| v == "list"))
}

/// Environment variable that makes the agent read sockets from `/proc/net/{tcp,tcp6,udp,udp6}`
/// instead of netlink `sock_diag` (for kernels or sandboxes without it; slower).
pub const SOCKETS_FROM_ENV: &str = "PORTSCOPE_SOCKETS_FROM";

impl Platform for System {
    fn shares_our_files(&mut self, pid: u32) -> bool {
        static OURS: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
        let ours = OURS.get_or_init(|| std::fs::read_link("/proc/self/ns/mnt").ok());
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
        // Unreadable (another user's, without root): judged by what can be read, as before.
        theirs.is_none() || theirs == *ours
    }

    fn connection(
        &mut self,
        local: std::net::SocketAddr,
        remote: std::net::SocketAddr,
    ) -> Result<Option<RawSocket>, ReadError> {
        if self.no_sock_diag || std::env::var(SOCKETS_FROM_ENV).is_ok_and(|v| v == "proc") {
            return Err(ReadError::NoSingleLookup);
        }
        let lookup = match &mut self.lookup {
            Some(lookup) => lookup,
            empty => empty.insert(super::diag::Lookup::open().map_err(ReadError::Lookup)?),
        };
        let found = lookup.connection(local, remote);
        if found.is_err() {
            // Opened again next time, in case the socket itself is what failed.
            self.lookup = None;
        }
        found.map_err(ReadError::Lookup)
    }

    fn sockets(&mut self) -> Result<SocketList, ReadError> {
        if std::env::var(SOCKETS_FROM_ENV).is_ok_and(|v| v == "proc") {
            return sockets_from_proc();
        }
        let af = AddressFamilyFlags::IPV4 | AddressFamilyFlags::IPV6;
        let proto = ProtocolFlags::TCP | ProtocolFlags::UDP;
        let iter = match netstat2::iterate_sockets_info_without_pids(af, proto) {
            Ok(iter) => {
                self.no_sock_diag = false;
                iter
            }
            Err(e) => {
                self.no_sock_diag = true;
                // No sock_diag (an old kernel, a sandbox): the /proc tables say the same, slower.
                let mut list = sockets_from_proc()?;
                list.errors.insert(
                    0,
                    format!("netlink sock_diag is unavailable ({e}); sockets were read from /proc/net instead"),
                );
                return Ok(list);
            }
        };
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

    fn pids(&mut self) -> Result<Vec<u32>, ReadError> {
        let dir = std::fs::read_dir("/proc")?;
        Ok(dir
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
            .collect())
    }

    fn fd_count(&mut self, pid: u32) -> Option<usize> {
        let dir = format!("/proc/{pid}/fd");
        // Linux 6.2+ reports the number of open descriptors as the size of /proc/<pid>/fd.
        if !count_by_listing() {
            let size = std::fs::metadata(&dir).ok()?.len();
            if size > 0 {
                return usize::try_from(size).ok();
            }
        }
        // Older kernels report 0 (as does a process with no descriptors): count the entries.
        // That is one getdents, without the readlink per descriptor that a walk costs, and it
        // keeps owner changes (a descriptor passed, accepted or closed) visible on the next tick.
        std::fs::read_dir(&dir).ok().map(Iterator::count)
    }

    fn socket_inodes(&mut self, pid: u32) -> Result<Vec<u64>, FdError> {
        let dir = format!("/proc/{pid}/fd");
        let entries = std::fs::read_dir(&dir).map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => FdError::Unreadable,
            // NotFound, or ESRCH from a process exiting right now.
            _ => FdError::Gone,
        })?;
        let mut inodes = Vec::new();
        for entry in entries.flatten() {
            // A descriptor closed since the listing has no link any more.
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            if let Some(inode) = socket_inode(target.as_os_str().as_encoded_bytes()) {
                inodes.push(inode);
            }
        }
        Ok(inodes)
    }

    fn process(&mut self, pid: u32) -> Option<RawProcess> {
        let process = Process::new(i32::try_from(pid).ok()?).ok()?;
        // stat is the one read we need; a process that vanished here is skipped.
        let stat = to_stat(process.stat().ok()?);
        let uid = process.uid().ok();
        Some(RawProcess {
            pid,
            ppid: stat.ppid,
            name: stat.name,
            exe: process.exe().ok().map(|p| p.display().to_string()),
            cmdline: process.cmdline().unwrap_or_default(),
            uid,
            user: uid.and_then(|uid| self.user_name(uid)),
            start_time: stat.start_time,
            start_ms: stat.start_ms,
            session: stat.session,
            pgrp: stat.pgrp,
            state: stat.state,
            cwd: process.cwd().ok().map(|p| p.display().to_string()),
            project: None,
        })
    }

    fn stat(&mut self, pid: u32) -> Option<ProcessStat> {
        let process = Process::new(i32::try_from(pid).ok()?).ok()?;
        Some(to_stat(process.stat().ok()?))
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

/// The inode in a descriptor link's target `socket:[12345]`.
fn socket_inode(target: &[u8]) -> Option<u64> {
    let digits = target.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The boot time, read once for the whole process. The kernel's `btime` moves by a second
/// between reads (and when the clock is stepped), and procfs caches it per thread: start
/// times computed on two threads could then differ, and a running process look like another
/// one given the same pid.
fn boot_time() -> Option<u64> {
    static BOOT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *BOOT.get_or_init(|| procfs::boot_time_secs().ok())
}

/// The boot time in ms since the epoch, to the millisecond: the real-time clock less the time
/// since boot (`CLOCK_BOOTTIME`, the clock processes' start ticks count on), read once. `btime`
/// is whole seconds, which made a process that ran 2.0 s read as 4 s.
fn boot_ms() -> Option<u64> {
    static BOOT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *BOOT.get_or_init(|| {
        let since_boot = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        let since_boot = std::time::Duration::new(
            u64::try_from(since_boot.tv_sec).ok()?,
            u32::try_from(since_boot.tv_nsec).ok()?,
        );
        u64::try_from(now.checked_sub(since_boot)?.as_millis()).ok()
    })
}

/// A process's start time as `to_stat` reads it (seconds, then ms since the epoch), from the
/// kernel's `start_boottime` in ns (what the BPF probes read): the same clock ticks `/proc`
/// counts, so a kernel event's owner and a scan's process compare equal.
pub(crate) fn start_from_boottime(ns: u64) -> (Option<u64>, Option<u64>) {
    let hz = procfs::ticks_per_second().max(1);
    let ticks = ns / (1_000_000_000 / hz);
    (
        boot_time().map(|boot| boot + ticks / hz),
        boot_ms().map(|boot| boot + ticks * 1000 / hz),
    )
}

fn to_stat(stat: procfs::process::Stat) -> ProcessStat {
    ProcessStat {
        ppid: u32::try_from(stat.ppid).ok().filter(|&p| p != 0),
        start_time: boot_time().map(|boot| boot + stat.starttime / procfs::ticks_per_second()),
        start_ms: boot_ms().map(|boot| boot + stat.starttime * 1000 / procfs::ticks_per_second()),
        session: u32::try_from(stat.session).ok().filter(|&s| s != 0),
        pgrp: u32::try_from(stat.pgrp).ok().filter(|&g| g != 0),
        state: Some(stat.state),
        name: stat.comm,
    }
}

/// Environment variable glibc's malloc reads at start: the most arenas (per-thread heaps) it
/// creates.
const MALLOC_ARENA_MAX: &str = "MALLOC_ARENA_MAX";

/// glibc's malloc: allocations from this size up are their own mappings, given back to the
/// system when freed, and free memory at the top of the heap past it is given back too. Both
/// fixed (glibc otherwise raises them after each large free, and a scan's and a snapshot's
/// large buffers then stay in the heap): at 21 000 sockets the agent measured 45 MiB resident
/// between scans with glibc's defaults and 33.5 MiB with these (#22).
const MALLOC_THRESHOLDS: [(&str, &str); 2] = [
    ("MALLOC_MMAP_THRESHOLD_", "131072"),
    ("MALLOC_TRIM_THRESHOLD_", "131072"),
];

/// Makes glibc's malloc use a single arena, by running this program again in place (`exec`: same
/// pid, same arguments and descriptors) with `MALLOC_ARENA_MAX=1` (and [`MALLOC_THRESHOLDS`]),
/// unless it is set already.
///
/// With one arena per thread, memory freed after each scan stays spread over several heaps: the
/// agent holding 21 000 sockets measured 41 MiB resident with the default and 34 MiB with one
/// arena (`cargo xtask bench`), at no measurable cost in time (one thread scans at a time).
/// glibc reads the variable only when the process starts, and setting it through `mallopt`
/// would need `unsafe`, which this workspace forbids. Where the re-run fails (the binary was
/// deleted), the agent goes on as it is.
pub fn use_one_malloc_arena() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(MALLOC_ARENA_MAX).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    // `exec` returns only on failure.
    let mut again = std::process::Command::new(&exe);
    again.arg0(argv0).args(args).env(MALLOC_ARENA_MAX, "1");
    for (name, value) in MALLOC_THRESHOLDS {
        if std::env::var_os(name).is_none() {
            again.env(name, value);
        }
    }
    let _ = again.exec();
}

/// The kernel's port ranges and defaults, from `/proc/sys/net`; defaults where unreadable.
pub fn port_settings() -> PortSettings {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let defaults = PortSettings::default();
    PortSettings {
        ephemeral: read("/proc/sys/net/ipv4/ip_local_port_range")
            .and_then(|t| ports::parse_range(&t)),
        reserved: read("/proc/sys/net/ipv4/ip_local_reserved_ports")
            .map(|t| ports::parse_reserved(&t))
            .unwrap_or_default(),
        unprivileged_start: read("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(defaults.unprivileged_start),
        bindv6only: read("/proc/sys/net/ipv6/bindv6only").is_some_and(|t| t.trim() == "1"),
    }
}

/// Whether this process may bind privileged ports: root, or `CAP_NET_BIND_SERVICE` in its
/// effective set.
pub fn can_bind_privileged() -> bool {
    const CAP_NET_BIND_SERVICE: u64 = 10;
    Process::myself()
        .and_then(|p| p.status())
        .is_ok_and(|s| s.euid == 0 || s.capeff & (1 << CAP_NET_BIND_SERVICE) != 0)
}

/// The TCP ports listening in the network namespace of process `pid` (a container's), from
/// its `/proc/<pid>/net/tcp{,6}`: what listens inside, without sending anything.
pub fn listening_ports_in(pid: u32) -> Result<Vec<u16>, InsideError> {
    let process = i32::try_from(pid)
        .ok()
        .and_then(|p| Process::new(p).ok())
        .ok_or(InsideError::Gone(pid))?;
    let mut ports = Vec::new();
    for table in [process.tcp(), process.tcp6()] {
        let entries = table.map_err(|e| InsideError::Unreadable {
            pid,
            reason: e.to_string(),
        })?;
        ports.extend(
            entries
                .into_iter()
                .filter(|e| e.state == procfs::net::TcpState::Listen)
                .map(|e| e.local_address.port()),
        );
    }
    ports.sort_unstable();
    ports.dedup();
    Ok(ports)
}

/// Listening TCP sockets' accept queues: inode → connections waiting to be `accept`ed.
pub fn accept_queues() -> HashMap<u64, u32> {
    [procfs::net::tcp(), procfs::net::tcp6()]
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.state == procfs::net::TcpState::Listen)
        .map(|e| (e.inode, e.rx_queue))
        .collect()
}

/// The addresses of this machine's interfaces (loopback included).
pub fn local_addresses() -> Vec<std::net::IpAddr> {
    if_addrs::get_if_addrs()
        .map(|ifs| ifs.iter().map(|i| i.ip()).collect())
        .unwrap_or_default()
}

/// Every process in a process group.
pub fn group_members(pgrp: u32) -> Vec<u32> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    all.flatten()
        .filter_map(|p| p.stat().ok())
        .filter(|stat| u32::try_from(stat.pgrp).ok() == Some(pgrp))
        .filter_map(|stat| u32::try_from(stat.pid).ok())
        .collect()
}

/// Whether a process still runs: it exists and is not a zombie waiting for its parent.
pub fn is_running(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    Process::new(pid)
        .and_then(|p| p.stat())
        .is_ok_and(|stat| stat.state != 'Z' && stat.state != 'X')
}

/// The machine's host name.
/// The first uid of a person's account: `UID_MIN` of `/etc/login.defs`, 1000 when it says
/// nothing. Below it are system accounts, which run daemons.
pub fn first_user_uid() -> u32 {
    std::fs::read_to_string("/etc/login.defs")
        .ok()
        .and_then(|text| uid_min(&text))
        .unwrap_or(1000)
}

/// `UID_MIN` of a login.defs text.
fn uid_min(text: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next()? == "UID_MIN").then_some(())?;
        words.next()?.parse().ok()
    })
}

/// The uid of the user named `name` (for `DOAS_USER`).
pub fn uid_of_user(name: &str) -> Option<u32> {
    uzers::get_user_by_name(name).map(|u| u.uid())
}

/// The mount point of the file system `path` is on, from this process's mount table (read
/// without touching that file system, so a hung mount answers too); the longest that holds it.
pub fn mount_point_of(path: &std::path::Path) -> Option<std::path::PathBuf> {
    let mounts = procfs::process::Process::myself().ok()?.mountinfo().ok()?;
    mounts
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|m| path.starts_with(m))
        .max_by_key(|m| m.components().count())
}

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

/// Every socket from `/proc/net/{tcp,tcp6,udp,udp6}`. A table that cannot be read is an error
/// entry; all four unreadable is an error.
fn sockets_from_proc() -> Result<SocketList, ReadError> {
    let mut list = SocketList::default();
    let mut read = 0;
    for (name, table) in [("tcp", procfs::net::tcp()), ("tcp6", procfs::net::tcp6())] {
        match table {
            Ok(entries) => {
                read += 1;
                list.sockets.extend(entries.into_iter().map(|e| {
                    let state = proc_tcp_state(&e.state);
                    RawSocket {
                        proto: Proto::Tcp,
                        local_addr: e.local_address.ip(),
                        local_port: e.local_address.port(),
                        remote: Some((e.remote_address.ip(), e.remote_address.port()))
                            .filter(|(addr, port)| *port != 0 || !addr.is_unspecified()),
                        state,
                        inode: e.inode,
                        uid: (state != SocketState::TimeWait).then_some(e.uid),
                    }
                }));
            }
            Err(e) => list
                .errors
                .push(format!("cannot read /proc/net/{name}: {e}")),
        }
    }
    for (name, table) in [("udp", procfs::net::udp()), ("udp6", procfs::net::udp6())] {
        match table {
            Ok(entries) => {
                read += 1;
                list.sockets.extend(entries.into_iter().map(|e| {
                    let connected = e.state == procfs::net::UdpState::Established;
                    RawSocket {
                        proto: Proto::Udp,
                        local_addr: e.local_address.ip(),
                        local_port: e.local_address.port(),
                        remote: connected.then(|| (e.remote_address.ip(), e.remote_address.port())),
                        state: if connected {
                            SocketState::Established
                        } else {
                            SocketState::Unconn
                        },
                        inode: e.inode,
                        uid: Some(e.uid),
                    }
                }));
            }
            Err(e) => list
                .errors
                .push(format!("cannot read /proc/net/{name}: {e}")),
        }
    }
    if read == 0 {
        return Err(ReadError::NoSocketTable(list.errors.join("; ")));
    }
    Ok(list)
}

fn proc_tcp_state(state: &procfs::net::TcpState) -> SocketState {
    use procfs::net::TcpState as T;
    match state {
        T::Established => SocketState::Established,
        T::SynSent => SocketState::SynSent,
        T::SynRecv | T::NewSynRecv => SocketState::SynRecv,
        T::FinWait1 => SocketState::FinWait1,
        T::FinWait2 => SocketState::FinWait2,
        T::TimeWait => SocketState::TimeWait,
        T::Close => SocketState::Close,
        T::CloseWait => SocketState::CloseWait,
        T::LastAck => SocketState::LastAck,
        T::Listen => SocketState::Listen,
        T::Closing => SocketState::Closing,
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

#[cfg(test)]
mod tests {
    #[test]
    fn uid_min_is_read_from_login_defs_and_comments_are_not() {
        let text = "# UID_MIN 5\n#\nMAIL_DIR /var/mail\nUID_MIN\t\t\t 1000\nUID_MAX 60000\n";
        assert_eq!(super::uid_min(text), Some(1000));
        assert_eq!(super::uid_min("UID_MIN  500\n"), Some(500));
        assert_eq!(super::uid_min("UID_MAX 60000\n"), None);
    }
}
