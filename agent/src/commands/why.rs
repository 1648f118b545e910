//! `portscope why`, `bind` and `free`: the doctor's answers for the command line, printed as
//! text or JSON, with the exit status each promises.

use std::io::Write;

use portscope_shared::{Diagnosis, FreePorts};

use crate::cli::{BindArgs, FreeArgs, WhyArgs};
use portscope_core::collector::Collector;
use portscope_core::os;
use portscope_doctor::{Previous, Source, UsageError, bind, free, print, probe, why};

/// `portscope why`: `Ok(true)` when some address connected (exit status 0).
pub async fn run_why(args: WhyArgs) -> anyhow::Result<bool> {
    let target = &args.target;
    let addrs = probe::resolve(&target.host, target.port)
        .await
        .map_err(|e| UsageError(e.to_string()))?;
    let opts = why::Options {
        timeout: args.timeout,
        http_probe: true,
    };
    let mut facts = why::gather(target, addrs, Source::scan(), opts).await?;
    if facts.local {
        let path = portscope_history::default_path();
        facts.previous = Previous::unless_listening(path.as_deref(), target.port, &facts.sockets);
    }
    let d = why::analyze(&facts);
    output(&d, args.json)?;
    Ok(facts.probes.iter().any(|(_, c)| c.is_connected()))
}

/// `portscope bind`: `Ok(true)` when every bind works (exit status 0).
pub async fn run_bind(args: BindArgs) -> anyhow::Result<bool> {
    let port = args.port;
    let facts = tokio::task::spawn_blocking(move || {
        let mut facts = Source::scan().with(|state| bind::gather(state, port));
        let path = portscope_history::default_path();
        facts.previous = Previous::unless_listening(path.as_deref(), port, &facts.sockets);
        facts
    })
    .await?;
    let d = bind::analyze(&facts);
    output(&d, args.json)?;
    Ok(!facts.attempts.iter().any(|(_, r)| bind::failed(r)))
}

/// `portscope free`.
pub async fn run_free(args: FreeArgs) -> anyhow::Result<()> {
    let ports = tokio::task::spawn_blocking(move || {
        let state = Collector::this_machine().scan();
        let find = if args.consecutive {
            free::find_block
        } else {
            free::find
        };
        find(
            args.near,
            usize::from(args.count),
            &state,
            &os::port_settings(),
            portscope_core::ports::Services::system(),
        )
    })
    .await?;
    if args.consecutive && ports.is_empty() {
        anyhow::bail!(
            "no {} consecutive free ports lie between 1024 and {}; ask for fewer",
            args.count,
            portscope_core::ports::IANA_DYNAMIC.first - 1
        );
    }
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
