//! The dashboard's copy of the agents' states: rows kept by socket id, updated by `Snapshot` and
//! `Delta`, with the bookkeeping that highlights new rows and keeps closed ones briefly (as
//! TCPView does). Also the filter and sort that turn rows into what the table shows, kept as a
//! sorted index that each change updates row by row: a delta of 100 rows costs 100 index
//! updates, not a filter and a sort of every row.
//!
//! On a hub (`--peers`) the table holds several hosts, one stream each: this agent's (host
//! `None`) and each peer's (`Some(name)`, the name `?host=` takes). Each host has its own
//! sequence, processes and warnings, and a snapshot or delta of one host touches that host's
//! rows only; rows are keyed by [`row_key`], so that the same socket id on two machines makes
//! two rows, and a socket's owners are looked up among its own host's processes.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use portscope_shared::{Delta, Process, Snapshot, SnapshotMore, Socket};

/// How long a new row stays highlighted and a closed row stays visible, in milliseconds.
pub const HIGHLIGHT_MS: f64 = 3000.0;

/// Between a peer's name and a socket id in a row's key. Peer names are letters, digits, `-`,
/// `_` and `.` (the hub refuses others), all above this character, so keys of peers' rows sort
/// by host, then id.
pub const KEY_SEP: char = '\u{1f}';

/// The key of a socket's row: its id for this agent's sockets, `host` + [`KEY_SEP`] + id for a
/// peer's.
pub fn row_key(host: Option<&str>, id: &str) -> String {
    match host {
        None => id.to_owned(),
        Some(host) => format!("{host}{KEY_SEP}{id}"),
    }
}

/// One socket as the table knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Its [`row_key`].
    pub key: String,
    /// The socket, its `host` set to the host whose stream sent it (`None`: this agent).
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

/// A row's place in the shown order: its sort key (reversed when descending), then whether it
/// is a peer's and its key — this agent's rows first, then each peer's by name, each by id —
/// so that the order is total and stable.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    Up(SortKey, bool, String),
    Down(Reverse<SortKey>, bool, String),
}

impl Place {
    fn key(&self) -> &str {
        match self {
            Place::Up(_, _, key) | Place::Down(_, _, key) => key,
        }
    }
}

impl Row {
    pub fn is_new(&self, now: f64) -> bool {
        self.closed_at.is_none() && self.added_at.is_some_and(|t| now - t < HIGHLIGHT_MS)
    }
}

/// One host's stream as the table follows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostPart {
    /// `None` for this agent, a peer's name otherwise.
    pub name: Option<String>,
    /// The sequence number its rows correspond to.
    pub seq: u64,
    /// True once a snapshot of it arrived.
    pub loaded: bool,
    pub processes: HashMap<u32, Process>,
    pub warnings: Vec<String>,
    /// A large snapshot's parts received so far (see [`Table::receive_snapshot`]).
    pending: Option<Snapshot>,
}

/// Every row, and each host's processes and sequence number.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// By [`row_key`].
    pub rows: HashMap<String, Row>,
    /// The hosts heard from, this agent's first once it spoke.
    hosts: Vec<HostPart>,
    /// What this agent's rows answer to in the filter, the Host column and [`View::host`]: its
    /// name, set (by [`Table::set_local_name`]) only while the page shows more than one host, so
    /// that a lone agent's filter is what it always was.
    local_name: Option<String>,
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

/// A host's processes, or none when it has not spoken.
#[derive(Clone, Copy)]
struct Procs<'a>(Option<&'a HashMap<u32, Process>>);

impl<'a> Procs<'a> {
    fn get(self, pid: &u32) -> Option<&'a Process> {
        self.0?.get(pid)
    }
}

fn part<'a>(hosts: &'a [HostPart], host: Option<&str>) -> Option<&'a HostPart> {
    hosts.iter().find(|h| h.name.as_deref() == host)
}

fn procs<'a>(hosts: &'a [HostPart], host: Option<&str>) -> Procs<'a> {
    Procs(part(hosts, host).map(|h| &h.processes))
}

/// Marks a socket with the host whose stream sent it (the agent does; the table makes sure).
fn own(socket: &mut Socket, host: Option<&str>) {
    if socket.host.as_deref() != host {
        socket.host = host.map(str::to_owned);
    }
}

