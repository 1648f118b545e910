//! The dashboard's copy of the agent's state: rows kept by socket id, updated by `Snapshot` and
//! `Delta`, with the bookkeeping that highlights new rows and keeps closed ones briefly (as
//! TCPView does). Also the filter and sort that turn rows into what the table shows, kept as a
//! sorted index that each change updates row by row: a delta of 100 rows costs 100 index
//! updates, not a filter and a sort of every row.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use portscope_shared::{Delta, Process, Snapshot, SnapshotMore, Socket};

/// How long a new row stays highlighted and a closed row stays visible, in milliseconds.
pub const HIGHLIGHT_MS: f64 = 3000.0;

/// One socket as the table knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub socket: Socket,
    /// When it appeared (ms since epoch); `None` for rows present in the first snapshot.
    pub added_at: Option<f64>,
    /// When it disappeared; the row is removed `HIGHLIGHT_MS` later.
    pub closed_at: Option<f64>,
    /// Incremented on every change, so the view re-renders just this row.
    pub rev: u64,
    /// What the filter searches, lowercase (columns joined by spaces).
    hay: String,
    /// Where the row stands in [`Table::shown`], when the filter shows it.
    place: Option<Place>,
    /// Whether it was closed when placed (counted in [`Table::shown_closed`]).
    counted_closed: bool,
}

/// The value a row is sorted by (all rows of one index use the same variant).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SortKey {
    Text(String),
    Endpoint(Option<u16>, Option<IpAddr>),
    Pid(Option<u32>),
}

/// A row's place in the shown order: its sort key (reversed when descending), then its id, so
/// that the order is total and stable.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    Up(SortKey, String),
    Down(Reverse<SortKey>, String),
}

impl Place {
    fn id(&self) -> &str {
        match self {
            Place::Up(_, id) | Place::Down(_, id) => id,
        }
    }
}

impl Row {
    pub fn is_new(&self, now: f64) -> bool {
        self.closed_at.is_none() && self.added_at.is_some_and(|t| now - t < HIGHLIGHT_MS)
    }
}

/// Every row and process, and the sequence number they correspond to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub seq: u64,
    pub rows: HashMap<String, Row>,
    pub processes: HashMap<u32, Process>,
    pub warnings: Vec<String>,
    /// True once a snapshot arrived.
    pub loaded: bool,
    /// A large snapshot's parts received so far (see [`Table::receive_snapshot`]).
    pending: Option<Snapshot>,
    /// The filter and sort the index follows (see [`Table::set_view`]).
    view: View,
    /// The rows the filter shows, in display order.
    shown: BTreeSet<Place>,
    /// How many of them are closed rows lingering.
    shown_closed: usize,
}

/// What applying a `Delta` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    Ok,
    /// The delta does not follow on from our state: ask for a fresh snapshot.
    OutOfStep,
}

impl Table {
    /// Takes a `Snapshot`: applied at once, or kept until its last part when `more` says parts
    /// follow. Returns true when the state was applied.
    pub fn receive_snapshot(&mut self, snapshot: Snapshot, now: f64) -> bool {
        if snapshot.more {
            self.pending = Some(snapshot);
            false
        } else {
            self.pending = None;
            self.apply_snapshot(snapshot, now);
            true
        }
    }

    /// Takes a `SnapshotMore`: `Ok(true)` when it completed the snapshot (now applied),
    /// `Ok(false)` when more parts follow, `OutOfStep` when it belongs to no snapshot we hold.
    pub fn receive_part(&mut self, part: SnapshotMore, now: f64) -> Result<bool, Applied> {
        let Some(pending) = self.pending.as_mut().filter(|p| p.seq == part.seq) else {
            self.pending = None;
            return Err(Applied::OutOfStep);
        };
        pending.sockets.extend(part.sockets);
        pending.processes.extend(part.processes);
        if part.more {
            return Ok(false);
        }
        let mut whole = self.pending.take().expect("checked above");
        whole.more = false;
        self.apply_snapshot(whole, now);
        Ok(true)
    }

