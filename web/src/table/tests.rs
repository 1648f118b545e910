//! Model-based tests of [`Table`]: after any sequence of snapshots (whole or in parts), deltas
//! (in step or not), sweeps, waits and view changes, on this agent's stream and on peers'
//! (a hub's), with local names given and taken and peers forgotten, the rows it holds, its
//! sorted index (each row's position in it included) and its counters equal what a naive model
//! says. The model keeps its own rows (by host and id) and each host's processes and sequence,
//! and filters and sorts all of them from scratch on every check, with its own reading of each
//! column: it shares no code with the index (only `portscope_shared`'s readings of a socket,
//! which the CLI uses too, and [`row_key`] to name a row when asking for its position).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use portscope_shared::{
    Delta, Exposure, Family, OwnerStatus, Process, Proto, Snapshot, SnapshotMore, Socket,
    SocketState,
};
use proptest::prelude::*;
use proptest::sample::Index;

use super::{Applied, Column, HIGHLIGHT_MS, Table, View, row_key};

const ADDRS: [&str; 5] = ["127.0.0.1", "0.0.0.0", "::1", "::", "192.168.1.20"];
const PORTS: [u16; 5] = [22, 80, 5173, 8080, 40000];
const STATES: [SocketState; 5] = [
    SocketState::Listen,
    SocketState::Established,
    SocketState::TimeWait,
    SocketState::CloseWait,
    SocketState::Unconn,
];
const NAMES: [&str; 5] = ["nginx", "Node", "python3", "redis-server", "sshd"];
const USERS: [Option<&str>; 3] = [None, Some("root"), Some("ana")];
/// Projects of the processes (none, or one of two, one with capitals).
const PROJECTS: [Option<&str>; 4] = [None, Some("shop"), Some("Web-App"), Some("shop app")];
/// Filter terms: numbers (exact port or pid), text that some columns contain, mixed case, and
/// text no column contains.
const TERMS: [&str; 24] = [
    "80",
    "8080",
    "5",
    "3",
    "tcp",
    "TCP6",
    "node",
    "listen",
    "127.0",
    "::1",
    "uid",
    "Py",
    "ana",
    "vite",
    "loopback",
    "x",
    "build",
    "Box",
    "laptop",
    "b",
    "project:web-app",
    "shop",
    "project:sho",
    "project:shop_app",
];
/// The streams: this agent's, and two peers' (one name a prefix of the other's, for the order).
const HOSTS: [Option<&str>; 3] = [None, Some("build-box"), Some("build")];
/// Names this agent's rows may be given (a hub's own host name); never a peer's (the hub
/// refuses a peer named like itself).
const LOCAL_NAMES: [&str; 2] = ["laptop", "Box"];
/// Hosts a view may pick: every name above, and one nobody has.
const PICKS: [&str; 5] = ["laptop", "Box", "build-box", "build", "gone"];

fn addr(i: usize) -> IpAddr {
    ADDRS[i].parse().expect("valid address")
}

prop_compose! {
    fn socket()(
        id in 0..10usize,
        udp in any::<bool>(),
        local in 0..ADDRS.len(),
        port in 0..PORTS.len(),
        remote in proptest::option::of((0..ADDRS.len(), 0..PORTS.len())),
        state in 0..STATES.len(),
        pids in proptest::collection::btree_set(1..=6u32, 0..3),
        hidden in any::<bool>(),
        uid in proptest::option::of(0..3u32),
        app in proptest::option::of(Just("Vite dev server".to_owned())),
        service in proptest::option::of(prop_oneof![Just("http".to_owned()), Just("http-alt".to_owned())]),
    ) -> Socket {
        let local_addr = addr(local);
        let pids: Vec<u32> = pids.into_iter().collect();
        let owner = match (pids.is_empty(), hidden) {
            (false, _) => OwnerStatus::Known,
            (true, true) => OwnerStatus::Hidden,
            (true, false) => OwnerStatus::None,
        };
        let state = if udp { SocketState::Unconn } else { STATES[state] };
        Socket {
            // The table treats ids as opaque: the same id with other fields is a changed socket.
            id: format!("s{id}"),
            proto: if udp { Proto::Udp } else { Proto::Tcp },
            family: if local_addr.is_ipv4() { Family::Ipv4 } else { Family::Ipv6 },
            local_addr,
            local_port: PORTS[port],
            remote_addr: remote.map(|(a, _)| addr(a)),
            remote_port: remote.map(|(_, p)| PORTS[p]),
            state,
            pids,
            uid,
            owner,
            exposure: remote.is_none().then(|| Exposure::of(local_addr)),
            service,
            app,
            risk: None,
            http: false,
            host: None,
            health: None,
        }
    }
}

