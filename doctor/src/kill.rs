//! `portscope kill <port>` / `--pid N` and `POST /api/v1/kill`: stop what holds a port the way its
//! program expects (PostgreSQL's fast shutdown, nginx's graceful one), force only a program that
//! is not a database and made no progress (one that listened: while it still listens), name the
//! clients that keep it waiting,
//! and refuse pid 1, portscope itself, kernel threads and processes the user may not signal.

use std::time::{Duration, Instant};

use portscope_shared::{ApiErrorCode, KillBar, KillOutcome, KillReport, KillScope, Process};

use portscope_core::collector::Collector;
use portscope_core::model::State;
use portscope_core::os::{self, SignalTarget};
use portscope_core::os::{Platform, RawProcess};
use portscope_core::ports;

/// Why a process will not be signalled.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no process with pid {0}")]
    NoSuchProcess(u32),
    #[error(
        "refusing to signal pid {0}: it is the init process, and stopping it stops the whole system (or container)"
    )]
    Init(u32),
    #[error("refusing to signal pid {0}: it is this portscope itself")]
    Itself(u32),
    #[error("refusing to signal pid {0} ({1}): it is a kernel thread")]
    Kernel(u32, String),
    #[error(
        "refusing --tree for pid {0}: its process group {1} includes portscope itself (they were started from the same command line); stop the process alone, without --tree"
    )]
    OwnGroup(u32, u32),
    #[error("you may not signal pid {pid} ({name}, {user}); run portscope with sudo to stop it")]
    NotPermitted {
        pid: u32,
        name: String,
        user: String,
    },
    #[error("pid {0} holds no socket; the dashboard stops only processes that hold one")]
    NotASocketOwner(u32),
    #[error(
        "pid {0} is no longer the process the dashboard showed (it exited and the pid was reused); look again"
    )]
    Changed(u32),
    #[error(
        "pid {pid} ({name}) belongs to {user}, not to the user who started portscope; stop it from a terminal with `sudo portscope kill --pid {pid}`"
    )]
    OtherUser {
        pid: u32,
        name: String,
        user: String,
    },
    #[error(
        "pid {pid} ({name}) forwards {what} into {container}: stopping it would leave the container running and the port published with nothing answering; stop the container instead: `docker stop {stop}`"
    )]
    ContainerForwarder {
        pid: u32,
        name: String,
        /// `port 8088`, or `its ports` when the listener is not known.
        what: String,
        /// `container web (image nginx:1.25)`, or `a container` when the engine cannot be asked.
        container: String,
        /// The container's name, or `NAME` when not known.
        stop: String,
    },
    #[error(
        "pid {pid} ({name}) runs as {user}, a system account: a root agent's dashboard does not stop system daemons; stop it from a terminal with `sudo portscope kill --pid {pid}`, or start portscope with --allow-kill-system"
    )]
    SystemAccount {
        pid: u32,
        name: String,
        user: String,
    },
}

impl Refusal {
    /// Stable, machine-readable kind for the HTTP answer.
    pub fn code(&self) -> ApiErrorCode {
        match self {
            Self::NoSuchProcess(_) => ApiErrorCode::NoSuchProcess,
            Self::NotASocketOwner(_) => ApiErrorCode::NotASocketOwner,
            Self::Changed(_) => ApiErrorCode::ProcessChanged,
            Self::OtherUser { .. } => ApiErrorCode::OtherUser,
            Self::SystemAccount { .. } => ApiErrorCode::SystemProcess,
            Self::ContainerForwarder { .. } => ApiErrorCode::ContainerPort,
            Self::NotPermitted { .. } => ApiErrorCode::NotPermitted,
            Self::Init(_) | Self::Itself(_) | Self::Kernel(..) | Self::OwnGroup(..) => {
                ApiErrorCode::Refused
            }
        }
    }
}

/// Who is asking: this process and its process group.
#[derive(Clone, Copy, Debug)]
pub struct Me {
    pub pid: u32,
    pub pgrp: Option<u32>,
}

impl Me {
    pub fn current<P: Platform>(collector: &mut Collector<P>) -> Self {
        let pid = std::process::id();
        Self {
            pid,
            pgrp: collector.raw_process(pid).and_then(|p| p.pgrp),
        }
    }
}