    /// Replaces the state. On the first snapshot nothing is highlighted; on a later one (after a
    /// reconnect) rows that appeared are new and rows that vanished are shown as closed.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot, now: f64) {
        let first = !self.loaded;
        let processes: HashMap<u32, Process> =
            snapshot.processes.into_iter().map(|p| (p.pid, p)).collect();
        let processes_changed = processes != self.processes;
        self.processes = processes;
        let mut seen = std::collections::HashSet::new();
        for socket in snapshot.sockets {
            seen.insert(socket.id.clone());
            self.upsert(socket, if first { None } else { Some(now) });
        }
        let ids: Vec<String> = self.rows.keys().cloned().collect();
        for id in ids {
            let row = self.rows.get_mut(&id).expect("listed above");
            let vanished = !seen.contains(&id) && row.closed_at.is_none();
            if vanished {
                row.closed_at = Some(now);
            }
            if vanished || processes_changed {
                // Owner names and users are drawn from `processes`: re-render every row.
                row.rev += 1;
                self.index(&id);
            }
        }
        self.warnings = snapshot.warnings;
        self.seq = snapshot.seq;
        self.loaded = true;
    }

    pub fn apply_delta(&mut self, delta: Delta, now: f64) -> Applied {
        if !self.loaded || delta.from_seq != self.seq {
            return Applied::OutOfStep;
        }
        let touched: std::collections::HashSet<u32> = delta
            .processes_removed
            .iter()
            .copied()
            .chain(delta.processes.iter().map(|p| p.pid))
            .collect();
        for pid in delta.processes_removed {
            self.processes.remove(&pid);
        }
        for process in delta.processes {
            self.processes.insert(process.pid, process);
        }
        if !touched.is_empty() {
            // Rows show their owners' names: re-render those whose owner changed.
            let ids: Vec<String> = self
                .rows
                .values()
                .filter(|row| row.socket.pids.iter().any(|pid| touched.contains(pid)))
                .map(|row| row.socket.id.clone())
                .collect();
            for id in ids {
                if let Some(row) = self.rows.get_mut(&id) {
                    row.rev += 1;
                }
                self.index(&id);
            }
        }
        for socket in delta.added {
            self.upsert(socket, Some(now));
        }
        for socket in delta.changed {
            self.upsert(socket, None);
        }
        for id in delta.removed {
            if let Some(row) = self.rows.get_mut(&id) {
                row.closed_at = Some(now);
                row.rev += 1;
                self.index(&id);
            }
        }
        self.warnings = delta.warnings;
        self.seq = delta.seq;
        Applied::Ok
    }

    fn upsert(&mut self, socket: Socket, added_at: Option<f64>) {
        let id = socket.id.clone();
        match self.rows.get_mut(&id) {
            Some(row) => {
                if row.socket == socket && row.closed_at.is_none() {
                    return;
                }
                row.socket = socket;
                row.closed_at = None;
                row.rev += 1;
            }
            None => {
                self.rows.insert(
                    id.clone(),
                    Row {
                        socket,
                        added_at,
                        closed_at: None,
                        rev: 0,
                        hay: String::new(),
                        place: None,
                        counted_closed: false,
                    },
                );
            }
        }
        self.index(&id);
    }

    /// Drops rows that were closed long enough ago. Returns true when any went.
    pub fn sweep(&mut self, now: f64) -> bool {
        let gone: Vec<String> = self
            .rows
            .values()
            .filter(|row| row.closed_at.is_some_and(|t| now - t >= HIGHLIGHT_MS))
            .map(|row| row.socket.id.clone())
            .collect();
        for id in &gone {
            if let Some(row) = self.rows.remove(id)
                && let Some(place) = row.place
            {
                self.shown.remove(&place);
                self.shown_closed -= usize::from(row.counted_closed);
            }
        }
        !gone.is_empty()
    }

    /// Follows a new filter and sort: rebuilds the index when they changed.
    pub fn set_view(&mut self, view: &View) {
        if *view == self.view {
            return;
        }
        self.view = view.clone();
        // Every row's search text is current: only places change. Collecting into a set sorts
        // once and builds it in bulk, which beats 20 000 inserts.
        let query = view.query.to_lowercase();
        let mut closed = 0;
        let mut places = Vec::with_capacity(self.rows.len());
        for row in self.rows.values_mut() {
            row.place = shows(view, &query, row).then(|| place(&self.processes, view, &row.socket));
            row.counted_closed = row.place.is_some() && row.closed_at.is_some();
            closed += usize::from(row.counted_closed);
            places.extend(row.place.clone());
        }
        self.shown = places.into_iter().collect();
        self.shown_closed = closed;
    }

    /// How many rows the filter shows, and how many of those are open.
    pub fn shown_counts(&self) -> (usize, usize) {
        (self.shown.len(), self.shown.len() - self.shown_closed)
    }

    /// Where a row stands among the shown rows (`None` when the filter hides it or it is gone):
    /// what keyboard moves between rows start from. Counts the rows before it, so O(shown).
    pub fn shown_position(&self, id: &str) -> Option<usize> {
        let place = self.rows.get(id)?.place.as_ref()?;
        Some(self.shown.range(..place).count())
    }

    /// The shown rows from position `first` up to (not including) `last`, in display order.
    pub fn shown_rows(&self, first: usize, last: usize) -> impl Iterator<Item = &Row> {
        self.shown
            .iter()
            .skip(first)
            .take(last.saturating_sub(first))
            .filter_map(|place| self.rows.get(place.id()))
    }

    /// Puts a row (after a change to it or its owners) where the view wants it: its search text
    /// recomputed, in the index or out of it.
    fn index(&mut self, id: &str) {
        let Table {
            rows,
            processes,
            view,
            shown,
            shown_closed,
            ..
        } = self;
        let Some(row) = rows.get_mut(id) else {
            return;
        };
        if let Some(old) = row.place.take() {
            shown.remove(&old);
            *shown_closed -= usize::from(row.counted_closed);
        }
        row.counted_closed = false;
        row.hay = haystack(processes, &row.socket);
        if shows(view, &view.query.to_lowercase(), row) {
            let place = place(processes, view, &row.socket);
            shown.insert(place.clone());
            row.counted_closed = row.closed_at.is_some();
            *shown_closed += usize::from(row.counted_closed);
            row.place = Some(place);
        }
    }

    /// Names of the processes holding a socket, comma-separated.
    pub fn process_names(&self, socket: &Socket) -> String {
        process_names(&self.processes, socket)
    }

    /// The owners of a socket that are stopped (SIGSTOP, Ctrl-Z).
    pub fn stopped_owners(&self, socket: &Socket) -> Vec<u32> {
        socket
            .pids
            .iter()
            .copied()
            .filter(|pid| self.processes.get(pid).is_some_and(|p| p.stopped))
            .collect()
    }

    /// User names of the processes holding a socket, or its uid when they are unknown.
    pub fn user(&self, socket: &Socket) -> String {
        user(&self.processes, socket)
    }
}