prop_compose! {
    fn process()(
        pid in 1..=5u32,
        name in 0..NAMES.len(),
        user in 0..USERS.len(),
        project in 0..PROJECTS.len(),
    ) -> Process {
        Process {
            pid,
            ppid: None,
            name: NAMES[name].to_owned(),
            exe: None,
            cmdline: Vec::new(),
            user: USERS[user].map(str::to_owned),
            uid: Some(1000),
            start_time: None,
            start_ms: None,
            stopped: false,
            cwd: None,
            host: None,
            project: PROJECTS[project].map(|name| portscope_shared::Project {
                name: name.to_owned(),
                root: format!("/home/ana/{name}"),
                source: portscope_shared::ProjectSource::Git,
            }),
        }
    }
}

prop_compose! {
    fn view()(
        host in proptest::option::weighted(0.3, 0..PICKS.len()),
        terms in proptest::collection::vec(0..TERMS.len(), 0..3),
        listening_only in any::<bool>(),
        sort in 0..Column::ALL.len(),
        descending in any::<bool>(),
    ) -> View {
        View {
            host: host.map(|h| PICKS[h].to_owned()),
            query: terms.iter().map(|&t| TERMS[t]).collect::<Vec<_>>().join(" "),
            listening_only,
            sort: Column::ALL[sort],
            descending,
        }
    }
}

/// One event the table sees. Deltas are drawn as candidates and resolved against the model's
/// open rows when applied, so that they are deltas the agent could send. `host` indexes
/// [`HOSTS`]: the stream it comes on.
#[derive(Clone, Debug)]
enum Op {
    /// A new state, sent in `parts` messages; `marked` says which sockets carry their host (the
    /// agent marks every one; the table must not depend on it).
    Snapshot {
        host: usize,
        sockets: Vec<Socket>,
        marked: Vec<bool>,
        processes: Vec<Process>,
        parts: usize,
    },
    /// Sockets that are open become `changed`, the others `added`; `remove` picks open rows.
    Delta {
        host: usize,
        sockets: Vec<Socket>,
        remove: Vec<Index>,
        processes: Vec<Process>,
        processes_removed: Vec<u32>,
        in_step: bool,
    },
    /// Time passes (milliseconds).
    Wait(u32),
    Sweep,
    View(View),
    /// The page names this agent's rows (more than one host) or stops naming them.
    LocalName(Option<usize>),
    /// The hub no longer follows a peer (`host` > 0).
    Forget(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (
            0..HOSTS.len(),
            proptest::collection::vec(socket(), 0..10),
            proptest::collection::vec(any::<bool>(), 10),
            proptest::collection::vec(process(), 0..5),
            1..4usize,
        )
            .prop_map(|(host, sockets, marked, processes, parts)| Op::Snapshot {
                host,
                sockets,
                marked,
                processes,
                parts,
            }),
        6 => (
            0..HOSTS.len(),
            proptest::collection::vec(socket(), 0..4),
            proptest::collection::vec(any::<Index>(), 0..3),
            proptest::collection::vec(process(), 0..2),
            proptest::collection::vec(1..=6u32, 0..2),
            prop::bool::weighted(0.9),
        )
            .prop_map(|(host, sockets, remove, processes, processes_removed, in_step)| Op::Delta {
                host,
                sockets,
                remove,
                processes,
                processes_removed,
                in_step,
            }),
        2 => (0..4000u32).prop_map(Op::Wait),
        1 => Just(Op::Sweep),
        2 => view().prop_map(Op::View),
        1 => proptest::option::of(0..LOCAL_NAMES.len()).prop_map(Op::LocalName),
        1 => (1..HOSTS.len()).prop_map(Op::Forget),
    ]
}

