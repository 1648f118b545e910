//! The live model: the current [`State`], its sequence number, and the [`Delta`] between two
//! states. The refresher task owns the writer; every WebSocket client holds a reader.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use portscope_shared::{Delta, Event, Process, Snapshot, SnapshotMore, Socket, SocketState};
use tokio::sync::watch;

/// A delta that does not apply to a state: it does not follow on from it, or contradicts it
/// (removes what is not there, adds what is). The reader asks for a fresh snapshot.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the delta does not apply: {0}")]
pub struct ApplyError(pub String);

/// Every socket and owning process at one moment, keyed by identity.
///
/// The maps are persistent (`imbl`'s B-trees): a copy shares every node with its original
/// until one of them changes, and then copies only the nodes on the changed keys' paths. A
/// state derived from another by a delta (a hub's peer, a `watch` follower) costs what the
/// delta touches, not a copy of 20 000 sockets, and [`State::diff`] of two such states skips
/// what they share.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Incremented on every change; 0 before the first scan is published.
    pub seq: u64,
    /// Each socket behind its own `Arc`: a map node holds 16 slots and a B-tree built in key
    /// order leaves half of them empty, so a slot is a pointer, not a 240-byte socket.
    pub sockets: OrdMap<String, Arc<Socket>>,
    pub processes: OrdMap<u32, Process>,
    pub warnings: Vec<String>,
}

/// The ordered, persistent map of a [`State`].
pub type OrdMap<K, V> = imbl::OrdMap<K, V>;

impl State {
    /// The state a snapshot (or its first part) describes.
    pub fn from_snapshot(snapshot: Snapshot) -> State {
        let mut state = State {
            seq: snapshot.seq,
            warnings: snapshot.warnings,
            ..State::default()
        };
        state.extend(SnapshotMore {
            seq: snapshot.seq,
            sockets: snapshot.sockets,
            processes: snapshot.processes,
            more: snapshot.more,
        });
        state
    }

    /// Adds a further part of its snapshot.
    pub fn extend(&mut self, part: SnapshotMore) {
        self.sockets.extend(
            part.sockets
                .into_iter()
                .map(|s| (s.id.clone(), Arc::new(s))),
        );
        self.processes
            .extend(part.processes.into_iter().map(|p| (p.pid, p)));
    }

