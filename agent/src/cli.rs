//! Command-line interface: the subcommands and their options (clap).

use std::net::IpAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::engine::ArgValueCandidates;

use portscope_doctor::target::Target;

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
    /// Why a connection fails: resolves the target, connects to each address, and checks the
    /// listeners (address family, interface, IPV6_V6ONLY), stopped owners, full accept queues,
    /// containers, the firewall and the HTTP answer. Exit status 0 when it connects, 1 when not.
    Why(WhyArgs),
    /// Why a bind fails: binds the port as servers do (TCP 127.0.0.1, 0.0.0.0, ::1, :: with and
    /// without IPV6_V6ONLY, UDP) and explains each failure, then suggests free ports. Exit status
    /// 0 when every bind works, 1 when one fails.
    Bind(BindArgs),
    /// Free ports for a server: not privileged, outside the ephemeral ranges, not a well-known
    /// service's or dev tool's, and unused.
    Free(FreeArgs),
    /// Stop what holds a port (or a pid) the way its program expects (PostgreSQL INT, nginx
    /// QUIT, else TERM); KILL only for a program that still listens without progress, never for
    /// a database unless --force-after is given. Refuses pid 1, portscope itself, kernel threads
    /// and processes you may not signal.
    Kill(KillArgs),
    /// Wait until every port accepts connections (or answers HTTP 200-399 on --http PATH), for
    /// scripts. Exit status 0 when all are ready, 1 at the timeout (saying why), 2 for bad input.
    Wait(WaitArgs),
    /// Who held a port, and when: the listeners' history the agent keeps (newest first), read
    /// from its file without a running agent.
    History(HistoryArgs),
    /// Print socket changes as they happen, one line each: + opened, - closed, ~ owner changed
    /// (NDJSON with --json).
    Watch(WatchArgs),
    /// The agents a hub (`--peers FILE`) shows: add one, remove one, or list them with their
    /// status.
    Peer(PeerArgs),
    /// Who talks to whom: each client process → server process (or remote address) with the
    /// port and the number of connections, from one scan.
    Graph(GraphArgs),
    /// Answer a coding assistant over the Model Context Protocol, on stdin and stdout: put
    /// `portscope mcp` in the assistant's MCP configuration. Its tools are the commands (`ls`,
    /// `who`, `why`, `bind`, `free`, `wait`, `history`, `graph`; `kill` with --allow-kill),
    /// answered from the running agent's live model when one runs, else from a scan per call.
    Mcp(McpArgs),
    /// Print the shell's completion script, which completes this machine's listening ports and
    /// your peers' names as you type: `source <(portscope completions bash)` in ~/.bashrc.
    /// The script calls `portscope` on your PATH.
    Completions(CompletionsArgs),
    /// Print a manual page in roff (`portscope man why | man -l -`), or write them all.
    Man(ManArgs),
}

#[derive(Clone, Debug, Args)]
pub struct McpArgs {
    /// Offer the `kill` tool: the assistant may stop what holds a port, by the dashboard's rules
    /// (start time required, the program's own signal, never a database forced, never root's
    /// or a system account's daemons).
    #[arg(long)]
    pub allow_kill: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

#[derive(Clone, Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    pub shell: Shell,
}

#[derive(Clone, Debug, Args)]
pub struct ManArgs {
    /// The subcommand's page (`why` is portscope-why(1), `peer-add` portscope-peer-add(1));
    /// without it, portscope(1).
    #[arg(conflicts_with = "out")]
    pub page: Option<String>,
    /// Write every page (portscope.1, portscope-why.1, …) into this directory instead, for
    /// packagers.
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
}

#[derive(Clone, Debug, Args)]
pub struct GraphArgs {
    /// Print JSON (`{"nodes": [...], "edges": [...]}`) instead of text.
    #[arg(long, conflicts_with = "dot")]
    pub json: bool,
    /// Print Graphviz input (`portscope graph --dot | dot -Tsvg > map.svg`).
    #[arg(long)]
    pub dot: bool,
}