/// A row as the model keeps it: the socket, and when it closed.
#[derive(Clone, Debug, PartialEq)]
struct ModelRow {
    socket: Socket,
    closed_at: Option<f64>,
}

/// One host's stream as the model follows it.
#[derive(Debug, Default)]
struct ModelHost {
    processes: HashMap<u32, Process>,
    seq: u64,
    loaded: bool,
}

/// A row's identity: its host (`None`: this agent) and socket id.
type Id = (Option<String>, String);

/// What the table should hold, kept the obvious way.
#[derive(Debug, Default)]
struct Model {
    rows: BTreeMap<Id, ModelRow>,
    hosts: HashMap<Option<String>, ModelHost>,
    local_name: Option<String>,
    view: View,
}

/// Keeps the last socket of each id, as a state has one socket per id.
fn unique(sockets: Vec<Socket>) -> Vec<Socket> {
    let by_id: BTreeMap<String, Socket> = sockets.into_iter().map(|s| (s.id.clone(), s)).collect();
    by_id.into_values().collect()
}

impl Model {
    /// The ids of `host`'s open rows.
    fn open_ids(&self, host: &Option<String>) -> Vec<String> {
        self.rows
            .iter()
            .filter(|((h, _), r)| h == host && r.closed_at.is_none())
            .map(|((_, id), _)| id.clone())
            .collect()
    }

    fn open(&mut self, socket: Socket) {
        self.rows.insert(
            (socket.host.clone(), socket.id.clone()),
            ModelRow {
                socket,
                closed_at: None,
            },
        );
    }

    fn host(&mut self, host: &Option<String>) -> &mut ModelHost {
        self.hosts.entry(host.clone()).or_default()
    }

