//! Kernel events (#22): what the kernel tells as it happens — a listener opening or closing, a
//! TCP socket changing state, a refused connect, a failed or successful `bind()` — each with
//! the process it happened in (pid, command name, start time, read in the kernel, since a
//! short-lived process may be gone before `/proc` is read).
//!
//! On Linux the source is a set of BPF programs on tracepoints (`portscope.bpf.c`, compiled by
//! clang in `build.rs`, loaded with aya in `bpf.rs`); everywhere else, and on a Linux that
//! refuses them (no root or `CAP_BPF` + `CAP_PERFMON`, an old kernel, a container without BPF, a
//! build without clang), [`start`] says why with [`Unavailable`] and the agent polls.
//!
//! The model above treats these as hints, never as the whole truth: each change wakes a scan,
//! a periodic full scan reconciles what tracepoints do not show (UDP sockets closing,
//! descriptors passed between processes), and events the ring buffer had no room for are
//! counted ([`Counters`]) and followed by a full scan.

#[cfg(all(target_os = "linux", portscope_bpf))]
mod bpf;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use portscope_shared::Proto;

/// What the kernel reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// A TCP socket started listening (`listen()`, in the caller's context).
    Listen,
    /// A listening TCP socket closed.
    ListenClosed,
    /// A connect was answered with a reset (`SYN_SENT` → `CLOSE` after a RST): the owner is
    /// the process that called `connect()`, `remote` where it tried.
    Refused,
    /// A `bind()` failed; `errno` says how (98 `EADDRINUSE`, 13 `EACCES`, 99
    /// `EADDRNOTAVAIL`), `local` is the address asked for.
    BindFailed,
    /// A `bind()` succeeded (UDP binds included, which no TCP tracepoint shows).
    Bound,
    /// Any other TCP state change (a connection opening, closing).
    Changed,
}

/// The process a change happened in, as the kernel saw it, completed from `/proc` while it
/// still ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelOwner {
    pub pid: u32,
    /// The kernel's command name (`comm`, at most 15 bytes).
    pub comm: String,
    pub uid: u32,
    /// The user's name, where `/proc` still had the process.
    pub user: Option<String>,
    /// Seconds since the epoch, as [`crate::os::ProcessStat::start_time`] reads it.
    pub start_time: Option<u64>,
    /// Milliseconds since the epoch, as [`crate::os::ProcessStat::start_ms`] reads it.
    pub start_ms: Option<u64>,
    /// Read from `/proc` when the event arrived; empty when the process had gone.
    pub cmdline: Vec<String>,
    pub cwd: Option<String>,
    pub exe: Option<String>,
}

/// One change the kernel reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// When the agent read it (within milliseconds of when it happened).
    pub at: SystemTime,
    /// `None` for a bind on a socket whose type could not be read.
    pub proto: Option<Proto>,
    /// The socket's own end; for a bind, the address asked for.
    pub local: SocketAddr,
    /// The other end, for a connection or a refused connect.
    pub remote: Option<SocketAddr>,
    /// A failed bind's error number.
    pub errno: Option<i32>,
    /// The socket's inode, for listeners: the scan's socket id names it too.
    pub inode: Option<u64>,
    /// The kernel socket's address, which tells one socket's changes apart from another's
    /// on the same ends while it lives (never shown).
    pub socket: u64,
    /// The process it happened in, for listen, listen-closed, refused and bind changes (other
    /// state changes run in whatever context the packet arrived in).
    pub owner: Option<KernelOwner>,
}

/// What was lost on the way: changes the ring buffer had no room for (counted in the kernel)
/// and changes the agent's queue refused. Either means the model may have missed something
/// until the next full scan, which the agent runs at once.
#[derive(Debug, Default)]
pub struct Counters {
    pub dropped_in_kernel: AtomicU64,
    pub dropped_in_queue: AtomicU64,
    pub received: AtomicU64,
}

impl Counters {
    /// Changes lost so far, both ways.
    pub fn lost(&self) -> u64 {
        self.dropped_in_kernel.load(Ordering::Relaxed)
            + self.dropped_in_queue.load(Ordering::Relaxed)
    }
}

/// A running source of kernel changes: read `changes`; dropping it detaches the probes.
#[derive(Debug)]
pub struct Feed {
    pub changes: tokio::sync::mpsc::Receiver<Change>,
    pub counters: Arc<Counters>,
}

