//! The live model: owns the machine's latest [`State`] and publishes each change with its
//! delta and the listener events derived from it ([`crate::events`]). Every client, the
//! history and the REST API read what it publishes through a [`Watcher`].

use std::sync::Arc;

use portscope_shared::{Event, Process, Socket};
use tokio::sync::watch;

use crate::model::{Published, State, Watcher};

/// Owns the model and publishes each changed state.
#[derive(Debug)]
pub struct Model {
    tx: watch::Sender<Arc<Published>>,
    /// Whether a process that no longer owns a socket still runs (for `exited` events).
    alive: fn(&Process) -> bool,
    /// Owners that closed their listeners and ran on, until they exit.
    lingering: std::sync::Mutex<crate::events::Lingering>,
}

impl Model {
    /// A model of this machine whose first state is `first` (with `seq` 1).
    pub fn new(first: State) -> Self {
        Self::with(first, crate::events::process_runs)
    }

    /// A model of another machine's states (a hub's peer): its processes cannot be asked
    /// after, so none is said to have exited.
    pub fn remote(first: State) -> Self {
        Self::with(first, |_| true)
    }

    fn with(mut first: State, alive: fn(&Process) -> bool) -> Self {
        first.seq = 1;
        let (tx, _) = watch::channel(Arc::new(Published {
            state: first,
            delta: None,
            events: Vec::new(),
            snapshot_texts: Default::default(),
            recent: Default::default(),
        }));
        Self {
            tx,
            alive,
            lingering: std::sync::Mutex::default(),
        }
    }

    /// How this model tells whether a process still runs.
    pub fn alive(&self) -> fn(&Process) -> bool {
        self.alive
    }

    /// The state last published.
    pub fn current(&self) -> Arc<Published> {
        self.tx.borrow().clone()
    }

    pub fn watch(&self) -> Watcher {
        self.tx.subscribe()
    }

    /// Replaces the state with a fresh scan. Publishes (and wakes clients) only when something
    /// changed; returns what it published.
    /// An owner that closed its listeners earlier and has exited now is a change too (its
    /// `exited` events, with an empty delta when nothing else changed).
    pub fn update(&self, scan: State) -> Option<Arc<Published>> {
        self.update_with(scan, Vec::new())
    }

    /// [`Model::update`] with events the diff cannot show, told with the change (kernel
    /// events: a listener that opened and closed between two scans).
    pub fn update_with(
        &self,
        mut scan: State,
        extra: Vec<(String, Event)>,
    ) -> Option<Arc<Published>> {
        let current = self.current();
        scan.seq = current.state.seq + 1;
        let delta = current.state.diff(&scan);
        let quiet = delta.is_empty() && current.state.warnings == scan.warnings && extra.is_empty();
        let mut lingering = self
            .lingering
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if quiet && lingering.is_empty() {
            return None;
        }
        let at = std::time::SystemTime::now();
        let mut events = if quiet {
            Vec::new()
        } else {
            lingering.see(&current.state, &scan, &delta);
            let mut events = crate::events::events_of(
                &current.state,
                &scan,
                &delta,
                at,
                Socket::is_listening,
                self.alive,
            );
            lingering.name_closers(&mut events);
            events
        };
        let late = lingering.after(
            &current.state,
            &scan,
            &events,
            &crate::events::time_text(at),
            self.alive,
            std::time::Instant::now(),
        );
        drop(lingering);
        if quiet && late.is_empty() {
            return None;
        }
        events.extend(extra);
        events.extend(late);
        let recent = crate::events::keep_recent(&current.recent, scan.seq, &events);
        let published = Arc::new(Published {
            state: scan,
            delta: Some(delta),
            events,
            snapshot_texts: Default::default(),
            recent,
        });
        self.tx.send_replace(published.clone());
        Some(published)
    }
}

impl Model {
    /// Publishes events that change no socket (a failed bind, a refused connect): the same
    /// state under the next `seq`, an empty delta, and these events.
    pub fn publish_events(&self, events: Vec<(String, Event)>) -> Option<Arc<Published>> {
        if events.is_empty() {
            return None;
        }
        let current = self.current();
        let mut state = current.state.clone();
        state.seq += 1;
        let delta = current.state.diff(&state);
        let recent = crate::events::keep_recent(&current.recent, state.seq, &events);
        let published = Arc::new(Published {
            state,
            delta: Some(delta),
            events,
            snapshot_texts: Default::default(),
            recent,
        });
        self.tx.send_replace(published.clone());
        Some(published)
    }
}

#[cfg(test)]
mod tests {
    use portscope_shared::SocketState;

    use super::*;
    use crate::testing::{socket, state};

    #[test]
    fn unchanged_scans_publish_nothing() {
        let model = Model::new(state(&[socket("a", SocketState::Listen)]));
        let mut watcher = model.watch();
        watcher.mark_unchanged();
        assert!(
            model
                .update(state(&[socket("a", SocketState::Listen)]))
                .is_none()
        );
        assert!(!watcher.has_changed().unwrap());
        let published = model.update(state(&[])).expect("a removal is a change");
        let delta = published.delta.as_ref().unwrap();
        assert_eq!((delta.from_seq, delta.seq), (1, 2));
        // The listener's closing is its event.
        let kinds: Vec<_> = published
            .events
            .iter()
            .map(|(id, e)| (id.as_str(), e.kind))
            .collect();
        assert_eq!(kinds, [("a", portscope_shared::EventKind::Closed)]);
        assert!(watcher.has_changed().unwrap());
    }

    /// A client that missed states gets the diff, which cannot show a listener that came and
    /// went in between; the published state keeps its events for it.
    #[test]
    fn a_client_that_missed_states_still_gets_what_came_and_went() {
        let model = Model::new(state(&[socket("a", SocketState::Listen)]));
        let sent = model.current();
        model.update(state(&[
            socket("a", SocketState::Listen),
            socket("b", SocketState::Listen),
        ]));
        let now = model
            .update(state(&[socket("a", SocketState::Listen)]))
            .expect("b closed");
        assert!(
            sent.state.diff(&now.state).is_empty(),
            "the diff shows nothing"
        );
        let missed = crate::events::missed_between(&sent.state, &now.state, &now.recent);
        let kinds: Vec<_> = missed.iter().map(|(id, e)| (id.as_str(), e.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("b", portscope_shared::EventKind::Opened),
                ("b", portscope_shared::EventKind::Closed)
            ]
        );
        // One up to date has nothing to catch up on.
        assert!(crate::events::missed_between(&now.state, &now.state, &now.recent).is_empty());
    }

    /// What a hub does with each change of a peer: the mirror's state goes to the model as a
    /// copy that shares its maps (no socket is copied), and the mirror's next change leaves the
    /// published state as it was.
    #[test]
    fn a_state_published_from_a_mirror_shares_its_maps() {
        let mut mirror = state(&[socket("a", SocketState::Listen)]);
        let model = Model::remote(mirror.clone());
        mirror.seq = 1;
        let b = Arc::new(socket("b", SocketState::Listen));
        mirror.sockets.insert("b".into(), b);
        let published = model.update(mirror.clone()).expect("a socket more");
        assert!(published.state.sockets.ptr_eq(&mirror.sockets));
        assert!(published.state.processes.ptr_eq(&mirror.processes));
        mirror.sockets.remove("a");
        assert_eq!(
            published.state.sockets.len(),
            2,
            "the published state is its own"
        );
        assert!(!published.state.sockets.ptr_eq(&mirror.sockets));
    }
}
