//! The wire protocol between the portscope agent and its dashboard: serde types only.
//!
//! A client that opens the WebSocket receives one [`Hello`], then one [`Snapshot`], then
//! [`Delta`]s. Every message is a JSON object whose `type` field names its variant
//! ([`ServerMessage`]); readers ignore fields they do not know and decode messages they do not
//! know as [`ServerMessage::Unknown`], so an older dashboard keeps working against a newer agent.
//! Fields added after version 1 carry `#[serde(default)]`.
//!
//! `docs/protocol.md` documents every type here; a test keeps the two in step.
//!
//! With the `schema` feature each type also derives `schemars::JsonSchema`, whose doc comments
//! become its schema's descriptions: `portscope mcp` declares its tools' outputs with them.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// Version of this protocol. Bumped only for changes an old reader cannot tolerate
/// (a renamed or retyped field); additions keep the version.
///
/// Version 2 (#22): events are no longer only the scan's diff — `bind_failed` and
/// `connect_refused` come between scans, with no socket behind them (their socket id is
/// empty), and `tick_ms` is the period of full scans, which with `changes: "kernel"` is no
/// longer how stale the model can be. A version-1 hub or dashboard would read such an agent
/// wrongly (an empty socket id, a 30 s tick for a model current to the millisecond), so
/// the version moved.
pub const PROTOCOL_VERSION: u32 = 2;

/// Everything the agent sends over the WebSocket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type")]
pub enum ServerMessage {
    /// First message on every connection.
    Hello(Hello),
    /// The whole current state; sent after `Hello` and after a client's `Resync`. A large state
    /// comes in parts: this message with `more: true`, then [`SnapshotMore`] messages.
    Snapshot(Snapshot),
    /// The next part of a large [`Snapshot`].
    SnapshotMore(SnapshotMore),
    /// What changed between two states.
    Delta(Delta),
    /// Listener events (opened, closed, owner changed) between the same two states, sent right
    /// after their [`Delta`]: the dashboard's "Recent changes" and timeline, live. Added in
    /// 0.1 without a version bump; older readers decode it as `Unknown`.
    Events(Events),
    /// Something the client sent could not be handled; the connection stays open.
    Error(ErrorMessage),
    /// A message type this reader does not know (sent by a newer agent).
    #[serde(other)]
    Unknown,
}

/// Everything a dashboard may send over the WebSocket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type")]
pub enum ClientMessage {
    /// Ask for a fresh [`Snapshot`], e.g. after a [`Delta`] that does not follow on.
    Resync,
    /// A message type this agent does not know (sent by a newer dashboard).
    #[serde(other)]
    Unknown,
}

/// Who the agent is and how it works; lets the dashboard refuse an incompatible agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the agent.
    pub protocol_version: u32,
    /// The agent's crate version, e.g. `0.1.0`.
    pub agent_version: String,
    /// The machine's host name.
    pub hostname: String,
    /// Operating system, as Rust names it (`linux`, `macos`, `windows`).
    pub os: String,
    /// How often the agent rescans, in milliseconds: with `changes: "kernel"` a full scan
    /// that reconciles the model, which kernel events keep current in between.
    pub tick_ms: u64,
    /// How the agent learns of changes: `kernel` (the kernel reports them as they happen:
    /// changes within milliseconds, short-lived listeners, failed binds and refused connects)
    /// or `poll` (a scan every `tick_ms`). Added in version 2.
    #[serde(default)]
    pub changes: Changes,
    /// The range the OS picks outgoing (ephemeral) ports from; a server on one of these ports
    /// can collide with a client's connection. `null` where unknown.
    #[serde(default)]
    pub ephemeral_ports: Option<PortRange>,
    /// Whether this agent stops processes on request (`POST /api/v1/kill`); the dashboard
    /// hides the action when it does not.
    #[serde(default)]
    pub can_kill: bool,
    /// Whether this agent keeps the port history (`GET /api/v1/history` answers); `false` with
    /// `--no-history`.
    #[serde(default)]
    pub history: bool,
    /// Whose processes `POST /api/v1/kill` stops, so the dashboard can say why it will not
    /// stop one before it asks (added in version 1; absent: the agent says when asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_scope: Option<KillScope>,
}

/// How an agent learns of changes ([`Hello::changes`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Changes {
    /// The kernel reports each change as it happens (Linux, BPF tracepoints).
    Kernel,
    /// A scan every tick.
    #[default]
    Poll,
    /// A way this reader does not know (a newer agent).
    #[serde(other)]
    Unknown,
}

