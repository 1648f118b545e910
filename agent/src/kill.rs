//! `portscope kill <port>` / `--pid N` and `POST /api/v1/kill`: stop what holds a port, gracefully
//! first and forced after a timeout, refusing pid 1, portscope itself, kernel threads and
//! processes the user may not signal.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::bail;
use portscope_shared::{KillOutcome, KillReport};

use crate::cli::KillArgs;
use crate::collector::{Collector, Platform, RawProcess};
use crate::os::{self, SignalTarget};

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
}

impl Refusal {
    /// Stable, machine-readable kind for the HTTP answer.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoSuchProcess(_) => "no_such_process",
            Self::NotASocketOwner(_) => "not_a_socket_owner",
            Self::Changed(_) => "process_changed",
            Self::OtherUser { .. } => "other_user",
            Self::NotPermitted { .. } => "not_permitted",
            Self::Init(_) | Self::Itself(_) | Self::Kernel(..) | Self::OwnGroup(..) => "refused",
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

/// The dashboard's extra rules, on a fresh scan: the pid holds a socket now, is the process the
/// page showed (same start time), and belongs to the user who started portscope (`SUDO_UID`
/// when run with sudo), so that a root agent's dashboard cannot stop system daemons.
pub fn allowed_from_dashboard<P: Platform>(
    collector: &mut Collector<P>,
    req: &portscope_shared::KillRequest,
    me: Me,
) -> Result<(), Refusal> {
    let pid = req.pid;
    let state = collector.scan();
    if !state.sockets.values().any(|s| s.pids.contains(&pid)) {
        return Err(Refusal::NotASocketOwner(pid));
    }
    let process = collector.raw_process(pid);
    check(pid, process.as_ref(), me, false)?;
    let process = process.ok_or(Refusal::NoSuchProcess(pid))?;
    if req.start_time.is_some() && req.start_time != process.start_time {
        return Err(Refusal::Changed(pid));
    }
    let invoking = std::env::var("SUDO_UID")
        .ok()
        .and_then(|uid| uid.parse::<u32>().ok())
        .or(collector.euid());
    if process.uid.is_none() || process.uid != invoking {
        return Err(Refusal::OtherUser {
            pid,
            name: process.name.clone(),
            user: process
                .user
                .clone()
                .unwrap_or_else(|| format!("uid {}", process.uid.unwrap_or_default())),
        });
    }
    Ok(())
}

/// Whether a signal asks a process to end (so waiting for it, and forcing, make sense).
fn ends_process(signal: &str) -> bool {
    matches!(signal, "TERM" | "INT" | "QUIT" | "KILL")
}

/// Sends `signal`, waits for the process (or its whole group) to go, then `KILL` after
/// `force_after` if it is still there (only for TERM, INT and QUIT; HUP, USR1, STOP or CONT are
/// delivered and reported, not escalated).
pub fn stop(
    process: &RawProcess,
    signal_name: &str,
    force_after: Option<Duration>,
    tree: bool,
) -> KillReport {
    let pid = process.pid;
    let name = process.name.clone();
    let signal = os::signal_by_name(signal_name);
    let signal_name = signal_name.trim_start_matches("SIG").to_ascii_uppercase();
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
    if let Err(e) = os::send_signal(target, signal) {
        return report(
            KillOutcome::StillRunning,
            start,
            format!("could not send SIG{signal_name} to {who}: {e}"),
        );
    }
    if !ends_process(&signal_name) {
        return report(
            KillOutcome::Signalled,
            start,
            format!("sent SIG{signal_name} to {who}"),
        );
    }
    let gone = |deadline: Instant| loop {
        if !members.iter().any(|&m| os::is_running(m)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    // Without a forced stop, wait a little so the report can say whether it went.
    let grace = force_after.unwrap_or(Duration::from_secs(2));
    if gone(start + grace) {
        let ms = start.elapsed().as_millis();
        return report(
            KillOutcome::Exited,
            start,
            format!("sent SIG{signal_name} to {who}; it exited after {ms} ms"),
        );
    }
    let Some(after) = force_after else {
        return report(
            KillOutcome::StillRunning,
            start,
            format!(
                "sent SIG{signal_name} to {who}; it is still running after {} s (add --force-after to send KILL)",
                grace.as_secs()
            ),
        );
    };
    // The pid must still be the same process (not exited and reused) before it gets KILL.
    let same = |p: &RawProcess| p.start_time == process.start_time;
    let mut platform = os::System::new();
    if !crate::collector::Platform::process(&mut platform, pid).is_some_and(|p| same(&p)) {
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
    if gone(Instant::now() + Duration::from_secs(3)) {
        report(
            KillOutcome::Forced,
            start,
            format!(
                "{who} ignored SIG{signal_name} for {} s; sent KILL, and it is gone",
                after.as_secs_f32()
            ),
        )
    } else {
        report(
            KillOutcome::StillRunning,
            start,
            format!("{who} survived KILL (blocked in the kernel, state D?)"),
        )
    }
}

/// The CLI: resolve the port or pid, check each, stop each, print. `Ok(true)` when all stopped.
pub async fn run(args: KillArgs) -> anyhow::Result<bool> {
    let signal = args.signal.to_ascii_uppercase();
    if os::signal_by_name(&signal).is_none() {
        bail!(
            "unknown signal `{}`: expected TERM, INT, HUP, QUIT, KILL, USR1, USR2, STOP or CONT",
            args.signal
        );
    }
    let reports = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<KillReport>> {
        let mut collector = Collector::new(os::System::new());
        let me = Me::current(&mut collector);
        let pids = match (args.port, args.pid) {
            (_, Some(pid)) => vec![pid],
            (Some(port), None) => holders(&mut collector, port)?,
            (None, None) => bail!("give a port, or --pid N"),
        };
        if pids.is_empty() {
            bail!(NothingHolds(args.port.unwrap_or_default()));
        }
        // Every holder is checked before any is signalled: a refusal stops nothing.
        let mut processes = Vec::new();
        for pid in pids {
            let process = collector.raw_process(pid);
            check(pid, process.as_ref(), me, args.tree)?;
            processes.extend(process);
        }
        let mut reports = Vec::new();
        for process in processes {
            // A pre-fork server's workers go with their master.
            if !os::is_running(process.pid) {
                reports.push(KillReport {
                    pid: process.pid,
                    name: process.name.clone(),
                    signal: signal.clone(),
                    outcome: KillOutcome::Exited,
                    elapsed_ms: 0,
                    message: format!(
                        "{} (pid {}) exited with the processes stopped before it",
                        process.name, process.pid
                    ),
                });
                continue;
            }
            reports.push(stop(&process, &signal, args.force_after.0, args.tree));
        }
        Ok(reports)
    })
    .await??;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &reports)?;
        writeln!(out)?;
    } else {
        for r in &reports {
            writeln!(out, "{}", crate::text::one_line(&r.message))?;
        }
    }
    Ok(reports
        .iter()
        .all(|r| r.outcome != KillOutcome::StillRunning))
}

/// Nothing to stop: not a usage error, but nothing was done (exit status 1).
#[derive(Debug, thiserror::Error)]
#[error("nothing holds port {0}, so nothing was stopped")]
pub struct NothingHolds(pub u16);

/// The pids of the port's listeners (TCP `LISTEN`, unconnected UDP). Connections that merely use
/// the port (a browser's, an IDE's) are not "what holds a port": they need `--pid`.
fn holders<P: Platform>(collector: &mut Collector<P>, port: u16) -> anyhow::Result<Vec<u32>> {
    let state = collector.scan();
    let on_port: Vec<_> = state
        .sockets
        .values()
        .filter(|s| s.local_port == port)
        .collect();
    let mut pids: Vec<u32> = on_port
        .iter()
        .filter(|s| s.is_listening())
        .flat_map(|s| s.pids.iter().copied())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    if pids.is_empty() {
        let mut users: Vec<String> = on_port
            .iter()
            .flat_map(|s| s.pids.iter())
            .map(|pid| match state.processes.get(pid) {
                Some(p) => format!("{} (pid {pid})", crate::text::one_line(&p.name)),
                None => format!("pid {pid}"),
            })
            .collect();
        users.sort();
        users.dedup();
        if !users.is_empty() {
            bail!(NothingListens {
                port,
                users: users.join(", ")
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
            session: None,
            pgrp: Some(pgrp),
            state: Some('S'),
        }
    }

    const ME: Me = Me {
        pid: 500,
        pgrp: Some(400),
    };

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
}
