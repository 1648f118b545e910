//! The agent's history writer: each tick's listener events go to a thread of their own, which
//! writes them in one transaction — never on the scan's or the server's path. A problem (a full
//! disk, a locked, corrupt or newer file) is kept for the scan's warnings; the live view goes on.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use portscope_shared::{Event, EventKind, Proto, Socket, SocketState};

use super::store::{ConnectionRow, Store, millis};
use crate::model::{Published, State};

/// Ticks queued for the writer at most; more are dropped (and said).
const QUEUE: usize = 64;
/// How often old events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Batches of old events a prune for size removes at most.
const PRUNE_ROUNDS: usize = 50;

struct Tick {
    at: i64,
    events: Vec<(String, Event, Option<i64>)>,
    open: Option<Vec<(String, Event)>>,
    connections: Vec<ConnectionRow>,
}

/// How long and how large the history may grow.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    pub keep: Duration,
    pub max_bytes: u64,
}

/// The agent's side of the history: counts connections and hands each tick to the writer
/// thread.
#[derive(Debug)]
pub struct Recorder {
    tx: SyncSender<Tick>,
    problem: Arc<Mutex<Option<String>>>,
    counter: Counter,
}

impl Recorder {
    /// Opens `path` on a thread of its own, reconciles it with `first` (what opened or closed
    /// while the agent was down), and keeps `keep` of events.
    pub fn start(path: PathBuf, keep: Retention, first: &State) -> Recorder {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let problem = Arc::new(Mutex::new(None));
        let open_now = open_listeners(first, &now_text());
        let said = problem.clone();
        std::thread::Builder::new()
            .name("history".into())
            .spawn(move || write_loop(&path, keep, open_now, &rx, &said))
            .expect("a thread for the history");
        Recorder {
            tx,
            problem,
            counter: Counter::default(),
        }
    }

    /// Called every tick with the state in force (`changed` when it was just published): counts
    /// its connections and queues its listener events, if any, for the writer.
    pub fn tick(&mut self, published: &Published, changed: bool) {
        let now = SystemTime::now();
        let connections = self.counter.count(&published.state, millis(now));
        let events = if changed { &published.events[..] } else { &[] };
        if events.is_empty() && connections.is_empty() {
            return;
        }
        let tick = Tick {
            at: millis(now),
            events: events
                .iter()
                .map(|(id, e)| (id.clone(), e.clone(), None))
                .collect(),
            open: (!events.is_empty()).then(|| open_listeners(&published.state, &now_text())),
            connections,
        };
        if let Err(TrySendError::Full(_)) = self.tx.try_send(tick) {
            self.say(Some(
                "the history writer is behind (a slow disk?); some changes were not recorded"
                    .into(),
            ));
        }
    }

    /// What keeps the history from working, for the scan's warnings.
    pub fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn say(&self, what: Option<String>) {
        *self.problem.lock().unwrap_or_else(PoisonError::into_inner) = what;
    }
}

fn now_text() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Every listener of a state, as an `opened` event (what is open now).
fn open_listeners(state: &State, time: &str) -> Vec<(String, Event)> {
    let mut open = super::events(
        &State::default(),
        state,
        SystemTime::now(),
        Socket::is_listening,
    );
    for (_, e) in &mut open {
        e.time = time.to_owned();
    }
    open
}

