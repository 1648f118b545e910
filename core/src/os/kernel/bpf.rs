//! The Linux source of kernel changes: loads `portscope.bpf.c` (compiled by `build.rs`) with
//! aya, attaches its tracepoints, and reads its ring buffer on a thread of its own, which
//! hands each change to the agent through a bounded queue.
//!
//! aya rather than libbpf-rs: a loader in Rust with no C library to build or link (libbpf-rs
//! vendors libbpf, libelf and zlib, all compiled from C on every fresh machine), and the probes
//! stay plain C compiled by clang, so no nightly toolchain either.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use aya::Ebpf;
use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::TracePoint;
use portscope_shared::Proto;

use super::{Change, ChangeKind, Counters, Feed, KernelOwner, QUEUE, Unavailable};
use crate::os::Platform;

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/portscope.bpf.o"));

/// The probes: program name in the object, tracepoint category and name.
const PROBES: [(&str, &str, &str); 4] = [
    ("set_state", "sock", "inet_sock_set_state"),
    ("receive_reset", "tcp", "tcp_receive_reset"),
    ("enter_bind", "syscalls", "sys_enter_bind"),
    ("exit_bind", "syscalls", "sys_exit_bind"),
];

/// `struct event` of `portscope.bpf.c`, read field by field from its bytes (offsets as the C
/// compiler lays it out; the C file asserts its size).
struct RawEvent {
    kind: u8,
    family: u8,
    protocol: u8,
    sport: u16,
    dport: u16,
    err: i32,
    pid: u32,
    uid: u32,
    /// The network namespace's inode (the socket's, or the binding process's).
    netns: u32,
    start_ns: u64,
    skaddr: u64,
    inode: u64,
    saddr: [u8; 16],
    daddr: [u8; 16],
    comm: [u8; 16],
}

/// `sizeof(struct event)`.
const EVENT_SIZE: usize = 96;

impl RawEvent {
    fn parse(b: &[u8]) -> Option<Self> {
        let b: &[u8; EVENT_SIZE] = b.get(..EVENT_SIZE)?.try_into().ok()?;
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut w = [0; 8];
            w.copy_from_slice(&b[i..i + 8]);
            u64::from_ne_bytes(w)
        };
        let bytes16 = |i: usize| {
            let mut w = [0; 16];
            w.copy_from_slice(&b[i..i + 16]);
            w
        };
        Some(Self {
            kind: b[0],
            family: b[1],
            protocol: b[2],
            sport: u16_at(4),
            dport: u16_at(6),
            err: i32::from_ne_bytes(u32_at(8).to_ne_bytes()),
            pid: u32_at(12),
            uid: u32_at(16),
            netns: u32_at(20),
            start_ns: u64_at(24),
            skaddr: u64_at(32),
            inode: u64_at(40),
            saddr: bytes16(48),
            daddr: bytes16(64),
            comm: bytes16(80),
        })
    }
}

pub(super) fn start() -> Result<Feed, Unavailable> {
    mount_tracefs();
    let mut ebpf = Ebpf::load(OBJECT).map_err(|e| Unavailable::Refused(chain(&e)))?;
    for (name, category, tracepoint) in PROBES {
        let program: &mut TracePoint = ebpf
            .program_mut(name)
            .ok_or_else(|| Unavailable::Refused(format!("no program {name} in the object")))?
            .try_into()
            .map_err(|e| Unavailable::Refused(chain(&e)))?;
        program
            .load()
            .map_err(|e| Unavailable::Refused(chain(&e)))?;
        program
            .attach(category, tracepoint)
            .map_err(|e| Unavailable::Attach {
                tracepoint: format!("{category}/{tracepoint}"),
                error: chain(&e),
            })?;
    }
    let ring = ebpf
        .take_map("EVENTS")
        .ok_or_else(|| Unavailable::Refused("no EVENTS map in the object".into()))?;
    let ring = RingBuf::try_from(ring).map_err(|e| Unavailable::Refused(chain(&e)))?;
    let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
    let counters = Arc::new(Counters::default());
    let shared = counters.clone();
    std::thread::Builder::new()
        .name("portscope-kernel".into())
        .spawn(move || read(ebpf, ring, tx, &shared))
        .map_err(|e| Unavailable::Refused(format!("no thread for the ring buffer: {e}")))?;
    Ok(Feed {
        changes: rx,
        counters,
    })
}

/// Tracepoints are attached through tracefs; a system that has not mounted it yet (a fresh
/// container, a minimal boot) gets it mounted where the kernel expects it. Failing here is
/// not final: attaching says what went wrong.
fn mount_tracefs() {
    let dir = std::path::Path::new("/sys/kernel/tracing");
    if dir.join("events").exists() || !dir.exists() {
        return;
    }
    let _ = rustix::mount::mount(
        "tracefs",
        dir,
        "tracefs",
        rustix::mount::MountFlags::empty(),
        None,
    );
}

