//! `portscope kill`: stops what holds a port (or a pid), as the user's own act, and says how it
//! went.

use std::io::Write;

use anyhow::bail;
use portscope_shared::{KillOutcome, KillReport};

use crate::cli::KillArgs;
use portscope_core::collector::Collector;
use portscope_core::os;
use portscope_doctor::kill::{
    ForceChoice, Me, NothingHolds, Watch, check, holders, not_a_container_forwarder, plan, stop,
};

/// The CLI: resolve the port or pid, check each, stop each, print. `Ok(true)` when all stopped.
pub async fn run(args: KillArgs) -> anyhow::Result<bool> {
    let signal = args.signal.as_deref().map(str::to_ascii_uppercase);
    if let Some(signal) = &signal
        && os::signal_by_name(signal).is_none()
    {
        bail!("unknown signal `{signal}`: expected {}", os::SIGNAL_NAMES);
    }
    let force: ForceChoice = args.force_after.map(|f| f.0);
    let reports = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<KillReport>> {
        let mut collector = Collector::this_machine();
        let me = Me::current(&mut collector);
        let state = collector.scan();
        let pids = match (args.port, args.pid) {
            (_, Some(pid)) => vec![pid],
            (Some(port), None) => holders(&mut collector, &state, port)?,
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
            if let Some(process) = &process {
                not_a_container_forwarder(&state, process)?;
            }
            processes.extend(process);
        }
        let mut reports = Vec::new();
        for process in processes {
            let wire = portscope_core::collector::to_wire_process(process.clone());
            let plan = plan(&wire, args.port, signal.as_deref(), force);
            let watch = Watch::of(&state, &[process.pid]);
            reports.push(stop(&process, &plan, &watch, args.tree, &|| {
                portscope_doctor::Source::scan()
            }));
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
            writeln!(out, "{}", portscope_core::text::one_line(&r.message))?;
        }
    }
    Ok(reports
        .iter()
        .all(|r| r.outcome != KillOutcome::StillRunning))
}
