//! One scan of the machine: sockets, their owners and the owners' details, turned into a
//! [`State`]. The OS is reached only through the [`Platform`] seam, so tests inject fakes.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use portscope_shared::{Family, Owner, OwnerStatus, Process, Proto, Socket, SocketState};

use crate::containers;
use crate::model::State;
use crate::os::{Platform, RawProcess, RawSocket, SocketList};
use crate::owners::OwnerMap;
use crate::ports;
use crate::projects::Finder;

mod connections;
pub use connections::{Connections, MAX_READ_ALONE};

/// What a layer above adds to each scan's sockets (the doctor's `Learned`, the health checks'
/// `Checks`): the collector knows nothing of them but this, so the core does not depend on
/// the layers that read it.
pub trait Annotate: Send + std::fmt::Debug {
    /// Adds what it knows to a fresh scan's sockets (by id), and forgets closed ones.
    fn annotate(&self, sockets: &mut Sockets);
}

/// A scan's sockets while it is built, in id order: one allocation, which glibc maps and
/// unmaps whole (it is larger than its mmap threshold), where a tree of small nodes left a
/// scan's worth of holes in the heap that stayed resident (#22: 9 MiB at 21 000 sockets).
#[derive(Debug, Default)]
pub struct Sockets(Vec<Socket>);

impl Sockets {
    /// The sockets in id order (sorted in place: no second buffer); of two with the same id
    /// (a dump that listed one twice), one.
    pub fn new(mut sockets: Vec<Socket>) -> Self {
        sockets.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        sockets.dedup_by(|a, b| a.id == b.id);
        Self(sockets)
    }

    fn find(&self, id: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|s| s.id.as_str().cmp(id))
    }

    pub fn contains_key(&self, id: &str) -> bool {
        self.find(id).is_ok()
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Socket> {
        let at = self.find(id).ok()?;
        self.0.get_mut(at)
    }

    pub fn values(&self) -> std::slice::Iter<'_, Socket> {
        self.0.iter()
    }

    pub fn values_mut(&mut self) -> std::slice::IterMut<'_, Socket> {
        self.0.iter_mut()
    }

    pub fn into_vec(self) -> Vec<Socket> {
        self.0
    }
}

/// How far up the process tree a process without a project of its own looks for one (a `node`
/// started by `npm run dev` in the repository).
const PROJECT_ANCESTORS: usize = 8;

/// How long a scan waits, in all, for the projects of the processes it sees first (counted
/// from its first lookup): a lookup not answered by then (a working directory on a slow or hung
/// mount) is asked again next scan, and the process shows without a project meanwhile. A
/// one-off scan (`ls`, a doctor's answer) has no next scan and waits longer; the agent's
/// refresher, whose next scan comes within a tick, waits [`LIVE_PROJECT_WAIT`].
const PROJECT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
pub const LIVE_PROJECT_WAIT: std::time::Duration = std::time::Duration::from_millis(250);
/// A one-off scan's second wait for the lookups still pending after its first.
const SETTLE_AGAIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Turns platform reads into a [`State`]. Kept between scans, it reads only what changed: socket
/// owners through [`OwnerMap`], and the full details of a process only when it first appears
/// (afterwards one `stat` read a tick; command line, executable and user are kept).
#[derive(Debug)]
pub struct Collector<P> {
    platform: P,
    owners: OwnerMap,
    /// Details of the processes in the last scan, by pid.
    processes: HashMap<u32, RawProcess>,
    /// What the layers above add to each scan's sockets, in order (the agent's: what the
    /// doctor heard from listeners, their last health checks; a one-off scan has none).
    annotators: Vec<Box<dyn Annotate>>,
    /// Each working directory's project, looked up off this thread.
    projects: Finder,
    /// The container engine's published ports (this machine's collector only: a fake
    /// platform has no engine to ask).
    containers: Option<containers::Cache>,
    /// How long a scan waits for its project lookups, and until when this one does (set by its
    /// first lookup).
    project_wait: std::time::Duration,
    project_deadline: Option<std::time::Instant>,
    /// A one-off scan (no next scan to ask again): lookups still pending after the wait get
    /// [`SETTLE_AGAIN`] more, once, all at once (those queued behind a slow one).
    settle_again: bool,
    /// Processes whose project lookup has not answered yet: asked again each scan.
    unsettled: std::collections::HashSet<u32>,
    /// [`Finder::generation`](crate::projects::Finder::generation) at the last scan; when it
    /// moves, every known process's project is looked up again in this scan.
    project_generation: u64,
    reproject: bool,
    /// Project lookups since [`Collector::take_project_lookups`]: how many, and their time.
    project_lookups: (u32, std::time::Duration),
}

impl<P: Platform> Collector<P> {
    /// A collector reading `platform` alone: no directory is in a project and no container
    /// engine is asked (what tests' fakes want); [`Collector::this_machine`] adds both.
    pub fn new(platform: P) -> Self {
        Self {
            platform,
            owners: OwnerMap::new(),
            processes: HashMap::new(),
            annotators: Vec::new(),
            projects: Finder::new(std::sync::Arc::new(crate::projects::NoFiles)),
            containers: None,
            project_wait: PROJECT_WAIT,
            project_deadline: None,
            settle_again: true,
            unsettled: Default::default(),
            project_generation: 0,
            reproject: false,
            project_lookups: Default::default(),
        }
    }

    /// Projects are found by `finder` (a test's own file system).
    pub fn with_projects(mut self, finder: Finder) -> Self {
        self.projects = finder;
        self
    }

    /// The agent's collector: each scan's sockets also carry what `annotator` adds (what the
    /// doctor heard from listeners, their health checks), after the collector's own labels.
    pub fn annotated_by(mut self, annotator: impl Annotate + 'static) -> Self {
        self.annotators.push(Box::new(annotator));
        self
    }

