//! Command-line interface: the subcommands and their options (clap).

use std::net::IpAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// The port the dashboard listens on by default: "PORT" on a phone keypad. It lies below every
/// OS's ephemeral range (Linux 32768–60999, IANA/Windows/macOS 49152–65535, FreeBSD 10000–65535,
/// old Windows 1025–5000 excepted above) and is not used by a common dev tool.
pub const DEFAULT_PORT: u16 = 7678;

/// Who holds a port, and why a connection fails: every local TCP/UDP socket and its owner, live.
///
/// Without a subcommand, portscope runs `serve`: it starts the agent and prints the dashboard's
/// URL (with its access token) as the first line on stdout. The token is new at every start,
/// unless the environment variable PORTSCOPE_TOKEN sets one (32 or more characters of
/// A-Z a-z 0-9 - _), so that open dashboards reconnect after a restart.
#[derive(Debug, Parser)]
#[command(name = "portscope", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent and its dashboard (the default).
    Serve(ServeArgs),
    /// Print every socket and its owner once, as a table or as JSON.
    Ls(LsArgs),
    /// Who holds a port: its sockets and, for each owner, command line, working directory and
    /// the processes that started it. Exit status 0 when something holds it, 1 when nothing does.
    Who(WhoArgs),
}

#[derive(Clone, Debug, Args)]
pub struct WhoArgs {
    /// The port (1-65535).
    #[arg(value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Debug, Args)]
pub struct ServeArgs {
    /// Port to listen on; 0 picks any free port.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Address to listen on. Must be a loopback address (127.0.0.0/8 or ::1).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// How often to rescan the machine, e.g. `1s`, `500ms`.
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Open the dashboard in the default browser once the agent is up.
    #[arg(long)]
    pub open: bool,
}

#[derive(Clone, Debug, Args)]
pub struct LsArgs {
    /// Print JSON (the same shape as `GET /api/v1/snapshot`) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only listening sockets: TCP in LISTEN and unconnected UDP.
    #[arg(long, short = 'l')]
    pub listening: bool,
    /// Only sockets whose local or remote port is this one.
    #[arg(long, short = 'p')]
    pub port: Option<u16>,
    /// Only sockets held by this process.
    #[arg(long)]
    pub pid: Option<u32>,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("{e}; expected a duration such as `1s` or `250ms`"))?;
    if d < Duration::from_millis(50) || d > Duration::from_secs(3600) {
        return Err("the interval must lie between 50ms and 1h".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use expect_test::expect;

    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn intervals_are_bounded() {
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_interval("1ms").unwrap_err().contains("between"));
        assert!(
            parse_interval("soon")
                .unwrap_err()
                .contains("expected a duration")
        );
    }

    #[test]
    fn help_snapshot() {
        let help = Cli::command().render_long_help().to_string();
        // clap pads blank lines; trailing spaces do not survive editors and rustfmt.
        let help: Vec<&str> = help.lines().map(str::trim_end).collect();
        let help = help.join("\n");
        expect![[r#"
            Who holds a port, and why a connection fails: every local TCP/UDP socket and its owner, live.

            Without a subcommand, portscope runs `serve`: it starts the agent and prints the dashboard's URL (with its access token) as the first line on stdout. The token is new at every start, unless the environment variable PORTSCOPE_TOKEN sets one (32 or more characters of A-Z a-z 0-9 - _), so that open dashboards reconnect after a restart.

            Usage: portscope [OPTIONS]
                   portscope <COMMAND>

            Commands:
              serve  Run the agent and its dashboard (the default)
              ls     Print every socket and its owner once, as a table or as JSON
              who    Who holds a port: its sockets and, for each owner, command line, working directory and the processes that started it. Exit status 0 when something holds it, 1 when nothing does
              help   Print this message or the help of the given subcommand(s)

            Options:
                  --port <PORT>
                      Port to listen on; 0 picks any free port

                      [default: 7678]

                  --bind <BIND>
                      Address to listen on. Must be a loopback address (127.0.0.0/8 or ::1)

                      [default: 127.0.0.1]

                  --interval <INTERVAL>
                      How often to rescan the machine, e.g. `1s`, `500ms`

                      [default: 1s]

                  --open
                      Open the dashboard in the default browser once the agent is up

              -h, --help
                      Print help (see a summary with '-h')

              -V, --version
                      Print version"#]].assert_eq(&help);
    }
}
