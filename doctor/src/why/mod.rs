//! `portscope why <target>`: why a connection is refused, times out, or reaches the wrong
//! server. Three parts: gathering here ([`gather`] reads the facts — resolution, connects,
//! sockets, processes, firewall, HTTP), protocol knowledge in `speaks.rs` (what a listener
//! speaks, so that nothing a server would log as an attack is sent to it), and the checks in
//! `checks.rs` ([`analyze`] draws the verdicts, one function per check, each tested with
//! made-up facts in `tests.rs`).

mod checks;
mod speaks;
#[cfg(test)]
mod tests;

pub use checks::analyze;
pub use speaks::{Speaks, speaks};

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use portscope_shared::{Process, Proto, Socket, SocketState};

use crate::Source;
use crate::firewall::{self, Firewall};
use crate::probe::{self, Answer, Connect};
use crate::target::Target;
use portscope_core::model::State;
use portscope_core::os;
use portscope_core::os::Platform;
use portscope_core::ports::PortSettings;

/// Programs that forward a port into a container.
pub const CONTAINER_PROXIES: &[&str] = &[
    "docker-proxy",
    "rootlessport",
    "rootlesskit",
    "conmon",
    "slirp4netns",
    "pasta",
    "pasta.avx2",
];

/// Everything `analyze` needs.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub target: Option<Target>,
    /// Addresses in the order the system resolved them, each with its connect outcome.
    pub probes: Vec<(IpAddr, Connect)>,
    /// Whether the target is this machine (all local checks apply).
    pub local: bool,
    /// Every socket on the port.
    pub sockets: Vec<Socket>,
    pub processes: HashMap<u32, Process>,
    /// Scheduler state of the owners (`T` = stopped).
    pub states: HashMap<u32, char>,
    /// Listener socket id → connections waiting in its accept queue.
    pub queues: HashMap<String, u32>,
    pub settings: PortSettings,
    pub firewall: Option<Firewall>,
    /// What the port said, or why nothing was sent to it.
    pub answer: Option<(SocketAddr, Answer)>,
    /// The port's last listener in the history, when nothing listens now.
    pub previous: Option<crate::Previous>,
    /// For a port a container may publish: the container and what listens inside it, or why
    /// the engine could not be asked.
    pub container: Option<
        Result<Option<portscope_core::containers::Inside>, portscope_core::containers::EngineError>,
    >,
    /// Whether portscope runs as root: the fixes that need root then get no `sudo`.
    pub root: bool,
}

/// Options of a diagnosis.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub timeout: Duration,
    /// Send the HTTP probe (`GET path`) when a connect works. Off for a shared dashboard: it
    /// would let anyone with the token make the agent request this machine's local services.
    pub http_probe: bool,
}

/// The blocking scan behind [`gather`] panicked or was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("the scan failed: {0}")]
pub struct ScanFailed(tokio::task::JoinError);

/// Reads every fact about a target, given the addresses it resolved to (resolved once by the
/// caller, so that what was checked is what is probed).
pub async fn gather(
    target: &Target,
    addrs: Vec<IpAddr>,
    source: Source,
    opts: Options,
) -> Result<Facts, ScanFailed> {
    // The local facts first: the accept queues must not count our own probe connections, and
    // what listens decides how it may be probed.
    let port = target.port;
    let interfaces = os::local_addresses();
    let local = addrs.iter().all(|&ip| probe::is_local(ip, &interfaces));
    let live = matches!(source, Source::Live(..));
    let again = source.rescan();
    let dst = addrs.clone();
    let mut facts = tokio::task::spawn_blocking(move || local_facts(&source, port, local, dst))
        .await
        .map_err(ScanFailed)?;

    let connects = addrs
        .iter()
        .map(|&ip| probe::connect(SocketAddr::new(ip, target.port), opts.timeout));
    let outcomes = futures_util::future::join_all(connects).await;
    let probes: Vec<(IpAddr, Connect)> = addrs.iter().copied().zip(outcomes).collect();
    // The live model is up to a tick old: when the connects disagree with it (a server that
    // started or stopped since), the sockets are read again, fresh. The accept queues stay as
    // read before the connects.
    if live && local && disagrees(&facts.sockets, &probes) {
        let fresh =
            tokio::task::spawn_blocking(move || again.with(|state| socket_facts(state, port)))
                .await
                .map_err(ScanFailed)?;
        (facts.sockets, facts.processes, facts.states) = fresh;
    }

    let tls = target
        .scheme
        .as_deref()
        .is_some_and(|s| s == "https" || s == "wss");
    // An `http://` URL is the user's word that the listener serves HTTP.
    let asked_http = target.scheme.as_deref() == Some("http");
    let answer = match probes.iter().find(|(_, c)| c.is_connected()) {
        Some(&(ip, _)) if opts.http_probe && !tls => {
            let addr = SocketAddr::new(ip, target.port);
            let timeout = opts.timeout.max(Duration::from_secs(2));
            Some((
                addr,
                match speaks(&facts, port) {
                    Speaks::Other(why) => Answer::NotSent(why),
                    Speaks::Proxy(why) if !asked_http => {
                        probe::listen_only(addr, probe::LISTEN_FIRST, timeout, why).await
                    }
                    Speaks::Http | Speaks::Proxy(_) => {
                        probe::converse(
                            addr,
                            &target.authority(),
                            &target.path,
                            Duration::ZERO,
                            timeout,
                        )
                        .await
                    }
                    Speaks::Unknown => {
                        probe::converse(
                            addr,
                            &target.authority(),
                            &target.path,
                            probe::LISTEN_FIRST,
                            timeout,
                        )
                        .await
                    }
                },
            ))
        }
        _ => None,
    };
    facts.target = Some(target.clone());
    facts.root = os::is_root();
    facts.probes = probes;
    facts.local = local;
    facts.answer = answer;
    Ok(facts)
}

