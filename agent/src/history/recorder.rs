//! The agent's history writer: each tick's listener events go to a thread of their own, which
//! writes them in one transaction — never on the scan's or the server's path. A problem (a full
//! disk, a locked, corrupt or newer file) is kept for the scan's warnings; the live view goes on.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use portscope_shared::{Event, EventKind, Socket};

use super::store::{Store, millis};
use crate::model::{Published, State};

/// Ticks queued for the writer at most; more are dropped (and said).
const QUEUE: usize = 64;
/// How often old events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

struct Tick {
    at: i64,
    events: Vec<(String, Event, Option<i64>)>,
    open: Option<Vec<(String, Event)>>,
}

/// The agent's side of the history: hands each tick to the writer thread.
#[derive(Debug)]
pub struct Recorder {
    tx: SyncSender<Tick>,
    problem: Arc<Mutex<Option<String>>>,
}

impl Recorder {
    /// Opens `path` on a thread of its own, reconciles it with `first` (what opened or closed
    /// while the agent was down), and keeps `keep` of events.
    pub fn start(path: PathBuf, keep: Duration, first: &State) -> Recorder {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let problem = Arc::new(Mutex::new(None));
        let open_now = open_listeners(first, &now_text());
        let said = problem.clone();
        std::thread::Builder::new()
            .name("history".into())
            .spawn(move || write_loop(&path, keep, open_now, &rx, &said))
            .expect("a thread for the history");
        Recorder { tx, problem }
    }

    /// Queues a published change's listener events.
    pub fn record(&self, published: &Published) {
        if published.events.is_empty() {
            return;
        }
        let tick = Tick {
            at: millis(SystemTime::now()),
            events: published
                .events
                .iter()
                .map(|(id, e)| (id.clone(), e.clone(), None))
                .collect(),
            open: Some(open_listeners(&published.state, &now_text())),
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
    keep: Duration,
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
        match store.write(tick.at, &tick.events, tick.open.as_deref()) {
            Ok(()) => say(None),
            Err(e) => say(Some(format!(
                "the port history is not being written: {e}; the live view goes on"
            ))),
        }
        if pruned.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            pruned = Some(Instant::now());
            let before =
                millis(SystemTime::now()) - i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
            if let Err(e) = store.prune(before) {
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
