//! `portscope graph`: who talks to whom, as text, JSON or Graphviz DOT.

use portscope_core::graph::{HostNames, dot, name_remotes, of, text};

/// Who talks to whom in `state`, remote addresses named as /etc/hosts names them.
pub fn named(state: &portscope_core::model::State) -> portscope_shared::Graph {
    let mut graph = of(state);
    name_remotes(&mut graph, &HostNames::read());
    graph
}

/// `portscope graph`: one scan, printed as text, JSON or DOT.
pub async fn run(args: crate::cli::GraphArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let collector = portscope_core::collector::Collector::this_machine();
    let (_, state) = portscope_server::refresh::scan_blocking(collector)
        .await
        .context("the runtime stopped during the scan")?;
    let state = state.map_err(|what| anyhow::anyhow!("the scan failed: {what}"))?;
    for warning in &state.warnings {
        eprintln!("portscope: warning: {warning}");
    }
    let graph = named(&state);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &graph)?;
        writeln!(out)?;
    } else if args.dot {
        out.write_all(dot(&graph).as_bytes())?;
    } else {
        out.write_all(text(&graph).as_bytes())?;
    }
    out.flush()?;
    Ok(())
}
