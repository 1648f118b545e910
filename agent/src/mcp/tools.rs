//! The MCP tools as an assistant sees them: each one's name (the CLI's), the question it
//! answers, its arguments (the CLI's options) and the JSON it answers with (what `--json`
//! prints), as JSON Schemas made from the types below and the protocol's (schemars).

use rmcp::handler::server::tool::{schema_for_output, schema_for_type};
use rmcp::model::{Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use portscope_shared::{
    Diagnosis, Event, FreePorts, Graph, KillReport, Process, Socket, SocketState, WhoReport,
};

/// The most sockets one `ls` answer holds.
pub const MAX_LIMIT: usize = 1000;
/// How many sockets `ls` answers with when not told.
pub const DEFAULT_LIMIT: usize = 100;
/// The most sockets (and clients) a `who` answer lists.
pub const MAX_WHO: usize = 200;
/// The most edges a `graph` answer holds (the busiest).
pub const MAX_EDGES: usize = 500;
/// The longest `wait` may wait.
pub const MAX_WAIT_SECS: u64 = 120;

/// `ls`'s arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LsParams {
    /// Only sockets whose local or remote port is this one (1-65535).
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u32>,
    /// Only sockets held by this process.
    pub pid: Option<u32>,
    /// Only sockets held by processes whose name contains this, ignoring case (`node`).
    pub process: Option<String>,
    /// Only sockets in this state (`LISTEN`, `ESTABLISHED`, `TIME_WAIT`, …).
    pub state: Option<SocketState>,
    /// Only listening sockets: TCP in LISTEN and unconnected UDP.
    #[serde(default)]
    pub listening: bool,
    /// Only listeners on all interfaces or an interface address (reachable from other machines).
    #[serde(default)]
    pub exposed: bool,
    /// Only sockets of processes working in this project (the git repository's name).
    pub project: Option<String>,
    /// Skip this many sockets: the previous answer's `next_offset`.
    #[serde(default)]
    pub offset: usize,
    /// At most this many sockets (default 100, at most 1000).
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<usize>,
}

/// One page of `ls`: the sockets (sorted by port) and the processes that hold them.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LsPage {
    pub sockets: Vec<Socket>,
    pub processes: Vec<Process>,
    /// How many sockets match in all.
    pub total: usize,
    /// This page's first socket among them.
    pub offset: usize,
    /// The `offset` that asks for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<usize>,
    /// What the scan could not read (other users' processes, say).
    pub warnings: Vec<String>,
    /// The running agent's state number this page was read from (0 for a scan): pages of
    /// different numbers were read from different moments, and sockets may have moved between.
    pub seq: u64,
}

/// The arguments of `who` and `bind`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortParams {
    /// The port (1-65535).
    #[schemars(range(min = 1, max = 65535))]
    pub port: u32,
}

/// `why`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WhyParams {
    /// What the client connects to: a port (`5173`), `host:port` (`localhost:5173`),
    /// `[v6]:port` (`[::1]:5173`) or a URL (`http://localhost:5173/`).
    pub target: String,
    /// How long each connect may take, in milliseconds (default 1000, 10 to 60000).
    #[schemars(range(min = 10, max = 60000))]
    pub timeout_ms: Option<u64>,
}

/// `free`'s arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FreeParams {
    /// Look for ports near this one (default 8000).
    #[schemars(range(min = 1, max = 65535))]
    pub near: Option<u32>,
    /// How many ports (default 5, at most 100).
    #[schemars(range(min = 1, max = 100))]
    pub count: Option<u32>,
    /// `count` consecutive ports (a stack's web, API and debug ports): the block nearest `near`.
    #[serde(default)]
    pub consecutive: bool,
}

/// `wait`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitParams {
    /// The ports that must accept connections (1-65535 each).
    pub ports: Vec<u32>,
    /// Give up after this many seconds (default 30, at most 120).
    #[schemars(range(min = 1, max = 120))]
    pub timeout_secs: Option<u64>,
    /// Ready only when `GET` this path answers 200-399, e.g. `/health`.
    pub http: Option<String>,
    /// The host to connect to (default `localhost`).
    pub host: Option<String>,
}

/// How a wait ended.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WaitReport {
    /// Every port got ready in time.
    pub ready: bool,
    pub ports: Vec<PortWait>,
}

/// One port of a wait.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PortWait {
    pub port: u16,
    pub ready: bool,
    /// The address that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// When it answered, in milliseconds from the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_ms: Option<u64>,
    /// What the last try saw, for a port not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seen: Option<String>,
    /// The doctor's one-line explanation, for a port not ready (`why` says more).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// `history`'s arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// Only this port's listeners.
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u32>,
    /// Who held `port` at this moment: RFC 3339, `2026-11-29 14:02`, `14:02`, or a time ago
    /// (`1h`). Needs `port`.
    pub at: Option<String>,
    /// From this moment (same forms).
    pub since: Option<String>,
    /// Until this moment (same forms).
    pub until: Option<String>,
    /// Only events of this process.
    pub pid: Option<u32>,
    /// At most this many events, newest first (default 50, at most 1000).
    #[schemars(range(min = 1, max = 1000))]
    pub limit: Option<u32>,
}