fn write_loop(
    path: &std::path::Path,
    keep: Retention,
    open_now: Vec<(String, Event)>,
    rx: &Receiver<Tick>,
    problem: &Mutex<Option<String>>,
) {
    let say = |what: Option<String>| {
        *problem.lock().unwrap_or_else(PoisonError::into_inner) = what;
    };
    let mut store = match Store::open(path) {
        Ok(store) => store,
        Err(e) => {
            tracing::warn!(%e, "the port history is off");
            say(Some(format!("the port history is off: {e}")));
            // Keep draining, so the agent never blocks on a queue nobody reads.
            while rx.recv().is_ok() {}
            return;
        }
    };
    if let Err(e) = reconcile(&mut store, open_now) {
        say(Some(format!(
            "the port history could not be brought up to date: {e}"
        )));
    }
    let mut pruned: Option<Instant> = None;
    for tick in rx {
        match store.write_tick(
            tick.at,
            &tick.events,
            tick.open.as_deref(),
            &tick.connections,
        ) {
            Ok(()) => say(None),
            Err(e) => say(Some(format!(
                "the port history is not being written: {e}; the live view goes on"
            ))),
        }
        if pruned.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            pruned = Some(Instant::now());
            let before = millis(SystemTime::now())
                - i64::try_from(keep.keep.as_millis()).unwrap_or(i64::MAX);
            let pruned = store
                .prune(before)
                .and_then(|_| store.prune_to_size(keep.max_bytes, PRUNE_ROUNDS));
            if let Err(e) = pruned {
                tracing::warn!(%e, "could not prune the port history");
            }
        }
    }
}

/// At start: what was open at the last tick but is not now closed while the agent was down, and
/// what is open now but was not then opened meanwhile — both with the interval it happened in.
fn reconcile(
    store: &mut Store,
    open_now: Vec<(String, Event)>,
) -> Result<(), super::store::HistoryError> {
    let now = millis(SystemTime::now());
    let last = store.last_tick()?;
    let was: BTreeMap<String, Event> = last.open.into_iter().collect();
    let last = last.at;
    let is: BTreeMap<String, Event> = open_now.iter().cloned().collect();
    let mut events = Vec::new();
    for (id, e) in &was {
        if !is.contains_key(id) {
            let mut closed = e.clone();
            closed.kind = EventKind::Closed;
            events.push((id.clone(), closed, last));
        }
    }
    for (id, e) in &is {
        match was.get(id) {
            None => events.push((id.clone(), e.clone(), last)),
            Some(before) if before.pid != e.pid => {
                let mut changed = e.clone();
                changed.kind = EventKind::OwnerChanged;
                events.push((id.clone(), changed, last));
            }
            Some(_) => {}
        }
    }
    store.write(now, &events, Some(&open_now))
}

/// Counts, per listening TCP port and per minute, the server ends of its connections: how many
/// appeared, the most open at one tick, and the distinct peer addresses.
#[derive(Debug, Default)]
struct Counter {
    /// The minute being counted (ms, a whole minute), and its counts.
    minute: i64,
    ports: HashMap<u16, PortCount>,
    /// What was last handed to the writer for this minute.
    sent: HashMap<u16, (u32, u32, u32)>,
    /// The server ends seen at the last tick, by their two endpoints (a socket's id changes
    /// when it is orphaned in FIN_WAIT or TIME_WAIT; its endpoints do not). `None` before the
    /// first tick: what is there then was accepted before the agent looked.
    seen: Option<HashSet<(SocketAddr, SocketAddr)>>,
}

#[derive(Debug, Default)]
struct PortCount {
    accepted: u32,
    open: u32,
    peers: HashSet<IpAddr>,
}

