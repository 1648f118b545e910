//! What the shell's completion offers as you type (clap_complete's dynamic candidates, named
//! in `cli.rs`): this machine's listening ports, with their programs where the shell shows a
//! description, and the peers' names. Nothing here knows the command line's types.

use std::collections::{BTreeMap, BTreeSet};

use clap_complete::engine::CompletionCandidate;

use portscope_core::collector::Collector;

/// This machine's listening ports, each with the programs listening on it.
pub fn listening_ports() -> Vec<CompletionCandidate> {
    let state = Collector::this_machine().scan();
    let mut ports: BTreeMap<u16, BTreeSet<&str>> = BTreeMap::new();
    for socket in state.sockets().filter(|s| s.is_listening()) {
        let names = ports.entry(socket.local_port).or_default();
        names.extend(
            socket
                .pids
                .iter()
                .filter_map(|pid| state.processes.get(pid))
                .map(|p| p.name.as_str()),
        );
    }
    ports
        .into_iter()
        .map(|(port, names)| {
            let help = (!names.is_empty())
                .then(|| names.into_iter().collect::<Vec<_>>().join(", ").into());
            CompletionCandidate::new(port.to_string()).help(help)
        })
        .collect()
}

/// The peers' names in the default peers file (none when it is missing or unreadable: a
/// completion prints no error).
pub fn peer_names() -> Vec<CompletionCandidate> {
    portscope_server::peers::config::default_path()
        .and_then(|path| portscope_server::peers::config::names(&path).ok())
        .unwrap_or_default()
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}