/// Whether what the connects saw contradicts the sockets read before them: a connection worked
/// with no TCP listener, or none worked while one listens.
pub fn disagrees(sockets: &[Socket], probes: &[(IpAddr, Connect)]) -> bool {
    let listening = sockets
        .iter()
        .any(|s| s.proto == Proto::Tcp && s.state == SocketState::Listen);
    let connected = probes.iter().any(|(_, c)| c.is_connected());
    connected != listening
}

/// The sockets on `port`, their owners, and the owners' scheduler states (read now).
fn socket_facts(
    state: &State,
    port: u16,
) -> (Vec<Socket>, HashMap<u32, Process>, HashMap<u32, char>) {
    let sockets: Vec<Socket> = state
        .sockets()
        .filter(|s| s.local_port == port)
        .cloned()
        .collect();
    let mut processes = HashMap::new();
    let mut states = HashMap::new();
    let mut system = os::System::new();
    for socket in &sockets {
        for pid in &socket.pids {
            if let Some(p) = state.processes.get(pid) {
                processes.insert(*pid, p.clone());
            }
            if let Some(st) = Platform::stat(&mut system, *pid).and_then(|s| s.state) {
                states.insert(*pid, st);
            }
        }
    }
    (sockets, processes, states)
}

/// The socket table, owners, queues, firewall and container for one port.
fn local_facts(source: &Source, port: u16, local: bool, dst: Vec<IpAddr>) -> Facts {
    let mut facts = Facts::default();
    if !local {
        return facts;
    }
    (facts.sockets, facts.processes, facts.states) = source.with(|state| socket_facts(state, port));
    let queues = os::accept_queues();
    for socket in facts
        .sockets
        .iter()
        .filter(|s| s.state == SocketState::Listen)
    {
        if let Some(n) = socket
            .id
            .rsplit_once(" i")
            .and_then(|(_, inode)| inode.parse::<u64>().ok())
            .and_then(|inode| queues.get(&inode))
        {
            facts.queues.insert(socket.id.clone(), *n);
        }
    }
    facts.settings = os::port_settings();
    facts.firewall = Some(probe::firewall(&firewall::Packet {
        dst: dst.clone(),
        port,
    }));
    let proxied = facts
        .processes
        .values()
        .any(|p| CONTAINER_PROXIES.contains(&p.name.as_str()));
    let labelled = facts.sockets.iter().any(|s| {
        s.app
            .as_deref()
            .is_some_and(|a| a.starts_with("container "))
    });
    let listens = facts
        .sockets
        .iter()
        .any(|s| s.proto == Proto::Tcp && s.state == SocketState::Listen);
    if proxied || labelled {
        let bound: Vec<IpAddr> = facts
            .sockets
            .iter()
            .filter(|s| s.state == SocketState::Listen)
            .map(|s| s.local_addr)
            .collect();
        facts.container = Some(portscope_core::containers::inside(port, &bound));
    } else if !listens && portscope_core::containers::Engine::detect().is_some() {
        // Nothing listens: a container may still publish the port, its forwarder gone.
        let mut addrs = vec![
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        ];
        addrs.extend(dst.iter().copied());
        if let Ok(Some(inside)) = portscope_core::containers::inside(port, &addrs) {
            facts.container = Some(Ok(Some(inside)));
        }
    }
    facts
}