/// The rules that need no system call; [`check`] adds the permission test.
pub fn refusal(pid: u32, process: Option<&RawProcess>, me: Me, tree: bool) -> Option<Refusal> {
    if pid <= 1 {
        return Some(Refusal::Init(pid));
    }
    if pid == me.pid {
        return Some(Refusal::Itself(pid));
    }
    let Some(p) = process else {
        return Some(Refusal::NoSuchProcess(pid));
    };
    if pid == 2 || p.ppid == Some(2) {
        return Some(Refusal::Kernel(pid, p.name.clone()));
    }
    if tree && let Some(group) = p.pgrp {
        if group <= 1 {
            return Some(Refusal::Init(group));
        }
        if Some(group) == me.pgrp {
            return Some(Refusal::OwnGroup(pid, group));
        }
    }
    None
}

/// All the rules, including whether the OS lets us signal it.
pub fn check(pid: u32, process: Option<&RawProcess>, me: Me, tree: bool) -> Result<(), Refusal> {
    if let Some(r) = refusal(pid, process, me, tree) {
        return Err(r);
    }
    match os::send_signal(SignalTarget::Process(pid), None) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let p = process.expect("checked above");
            Err(Refusal::NotPermitted {
                pid,
                name: p.name.clone(),
                user: p
                    .user
                    .clone()
                    .unwrap_or_else(|| format!("uid {}", p.uid.unwrap_or_default())),
            })
        }
        Err(_) => Err(Refusal::NoSuchProcess(pid)),
        Ok(()) => Ok(()),
    }
}

/// The dashboard's extra rules: the pid holds a socket now (in the live model and still in its
/// descriptors, or else on a fresh scan), is the process the page showed (same start time,
/// which the request must give), and `scope` lets the dashboard stop it: it belongs to the user
/// who started portscope (`SUDO_UID`, `PKEXEC_UID` or `DOAS_USER` under those), and a root
/// agent stops no system daemon unless told to. Returns the process and what its stop will
/// watch.
pub fn allowed_from_dashboard<P: Platform>(
    collector: &mut Collector<P>,
    req: &portscope_shared::KillRequest,
    me: Me,
    scope: &KillScope,
    source: &crate::Source,
) -> Result<(RawProcess, Watch), Refusal> {
    let pid = req.pid;
    let held = |state: &State, collector: &mut Collector<P>| {
        let inodes: Vec<u64> = state
            .sockets()
            .filter(|s| s.pids.contains(&pid))
            .filter_map(|s| s.id.rsplit_once(" i").and_then(|(_, i)| i.parse().ok()))
            .collect();
        let still = collector
            .socket_inodes(pid)
            .is_some_and(|now| now.iter().any(|i| inodes.contains(i)));
        still.then(|| Watch::of(state, &[pid]))
    };
    let watch = source
        .with(|state| held(state, collector))
        .or_else(|| source.rescan().with(|state| held(state, collector)))
        .ok_or(Refusal::NotASocketOwner(pid))?;
    let process = collector.raw_process(pid);
    check(pid, process.as_ref(), me, false)?;
    let process = process.ok_or(Refusal::NoSuchProcess(pid))?;
    if process.start_time != Some(req.start_time) {
        return Err(Refusal::Changed(pid));
    }
    source.with(|state| not_a_container_forwarder(state, &process))?;
    let user = || {
        process
            .user
            .clone()
            .unwrap_or_else(|| format!("uid {}", process.uid.unwrap_or_default()))
    };
    match scope.refuses(process.uid) {
        None => {}
        Some(KillBar::OtherUser) => {
            return Err(Refusal::OtherUser {
                pid,
                name: process.name.clone(),
                user: user(),
            });
        }
        Some(KillBar::SystemAccount) => {
            return Err(Refusal::SystemAccount {
                pid,
                name: process.name.clone(),
                user: user(),
            });
        }
    }
    Ok((process, watch))
}

/// The longest a client other than the CLI may ask to wait before KILL.
pub const MAX_FORCE_AFTER: Duration = Duration::from_secs(30);