    /// Applies `op` to the model and to the table.
    fn apply(&mut self, table: &mut Table, op: Op, now: &mut f64) {
        match op {
            Op::Snapshot {
                host,
                sockets,
                marked,
                processes,
                parts,
            } => {
                let name = HOSTS[host];
                let host = name.map(str::to_owned);
                // As the agent sends them: its own sockets unmarked, a peer's (mostly) marked.
                let sockets: Vec<Socket> = unique(sockets)
                    .into_iter()
                    .zip(marked.iter().cycle())
                    .map(|(mut s, &marked)| {
                        s.host = if marked { host.clone() } else { None };
                        s
                    })
                    .collect();
                let seq = self.host(&host).seq + 1;
                // The table: the state split into `parts` messages.
                let size = sockets.len().div_ceil(parts).max(1);
                let mut chunks: Vec<Vec<Socket>> =
                    sockets.chunks(size).map(<[Socket]>::to_vec).collect();
                chunks.resize(parts.max(chunks.len()), Vec::new());
                let mut chunks = chunks.into_iter();
                let first = Snapshot {
                    seq,
                    sockets: chunks.next().unwrap_or_default(),
                    processes: processes.clone(),
                    warnings: Vec::new(),
                    more: parts > 1,
                };
                let mut applied = table.receive_snapshot(name, first, *now);
                let rest: Vec<Vec<Socket>> = chunks.collect();
                let n = rest.len();
                for (i, chunk) in rest.into_iter().enumerate() {
                    let part = SnapshotMore {
                        seq,
                        sockets: chunk,
                        processes: Vec::new(),
                        more: i + 1 < n,
                    };
                    assert!(!applied, "a snapshot was applied before its last part");
                    applied = table
                        .receive_part(name, part, *now)
                        .expect("parts of one snapshot");
                }
                assert!(applied, "the last part did not apply the snapshot");

                // The model: open what the state lists, close what it no longer lists — of
                // this host only; every row it holds is marked with it.
                let listed: BTreeSet<String> = sockets.iter().map(|s| s.id.clone()).collect();
                for ((h, id), row) in &mut self.rows {
                    if *h == host && !listed.contains(id) && row.closed_at.is_none() {
                        row.closed_at = Some(*now);
                    }
                }
                for mut socket in sockets {
                    socket.host = host.clone();
                    self.open(socket);
                }
                let part = self.host(&host);
                part.processes = processes.into_iter().map(|p| (p.pid, p)).collect();
                part.seq = seq;
                part.loaded = true;
            }
            Op::Delta {
                host,
                sockets,
                remove,
                processes,
                processes_removed,
                in_step,
            } => {
                let name = HOSTS[host];
                let host = name.map(str::to_owned);
                let open = self.open_ids(&host);
                let sockets: Vec<Socket> = unique(sockets)
                    .into_iter()
                    .map(|mut s| {
                        s.host = host.clone();
                        s
                    })
                    .collect();
                let (changed, added): (Vec<Socket>, Vec<Socket>) =
                    sockets.into_iter().partition(|s| open.contains(&s.id));
                let touched: BTreeSet<&str> = changed
                    .iter()
                    .chain(&added)
                    .map(|s| s.id.as_str())
                    .collect();
                let candidates: Vec<&String> = open
                    .iter()
                    .filter(|id| !touched.contains(id.as_str()))
                    .collect();
                let removed: Vec<String> = if candidates.is_empty() {
                    Vec::new()
                } else {
                    let picked: BTreeSet<String> = remove
                        .iter()
                        .map(|i| i.get(&candidates).to_string())
                        .collect();
                    picked.into_iter().collect()
                };
                let (seq, loaded) = self
                    .hosts
                    .get(&host)
                    .map_or((0, false), |h| (h.seq, h.loaded));
                let from_seq = if in_step { seq } else { seq + 7 };
                let delta = Delta {
                    from_seq,
                    seq: from_seq + 1,
                    added: added.clone(),
                    changed: changed.clone(),
                    removed: removed.clone(),
                    processes: processes.clone(),
                    processes_removed: processes_removed.clone(),
                    warnings: Vec::new(),
                };
                let applied = table.apply_delta(name, delta, *now);
                if !(loaded && in_step) {
                    assert_eq!(
                        applied,
                        Applied::OutOfStep,
                        "a delta that does not follow on"
                    );
                    return;
                }
                assert_eq!(applied, Applied::Ok);
                let part = self.host(&host);
                for pid in processes_removed {
                    part.processes.remove(&pid);
                }
                for p in processes {
                    part.processes.insert(p.pid, p);
                }
                part.seq = from_seq + 1;
                for socket in added.into_iter().chain(changed) {
                    self.open(socket);
                }
                for id in removed {
                    if let Some(row) = self.rows.get_mut(&(host.clone(), id)) {
                        row.closed_at = Some(*now);
                    }
                }
            }
            Op::Wait(ms) => *now += f64::from(ms),
            Op::Sweep => {
                let at = *now;
                let before = self.rows.len();
                self.rows
                    .retain(|_, r| r.closed_at.is_none_or(|t| at - t < HIGHLIGHT_MS));
                assert_eq!(
                    table.sweep(at),
                    self.rows.len() != before,
                    "sweep's answer (whether rows went)"
                );
            }
            Op::View(view) => {
                table.set_view(&view);
                self.view = view;
            }
            Op::LocalName(name) => {
                let name = name.map(|n| LOCAL_NAMES[n].to_owned());
                table.set_local_name(name.clone());
                self.local_name = name;
            }
            Op::Forget(host) => {
                let name = HOSTS[host].expect("a peer");
                table.remove_host(name);
                let host = Some(name.to_owned());
                self.rows.retain(|(h, _), _| *h != host);
                self.hosts.remove(&host);
            }
        }
    }