    /// The agent's collector: each scan waits [`LIVE_PROJECT_WAIT`] for its project lookups,
    /// and those not answered by then are asked again next tick.
    pub fn live_projects(mut self) -> Self {
        self.project_wait = LIVE_PROJECT_WAIT;
        self.settle_again = false;
        self
    }

    /// Reads the machine once. Never fails: what could not be read is listed in
    /// [`State::warnings`], and the rest is kept.
    pub fn scan(&mut self) -> State {
        self.scan_after(&State::default())
    }

    /// [`Collector::scan`] for a model that holds `previous`: a socket that has not changed
    /// keeps its allocation from it instead of a new one, so a scan that changes little
    /// allocates little (the agent's resident memory is its peak: a whole second copy of
    /// 20 000 sockets, freed after each scan, stays resident).
    pub fn scan_after(&mut self, previous: &State) -> State {
        let t0 = std::time::Instant::now();
        let mut warnings = Vec::new();
        self.project_deadline = None;
        let generation = self.projects.generation();
        self.reproject = generation != self.project_generation;
        self.project_generation = generation;
        let list = match self.platform.sockets() {
            Ok(list) => list,
            Err(e) => {
                warnings.push(e.to_string());
                SocketList::default()
            }
        };
        warnings.extend(list.errors);
        let t1 = std::time::Instant::now();
        let walk = self.owners.refresh(&mut self.platform, &list.sockets);
        let t2 = std::time::Instant::now();
        warnings.extend(self.owners.error().map(str::to_owned));
        let euid = self.platform.euid();
        let unreadable = self.owners.unreadable();
        if unreadable > 0 && euid == Some(0) {
            warnings.push(format!(
                "the open files of {unreadable} processes could not be read even as root (a \
                 container without CAP_SYS_PTRACE, or /proc mounted with hidepid): their sockets \
                 show no owner"
            ));
        }
        let seen_every_process = unreadable == 0 && self.owners.error().is_none();

        let mut sockets = Vec::with_capacity(list.sockets.len());
        let mut hidden = 0usize;
        for raw in list.sockets {
            let mut pids = self.owners.pids(raw.inode).to_vec();
            pids.sort_unstable();
            pids.dedup();
            let owner = owner_status(&raw, &pids, seen_every_process, euid);
            hidden += usize::from(owner == OwnerStatus::Hidden);
            sockets.push(to_wire(raw, pids, owner));
        }
        let mut sockets = Sockets::new(sockets);
        if hidden > 0 && euid != Some(0) {
            warnings.push(format!(
                "the owners of {hidden} sockets are hidden: they belong to other users' \
                 processes; run portscope as root (sudo) to see them"
            ));
        }

        let mut known = std::mem::take(&mut self.processes);
        let mut processes = BTreeMap::new();
        for socket in sockets.values() {
            for &pid in &socket.pids {
                if processes.contains_key(&pid) {
                    continue;
                }
                // A process that exited since the owner walk is left out; its sockets keep the pid.
                let Some(raw) = self.process_details(pid, known.remove(&pid)) else {
                    continue;
                };
                processes.insert(pid, to_wire_process(raw.clone()));
                self.processes.insert(pid, raw);
            }
        }
        self.unsettled.retain(|pid| processes.contains_key(pid));
        if self.settle_again && !self.unsettled.is_empty() {
            self.project_deadline = Some(std::time::Instant::now() + SETTLE_AGAIN);
            let pending: Vec<u32> = self.unsettled.iter().copied().collect();
            for pid in pending {
                let Some(mut raw) = self.processes.remove(&pid) else {
                    continue;
                };
                self.settle_project(&mut raw);
                if let Some(process) = processes.get_mut(&pid) {
                    process.project.clone_from(&raw.project);
                }
                self.processes.insert(pid, raw);
            }
        }
        for mount in self.projects.hung_mounts() {
            warnings.push(format!(
                "projects are not looked up under {}: a lookup there has not answered for {} s \
                 (a hung network or FUSE mount?); its processes show no project until it does",
                mount.display(),
                crate::projects::HUNG_AFTER.as_secs()
            ));
        }
        let t3 = std::time::Instant::now();
        let services = ports::Services::system();
        for socket in sockets.values_mut() {
            let owner = socket.pids.first().and_then(|pid| processes.get(pid));
            ports::annotate(socket, owner, services);
        }
        label_containers(
            self.containers.as_mut(),
            &mut sockets,
            &mut processes,
            &mut warnings,
        );
        for annotator in &self.annotators {
            annotator.annotate(&mut sockets);
        }
        cap_warnings(&mut warnings);
        tracing::debug!(
            sockets = ?(t1 - t0),
            owners = ?(t2 - t1),
            processes_walked = walk.walked,
            processes = walk.processes,
            build = ?(t3 - t2),
            annotate = ?t3.elapsed(),
            "scan phases"
        );
        State {
            seq: 0,
            sockets: sockets
                .into_vec()
                .into_iter()
                .map(|socket| match previous.sockets.get(&socket.id) {
                    Some(same) if **same == socket => (socket.id, same.clone()),
                    _ => (socket.id.clone(), std::sync::Arc::new(socket)),
                })
                .collect(),
            processes: processes.into_iter().collect(),
            warnings,
        }
    }
}

