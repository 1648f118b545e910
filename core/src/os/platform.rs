//! The seam's contract: what every platform's `System` answers (sockets, processes, their
//! descriptors), as plain facts the collector turns into a model. Nothing here knows of the
//! collector, containers or projects: the layers above read these facts.

use std::net::{IpAddr, SocketAddr};

use portscope_shared::{Proto, SocketState};

/// What the collector needs from the operating system; implemented per platform in this
/// folder's files (`System`), and by fakes in tests.
pub trait Platform: Send + 'static {
    /// Every TCP and UDP socket, IPv4 and IPv6, in every state. `Err` when nothing could be read.
    fn sockets(&mut self) -> Result<SocketList, ReadError>;
    /// Every running process. `Err` when the list cannot be read.
    fn pids(&mut self) -> Result<Vec<u32>, ReadError>;
    /// How many descriptors a process has open, where the platform tells it cheaply (Linux 6.2+);
    /// `None` otherwise. A change makes [`OwnerMap`](crate::owners::OwnerMap) read its sockets.
    fn fd_count(&mut self, pid: u32) -> Option<usize>;
    /// The inodes of the sockets a process holds.
    fn socket_inodes(&mut self, pid: u32) -> Result<Vec<u64>, FdError>;
    /// Details of one process; `None` when it exited or cannot be read.
    fn process(&mut self, pid: u32) -> Option<RawProcess>;
    /// The cheap, changing part of a process's details (one read); `None` when it exited.
    fn stat(&mut self, pid: u32) -> Option<ProcessStat>;
    /// The agent's effective user id, where the platform has one.
    fn euid(&self) -> Option<u32>;
    /// Working directory of a process; `None` when it exited or cannot be read.
    fn cwd(&mut self, pid: u32) -> Option<String>;
    /// Whether a process sees the same files as the agent (its paths mean ours): a process in
    /// a container has a working directory in its own mounts.
    fn shares_our_files(&mut self, _pid: u32) -> bool {
        true
    }
    /// One TCP connection read again by its two ends, as [`Platform::sockets`] would show it
    /// (a connection the kernel reported changing, #22); `Ok(None)` when no connection has
    /// those ends now. `Err` where the platform cannot read one alone: the caller reads them
    /// all instead.
    fn connection(
        &mut self,
        _local: SocketAddr,
        _remote: SocketAddr,
    ) -> Result<Option<RawSocket>, ReadError> {
        Err(ReadError::NoSingleLookup)
    }
}

/// Why a platform could not read a whole list: no socket, or no process, could be listed. (One
/// unreadable entry is a line in [`SocketList::errors`], not this.)
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Linux: neither netlink `sock_diag` nor `/proc/net` could be read (each one's reason).
    #[error("cannot read sockets: neither netlink sock_diag nor /proc/net works ({0})")]
    NoSocketTable(String),
    /// Windows and macOS: the system's socket tables refused (netstat2's reason).
    #[error("cannot read the socket tables: {0}")]
    SocketTables(String),
    /// One connection cannot be read alone here ([`Platform::connection`]).
    #[error("this system cannot read one connection alone")]
    NoSingleLookup,
    /// Linux: a single `sock_diag` lookup failed.
    #[error("cannot read a connection from netlink sock_diag: {0}")]
    Lookup(std::io::Error),
    /// The process list (`/proc`) could not be read.
    #[error("cannot list /proc: {0}")]
    ProcessList(#[from] std::io::Error),
}

/// Why [`listening_ports_in`](super::listening_ports_in) cannot tell what listens inside a
/// container.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InsideError {
    /// The container's process exited.
    #[error("process {0} is gone")]
    Gone(u32),
    /// Its network namespace's socket tables cannot be read (another user's, without root).
    #[error(
        "cannot read the sockets inside (/proc/{pid}/net/tcp: {reason}); run portscope as root"
    )]
    Unreadable { pid: u32, reason: String },
    /// Windows and macOS: containers run in Docker Desktop's virtual machine.
    #[error(
        "could not check what listens inside the container (pid {pid}): its network lives in \
         Docker Desktop's virtual machine, which portscope on {system} cannot read"
    )]
    InAVirtualMachine { pid: u32, system: &'static str },
}

/// A socket as the platform reports it, before it gets an identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawSocket {
    pub proto: Proto,
    pub local_addr: IpAddr,
    pub local_port: u16,
    /// `None` when not connected.
    pub remote: Option<(IpAddr, u16)>,
    pub state: SocketState,
    /// Kernel inode; 0 when the socket has no file (e.g. `TIME_WAIT`).
    pub inode: u64,
    pub uid: Option<u32>,
}

/// The result of [`Platform::sockets`].
#[derive(Debug, Default)]
pub struct SocketList {
    pub sockets: Vec<RawSocket>,
    /// Entries that could not be read; the scan is partial.
    pub errors: Vec<String>,
}

/// Why [`Platform::socket_inodes`] has no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdError {
    /// The process exited.
    Gone,
    /// Its descriptors cannot be read (another user's process while we are not root).
    #[cfg_attr(
        not(target_os = "linux"),
        allow(
            dead_code,
            reason = "elsewhere the system hands over each socket's pids"
        )
    )]
    Unreadable,
}

/// What [`Platform::stat`] reads: the fields of a process that may change while it runs, and
/// its start time, which tells a reused pid apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessStat {
    pub ppid: Option<u32>,
    pub name: String,
    pub start_time: Option<u64>,
    /// The start time in ms since the epoch, where the platform tells it finer.
    pub start_ms: Option<u64>,
    pub session: Option<u32>,
    pub pgrp: Option<u32>,
    pub state: Option<char>,
}

/// Process details as the platform reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawProcess {
    pub pid: u32,
    pub ppid: Option<u32>,
    pub name: String,
    pub exe: Option<String>,
    pub cmdline: Vec<String>,
    pub uid: Option<u32>,
    pub user: Option<String>,
    pub start_time: Option<u64>,
    /// The start time in ms since the epoch, where the platform tells it finer.
    pub start_ms: Option<u64>,
    /// Session id (the pid of the session leader), where the platform has sessions.
    pub session: Option<u32>,
    /// Process group id (what `kill --tree` signals).
    pub pgrp: Option<u32>,
    /// Scheduler state letter as `ps` shows it (`R`, `S`, `T` stopped, `Z` zombie, …).
    pub state: Option<char>,
    /// Working directory, read once when the process is first seen.
    pub cwd: Option<String>,
    /// Its project (its own working directory's, or its nearest ancestor's), found by the
    /// collector when the process is first seen.
    pub project: Option<portscope_shared::Project>,
}

impl RawProcess {
    /// Takes the changing fields from a fresh `stat`.
    pub fn update(&mut self, stat: ProcessStat) {
        self.ppid = stat.ppid;
        self.name = stat.name;
        self.session = stat.session;
        self.pgrp = stat.pgrp;
        self.state = stat.state;
    }
}
