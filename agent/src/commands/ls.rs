//! `portscope ls`: one scan, printed as a table or as JSON.

use std::collections::BTreeSet;
use std::io::Write;

use anyhow::Context;
use portscope_shared::{OwnerStatus, Snapshot, Socket};

use crate::cli::LsArgs;
use portscope_core::collector::Collector;
use portscope_server::refresh;

pub async fn run(args: LsArgs) -> anyhow::Result<()> {
    let (_, state) = refresh::scan_blocking(Collector::this_machine())
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
    } else if args.by_project {
        print_by_project(&mut out, &snapshot)?;
    } else {
        print_table(&mut out, &snapshot)?;
    }
    out.flush()?;
    Ok(())
}

/// Keeps the sockets the options ask for, and the processes that hold them.
pub fn filter(snapshot: &mut Snapshot, args: &LsArgs) {
    snapshot.sockets.retain(|s| {
        (!(args.listening || args.by_project) || s.is_listening())
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
                join(
                    procs
                        .iter()
                        .map(|p| portscope_core::text::one_line(&p.name)),
                ),
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

/// Listeners under their projects, as a tree: each project (by name, then "no project"), and
/// under it each listener with its owner and what serves it.
fn print_by_project(out: &mut impl Write, snapshot: &Snapshot) -> std::io::Result<()> {
    use std::collections::BTreeMap;
    let process = |pid: &u32| snapshot.processes.iter().find(|p| p.pid == *pid);
    let mut groups: BTreeMap<Option<(String, String, String)>, Vec<&Socket>> = BTreeMap::new();
    for s in &snapshot.sockets {
        let project = s.pids.iter().find_map(|pid| process(pid)?.project.as_ref());
        let key = project.map(|p| {
            let source = serde_json::to_value(p.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            (p.name.clone(), source, p.root.clone())
        });
        groups.entry(key).or_default().push(s);
    }
    // Projects by name first; the listeners of no project last.
    let mut ordered: Vec<_> = groups.into_iter().collect();
    ordered.sort_by_key(|(key, _)| (key.is_none(), key.clone()));
    // Headings and rows; the rows' columns line up across every project.
    let mut lines: Vec<Result<String, [String; 3]>> = Vec::new();
    for (key, mut sockets) in ordered {
        lines.push(Ok(match key {
            Some((name, source, root)) => format!(
                "{}  ({source}: {})",
                portscope_core::text::one_line(&name),
                portscope_core::text::one_line(&root)
            ),
            None => "no project".into(),
        }));
        sockets.sort_by_key(|s| (s.local_port, s.proto, s.local_addr));
        let last = sockets.len().saturating_sub(1);
        for (i, s) in sockets.iter().enumerate() {
            let branch = if i == last { "└─" } else { "├─" };
            let owner = match s.owner {
                OwnerStatus::Known => join(s.pids.iter().map(|pid| match process(pid) {
                    Some(p) => format!("{} (pid {pid})", portscope_core::text::one_line(&p.name)),
                    None => format!("pid {pid}"),
                })),
                OwnerStatus::Hidden => "(hidden: run as root)".into(),
                OwnerStatus::None => "-".into(),
            };
            let what = s.app.as_deref().or(s.service.as_deref()).unwrap_or("");
            lines.push(Err([
                format!("{branch} {} {}", s.proto_label(), s.local_endpoint()),
                owner,
                portscope_core::text::one_line(what),
            ]));
        }
    }
    let width = |col: usize| {
        lines
            .iter()
            .filter_map(|l| l.as_ref().err())
            .map(|cells| cells[col].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (first, second) = (width(0), width(1));
    for line in lines {
        match line {
            Ok(heading) => writeln!(out, "{heading}")?,
            Err([endpoint, owner, what]) => writeln!(
                out,
                "{}",
                format!("{endpoint:<first$}  {owner:<second$}  {what}").trim_end()
            )?,
        }
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

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use portscope_shared::{Process, Project, ProjectSource};

    use super::*;
    use portscope_core::testing::{listener, process};

    #[test]
    fn listeners_are_printed_under_their_projects() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let with = |pid, name: &str, project: Option<(&str, ProjectSource)>| Process {
            pid,
            project: project.map(|(p, source)| Project {
                name: p.into(),
                root: format!("/home/dev/{p}"),
                source,
            }),
            ..process(name, &[])
        };
        let mut vite = listener(lo, 5173, 10);
        vite.app = Some("Vite dev server".into());
        let mut ssh = listener(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 22, 30);
        ssh.service = Some("ssh".into());
        let snapshot = Snapshot {
            seq: 1,
            sockets: vec![ssh, listener(lo, 8000, 11), vite, listener(lo, 3000, 20)],
            processes: vec![
                with(10, "node", Some(("my-app", ProjectSource::Git))),
                with(11, "python3", Some(("my-app", ProjectSource::Git))),
                with(20, "node", Some(("my-app@fix", ProjectSource::Worktree))),
                with(30, "sshd", None),
            ],
            warnings: vec![],
            more: false,
        };
        let mut out = Vec::new();
        print_by_project(&mut out, &snapshot).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        assert_eq!(
            lines,
            [
                "my-app  (git: /home/dev/my-app)",
                "├─ tcp 127.0.0.1:5173  node (pid 10)     Vite dev server",
                "└─ tcp 127.0.0.1:8000  python3 (pid 11)",
                "my-app@fix  (worktree: /home/dev/my-app@fix)",
                "└─ tcp 127.0.0.1:3000  node (pid 20)",
                "no project",
                "└─ tcp6 [::]:22        sshd (pid 30)     ssh",
            ],
            "{text}"
        );
    }
}