/// The rule by which an agent's dashboard may stop a process: the agent applies it to every
/// `POST /api/v1/kill`, and the dashboard with [`KillScope::refuses`] to disable the action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KillScope {
    /// The user whose processes may be stopped: who started the agent, or who ran `sudo`,
    /// `pkexec` or `doas` to start it as root. `null` where users have no numeric id (Windows).
    pub uid: Option<u32>,
    /// The agent runs as root.
    pub root: bool,
    /// Accounts below this uid are system accounts (`UID_MIN` of `/etc/login.defs`), as is
    /// root (0): a root agent does not stop their processes...
    pub first_user_uid: u32,
    /// ...unless started with `--allow-kill-system`.
    pub allow_system: bool,
}

/// Why a [`KillScope`] does not let the dashboard stop a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillBar {
    /// The process belongs to another user (or its user is not known).
    OtherUser,
    /// A root agent, and the process runs as root or a system account: a daemon.
    SystemAccount,
}

impl KillScope {
    /// Whether a process of user `uid` may not be stopped from the dashboard, and why.
    pub fn refuses(&self, uid: Option<u32>) -> Option<KillBar> {
        let Some(uid) = uid else {
            return Some(KillBar::OtherUser);
        };
        let system = uid == 0 || uid < self.first_user_uid;
        if self.root && system {
            return (!self.allow_system).then_some(KillBar::SystemAccount);
        }
        (Some(uid) != self.uid).then_some(KillBar::OtherUser)
    }
}

/// An inclusive range of ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn contains(self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

/// The full state at sequence number `seq`. Also the body of `GET /api/v1/snapshot`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Snapshot {
    /// Sequence number of this state; every change to the state increments it.
    pub seq: u64,
    /// Every TCP and UDP socket, sorted by [`Socket::id`].
    pub sockets: Vec<Socket>,
    /// The processes that own at least one socket, sorted by pid.
    pub processes: Vec<Process>,
    /// Why the data may be incomplete (e.g. a scan step that failed); empty when complete.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// True when [`SnapshotMore`] parts with the rest of this state follow (every message the agent
    /// writes stays under [`MAX_MESSAGE_BYTES`]); the state is whole once a part says `false`.
    #[serde(default)]
    pub more: bool,
}

/// Largest WebSocket message the agent writes; larger states are split into parts.
pub const MAX_MESSAGE_BYTES: usize = 512 << 10;

/// A further part of a [`Snapshot`]: more sockets and processes of the same `seq`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SnapshotMore {
    pub seq: u64,
    #[serde(default)]
    pub sockets: Vec<Socket>,
    #[serde(default)]
    pub processes: Vec<Process>,
    /// True when another part follows.
    #[serde(default)]
    pub more: bool,
}

/// The change from the state at `from_seq` to the state at `seq`.
///
/// A client applies it only when `from_seq` equals the `seq` it holds; otherwise it sends
/// [`ClientMessage::Resync`]. A slow client may receive a `Delta` that spans several states.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Delta {
    /// The state this delta applies to.
    pub from_seq: u64,
    /// The state it produces.
    pub seq: u64,
    /// Sockets that appeared.
    #[serde(default)]
    pub added: Vec<Socket>,
    /// Sockets whose fields changed (same `id`), given whole.
    #[serde(default)]
    pub changed: Vec<Socket>,
    /// `id`s of sockets that disappeared.
    #[serde(default)]
    pub removed: Vec<String>,
    /// Processes that appeared or changed, given whole.
    #[serde(default)]
    pub processes: Vec<Process>,
    /// Pids of processes that no longer own a socket (or exited).
    #[serde(default)]
    pub processes_removed: Vec<u32>,
    /// The warnings of the new state (replacing the old ones).
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl Delta {
    /// True when applying it would change nothing.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.changed.is_empty()
            && self.removed.is_empty()
            && self.processes.is_empty()
            && self.processes_removed.is_empty()
    }
}

/// Listener events as they happen: what the history records, in the order they were seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Events {
    /// The state whose change they describe (the [`Delta`]'s `seq`).
    pub seq: u64,
    #[serde(default)]
    pub events: Vec<Event>,
}

/// An error the agent reports to one client over the WebSocket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ErrorMessage {
    /// Stable, machine-readable kind, e.g. `bad_message`.
    pub code: ApiErrorCode,
    /// What went wrong and what to do, for people.
    pub message: String,
}

/// The body of every HTTP error answer: `{"error": {"code", "message"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ErrorBody {
    pub error: ApiError,
}

/// One error: what kind (for code to match on) and what happened (for people).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ApiError {
    pub code: ApiErrorCode,
    /// What went wrong and what to do, in words.
    pub message: String,
}