fn process_names(processes: &HashMap<u32, Process>, socket: &Socket) -> String {
    let names: Vec<&str> = socket
        .pids
        .iter()
        .filter_map(|pid| processes.get(pid).map(|p| p.name.as_str()))
        .collect();
    names.join(", ")
}

fn user(processes: &HashMap<u32, Process>, socket: &Socket) -> String {
    let users: Vec<&str> = socket
        .pids
        .iter()
        .filter_map(|pid| processes.get(pid)?.user.as_deref())
        .collect();
    match (users.first(), socket.uid) {
        (Some(user), _) => (*user).to_owned(),
        (None, Some(uid)) => format!("uid {uid}"),
        (None, None) => String::new(),
    }
}

/// The table's columns, in display order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    Proto,
    Local,
    Remote,
    State,
    Pid,
    Process,
    What,
    User,
}

impl Column {
    pub const ALL: [Column; 8] = [
        Column::Proto,
        Column::Local,
        Column::Remote,
        Column::State,
        Column::Pid,
        Column::Process,
        Column::What,
        Column::User,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Column::Proto => "Proto",
            Column::Local => "Local address",
            Column::Remote => "Remote address",
            Column::State => "State",
            Column::Pid => "PID",
            Column::Process => "Process",
            Column::What => "What",
            Column::User => "User",
        }
    }

    /// Name in the URL (`?sort=`).
    pub fn key(self) -> &'static str {
        match self {
            Column::Proto => "proto",
            Column::Local => "local",
            Column::Remote => "remote",
            Column::State => "state",
            Column::Pid => "pid",
            Column::Process => "process",
            Column::What => "what",
            Column::User => "user",
        }
    }

    pub fn from_key(key: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.key() == key)
    }
}

