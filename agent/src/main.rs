//! `portscope`: the agent binary. Parses the command line and hands over to `serve`, `ls` or
//! `who`.

mod cli;
mod collector;
mod ls;
mod model;
mod os;
mod refresh;
mod serve;
mod server;
mod who;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
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
            Some(Command::Ls(args)) => ls::run(args).await.map(|()| ExitCode::SUCCESS),
            // 0 when something holds the port, 1 when nothing does (like `grep`).
            Some(Command::Who(args)) => who::run(args).await.map(|found| {
                if found {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }),
        }
    });
    match result {
        Ok(code) => code,
        // `portscope ls | head` closing the pipe early is not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portscope: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