/// Every kind of error the agent answers, over HTTP ([`ErrorBody`]) and the WebSocket
/// ([`ErrorMessage`]). Stable: clients match on these, never on the message. `docs/protocol.md`
/// lists each with its HTTP status; a test keeps the list and this enum in step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApiErrorCode {
    // The guards: who may ask, and from where.
    /// No token with a request that needs one.
    MissingToken,
    /// A token that is not this agent's.
    WrongToken,
    /// The scrape-only token, on anything but `GET /metrics`.
    MetricsOnly,
    /// A `Host` header that does not name this agent.
    ForbiddenHost,
    /// An `Origin` that is not the dashboard's own (or one allowed with `--allow-origin`).
    ForbiddenOrigin,
    /// A browser's request another site started (`Sec-Fetch-Site`).
    CrossSite,
    /// More connections than the agent serves at once.
    TooManyConnections,
    /// Too many failed tokens from one address: it waits before it may try again.
    TooManyFailures,
    // Requests.
    /// A request whose parameters or body are not what the route takes.
    BadRequest,
    /// As many diagnoses as may run at once are running.
    Busy,
    /// Something failed inside the agent; the message says what.
    Internal,
    /// Stopping a process, asked of an agent that does not stop processes (`--no-kill`, or
    /// shared without `--allow-kill`).
    ReadOnly,
    /// A one-time dashboard link used a second time.
    LinkUsed,
    /// The agent keeps no history (`--no-history`).
    NoHistory,
    /// The history could not be read (a locked, damaged or missing file).
    HistoryUnavailable,
    // A hub's peers.
    /// `?host=` names neither this agent nor one of its peers.
    UnknownHost,
    /// The peer refused the hub's token for it.
    PeerRefused,
    /// The peer could not be reached (or did not answer in time).
    PeerUnreachable,
    // Stopping a process (`POST /api/v1/kill`).
    /// No such process (it exited).
    NoSuchProcess,
    /// The pid holds no socket: the dashboard stops socket owners only.
    NotASocketOwner,
    /// The pid is now another program's (a different start time): nothing was sent.
    ProcessChanged,
    /// The process is another user's.
    OtherUser,
    /// The process is root's or a system account's, on an agent without `--allow-kill-system`.
    SystemProcess,
    /// The port is a container's: its forwarder is not stopped; stop the container.
    ContainerPort,
    /// The system refused the signal (no permission).
    NotPermitted,
    /// Never stopped: init, the agent itself, a kernel thread, the agent's own process group.
    Refused,
    // The WebSocket.
    /// A message that is not JSON, has no `type`, or is a binary frame.
    BadMessage,
    /// A `type` this agent does not know.
    UnknownMessage,
    /// More than 10 `Resync` messages a second.
    TooManyResyncs,
    /// A part of the agent's state too large to send (parts are kept under the limit).
    TooLarge,
    /// A code this reader does not know (from a newer agent).
    #[serde(other)]
    Unknown,
}

impl ApiErrorCode {
    /// Every code the agent sends (all but [`ApiErrorCode::Unknown`]), in the order of the enum.
    pub const ALL: [ApiErrorCode; 30] = [
        Self::MissingToken,
        Self::WrongToken,
        Self::MetricsOnly,
        Self::ForbiddenHost,
        Self::ForbiddenOrigin,
        Self::CrossSite,
        Self::TooManyConnections,
        Self::TooManyFailures,
        Self::BadRequest,
        Self::Busy,
        Self::Internal,
        Self::ReadOnly,
        Self::LinkUsed,
        Self::NoHistory,
        Self::HistoryUnavailable,
        Self::UnknownHost,
        Self::PeerRefused,
        Self::PeerUnreachable,
        Self::NoSuchProcess,
        Self::NotASocketOwner,
        Self::ProcessChanged,
        Self::OtherUser,
        Self::SystemProcess,
        Self::ContainerPort,
        Self::NotPermitted,
        Self::Refused,
        Self::BadMessage,
        Self::UnknownMessage,
        Self::TooManyResyncs,
        Self::TooLarge,
    ];