    /// The host's name as the table shows it: the peer's, else this agent's when named.
    fn host_name(&self, s: &Socket) -> Option<String> {
        s.host.clone().or_else(|| self.local_name.clone())
    }

    fn process(&self, s: &Socket, pid: u32) -> Option<&Process> {
        self.hosts.get(&s.host)?.processes.get(&pid)
    }

    /// The rows the view shows, in order: every row filtered and sorted from scratch.
    fn shown(&self) -> Vec<&ModelRow> {
        let mut rows: Vec<&ModelRow> = self
            .rows
            .values()
            .filter(|r| self.shows(&r.socket))
            .collect();
        rows.sort_by(|a, b| self.order(&a.socket, &b.socket));
        rows
    }

    fn names(&self, s: &Socket) -> String {
        let mut names = Vec::new();
        for pid in &s.pids {
            if let Some(p) = self.process(s, *pid) {
                names.push(p.name.clone());
            }
        }
        names.join(", ")
    }

    fn user(&self, s: &Socket) -> String {
        for pid in &s.pids {
            if let Some(user) = self.process(s, *pid).and_then(|p| p.user.clone()) {
                return user;
            }
        }
        s.uid.map(|uid| format!("uid {uid}")).unwrap_or_default()
    }

    /// The owners' projects, each as its name and as `project:NAME` (the Projects view's link).
    fn projects(&self, s: &Socket) -> String {
        let mut names = Vec::new();
        for pid in &s.pids {
            if let Some(project) = self.process(s, *pid).and_then(|p| p.project.as_ref()) {
                names.push(format!(
                    "project:{} {}",
                    project.name.replace(' ', "_"),
                    project.name
                ));
            }
        }
        names.join(" ")
    }

    fn what(s: &Socket) -> String {
        match (&s.app, &s.service) {
            (Some(app), _) => app.clone(),
            (None, Some(service)) => service.clone(),
            (None, None) => String::new(),
        }
    }

    /// The filter as the toolbar documents it: the host picked, listening toggle, then every
    /// term — a number is a port or pid, exactly; other text is part of some column (the
    /// host's name among them), case aside.
    fn shows(&self, s: &Socket) -> bool {
        if self
            .view
            .host
            .as_ref()
            .is_some_and(|h| self.host_name(s).as_ref() != Some(h))
        {
            return false;
        }
        if self.view.listening_only && !s.is_listening() {
            return false;
        }
        let columns = [
            self.host_name(s).unwrap_or_default(),
            s.proto_label().to_owned(),
            s.local_endpoint().to_string(),
            s.remote_text(),
            s.state.as_str().to_owned(),
            s.pids
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(" "),
            self.names(s),
            self.user(s),
            Self::what(s),
            s.exposure
                .map(|e| e.as_str().to_owned())
                .unwrap_or_default(),
            self.projects(s),
        ];
        let query = self.view.query.to_lowercase();
        query
            .split_whitespace()
            .all(|term| match term.parse::<u32>() {
                Ok(n) => {
                    u32::from(s.local_port) == n
                        || s.remote_port.is_some_and(|p| u32::from(p) == n)
                        || s.pids.contains(&n)
                }
                // `project:NAME` is an owner's project, exactly.
                Err(_) if term.starts_with("project:") => self
                    .projects(s)
                    .to_lowercase()
                    .split(' ')
                    .any(|word| word == term),
                Err(_) => columns.iter().any(|c| c.to_lowercase().contains(term)),
            })
    }