impl Table {
    /// The part of `host` (`None`: this agent), made on first use.
    fn part_mut(&mut self, host: Option<&str>) -> &mut HostPart {
        let at = match self.hosts.iter().position(|h| h.name.as_deref() == host) {
            Some(at) => at,
            None => {
                let part = HostPart {
                    name: host.map(str::to_owned),
                    ..HostPart::default()
                };
                // This agent first, then peers in the order they spoke.
                let at = if host.is_none() { 0 } else { self.hosts.len() };
                self.hosts.insert(at, part);
                at
            }
        };
        &mut self.hosts[at]
    }

    /// The state of `host`'s stream (`None`: this agent), once it spoke.
    pub fn host(&self, host: Option<&str>) -> Option<&HostPart> {
        part(&self.hosts, host)
    }

    /// Whether a snapshot of `host` arrived.
    pub fn loaded(&self, host: Option<&str>) -> bool {
        self.host(host).is_some_and(|h| h.loaded)
    }

    /// Whether a snapshot of any host arrived.
    pub fn any_loaded(&self) -> bool {
        self.hosts.iter().any(|h| h.loaded)
    }

    /// A process of `host`.
    pub fn process(&self, host: Option<&str>, pid: u32) -> Option<&Process> {
        procs(&self.hosts, host).get(&pid)
    }

    /// Every host's warnings, this agent's as they are and a peer's after its name.
    pub fn warnings(&self) -> Vec<String> {
        self.hosts
            .iter()
            .flat_map(|h| {
                h.warnings.iter().map(move |w| match &h.name {
                    None => w.clone(),
                    Some(name) => format!("{name}: {w}"),
                })
            })
            .collect()
    }

    /// The name this agent's rows answer to (see [`Table::local_name`]).
    pub fn local_name(&self) -> Option<&str> {
        self.local_name.as_deref()
    }

    /// Names this agent's rows (`None`: the page shows it alone). Re-indexes them when it
    /// changed: the name is part of their search text and sort key.
    pub fn set_local_name(&mut self, name: Option<String>) {
        if self.local_name == name {
            return;
        }
        self.local_name = name;
        let keys: Vec<String> = self
            .rows
            .values()
            .filter(|r| r.socket.host.is_none())
            .map(|r| r.key.clone())
            .collect();
        for key in keys {
            if let Some(row) = self.rows.get_mut(&key) {
                row.rev += 1;
            }
            self.index(&key);
        }
    }

    /// Forgets a peer the hub no longer follows: its rows and its stream's state.
    pub fn remove_host(&mut self, name: &str) {
        let keys: Vec<String> = self
            .rows
            .values()
            .filter(|r| r.socket.host.as_deref() == Some(name))
            .map(|r| r.key.clone())
            .collect();
        for key in keys {
            self.drop_row(&key);
        }
        self.hosts.retain(|h| h.name.as_deref() != Some(name));
    }

    /// The name of a socket's host as people see it: the peer's, or this agent's when named.
    pub fn host_name<'a>(&'a self, socket: &'a Socket) -> Option<&'a str> {
        host_name(self.local_name.as_deref(), socket)
    }

    /// Takes a `Snapshot` of `host`: applied at once, or kept until its last part when `more`
    /// says parts follow. Returns true when the state was applied.
    pub fn receive_snapshot(&mut self, host: Option<&str>, snapshot: Snapshot, now: f64) -> bool {
        if snapshot.more {
            self.part_mut(host).pending = Some(snapshot);
            false
        } else {
            self.part_mut(host).pending = None;
            self.apply_snapshot(host, snapshot, now);
            true
        }
    }

    /// Takes a `SnapshotMore` of `host`: `Ok(true)` when it completed the snapshot (now
    /// applied), `Ok(false)` when more parts follow, `OutOfStep` when it belongs to no snapshot
    /// we hold.
    pub fn receive_part(
        &mut self,
        host: Option<&str>,
        part: SnapshotMore,
        now: f64,
    ) -> Result<bool, Applied> {
        let held = self.part_mut(host);
        let Some(pending) = held.pending.as_mut().filter(|p| p.seq == part.seq) else {
            held.pending = None;
            return Err(Applied::OutOfStep);
        };
        pending.sockets.extend(part.sockets);
        pending.processes.extend(part.processes);
        if part.more {
            return Ok(false);
        }
        let mut whole = held.pending.take().expect("checked above");
        whole.more = false;
        self.apply_snapshot(host, whole, now);
        Ok(true)
    }