    /// The code as it is written on the wire, e.g. `missing_token`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::WrongToken => "wrong_token",
            Self::MetricsOnly => "metrics_only",
            Self::ForbiddenHost => "forbidden_host",
            Self::ForbiddenOrigin => "forbidden_origin",
            Self::CrossSite => "cross_site",
            Self::TooManyConnections => "too_many_connections",
            Self::TooManyFailures => "too_many_failures",
            Self::BadRequest => "bad_request",
            Self::Busy => "busy",
            Self::Internal => "internal",
            Self::ReadOnly => "read_only",
            Self::LinkUsed => "link_used",
            Self::NoHistory => "no_history",
            Self::HistoryUnavailable => "history_unavailable",
            Self::UnknownHost => "unknown_host",
            Self::PeerRefused => "peer_refused",
            Self::PeerUnreachable => "peer_unreachable",
            Self::NoSuchProcess => "no_such_process",
            Self::NotASocketOwner => "not_a_socket_owner",
            Self::ProcessChanged => "process_changed",
            Self::OtherUser => "other_user",
            Self::SystemProcess => "system_process",
            Self::ContainerPort => "container_port",
            Self::NotPermitted => "not_permitted",
            Self::Refused => "refused",
            Self::BadMessage => "bad_message",
            Self::UnknownMessage => "unknown_message",
            Self::TooManyResyncs => "too_many_resyncs",
            Self::TooLarge => "too_large",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ApiErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ErrorBody {
    pub fn new(code: ApiErrorCode, message: impl Into<String>) -> Self {
        Self {
            error: ApiError {
                code,
                message: message.into(),
            },
        }
    }
}

/// Transport protocol of a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

/// Address family of a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

/// Socket state, named as the kernel and `netstat` name them. UDP sockets are `UNCONN`
/// (the name `ss` uses), or `ESTABLISHED` once connected to a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SocketState {
    Listen,
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Closing,
    Unconn,
    /// A state this reader does not know.
    #[serde(other)]
    Unknown,
}

impl SocketState {
    /// The wire name, e.g. `TIME_WAIT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Listen => "LISTEN",
            Self::Established => "ESTABLISHED",
            Self::SynSent => "SYN_SENT",
            Self::SynRecv => "SYN_RECV",
            Self::FinWait1 => "FIN_WAIT1",
            Self::FinWait2 => "FIN_WAIT2",
            Self::TimeWait => "TIME_WAIT",
            Self::Close => "CLOSE",
            Self::CloseWait => "CLOSE_WAIT",
            Self::LastAck => "LAST_ACK",
            Self::Closing => "CLOSING",
            Self::Unconn => "UNCONN",
            Self::Unknown => "UNKNOWN",
        }
    }
}

/// Whether the process behind a socket is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum OwnerStatus {
    /// `pids` lists the owners.
    Known,
    /// The socket belongs to a process the agent may not inspect (another user's, while the agent
    /// is not root): `pids` is empty, `uid` still says whose it is.
    Hidden,
    /// No process holds the socket (e.g. `TIME_WAIT`, or a socket owned by the kernel).
    None,
}

/// One TCP or UDP socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Socket {
    /// Stable identity while the socket lives: protocol, both endpoints and the kernel's inode.
    pub id: String,
    pub proto: Proto,
    pub family: Family,
    pub local_addr: IpAddr,
    pub local_port: u16,
    /// `null` for listening and unconnected sockets.
    pub remote_addr: Option<IpAddr>,
    /// `null` for listening and unconnected sockets.
    pub remote_port: Option<u16>,
    pub state: SocketState,
    /// Processes holding the socket open (several after a `fork`), sorted.
    pub pids: Vec<u32>,
    /// Owning user id as the kernel reports it; `null` where the platform does not.
    pub uid: Option<u32>,
    pub owner: OwnerStatus,
    /// For listening sockets: who can reach it. `null` for connections.
    #[serde(default)]
    pub exposure: Option<Exposure>,
    /// The port's IANA service name (from the system's services table), e.g. `postgresql`.
    #[serde(default)]
    pub service: Option<String>,
    /// For listening sockets: what serves it, from its program (`Vite dev server`), its
    /// container (`container web (nginx), port 80 inside`), or, said as a guess, its port alone
    /// (`port 5432: usually PostgreSQL`).
    #[serde(default)]
    pub app: Option<String>,
    /// Set when a debug or data service listens on all interfaces: why that is a risk.
    #[serde(default)]
    pub risk: Option<String>,
    /// For listening sockets: it serves HTTP — its program is known to, or it answered HTTP when
    /// the doctor asked (the dashboard offers to open it). Never from a port number alone.
    #[serde(default)]
    pub http: bool,
    /// The peer it was seen on, on a hub's stream of that peer (`/api/v1/ws?host=NAME`);
    /// absent for the agent's own sockets (its `Hello.hostname`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// An HTTP listener's last health check (while a dashboard is open), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// What a `GET /` on a listener known to serve HTTP got back, over loopback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Health {
    /// It answered HTTP with a status below 500.
    pub up: bool,
    /// Its status code, when it answered.
    #[serde(default)]
    pub status: Option<u16>,
    /// How long the answer took, in milliseconds.
    pub latency_ms: u32,
    /// Why it is down, for people (`timed out after 1 s`, `connection refused`, `HTTP 502`).
    #[serde(default)]
    pub detail: Option<String>,
}

/// Who can reach a listening socket, from the address it is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Exposure {
    /// `127.0.0.0/8` or `::1`: only this machine.
    Loopback,
    /// One specific address of one interface (e.g. `192.168.1.20`): whoever reaches that network.
    Interface,
    /// `0.0.0.0` or `::`: every interface, so every network this machine is on.
    All,
}