/// How many changes wait for the agent at most; more are dropped and counted.
pub const QUEUE: usize = 16_384;

/// Why there are no kernel events; the agent polls instead and logs this once.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("kernel events are Linux-only; polling")]
    Unsupported,
    #[error(
        "this portscope was built without kernel events (clang or libbpf-dev was missing at \
         build time: apt-get install clang libbpf-dev, then build again); polling"
    )]
    NotBuilt,
    #[error(
        "the kernel refused portscope's BPF probes ({0}): kernel events need root or \
         CAP_BPF and CAP_PERFMON, and a kernel with BTF (5.8 or later); polling"
    )]
    Refused(String),
    #[error("the BPF probe on tracepoint {tracepoint} could not attach ({error}); polling")]
    Attach { tracepoint: String, error: String },
}

/// Starts the kernel's event source, or says why there is none.
pub fn start() -> Result<Feed, Unavailable> {
    #[cfg(all(target_os = "linux", portscope_bpf))]
    {
        bpf::start()
    }
    #[cfg(all(target_os = "linux", not(portscope_bpf)))]
    {
        Err(Unavailable::NotBuilt)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(Unavailable::Unsupported)
    }
}

/// The words for a failed bind's or connect's error number (Linux's numbers).
pub fn errno_text(errno: i32) -> String {
    match errno {
        98 => "EADDRINUSE (address already in use)".into(),
        13 => "EACCES (permission denied)".into(),
        99 => "EADDRNOTAVAIL (address not available)".into(),
        22 => "EINVAL (invalid argument: the socket is bound already)".into(),
        111 => "ECONNREFUSED (connection refused)".into(),
        n => format!("errno {n}"),
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The next change of `kind` on `port` this process made, within 5 s.
    fn next(feed: &mut Feed, kind: ChangeKind, port: u16, remote: bool) -> Change {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(
                !left.is_zero(),
                "no {kind:?} change on port {port} within 5 s"
            );
            let Ok(change) = feed.changes.try_recv() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            let on = if remote {
                change.remote.map(|r| r.port())
            } else {
                Some(change.local.port())
            };
            if change.kind == kind && on == Some(port) {
                return change;
            }
        }
    }

    /// The probes against this very process: a listener opened and closed, a bind refused, a
    /// connect refused — each named with our pid, start time and command line.
    #[test]
    fn the_kernel_names_our_listen_bind_failure_and_refused_connect() {
        let mut feed = match start() {
            Ok(feed) => feed,
            Err(e) => panic!(
                "kernel events must work on this machine (run the tests as root, with clang and \
                 libbpf-dev installed when building): {e}"
            ),
        };
        let me = std::process::id();
        let my_start = crate::os::System::new();
        let mine = {
            use crate::os::Platform;
            let mut s = my_start;
            s.stat(me).expect("our own stat")
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let opened = next(&mut feed, ChangeKind::Listen, port, false);
        let owner = opened.owner.as_ref().expect("a listen names its process");
        assert_eq!(owner.pid, me);
        assert_eq!(owner.start_time, mine.start_time);
        assert_eq!(owner.start_ms, mine.start_ms);
        assert!(!owner.cmdline.is_empty(), "{owner:?}");
        assert!(opened.inode.is_some_and(|i| i > 0), "{opened:?}");

        let taken = std::net::TcpListener::bind(("127.0.0.1", port));
        assert!(taken.is_err());
        let failed = next(&mut feed, ChangeKind::BindFailed, port, false);
        assert_eq!(failed.errno, Some(98));
        assert_eq!(failed.proto, Some(Proto::Tcp));
        assert_eq!(failed.owner.as_ref().map(|o| o.pid), Some(me));

        drop(listener);
        let closed = next(&mut feed, ChangeKind::ListenClosed, port, false);
        assert_eq!(closed.socket, opened.socket);

        let refused = std::net::TcpStream::connect(("127.0.0.1", port));
        assert!(refused.is_err(), "nothing listens any more");
        let change = next(&mut feed, ChangeKind::Refused, port, true);
        assert_eq!(change.owner.as_ref().map(|o| o.pid), Some(me));
        assert_eq!(feed.counters.lost(), 0);
    }
}
