//! `portscope completions SHELL` and the candidates the shell is offered as you type: this
//! machine's listening ports (with their programs, where the shell shows a description) and
//! the peers' names. clap_complete's dynamic completion does the shell's side: the script
//! calls `portscope` back with `COMPLETE=SHELL`, and [`register`] answers before any command
//! runs.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use clap::CommandFactory;
use clap_complete::engine::CompletionCandidate;
use clap_complete::env::{EnvCompleter, Shells};

use crate::cli::{Cli, CompletionsArgs, Shell};
use portscope_core::collector::Collector;

/// The variable the scripts set when they call `portscope` back (clap_complete's default).
const VAR: &str = "COMPLETE";

/// Answers the shell when it calls back for candidates (and exits); otherwise returns.
pub fn register() {
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(VAR)
        .complete();
}

/// Prints the shell's script.
pub fn run(args: CompletionsArgs) -> anyhow::Result<()> {
    let name = match args.shell {
        Shell::Bash => "bash",
        Shell::Zsh => "zsh",
        Shell::Fish => "fish",
        Shell::Powershell => "powershell",
        Shell::Elvish => "elvish",
    };
    let shells = Shells::builtins();
    let shell: &dyn EnvCompleter = shells
        .completer(name)
        .ok_or_else(|| anyhow::anyhow!("clap_complete has no {name} support"))?;
    let mut out = Vec::new();
    // The script calls `portscope` on the PATH, as the command the user types is.
    shell.write_registration(VAR, "portscope", "portscope", "portscope", &mut out)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()?;
    Ok(())
}

/// This machine's listening ports, each with the programs listening on it.
pub fn listening_ports() -> Vec<CompletionCandidate> {
    let state = Collector::this_machine().scan();
    let mut ports: BTreeMap<u16, BTreeSet<&str>> = BTreeMap::new();
    for socket in state.sockets.values().filter(|s| s.is_listening()) {
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