impl Exposure {
    /// The exposure of a listener bound to `addr`.
    pub fn of(addr: IpAddr) -> Self {
        if addr.is_unspecified() {
            Self::All
        } else if addr.is_loopback() || is_mapped_loopback(addr) {
            Self::Loopback
        } else {
            Self::Interface
        }
    }

    /// `loopback`, `interface` or `all`, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loopback => "loopback",
            Self::Interface => "interface",
            Self::All => "all",
        }
    }

    /// One sentence for people.
    pub fn explain(self) -> &'static str {
        match self {
            Self::Loopback => "loopback only: reachable from this machine alone",
            Self::Interface => "one interface address: reachable from that interface's network",
            Self::All => {
                "all interfaces (0.0.0.0 or ::): reachable from every network this machine is on"
            }
        }
    }
}

fn is_mapped_loopback(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        IpAddr::V4(_) => false,
    }
}

impl Socket {
    /// TCP in `LISTEN`, or UDP not connected to a peer: what `ss -l` shows.
    pub fn is_listening(&self) -> bool {
        match self.proto {
            Proto::Tcp => self.state == SocketState::Listen,
            Proto::Udp => self.remote_addr.is_none(),
        }
    }

    /// The local end, e.g. `127.0.0.1:5173` or `[::1]:5173` when displayed.
    pub fn local_endpoint(&self) -> SocketAddr {
        SocketAddr::new(self.local_addr, self.local_port)
    }

    /// The peer, `None` for listening and unconnected sockets.
    pub fn remote_endpoint(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.remote_addr?, self.remote_port?))
    }

    /// The peer as people read it: its address, or `*` when there is none (as `ss` shows).
    pub fn remote_text(&self) -> String {
        self.remote_endpoint()
            .map_or_else(|| "*".to_owned(), |peer| peer.to_string())
    }

    /// `tcp`, `tcp6`, `udp` or `udp6`, as `netstat` and `lsof` label them.
    pub fn proto_label(&self) -> &'static str {
        match (self.proto, self.family) {
            (Proto::Tcp, Family::Ipv4) => "tcp",
            (Proto::Tcp, Family::Ipv6) => "tcp6",
            (Proto::Udp, Family::Ipv4) => "udp",
            (Proto::Udp, Family::Ipv6) => "udp6",
        }
    }
}

/// A process that holds at least one socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Process {
    pub pid: u32,
    pub ppid: Option<u32>,
    /// Short name (`comm` on Linux).
    pub name: String,
    /// Path of the executable; `null` when it cannot be read.
    pub exe: Option<String>,
    /// Full command line, one element per argument.
    pub cmdline: Vec<String>,
    /// User name of the real uid, where it resolves.
    pub user: Option<String>,
    pub uid: Option<u32>,
    /// Start time in seconds since the Unix epoch.
    pub start_time: Option<u64>,
    /// Start time in milliseconds since the Unix epoch, where the platform tells it finer than
    /// `start_time` (Linux: the kernel's clock ticks after the precise boot time): how long a
    /// process ran, to a tenth of a second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<u64>,
    /// Stopped (SIGSTOP, Ctrl-Z in its terminal): it holds its sockets but answers nothing
    /// until it is continued.
    #[serde(default)]
    pub stopped: bool,
    /// Working directory, where it can be read (a process of another user is not readable
    /// without root).
    #[serde(default)]
    pub cwd: Option<String>,
    /// The peer it runs on, as for [`Socket::host`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The project it works on: for a container's port forwarder, the container's Compose
    /// project; else the git repository (or worktree) of its working directory, or of its
    /// nearest ancestor's; `null` for none.
    #[serde(default)]
    pub project: Option<Project>,
}

/// A project a process works on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Project {
    /// The repository's directory name; `repo@worktree` for a linked worktree.
    pub name: String,
    /// Where it is checked out: the repository's (or worktree's) top directory.
    pub root: String,
    pub source: ProjectSource,
}

/// How a project was recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProjectSource {
    /// A git repository (a `.git` directory, or a submodule's `.git` file).
    Git,
    /// A linked worktree of a git repository (`git worktree add`).
    Worktree,
    /// The Compose project of the container whose port it forwards (the label Compose sets).
    Compose,
    #[serde(other)]
    Unknown,
}