/// Stops the process `req` names for a client that is not the user's own terminal (the
/// dashboard, an assistant over MCP): every rule of [`allowed_from_dashboard`] first, then its
/// program's [`plan`] (`signal` and `force_after` as the client asked, checked by the caller),
/// then [`stop`], reading its clients from `source` afterwards.
pub fn stop_requested(
    req: &portscope_shared::KillRequest,
    scope: &KillScope,
    signal: Option<&str>,
    force_after: Option<Duration>,
    source: &dyn Fn() -> crate::Source,
) -> Result<KillReport, Refusal> {
    let mut collector = Collector::this_machine();
    let me = Me::current(&mut collector);
    let (process, watch) = allowed_from_dashboard(&mut collector, req, me, scope, &source())?;
    let wire = portscope_core::collector::to_wire_process(process.clone());
    let plan = plan(
        &wire,
        watch.ports.first().copied(),
        signal,
        force_after.map(Some),
    );
    tracing::info!(pid = req.pid, name = %process.name, signal = %plan.signal, "stopping a process on a client's request");
    Ok(stop(&process, &plan, &watch, false, source))
}

/// A container's port forwarder (`docker-proxy`, rootless port helpers) is never stopped:
/// the container would go on running, its port published with nothing answering. The refusal
/// names the container when the engine says which publishes the forwarder's port.
pub fn not_a_container_forwarder(state: &State, process: &RawProcess) -> Result<(), Refusal> {
    if !crate::why::CONTAINER_PROXIES.contains(&process.name.as_str()) {
        return Ok(());
    }
    let listening: Vec<&portscope_shared::Socket> = state
        .sockets()
        .filter(|s| s.is_listening() && s.pids.contains(&process.pid))
        .collect();
    let published = portscope_core::containers::Engine::detect()
        .and_then(|engine| engine.published().ok())
        .unwrap_or_default();
    let found = listening.iter().find_map(|s| {
        portscope_core::containers::find(&published, s.proto, s.local_addr, s.local_port)
            .map(|p| (s.local_port, p))
    });
    Err(Refusal::ContainerForwarder {
        pid: process.pid,
        name: process.name.clone(),
        what: match (found, listening.first()) {
            (Some((port, _)), _) => format!("port {port}"),
            (None, Some(s)) => format!("port {}", s.local_port),
            (None, None) => "its ports".into(),
        },
        container: found.map_or_else(
            || "a container".into(),
            |(_, p)| format!("container {} (image {})", p.name, p.image),
        ),
        stop: found.map_or_else(|| "NAME".into(), |(_, p)| p.name.clone()),
    })
}

/// This agent's [`KillScope`]: the invoking user (`SUDO_UID`, `PKEXEC_UID`, `DOAS_USER`, read
/// only when the agent runs as root, where they say who asked for it), else the agent's own
/// `euid`; system accounts as this machine defines them.
pub fn scope_of_this_agent(euid: Option<u32>, allow_system: bool) -> KillScope {
    let root = os::is_root();
    let invoking = root
        .then(|| invoking_uid(|k| std::env::var(k).ok(), os::uid_of_user))
        .flatten();
    KillScope {
        uid: invoking.or(euid),
        root,
        first_user_uid: os::first_user_uid(),
        allow_system,
    }
}

/// Who ran `sudo`, `pkexec` or `doas` to start this process, from the variables each sets
/// (`var` reads one; `uid_of` looks a user name up).
fn invoking_uid(
    var: impl Fn(&str) -> Option<String>,
    uid_of: impl Fn(&str) -> Option<u32>,
) -> Option<u32> {
    ["SUDO_UID", "PKEXEC_UID"]
        .iter()
        .find_map(|k| var(k)?.trim().parse().ok())
        .or_else(|| var("DOAS_USER").and_then(|name| uid_of(name.trim())))
}

/// Whether a signal asks a process to end (so waiting for it, and forcing, make sense).
fn ends_process(signal: &str) -> bool {
    matches!(signal, "TERM" | "INT" | "QUIT" | "KILL")
}

/// How long a stop waits for a process that is not forced.
const WAIT_UNFORCED: Duration = Duration::from_secs(10);
/// How long a stop waits in all, whatever progress the process makes.
const WAIT_MAX: Duration = Duration::from_secs(30);
/// When the user says nothing: KILL after this long without progress (not for databases).
pub const DEFAULT_FORCE_AFTER: Duration = Duration::from_secs(5);