impl<P: Platform> Collector<P> {
    /// A listener the kernel just reported (#22), as the next scan will show it: owned by the
    /// process that called `listen()` — looked up once, now (this collector's cached details
    /// when it knows the process, else read; its project asked without waiting, the next scan
    /// completes it) — and labelled as a scan labels it (exposure, service, program; the
    /// annotators' knowledge is by socket id, and a new socket has none). `None` when the
    /// process is gone already.
    pub fn listener_now(
        &mut self,
        local: std::net::SocketAddr,
        inode: u64,
        pid: u32,
        uid: u32,
    ) -> Option<(Socket, Process)> {
        let raw = RawSocket {
            proto: Proto::Tcp,
            local_addr: local.ip(),
            local_port: local.port(),
            remote: None,
            state: SocketState::Listen,
            inode,
            uid: Some(uid),
        };
        let mut socket = to_wire(raw, vec![pid], OwnerStatus::Known);
        let process = self.details_now(pid)?;
        ports::annotate(&mut socket, Some(&process), ports::Services::system());
        // Not the annotators: what they know is by socket id, and a socket this new has none
        // (they are given a whole scan's sockets, and forget the ids it lacks).
        Some((socket, process))
    }

    /// A process's details: the cached ones refreshed by one `stat` read when it is the same
    /// process (same start time), a full read otherwise.
    fn process_details(&mut self, pid: u32, cached: Option<RawProcess>) -> Option<RawProcess> {
        if let Some(mut cached) = cached {
            // It exited between the socket dump and this read: its socket is in this scan, so
            // it is shown with what was known of it (a closed listener's last owner keeps its
            // name in the history and the dashboard).
            let Some(stat) = self.platform.stat(pid) else {
                return Some(cached);
            };
            if stat.start_time == cached.start_time {
                cached.update(stat);
                if self.reproject || self.unsettled.contains(&pid) {
                    self.settle_project(&mut cached);
                }
                return Some(cached);
            }
            // The pid was reused: what the owner map knows of it belongs to the old process.
            self.owners.forget(pid);
        }
        let mut raw = self.platform.process(pid)?;
        let started = std::time::Instant::now();
        self.settle_project(&mut raw);
        self.project_lookups.0 += 1;
        self.project_lookups.1 += started.elapsed();
        Some(raw)
    }

    /// How many processes had their project looked up since the last call, and how long that
    /// took: one lookup per process first seen, its answers cached per directory. The
    /// refresher logs it for `cargo xtask bench`.
    pub fn take_project_lookups(&mut self) -> (u32, std::time::Duration) {
        std::mem::take(&mut self.project_lookups)
    }

    /// Sets a process's project when its lookup answers by this scan's deadline; otherwise
    /// keeps what it had and asks again next scan.
    fn settle_project(&mut self, raw: &mut RawProcess) {
        match self.project_of(raw) {
            Some(project) => {
                raw.project = project;
                self.unsettled.remove(&raw.pid);
            }
            None => {
                self.unsettled.insert(raw.pid);
            }
        }
    }

    /// The project of a process: its working directory's. Only a process whose directory says
    /// nothing — unknown, or `/` (a daemon's) — takes its nearest ancestor's (up to
    /// [`PROJECT_ANCESTORS`] up, never init's): a server started in a directory outside any
    /// repository is in no project, whatever the shell that started it works on. `None` while
    /// a lookup it needs has not answered.
    fn project_of(&mut self, raw: &RawProcess) -> Option<Option<portscope_shared::Project>> {
        use crate::projects::Lookup;
        let wait = self.project_wait;
        let deadline = *self
            .project_deadline
            .get_or_insert_with(|| std::time::Instant::now() + wait);
        let look = |finder: &crate::projects::Finder, dir: &str| match finder.lookup(dir, deadline)
        {
            Lookup::Known(project) => Some(project),
            Lookup::Pending => None,
        };
        // Another mount namespace's paths are not ours to read (nor are its ancestors').
        if !self.platform.shares_our_files(raw.pid) {
            return Some(None);
        }
        match raw.cwd.as_deref() {
            Some(cwd) if cwd != "/" => return look(&self.projects, cwd),
            _ => {}
        }
        let mut ppid = raw.ppid;
        for _ in 0..PROJECT_ANCESTORS {
            let Some(pid) = ppid.filter(|&p| p > 1) else {
                return Some(None);
            };
            if !self.platform.shares_our_files(pid) {
                return Some(None);
            }
            if let Some(cwd) = self.platform.cwd(pid)
                && let Some(project) = look(&self.projects, &cwd)?
            {
                return Some(Some(project));
            }
            let Some(stat) = self.platform.stat(pid) else {
                return Some(None);
            };
            ppid = stat.ppid;
        }
        Some(None)
    }

    /// The agent's effective user id.
    pub fn euid(&self) -> Option<u32> {
        self.platform.euid()
    }

    /// A process as the platform reports it (with its scheduler state and group).
    /// The inodes of the sockets a process holds now; `None` when they cannot be read.
    pub fn socket_inodes(&mut self, pid: u32) -> Option<Vec<u64>> {
        self.platform.socket_inodes(pid).ok()
    }

    pub fn raw_process(&mut self, pid: u32) -> Option<RawProcess> {
        self.platform.process(pid)
    }

    /// A process, its working directory and its ancestors, nearest first: up to and including
    /// the first session leader above it (its shell), never pid 1 (init says nothing about who
    /// started a process). A process that is a session leader itself (a PostgreSQL backend, a
    /// daemon) still names its parent. `None` when the process exited or cannot be read.
    pub fn owner(&mut self, pid: u32) -> Option<Owner> {
        /// Deep enough for any real tree; stops a corrupt or racing ppid loop.
        const MAX_ANCESTORS: usize = 64;
        let mut raw = self.platform.process(pid)?;
        let cwd = self.platform.cwd(pid);
        // Its project, as `ls` gives it (waiting for the lookup as a scan would).
        if raw.cwd.is_none() {
            raw.cwd.clone_from(&cwd);
        }
        self.project_deadline = None;
        raw.project = self.project_of(&raw).flatten();
        let mut ancestors = Vec::new();
        let mut current = raw.clone();
        while ancestors.len() < MAX_ANCESTORS {
            let Some(ppid) = current.ppid.filter(|&p| p > 1) else {
                break;
            };
            let Some(parent) = self.platform.process(ppid) else {
                break;
            };
            let leader = parent.session == Some(parent.pid);
            ancestors.push(to_wire_process(parent.clone()));
            if leader {
                break;
            }
            current = parent;
        }
        Some(Owner {
            process: to_wire_process(raw),
            cwd,
            ancestors,
        })
    }
}