/// A change in a socket's life: a line of `portscope watch --json`, and what the history keeps
/// of a listener.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Event {
    /// When it was seen, RFC 3339 in UTC (`2026-11-29T14:02:03Z`).
    pub time: String,
    /// For what happened while the agent was not running: the earliest it can have happened
    /// (the agent's last look before it stopped); `time` is then when it was noticed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    pub kind: EventKind,
    pub proto: Proto,
    pub family: Family,
    pub local_addr: IpAddr,
    pub local_port: u16,
    /// The connection's peer, for a connection.
    #[serde(default)]
    pub remote_addr: Option<IpAddr>,
    #[serde(default)]
    pub remote_port: Option<u16>,
    /// The (first) owner, when known.
    #[serde(default)]
    pub pid: Option<u32>,
    #[serde(default)]
    pub process: Option<String>,
    #[serde(default)]
    pub cmdline: Vec<String>,
    #[serde(default)]
    pub user: Option<String>,
    /// The owner's working directory, where it could be read.
    #[serde(default)]
    pub cwd: Option<String>,
    /// The owner's executable, where it could be read.
    #[serde(default)]
    pub exe: Option<String>,
    /// The owner's start time in seconds since the Unix epoch: with `pid`, it tells the process
    /// apart from a later one given the same pid.
    #[serde(default)]
    pub start_time: Option<u64>,
    /// [`Process::start_ms`] of the owner, where known: `time - start_ms` is how long an
    /// `exited` owner ran, to the scan that saw it gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<u64>,
    /// What serves it (a listener's `app`).
    #[serde(default)]
    pub app: Option<String>,
    /// For `health`: what the check got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// The name of the owner's project (`Process.project`), when it works in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// For `bind_failed`: the error (`EADDRINUSE (address already in use)`). Added in
    /// version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For `bind_failed`: the sockets holding the port; for `connect_refused`: the listeners
    /// on the port at other addresses or in the other family (where the client should have
    /// gone), or none. Added in version 2.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<Holder>,
    /// For `bind_failed` and `connect_refused`: how many times it happened from this process
    /// to this port since the last such event (a client retrying in a loop is one event with
    /// a count; at least 1). Added in version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// For `bind_failed` and `connect_refused`: what the doctor would have the user do, in
    /// one sentence. Added in version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// For `opened` and `closed`: a listener only the kernel saw, which opened and closed
    /// between two scans (no `Delta` ever held it). Added in version 2.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub brief: bool,
}

/// A socket on the port a failure was about, with its owner ([`Event::holders`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Holder {
    pub proto: Proto,
    pub local_addr: IpAddr,
    pub local_port: u16,
    #[serde(default)]
    pub state: Option<SocketState>,
    /// Its owners' pids (empty when hidden: another user's process, without root).
    #[serde(default)]
    pub pids: Vec<u32>,
    /// Its first owner's name.
    #[serde(default)]
    pub process: Option<String>,
    /// Its first owner's start time (seconds since the epoch).
    #[serde(default)]
    pub start_time: Option<u64>,
    /// Its first owner's project, when it works in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// What happened to a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Opened,
    Closed,
    /// The same socket is held by other processes now (passed on, or its first owner exited).
    OwnerChanged,
    /// The process that held the listener exited (one event per listener it held when last
    /// seen, after that listener's `closed` or `owner_changed`): `pid`, `process`, `cmdline`,
    /// `cwd`, `exe` and `start_time` as last seen; `time` is when it was first seen gone, so
    /// `time - start_time` is how long it ran. Its exit status is not known: only its parent
    /// can read it.
    Exited,
    /// An HTTP listener's health check (while a dashboard is open) answered for the first time,
    /// or turned up or down, or answered another status: `health` says what it got; the owner
    /// is the listener's now.
    Health,
    /// A process's `bind()` failed (kernel events only): the owner fields are that process's,
    /// `local_addr`/`local_port` what it asked for, `error` why, `holders` who holds the port.
    /// Added in version 2.
    BindFailed,
    /// A process's `connect()` was refused (kernel events only): the owner fields are the
    /// client's, `remote_addr`/`remote_port` where it tried, `holders` the listeners on that
    /// port elsewhere. Added in version 2.
    ConnectRefused,
    #[serde(other)]
    Unknown,
}

/// The answer to "who holds this port?": the JSON of `portscope who <port> --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WhoReport {
    pub port: u16,
    /// Every socket bound to the port: TCP and UDP, IPv4 and IPv6, any state.
    pub sockets: Vec<Socket>,
    /// The processes holding them, with where they run and who started them.
    pub owners: Vec<Owner>,
    /// Processes on this machine connected to the port: the client ends of its connections
    /// (`redis-cli`, `psql`, a browser), as TCPView shows both ends.
    #[serde(default)]
    pub clients: Vec<Client>,
    /// What the report could not see and how to see more (e.g. hidden owners).
    #[serde(default)]
    pub hints: Vec<String>,
}

/// The client end of a connection to a port, and the process holding it (`null` when hidden
/// or gone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Client {
    pub socket: Socket,
    pub process: Option<Process>,
}