    /// The sort: by the column (reversed when descending), then by host (this agent's rows
    /// first, then peers' by name) and id, ascending either way.
    fn order(&self, a: &Socket, b: &Socket) -> Ordering {
        let by_column = match self.view.sort {
            Column::Host => self
                .host_name(a)
                .unwrap_or_default()
                .to_lowercase()
                .cmp(&self.host_name(b).unwrap_or_default().to_lowercase()),
            Column::Proto => a.proto_label().cmp(b.proto_label()),
            Column::Local => a
                .local_port
                .cmp(&b.local_port)
                .then(a.local_addr.cmp(&b.local_addr)),
            Column::Remote => a
                .remote_port
                .cmp(&b.remote_port)
                .then(a.remote_addr.cmp(&b.remote_addr)),
            Column::State => a.state.as_str().cmp(b.state.as_str()),
            Column::Pid => a.pids.first().cmp(&b.pids.first()),
            Column::Process => self
                .names(a)
                .to_lowercase()
                .cmp(&self.names(b).to_lowercase()),
            Column::What => Self::what(a).cmp(&Self::what(b)),
            Column::User => self.user(a).cmp(&self.user(b)),
        };
        let by_column = if self.view.descending {
            by_column.reverse()
        } else {
            by_column
        };
        by_column
            .then_with(|| a.host.cmp(&b.host))
            .then_with(|| a.id.cmp(&b.id))
    }

