//! The dashboard's copy of the agent's state: rows kept by socket id, updated by `Snapshot` and
//! `Delta`, with the bookkeeping that highlights new rows and keeps closed ones briefly (as
//! TCPView does). Also the filter and sort that turn rows into what the table shows.

use std::cmp::Ordering;
use std::collections::HashMap;

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
        let mut seen = std::collections::HashSet::new();
        for socket in snapshot.sockets {
            seen.insert(socket.id.clone());
            self.upsert(socket, if first { None } else { Some(now) });
        }
        for row in self.rows.values_mut() {
            if !seen.contains(&row.socket.id) && row.closed_at.is_none() {
                row.closed_at = Some(now);
                row.rev += 1;
            }
        }
        let processes: HashMap<u32, Process> =
            snapshot.processes.into_iter().map(|p| (p.pid, p)).collect();
        if processes != self.processes {
            // Owner names and users are drawn from `processes`: re-render every row.
            self.rows.values_mut().for_each(|row| row.rev += 1);
            self.processes = processes;
        }
        self.warnings = snapshot.warnings;
        self.seq = snapshot.seq;
        self.loaded = true;
    }

    pub fn apply_delta(&mut self, delta: Delta, now: f64) -> Applied {
        if !self.loaded || delta.from_seq != self.seq {
            return Applied::OutOfStep;
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
            }
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
            for row in self.rows.values_mut() {
                if row.socket.pids.iter().any(|pid| touched.contains(pid)) {
                    row.rev += 1;
                }
            }
        }
        self.warnings = delta.warnings;
        self.seq = delta.seq;
        Applied::Ok
    }

    fn upsert(&mut self, socket: Socket, added_at: Option<f64>) {
        match self.rows.get_mut(&socket.id) {
            Some(row) => {
                if row.socket != socket || row.closed_at.is_some() {
                    row.socket = socket;
                    row.closed_at = None;
                    row.rev += 1;
                }
            }
            None => {
                self.rows.insert(
                    socket.id.clone(),
                    Row {
                        socket,
                        added_at,
                        closed_at: None,
                        rev: 0,
                    },
                );
            }
        }
    }

    /// Drops rows that were closed long enough ago. Returns true when any went.
    pub fn sweep(&mut self, now: f64) -> bool {
        let before = self.rows.len();
        self.rows
            .retain(|_, row| row.closed_at.is_none_or(|t| now - t < HIGHLIGHT_MS));
        self.rows.len() != before
    }

    /// Names of the processes holding a socket, comma-separated.
    pub fn process_names(&self, socket: &Socket) -> String {
        let names: Vec<&str> = socket
            .pids
            .iter()
            .filter_map(|pid| self.processes.get(pid).map(|p| p.name.as_str()))
            .collect();
        names.join(", ")
    }

    /// User names of the processes holding a socket, or its uid when they are unknown.
    pub fn user(&self, socket: &Socket) -> String {
        let users: Vec<&str> = socket
            .pids
            .iter()
            .filter_map(|pid| self.processes.get(pid)?.user.as_deref())
            .collect();
        match (users.first(), socket.uid) {
            (Some(user), _) => (*user).to_owned(),
            (None, Some(uid)) => format!("uid {uid}"),
            (None, None) => String::new(),
        }
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

/// Does the row match every whitespace-separated term of the query? A number matches a port
/// or pid exactly (so `80` does not match 8080); other text matches any column as a substring,
/// case-insensitively.
pub fn matches(table: &Table, s: &Socket, query: &str) -> bool {
    let mut haystack: Option<String> = None;
    query.split_whitespace().all(|term| {
        if let Ok(n) = term.parse::<u32>() {
            return u32::from(s.local_port) == n
                || s.remote_port.map(u32::from) == Some(n)
                || s.pids.contains(&n);
        }
        let hay = haystack.get_or_insert_with(|| {
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
                table.process_names(s),
                table.user(s),
                what(s),
                s.exposure.map_or("", |e| e.as_str()),
            )
            .to_lowercase()
        });
        hay.contains(&term.to_lowercase())
    })
}

/// What serves a socket: the guessed program for listeners, else the port's IANA name.
pub fn what(s: &Socket) -> String {
    s.app
        .clone()
        .or_else(|| s.service.clone())
        .unwrap_or_default()
}

/// The rows to show, filtered and sorted (ties broken by id, so the order is stable).
pub fn visible<'a>(table: &'a Table, view: &View) -> Vec<&'a Row> {
    let rows: Vec<&Row> = table
        .rows
        .values()
        .filter(|r| !view.listening_only || r.socket.is_listening())
        .filter(|r| matches(table, &r.socket, &view.query))
        .collect();
    // Text columns are computed once per row, not once per comparison.
    let text = |r: &Row| match view.sort {
        Column::Process => table.process_names(&r.socket).to_lowercase(),
        Column::What => what(&r.socket),
        Column::User => table.user(&r.socket),
        _ => String::new(),
    };
    let mut keyed: Vec<(String, &Row)> = rows.into_iter().map(|r| (text(r), r)).collect();
    keyed.sort_by(|(ka, a), (kb, b)| {
        let ord = ka
            .cmp(kb)
            .then_with(|| compare(view.sort, &a.socket, &b.socket));
        let ord = if view.descending { ord.reverse() } else { ord };
        ord.then_with(|| a.socket.id.cmp(&b.socket.id))
    });
    keyed.into_iter().map(|(_, r)| r).collect()
}

/// Order by the columns that need no text key (those compare equal here).
fn compare(column: Column, a: &Socket, b: &Socket) -> Ordering {
    match column {
        Column::Proto => a.proto_label().cmp(b.proto_label()),
        Column::Local => (a.local_port, a.local_addr).cmp(&(b.local_port, b.local_addr)),
        Column::Remote => (a.remote_port, a.remote_addr).cmp(&(b.remote_port, b.remote_addr)),
        Column::State => a.state.as_str().cmp(b.state.as_str()),
        Column::Pid => a.pids.first().cmp(&b.pids.first()),
        Column::Process | Column::What | Column::User => Ordering::Equal,
    }
}
