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

/// Sends `signal`, waits for the process (or its whole group) to go, then `KILL` after
/// `force_after` if it is still there.
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
            (Some(port), None) => holders(&mut collector, port),
            (None, None) => bail!("give a port, or --pid N"),
        };
        if pids.is_empty() {
            bail!(NothingHolds(args.port.unwrap_or_default()));
        }
        let mut reports = Vec::new();
        for pid in pids {
            let process = collector.raw_process(pid);
            check(pid, process.as_ref(), me, args.tree)?;
            let process = process.expect("checked");
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
            writeln!(out, "{}", r.message)?;
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

/// The pids of the port's listeners, or of any socket bound to it when none listens.
fn holders<P: Platform>(collector: &mut Collector<P>, port: u16) -> Vec<u32> {
    let state = collector.scan();
    let on_port: Vec<_> = state
        .sockets
        .values()
        .filter(|s| s.local_port == port)
        .collect();
    let listening: Vec<_> = on_port.iter().filter(|s| s.is_listening()).collect();
    let chosen: Vec<_> = if listening.is_empty() {
        on_port.iter().collect()
    } else {
        listening
    };
    let mut pids: Vec<u32> = chosen.iter().flat_map(|s| s.pids.iter().copied()).collect();
    pids.sort_unstable();
    pids.dedup();
    pids
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