    /// Replaces `host`'s state (and no other host's rows). On its first snapshot nothing is
    /// highlighted; on a later one (after a reconnect) rows that appeared are new and rows that
    /// vanished are shown as closed.
    pub fn apply_snapshot(&mut self, host: Option<&str>, snapshot: Snapshot, now: f64) {
        let held = self.part_mut(host);
        let first = !held.loaded;
        let processes: HashMap<u32, Process> =
            snapshot.processes.into_iter().map(|p| (p.pid, p)).collect();
        let processes_changed = processes != held.processes;
        held.processes = processes;
        held.warnings = snapshot.warnings;
        held.seq = snapshot.seq;
        held.loaded = true;
        let mut seen = HashSet::new();
        for mut socket in snapshot.sockets {
            own(&mut socket, host);
            seen.insert(row_key(host, &socket.id));
            self.upsert(socket, if first { None } else { Some(now) });
        }
        let keys: Vec<String> = self
            .rows
            .values()
            .filter(|r| r.socket.host.as_deref() == host)
            .map(|r| r.key.clone())
            .collect();
        for key in keys {
            let row = self.rows.get_mut(&key).expect("listed above");
            let vanished = !seen.contains(&key) && row.closed_at.is_none();
            if vanished {
                row.closed_at = Some(now);
            }
            if vanished || processes_changed {
                // Owner names and users are drawn from `processes`: re-render every row.
                row.rev += 1;
                self.index(&key);
            }
        }
    }

    /// Applies a `Delta` of `host` to its rows, when it follows on from its state.
    pub fn apply_delta(&mut self, host: Option<&str>, delta: Delta, now: f64) -> Applied {
        let Some(held) = self
            .hosts
            .iter_mut()
            .find(|h| h.name.as_deref() == host)
            .filter(|h| h.loaded && h.seq == delta.from_seq)
        else {
            return Applied::OutOfStep;
        };
        let touched: HashSet<u32> = delta
            .processes_removed
            .iter()
            .copied()
            .chain(delta.processes.iter().map(|p| p.pid))
            .collect();
        for pid in delta.processes_removed {
            held.processes.remove(&pid);
        }
        for process in delta.processes {
            held.processes.insert(process.pid, process);
        }
        held.warnings = delta.warnings;
        held.seq = delta.seq;
        if !touched.is_empty() {
            // Rows show their owners' names: re-render those whose owner changed.
            let keys: Vec<String> = self
                .rows
                .values()
                .filter(|row| {
                    row.socket.host.as_deref() == host
                        && row.socket.pids.iter().any(|pid| touched.contains(pid))
                })
                .map(|row| row.key.clone())
                .collect();
            for key in keys {
                if let Some(row) = self.rows.get_mut(&key) {
                    row.rev += 1;
                }
                self.index(&key);
            }
        }
        for mut socket in delta.added {
            own(&mut socket, host);
            self.upsert(socket, Some(now));
        }
        for mut socket in delta.changed {
            own(&mut socket, host);
            self.upsert(socket, None);
        }
        for id in delta.removed {
            let key = row_key(host, &id);
            if let Some(row) = self.rows.get_mut(&key) {
                row.closed_at = Some(now);
                row.rev += 1;
                self.index(&key);
            }
        }
        Applied::Ok
    }

