//! The agent's history writer: each tick's listener events go to a thread of their own, which
//! writes them in one transaction — never on the scan's or the server's path. A problem (a full
//! disk, a locked, corrupt or newer file) is kept for the scan's warnings; the live view goes on.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use portscope_shared::{Event, EventKind, Proto, Socket, SocketState};

use super::store::{ConnectionRow, Store, millis};
use portscope_core::model::{Published, State};

/// Ticks queued for the writer at most; more are dropped (and said).
const QUEUE: usize = 64;
/// How often old events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Batches of old events a prune for size removes at most.
const PRUNE_ROUNDS: usize = 50;

struct Tick {
    at: i64,
    events: Vec<(String, Event, Option<i64>)>,
    /// Whether the open listeners changed with it (then the writer writes the latest set,
    /// [`Progress`]'s `open`).
    open: bool,
    connections: Vec<ConnectionRow>,
}

/// How long and how large the history may grow.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    pub keep: Duration,
    pub max_bytes: u64,
}

/// How far the writer has come: ticks queued for it and ticks written, so that a reader (the
/// API's history routes) can wait for what was published before its request — a page that
/// reloads right after a change finds that change in the history.
#[derive(Debug, Default)]
pub struct Progress {
    queued: std::sync::atomic::AtomicU64,
    written: Mutex<u64>,
    wrote: std::sync::Condvar,
    /// The open listeners as of the last tick with events, for the writer to write after the
    /// tick it is on: only the latest set matters, so it is one slot, not a copy in each queued
    /// tick (kernel events publish each listener as it opens: 1 000 quick listeners with a copy
    /// each grew the agent by 150 MB).
    open: Mutex<Option<Vec<(String, Event)>>>,
}

