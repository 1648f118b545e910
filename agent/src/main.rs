//! `portscope`: the agent binary. Parses the command line and hands over to `serve`, `ls`,
//! `who`, the doctor (`why`, `bind`, `free`) or `kill`.

mod candidates;
mod cli;
mod commands;
#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod layers;
mod mcp;
mod serve;

use std::process::ExitCode;

use clap::Parser;

use portscope_core::os;
#[cfg(target_os = "linux")]
use portscope_core::projects;
use portscope_doctor::kill;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    // A project lookup helper started by this binary (projects/helper.rs), not a command.
    #[cfg(target_os = "linux")]
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == projects::HELPER_ARG)
    {
        return projects::serve_helper();
    }
    // The shell's completion script calling back for candidates: answered here, then exit.
    commands::complete::register();
    let cli = Cli::parse();
    if matches!(cli.command, None | Some(Command::Serve(_))) {
        // The daemon runs for days: one malloc arena keeps its memory ~15 % lower.
        os::use_one_malloc_arena();
    }
    // Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "portscope=info".into()),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("portscope: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            None => serve::run(cli.serve).await.map(|()| ExitCode::SUCCESS),
            Some(Command::Serve(args)) => serve::run(args).await.map(|()| ExitCode::SUCCESS),
            Some(Command::Ls(args)) => commands::ls::run(args).await.map(|()| ExitCode::SUCCESS),
            // 0 when something holds the port, 1 when nothing does (like `grep`).
            Some(Command::Who(args)) => commands::who::run(args).await.map(status),
            Some(Command::Why(args)) => commands::why::run_why(args).await.map(status),
            Some(Command::Bind(args)) => commands::why::run_bind(args).await.map(status),
            Some(Command::Free(args)) => commands::why::run_free(args)
                .await
                .map(|()| ExitCode::SUCCESS),
            Some(Command::Kill(args)) => commands::kill::run(args).await.map(status),
            Some(Command::Wait(args)) => commands::wait::run(args).await.map(status),
            Some(Command::History(args)) => commands::history::run(args).map(status),
            Some(Command::Watch(args)) => {
                commands::watch::run(args).await.map(|()| ExitCode::SUCCESS)
            }
            Some(Command::Peer(args)) => commands::peer::run(args).await,
            Some(Command::Graph(args)) => {
                commands::graph::run(args).await.map(|()| ExitCode::SUCCESS)
            }
            Some(Command::Mcp(args)) => mcp::run(args).await.map(|()| ExitCode::SUCCESS),
            Some(Command::Completions(args)) => {
                commands::complete::run(args).map(|()| ExitCode::SUCCESS)
            }
            Some(Command::Man(args)) => commands::man::run(args).map(|()| ExitCode::SUCCESS),
        }
    });
    match result {
        Ok(code) => code,
        // `portscope ls | head` closing the pipe early is not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        // Bad input found after parsing: usage errors, like clap's.
        Err(e) if is_usage_error(&e) => {
            eprintln!("portscope: {e:#}");
            ExitCode::from(2)
        }
        Err(e)
            if e.is::<kill::Refusal>()
                || e.is::<kill::NothingHolds>()
                || e.is::<kill::NothingListens>() =>
        {
            eprintln!("portscope: {e:#}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("portscope: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// 0 when the question's answer is yes, 1 when no (like `grep`).
fn status(yes: bool) -> ExitCode {
    if yes {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn is_usage_error(e: &anyhow::Error) -> bool {
    e.is::<portscope_doctor::UsageError>()
        || e.is::<commands::man::NoSuchPage>()
        || matches!(
            e.downcast_ref::<kill::Refusal>(),
            Some(kill::Refusal::NoSuchProcess(_))
        )
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
