//! Peers (#13): an agent started with `--peers FILE` is a hub that shows other agents beside its
//! own machine. For each peer it keeps one WebSocket client (`link.rs`: TLS pinned to the peer's
//! certificate, the peer's token) that rebuilds the peer's state from its snapshot and deltas
//! (`model::Mirror`) into a [`Model`] of its own, so that the hub relays each peer to browsers
//! exactly as it serves its own machine (`/api/v1/ws?host=NAME`), with every socket and process
//! marked with the peer's name. A peer that goes away keeps its last rows while the hub
//! reconnects (1 s, doubling to 30 s); its status says why and since when. Each peer runs on a
//! task of its own, and its model coalesces like the hub's own (a watch channel): a slow or huge
//! peer delays neither the hub's view nor other peers.
//!
//! `config.rs` reads and writes the peers file; `cli.rs` is `portscope peer add|list`.

mod bounds;
pub mod config;
pub mod link;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use portscope_shared::{Hello, Host, HostStatus};

pub use config::Peer;
pub use link::{LinkError, Relay, request};

use portscope_core::live::Model;
use portscope_core::model::{Mirror, State, Step, Watcher};

/// The first wait before reconnecting, doubled after each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A link that lasted this long starts the backoff again from [`FIRST_BACKOFF`] (a peer that
/// hangs up right after its `Hello` is not retried every second).
const STEADY: Duration = Duration::from_secs(30);

/// A peer pings every 20 s: one silent for this long is gone (a cable pulled, a paused VM,
/// a NAT that dropped the flow), though no reset said so.
const SILENT: Duration = Duration::from_secs(50);

/// How long a Resync may wait for its snapshot.
const RESYNC_WAIT: Duration = Duration::from_secs(15);

/// The most sockets and processes the hub keeps of one peer: past that, the link is refused
/// (a hub's memory is bounded per peer, whatever a peer sends).
pub const MAX_PEER_SOCKETS: usize = 200_000;
pub const MAX_PEER_PROCESSES: usize = 50_000;

/// The hub's peers, shared by the server's handlers.
#[derive(Clone, Debug, Default)]
pub struct Peers {
    hosts: Arc<Vec<PeerHost>>,
}

/// One peer: its configuration, the model of its state, and its link's status.
#[derive(Debug)]
pub struct PeerHost {
    pub peer: Peer,
    /// The connection relayed requests (the doctor's, the history's) take to it.
    pub relay: Relay,
    model: Model,
    status: Mutex<Status>,
    /// The most bytes of its state the hub keeps (`--peer-max-size`).
    max_bytes: u64,
}

#[derive(Clone, Debug)]
struct Status {
    link: Result<(), LinkError>,
    connecting: bool,
    hello: Option<Hello>,
    last_live: Option<SystemTime>,
}

impl Peers {
    /// Starts following each of `peers` on a task of its own, keeping at most `max_bytes` of
    /// each one's state.
    pub fn start(peers: Vec<Peer>, max_bytes: u64) -> Peers {
        let hosts: Vec<PeerHost> = peers
            .into_iter()
            .map(|peer| PeerHost {
                peer,
                relay: Relay::default(),
                max_bytes,
                model: Model::remote(State::default()),
                status: Mutex::new(Status {
                    link: Ok(()),
                    connecting: true,
                    hello: None,
                    last_live: None,
                }),
            })
            .collect();
        let peers = Peers {
            hosts: Arc::new(hosts),
        };
        for i in 0..peers.hosts.len() {
            let hosts = peers.hosts.clone();
            tokio::spawn(async move { follow(&hosts[i]).await });
        }
        peers
    }

    /// The peer named `name`.
    pub fn get(&self, name: &str) -> Option<&PeerHost> {
        self.hosts.iter().find(|h| h.peer.name == name)
    }

    /// Each peer's entry in `GET /api/v1/hosts`.
    pub fn hosts(&self) -> Vec<Host> {
        self.hosts.iter().map(PeerHost::host).collect()
    }

    /// Each peer's name and whether it is live now (`portscope_peer_up`).
    pub fn up(&self) -> Vec<(String, bool)> {
        self.hosts
            .iter()
            .map(|h| (h.peer.name.clone(), h.host().status == HostStatus::Live))
            .collect()
    }
}

impl PeerHost {
    /// Its state as the hub relays it.
    pub fn watch(&self) -> Watcher {
        self.model.watch()
    }

    /// How its processes are told apart from exited ones (they are not: another machine's).
    pub fn alive(&self) -> fn(&portscope_shared::Process) -> bool {
        self.model.alive()
    }

    /// The `Hello` a browser gets on this peer's stream: the peer's own, as the hub last heard
    /// it, with this agent's protocol version (the hub speaks it to the browser).
    pub fn hello(&self) -> Hello {
        let status = self.status();
        status.hello.unwrap_or_else(|| Hello {
            protocol_version: portscope_shared::PROTOCOL_VERSION,
            agent_version: String::new(),
            hostname: self.peer.name.clone(),
            os: String::new(),
            tick_ms: 1000,
            changes: portscope_shared::Changes::Poll,
            ephemeral_ports: None,
            can_kill: false,
            history: false,
            kill_scope: None,
        })
    }

    fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, change: impl FnOnce(&mut Status)) {
        change(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Its entry in `GET /api/v1/hosts`.
    pub fn host(&self) -> Host {
        let status = self.status();
        let (kind, detail) = match (&status.link, status.connecting) {
            (Ok(()), true) => (HostStatus::Connecting, None),
            (Ok(()), false) => (HostStatus::Live, None),
            (Err(e), _) => (e.status(), Some(e.to_string())),
        };
        Host {
            name: self.peer.name.clone(),
            local: false,
            url: Some(self.peer.url()),
            status: kind,
            detail,
            hostname: status.hello.as_ref().map(|h| h.hostname.clone()),
            agent_version: status.hello.as_ref().map(|h| h.agent_version.clone()),
            last_live: status
                .last_live
                .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
            sockets: self.model.current().state.sockets.len(),
            can_kill: status.hello.as_ref().is_some_and(|h| h.can_kill),
        }
    }
}

/// Connects, relays until the link is lost, and connects again after a wait that doubles
/// from [`FIRST_BACKOFF`] to [`MAX_BACKOFF`] (reset by a link that worked).
async fn follow(host: &PeerHost) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        host.set(|s| s.connecting = true);
        let ended = match link::open(&host.peer).await {
            Ok((ws, hello)) => {
                tracing::info!(peer = %host.peer.name, hostname = %hello.hostname, "peer live");
                host.set(|s| {
                    s.link = Ok(());
                    s.connecting = false;
                    s.hello = Some(hello);
                    s.last_live = Some(SystemTime::now());
                });
                let began = std::time::Instant::now();
                let ended = relay(host, ws).await;
                if began.elapsed() >= STEADY {
                    backoff = FIRST_BACKOFF;
                }
                ended
            }
            Err(e) => e,
        };
        // Said once per reason, not at every retry.
        if host.status().link.as_ref().err() != Some(&ended) {
            tracing::info!(peer = %host.peer.name, reason = %ended, "peer not live; retrying");
        }
        host.set(|s| {
            if s.link.is_ok() && !s.connecting {
                s.last_live = Some(SystemTime::now());
            }
            s.link = Err(ended);
            s.connecting = false;
        });
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Reads the peer's stream into its model until the link ends; why it ended.
async fn relay(host: &PeerHost, mut ws: link::PeerSocket) -> LinkError {
    let mut mirror = Mirror::in_place();
    let mut resync_sent: Option<std::time::Instant> = None;
    // The weight of the state being built (a snapshot's parts so far, or the last state and
    // the changes since), against the peer's budget.
    let mut held: u64 = 0;
    let too_heavy = |bytes: u64| {
        LinkError::Refused(format!(
            "too large (about {} MiB of sockets and processes; a hub keeps at most {} MiB of a peer: --peer-max-size)",
            bytes >> 20,
            host.max_bytes >> 20
        ))
    };
    loop {
        let mut message = match tokio::time::timeout(SILENT, link::next(&mut ws)).await {
            Ok(Ok(Some(message))) => message,
            Ok(Ok(None)) => return LinkError::Lost("the peer closed the connection".into()),
            Ok(Err(e)) => return e,
            Err(_) => {
                return LinkError::Lost(format!("silent for {} s", SILENT.as_secs()));
            }
        };
        // Every string capped as our own scans cap them, and weighed before it is kept; every
        // socket and process marked as the peer's as it comes (the state needs no copy to be).
        bounds::cap(&mut message);
        stamp(&mut message, &host.peer.name);
        held = held.saturating_add(bounds::message_weight(&message));
        if held > host.max_bytes {
            return too_heavy(held);
        }
        // What only the peer's kernel saw (failures, brief listeners) comes as events alone:
        // passed on to the hub's clients of this peer as they are.
        let told: Vec<(String, portscope_shared::Event)> = match &message {
            portscope_shared::ServerMessage::Events(events) => events
                .events
                .iter()
                .filter(|e| portscope_core::events::kernel_only(e))
                .map(|e| (String::new(), e.clone()))
                .collect(),
            _ => Vec::new(),
        };
        let step = mirror.feed(message);
        if !told.is_empty() && mirror.state().is_some() {
            host.model.publish_events(told);
        }
        let (sockets, processes) = mirror.size();
        if sockets > MAX_PEER_SOCKETS || processes > MAX_PEER_PROCESSES {
            return LinkError::Refused(format!(
                "too large ({sockets} sockets, {processes} processes; a hub keeps at most \
                 {MAX_PEER_SOCKETS} and {MAX_PEER_PROCESSES} of a peer)"
            ));
        }
        match step {
            Step::Changed(_) => {
                resync_sent = None;
                let state = mirror.state().expect("a state follows a change");
                held = bounds::weight(state);
                if held > host.max_bytes {
                    return too_heavy(held);
                }
                host.model.update(state.clone());
                host.set(|s| s.last_live = Some(SystemTime::now()));
            }
            Step::Resync => {
                resync_sent = Some(std::time::Instant::now());
                if let Err(e) = link::resync(&mut ws).await {
                    return e;
                }
            }
            Step::Hello(_) | Step::Nothing => {}
        }
        if resync_sent.is_some_and(|t| t.elapsed() > RESYNC_WAIT) {
            return LinkError::Lost("no snapshot came after a Resync".into());
        }
    }
}

/// Marks every socket and process a message carries as the peer's.
fn stamp(message: &mut portscope_shared::ServerMessage, name: &str) {
    use portscope_shared::ServerMessage;
    let (sockets, processes) = match message {
        ServerMessage::Snapshot(s) => (&mut s.sockets, &mut s.processes),
        ServerMessage::SnapshotMore(p) => (&mut p.sockets, &mut p.processes),
        ServerMessage::Delta(d) => {
            for socket in &mut d.changed {
                socket.host = Some(name.to_owned());
            }
            (&mut d.added, &mut d.processes)
        }
        _ => return,
    };
    for socket in sockets {
        socket.host = Some(name.to_owned());
    }
    for process in processes {
        process.host = Some(name.to_owned());
    }
}