/// An error with its sources, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The ring buffer's reader: runs until the agent drops the feed's receiver, then detaches the
/// probes (dropping `ebpf`).
fn read(
    ebpf: Ebpf,
    mut ring: RingBuf<MapData>,
    tx: tokio::sync::mpsc::Sender<Change>,
    counters: &Counters,
) {
    let dropped: Option<PerCpuArray<&MapData, u64>> = ebpf
        .map("DROPPED")
        .and_then(|m| PerCpuArray::try_from(m).ok());
    let mut owners = Owners::default();
    let mut last_count = Instant::now();
    // The tracepoints fire for every network namespace; the agent sees its own (as the
    // scan's sock_diag does). Unknown: keep all.
    let ours = own_netns();
    loop {
        let fd = ring.as_fd();
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        let timeout = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 200_000_000,
        };
        let _ = rustix::event::poll(&mut fds, Some(&timeout));
        while let Some(item) = ring.next() {
            let raw = RawEvent::parse(&item)
                .filter(|raw| ours.is_none_or(|ours| raw.netns == 0 || raw.netns == ours));
            drop(item);
            let Some(change) = raw.and_then(|raw| change_of(&raw, &mut owners)) else {
                continue;
            };
            counters.received.fetch_add(1, Ordering::Relaxed);
            match tx.try_send(change) {
                Ok(()) => {}
                Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                    counters.dropped_in_queue.fetch_add(1, Ordering::Relaxed);
                }
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
        if tx.is_closed() {
            return;
        }
        if last_count.elapsed() >= Duration::from_millis(200) {
            last_count = Instant::now();
            if let Some(sum) = dropped
                .as_ref()
                .and_then(|d| d.get(&0, 0).ok())
                .map(|values| values.iter().sum::<u64>())
            {
                counters.dropped_in_kernel.store(sum, Ordering::Relaxed);
            }
        }
    }
}

/// This process's network namespace (the inode of `/proc/self/ns/net`).
fn own_netns() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata("/proc/self/ns/net").ok()?.ino();
    u32::try_from(ino).ok()
}

fn change_of(raw: &RawEvent, owners: &mut Owners) -> Option<Change> {
    let kind = match raw.kind {
        1 => ChangeKind::Listen,
        2 => ChangeKind::ListenClosed,
        3 => ChangeKind::Refused,
        4 => ChangeKind::BindFailed,
        5 => ChangeKind::Changed,
        6 => ChangeKind::Bound,
        _ => return None,
    };
    let addr = |bytes: &[u8; 16]| -> Option<IpAddr> {
        match raw.family {
            2 => Some(IpAddr::V4(Ipv4Addr::new(
                bytes[0], bytes[1], bytes[2], bytes[3],
            ))),
            10 => Some(IpAddr::V6(Ipv6Addr::from(*bytes))),
            _ => None,
        }
    };
    let binding = matches!(kind, ChangeKind::BindFailed | ChangeKind::Bound);
    let proto = if binding {
        // A bind's `protocol` is its socket's type.
        match raw.protocol {
            1 => Some(Proto::Tcp),
            2 => Some(Proto::Udp),
            _ => None,
        }
    } else {
        Some(Proto::Tcp)
    };
    let local = SocketAddr::new(addr(&raw.saddr)?, raw.sport);
    let remote = (!binding && raw.dport != 0)
        .then(|| addr(&raw.daddr).map(|a| SocketAddr::new(a, raw.dport)))
        .flatten();
    let owner = (raw.pid != 0 && kind != ChangeKind::Changed).then(|| owners.of(raw));
    Some(Change {
        kind,
        at: SystemTime::now(),
        proto,
        local,
        remote,
        errno: (kind == ChangeKind::BindFailed).then_some(raw.err),
        inode: (raw.inode != 0).then_some(raw.inode),
        socket: raw.skaddr,
        owner,
    })
}

/// The processes events happened in, completed from `/proc` once per process: a client
/// retrying in a loop is read once, not once per attempt.
#[derive(Default)]
struct Owners {
    system: Option<crate::os::System>,
    known: HashMap<(u32, u64), KernelOwner>,
}

/// Processes remembered at most; the map starts over past it.
const OWNERS_KEPT: usize = 1024;

impl Owners {
    fn of(&mut self, raw: &RawEvent) -> KernelOwner {
        let key = (raw.pid, raw.start_ns);
        if let Some(known) = self.known.get(&key) {
            return known.clone();
        }
        let (start_time, start_ms) = crate::os::linux::start_from_boottime(raw.start_ns);
        let comm_len = raw
            .comm
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(raw.comm.len());
        let mut owner = KernelOwner {
            pid: raw.pid,
            comm: String::from_utf8_lossy(&raw.comm[..comm_len]).into_owned(),
            uid: raw.uid,
            start_time,
            start_ms,
            ..KernelOwner::default()
        };
        let system = self.system.get_or_insert_with(crate::os::System::new);
        // Only the same process: not a later one given its pid.
        if let Some(process) = system
            .process(raw.pid)
            .filter(|p| p.start_ms.is_none() || p.start_ms == start_ms)
        {
            owner.cmdline = process.cmdline;
            owner.cwd = process.cwd;
            owner.exe = process.exe;
            owner.user = process.user;
        }
        if self.known.len() >= OWNERS_KEPT {
            self.known.clear();
        }
        self.known.insert(key, owner.clone());
        owner
    }
}