    /// Every socket, in id order.
    pub fn sockets(&self) -> impl Iterator<Item = &Socket> + '_ {
        self.sockets.values().map(|s| &**s)
    }

    /// The whole state as a wire message.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            seq: self.seq,
            sockets: self.sockets().cloned().collect(),
            processes: self.processes.values().cloned().collect(),
            warnings: self.warnings.clone(),
            more: false,
        }
    }

    /// The client ends of connections to `ports` from this machine (the peer is a loopback
    /// address or the socket's own address), not held only by `server`: established, with the
    /// server's end of the same connection still open. A client in CLOSE_WAIT to a server that
    /// has gone (or closed that connection) is connected to nothing that runs.
    pub fn local_clients<'a>(
        &'a self,
        ports: &'a [u16],
        server: &'a [u32],
    ) -> impl Iterator<Item = &'a Socket> + 'a {
        // The server ends: (its local end, its peer) for connections on `ports`.
        let server_ends: HashSet<(SocketAddr, SocketAddr)> = self
            .sockets()
            .filter(|t| ports.contains(&t.local_port))
            .filter_map(|t| {
                let peer = SocketAddr::new(t.remote_addr?, t.remote_port?);
                Some((SocketAddr::new(t.local_addr, t.local_port), peer))
            })
            .collect();
        self.sockets().filter(move |s| {
            s.state == SocketState::Established
                && s.remote_port.is_some_and(|p| ports.contains(&p))
                && s.remote_addr
                    .is_some_and(|a| a.is_loopback() || a == s.local_addr)
                && (s.pids.is_empty() || s.pids.iter().any(|p| !server.contains(p)))
                && s.remote_addr.zip(s.remote_port).is_some_and(|(a, p)| {
                    server_ends.contains(&(
                        SocketAddr::new(a, p),
                        SocketAddr::new(s.local_addr, s.local_port),
                    ))
                })
        })
    }

    /// The state `delta` leads to, applied the way the protocol documents a `Delta` (written
    /// apart from `diff`, which the round-trip property tests): it applies to `from_seq` only
    /// and yields `seq`; `added` sockets were not
    /// there, `changed` ones were and now differ, `removed` ids were there; `processes` appeared
    /// or changed, `processes_removed` were there; `warnings` replace the old ones. Each id
    /// appears once.
    pub fn apply(&self, delta: &Delta) -> Result<State, ApplyError> {
        let mut new = self.clone();
        new.apply_in_place(delta)?;
        Ok(new)
    }

    /// [`State::apply`] without a copy: the state itself becomes the new one. On an error it is
    /// left part-changed, fit only to be replaced (a [`Mirror`] then drops it and asks for a
    /// whole snapshot).
    pub fn apply_in_place(&mut self, delta: &Delta) -> Result<(), ApplyError> {
        let fail = ApplyError;
        if delta.from_seq != self.seq {
            return Err(fail(format!(
                "from_seq {} on a state at {}",
                delta.from_seq, self.seq
            )));
        }
        let new = self;
        new.seq = delta.seq;
        let mut ids = HashSet::new();
        for id in &delta.removed {
            new.sockets
                .remove(id)
                .ok_or_else(|| fail(format!("removed {id}, which was not there")))?;
            if !ids.insert(id.clone()) {
                return Err(fail(format!("socket {id} twice")));
            }
        }
        for s in &delta.added {
            if new
                .sockets
                .insert(s.id.clone(), Arc::new(s.clone()))
                .is_some()
            {
                return Err(fail(format!("added {}, which was there", s.id)));
            }
            if !ids.insert(s.id.clone()) {
                return Err(fail(format!("socket {} twice", s.id)));
            }
        }
        for s in &delta.changed {
            match new.sockets.insert(s.id.clone(), Arc::new(s.clone())) {
                None => return Err(fail(format!("changed {}, which was not there", s.id))),
                Some(before) if *before == *s => {
                    return Err(fail(format!("changed {}, which is the same", s.id)));
                }
                Some(_) => {}
            }
            if !ids.insert(s.id.clone()) {
                return Err(fail(format!("socket {} twice", s.id)));
            }
        }
        let mut pids = HashSet::new();
        for &pid in &delta.processes_removed {
            new.processes
                .remove(&pid)
                .ok_or_else(|| fail(format!("removed process {pid}, which was not there")))?;
            if !pids.insert(pid) {
                return Err(fail(format!("process {pid} twice")));
            }
        }
        for p in &delta.processes {
            if new.processes.insert(p.pid, p.clone()).as_ref() == Some(p) {
                return Err(fail(format!(
                    "process {} neither appeared nor changed",
                    p.pid
                )));
            }
            if !pids.insert(p.pid) {
                return Err(fail(format!("process {} twice", p.pid)));
            }
        }
        new.warnings = delta.warnings.clone();
        Ok(())
    }

    /// What turns `self` into `new`. Empty (see [`Delta::is_empty`]) when only `seq` differs.
    pub fn diff(&self, new: &State) -> Delta {
        let (added, changed, removed) = diff_maps(&self.sockets, &new.sockets);
        let unshared = |sockets: Vec<Arc<Socket>>| -> Vec<Socket> {
            sockets.into_iter().map(Arc::unwrap_or_clone).collect()
        };
        let (added, changed) = (unshared(added), unshared(changed));
        let (p_added, p_changed, p_removed) = diff_maps(&self.processes, &new.processes);
        let mut processes = p_added;
        processes.extend(p_changed);
        Delta {
            from_seq: self.seq,
            seq: new.seq,
            added,
            changed,
            removed,
            processes,
            processes_removed: p_removed,
            warnings: new.warnings.clone(),
        }
    }
}