#[derive(Clone, Debug, Args)]
pub struct HistoryArgs {
    /// Only this port's listeners.
    #[arg(value_parser = parse_port, allow_negative_numbers = true, add = ArgValueCandidates::new(crate::candidates::listening_ports))]
    pub port: Option<u16>,
    /// From this long ago (`1h`) or this time: RFC 3339, or local `2026-11-29 14:02` or `14:02`
    /// (the latest 14:02).
    #[arg(long, value_parser = parse_moment)]
    pub since: Option<std::time::SystemTime>,
    /// Until this time (same forms).
    #[arg(long, value_parser = parse_moment)]
    pub until: Option<std::time::SystemTime>,
    /// Who held the port at this moment (same forms); needs PORT.
    #[arg(long, value_parser = parse_moment, requires = "port")]
    pub at: Option<std::time::SystemTime>,
    /// Only events of this process.
    #[arg(long)]
    pub pid: Option<u32>,
    /// At most this many events.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Print JSON (`{"events": [...]}`) instead of text.
    #[arg(long)]
    pub json: bool,
    /// The history file, if not the default one.
    #[arg(long, value_name = "PATH")]
    pub history: Option<std::path::PathBuf>,
}

fn parse_moment(s: &str) -> Result<std::time::SystemTime, portscope_history::MomentError> {
    portscope_history::moment(s)
}

#[derive(Clone, Debug, Args)]
pub struct WatchArgs {
    /// Only TCP listeners and unconnected UDP sockets.
    #[arg(long, short = 'l')]
    pub listening: bool,
    /// One JSON object per line (`time`, `kind`, `proto`, `family`, `local_addr`, `local_port`,
    /// `pid`, `process`, `cmdline`, `user`, `app`).
    #[arg(long)]
    pub json: bool,
    /// How often to look, e.g. `1s`, `250ms`.
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
}

#[derive(Clone, Debug, Args)]
pub struct WaitArgs {
    /// The ports (1-65535).
    #[arg(required = true, value_parser = parse_port, allow_negative_numbers = true, add = ArgValueCandidates::new(crate::candidates::listening_ports))]
    pub ports: Vec<u16>,
    /// Give up after this long, e.g. `30s`, `2m`.
    #[arg(long, default_value = "30s", value_parser = parse_timeout_long)]
    pub timeout: Duration,
    /// Ready only when `GET PATH` answers 200-399, e.g. `/health`.
    #[arg(long, value_name = "PATH")]
    pub http: Option<String>,
    /// The host to connect to.
    #[arg(long, default_value = "localhost")]
    pub host: String,
}

#[derive(Clone, Debug, Args)]
pub struct WhyArgs {
    /// A port (5173), host:port (localhost:5173), [v6]:port ([::1]:5173) or a URL
    /// (http://localhost:5173/).
    #[arg(value_parser = parse_target, add = ArgValueCandidates::new(crate::candidates::listening_ports))]
    pub target: Target,
    /// How long each connect may take.
    #[arg(long, default_value = "1s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Debug, Args)]
pub struct BindArgs {
    /// The port (1-65535).
    #[arg(value_parser = parse_port, allow_negative_numbers = true, add = ArgValueCandidates::new(crate::candidates::listening_ports))]
    pub port: u16,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Debug, Args)]
pub struct FreeArgs {
    /// Look for ports near this one.
    #[arg(long, default_value_t = portscope_doctor::free::DEFAULT_NEAR, value_parser = parse_port, allow_negative_numbers = true)]
    pub near: u16,
    /// How many ports to print.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub count: u16,
    /// Print --count consecutive ports (a block for a stack's web, API and debug ports): the
    /// block nearest to --near.
    #[arg(long)]
    pub consecutive: bool,
    /// Print JSON instead of one port per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["port", "pid"])))]
pub struct KillArgs {
    /// Stop the processes listening on this port.
    #[arg(value_parser = parse_port, allow_negative_numbers = true, add = ArgValueCandidates::new(crate::candidates::listening_ports))]
    pub port: Option<u16>,
    /// Stop this process instead.
    #[arg(long)]
    pub pid: Option<u32>,
    /// The first signal: TERM, INT, HUP, QUIT, KILL, USR1, USR2, STOP or CONT. Default: the
    /// program's own clean stop (PostgreSQL INT, nginx QUIT), else TERM.
    #[arg(long)]
    pub signal: Option<String>,
    /// Send KILL when it still listens without progress after this long, e.g. `5s`; `never`
    /// to only wait. Default: 5s, and never for a database (PostgreSQL, MySQL, Redis, MongoDB).
    #[arg(long, value_parser = parse_force_after)]
    pub force_after: Option<ForceAfter>,
    /// Signal the whole process group (e.g. `npm run dev` and the node it started), as Ctrl-C
    /// in its terminal would.
    #[arg(long)]
    pub tree: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Debug, Args)]