/// What `history` answers: the events, newest first (`portscope history --json`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct HistoryEvents {
    pub events: Vec<Event>,
}

/// `graph` takes no arguments.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// `kill`'s arguments: the process as `who` showed it. No signal and no force: the program's
/// own clean stop, as the dashboard sends it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KillParams {
    /// The process to stop (an owner's `process.pid` in `who`).
    pub pid: u32,
    /// Its start time as `who` showed it (`process.start_time`): a process that restarted
    /// since under the same pid is not stopped.
    pub start_time: u64,
}

/// A tool: its name, what it answers, its arguments' and its answer's types.
fn tool<P: JsonSchema + 'static, O: JsonSchema + 'static>(
    name: &'static str,
    description: &'static str,
    read_only: bool,
) -> Tool {
    // `why` and `wait` connect to the host they are given, which may be another machine.
    let open_world = matches!(name, "why" | "wait");
    let annotations = if read_only {
        ToolAnnotations::new()
            .read_only(true)
            .open_world(open_world)
    } else {
        ToolAnnotations::new()
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(false)
    };
    Tool::new(name, description, schema_for_type::<P>())
        .with_raw_output_schema(schema_for_output::<O>())
        .annotate(annotations)
}

/// Every tool this server offers (`kill` only when allowed).
pub fn catalog(allow_kill: bool) -> Vec<Tool> {
    let mut tools = vec![
        tool::<LsParams, LsPage>(
            "ls",
            "List this machine's TCP and UDP sockets with the processes that hold them: what \
             listens here, which ports a process uses, what is exposed to other machines. \
             Filter with port, pid, process, state, listening, exposed or project. Answers are \
             paged: at most `limit` sockets (default 100); ask again with `offset` = the \
             answer's `next_offset` for more.",
            true,
        ),
        tool::<PortParams, WhoReport>(
            "who",
            "Who holds a port (\"what's on port 3000?\"): its sockets and, for each owning \
             process, its command line, working directory, user, start time and the processes \
             that started it; and the local clients connected to it.",
            true,
        ),
        tool::<WhyParams, Diagnosis>(
            "why",
            "Why a connection fails, or works (\"why can't my app reach localhost:5173?\", \
             \"connection refused\"): resolves the target, connects to each address, and \
             checks the listeners (address family, interface, IPV6_V6ONLY), stopped owners, \
             full accept queues, containers, the firewall and the HTTP answer. Answers a \
             summary, each check's verdict and the fixes.",
            true,
        ),
        tool::<PortParams, Diagnosis>(
            "bind",
            "Why a server cannot listen on a port (\"address already in use\", EADDRINUSE, \
             EACCES): binds it as servers do (TCP 127.0.0.1, 0.0.0.0, ::1, :: with and without \
             IPV6_V6ONLY, UDP), names what holds it and suggests free ports. Binds and closes \
             at once; nothing is sent anywhere.",
            true,
        ),
        tool::<FreeParams, FreePorts>(
            "free",
            "Free ports for a new server: unused, not privileged, outside the ephemeral \
             ranges, not a well-known service's or dev tool's; nearest to `near` first, or a \
             block of `count` consecutive ones.",
            true,
        ),
        tool::<WaitParams, WaitReport>(
            "wait",
            "Wait until ports accept connections (or an HTTP path answers 200-399), at most \
             `timeout_secs` (default 30, at most 120): \"is my server up yet?\". A port still \
             not ready is explained in the doctor's words.",
            true,
        ),
        tool::<HistoryParams, HistoryEvents>(
            "history",
            "Who held a port, and when: the listeners' history the agent records while it runs \
             (opened, closed, exited, owner changed, health), newest first, read from its file \
             (the agent need not run now); with `at`, who held `port` at that moment.",
            true,
        ),
        tool::<NoParams, Graph>(
            "graph",
            "Who talks to whom on this machine: each client process -> server process (or \
             remote address), with the port and the number of connections (the 500 busiest \
             edges at most; `_meta` says when more were left out).",
            true,
        ),
    ];
    if allow_kill {
        tools.push(tool::<KillParams, KillReport>(
            "kill",
            "Stop a process that holds a socket, the way its program expects (PostgreSQL INT, \
             nginx QUIT, else TERM), KILL only for one that still listens without progress and \
             never for a database. Give the `pid` and `start_time` that `who` answered. \
             Refuses other users' processes, root's and system accounts' daemons, container \
             port forwarders, pid 1 and portscope itself.",
            false,
        ));
    }
    tools
}