/// A process holding a socket, with its working directory and the processes above it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Owner {
    pub process: Process,
    /// Working directory; `null` when it cannot be read.
    pub cwd: Option<String>,
    /// Parent, grandparent, … nearest first, up to and including the first session leader
    /// above the process (its shell), never pid 1: so that `node` reads as
    /// `npm run dev → node vite`, and a PostgreSQL backend (a session leader itself) names its
    /// postmaster. Empty when the parent is pid 1 (a daemon, or its parent exited).
    pub ancestors: Vec<Process>,
}

/// The answer of a doctor: `portscope why` ("why is my connection refused?") or `portscope bind`
/// ("why does my server's bind fail?"), also served as `GET /api/v1/why` and `GET /api/v1/bind`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Diagnosis {
    pub question: Question,
    /// The target as given, e.g. `localhost:5173` or `http://localhost:5173/`.
    pub target: String,
    pub port: u16,
    /// Each check in the order it ran.
    pub checks: Vec<Check>,
    /// The worst verdict of all checks.
    pub verdict: Verdict,
    /// The answer in one line.
    pub summary: String,
    /// Ports to use instead (for `bind`), nearest first.
    #[serde(default)]
    pub free_ports: Vec<u16>,
}

/// Which doctor answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Question {
    Why,
    Bind,
    #[serde(other)]
    Unknown,
}

/// One check of a diagnosis, with its evidence and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Check {
    /// Stable, machine-readable name, e.g. `connect`, `family`, `firewall`.
    pub id: String,
    pub verdict: Verdict,
    /// The finding in one sentence.
    pub title: String,
    /// What was seen: addresses, sockets, processes, rules.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// What to do about it.
    #[serde(default)]
    pub fixes: Vec<Fix>,
}

/// A check's outcome, from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Fine.
    Ok,
    /// A fact worth knowing; neither good nor bad.
    Info,
    /// Could not be checked; the title says why not and the fixes how to.
    Unchecked,
    /// Works now, but fails for some clients or later.
    Warning,
    /// The cause of a failure.
    Problem,
    /// A verdict this reader does not know.
    #[serde(other)]
    Unknown,
}

impl Verdict {
    /// `ok`, `info`, `unchecked`, `warning`, `problem`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Info => "info",
            Self::Unchecked => "unchecked",
            Self::Warning => "warning",
            Self::Problem => "problem",
            Self::Unknown => "unknown",
        }
    }
}

/// One thing to do: a sentence, and the command that does it where there is one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Fix {
    pub text: String,
    #[serde(default)]
    pub command: Option<String>,
}

/// Who talks to whom (`portscope graph --json`, `GET /api/v1/graph`): processes and remote
/// peers as nodes, connections between them as edges.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Graph {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
}

/// A process of this machine, or a remote address its connections reach.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GraphNode {
    /// `p<PID>` for a process, `r<ADDRESS>` for a remote address, `hidden` for the owners of
    /// sockets portscope cannot see (another user's, without root).
    pub id: String,
    pub kind: GraphNodeKind,
    /// What to call it: the process's name, or the address.
    pub label: String,
    #[serde(default)]
    pub pid: Option<u32>,
    /// The process's project, to group by.
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub addr: Option<IpAddr>,
    /// A remote address's name, when this machine's hosts file gives it one (no DNS query is
    /// made for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum GraphNodeKind {
    Process,
    Remote,
    Hidden,
    #[serde(other)]
    Unknown,
}

/// Connections from a client (`from`) to a server (`to`) on one port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GraphEdge {
    pub from: String,
    pub to: String,
    /// The server's port.
    pub port: u16,
    /// How many connections (established, or being set up).
    pub count: usize,
}

/// The body of `GET /api/v1/hosts`: this agent, then each peer of a hub (`--peers`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Hosts {
    pub hosts: Vec<Host>,
}

/// One machine a dashboard can show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Host {
    /// The agent's own host name, or the peer's name in the peers file: what `?host=` takes.
    pub name: String,
    /// This agent itself (not a peer).
    pub local: bool,
    /// A peer's URL.
    #[serde(default)]
    pub url: Option<String>,
    pub status: HostStatus,
    /// Why it is not live, for people: `unreachable (connection refused)`,
    /// `refused: certificate fingerprint mismatch`, `refused: token`, `version mismatch (…)`.
    #[serde(default)]
    pub detail: Option<String>,
    /// The machine's own host name, as its agent said in `Hello`.
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub agent_version: Option<String>,
    /// When it was last live (RFC 3339, UTC); its rows are from then while it is not.
    #[serde(default)]
    pub last_live: Option<String>,
    /// Its sockets as last seen.
    #[serde(default)]
    pub sockets: usize,
    /// Whether its agent stops processes (`POST /api/v1/kill` with `?host=`).
    #[serde(default)]
    pub can_kill: bool,
}