pub struct WhoArgs {
    /// The port (1-65535).
    #[arg(value_parser = parse_port, allow_negative_numbers = true, add = ArgValueCandidates::new(crate::candidates::listening_ports))]
    pub port: u16,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Debug, Args)]
pub struct ServeArgs {
    /// Port to listen on; 0 picks any free port.
    #[arg(long, default_value_t = DEFAULT_PORT, value_parser = parse_listen_port, allow_negative_numbers = true)]
    pub port: u16,
    /// Address to listen on. Must be a loopback address (127.0.0.0/8 or ::1).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// How often to rescan the machine when polling, e.g. `1s`, `500ms`.
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Poll every --interval even where the kernel can report changes as they happen (Linux,
    /// root or CAP_BPF + CAP_PERFMON): no BPF probes are loaded.
    #[arg(long)]
    pub no_kernel_events: bool,
    /// With kernel events: how often a full scan reconciles the model with the machine (it
    /// catches what the kernel does not report: UDP sockets closing, descriptors passed on).
    #[arg(long, default_value = "30s", value_parser = parse_interval)]
    pub reconcile: Duration,
    /// Open the dashboard in the default browser once the agent is up.
    #[arg(long)]
    pub open: bool,
    /// Do not let the dashboard stop processes (hides "Stop process"; `POST /api/v1/kill` answers
    /// 403).
    #[arg(long)]
    pub no_kill: bool,
    /// Share the dashboard with other machines: listen on ADDR (default 0.0.0.0) over HTTPS,
    /// with a self-signed certificate kept in ~/.config/portscope/tls (its SHA-256 fingerprint is
    /// printed under the URL) unless --tls-cert/--tls-key give your own. The token is still
    /// required; stopping processes needs --allow-kill.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "0.0.0.0")]
    pub share: Option<IpAddr>,
    /// Share mode: the certificate chain (PEM).
    #[arg(long, value_name = "PATH", requires = "share")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// Share mode: the certificate's private key (PEM).
    #[arg(long, value_name = "PATH", requires = "share")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Share mode: let the dashboard stop processes (read-only otherwise).
    #[arg(long, requires = "share")]
    pub allow_kill: bool,
    /// Run as root: let the dashboard stop processes of root and of system accounts (below
    /// UID_MIN of /etc/login.defs) too. Without it a root agent's dashboard stops only the
    /// processes of the user who ran sudo (or pkexec, doas), and no daemon.
    #[arg(long)]
    pub allow_kill_system: bool,
    /// Another host name clients use to reach the agent (repeatable), e.g. a name mapped to
    /// 127.0.0.1 in /etc/hosts; in share mode the machine's own name and addresses are always
    /// accepted. Matched exactly, case-insensitively.
    #[arg(long, value_name = "NAME")]
    pub allow_host: Vec<String>,
    /// Another page origin allowed to use the API and WebSocket (repeatable), given exactly, e.g.
    /// `http://localhost:3000` for your own tool; no patterns.
    #[arg(long, value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,
    /// Where to keep the port history (SQLite); default
    /// `$XDG_STATE_HOME/portscope/history.db` (`~/.local/state/portscope/history.db`).
    #[arg(long, value_name = "PATH")]
    pub history: Option<std::path::PathBuf>,
    /// Keep no port history.
    #[arg(long, conflicts_with = "history")]
    pub no_history: bool,
    /// How long the history keeps events, e.g. `7d`.
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
    pub history_keep: Duration,
    /// The most the history file may take, e.g. `50MB`; the oldest events go first.
    #[arg(long, default_value = "200MB", value_name = "SIZE")]
    pub history_max_size: bytesize::ByteSize,
    /// Never send health checks (a `GET /` every 10 s, while a dashboard on this machine's
    /// loopback is open, to the loopback listeners known to serve HTTP).
    #[arg(long)]
    pub no_probe: bool,
    /// Keep the access token in this file (yours, mode 0600, not a link), made with a new
    /// token at the first start: open dashboards reconnect across restarts (the systemd unit
    /// uses it). Instead of PORTSCOPE_TOKEN.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<std::path::PathBuf>,
    /// A second token, read from this file (yours, mode 0600, not a link), that reads
    /// `GET /metrics` and nothing else: give it to Prometheus instead of the agent's token.
    #[arg(long, value_name = "PATH")]
    pub metrics_token_file: Option<std::path::PathBuf>,
    /// Be a hub: also show the agents listed in this TOML file (`portscope peer add` writes
    /// it; it holds their tokens, so it must be readable by you alone).
    #[arg(long, value_name = "FILE")]
    pub peers: Option<std::path::PathBuf>,
    /// A hub keeps at most this much of each peer's sockets and processes, e.g. `64MB`; a peer
    /// past it is refused, saying so, until it shrinks.
    #[arg(long, default_value = "64MB", value_name = "SIZE", requires = "peers")]
    pub peer_max_size: bytesize::ByteSize,
}

#[derive(Clone, Debug, Args)]
pub struct PeerArgs {
    /// The peers file; default `$XDG_CONFIG_HOME/portscope/peers.toml`
    /// (`~/.config/portscope/peers.toml`).
    #[arg(long, value_name = "FILE", global = true)]
    pub file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub action: PeerAction,
}

#[derive(Clone, Debug, Subcommand)]
pub enum PeerAction {
    /// Add an agent to the peers file. Its token is read from stdin or PORTSCOPE_PEER_TOKEN,
    /// never from the command line.
    Add {
        /// A short name for it, shown as its host (letters, digits, `-`, `_`, `.`).
        name: String,
        /// Its base URL, as its `--share` printed it without the token: `https://ADDR:PORT/`.
        #[arg(value_parser = parse_peer_url)]
        url: String,
        /// The SHA-256 fingerprint its `--share` printed (`AB:CD:…`).
        #[arg(long, required_unless_present = "ca", conflicts_with = "ca", value_parser = portscope_server::peers::config::normalize_fingerprint)]
        fingerprint: Option<String>,
        /// A CA certificate (PEM) that signed its certificate, instead of a fingerprint.
        #[arg(long, value_name = "PATH")]
        ca: Option<std::path::PathBuf>,
    },
    /// Take an agent out of the peers file.
    Remove {
        /// Its name in the file.
        #[arg(add = ArgValueCandidates::new(crate::candidates::peer_names))]
        name: String,
    },
    /// Connect to each peer once and say how it answered. Exit status 1 when one is not live.
    List {
        /// Print JSON (`{"hosts": [...]}`, as `GET /api/v1/hosts`).
        #[arg(long)]
        json: bool,
    },
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
    #[arg(long, short = 'p', value_parser = parse_port, allow_negative_numbers = true, add = ArgValueCandidates::new(crate::candidates::listening_ports))]
    pub port: Option<u16>,
    /// Only sockets held by this process.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Only listeners on all interfaces or an interface address (not loopback), flagging debug
    /// and data services.
    #[arg(long)]
    pub exposed: bool,
    /// Listeners grouped by project (the git repository or worktree their process works in),
    /// as a tree.
    #[arg(long, conflicts_with = "json")]
    pub by_project: bool,
}

impl ServeArgs {
    /// `--bind`'s default.
    pub fn default_bind() -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
    }
}