/// Added, changed (new value) and removed (key) entries between two ordered maps, in key
/// order; subtrees the two maps share (one derived from the other) are skipped unread.
fn diff_maps<K: Ord + Clone, V: PartialEq + Clone>(
    old: &OrdMap<K, V>,
    new: &OrdMap<K, V>,
) -> (Vec<V>, Vec<V>, Vec<K>) {
    let (mut added, mut changed, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    for item in old.diff(new) {
        match item {
            imbl::ordmap::DiffItem::Add(_, v) => added.push(v.clone()),
            imbl::ordmap::DiffItem::Update { new: (_, v), .. } => changed.push(v.clone()),
            imbl::ordmap::DiffItem::Remove(k, _) => removed.push(k.clone()),
        }
    }
    (added, changed, removed)
}

/// A published state with the delta that led to it, so that clients that are up to date do not
/// each diff again.
#[derive(Debug, Default)]
pub struct Published {
    pub state: State,
    /// The change from `state.seq - 1`; `None` for the first state.
    pub delta: Option<Delta>,
    /// The listener events of that change, each with its socket's id (see
    /// [`crate::events::events`]): what the history records and the WebSocket sends.
    pub events: Vec<(String, Event)>,
    /// The state's snapshot as the texts a client is sent, made by the first client that needs
    /// them and shared by every client sending them at the same time (on a machine of 20 000
    /// sockets, several MiB of JSON): held weakly, so that they are freed once sent rather
    /// than kept as long as the state is current.
    pub snapshot_texts: std::sync::Mutex<std::sync::Weak<Vec<String>>>,
    /// The events of the last publishes, each with the `seq` it came with and its socket's id,
    /// at most [`crate::events::RECENT_KEPT`]: a client that missed states gets the diff, which
    /// cannot show a socket that came and went in between (a listener the kernel reported
    /// opening and closing, a failure), and then those of these.
    pub recent: imbl::Vector<(u64, String, Event)>,
}

/// A state rebuilt from an agent's stream, as a client reads it: the snapshot (whole at the
/// part that says `more: false`), then each delta applied to it. A delta that does not apply
/// asks for a Resync, and deltas are ignored until its snapshot comes. `portscope watch` and a
/// hub's peers read agents through it.
#[derive(Debug, Default)]
pub struct Mirror {
    last: Option<State>,
    partial: Option<State>,
    resyncing: bool,
    /// Deltas change the state itself (no copy; [`Step::Changed`] then holds no old state).
    in_place: bool,
}

/// What one message did to a [`Mirror`].
#[derive(Debug)]
pub enum Step {
    /// The agent said who it is.
    Hello(portscope_shared::Hello),
    /// A new state is whole (see [`Mirror::state`]); the one it replaced, if any.
    Changed(Option<State>),
    /// Out of step: send a Resync.
    Resync,
    /// Nothing to do (a part of a snapshot, events, a message of a newer agent).
    Nothing,
}

impl Mirror {
    /// A mirror that applies deltas to its state itself, for a reader that needs no old state
    /// (a hub's peer: one copy of a peer's state fewer per change).
    pub fn in_place() -> Self {
        Self {
            in_place: true,
            ..Self::default()
        }
    }

    /// The latest whole state.
    pub fn state(&self) -> Option<&State> {
        self.last.as_ref()
    }

    pub fn into_state(self) -> Option<State> {
        self.last
    }

    /// The most sockets and processes it holds now (its state, or a snapshot being received).
    pub fn size(&self) -> (usize, usize) {
        let of = |s: &Option<State>| {
            s.as_ref()
                .map_or((0, 0), |s| (s.sockets.len(), s.processes.len()))
        };
        let (a, b) = (of(&self.last), of(&self.partial));
        (a.0.max(b.0), a.1.max(b.1))
    }

    pub fn feed(&mut self, message: portscope_shared::ServerMessage) -> Step {
        use portscope_shared::ServerMessage;
        let now = match message {
            ServerMessage::Hello(hello) => return Step::Hello(hello),
            ServerMessage::Snapshot(snapshot) => {
                self.resyncing = false;
                let more = snapshot.more;
                self.partial = Some(State::from_snapshot(snapshot));
                if more {
                    return Step::Nothing;
                }
                self.partial.take()
            }
            ServerMessage::SnapshotMore(part) => {
                let more = part.more;
                match self.partial.as_mut() {
                    Some(state) if state.seq == part.seq => state.extend(part),
                    _ => return Step::Nothing,
                }
                if more {
                    return Step::Nothing;
                }
                self.partial.take()
            }
            ServerMessage::Delta(_) if self.resyncing || self.partial.is_some() => {
                return Step::Nothing;
            }
            ServerMessage::Delta(delta) if self.in_place => {
                match self.last.as_mut().map(|s| s.apply_in_place(&delta)) {
                    Some(Ok(())) => return Step::Changed(None),
                    _ => {
                        self.last = None;
                        self.resyncing = true;
                        return Step::Resync;
                    }
                }
            }
            ServerMessage::Delta(delta) => match self.last.as_ref().map(|s| s.apply(&delta)) {
                Some(Ok(state)) => Some(state),
                // Out of step: ask for the whole state again, once.
                _ => {
                    self.resyncing = true;
                    return Step::Resync;
                }
            },
            _ => return Step::Nothing,
        };
        match now {
            Some(now) => Step::Changed(self.last.replace(now)),
            None => Step::Nothing,
        }
    }
}

/// The receiving end every client and the REST API read from.
pub type Watcher = watch::Receiver<Arc<Published>>;

#[cfg(test)]
mod tests {
    use crate::testing::{any_state, socket, state};
    use portscope_shared::SocketState;
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        /// Applying `a.diff(&b)` to `a` gives `b`; the delta goes from `a.seq` to `b.seq`; a
        /// state's diff with itself is empty.
        #[test]
        fn applying_a_diff_gives_the_new_state(a in any_state(), b in any_state()) {
            let delta = a.diff(&b);
            prop_assert_eq!((delta.from_seq, delta.seq), (a.seq, b.seq));
            prop_assert_eq!(a.apply(&delta), Ok(b.clone()));
            let same = a.diff(&a);
            prop_assert!(same.is_empty(), "{:?}", same);
            prop_assert_eq!((same.from_seq, same.seq), (a.seq, a.seq));
            prop_assert_eq!(a.apply(&same), Ok(a.clone()));
        }

        /// What a reader rebuilds from a snapshot is the state it was taken of.
        #[test]
        fn a_snapshot_gives_back_its_state(a in any_state()) {
            prop_assert_eq!(State::from_snapshot(a.snapshot()), a);
        }
    }

    #[test]
    fn a_mirror_follows_parts_deltas_and_resyncs() {
        use portscope_shared::{ServerMessage, SnapshotMore};
        let a = state(&[socket("a", SocketState::Listen)]);
        let mut b = state(&[
            socket("a", SocketState::Listen),
            socket("b", SocketState::Listen),
        ]);
        b.seq = 2;
        let mut a1 = a.clone();
        a1.seq = 1;
        let mut mirror = Mirror::default();
        // The snapshot in two parts: whole at the second.
        let mut first = a1.snapshot();
        let rest = first.sockets.split_off(0);
        first.more = true;
        assert!(matches!(
            mirror.feed(ServerMessage::Snapshot(first)),
            Step::Nothing
        ));
        assert!(mirror.state().is_none());
        let more = SnapshotMore {
            seq: 1,
            sockets: rest,
            processes: vec![],
            more: false,
        };
        assert!(matches!(
            mirror.feed(ServerMessage::SnapshotMore(more)),
            Step::Changed(None)
        ));
        assert_eq!(mirror.state(), Some(&a1));
        // A delta that follows on is applied; the state it replaced comes back.
        let delta = a1.diff(&b);
        match mirror.feed(ServerMessage::Delta(delta.clone())) {
            Step::Changed(Some(before)) => assert_eq!(before, a1),
            other => panic!("{other:?}"),
        }
        assert_eq!(mirror.state(), Some(&b));
        // The same delta again does not follow on: a Resync, then deltas wait for its snapshot.
        assert!(matches!(
            mirror.feed(ServerMessage::Delta(delta.clone())),
            Step::Resync
        ));
        assert!(matches!(
            mirror.feed(ServerMessage::Delta(delta)),
            Step::Nothing
        ));
        assert!(matches!(
            mirror.feed(ServerMessage::Snapshot(b.snapshot())),
            Step::Changed(Some(_))
        ));
        assert_eq!(mirror.into_state(), Some(b));
    }

    #[test]
    fn a_mirror_in_place_changes_its_state_without_a_copy() {
        use portscope_shared::ServerMessage;
        let mut a = state(&[socket("a", SocketState::Listen)]);
        a.seq = 1;
        let mut b = state(&[
            socket("a", SocketState::Listen),
            socket("b", SocketState::Listen),
        ]);
        b.seq = 2;
        let mut mirror = Mirror::in_place();
        mirror.feed(ServerMessage::Snapshot(a.snapshot()));
        let delta = a.diff(&b);
        assert!(matches!(
            mirror.feed(ServerMessage::Delta(delta.clone())),
            Step::Changed(None)
        ));
        assert_eq!(mirror.state(), Some(&b), "as State::apply would make it");
        // Out of step: the part-changed state is dropped, and a Resync asked for.
        assert!(matches!(
            mirror.feed(ServerMessage::Delta(delta)),
            Step::Resync
        ));
        assert!(mirror.state().is_none());
        mirror.feed(ServerMessage::Snapshot(b.snapshot()));
        assert_eq!(mirror.into_state(), Some(b));
    }
}