/// A host's link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    Live,
    Connecting,
    Unreachable,
    Refused,
    VersionMismatch,
    #[serde(other)]
    Unknown,
}

/// The body of `GET /api/v1/history/spans`: each listener's life in a window, for the
/// dashboard's timeline.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Spans {
    /// Oldest start first. At most `limit` (the latest ones) when the window holds more.
    pub spans: Vec<Span>,
    /// True when spans were left out to keep to the limit.
    #[serde(default)]
    pub truncated: bool,
}

/// One owner's tenure of one listener: from its opening (or from the moment it was passed to
/// this owner) to its closing (or to the moment it was passed on); `end` is `null` while it
/// lasts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Span {
    pub proto: Proto,
    pub family: Family,
    pub local_addr: IpAddr,
    pub local_port: u16,
    pub pid: Option<u32>,
    pub process: Option<String>,
    #[serde(default)]
    pub cmdline: Vec<String>,
    pub user: Option<String>,
    pub app: Option<String>,
    /// RFC 3339, UTC.
    pub start: String,
    /// For a listener that opened while the agent was not running: the earliest it can have
    /// opened (`start` is then when the agent noticed it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_since: Option<String>,
    /// RFC 3339, UTC; `null` while it lasts.
    pub end: Option<String>,
    /// Its health checks' answers (for a listener that serves HTTP, checked while a dashboard
    /// was open): the one in force when the window starts, then each change in the window,
    /// oldest first. Each holds until the next or the span's end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<HealthMark>,
    /// The name of the owner's project, when it works in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// A listener's health from a moment on: what its check got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HealthMark {
    /// RFC 3339, UTC.
    pub time: String,
    #[serde(flatten)]
    pub health: Health,
}

/// The body of `GET /api/v1/history/connections?port=N`: a port's connections per minute, for
/// the connections chart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ConnectionHistory {
    pub port: u16,
    /// Oldest first; a minute the agent ran through with no connection on the port is left out
    /// (read it as zero).
    pub minutes: Vec<ConnectionMinute>,
}

/// One minute of a port's connections (TCP, the server's ends of connections to its listeners).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ConnectionMinute {
    /// The minute's start, RFC 3339, UTC.
    pub time: String,
    /// Connections that appeared during the minute.
    pub accepted: u32,
    /// The most open at once during the minute (as seen at each tick).
    pub open: u32,
    /// Distinct peer addresses seen during the minute.
    pub peers: u32,
}

/// Free ports: the body of `portscope free --json` and `GET /api/v1/free`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FreePorts {
    /// Free TCP ports (IPv4 and IPv6, all interfaces) that are not privileged, not in an
    /// ephemeral range and not a well-known service's, nearest to the asked port first.
    pub ports: Vec<u16>,
}

/// The body of `POST /api/v1/kill`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KillRequest {
    pub pid: u32,
    /// Signal name (`TERM`, `INT`, `HUP`, `KILL`, …). When absent, the program's own clean stop
    /// (PostgreSQL: `INT`, nginx: `QUIT`), else `TERM`.
    #[serde(default)]
    pub signal: Option<String>,
    /// Send `KILL` when the process still listens and made no progress (closed no socket, lost
    /// no process) for this many milliseconds. When absent: 5 000 for ordinary programs, never
    /// for a database. Only for the signals that ask a process to end (`TERM`, `INT`, `QUIT`).
    #[serde(default)]
    pub force_after_ms: Option<u64>,
    /// The process's start time as the dashboard saw it ([`Process::start_time`]), required:
    /// the agent refuses when the pid now belongs to another process.
    pub start_time: u64,
}

/// What happened to a process that was asked to stop: the answer of `POST /api/v1/kill` and
/// one entry of `portscope kill --json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KillReport {
    pub pid: u32,
    pub name: String,
    /// The signal sent first, e.g. `TERM`.
    pub signal: String,
    pub outcome: KillOutcome,
    /// From the first signal until the process was gone (or the wait ended).
    pub elapsed_ms: u64,
    /// What happened, for people.
    pub message: String,
}

/// How a stop ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum KillOutcome {
    /// It exited after the first signal.
    Exited,
    /// It ignored the first signal and was killed with `KILL`.
    Forced,
    /// It is still running (no force was asked for, or even `KILL` did not end it yet).
    StillRunning,
    /// A signal that does not ask it to end (`HUP`, `USR1`, `STOP`, `CONT`, …) was delivered.
    Signalled,
    #[serde(other)]
    Unknown,
}

#[cfg(test)]
mod tests;