impl Collector<crate::os::System> {
    /// This machine's collector: its sockets and processes, the projects of their working
    /// directories on its disks, and the ports its container engine publishes.
    pub fn this_machine() -> Self {
        let mut collector =
            Self::new(crate::os::System::new()).with_projects(crate::projects::Disk::finder());
        collector.containers = Some(containers::Cache::default());
        collector
    }
}

/// Names listeners that are containers' published ports after their container and image (a
/// `docker-proxy` is not what a developer started; the container is), also when the owner is
/// hidden. The engine is asked only while some listener could be one.
/// The forwarder of a Compose project's container takes the container's project (the working
/// directory it has is its engine's, not one a developer chose).
fn label_containers(
    engine: Option<&mut containers::Cache>,
    sockets: &mut Sockets,
    processes: &mut BTreeMap<u32, Process>,
    warnings: &mut Vec<String>,
) {
    let maybe_container = |s: &Socket| {
        s.is_listening()
            && (s.owner == OwnerStatus::Hidden
                || s.app.as_deref().is_some_and(ports::is_container_forwarder))
    };
    if !sockets.values().any(maybe_container) {
        return;
    }
    let Some(engine) = engine else {
        return;
    };
    let published = engine.published().to_vec();
    let error = engine.error();
    let forwarded = sockets
        .values()
        .any(|s| s.app.as_deref().is_some_and(ports::is_container_forwarder));
    let mut labelled = false;
    for socket in sockets.values_mut().filter(|s| s.is_listening()) {
        if let Some(p) = containers::find(
            &published,
            socket.proto,
            socket.local_addr,
            socket.local_port,
        ) {
            socket.app = Some(p.label());
            labelled = true;
            if let Some((name, dir)) = &p.compose {
                for pid in &socket.pids {
                    if let Some(process) = processes.get_mut(pid) {
                        process.project = Some(portscope_shared::Project {
                            name: name.clone(),
                            root: dir.clone().unwrap_or_default(),
                            source: portscope_shared::ProjectSource::Compose,
                        });
                    }
                }
            }
        }
    }
    // Only where a container forwarder listens is a missing name worth a warning (hidden
    // owners alone are most often system daemons).
    if let Some(e) = error
        && forwarded
        && !labelled
    {
        warnings.push(format!("containers could not be named: {e}"));
    }
}

/// Who holds a socket, as far as we can tell. A socket without a found owner is *hidden* only
/// when some process's files were unreadable and the socket is not ours (our own processes are
/// always readable): then it most likely belongs to one of those.
fn owner_status(
    raw: &RawSocket,
    pids: &[u32],
    seen_every_process: bool,
    euid: Option<u32>,
) -> OwnerStatus {
    if !pids.is_empty() {
        OwnerStatus::Known
    } else if raw.inode == 0 || raw.state == SocketState::TimeWait || seen_every_process {
        OwnerStatus::None
    } else if raw.uid.is_some() && raw.uid == euid && euid != Some(0) {
        // Ours, closed between the socket dump and the owner walk.
        OwnerStatus::None
    } else {
        OwnerStatus::Hidden
    }
}

/// The stable identity of a socket: protocol, both endpoints, and the inode (which tells apart
/// `SO_REUSEPORT` twins and a new socket on the same endpoints).
pub fn socket_id(raw: &RawSocket) -> String {
    let proto = match raw.proto {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    };
    let local = std::net::SocketAddr::new(raw.local_addr, raw.local_port);
    let remote = raw
        .remote
        .map(|(addr, port)| std::net::SocketAddr::new(addr, port).to_string())
        .unwrap_or_else(|| "-".to_owned());
    format!("{proto} {local} {remote} i{}", raw.inode)
}

fn to_wire(raw: RawSocket, pids: Vec<u32>, owner: OwnerStatus) -> Socket {
    Socket {
        id: socket_id(&raw),
        proto: raw.proto,
        family: match raw.local_addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        },
        local_addr: raw.local_addr,
        local_port: raw.local_port,
        remote_addr: raw.remote.map(|r| r.0),
        remote_port: raw.remote.map(|r| r.1),
        state: raw.state,
        pids,
        uid: raw.uid,
        owner,
        exposure: None,
        service: None,
        app: None,
        risk: None,
        http: false,
        host: None,
        health: None,
    }
}

/// At most this many warnings, each at most 1 KiB: one per unreadable entry could otherwise grow
/// without bound (and every message must fit the protocol's part size).
const MAX_WARNINGS: usize = 20;

pub fn cap_warnings(warnings: &mut Vec<String>) {
    let extra = warnings.len().saturating_sub(MAX_WARNINGS);
    warnings.truncate(MAX_WARNINGS);
    for w in warnings.iter_mut() {
        crate::text::cap(w, 1024);
    }
    if extra > 0 {
        warnings.push(format!("… and {extra} more warnings"));
    }
}

/// Longest command line sent, in bytes: `ARG_MAX` allows megabytes, and every message must stay
/// under the protocol's part size. Longer ones end with a `…(N more bytes)` argument.
pub const MAX_CMDLINE_BYTES: usize = 32 << 10;

