//! `GET /metrics` (#13, fleets): this agent's sockets and its own health in the OpenMetrics text
//! format Prometheus scrapes, built with `prometheus-client`.
//!
//! Two kinds of figures. What the machine holds is read from the published state at each scrape
//! (a registry built per request: a listener that closed is gone from the next scrape, never a
//! stale series). What the agent does is counted as it happens by the parts that do it — the
//! refresher's scan time, the WebSocket clients, the history's failed writes — through the
//! [`Metrics`] handle they share. Each agent exports itself only: a fleet is scraped by
//! Prometheus, not relayed.
//!
//! Cardinality stays bounded by what listens: one `portscope_listen_info` series per listener
//! (never per connection or per remote port), `portscope_sockets` per protocol and state.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use portscope_shared::{Proto, Socket, SocketState};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::model::State;

/// The `Content-Type` of what [`Metrics::render`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the agent counts as it runs; cheap to clone (each metric is shared).
#[derive(Clone, Debug)]
pub struct Metrics {
    scan_seconds: Histogram,
    websocket_clients: Gauge,
    /// Of those, the ones from this machine's loopback (not exported: it decides whether the
    /// health checks run, which only a dashboard on this machine may cause).
    local_clients: Gauge,
    history_write_errors: Counter,
    /// Full scans the doctor made because the live model could not answer.
    doctor_scans: Counter,
    /// Kernel changes received, and lost (the ring buffer or the queue full; #22).
    kernel_events: Gauge,
    kernel_events_lost: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            // 1 ms to about 4 s: a scan of a quiet laptop to one of 100 000 sockets.
            scan_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 13)),
            websocket_clients: Gauge::default(),
            local_clients: Gauge::default(),
            history_write_errors: Counter::default(),
            doctor_scans: Counter::default(),
            kernel_events: Gauge::default(),
            kernel_events_lost: Gauge::default(),
        }
    }
}

impl Metrics {
    /// One refresh (scan and diff) took `took`.
    pub fn scanned(&self, took: Duration) {
        self.scan_seconds.observe(took.as_secs_f64());
    }

    /// A WebSocket client connected from `from`; it counts until the returned guard drops.
    pub fn client(&self, from: IpAddr) -> ClientGuard {
        self.websocket_clients.inc();
        let local = from.to_canonical().is_loopback().then(|| {
            self.local_clients.inc();
            self.local_clients.clone()
        });
        ClientGuard(self.websocket_clients.clone(), local)
    }

    /// How many WebSocket clients (dashboards) are connected now (exported as
    /// `portscope_websocket_clients`; read here by the tests).
    #[cfg(test)]
    pub fn clients(&self) -> i64 {
        self.websocket_clients.get()
    }

    /// How many of them connected from this machine's loopback (a dashboard of this machine's
    /// user, not a remote browser or a hub's link to a shared agent).
    pub fn local_clients(&self) -> i64 {
        self.local_clients.get()
    }

    /// The history failed to write a tick (or dropped one, its writer being behind).
    pub fn history_write_failed(&self) {
        self.history_write_errors.inc();
    }

    /// The doctor scanned the machine once because the live model could not answer.
    /// The kernel's changes so far: received, and lost on the way.
    pub fn kernel_events(&self, received: u64, lost: u64) {
        self.kernel_events
            .set(i64::try_from(received).unwrap_or(i64::MAX));
        self.kernel_events_lost
            .set(i64::try_from(lost).unwrap_or(i64::MAX));
    }

    pub fn doctor_scanned(&self) {
        self.doctor_scans.inc();
    }