    fn upsert(&mut self, socket: Socket, added_at: Option<f64>) {
        let key = row_key(socket.host.as_deref(), &socket.id);
        match self.rows.get_mut(&key) {
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
                    key.clone(),
                    Row {
                        key: key.clone(),
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
        self.index(&key);
    }

    /// Removes a row and its place in the index.
    fn drop_row(&mut self, key: &str) {
        if let Some(row) = self.rows.remove(key)
            && let Some(place) = row.place
        {
            self.shown.remove(&place);
            self.shown_closed -= usize::from(row.counted_closed);
        }
    }

    /// Drops rows that were closed long enough ago. Returns true when any went.
    pub fn sweep(&mut self, now: f64) -> bool {
        let gone: Vec<String> = self
            .rows
            .values()
            .filter(|row| row.closed_at.is_some_and(|t| now - t >= HIGHLIGHT_MS))
            .map(|row| row.key.clone())
            .collect();
        for key in &gone {
            self.drop_row(key);
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
        let local = self.local_name.as_deref();
        for row in self.rows.values_mut() {
            let name = host_name(local, &row.socket);
            row.place = shows(view, &query, row, name).then(|| {
                let procs = procs(&self.hosts, row.socket.host.as_deref());
                place(procs, name, view, row)
            });
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
    pub fn shown_position(&self, key: &str) -> Option<usize> {
        let place = self.rows.get(key)?.place.as_ref()?;
        Some(self.shown.range(..place).count())
    }

    /// The shown rows from position `first` up to (not including) `last`, in display order.
    pub fn shown_rows(&self, first: usize, last: usize) -> impl Iterator<Item = &Row> {
        self.shown
            .iter()
            .skip(first)
            .take(last.saturating_sub(first))
            .filter_map(|place| self.rows.get(place.key()))
    }

    /// Puts a row (after a change to it, its owners or its host's name) where the view wants
    /// it: its search text recomputed, in the index or out of it.
    fn index(&mut self, key: &str) {
        let Table {
            rows,
            hosts,
            local_name,
            view,
            shown,
            shown_closed,
            ..
        } = self;
        let Some(row) = rows.get_mut(key) else {
            return;
        };
        if let Some(old) = row.place.take() {
            shown.remove(&old);
            *shown_closed -= usize::from(row.counted_closed);
        }
        row.counted_closed = false;
        let procs = procs(hosts, row.socket.host.as_deref());
        let name = host_name(local_name.as_deref(), &row.socket);
        row.hay = haystack(procs, name, &row.socket);
        if shows(view, &view.query.to_lowercase(), row, name) {
            let place = place(procs, name, view, row);
            shown.insert(place.clone());
            row.counted_closed = row.closed_at.is_some();
            *shown_closed += usize::from(row.counted_closed);
            row.place = Some(place);
        }
    }

    /// Names of the processes holding a socket, comma-separated.
    pub fn process_names(&self, socket: &Socket) -> String {
        process_names(procs(&self.hosts, socket.host.as_deref()), socket)
    }

    /// The owners of a socket that are stopped (SIGSTOP, Ctrl-Z).
    pub fn stopped_owners(&self, socket: &Socket) -> Vec<u32> {
        let procs = procs(&self.hosts, socket.host.as_deref());
        socket
            .pids
            .iter()
            .copied()
            .filter(|pid| procs.get(pid).is_some_and(|p| p.stopped))
            .collect()
    }

    /// User names of the processes holding a socket, or its uid when they are unknown.
    pub fn user(&self, socket: &Socket) -> String {
        user(procs(&self.hosts, socket.host.as_deref()), socket)
    }
}

/// A socket's host as people see it: the peer's name, else this agent's when it is named.
fn host_name<'a>(local: Option<&'a str>, socket: &'a Socket) -> Option<&'a str> {
    socket.host.as_deref().or(local)
}

fn process_names(procs: Procs<'_>, socket: &Socket) -> String {
    let names: Vec<&str> = socket
        .pids
        .iter()
        .filter_map(|pid| procs.get(pid).map(|p| p.name.as_str()))
        .collect();
    names.join(", ")
}

fn user(procs: Procs<'_>, socket: &Socket) -> String {
    let users: Vec<&str> = socket
        .pids
        .iter()
        .filter_map(|pid| procs.get(pid)?.user.as_deref())
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
    /// The machine: shown only while the page shows more than one host.
    Host,
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
    pub const ALL: [Column; 9] = [
        Column::Host,
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
            Column::Host => "Host",
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
            Column::Host => "host",
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
    /// Only this host's rows (its name, as [`Table::host_name`] says it); all hosts' when
    /// `None`.
    pub host: Option<String>,
    pub query: String,
    pub listening_only: bool,
    pub sort: Column,
    pub descending: bool,
}

impl Default for View {
    fn default() -> Self {
        Self {
            host: None,
            query: String::new(),
            listening_only: false,
            sort: Column::Local,
            descending: false,
        }
    }
}

/// Whether the view shows a row of the host named `host`: the host picked, the listening
/// toggle, and every whitespace-separated term of the (lowercased) query. A number matches a
/// port or pid exactly (so `80` does not match 8080), `project:NAME` an owner's project
/// exactly; other text matches any column (`hay`, the row's lowercase search text, the host's
/// name included) as a substring.
fn shows(view: &View, query: &str, row: &Row, host: Option<&str>) -> bool {
    let s = &row.socket;
    view.host.as_deref().is_none_or(|h| host == Some(h))
        && (!view.listening_only || s.is_listening())
        && query.split_whitespace().all(|term| {
            if let Ok(n) = term.parse::<u32>() {
                return u32::from(s.local_port) == n
                    || s.remote_port.map(u32::from) == Some(n)
                    || s.pids.contains(&n);
            }
            if term.starts_with(PROJECT_TERM) {
                return row.hay.split(' ').any(|word| word == term);
            }
            row.hay.contains(term)
        })
}

/// The start of a filter term that names a project exactly (`project:shop` is not
/// `project:shop-app`), the Projects view's link to a project's sockets.
pub const PROJECT_TERM: &str = "project:";

/// The filter term that matches exactly a project's sockets in the table (see
/// [`haystack`]; a space in the name, which would split the term, is written `_`).
pub fn project_term(name: &str) -> String {
    format!("{PROJECT_TERM}{}", name.to_lowercase().replace(' ', "_"))
}

/// How every view reads a filter term (lowercase): `Some(true/false)` when it is a
/// `project:NAME` term — whether one of `projects` is that project, exactly —, `None` for
/// other terms, which each view matches its own way. One filter applies to all views.
pub fn project_filter<'a>(term: &str, mut projects: impl Iterator<Item = &'a str>) -> Option<bool> {
    term.starts_with(PROJECT_TERM)
        .then(|| projects.any(|p| project_term(p) == term))
}

/// A row's place in the view's order.
fn place(procs: Procs<'_>, host: Option<&str>, view: &View, row: &Row) -> Place {
    let s = &row.socket;
    let sort = sort_key(procs, host, view.sort, s);
    let peer = s.host.is_some();
    if view.descending {
        Place::Down(Reverse(sort), peer, row.key.clone())
    } else {
        Place::Up(sort, peer, row.key.clone())
    }
}

/// The text the filter searches: every column (the host's name when it has one) and the
/// owners' projects — as `project:NAME` too, the Projects view's link to a project's sockets —
/// lowercase.
fn haystack(procs: Procs<'_>, host: Option<&str>, s: &Socket) -> String {
    let projects: Vec<String> = s
        .pids
        .iter()
        .filter_map(|pid| procs.get(pid)?.project.as_ref())
        .map(|p| format!("{PROJECT_TERM}{} {}", p.name.replace(' ', "_"), p.name))
        .collect();
    format!(
        "{} {} {} {} {} {} {} {} {} {} {}",
        host.unwrap_or_default(),
        s.proto_label(),
        s.local_endpoint(),
        s.remote_text(),
        s.state.as_str(),
        s.pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        process_names(procs, s),
        user(procs, s),
        what(s),
        s.exposure.map_or("", |e| e.as_str()),
        projects.join(" "),
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
fn sort_key(procs: Procs<'_>, host: Option<&str>, column: Column, s: &Socket) -> SortKey {
    match column {
        Column::Host => SortKey::Text(host.unwrap_or_default().to_lowercase()),
        Column::Proto => SortKey::Text(s.proto_label().to_owned()),
        Column::Local => SortKey::Endpoint(Some(s.local_port), Some(s.local_addr)),
        Column::Remote => SortKey::Endpoint(s.remote_port, s.remote_addr),
        Column::State => SortKey::Text(s.state.as_str().to_owned()),
        Column::Pid => SortKey::Pid(s.pids.first().copied()),
        Column::Process => SortKey::Text(process_names(procs, s).to_lowercase()),
        Column::What => SortKey::Text(what(s)),
        Column::User => SortKey::Text(user(procs, s)),
    }
}

#[cfg(test)]
mod tests;