pub fn cap_cmdline(cmdline: Vec<String>) -> Vec<String> {
    let total: usize = cmdline.iter().map(String::len).sum();
    if total <= MAX_CMDLINE_BYTES {
        return cmdline;
    }
    let mut kept = Vec::new();
    let mut used = 0;
    for arg in cmdline {
        if used + arg.len() > MAX_CMDLINE_BYTES {
            let mut cut = MAX_CMDLINE_BYTES.saturating_sub(used);
            while !arg.is_char_boundary(cut) {
                cut -= 1;
            }
            if cut > 0 {
                kept.push(arg[..cut].to_owned());
            }
            break;
        }
        used += arg.len();
        kept.push(arg);
    }
    let shown: usize = kept.iter().map(String::len).sum();
    kept.push(format!("…({} more bytes)", total - shown));
    kept
}

pub fn to_wire_process(raw: RawProcess) -> Process {
    Process {
        pid: raw.pid,
        ppid: raw.ppid,
        name: raw.name,
        exe: raw.exe,
        cmdline: cap_cmdline(raw.cmdline),
        user: raw.user,
        uid: raw.uid,
        start_time: raw.start_time,
        start_ms: raw.start_ms,
        stopped: raw.state == Some('T'),
        cwd: raw.cwd,
        host: None,
        project: raw.project,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::os::{FdError, ProcessStat, ReadError};

    /// A scripted platform: what each call returns is set by the test.
    #[derive(Default)]
    struct Fake {
        sockets: Vec<RawSocket>,
        owners: HashMap<u64, Vec<u32>>,
        processes: HashMap<u32, RawProcess>,
        euid: Option<u32>,
        /// Pids whose descriptors cannot be read.
        unreadable: Vec<u32>,
        fail_sockets: bool,
        /// Directories that hold a `.git` directory.
        repos: Vec<std::path::PathBuf>,
        /// Another file system for the projects, instead of `repos`.
        files: Option<std::sync::Arc<dyn crate::projects::Tree>>,
        /// Whether descriptor counts are told (as Linux tells them), each process's sockets.
        counts: bool,
    }

    impl Platform for Fake {
        fn sockets(&mut self) -> Result<SocketList, ReadError> {
            if self.fail_sockets {
                return Err(ReadError::SocketTables("netlink unavailable".into()));
            }
            Ok(SocketList {
                sockets: self.sockets.clone(),
                errors: vec![],
            })
        }
        fn pids(&mut self) -> Result<Vec<u32>, ReadError> {
            let mut pids: Vec<u32> = self.processes.keys().copied().collect();
            pids.extend(self.owners.values().flatten());
            pids.extend(&self.unreadable);
            pids.sort_unstable();
            pids.dedup();
            Ok(pids)
        }
        fn fd_count(&mut self, pid: u32) -> Option<usize> {
            self.counts
                .then(|| self.owners.values().filter(|p| p.contains(&pid)).count())
        }
        fn socket_inodes(&mut self, pid: u32) -> Result<Vec<u64>, FdError> {
            if self.unreadable.contains(&pid) {
                return Err(FdError::Unreadable);
            }
            Ok(self
                .owners
                .iter()
                .filter(|(_, pids)| pids.contains(&pid))
                .map(|(&inode, _)| inode)
                .collect())
        }
        fn process(&mut self, pid: u32) -> Option<RawProcess> {
            self.processes.get(&pid).cloned()
        }
        fn stat(&mut self, pid: u32) -> Option<ProcessStat> {
            self.processes.get(&pid).map(|p| ProcessStat {
                ppid: p.ppid,
                name: p.name.clone(),
                start_time: p.start_time,
                start_ms: None,
                session: p.session,
                pgrp: p.pgrp,
                state: p.state,
            })
        }
        fn euid(&self) -> Option<u32> {
            self.euid
        }
        fn cwd(&mut self, pid: u32) -> Option<String> {
            self.processes.get(&pid).map(|_| format!("/work/{pid}"))
        }
        fn connection(
            &mut self,
            local: std::net::SocketAddr,
            remote: std::net::SocketAddr,
        ) -> Result<Option<RawSocket>, ReadError> {
            Ok(self
                .sockets
                .iter()
                .find(|s| {
                    s.state != SocketState::Listen
                        && (s.local_addr, s.local_port) == (local.ip(), local.port())
                        && s.remote == Some((remote.ip(), remote.port()))
                })
                .cloned())
        }
    }

    /// A collector of `fake`, finding projects in its `repos` (or its `files`).
    fn collector(fake: Fake) -> Collector<Fake> {
        let files = fake.files.clone();
        let finder = crate::projects::Finder::new(
            files.unwrap_or_else(|| std::sync::Arc::new(Repos(fake.repos.clone()))),
        );
        Collector::new(fake).with_projects(finder)
    }

    /// A file system where these directories hold a `.git` directory.
    struct Repos(Vec<std::path::PathBuf>);

    impl crate::projects::Tree for Repos {
        fn git(&self, dir: &std::path::Path) -> Option<crate::projects::Git> {
            self.0
                .iter()
                .any(|r| r == dir)
                .then_some(crate::projects::Git::Dir)
        }
    }

    fn listener(port: u16, inode: u64) -> RawSocket {
        RawSocket {
            proto: Proto::Tcp,
            local_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            local_port: port,
            remote: None,
            state: SocketState::Listen,
            inode,
            uid: Some(1000),
        }
    }

    fn proc(pid: u32, name: &str) -> RawProcess {
        RawProcess {
            pid,
            ppid: Some(1),
            name: name.into(),
            exe: None,
            cmdline: vec![name.into()],
            uid: Some(1000),
            user: Some("dev".into()),
            start_time: Some(1),
            start_ms: None,
            session: Some(1),
            pgrp: Some(1),
            state: Some('S'),
            cwd: None,
            project: None,
        }
    }

    /// A fake machine with this process tree: (pid, parent, session, name); parent 0 is none.
    fn tree(processes: &[(u32, u32, u32, &str)]) -> Fake {
        let mut fake = Fake::default();
        for &(pid, ppid, session, name) in processes {
            let mut p = proc(pid, name);
            p.ppid = Some(ppid).filter(|&p| p != 0);
            p.session = Some(session);
            fake.processes.insert(pid, p);
        }
        fake
    }

    #[test]
    fn an_owner_comes_with_its_ancestors_up_to_the_session_leader() {
        let mut collector = collector(tree(&[
            (50, 40, 30, "vite"),
            (40, 30, 30, "npm"),
            (30, 1, 30, "bash"),
            (1, 0, 1, "init"),
        ]));
        let owner = collector.owner(50).unwrap();
        assert_eq!(owner.process.name, "vite");
        assert_eq!(owner.cwd.as_deref(), Some("/work/50"));
        let names: Vec<&str> = owner.ancestors.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["npm", "bash"], "stops at the session leader");
        assert!(collector.owner(99).is_none());
        assert!(
            collector.owner(30).unwrap().ancestors.is_empty(),
            "a child of pid 1 is not 'started by' init"
        );
    }

    #[test]
    fn a_process_whose_directory_says_nothing_takes_its_nearest_ancestors_project() {
        // npm works in the repository /work/40. vite, its child, daemonized to `/`: npm's
        // project. A server started by npm's shell in /tmp/trial (a real directory outside any
        // repository): none, whatever its parent works on. A daemon under init: none.
        let mut fake = tree(&[
            (50, 40, 30, "vite"),
            (51, 40, 30, "server"),
            (40, 30, 30, "npm"),
            (30, 1, 30, "bash"),
            (60, 1, 60, "daemon"),
            (1, 0, 1, "init"),
        ]);
        fake.processes.get_mut(&50).unwrap().cwd = Some("/".into());
        fake.processes.get_mut(&51).unwrap().cwd = Some("/tmp/trial".into());
        fake.processes.get_mut(&40).unwrap().cwd = Some("/work/40".into());
        fake.repos = vec!["/work/40".into(), "/work/1".into()];
        fake.sockets = vec![listener(5173, 1), listener(9000, 2), listener(8099, 3)];
        fake.owners = HashMap::from([(1, vec![50]), (2, vec![60]), (3, vec![51])]);
        let state = collector(fake).scan();
        let project = |pid| state.processes[&pid].project.clone().map(|p| p.name);
        assert_eq!(project(50).as_deref(), Some("40"), "npm's repository");
        assert_eq!(project(51), None, "its own directory is in no repository");
        assert_eq!(project(60), None, "init's directory is no one's project");
    }

    #[test]
    fn a_project_is_looked_up_once_per_new_process() {
        let mut fake = tree(&[(50, 1, 50, "vite"), (1, 0, 1, "init")]);
        fake.processes.get_mut(&50).unwrap().cwd = Some("/work/50".into());
        fake.repos = vec!["/work/50".into()];
        fake.sockets = vec![listener(5173, 1)];
        fake.owners = HashMap::from([(1, vec![50])]);
        let mut collector = collector(fake);
        collector.scan();
        assert_eq!(collector.take_project_lookups().0, 1, "vite, first seen");
        assert_eq!(collector.take_project_lookups().0, 0, "taken");
        collector.scan();
        assert_eq!(
            collector.take_project_lookups().0,
            0,
            "the same process again: one stat, no lookup"
        );
        // The pid reused by another process: a new process, looked up.
        collector
            .platform
            .processes
            .get_mut(&50)
            .unwrap()
            .start_time = Some(2);
        collector.scan();
        assert_eq!(collector.take_project_lookups().0, 1);
    }

    /// A file system whose every read waits until `open` is set.
    #[derive(Default)]
    struct Slow {
        open: std::sync::Mutex<bool>,
        opened: std::sync::Condvar,
    }

    impl crate::projects::Tree for Slow {
        fn git(&self, dir: &std::path::Path) -> Option<crate::projects::Git> {
            let mut open = self.open.lock().unwrap();
            while !*open {
                open = self.opened.wait(open).unwrap();
            }
            (dir == std::path::Path::new("/work/50")).then_some(crate::projects::Git::Dir)
        }
    }

    #[test]
    fn a_project_found_after_its_scan_comes_with_a_later_one() {
        let mut fake = tree(&[(50, 1, 50, "vite"), (1, 0, 1, "init")]);
        fake.processes.get_mut(&50).unwrap().cwd = Some("/work/50".into());
        fake.sockets = vec![listener(5173, 1)];
        fake.owners = HashMap::from([(1, vec![50])]);
        let slow = std::sync::Arc::new(Slow::default());
        fake.files = Some(slow.clone());
        let mut collector = collector(fake).live_projects();
        let t0 = std::time::Instant::now();
        let state = collector.scan();
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(2),
            "the scan waited"
        );
        assert_eq!(state.processes[&50].project, None, "not found yet");
        *slow.open.lock().unwrap() = true;
        slow.opened.notify_all();
        let state = collector.scan();
        let name = state.processes[&50]
            .project
            .as_ref()
            .map(|p| p.name.as_str());
        assert_eq!(name, Some("50"), "asked again, and found");
    }

    #[test]
    fn a_session_leader_still_names_its_parent() {
        // A PostgreSQL backend calls setsid(): it leads a session of its own, under the
        // postmaster, which leads its own too (started as a daemon).
        let mut collector = collector(tree(&[
            (61, 60, 61, "postgres: app db 127.0.0.1(4000) idle"),
            (60, 1, 60, "postgres"),
            (1, 0, 1, "init"),
        ]));
        let names: Vec<String> = collector
            .owner(61)
            .unwrap()
            .ancestors
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["postgres"], "the postmaster, and not init");
    }

    #[test]
    fn owners_are_attached_and_forked_owners_merged() {
        let mut fake = Fake {
            sockets: vec![listener(8080, 10)],
            ..Fake::default()
        };
        fake.owners.insert(10, vec![7, 3, 7]);
        fake.processes.insert(3, proc(3, "parent"));
        fake.processes.insert(7, proc(7, "child"));
        let state = collector(fake).scan();
        let socket = state.sockets().next().unwrap();
        assert_eq!(socket.pids, vec![3, 7]);
        assert_eq!(socket.owner, OwnerStatus::Known);
        assert_eq!(socket.id, "tcp 127.0.0.1:8080 - i10");
        assert_eq!(state.processes.len(), 2);
        assert!(state.warnings.is_empty(), "{:?}", state.warnings);
    }

    #[test]
    fn other_users_sockets_are_kept_and_marked_hidden() {
        let fake = Fake {
            sockets: vec![listener(5432, 11)],
            euid: Some(1001),
            unreadable: vec![21, 22, 23],
            ..Fake::default()
        };
        let state = collector(fake).scan();
        let socket = state.sockets().next().unwrap();
        assert_eq!(socket.owner, OwnerStatus::Hidden);
        assert_eq!(socket.uid, Some(1000));
        assert!(state.warnings[0].contains("run portscope as root"));
    }

    #[test]
    fn time_wait_and_root_unowned_sockets_have_no_owner() {
        let mut fake = Fake::default();
        let mut tw = listener(40000, 0);
        tw.state = SocketState::TimeWait;
        tw.remote = Some((IpAddr::V4(Ipv4Addr::LOCALHOST), 8080));
        fake.sockets = vec![tw, listener(2049, 12)];
        fake.euid = Some(0);
        let state = collector(fake).scan();
        assert!(state.sockets().all(|s| s.owner == OwnerStatus::None));
        assert!(state.warnings.is_empty());
    }

    #[test]
    fn our_own_socket_closed_mid_scan_is_not_hidden() {
        let fake = Fake {
            sockets: vec![listener(3001, 14)], // uid 1000, like the agent below
            euid: Some(1000),
            unreadable: vec![21, 22, 23, 24, 25],
            ..Fake::default()
        };
        let state = collector(fake).scan();
        assert_eq!(state.sockets().next().unwrap().owner, OwnerStatus::None);
        assert!(state.warnings.is_empty(), "{:?}", state.warnings);
    }

    #[test]
    fn root_without_ptrace_says_owners_may_be_missing() {
        let fake = Fake {
            sockets: vec![listener(5432, 15)],
            euid: Some(0),
            unreadable: vec![21, 22],
            ..Fake::default()
        };
        let state = collector(fake).scan();
        assert_eq!(state.sockets().next().unwrap().owner, OwnerStatus::Hidden);
        assert!(
            state.warnings.iter().any(|w| w.contains("CAP_SYS_PTRACE")),
            "{:?}",
            state.warnings
        );
    }

    #[test]
    fn a_process_that_vanished_mid_scan_keeps_its_socket() {
        let mut fake = Fake {
            sockets: vec![listener(3000, 13)],
            ..Fake::default()
        };
        fake.owners.insert(13, vec![99]);
        let state = collector(fake).scan();
        assert_eq!(state.sockets().next().unwrap().pids, vec![99]);
        assert!(state.processes.is_empty());
    }

    #[test]
    fn a_known_process_that_exits_mid_scan_keeps_its_details_while_its_socket_is_seen() {
        let mut fake = Fake {
            sockets: vec![listener(3000, 13)],
            ..Fake::default()
        };
        fake.owners.insert(13, vec![50]);
        fake.processes.insert(50, proc(50, "python3"));
        let mut collector = collector(fake);
        assert!(collector.scan().processes.contains_key(&50));
        // Gone from the process table, its listener still in the dump (closing as it exits).
        collector.platform.processes.clear();
        let state = collector.scan();
        assert_eq!(state.processes[&50].name, "python3");
    }

    #[test]
    fn huge_command_lines_are_capped() {
        let args = vec![
            "node".to_owned(),
            "x".repeat(MAX_CMDLINE_BYTES),
            "--port".into(),
        ];
        let capped = cap_cmdline(args);
        let total: usize = capped.iter().map(String::len).sum();
        assert!(total < MAX_CMDLINE_BYTES + 64, "{total}");
        assert_eq!(capped.last().unwrap(), "…(10 more bytes)");
        assert_eq!(cap_cmdline(vec!["ls".into()]), ["ls"]);
    }

    #[test]
    fn a_failed_socket_read_is_a_warning_not_a_crash() {
        let fake = Fake {
            fail_sockets: true,
            ..Fake::default()
        };
        let state = collector(fake).scan();
        assert!(state.sockets.is_empty());
        assert_eq!(
            state.warnings,
            vec!["cannot read the socket tables: netlink unavailable".to_string()]
        );
    }

    fn connection(local: u16, remote: u16, inode: u64) -> RawSocket {
        RawSocket {
            remote: Some((IpAddr::V4(Ipv4Addr::LOCALHOST), remote)),
            state: SocketState::Established,
            ..listener(local, inode)
        }
    }

    fn ends(local: u16, remote: u16) -> (std::net::SocketAddr, std::net::SocketAddr) {
        (
            std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, local)),
            std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, remote)),
        )
    }

    /// The sockets of a state as (id, pids), and its pids.
    fn seen(state: &State) -> (Vec<(String, Vec<u32>)>, Vec<u32>) {
        (
            state
                .sockets
                .values()
                .map(|s| (s.id.clone(), s.pids.clone()))
                .collect(),
            state.processes.keys().copied().collect(),
        )
    }

    #[test]
    fn connections_read_alone_make_the_state_a_scan_makes() {
        let mut fake = tree(&[(10, 1, 10, "postgres"), (20, 1, 20, "psql")]);
        fake.sockets = vec![listener(5432, 1)];
        fake.owners.insert(1, vec![10]);
        // A process that held no socket is found by its count changing (Linux's).
        fake.counts = true;
        let mut live = collector(fake);
        let before = live.scan();
        assert_eq!(seen(&before).1, vec![10], "psql holds nothing yet");

        // psql connects; postgres accepts.
        let machine =
            |live: &mut Collector<Fake>, sockets: Vec<RawSocket>, owners: &[(u64, u32)]| {
                live.platform.sockets = sockets;
                live.platform.owners = owners.iter().map(|&(i, p)| (i, vec![p])).collect();
            };
        let connected = vec![
            listener(5432, 1),
            connection(40000, 5432, 2),
            connection(5432, 40000, 3),
        ];
        machine(&mut live, connected.clone(), &[(1, 10), (2, 20), (3, 10)]);
        let read = live
            .connections_now(&before, &[ends(40000, 5432), ends(5432, 40000)])
            .unwrap();
        assert!(read.unaccepted.is_empty());
        let mut scanner = collector(tree(&[(10, 1, 10, "postgres"), (20, 1, 20, "psql")]));
        machine(&mut scanner, connected, &[(1, 10), (2, 20), (3, 10)]);
        let scanned = scanner.scan();
        assert_eq!(seen(&read.state), seen(&scanned));
        assert_eq!(read.state.processes[&20].name, "psql");
        assert_eq!(
            read.state
                .sockets
                .values()
                .map(|s| s.exposure)
                .collect::<Vec<_>>(),
            scanned
                .sockets
                .values()
                .map(|s| s.exposure)
                .collect::<Vec<_>>(),
            "labelled as a scan labels them"
        );

        // An accepted connection no process holds yet is told apart, to be read again.
        let accepting = vec![
            listener(5432, 1),
            connection(40001, 5432, 4),
            connection(5432, 40001, 0),
        ];
        machine(&mut live, accepting, &[(1, 10), (4, 20)]);
        let read = live
            .connections_now(&read.state, &[ends(40001, 5432), ends(5432, 40001)])
            .unwrap();
        assert_eq!(read.unaccepted, vec![ends(5432, 40001)]);

        // psql leaves: its connections go, and psql with them; postgres keeps its listener.
        machine(&mut live, vec![listener(5432, 1)], &[(1, 10)]);
        live.platform.processes.remove(&20);
        let all = [
            ends(40000, 5432),
            ends(5432, 40000),
            ends(40001, 5432),
            ends(5432, 40001),
        ];
        let read = live.connections_now(&read.state, &all).unwrap();
        assert_eq!(seen(&read.state), seen(&before));
    }

    #[test]
    fn a_scan_after_another_keeps_the_unchanged_sockets_allocations() {
        let mut fake = tree(&[(10, 1, 10, "postgres")]);
        fake.sockets = vec![listener(5432, 1), listener(5433, 2)];
        fake.owners = HashMap::from([(1, vec![10]), (2, vec![10])]);
        let mut c = collector(fake);
        let first = c.scan();
        c.platform.sockets[1].state = SocketState::Close;
        let second = c.scan_after(&first);
        let pair = |id: &str| (first.sockets[id].clone(), second.sockets[id].clone());
        let (a, b) = pair("tcp 127.0.0.1:5432 - i1");
        assert!(std::sync::Arc::ptr_eq(&a, &b), "unchanged: shared");
        let (a, b) = pair("tcp 127.0.0.1:5433 - i2");
        assert!(!std::sync::Arc::ptr_eq(&a, &b), "changed: its own");
        assert_eq!(b.state, SocketState::Close);
    }

    #[test]
    fn a_scans_sockets_are_found_by_id_and_listed_once() {
        let socket = |id: &str| crate::testing::socket(id, SocketState::Listen);
        let mut sockets = Sockets::new(vec![socket("b"), socket("a"), socket("b")]);
        let ids: Vec<&str> = sockets.values().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(sockets.contains_key("a") && !sockets.contains_key("c"));
        sockets.get_mut("b").unwrap().http = true;
        assert!(sockets.values().any(|s| s.id == "b" && s.http));
        assert!(sockets.get_mut("c").is_none());
    }

    #[test]
    fn a_project_asked_without_waiting_is_told_when_it_answers() {
        let mut fake = tree(&[(50, 1, 50, "vite"), (1, 0, 1, "init")]);
        fake.processes.get_mut(&50).unwrap().cwd = Some("/work/50".into());
        let slow = std::sync::Arc::new(Slow::default());
        fake.files = Some(slow.clone());
        let mut collector = collector(fake).live_projects();
        let mut state = collector.scan();
        let (socket, process) = collector
            .listener_now("127.0.0.1:5173".parse().unwrap(), 1, 50, 1000)
            .unwrap();
        assert_eq!(process.project, None, "not found yet");
        state
            .sockets
            .insert(socket.id.clone(), std::sync::Arc::new(socket));
        state.processes.insert(50, process);
        assert!(collector.projects_pending());
        assert!(collector.projects_now(&state).is_none(), "nothing answered");
        *slow.open.lock().unwrap() = true;
        slow.opened.notify_all();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let told = loop {
            if let Some(told) = collector.projects_now(&state) {
                break told;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the answer never came"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        let name = told.processes[&50]
            .project
            .as_ref()
            .map(|p| p.name.as_str());
        assert_eq!(name, Some("50"));
        assert_eq!(
            told.sockets.len(),
            state.sockets.len(),
            "the rest as it was"
        );
        assert!(!collector.projects_pending());
    }
}