impl Progress {
    /// Waits until every tick queued by now is written (or given up on), `limit` at most.
    pub fn wait_written(&self, limit: Duration) {
        let target = self.queued.load(std::sync::atomic::Ordering::SeqCst);
        let deadline = Instant::now() + limit;
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        while *written < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            written = self
                .wrote
                .wait_timeout(written, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn queued(&self) {
        self.queued
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn written(&self) {
        *self.written.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.wrote.notify_all();
    }
}

/// The agent's side of the history: counts connections and hands each tick to the writer
/// thread.
#[derive(Debug)]
pub struct Recorder {
    tx: SyncSender<Tick>,
    progress: Arc<Progress>,
    problem: Arc<Mutex<Option<String>>>,
    metrics: portscope_core::metrics::Metrics,
    counter: Counter,
    /// The listeners open now, kept from the events (no pass over every socket).
    open: BTreeMap<String, Event>,
}

impl Recorder {
    /// Opens `path` on a thread of its own, reconciles it with `first` (what opened or closed
    /// while the agent was down), and keeps `keep` of events.
    /// Its failed writes and dropped ticks count in `metrics`.
    pub fn start(
        path: PathBuf,
        keep: Retention,
        first: &State,
        metrics: portscope_core::metrics::Metrics,
    ) -> Recorder {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let problem = Arc::new(Mutex::new(None));
        let open_now = open_listeners(first, &now_text());
        let open = open_now.iter().cloned().collect();
        let said = problem.clone();
        let progress = Arc::new(Progress::default());
        std::thread::Builder::new()
            .name("history".into())
            .spawn({
                let metrics = metrics.clone();
                let progress = progress.clone();
                move || write_loop(&path, keep, open_now, &rx, &said, &metrics, &progress)
            })
            .expect("a thread for the history");
        Recorder {
            tx,
            progress,
            problem,
            metrics,
            open,
            counter: Counter::starting_from(first),
        }
    }

    /// Called every tick with the state in force (`changed` when it was just published): counts
    /// its connections and queues its listener events, if any, for the writer.
    pub fn tick(&mut self, published: &Published, changed: bool) {
        let now = SystemTime::now();
        let connections = self
            .counter
            .count(changed.then_some(published), millis(now));
        let events = if changed { &published.events[..] } else { &[] };
        if events.is_empty() && connections.is_empty() {
            return;
        }
        for (id, event) in events {
            match event.kind {
                EventKind::Opened | EventKind::OwnerChanged => {
                    self.open.insert(id.clone(), event.clone());
                }
                EventKind::Closed | EventKind::Unknown => {
                    self.open.remove(id);
                }
                // Its listener's own event (closed, or passed on) came first; a health check
                // leaves the listener as it was; a failure has no socket of its own.
                EventKind::Exited
                | EventKind::Health
                | EventKind::BindFailed
                | EventKind::ConnectRefused => {}
            }
        }
        let tick = Tick {
            at: millis(now),
            events: events
                .iter()
                .map(|(id, e)| (id.clone(), e.clone(), None))
                .collect(),
            open: !events.is_empty(),
            connections,
        };
        if !events.is_empty() {
            *self
                .progress
                .open
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(
                self.open
                    .iter()
                    .map(|(id, e)| (id.clone(), e.clone()))
                    .collect(),
            );
        }
        // Counted before it is sent, so the writer's count never passes it.
        self.progress.queued();
        if let Err(e) = self.tx.try_send(tick) {
            // Never to be written: not waited for.
            self.progress.written();
            if matches!(e, TrySendError::Disconnected(_)) {
                return;
            }
            self.metrics.history_write_failed();
            self.say(Some(
                "the history writer is behind (a slow disk?); some changes were not recorded"
                    .into(),
            ));
        }
    }

    /// How far its writer has come, for readers that must see what was published.
    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
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
    let mut open = portscope_core::events::events(
        &State::default(),
        state,
        SystemTime::now(),
        Socket::is_listening,
        |_| true,
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
    metrics: &portscope_core::metrics::Metrics,
    progress: &Progress,
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
            while rx.recv().is_ok() {
                progress.written();
            }
            return;
        }
    };
    if let Err(e) = reconcile(&mut store, open_now) {
        say(Some(format!(
            "the port history could not be brought up to date: {e}"
        )));
    }
    // Pruned at start, then by age every PRUNE_EVERY (a tick or not), and by size as soon as a
    // write takes the file past its limit.
    let mut pruner = Pruner::new(keep);
    pruner.by_age(&mut store);
    loop {
        let tick = match rx.recv_timeout(pruner.until_due()) {
            Ok(tick) => tick,
            Err(RecvTimeoutError::Timeout) => {
                pruner.by_age(&mut store);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let open = if tick.open {
            progress
                .open
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        } else {
            None
        };
        match store.write_tick(tick.at, &tick.events, open.as_deref(), &tick.connections) {
            Ok(()) => say(None),
            Err(e) => {
                metrics.history_write_failed();
                say(Some(format!(
                    "the port history is not being written: {e}; the live view goes on"
                )));
            }
        }
        progress.written();
        if pruner.due() {
            pruner.by_age(&mut store);
        } else {
            pruner.by_size(&mut store);
        }
    }
}

/// When the writer prunes the history, and what it found the last time.
struct Pruner {
    keep: Retention,
    last: Instant,
    /// The bytes the file still took after a prune for size could not bring it under the limit
    /// (open listeners' tenures are never pruned): tried again only once it grew past this.
    stuck_at: Option<u64>,
}

impl Pruner {
    fn new(keep: Retention) -> Self {
        Self {
            keep,
            last: Instant::now(),
            stuck_at: None,
        }
    }

    fn until_due(&self) -> Duration {
        PRUNE_EVERY.saturating_sub(self.last.elapsed())
    }

    fn due(&self) -> bool {
        self.until_due().is_zero()
    }

    /// Forgets what is older than the keep (then whatever the size limit asks).
    fn by_age(&mut self, store: &mut Store) {
        self.last = Instant::now();
        self.stuck_at = None;
        let before = millis(SystemTime::now())
            - i64::try_from(self.keep.keep.as_millis()).unwrap_or(i64::MAX);
        if let Err(e) = store.prune(before) {
            tracing::warn!(%e, "could not prune the port history");
        }
        self.by_size(store);
    }

    /// Forgets the oldest events while the file is over its size (cheap when it is not: three
    /// pragmas).
    fn by_size(&mut self, store: &mut Store) {
        let max = self.keep.max_bytes;
        let used = match store.used_bytes() {
            Ok(used) => used,
            Err(e) => {
                tracing::warn!(%e, "could not read the port history's size");
                return;
            }
        };
        // Past the limit, or grown by a sixteenth of it since a prune could do no more.
        let threshold = self.stuck_at.map_or(max, |at| at.saturating_add(max / 16));
        if used <= threshold {
            return;
        }
        match store.prune_to_size(max, PRUNE_ROUNDS) {
            Ok(true) => self.stuck_at = None,
            // Nothing more could go (what is left is open listeners' tenures): wait for growth.
            // Something went but not enough (a call's rounds are bounded): on at the next write.
            Ok(false) => self.stuck_at = store.used_bytes().ok().filter(|now| *now >= used),
            Err(e) => tracing::warn!(%e, "could not prune the port history"),
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
            // Open before the agent first looked: it opened after its owner started (when
            // known), not now.
            None if last.is_none() => {
                let started = e
                    .start_time
                    .and_then(|s| i64::try_from(s.saturating_mul(1000)).ok());
                events.push((id.clone(), e.clone(), started));
            }
            None => events.push((id.clone(), e.clone(), last)),
            Some(before) if before.pid != e.pid => {
                let mut changed = e.clone();
                changed.kind = EventKind::OwnerChanged;
                events.push((id.clone(), changed, last));
            }
            Some(_) => {}
        }
    }
    // The owners of what closed or passed on that no longer run exited meanwhile.
    let mut exits = Vec::new();
    for (id, before) in &was {
        let kept = is.get(id).is_some_and(|now| now.pid == before.pid);
        let runs = |pid| {
            portscope_core::events::still_runs(pid, before.start_time, before.process.as_deref())
        };
        if !kept && before.pid.is_some_and(|pid| !runs(pid)) {
            let mut exited = before.clone();
            exited.kind = EventKind::Exited;
            exits.push((id.clone(), exited, last));
        }
    }
    events.extend(exits);
    store.write(now, &events, Some(&open_now))
}

/// Counts, per listening TCP port and per minute, the server ends of its connections: how many
/// appeared, the most open at one tick, and the distinct peer addresses. It follows the model's
/// deltas, so a tick costs what changed, not what is open: 21 000 sockets cost nothing while
/// they stay.
#[derive(Debug, Default)]
struct Counter {
    /// The state counted last; a delta from elsewhere makes it start again from the state.
    seq: u64,
    /// The minute being counted (ms, a whole minute).
    minute: i64,
    /// TCP listeners by socket id, and how many listen on each port.
    listeners: HashMap<String, u16>,
    listening: HashMap<u16, u32>,
    /// The server ends of connections to a listening port, by socket id.
    ends: HashMap<String, End>,
    /// Per port, now: connections established, and peers (with their connection counts).
    current: HashMap<u16, Current>,
    /// Per port, this minute's counts.
    ports: HashMap<u16, PortCount>,
    /// What was last handed to the writer for this minute.
    sent: HashMap<u16, (u32, u32, u32)>,
    /// TCP connections of the last delta on ports nobody was seen listening on, by local
    /// port: the kernel's dump reads listeners before connections, so a listener opened while
    /// a scan reads can come a tick after its first connections. Kept for one delta.
    early: HashMap<u16, Vec<Socket>>,
}

#[derive(Debug)]
struct End {
    port: u16,
    /// Its two endpoints: a socket's id changes when it is orphaned in FIN_WAIT or TIME_WAIT
    /// (its inode goes); its endpoints do not.
    pair: (SocketAddr, SocketAddr),
    established: bool,
}

#[derive(Debug, Default)]
struct Current {
    open: u32,
    peers: HashMap<IpAddr, u32>,
}

#[derive(Debug, Default)]
struct PortCount {
    accepted: u32,
    open: u32,
    peers: HashSet<IpAddr>,
}

impl Counter {
    /// A counter for which the connections of `first` (the agent's first scan) were accepted
    /// before it looked.
    fn starting_from(first: &State) -> Counter {
        let mut counter = Counter::default();
        counter.reset(first);
        counter
    }

    /// Takes the whole state as it is, counting nothing as accepted.
    fn reset(&mut self, state: &State) {
        *self = Counter {
            minute: self.minute,
            ports: std::mem::take(&mut self.ports),
            sent: std::mem::take(&mut self.sent),
            ..Counter::default()
        };
        self.seq = state.seq;
        for socket in state.sockets() {
            self.listener_added(socket);
        }
        for socket in state.sockets() {
            self.end_added(socket);
        }
    }

    fn listener_added(&mut self, socket: &Socket) {
        if socket.proto == Proto::Tcp && socket.state == SocketState::Listen {
            self.listeners.insert(socket.id.clone(), socket.local_port);
            *self.listening.entry(socket.local_port).or_default() += 1;
        }
    }

    fn listener_removed(&mut self, id: &str) {
        if let Some(port) = self.listeners.remove(id)
            && let Some(n) = self.listening.get_mut(&port)
        {
            *n -= 1;
            if *n == 0 {
                self.listening.remove(&port);
            }
        }
    }

    /// Takes a socket that appeared; returns its endpoints when it is a server end.
    fn end_added(&mut self, socket: &Socket) -> Option<(SocketAddr, SocketAddr)> {
        let peer = socket.remote_endpoint()?;
        if socket.proto != Proto::Tcp || !self.listening.contains_key(&socket.local_port) {
            return None;
        }
        let end = End {
            port: socket.local_port,
            pair: (socket.local_endpoint(), peer),
            established: socket.state == SocketState::Established,
        };
        let current = self.current.entry(end.port).or_default();
        current.open += u32::from(end.established);
        *current.peers.entry(peer.ip()).or_default() += 1;
        let pair = end.pair;
        self.ends.insert(socket.id.clone(), end);
        Some(pair)
    }

    /// Forgets a socket that went; returns its endpoints when it was a server end.
    fn end_removed(&mut self, id: &str) -> Option<(SocketAddr, SocketAddr)> {
        let end = self.ends.remove(id)?;
        if let Some(current) = self.current.get_mut(&end.port) {
            current.open -= u32::from(end.established);
            let peer = end.pair.1.ip();
            if let Some(n) = current.peers.get_mut(&peer) {
                *n -= 1;
                if *n == 0 {
                    current.peers.remove(&peer);
                }
            }
            if current.open == 0 && current.peers.is_empty() {
                self.current.remove(&end.port);
            }
        }
        Some(end.pair)
    }

    /// Counts one tick at `now` (ms): the published change, if there was one. Returns the rows
    /// that changed since the last call, to be written (each replacing its port's row for the
    /// minute).
    fn count(&mut self, published: Option<&Published>, now: i64) -> Vec<ConnectionRow> {
        let minute = now - now.rem_euclid(60_000);
        if minute != self.minute {
            // A new minute starts from what is open.
            self.minute = minute;
            self.sent.clear();
            self.ports = self
                .current
                .iter()
                .map(|(port, current)| {
                    let count = PortCount {
                        accepted: 0,
                        open: current.open,
                        peers: current.peers.keys().copied().collect(),
                    };
                    (*port, count)
                })
                .collect();
        }
        if let Some(published) = published {
            match &published.delta {
                Some(delta) if delta.from_seq == self.seq => self.apply(delta),
                _ => self.reset(&published.state),
            }
            self.seq = published.state.seq;
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

    /// Follows one delta: listeners first (a connection may come with its listener, or a tick
    /// before it), then the server ends that went, changed and came.
    fn apply(&mut self, delta: &portscope_shared::Delta) {
        for id in &delta.removed {
            self.listener_removed(id);
        }
        for socket in &delta.changed {
            self.listener_removed(&socket.id);
            self.listener_added(socket);
        }
        for socket in &delta.added {
            self.listener_added(socket);
        }
        let mut touched = HashSet::new();
        // Connections that came a tick before their listener: accepted now.
        for (port, sockets) in std::mem::take(&mut self.early) {
            if !self.listening.contains_key(&port) {
                continue;
            }
            for socket in sockets {
                if let Some(pair) = self.end_added(&socket) {
                    let count = self.ports.entry(port).or_default();
                    count.accepted += 1;
                    count.peers.insert(pair.1.ip());
                    touched.insert(port);
                }
            }
        }
        // An end that went and came back under another id (orphaned) is not a new connection.
        let mut gone = HashSet::new();
        for id in &delta.removed {
            gone.extend(self.end_removed(id));
        }
        for socket in &delta.changed {
            if self.end_removed(&socket.id).is_some() {
                self.end_added(socket);
                touched.insert(socket.local_port);
            }
        }
        for socket in &delta.added {
            if let Some(pair) = self.end_added(socket) {
                let count = self.ports.entry(socket.local_port).or_default();
                count.accepted += u32::from(!gone.contains(&pair));
                count.peers.insert(pair.1.ip());
                touched.insert(socket.local_port);
            } else if socket.proto == Proto::Tcp
                && socket.remote_addr.is_some()
                && socket.state != SocketState::Listen
            {
                self.early
                    .entry(socket.local_port)
                    .or_default()
                    .push(socket.clone());
            }
        }
        for port in touched {
            let open = self.current.get(&port).map_or(0, |c| c.open);
            let count = self.ports.entry(port).or_default();
            count.open = count.open.max(open);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use proptest::prelude::*;

    use super::*;
    use portscope_core::testing::{listener, socket, state};

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
        let minute = 60_000 * 1000;
        let row = |minute, accepted, open, peers| ConnectionRow {
            port: 8000,
            minute,
            accepted,
            open,
            peers,
        };

        // Each tick publishes the change from the one before, as the model does.
        let mut last = State::default();
        let mut publish = |sockets: &[Socket]| -> Published {
            let mut next = state(sockets);
            next.seq = last.seq + 1;
            let delta = last.diff(&next);
            last = next.clone();
            Published {
                state: next,
                delta: Some(delta),
                ..Published::default()
            }
        };

        // The first state: a connection already open is open, not accepted.
        let first = publish(&[
            server.clone(),
            accepted([127, 0, 0, 1], 50000),
            client.clone(),
        ]);
        let mut counter = Counter::starting_from(&first.state);
        assert_eq!(counter.count(None, minute + 1_000), [row(minute, 0, 1, 1)]);
        // Nothing changed: nothing to write.
        assert!(counter.count(None, minute + 2_000).is_empty());

        // Two more from another peer: accepted 2, the most open 3, 2 peers.
        let more = [
            server.clone(),
            accepted([127, 0, 0, 1], 50000),
            accepted([127, 0, 0, 2], 50001),
            accepted([127, 0, 0, 2], 50002),
        ];
        assert_eq!(
            counter.count(Some(&publish(&more)), minute + 3_000),
            [row(minute, 2, 3, 2)]
        );
        // One closes and lingers in TIME_WAIT with another id: not a new connection.
        let mut orphan = accepted([127, 0, 0, 2], 50002);
        orphan.id = "tcp 127.0.0.1:8000 127.0.0.2:50002 i0".into();
        orphan.state = SocketState::TimeWait;
        let fewer = [more[0].clone(), more[1].clone(), more[2].clone(), orphan];
        assert!(
            counter
                .count(Some(&publish(&fewer)), minute + 4_000)
                .is_empty(),
            "a close changes neither the most open nor the peers seen"
        );
        // One that opened and closed between two ticks is counted from its TIME_WAIT.
        let mut quick = accepted([127, 0, 0, 3], 50003);
        quick.state = SocketState::TimeWait;
        let quicker = [fewer.as_slice(), &[quick]].concat();
        assert_eq!(
            counter.count(Some(&publish(&quicker)), minute + 5_000),
            [row(minute, 3, 3, 3)]
        );
        // A connection that changes state (established, then closing) is the same one.
        let mut closing = quicker.clone();
        closing[1].state = SocketState::CloseWait;
        assert!(
            counter
                .count(Some(&publish(&closing)), minute + 6_000)
                .is_empty()
        );

        // The next minute starts from what is there: one open, from three peers (two in
        // TIME_WAIT, one closing).
        assert_eq!(
            counter.count(None, minute + 60_000),
            [row(minute + 60_000, 0, 1, 3)]
        );

        // A listener and a connection to it in one change: the connection counts.
        let mut other = listener(lo, 9000, 11);
        other.id = "tcp 127.0.0.1:9000 - i11".into();
        let mut to_other = accepted([127, 0, 0, 4], 50004);
        to_other.id = "tcp 127.0.0.1:9000 127.0.0.4:50004 i50004".into();
        to_other.local_port = 9000;
        let both = [closing.as_slice(), &[other, to_other]].concat();
        let rows = counter.count(Some(&publish(&both)), minute + 61_000);
        assert_eq!(
            rows,
            [ConnectionRow {
                port: 9000,
                minute: minute + 60_000,
                accepted: 1,
                open: 1,
                peers: 1
            }]
        );

        // A delta that does not follow on (the counter missed a state): it starts again from
        // the state, counting nothing as accepted.
        let mut skipped = publish(&closing);
        skipped.delta.as_mut().unwrap().from_seq = 1;
        assert!(counter.count(Some(&skipped), minute + 62_000).is_empty());
        assert_eq!(counter.seq, skipped.state.seq);
    }

    #[test]
    fn connections_read_a_tick_before_their_listener_count() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let minute = 60_000 * 1000;
        let mut last = State::default();
        let mut publish = |sockets: &[Socket]| -> Published {
            let mut next = state(sockets);
            next.seq = last.seq + 1;
            let delta = last.diff(&next);
            last = next.clone();
            Published {
                state: next,
                delta: Some(delta),
                ..Published::default()
            }
        };
        let mut counter = Counter::starting_from(&publish(&[]).state);
        // A dump read the listeners before the server listened, its connections after.
        let conns = [
            accepted([127, 0, 0, 1], 50000),
            accepted([127, 0, 0, 1], 50001),
            accepted([127, 0, 0, 2], 50002),
        ];
        assert!(
            counter
                .count(Some(&publish(&conns)), minute + 1_000)
                .is_empty()
        );
        // The next dump has the listener too; one connection was accepted meanwhile (its id
        // changed) and one closed.
        let mut moved = conns[1].clone();
        moved.id = "tcp 127.0.0.1:8000 127.0.0.1:50001 i9".into();
        let now = [listener(lo, 8000, 10), conns[0].clone(), moved];
        assert_eq!(
            counter.count(Some(&publish(&now)), minute + 2_000),
            [ConnectionRow {
                port: 8000,
                minute,
                accepted: 3,
                open: 2,
                peers: 2
            }]
        );
        // Only one tick back: connections whose listener comes later are not taken as its.
        let late = [accepted([127, 0, 0, 3], 50003)];
        counter.count(Some(&publish(&late)), minute + 3_000);
        counter.count(Some(&publish(&late)), minute + 4_000);
        let rows = counter.count(
            Some(&publish(&[late[0].clone(), listener(lo, 8000, 10)])),
            minute + 5_000,
        );
        assert!(rows.is_empty(), "{rows:?}");
    }

    /// One connection of the generated machine: to `port` from 127.0.0.`peer`:`from`,
    /// established or in TIME_WAIT, under its inode's id or the orphan's `i0`.
    #[derive(Clone, Debug)]
    struct Conn {
        port: u16,
        peer: u8,
        from: u16,
        established: bool,
        orphan: bool,
    }

    /// A machine at one tick: which of the two listeners exist, and the connections (each
    /// endpoint pair once; a connection to a port exists only while its listener does).
    fn machine() -> impl Strategy<Value = (bool, bool, Vec<Conn>)> {
        let conn = (
            prop::sample::select(vec![8000u16, 9000]),
            1u8..4,
            50000u16..50004,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(port, peer, from, established, orphan)| Conn {
                port,
                peer,
                from,
                established,
                orphan,
            });
        (
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec(conn, 0..12),
        )
    }

    fn sockets(on_8000: bool, on_9000: bool, conns: &[Conn]) -> Vec<Socket> {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for (open, port) in [(on_8000, 8000), (on_9000, 9000)] {
            if open {
                out.push(listener(lo, port, u32::from(port)));
            }
        }
        for c in conns {
            let listening = if c.port == 8000 { on_8000 } else { on_9000 };
            if !listening || !seen.insert((c.port, c.peer, c.from)) {
                continue;
            }
            let mut s = accepted([127, 0, 0, c.peer], c.from);
            s.local_port = c.port;
            let inode = if c.orphan { 0 } else { u32::from(c.from) };
            s.id = format!(
                "tcp 127.0.0.1:{} 127.0.0.{}:{} i{inode}",
                c.port, c.peer, c.from
            );
            s.state = if c.established {
                SocketState::Established
            } else {
                SocketState::TimeWait
            };
            out.push(s);
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        /// Following deltas counts what a full look at every tick counts (the oracle, written
        /// apart): connections new at a tick by their endpoints, the most open at once, the
        /// peers seen; all within one minute.
        #[test]
        fn the_counter_agrees_with_a_full_count_of_every_tick(
            ticks in prop::collection::vec(machine(), 1..8)
        ) {
            let states: Vec<State> = ticks
                .iter()
                .enumerate()
                .map(|(i, (a, b, conns))| {
                    let mut s = state(&sockets(*a, *b, conns));
                    s.seq = i as u64 + 1;
                    s
                })
                .collect();

            // The oracle: each tick's server ends, by port, from the state alone.
            type Ends = HashMap<u16, Vec<(IpAddr, u16, bool)>>;
            let ends = |s: &State| -> Ends {
                let mut by_port: Ends = HashMap::new();
                for socket in s.sockets() {
                    if let Some(peer) = socket.remote_endpoint() {
                        by_port.entry(socket.local_port).or_default().push((
                            peer.ip(),
                            peer.port(),
                            socket.state == SocketState::Established,
                        ));
                    }
                }
                by_port
            };
            let mut expected: HashMap<u16, (u32, u32, HashSet<IpAddr>)> = HashMap::new();
            let mut before: Ends = HashMap::new();
            for (k, s) in states.iter().enumerate() {
                let now = ends(s);
                for (port, list) in &now {
                    let entry = expected.entry(*port).or_default();
                    let open = list.iter().filter(|(_, _, e)| *e).count() as u32;
                    entry.1 = entry.1.max(open);
                    entry.2.extend(list.iter().map(|(ip, _, _)| *ip));
                    if k > 0 {
                        let was = before.get(port).cloned().unwrap_or_default();
                        entry.0 += list
                            .iter()
                            .filter(|(ip, from, _)| !was.iter().any(|(i, f, _)| i == ip && f == from))
                            .count() as u32;
                    }
                }
                before = now;
            }

            // The counter, fed as the refresher feeds it.
            let minute = 60_000 * 1000;
            let mut counter = Counter::starting_from(&states[0]);
            let mut rows: HashMap<u16, (u32, u32, u32)> = HashMap::new();
            let mut take = |found: Vec<ConnectionRow>| {
                for r in found {
                    prop_assert_eq!(r.minute, minute);
                    rows.insert(r.port, (r.accepted, r.open, r.peers));
                }
                Ok(())
            };
            take(counter.count(None, minute + 1))?;
            for (k, pair) in states.windows(2).enumerate() {
                let published = Published {
                    delta: Some(pair[0].diff(&pair[1])),
                    state: pair[1].clone(),
                    ..Published::default()
                };
                take(counter.count(Some(&published), minute + 2 + k as i64))?;
            }
            let expected: HashMap<u16, (u32, u32, u32)> = expected
                .into_iter()
                .map(|(port, (a, o, p))| (port, (a, o, p.len() as u32)))
                .collect();
            prop_assert_eq!(rows, expected);
        }
    }

    #[test]
    fn a_reader_waits_for_the_ticks_queued_before_it_and_no_longer() {
        let progress = Arc::new(Progress::default());
        progress.queued();
        progress.queued();
        progress.written();
        let t0 = Instant::now();
        progress.wait_written(Duration::from_millis(200));
        assert!(
            t0.elapsed() >= Duration::from_millis(200),
            "one tick is still unwritten"
        );
        let writer = {
            let progress = progress.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                progress.written();
            })
        };
        let t0 = Instant::now();
        progress.wait_written(Duration::from_secs(10));
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "it came back once written"
        );
        writer.join().unwrap();
    }
}