impl Counter {
    /// Counts one tick's state at `now` (ms); returns the rows that changed since the last
    /// call, to be written (each replacing its port's row for the minute).
    fn count(&mut self, state: &State, now: i64) -> Vec<ConnectionRow> {
        let minute = now - now.rem_euclid(60_000);
        if minute != self.minute {
            self.minute = minute;
            self.ports.clear();
            self.sent.clear();
        }
        let listening: HashSet<u16> = state
            .sockets
            .values()
            .filter(|s| s.proto == Proto::Tcp && s.state == SocketState::Listen)
            .map(|s| s.local_port)
            .collect();
        let mut open: HashMap<u16, u32> = HashMap::new();
        let mut seen = HashSet::new();
        for socket in state.sockets.values() {
            // The server end of a connection to one of the listeners, in any state: one that
            // closed within a tick is still counted from its FIN_WAIT or TIME_WAIT.
            let Some(peer) = socket.remote_endpoint() else {
                continue;
            };
            if socket.proto != Proto::Tcp || !listening.contains(&socket.local_port) {
                continue;
            }
            let port = socket.local_port;
            let count = self.ports.entry(port).or_default();
            count.peers.insert(peer.ip());
            let ends = (socket.local_endpoint(), peer);
            if self
                .seen
                .as_ref()
                .is_some_and(|before| !before.contains(&ends))
            {
                count.accepted += 1;
            }
            seen.insert(ends);
            if socket.state == SocketState::Established {
                *open.entry(port).or_default() += 1;
            }
        }
        self.seen = Some(seen);
        for (port, n) in &open {
            let count = self.ports.entry(*port).or_default();
            count.open = count.open.max(*n);
        }
        let mut rows = Vec::new();
        for (port, count) in &self.ports {
            let now = (
                count.accepted,
                count.open,
                u32::try_from(count.peers.len()).unwrap_or(u32::MAX),
            );
            if self.sent.get(port) != Some(&now) {
                self.sent.insert(*port, now);
                rows.push(ConnectionRow {
                    port: *port,
                    minute,
                    accepted: now.0,
                    open: now.1,
                    peers: now.2,
                });
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::model::tests::{listener, socket, state};

    /// The server end of a connection from `peer`:`from` to port 8000.
    fn accepted(peer: [u8; 4], from: u16) -> Socket {
        let mut s = socket(
            &format!("tcp 127.0.0.1:8000 {}:{from} i{from}", Ipv4Addr::from(peer)),
            SocketState::Established,
        );
        s.local_port = 8000;
        s.remote_addr = Some(IpAddr::from(peer));
        s.remote_port = Some(from);
        s
    }

    #[test]
    fn connections_are_counted_per_port_and_minute() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let server = listener(lo, 8000, 10);
        // A client end on this machine: its local port is not a listener's.
        let mut client = socket(
            "tcp 127.0.0.1:50000 127.0.0.1:8000 i1",
            SocketState::Established,
        );
        client.local_port = 50000;
        client.remote_addr = Some(lo);
        client.remote_port = Some(8000);
        let mut counter = Counter::default();
        let minute = 60_000 * 1000;
        let row = |minute, accepted, open, peers| ConnectionRow {
            port: 8000,
            minute,
            accepted,
            open,
            peers,
        };

        // The first state: a connection already open is open, not accepted.
        let first = state(&[
            server.clone(),
            accepted([127, 0, 0, 1], 50000),
            client.clone(),
        ]);
        assert_eq!(
            counter.count(&first, minute + 1_000),
            [row(minute, 0, 1, 1)]
        );
        // Nothing changed: nothing to write.
        assert!(counter.count(&first, minute + 2_000).is_empty());

        // Two more from another peer: accepted 2, the most open 3, 2 peers.
        let more = [
            server.clone(),
            accepted([127, 0, 0, 1], 50000),
            accepted([127, 0, 0, 2], 50001),
            accepted([127, 0, 0, 2], 50002),
        ];
        assert_eq!(
            counter.count(&state(&more), minute + 3_000),
            [row(minute, 2, 3, 2)]
        );
        // One closes and lingers in TIME_WAIT with another id: not a new connection.
        let mut orphan = accepted([127, 0, 0, 2], 50002);
        orphan.id = "tcp 127.0.0.1:8000 127.0.0.2:50002 i0".into();
        orphan.state = SocketState::TimeWait;
        let fewer = [more[0].clone(), more[1].clone(), more[2].clone(), orphan];
        assert!(
            counter.count(&state(&fewer), minute + 4_000).is_empty(),
            "a close changes neither the most open nor the peers seen"
        );
        // One that opened and closed between two ticks is counted from its TIME_WAIT.
        let mut quick = accepted([127, 0, 0, 3], 50003);
        quick.state = SocketState::TimeWait;
        let quicker = [fewer.as_slice(), &[quick]].concat();
        assert_eq!(
            counter.count(&state(&quicker), minute + 5_000),
            [row(minute, 3, 3, 3)]
        );

        // The next minute starts from what is there: two open, from two peers (plus the two
        // in TIME_WAIT, one of them the third peer's).
        assert_eq!(
            counter.count(&state(&quicker), minute + 60_000),
            [row(minute + 60_000, 0, 2, 3)]
        );
    }
}
