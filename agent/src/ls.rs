//! `portscope ls`: one scan, printed as a table or as JSON.

use std::collections::BTreeSet;
use std::io::Write;

use anyhow::Context;
use portscope_shared::{OwnerStatus, Snapshot, Socket};

use crate::cli::LsArgs;
use crate::collector::Collector;
use crate::{os, refresh};

pub async fn run(args: LsArgs) -> anyhow::Result<()> {
    let (_, state) = refresh::scan_blocking(Collector::new(os::System::new()))
        .await
        .context("the runtime stopped during the scan")?;
    let state = state.map_err(|what| anyhow::anyhow!("the scan failed: {what}"))?;
    let mut snapshot = state.snapshot();
    filter(&mut snapshot, &args);
    for warning in &snapshot.warnings {
        eprintln!("portscope: warning: {warning}");
    }
    // Stdout is line-buffered: one write per line would cost a system call per JSON line.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &snapshot)?;
        writeln!(out)?;
    } else {
        print_table(&mut out, &snapshot)?;
    }
    out.flush()?;
    Ok(())
}

/// Keeps the sockets the options ask for, and the processes that hold them.
pub fn filter(snapshot: &mut Snapshot, args: &LsArgs) {
    snapshot.sockets.retain(|s| {
        (!args.listening || s.is_listening())
            && args
                .port
                .is_none_or(|p| s.local_port == p || s.remote_port == Some(p))
            && args.pid.is_none_or(|pid| s.pids.contains(&pid))
            && (!args.exposed
                || s.exposure
                    .is_some_and(|e| e != portscope_shared::Exposure::Loopback))
    });
    let pids: BTreeSet<u32> = snapshot
        .sockets
        .iter()
        .flat_map(|s| s.pids.clone())
        .collect();
    snapshot.processes.retain(|p| pids.contains(&p.pid));
}

fn print_table(out: &mut impl Write, snapshot: &Snapshot) -> std::io::Result<()> {
    let mut sockets: Vec<&Socket> = snapshot.sockets.iter().collect();
    sockets.sort_by_key(|s| {
        (
            s.local_port,
            s.proto,
            s.local_addr,
            s.remote_addr,
            s.remote_port,
        )
    });
    let mut tw = tabwriter::TabWriter::new(&mut *out).padding(2);
    writeln!(tw, "PROTO\tLOCAL\tREMOTE\tSTATE\tPID\tPROCESS\tUSER\tWHAT")?;
    for s in &sockets {
        let (local, remote) = (s.local_endpoint(), s.remote_text());
        let procs: Vec<_> = s
            .pids
            .iter()
            .filter_map(|pid| snapshot.processes.iter().find(|p| p.pid == *pid))
            .collect();
        let (pid, name, user) = match s.owner {
            OwnerStatus::Known => (
                join(s.pids.iter()),
                join(procs.iter().map(|p| crate::text::one_line(&p.name))),
                join(procs.iter().filter_map(|p| p.user.as_ref())),
            ),
            OwnerStatus::Hidden => ("?".into(), "(hidden: run as root)".into(), uid(s)),
            OwnerStatus::None => ("-".into(), "-".into(), uid(s)),
        };
        let proto = s.proto_label();
        let what = s.app.as_deref().or(s.service.as_deref()).unwrap_or("-");
        writeln!(
            tw,
            "{proto}\t{local}\t{remote}\t{}\t{pid}\t{name}\t{user}\t{what}",
            s.state.as_str()
        )?;
    }
    tw.flush()?;
    drop(tw);
    for s in sockets.iter().filter(|s| s.risk.is_some()) {
        writeln!(
            out,
            "warning: {} {}: {}",
            s.local_endpoint(),
            s.app.as_deref().unwrap_or("?"),
            s.risk.as_deref().unwrap_or_default()
        )?;
    }
    Ok(())
}

fn join<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let parts: Vec<String> = items.map(|i| i.to_string()).collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(",")
    }
}

fn uid(s: &Socket) -> String {
    s.uid.map_or_else(|| "-".into(), |uid| format!("uid {uid}"))
}