    /// The exposition of `state`, of a hub's `peers` (each name and whether it is live) and
    /// of the agent's own figures, ending with `# EOF`.
    pub fn render(&self, state: &State, peers: &[(String, bool)]) -> String {
        let mut registry = Registry::with_prefix("portscope");
        // An unconnected UDP socket on an ephemeral port is a client's (a resolver's, QUIC's),
        // there for a moment: one series each would only churn.
        let ephemeral = crate::os::port_settings().ephemeral;
        let client_udp = |s: &Socket| {
            s.proto == Proto::Udp
                && ephemeral.is_some_and(|r| (r.first..=r.last).contains(&s.local_port))
        };
        let listeners = Family::<ListenLabels, Gauge>::default();
        let sockets = Family::<SocketLabels, Gauge>::default();
        let connections = Family::<ConnectionLabels, Gauge>::default();
        for (labels, count) in listener_connections(state) {
            connections.get_or_create(&labels).set(count);
        }
        for socket in state.sockets() {
            sockets
                .get_or_create(&SocketLabels {
                    proto: text(socket.proto),
                    state: text(socket.state),
                })
                .inc();
            if socket.is_listening() && !client_udp(socket) {
                listeners
                    .get_or_create(&listen_labels(socket, state))
                    .set(1);
            }
        }
        registry.register(
            "listen_info",
            "One series per listening socket (TCP listener or unconnected UDP socket), with its owner",
            listeners,
        );
        registry.register(
            "sockets",
            "Sockets on this machine by protocol and state",
            sockets,
        );
        registry.register(
            "listener_connections",
            "Established connections accepted by each TCP listener",
            connections,
        );
        registry.register(
            "scan_duration_seconds",
            "Time of each refresh: reading every socket and its owner, and the diff",
            self.scan_seconds.clone(),
        );
        registry.register(
            "websocket_clients",
            "Dashboards and other WebSocket clients connected now",
            self.websocket_clients.clone(),
        );
        registry.register(
            "history_write_errors",
            "Ticks the port history failed to write or had to drop",
            self.history_write_errors.clone(),
        );
        registry.register(
            "doctor_scans",
            "Full scans the doctor's routes made because the live model could not answer",
            self.doctor_scans.clone(),
        );
        registry.register(
            "kernel_events",
            "Changes the kernel reported (BPF tracepoints; 0 when the agent polls)",
            self.kernel_events.clone(),
        );
        registry.register(
            "kernel_events_lost",
            "Kernel changes lost on the way (ring buffer or queue full, or too many short \
             listeners followed); each loss is followed by a full scan",
            self.kernel_events_lost.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        registry.register("build_info", "This agent's version", build);
        if !peers.is_empty() {
            let up = Family::<PeerLabels, Gauge>::default();
            for (peer, live) in peers {
                up.get_or_create(&PeerLabels { peer: peer.clone() })
                    .set(i64::from(*live));
            }
            registry.register(
                "peer_up",
                "On a hub: whether each peer's link is live (1) or not (0)",
                up,
            );
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Counts one WebSocket client while it lives.
#[derive(Debug)]
pub struct ClientGuard(Gauge, Option<Gauge>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.dec();
        if let Some(local) = &self.1 {
            local.dec();
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenLabels {
    proto: String,
    family: String,
    addr: String,
    port: u16,
    /// The first owner's name; empty when it is hidden (another user's, without root).
    process: String,
    exposure: String,
    /// The first owner's project's name; empty for none.
    project: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SocketLabels {
    proto: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    proto: String,
    addr: String,
    port: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

fn listen_labels(socket: &Socket, state: &State) -> ListenLabels {
    let owner = socket.pids.first().and_then(|pid| state.processes.get(pid));
    ListenLabels {
        proto: text(socket.proto),
        family: text(socket.family),
        addr: socket.local_addr.to_string(),
        port: socket.local_port,
        process: owner.map(|p| p.name.clone()).unwrap_or_default(),
        exposure: socket.exposure.map(text).unwrap_or_default(),
        project: owner
            .and_then(|p| p.project.as_ref())
            .map(|p| p.name.clone())
            .unwrap_or_default(),
    }
}

/// Each TCP listener with the established connections it accepted: those whose local end is
/// the listener's port, on its address (or any, for a listener on all addresses of its family).
fn listener_connections(state: &State) -> Vec<(ConnectionLabels, i64)> {
    let mut listeners: HashMap<u16, Vec<(IpAddr, i64)>> = HashMap::new();
    for s in state.sockets() {
        if s.proto == Proto::Tcp && s.state == SocketState::Listen {
            listeners
                .entry(s.local_port)
                .or_default()
                .push((s.local_addr, 0));
        }
    }
    for s in state.sockets() {
        if s.proto != Proto::Tcp || s.state != SocketState::Established {
            continue;
        }
        let Some(on_port) = listeners.get_mut(&s.local_port) else {
            continue;
        };
        // The listener on this very address, else one on all addresses of the same family.
        let exact = on_port.iter().position(|(a, _)| *a == s.local_addr);
        let any = || {
            on_port
                .iter()
                .position(|(a, _)| a.is_unspecified() && a.is_ipv4() == s.local_addr.is_ipv4())
        };
        if let Some(i) = exact.or_else(any) {
            on_port[i].1 += 1;
        }
    }
    let mut out = Vec::new();
    for (port, on_port) in listeners {
        for (addr, count) in on_port {
            out.push((
                ConnectionLabels {
                    proto: "tcp".into(),
                    addr: addr.to_string(),
                    port,
                },
                count,
            ));
        }
    }
    out
}

/// A protocol enum's wire name (`tcp`, `ipv6`, `ESTABLISHED`, `loopback`).
fn text(value: impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