/// Why a command-line value was refused; clap prints it after the argument's name.
#[derive(Debug, thiserror::Error)]
enum ArgError {
    #[error(transparent)]
    Target(#[from] portscope_doctor::target::TargetError),
    #[error("{source}; expected a duration such as {example}")]
    Duration {
        #[source]
        source: humantime::DurationError,
        example: &'static str,
    },
    #[error("the {what} must lie between {min} and {max}")]
    OutOfRange {
        what: &'static str,
        min: &'static str,
        max: &'static str,
    },
    #[error("a port is a number from 1 to 65535")]
    PortOutOfRange,
    #[error("`{0}` is not a port number; expected a number from 1 to 65535, e.g. 5173")]
    NotAPort(String),
    #[error("{0} (or 0 to take any free port)")]
    ListenPort(Box<ArgError>),
}

fn parse_target(s: &str) -> Result<Target, ArgError> {
    Ok(portscope_doctor::target::parse(s)?)
}

/// A duration (`example` says what one looks like) between `min` and `max`, said as `what`.
fn duration_within(
    s: &str,
    example: &'static str,
    (min, max): (Duration, Duration),
    (what, min_text, max_text): (&'static str, &'static str, &'static str),
) -> Result<Duration, ArgError> {
    let d =
        humantime::parse_duration(s).map_err(|source| ArgError::Duration { source, example })?;
    if d < min || d > max {
        return Err(ArgError::OutOfRange {
            what,
            min: min_text,
            max: max_text,
        });
    }
    Ok(d)
}

fn parse_timeout(s: &str) -> Result<Duration, ArgError> {
    duration_within(
        s,
        "`1s` or `300ms`",
        (Duration::from_millis(10), Duration::from_secs(60)),
        ("timeout", "10ms", "60s"),
    )
}

/// `wait --timeout`: from 100 ms to a day.
fn parse_timeout_long(s: &str) -> Result<Duration, ArgError> {
    duration_within(
        s,
        "`30s` or `2m`",
        (Duration::from_millis(100), Duration::from_secs(86_400)),
        ("timeout", "100ms", "24h"),
    )
}

/// `kill --force-after`: a duration, or `never`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForceAfter(pub Option<Duration>);

/// A port for `who`, `bind`, `kill`, `free --near`: said in words when it is not one.
fn parse_port(s: &str) -> Result<u16, ArgError> {
    match s.trim().parse::<u32>() {
        Ok(port @ 1..=65535) => Ok(port as u16),
        Ok(_) => Err(ArgError::PortOutOfRange),
        Err(_) => Err(ArgError::NotAPort(s.to_owned())),
    }
}

/// `serve --port`: a port, or 0 for any free one.
fn parse_listen_port(s: &str) -> Result<u16, ArgError> {
    match s.trim() {
        "0" => Ok(0),
        other => parse_port(other).map_err(|e| ArgError::ListenPort(Box::new(e))),
    }
}

/// `peer add`'s URL, refused before the token is read: https:// with a port, nothing else.
fn parse_peer_url(s: &str) -> Result<String, portscope_server::peers::config::FieldError> {
    portscope_server::peers::config::check_url(s).map(|()| s.to_owned())
}

fn parse_force_after(s: &str) -> Result<ForceAfter, ArgError> {
    if s == "never" {
        return Ok(ForceAfter(None));
    }
    humantime::parse_duration(s)
        .map(|d| ForceAfter(Some(d)))
        .map_err(|source| ArgError::Duration {
            source,
            example: "`5s`, or `never`",
        })
}

fn parse_interval(s: &str) -> Result<Duration, ArgError> {
    duration_within(
        s,
        "`1s` or `250ms`",
        (Duration::from_millis(50), Duration::from_secs(3600)),
        ("interval", "50ms", "1h"),
    )
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
        assert_eq!(parse_interval("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(
            parse_interval("1ms").unwrap_err().to_string(),
            "the interval must lie between 50ms and 1h"
        );
        assert!(
            parse_interval("soon")
                .unwrap_err()
                .to_string()
                .ends_with("; expected a duration such as `1s` or `250ms`")
        );
        assert_eq!(
            parse_listen_port("70000").unwrap_err().to_string(),
            "a port is a number from 1 to 65535 (or 0 to take any free port)"
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
              serve        Run the agent and its dashboard (the default)
              ls           Print every socket and its owner once, as a table or as JSON
              who          Who holds a port: its sockets and, for each owner, command line, working directory and the processes that started it. Exit status 0 when something holds it, 1 when nothing does
              why          Why a connection fails: resolves the target, connects to each address, and checks the listeners (address family, interface, IPV6_V6ONLY), stopped owners, full accept queues, containers, the firewall and the HTTP answer. Exit status 0 when it connects, 1 when not
              bind         Why a bind fails: binds the port as servers do (TCP 127.0.0.1, 0.0.0.0, ::1, :: with and without IPV6_V6ONLY, UDP) and explains each failure, then suggests free ports. Exit status 0 when every bind works, 1 when one fails
              free         Free ports for a server: not privileged, outside the ephemeral ranges, not a well-known service's or dev tool's, and unused
              kill         Stop what holds a port (or a pid) the way its program expects (PostgreSQL INT, nginx QUIT, else TERM); KILL only for a program that still listens without progress, never for a database unless --force-after is given. Refuses pid 1, portscope itself, kernel threads and processes you may not signal
              wait         Wait until every port accepts connections (or answers HTTP 200-399 on --http PATH), for scripts. Exit status 0 when all are ready, 1 at the timeout (saying why), 2 for bad input
              history      Who held a port, and when: the listeners' history the agent keeps (newest first), read from its file without a running agent
              watch        Print socket changes as they happen, one line each: + opened, - closed, ~ owner changed (NDJSON with --json)
              peer         The agents a hub (`--peers FILE`) shows: add one, remove one, or list them with their status
              graph        Who talks to whom: each client process → server process (or remote address) with the port and the number of connections, from one scan
              mcp          Answer a coding assistant over the Model Context Protocol, on stdin and stdout: put `portscope mcp` in the assistant's MCP configuration. Its tools are the commands (`ls`, `who`, `why`, `bind`, `free`, `wait`, `history`, `graph`; `kill` with --allow-kill), answered from the running agent's live model when one runs, else from a scan per call
              completions  Print the shell's completion script, which completes this machine's listening ports and your peers' names as you type: `source <(portscope completions bash)` in ~/.bashrc. The script calls `portscope` on your PATH
              man          Print a manual page in roff (`portscope man why | man -l -`), or write them all
              help         Print this message or the help of the given subcommand(s)

            Options:
                  --port <PORT>
                      Port to listen on; 0 picks any free port

                      [default: 7678]

                  --bind <BIND>
                      Address to listen on. Must be a loopback address (127.0.0.0/8 or ::1)

                      [default: 127.0.0.1]

                  --interval <INTERVAL>
                      How often to rescan the machine when polling, e.g. `1s`, `500ms`

                      [default: 1s]

                  --no-kernel-events
                      Poll every --interval even where the kernel can report changes as they happen (Linux, root or CAP_BPF + CAP_PERFMON): no BPF probes are loaded

                  --reconcile <RECONCILE>
                      With kernel events: how often a full scan reconciles the model with the machine (it catches what the kernel does not report: UDP sockets closing, descriptors passed on)

                      [default: 30s]

                  --open
                      Open the dashboard in the default browser once the agent is up

                  --no-kill
                      Do not let the dashboard stop processes (hides "Stop process"; `POST /api/v1/kill` answers 403)

                  --share [<ADDR>]
                      Share the dashboard with other machines: listen on ADDR (default 0.0.0.0) over HTTPS, with a self-signed certificate kept in ~/.config/portscope/tls (its SHA-256 fingerprint is printed under the URL) unless --tls-cert/--tls-key give your own. The token is still required; stopping processes needs --allow-kill

                  --tls-cert <PATH>
                      Share mode: the certificate chain (PEM)

                  --tls-key <PATH>
                      Share mode: the certificate's private key (PEM)

                  --allow-kill
                      Share mode: let the dashboard stop processes (read-only otherwise)

                  --allow-kill-system
                      Run as root: let the dashboard stop processes of root and of system accounts (below UID_MIN of /etc/login.defs) too. Without it a root agent's dashboard stops only the processes of the user who ran sudo (or pkexec, doas), and no daemon

                  --allow-host <NAME>
                      Another host name clients use to reach the agent (repeatable), e.g. a name mapped to 127.0.0.1 in /etc/hosts; in share mode the machine's own name and addresses are always accepted. Matched exactly, case-insensitively

                  --allow-origin <ORIGIN>
                      Another page origin allowed to use the API and WebSocket (repeatable), given exactly, e.g. `http://localhost:3000` for your own tool; no patterns

                  --history <PATH>
                      Where to keep the port history (SQLite); default `$XDG_STATE_HOME/portscope/history.db` (`~/.local/state/portscope/history.db`)

                  --no-history
                      Keep no port history

                  --history-keep <HISTORY_KEEP>
                      How long the history keeps events, e.g. `7d`

                      [default: 30d]

                  --history-max-size <SIZE>
                      The most the history file may take, e.g. `50MB`; the oldest events go first

                      [default: 200MB]

                  --no-probe
                      Never send health checks (a `GET /` every 10 s, while a dashboard on this machine's loopback is open, to the loopback listeners known to serve HTTP)

                  --token-file <PATH>
                      Keep the access token in this file (yours, mode 0600, not a link), made with a new token at the first start: open dashboards reconnect across restarts (the systemd unit uses it). Instead of PORTSCOPE_TOKEN

                  --metrics-token-file <PATH>
                      A second token, read from this file (yours, mode 0600, not a link), that reads `GET /metrics` and nothing else: give it to Prometheus instead of the agent's token

                  --peers <FILE>
                      Be a hub: also show the agents listed in this TOML file (`portscope peer add` writes it; it holds their tokens, so it must be readable by you alone)

                  --peer-max-size <SIZE>
                      A hub keeps at most this much of each peer's sockets and processes, e.g. `64MB`; a peer past it is refused, saying so, until it shrinks

                      [default: 64MB]

              -h, --help
                      Print help (see a summary with '-h')

              -V, --version
                      Print version"#]].assert_eq(&help);
    }
}