/// How the table is filtered and sorted; mirrored in the URL so a view can be shared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    pub query: String,
    pub listening_only: bool,
    pub sort: Column,
    pub descending: bool,
}

impl Default for View {
    fn default() -> Self {
        Self {
            query: String::new(),
            listening_only: false,
            sort: Column::Local,
            descending: false,
        }
    }
}

/// Whether the view shows a row: the listening toggle, and every whitespace-separated term of
/// the (lowercased) query. A number matches a port or pid exactly (so `80` does not match
/// 8080); other text matches any column (`hay`, the row's lowercase search text) as a
/// substring.
fn shows(view: &View, query: &str, row: &Row) -> bool {
    let s = &row.socket;
    (!view.listening_only || s.is_listening())
        && query.split_whitespace().all(|term| {
            if let Ok(n) = term.parse::<u32>() {
                return u32::from(s.local_port) == n
                    || s.remote_port.map(u32::from) == Some(n)
                    || s.pids.contains(&n);
            }
            row.hay.contains(term)
        })
}

/// A row's place in the view's order.
fn place(processes: &HashMap<u32, Process>, view: &View, s: &Socket) -> Place {
    let key = sort_key(processes, view.sort, s);
    let id = s.id.clone();
    if view.descending {
        Place::Down(Reverse(key), id)
    } else {
        Place::Up(key, id)
    }
}

/// The text the filter searches: every column, lowercase.
fn haystack(processes: &HashMap<u32, Process>, s: &Socket) -> String {
    format!(
        "{} {} {} {} {} {} {} {} {}",
        s.proto_label(),
        s.local_endpoint(),
        s.remote_text(),
        s.state.as_str(),
        s.pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        process_names(processes, s),
        user(processes, s),
        what(s),
        s.exposure.map_or("", |e| e.as_str()),
    )
    .to_lowercase()
}

/// What serves a socket: the guessed program for listeners, else the port's IANA name.
pub fn what(s: &Socket) -> String {
    s.app
        .clone()
        .or_else(|| s.service.clone())
        .unwrap_or_default()
}

/// The value a row is sorted by in `column`.
fn sort_key(processes: &HashMap<u32, Process>, column: Column, s: &Socket) -> SortKey {
    match column {
        Column::Proto => SortKey::Text(s.proto_label().to_owned()),
        Column::Local => SortKey::Endpoint(Some(s.local_port), Some(s.local_addr)),
        Column::Remote => SortKey::Endpoint(s.remote_port, s.remote_addr),
        Column::State => SortKey::Text(s.state.as_str().to_owned()),
        Column::Pid => SortKey::Pid(s.pids.first().copied()),
        Column::Process => SortKey::Text(process_names(processes, s).to_lowercase()),
        Column::What => SortKey::Text(what(s)),
        Column::User => SortKey::Text(user(processes, s)),
    }
}

#[cfg(test)]
mod tests;
