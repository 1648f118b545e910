//! `portscope who PORT`: who holds a port, printed as text or JSON.

use std::io::Write;

use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context;
use portscope_shared::{Owner, OwnerStatus, Process, WhoReport};

use crate::cli::WhoArgs;
use portscope_core::collector::Collector;
use portscope_doctor::Source;
use portscope_doctor::who::report;

/// Prints the report; `Ok(true)` when something holds the port (exit status 0), `Ok(false)`
/// when nothing does (exit status 1).
pub async fn run(args: WhoArgs) -> anyhow::Result<bool> {
    let report = answer(args.port, Source::scan()).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        print(&mut out, &report)?;
    }
    out.flush()?;
    Ok(!report.sockets.is_empty())
}

/// Who holds `port`, read from `source` (the owners' details always from this machine).
pub async fn answer(port: u16, source: Source) -> anyhow::Result<WhoReport> {
    tokio::task::spawn_blocking(move || {
        let mut collector = Collector::this_machine();
        source.with(|state| report(&mut collector, state, port))
    })
    .await
    .context("the scan failed")
}

fn print(out: &mut impl Write, report: &WhoReport) -> std::io::Result<()> {
    let port = report.port;
    if report.sockets.is_empty() {
        writeln!(
            out,
            "Nothing holds port {port}: no TCP or UDP socket is bound to it."
        )?;
        return Ok(());
    }
    let n = report.sockets.len();
    writeln!(
        out,
        "Port {port}: {n} socket{}",
        if n == 1 { "" } else { "s" }
    )?;
    let mut tw = tabwriter::TabWriter::new(&mut *out).padding(2);
    for s in &report.sockets {
        let (local, remote) = (s.local_endpoint(), s.remote_text());
        let owner = match s.owner {
            OwnerStatus::Known => {
                let pids: Vec<String> = s.pids.iter().map(|p| format!("pid {p}")).collect();
                pids.join(", ")
            }
            OwnerStatus::Hidden => format!(
                "hidden (uid {})",
                s.uid.map_or_else(|| "?".into(), |u| u.to_string())
            ),
            OwnerStatus::None => "no process (kernel)".into(),
        };
        // What serves it, as `--json` says (a container's published port names the container).
        let app = s
            .app
            .as_deref()
            .map(|a| format!("\t{}", portscope_core::text::one_line(a)))
            .unwrap_or_default();
        writeln!(
            tw,
            "  {}\t{local}\t{remote}\t{}\t{owner}{app}",
            s.proto_label(),
            s.state.as_str()
        )?;
    }
    tw.flush()?;
    drop(tw);
    for owner in &report.owners {
        writeln!(out)?;
        print_owner(out, owner)?;
    }
    if !report.clients.is_empty() {
        writeln!(out, "\nClients on this machine:")?;
        let mut tw = tabwriter::TabWriter::new(&mut *out).padding(2);
        for c in &report.clients {
            let who = c.process.as_ref().map_or_else(
                || "hidden or gone".to_owned(),
                |p| {
                    format!(
                        "{} (pid {})",
                        portscope_core::text::one_line(&p.name),
                        p.pid
                    )
                },
            );
            writeln!(
                tw,
                "  {who}\t{} → {}\t{}",
                c.socket.local_endpoint(),
                c.socket.remote_text(),
                c.socket.state.as_str()
            )?;
        }
        tw.flush()?;
    }
    for hint in &report.hints {
        writeln!(out, "\nNote: {hint}")?;
    }
    Ok(())
}

fn print_owner(out: &mut impl Write, owner: &Owner) -> std::io::Result<()> {
    let p = &owner.process;
    let user = p
        .user
        .clone()
        .or_else(|| p.uid.map(|u| format!("uid {u}")))
        .unwrap_or_else(|| "unknown user".into());
    let started = p.start_time.map(started).unwrap_or_default();
    writeln!(
        out,
        "{} (pid {}), user {user}{started}",
        portscope_core::text::one_line(&p.name),
        p.pid
    )?;
    writeln!(out, "  command: {}", command(p))?;
    if let Some(cwd) = &owner.cwd {
        writeln!(out, "  cwd:     {cwd}")?;
    }
    if p.ppid == Some(1) {
        writeln!(out, "  parent:  pid 1 (a daemon, or its parent exited)")?;
    }
    if !owner.ancestors.is_empty() {
        let chain: Vec<String> = owner
            .ancestors
            .iter()
            .map(|a| format!("{} (pid {})", command(a), a.pid))
            .collect();
        writeln!(out, "  started by: {}", chain.join(" ← "))?;
    }
    Ok(())
}

/// The command line on one line (control characters escaped, so a `python -c '…'` with
/// newlines cannot break the layout or the terminal), or the name when it is unreadable
/// (kernel threads, exited processes).
fn command(p: &Process) -> String {
    if p.cmdline.is_empty() {
        return portscope_core::text::one_line(&p.name);
    }
    portscope_core::text::one_line(&p.cmdline.join(" "))
}

fn started(unix_secs: u64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(unix_secs);
    format!(", started {}", humantime::format_rfc3339_seconds(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use portscope_core::testing::process;

    #[test]
    fn command_lines_stay_on_one_line() {
        let p = process(
            "python3",
            &["python3", "-c", "import os\nos.system('\x1b[2J')"],
        );
        assert_eq!(command(&p), r"python3 -c import os\nos.system('\u{1b}[2J')");
        assert_eq!(command(&process("kworker/0:1", &[])), "kworker/0:1");
    }
}
