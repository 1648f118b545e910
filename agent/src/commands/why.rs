//! `portscope why`, `bind` and `free`: the doctor's answers for the command line, printed as
//! text or JSON, with the exit status each promises.

use std::io::Write;

use portscope_shared::{Diagnosis, FreePorts};

use std::time::Duration;

use crate::cli::{BindArgs, FreeArgs, WhyArgs};
use portscope_core::os;
use portscope_doctor::target::Target;
use portscope_doctor::{Previous, Source, UsageError, bind, free, print, probe, why};

/// `portscope why`: `Ok(true)` when some address connected (exit status 0).
pub async fn run_why(args: WhyArgs) -> anyhow::Result<bool> {
    let (d, connected) = diagnose(&args.target, args.timeout, Source::scan()).await?;
    output(&d, args.json)?;
    Ok(connected)
}

/// Why connecting to `target` fails (or works), from `source`, and whether some address
/// connected. Sends the HTTP probe: the user (or their assistant) asks on this machine.
pub async fn diagnose(
    target: &Target,
    timeout: Duration,
    source: Source,
) -> anyhow::Result<(Diagnosis, bool)> {
    let addrs = probe::resolve(&target.host, target.port)
        .await
        .map_err(|e| UsageError(e.to_string()))?;
    let opts = why::Options {
        timeout,
        http_probe: true,
    };
    let mut facts = why::gather(target, addrs, source, opts).await?;
    if facts.local {
        let path = portscope_history::default_path();
        facts.previous = Previous::unless_listening(path.as_deref(), target.port, &facts.sockets);
    }
    let connected = facts.probes.iter().any(|(_, c)| c.is_connected());
    Ok((why::analyze(&facts), connected))
}

/// `portscope bind`: `Ok(true)` when every bind works (exit status 0).
pub async fn run_bind(args: BindArgs) -> anyhow::Result<bool> {
    let (d, works) = bind_diagnosis(args.port, Source::scan()).await?;
    output(&d, args.json)?;
    Ok(works)
}

/// Why binding `port` fails (or works), with the holders read from `source`, and whether every
/// bind worked.
pub async fn bind_diagnosis(port: u16, source: Source) -> anyhow::Result<(Diagnosis, bool)> {
    let facts = tokio::task::spawn_blocking(move || {
        let mut facts = source.with(|state| bind::gather(state, port));
        let path = portscope_history::default_path();
        facts.previous = Previous::unless_listening(path.as_deref(), port, &facts.sockets);
        facts
    })
    .await?;
    let works = !facts.attempts.iter().any(|(_, r)| bind::failed(r));
    Ok((bind::analyze(&facts), works))
}

/// `portscope free`.
pub async fn run_free(args: FreeArgs) -> anyhow::Result<()> {
    let ports = free_ports(args.near, args.count, args.consecutive, Source::scan()).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &FreePorts { ports })?;
        writeln!(out)?;
    } else {
        for port in ports {
            writeln!(out, "{port}")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `count` free ports near `near` (a block of consecutive ones with `consecutive`), judged
/// against the sockets in `source`; an error when no block fits.
pub async fn free_ports(
    near: u16,
    count: u16,
    consecutive: bool,
    source: Source,
) -> anyhow::Result<Vec<u16>> {
    let ports = tokio::task::spawn_blocking(move || {
        let find = if consecutive {
            free::find_block
        } else {
            free::find
        };
        source.with(|state| {
            find(
                near,
                usize::from(count),
                state,
                &os::port_settings(),
                portscope_core::ports::Services::system(),
            )
        })
    })
    .await?;
    if consecutive && ports.is_empty() {
        anyhow::bail!(
            "no {count} consecutive free ports lie between 1024 and {}; ask for fewer",
            portscope_core::ports::IANA_DYNAMIC.first - 1
        );
    }
    Ok(ports)
}

fn output(d: &Diagnosis, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, d)?;
        writeln!(out)?;
    } else {
        print(&mut out, d)?;
    }
    out.flush()?;
    Ok(())
}