/// How one process will be stopped: the first signal, and whether and when to force it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub signal: String,
    /// What the signal does to this program, when it is the program's own way ("PostgreSQL's
    /// fast shutdown: …"); empty otherwise.
    pub means: String,
    /// `KILL` after this long without progress (while it still listens, if it listened);
    /// `None`: never.
    pub force_after: Option<Duration>,
    /// Why it will not be forced although nobody said `never` (a database).
    pub not_forced: Option<String>,
}

/// The user's choice of forcing: `None` = not said; `Some(None)` = never; `Some(Some(d))`.
pub type ForceChoice = Option<Option<Duration>>;

/// The plan for a process: the signal its program documents for a clean stop unless the user
/// named one, and `KILL` only for programs that are not databases — unless the user asked.
pub fn plan(
    process: &Process,
    port: Option<u16>,
    signal: Option<&str>,
    force: ForceChoice,
) -> Plan {
    let app = port
        .map(|port| ports::identify(Some(process), port))
        .or_else(|| Some(ports::identify(Some(process), 0)))
        .and_then(ports::Identity::program);
    let shutdown = app.map_or(ports::Shutdown::PLAIN, |a| a.shutdown);
    let (signal, means) = match signal {
        Some(s) => {
            let s = s.trim_start_matches("SIG").to_ascii_uppercase();
            let means = if s == shutdown.signal {
                shutdown.means.to_owned()
            } else {
                String::new()
            };
            (s, means)
        }
        None => (shutdown.signal.to_owned(), shutdown.means.to_owned()),
    };
    let (force_after, not_forced) = match force {
        Some(choice) => (choice, None),
        None if shutdown.database => (
            None,
            Some(format!(
                "{} is a database: KILL can lose what it has not written yet and makes its next start run crash recovery, so portscope never forces it unless told to (--force-after)",
                app.map_or("it", |a| a.name)
            )),
        ),
        None => (Some(DEFAULT_FORCE_AFTER), None),
    };
    Plan {
        signal,
        means,
        force_after,
        not_forced,
    }
}

/// What a stop watches to tell a process that is shutting down from one that ignores the
/// signal: the listening sockets it held (by inode) and the ports they are on.
#[derive(Clone, Debug, Default)]
pub struct Watch {
    pub listening: Vec<u64>,
    pub ports: Vec<u16>,
}

impl Watch {
    /// The listening sockets `pids` hold in `state`.
    pub fn of(state: &State, pids: &[u32]) -> Self {
        let mut watch = Self::default();
        for s in state.sockets() {
            if s.is_listening() && s.pids.iter().any(|p| pids.contains(p)) {
                if let Some(inode) =
                    s.id.rsplit_once(" i")
                        .and_then(|(_, i)| i.parse::<u64>().ok())
                {
                    watch.listening.push(inode);
                }
                if !watch.ports.contains(&s.local_port) {
                    watch.ports.push(s.local_port);
                }
            }
        }
        watch
    }
}

/// The local processes connected to `ports` (other than `server`), as "psql (pid 4242)", and
/// how many connections come from other machines.
pub fn clients(state: &State, ports: &[u16], server: &[u32]) -> (Vec<String>, usize) {
    let mut local = Vec::new();
    let mut remote = 0;
    for s in state.local_clients(ports, server) {
        for pid in s.pids.iter().filter(|p| !server.contains(p)) {
            let name = state.processes.get(pid).map_or_else(
                || "?".to_owned(),
                |p| portscope_core::text::one_line(&p.name),
            );
            let entry = format!("{name} (pid {pid})");
            if !local.contains(&entry) {
                local.push(entry);
            }
        }
    }
    // Server ends of connections from elsewhere.
    for s in state.sockets() {
        if ports.contains(&s.local_port)
            && s.remote_addr
                .is_some_and(|a| !a.is_loopback() && a != s.local_addr)
            && s.pids.iter().any(|p| server.contains(p))
        {
            remote += 1;
        }
    }
    local.sort();
    (local, remote)
}

/// How far a process is in stopping: fewer processes, fewer sockets, or its listening sockets
/// closed are progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Progress {
    alive: usize,
    sockets: usize,
    listening: bool,
}