    /// Checks the table against the model; `window` picks a slice of the index to read.
    fn check(&self, table: &Table, window: (usize, usize)) -> Result<(), TestCaseError> {
        let held: BTreeMap<Id, ModelRow> = table
            .rows
            .values()
            .map(|r| {
                let row = ModelRow {
                    socket: r.socket.clone(),
                    closed_at: r.closed_at,
                };
                ((r.socket.host.clone(), r.socket.id.clone()), row)
            })
            .collect();
        prop_assert_eq!(held.len(), table.rows.len(), "one row per host and id");
        prop_assert_eq!(&held, &self.rows, "the rows held");
        for (key, row) in &table.rows {
            prop_assert_eq!(key, &row.key, "a row under its own key");
        }

        let want: Vec<Id> = self
            .shown()
            .iter()
            .map(|r| (r.socket.host.clone(), r.socket.id.clone()))
            .collect();
        let got: Vec<Id> = table
            .shown_rows(0, usize::MAX)
            .map(|r| (r.socket.host.clone(), r.socket.id.clone()))
            .collect();
        prop_assert_eq!(
            &got,
            &want,
            "the shown rows for {:?} (local name {:?})",
            self.view,
            self.local_name
        );

        for (i, (host, id)) in want.iter().enumerate() {
            let key = row_key(host.as_deref(), id);
            prop_assert_eq!(table.shown_position(&key), Some(i), "position of {:?}", key);
        }
        for (host, id) in self.rows.keys().filter(|k| !want.contains(k)) {
            let key = row_key(host.as_deref(), id);
            prop_assert_eq!(
                table.shown_position(&key),
                None,
                "position of hidden {:?}",
                key
            );
        }

        let (first, last) = window;
        let got: Vec<Id> = table
            .shown_rows(first, last)
            .map(|r| (r.socket.host.clone(), r.socket.id.clone()))
            .collect();
        let end = last.min(want.len());
        let want_window = want.get(first.min(end)..end).unwrap_or_default();
        prop_assert_eq!(&got, &want_window, "rows {}..{}", first, last);

        let open = self
            .shown()
            .iter()
            .filter(|r| r.closed_at.is_none())
            .count();
        prop_assert_eq!(
            table.shown_counts(),
            (want.len(), open),
            "the counters (shown, open)"
        );
        for (host, part) in &self.hosts {
            let held = table.host(host.as_deref());
            prop_assert_eq!(
                held.map(|h| h.loaded),
                Some(part.loaded),
                "{:?} loaded",
                host
            );
            if part.loaded {
                prop_assert_eq!(held.map(|h| h.seq), Some(part.seq), "{:?}'s seq", host);
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// The index and its counters equal a filter and sort of every row from scratch, after
    /// every step of any sequence of snapshots, deltas, sweeps and view changes.
    #[test]
    fn index_equals_a_naive_filter_and_sort(
        ops in proptest::collection::vec(op(), 1..40),
        windows in proptest::collection::vec((0..12usize, 0..12usize), 40),
    ) {
        let mut table = Table::default();
        let mut model = Model::default();
        let mut now = 1_000_000.0;
        for (op, window) in ops.into_iter().zip(windows) {
            model.apply(&mut table, op, &mut now);
            model.check(&table, window)?;
        }
    }
}

/// A row that closed and came back is open again, and one that stayed closed goes after
/// `HIGHLIGHT_MS`: the cases the property test reaches only by chance, spelled out.
#[test]
fn closed_rows_linger_then_go_and_can_come_back() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let a = socket().new_tree(&mut runner).unwrap().current();
    let mut b = a.clone();
    b.id = "other".into();
    let mut table = Table::default();
    let snapshot = |seq, sockets: Vec<Socket>| Snapshot {
        seq,
        sockets,
        processes: Vec::new(),
        warnings: Vec::new(),
        more: false,
    };
    table.apply_snapshot(None, snapshot(1, vec![a.clone(), b.clone()]), 0.0);
    assert_eq!(table.shown_counts(), (2, 2));
    // After a reconnect, `a` is gone: shown as closed, no longer counted as open.
    table.apply_snapshot(None, snapshot(5, vec![b.clone()]), 10.0);
    assert_eq!(table.shown_counts(), (2, 1));
    assert!(!table.sweep(10.0 + HIGHLIGHT_MS - 1.0));
    // It comes back before it went: open again.
    table.apply_snapshot(None, snapshot(6, vec![a.clone(), b.clone()]), 20.0);
    assert_eq!(table.shown_counts(), (2, 2));
    assert!(!table.sweep(20.0 + HIGHLIGHT_MS));
    // `b` closes for good and goes once its time is up.
    let delta = Delta {
        from_seq: 6,
        seq: 7,
        removed: vec![b.id.clone()],
        ..Delta::default()
    };
    assert_eq!(table.apply_delta(None, delta, 30.0), Applied::Ok);
    assert_eq!(table.shown_counts(), (2, 1));
    assert!(table.sweep(30.0 + HIGHLIGHT_MS));
    assert_eq!(table.shown_counts(), (1, 1));
    assert!(!table.rows.contains_key(&b.id));
}

/// A process named `name` with this pid.
fn named(pid: u32, name: &str) -> Process {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut p = process().new_tree(&mut runner).unwrap().current();
    p.pid = pid;
    p.name = name.to_owned();
    p
}

/// A hub's table: the same socket id and the same pid on this agent and on a peer make two
/// rows, each owned by its own machine's process; each host's snapshots and deltas touch its
/// own rows only; the filter and the view's host tell them apart by name.
#[test]
fn equal_ids_and_pids_on_two_hosts_stay_apart() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut here = socket().new_tree(&mut runner).unwrap().current();
    here.id = "tcp 127.0.0.1:8080 - 1".into();
    here.pids = vec![42];
    here.owner = OwnerStatus::Known;
    let mut there = here.clone();
    there.host = Some("build-box".into());
    let snapshot = |seq, sockets: Vec<Socket>, process: Process| Snapshot {
        seq,
        sockets,
        processes: vec![process],
        warnings: vec!["partial".into()],
        more: false,
    };
    let mut table = Table::default();
    table.apply_snapshot(
        None,
        snapshot(10, vec![here.clone()], named(42, "nginx")),
        0.0,
    );
    table.apply_snapshot(
        Some("build-box"),
        snapshot(3, vec![there.clone()], named(42, "python3")),
        0.0,
    );
    assert_eq!(table.rows.len(), 2);
    let key = row_key(Some("build-box"), &there.id);
    assert_ne!(key, here.id);
    assert_eq!(table.process_names(&table.rows[&here.id].socket), "nginx");
    assert_eq!(table.process_names(&table.rows[&key].socket), "python3");
    assert_eq!(table.host(None).map(|h| h.seq), Some(10));
    assert_eq!(table.host(Some("build-box")).map(|h| h.seq), Some(3));
    assert_eq!(table.warnings(), ["partial", "build-box: partial"]);

    // The peer's owner changes name: only its row is drawn again.
    let (rev_here, rev_there) = (table.rows[&here.id].rev, table.rows[&key].rev);
    let delta = Delta {
        from_seq: 3,
        seq: 4,
        processes: vec![named(42, "gunicorn")],
        ..Delta::default()
    };
    assert_eq!(
        table.apply_delta(Some("build-box"), delta, 5.0),
        Applied::Ok
    );
    assert_eq!(table.rows[&here.id].rev, rev_here);
    assert!(table.rows[&key].rev > rev_there);
    assert_eq!(table.process_names(&table.rows[&key].socket), "gunicorn");
    assert_eq!(table.process_names(&table.rows[&here.id].socket), "nginx");
    // A delta in step with this agent's seq is out of step for the peer, and the reverse.
    let out = Delta {
        from_seq: 10,
        seq: 11,
        ..Delta::default()
    };
    assert_eq!(
        table.apply_delta(Some("build-box"), out, 6.0),
        Applied::OutOfStep
    );
    assert_eq!(
        table.apply_delta(
            None,
            Delta {
                from_seq: 4,
                seq: 5,
                ..Delta::default()
            },
            6.0
        ),
        Applied::OutOfStep
    );

    // Named hosts: the filter finds each by its name, and the view picks one.
    table.set_local_name(Some("laptop".into()));
    let shown = |table: &mut Table, view: View| {
        table.set_view(&view);
        table
            .shown_rows(0, usize::MAX)
            .map(|r| r.key.clone())
            .collect::<Vec<_>>()
    };
    let query = |q: &str| View {
        query: q.into(),
        ..View::default()
    };
    assert_eq!(
        shown(&mut table, query("BUILD")),
        std::slice::from_ref(&key)
    );
    assert_eq!(shown(&mut table, query("laptop")), [here.id.clone()]);
    assert_eq!(
        shown(&mut table, query("8080")),
        [here.id.clone(), key.clone()]
    );
    let pick = |h: &str| View {
        host: Some(h.into()),
        ..View::default()
    };
    assert_eq!(
        shown(&mut table, pick("build-box")),
        std::slice::from_ref(&key)
    );
    assert_eq!(shown(&mut table, pick("laptop")), [here.id.clone()]);
    // Unnamed (a lone agent), this agent's rows have no host to match.
    table.set_local_name(None);
    assert!(shown(&mut table, pick("laptop")).is_empty());
    assert!(shown(&mut table, query("laptop")).is_empty());
    assert_eq!(shown(&mut table, View::default()).len(), 2);

    // A snapshot of the peer without the socket closes its row, not this agent's.
    table.apply_snapshot(
        Some("build-box"),
        snapshot(9, Vec::new(), named(42, "python3")),
        7.0,
    );
    assert!(table.rows[&key].closed_at.is_some());
    assert!(table.rows[&here.id].closed_at.is_none());
    // And a delta of this agent removing the id closes this agent's row only.
    let mut other = there.clone();
    other.id = "udp 0.0.0.0:53 - 2".into();
    let delta = Delta {
        from_seq: 10,
        seq: 11,
        removed: vec![here.id.clone()],
        ..Delta::default()
    };
    table.apply_snapshot(
        Some("build-box"),
        snapshot(10, vec![there.clone(), other], named(42, "python3")),
        8.0,
    );
    assert_eq!(table.apply_delta(None, delta, 9.0), Applied::Ok);
    assert!(table.rows[&here.id].closed_at.is_some());
    assert!(table.rows[&key].closed_at.is_none());

    // The hub stops following the peer: its rows and state go, this agent's stay.
    table.remove_host("build-box");
    assert_eq!(table.rows.len(), 1);
    assert!(table.host(Some("build-box")).is_none());
    assert_eq!(table.shown_counts(), (1, 0));
}
