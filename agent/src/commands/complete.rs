//! `portscope completions SHELL`: the shell's script. clap_complete's dynamic completion does
//! the shell's side: the script calls `portscope` back with `COMPLETE=SHELL`, and [`register`]
//! answers before any command runs, with the candidates of `crate::candidates`.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::env::{EnvCompleter, Shells};

use crate::cli::{Cli, CompletionsArgs, Shell};

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