impl Progress {
    fn read(system: &mut os::System, members: &[u32], watch: &Watch) -> Self {
        let mut progress = Progress {
            alive: 0,
            sockets: 0,
            listening: false,
        };
        for &pid in members {
            if !os::is_running(pid) {
                continue;
            }
            progress.alive += 1;
            if let Ok(inodes) = Platform::socket_inodes(system, pid) {
                progress.sockets += inodes.len();
                progress.listening |= inodes.iter().any(|i| watch.listening.contains(i));
            } else {
                // Unreadable descriptors: assume it still listens (only forcing needs this).
                progress.listening = true;
            }
        }
        progress
    }

    fn better_than(self, before: Progress) -> bool {
        self.alive < before.alive
            || self.sockets < before.sockets
            || (before.listening && !self.listening)
    }
}

/// Sends the plan's signal, waits for the process (or its whole group) to go, and sends `KILL`
/// only when the plan allows it and the process made no progress for the plan's time — and,
/// when it held listening sockets, still listens (HUP, USR1, STOP or CONT are delivered and
/// reported, never escalated). A process that closed its listening sockets is shutting down and
/// is never forced; one that held none (`--pid` of a client) is judged on progress alone.
///
/// `now` says where to read the clients of a process that is still running: a fresh scan for
/// the CLI, the agent's live model (then at most a tick old) for the dashboard.
pub fn stop(
    process: &RawProcess,
    plan: &Plan,
    watch: &Watch,
    tree: bool,
    now: &dyn Fn() -> crate::Source,
) -> KillReport {
    let pid = process.pid;
    let name = process.name.clone();
    let signal = os::signal_by_name(&plan.signal);
    let signal_name = plan.signal.clone();
    let (target, members) = match (tree, process.pgrp) {
        (true, Some(group)) => (SignalTarget::Group(group), os::group_members(group)),
        _ => (SignalTarget::Process(pid), vec![pid]),
    };
    let report = |outcome, start: Instant, message: String| KillReport {
        pid,
        name: name.clone(),
        signal: signal_name.clone(),
        outcome,
        elapsed_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        message,
    };
    let start = Instant::now();
    let who = match target {
        SignalTarget::Group(g) => format!(
            "process group {g} of {name} (pid {pid}; {} processes)",
            members.len()
        ),
        SignalTarget::Process(_) => format!("{name} (pid {pid})"),
    };
    let sent = if plan.means.is_empty() {
        format!("sent SIG{signal_name} to {who}")
    } else {
        format!("sent SIG{signal_name} to {who} — {} —", plan.means)
    };
    if let Err(e) = os::send_signal(target, signal) {
        return report(
            KillOutcome::StillRunning,
            start,
            format!("could not send SIG{signal_name} to {who}: {e}"),
        );
    }
    if !ends_process(&signal_name) {
        return report(KillOutcome::Signalled, start, sent);
    }
    let mut system = os::System::new();
    let mut last = Progress::read(&mut system, &members, watch);
    let mut last_change = Instant::now();
    let limit = match plan.force_after {
        Some(_) => WAIT_MAX,
        None => WAIT_UNFORCED,
    };
    // Whether it is gone is checked often (one stat per process); its sockets, which cost a
    // readlink per descriptor, every eighth time.
    for round in 1u32.. {
        std::thread::sleep(Duration::from_millis(25));
        let alive = members.iter().any(|&m| os::is_running(m));
        if alive && round % 8 != 0 && start.elapsed() < limit {
            continue;
        }
        let now = if alive {
            Progress::read(&mut system, &members, watch)
        } else {
            Progress {
                alive: 0,
                sockets: 0,
                listening: false,
            }
        };
        if now.alive == 0 {
            let ms = start.elapsed().as_millis();
            return report(
                KillOutcome::Exited,
                start,
                format!("{} it exited after {ms} ms", sent_then(&sent)),
            );
        }
        if now.better_than(last) {
            last_change = Instant::now();
        }
        last = now;
        // A process that held no listener (`--pid` of a client) is judged on progress alone.
        if let Some(after) = plan.force_after
            && (now.listening || watch.listening.is_empty())
            && last_change.elapsed() >= after
        {
            let why = if watch.listening.is_empty() {
                "made no progress"
            } else {
                "still listened without progress"
            };
            return force(
                process,
                target,
                &who,
                &signal_name,
                (why, after),
                start,
                &report,
            );
        }
        if start.elapsed() >= limit {
            break;
        }
    }
    // Still there, and not forced: say why, and who keeps it alive.
    let (local, remote) = now().with(|state| clients(state, &watch.ports, &members));
    let mut message = format!(
        "{} it is still running after {} s",
        sent_then(&sent),
        start.elapsed().as_secs()
    );
    if !last.listening && !watch.listening.is_empty() {
        message.push_str(", with its port closed: it is shutting down");
    }
    if !local.is_empty() || remote > 0 {
        let mut who = local.clone();
        if remote > 0 {
            who.push(format!(
                "{remote} connection{} from other machines",
                if remote == 1 { "" } else { "s" }
            ));
        }
        message.push_str(&format!(
            ". Clients still connected, which may keep it waiting: {}",
            who.join(", ")
        ));
    }
    match (&plan.not_forced, plan.force_after) {
        (Some(why), _) => message.push_str(&format!(". Not forced: {why}")),
        (None, None) => message.push_str(". Not forced (--force-after never)"),
        (None, Some(_)) => message.push_str(
            ". Not forced: it kept making progress (closing its port, connections or processes)",
        ),
    }
    report(KillOutcome::StillRunning, start, message)
}

/// "sent SIGTERM to x (pid 1);" or, after a dash clause, "sent SIGINT to x — what it means — and".
fn sent_then(sent: &str) -> String {
    if sent.ends_with('—') {
        format!("{sent} and")
    } else {
        format!("{sent};")
    }
}

/// Sends `KILL` to a process that ignored the first signal, after checking that the pid is
/// still the same process.
fn force(
    process: &RawProcess,
    target: SignalTarget,
    who: &str,
    signal_name: &str,
    (why, after): (&str, Duration),
    start: Instant,
    report: &dyn Fn(KillOutcome, Instant, String) -> KillReport,
) -> KillReport {
    let mut platform = os::System::new();
    let same = Platform::process(&mut platform, process.pid)
        .is_some_and(|p| p.start_time == process.start_time);
    if !same {
        return report(
            KillOutcome::Exited,
            start,
            format!("{who} exited just before the forced stop"),
        );
    }
    if let Err(e) = os::send_signal(target, os::signal_by_name("KILL")) {
        return report(
            KillOutcome::StillRunning,
            start,
            format!("{who} ignored SIG{signal_name} and KILL failed: {e}"),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if !os::is_running(process.pid) {
            return report(
                KillOutcome::Forced,
                start,
                format!(
                    "{who} ignored SIG{signal_name} and {why} for {} s; sent KILL, and it is gone",
                    after.as_secs_f32()
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    report(
        KillOutcome::StillRunning,
        start,
        format!("{who} survived KILL (blocked in the kernel, state D?)"),
    )
}

/// Nothing to stop: not a usage error, but nothing was done (exit status 1).
#[derive(Debug, thiserror::Error)]
#[error("nothing holds port {0}, so nothing was stopped")]
pub struct NothingHolds(pub u16);

/// The pids of the port's listeners (TCP `LISTEN`, unconnected UDP), without the workers of a
/// pre-fork server whose master also holds it (they go with their master). Connections that
/// merely use the port (a browser's, an IDE's) are not "what holds a port": they need `--pid`.
pub fn holders<P: Platform>(
    collector: &mut Collector<P>,
    state: &State,
    port: u16,
) -> Result<Vec<u32>, NothingListens> {
    let on_port: Vec<_> = state.sockets().filter(|s| s.local_port == port).collect();
    let mut pids: Vec<u32> = on_port
        .iter()
        .filter(|s| s.is_listening())
        .flat_map(|s| s.pids.iter().copied())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    let all = pids.clone();
    pids.retain(|&pid| {
        !collector
            .raw_process(pid)
            .and_then(|p| p.ppid)
            .is_some_and(|parent| all.contains(&parent))
    });
    if pids.is_empty() {
        let (users, _) = clients(state, &[port], &[]);
        let mut users = users;
        for s in &on_port {
            for pid in &s.pids {
                let name = state.processes.get(pid).map_or_else(
                    || "?".to_owned(),
                    |p| portscope_core::text::one_line(&p.name),
                );
                users.push(format!("{name} (pid {pid})"));
            }
        }
        users.sort();
        users.dedup();
        if !users.is_empty() {
            return Err(NothingListens {
                port,
                users: users.join(", "),
            });
        }
    }
    Ok(pids)
}

/// Only connections use the port: name them, stop none.
#[derive(Debug, thiserror::Error)]
#[error(
    "nothing listens on port {port}; connections that use it belong to {users}. Stop one with `portscope kill --pid N` if you mean to"
)]
pub struct NothingListens {
    pub port: u16,
    pub users: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pid: u32, ppid: u32, pgrp: u32) -> RawProcess {
        RawProcess {
            pid,
            ppid: Some(ppid),
            name: "node".into(),
            exe: None,
            cmdline: vec![],
            uid: Some(1000),
            user: Some("dev".into()),
            start_time: None,
            start_ms: None,
            session: None,
            pgrp: Some(pgrp),
            state: Some('S'),
            cwd: None,
            project: None,
        }
    }

    const ME: Me = Me {
        pid: 500,
        pgrp: Some(400),
    };

    #[test]
    fn the_invoking_user_comes_from_sudo_pkexec_or_doas() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let users = |name: &str| (name == "dev").then_some(1000);
        assert_eq!(
            invoking_uid(env(&[("SUDO_UID", "1001")]), users),
            Some(1001)
        );
        assert_eq!(
            invoking_uid(env(&[("PKEXEC_UID", "1002")]), users),
            Some(1002)
        );
        assert_eq!(
            invoking_uid(env(&[("DOAS_USER", "dev")]), users),
            Some(1000)
        );
        assert_eq!(
            invoking_uid(env(&[("DOAS_USER", "nobody-here")]), users),
            None
        );
        assert_eq!(invoking_uid(env(&[("SUDO_UID", "x")]), users), None);
        assert_eq!(invoking_uid(env(&[]), users), None);
    }

    #[test]
    fn dangerous_targets_are_refused() {
        assert_eq!(
            refusal(1, Some(&process(1, 0, 1)), ME, false),
            Some(Refusal::Init(1))
        );
        assert_eq!(refusal(0, None, ME, false), Some(Refusal::Init(0)));
        assert_eq!(
            refusal(500, Some(&process(500, 1, 400)), ME, false),
            Some(Refusal::Itself(500))
        );
        assert_eq!(
            refusal(77, None, ME, false),
            Some(Refusal::NoSuchProcess(77))
        );
        assert!(matches!(
            refusal(30, Some(&process(30, 2, 0)), ME, false),
            Some(Refusal::Kernel(30, _))
        ));
        assert_eq!(
            refusal(600, Some(&process(600, 500, 400)), ME, true),
            Some(Refusal::OwnGroup(600, 400))
        );
        assert_eq!(
            refusal(600, Some(&process(600, 500, 400)), ME, false),
            None,
            "alone it may go"
        );
        assert_eq!(refusal(700, Some(&process(700, 1, 700)), ME, true), None);
        let message = Refusal::Init(1).to_string();
        assert!(message.contains("init"), "{message}");
    }

    #[test]
    fn each_program_is_stopped_its_own_way_and_databases_are_never_forced_unasked() {
        use portscope_core::testing::process as wire;
        let pg = wire(
            "postgres",
            &["/usr/lib/postgresql/15/bin/postgres", "-D", "/data"],
        );
        let p = plan(&pg, Some(5432), None, None);
        assert_eq!(p.signal, "INT", "PostgreSQL's fast shutdown");
        assert!(p.means.contains("fast shutdown"), "{}", p.means);
        assert_eq!(p.force_after, None);
        assert!(p.not_forced.as_deref().unwrap().contains("database"));
        // Asked explicitly: the user's signal, and forced when told to.
        let p = plan(
            &pg,
            Some(5432),
            Some("term"),
            Some(Some(Duration::from_secs(2))),
        );
        assert_eq!((p.signal.as_str(), p.means.as_str()), ("TERM", ""));
        assert_eq!(p.force_after, Some(Duration::from_secs(2)));
        assert_eq!(p.not_forced, None);

        let redis = wire("redis-server", &["redis-server", "127.0.0.1:6379"]);
        let p = plan(&redis, Some(6379), None, None);
        assert_eq!((p.signal.as_str(), p.force_after), ("TERM", None));

        let nginx = wire("nginx", &["nginx: master process /usr/sbin/nginx"]);
        let p = plan(&nginx, Some(80), None, None);
        assert_eq!(p.signal, "QUIT", "nginx's graceful stop");
        assert_eq!(p.force_after, Some(DEFAULT_FORCE_AFTER));

        let python = wire("python3", &["python3", "-m", "http.server"]);
        let p = plan(&python, Some(8000), None, None);
        assert_eq!((p.signal.as_str(), p.means.as_str()), ("TERM", ""));
        assert_eq!(p.force_after, Some(DEFAULT_FORCE_AFTER));
        assert_eq!(
            plan(&python, None, None, Some(None)).force_after,
            None,
            "never"
        );
        // A port alone never makes a database of an unknown program.
        let hidden = wire("python3", &["python3", "fake_pg.py"]);
        assert_eq!(
            plan(&hidden, Some(5432), None, None).force_after,
            Some(DEFAULT_FORCE_AFTER)
        );
    }

    #[test]
    fn clients_are_the_other_local_ends_of_the_servers_connections() {
        use portscope_core::testing::{listener, socket};
        use portscope_shared::SocketState;
        let v4 = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let server = listener(v4, 5432, 100);
        let mut backend = socket(
            "tcp 127.0.0.1:5432 127.0.0.1:40000 i2",
            SocketState::Established,
        );
        backend.local_port = 5432;
        backend.remote_addr = Some(v4);
        backend.remote_port = Some(40000);
        backend.pids = vec![101];
        let mut psql = socket(
            "tcp 127.0.0.1:40000 127.0.0.1:5432 i3",
            SocketState::Established,
        );
        psql.local_port = 40000;
        psql.remote_addr = Some(v4);
        psql.remote_port = Some(5432);
        psql.pids = vec![200];
        let mut remote = socket(
            "tcp 10.0.0.1:5432 10.0.0.9:5000 i4",
            SocketState::Established,
        );
        remote.local_addr = "10.0.0.1".parse().unwrap();
        remote.local_port = 5432;
        remote.remote_addr = Some("10.0.0.9".parse().unwrap());
        remote.remote_port = Some(5000);
        remote.pids = vec![100];
        // A psql left in CLOSE_WAIT by an earlier, stopped server on the same port: its
        // server end is gone, so it keeps nothing waiting.
        let mut stale = socket(
            "tcp 127.0.0.1:41000 127.0.0.1:5432 i5",
            SocketState::CloseWait,
        );
        stale.local_port = 41000;
        stale.remote_addr = Some(v4);
        stale.remote_port = Some(5432);
        stale.pids = vec![201];
        // Established, but to a server end no longer there (the model caught it half-way).
        let mut orphan = socket(
            "tcp 127.0.0.1:42000 127.0.0.1:5432 i6",
            SocketState::Established,
        );
        orphan.local_port = 42000;
        orphan.remote_addr = Some(v4);
        orphan.remote_port = Some(5432);
        orphan.pids = vec![202];
        let mut state =
            portscope_core::testing::state(&[server, backend, psql, remote, stale, orphan]);
        for (pid, name) in [(200, "psql"), (201, "psql"), (202, "psql")] {
            let mut p = portscope_core::testing::process(name, &[name]);
            p.pid = pid;
            state.processes.insert(pid, p);
        }
        let (local, others) = clients(&state, &[5432], &[100]);
        assert_eq!(local, vec!["psql (pid 200)".to_owned()]);
        assert_eq!(others, 1);
        let watch = Watch::of(&state, &[100]);
        assert_eq!(
            (watch.listening.as_slice(), watch.ports.as_slice()),
            (&[100][..], &[5432][..])
        );
    }

    #[test]
    fn progress_is_fewer_processes_sockets_or_a_closed_port() {
        let at = |alive, sockets, listening| Progress {
            alive,
            sockets,
            listening,
        };
        assert!(at(1, 3, true).better_than(at(2, 3, true)));
        assert!(at(2, 2, true).better_than(at(2, 3, true)));
        assert!(at(2, 3, false).better_than(at(2, 3, true)));
        assert!(!at(2, 3, true).better_than(at(2, 3, true)));
        assert!(
            !at(2, 4, true).better_than(at(2, 3, true)),
            "a new connection is not progress"
        );
    }
}
