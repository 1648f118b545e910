//! Who talks to whom (#12): a state's connections as a graph — processes and remote addresses
//! as nodes, an edge from each client to its server per port with the number of connections —
//! for `portscope graph` (text, `--json`, `--dot` for Graphviz) and `GET /api/v1/graph`.
//!
//! Both ends of a connection on this machine are two sockets whose endpoints mirror each other,
//! so the edge between two local processes is exact: the server is the end whose port is
//! listened on. A connection whose other end is not here runs to (or, on a listened port,
//! from) a node for the remote address.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use portscope_shared::{
    Graph, GraphEdge, GraphNode, GraphNodeKind, OwnerStatus, Proto, Socket, SocketState,
};

use crate::model::State;

/// The names this machine gives addresses without asking DNS: the first name of each address
/// in its hosts file (`os::hosts_file`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostNames(HashMap<IpAddr, String>);

/// The most of a hosts file that is read: real ones are a few KiB; a huge one (an ad-blocking
/// list of a million lines) is read up to this and no further.
const MAX_HOSTS_FILE: u64 = 4 << 20;

impl HostNames {
    /// This machine's; none when the file cannot be read.
    pub fn read() -> Self {
        Self::read_from(&crate::os::hosts_file())
    }

    /// The file at `path`, its first [`MAX_HOSTS_FILE`] bytes (a line cut there is dropped).
    fn read_from(path: &std::path::Path) -> Self {
        use std::io::Read;
        let mut bytes = Vec::new();
        let read =
            std::fs::File::open(path).and_then(|f| f.take(MAX_HOSTS_FILE).read_to_end(&mut bytes));
        if read.is_err() {
            return Self::default();
        }
        if bytes.len() as u64 == MAX_HOSTS_FILE
            && let Some(end) = bytes.iter().rposition(|b| *b == b'\n')
        {
            bytes.truncate(end);
        }
        Self::parse(&String::from_utf8_lossy(&bytes))
    }

    /// `hosts(5)`: an address, then its names, `#` to the end of a line a comment. A line that
    /// does not parse (macOS's `fe80::1%lo0`) is skipped, not the file. Written here rather
    /// than taken from the `hostfile` crate, which refuses the whole file for one such line.
    pub fn parse(text: &str) -> Self {
        let mut names = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let mut words = line.split_whitespace();
            let (Some(addr), Some(name)) = (words.next(), words.next()) else {
                continue;
            };
            if let Ok(addr) = addr.parse::<IpAddr>() {
                names
                    .entry(addr.to_canonical())
                    .or_insert_with(|| name.to_owned());
            }
        }
        Self(names)
    }

    pub fn get(&self, addr: IpAddr) -> Option<&str> {
        self.0.get(&addr.to_canonical()).map(String::as_str)
    }
}

/// A hosts file read once and again only when it changed (its modification time or length),
/// for the server, which names every graph it answers.
#[derive(Debug)]
pub struct HostsCache {
    path: std::path::PathBuf,
    slot: std::sync::Mutex<Option<HostsRead>>,
}

/// The names read, and the file's modification time and length when they were.
type HostsRead = (
    Option<std::time::SystemTime>,
    u64,
    std::sync::Arc<HostNames>,
);

impl HostsCache {
    pub fn new(path: std::path::PathBuf) -> Self {
        Self {
            path,
            slot: std::sync::Mutex::new(None),
        }
    }

    /// This machine's hosts file's cache.
    pub fn system() -> &'static HostsCache {
        static SYSTEM: std::sync::LazyLock<HostsCache> =
            std::sync::LazyLock::new(|| HostsCache::new(crate::os::hosts_file()));
        &SYSTEM
    }

    /// The names, read again only when the file changed since the last read.
    pub fn get(&self) -> std::sync::Arc<HostNames> {
        let meta = std::fs::metadata(&self.path).ok();
        let stamp = (
            meta.as_ref().and_then(|m| m.modified().ok()),
            meta.as_ref().map_or(0, std::fs::Metadata::len),
        );
        let mut slot = self
            .slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((modified, len, names)) = slot.as_ref()
            && (*modified, *len) == stamp
        {
            return names.clone();
        }
        let names = std::sync::Arc::new(HostNames::read_from(&self.path));
        *slot = Some((stamp.0, stamp.1, names.clone()));
        names
    }
}

/// Gives each remote node of `graph` its name from `names`, where it has one.
pub fn name_remotes(graph: &mut Graph, names: &HostNames) {
    for node in &mut graph.nodes {
        if node.kind == GraphNodeKind::Remote {
            node.name = node.addr.and_then(|a| names.get(a)).map(str::to_owned);
        }
    }
}

/// The graph of `state`'s TCP connections (established, or being set up).
pub fn of(state: &State) -> Graph {
    let connected = |s: &&Socket| {
        s.proto == Proto::Tcp
            && matches!(
                s.state,
                SocketState::Established | SocketState::SynSent | SocketState::SynRecv
            )
    };
    let canonical = |addr: IpAddr, port: u16| SocketAddr::new(addr.to_canonical(), port);
    // One pass over the sockets: the listened ports and their owners, and each connection's
    // ends. (Per connection, typed ends and no string: this runs over every socket.)
    let mut listened: HashSet<u16> = HashSet::new();
    // A connection still in a listener's accept queue has no owner yet: it is the listener's.
    let mut listener_owner: HashMap<u16, End> = HashMap::new();
    // foldhash: SipHash was half of the whole at 21 000 sockets; its seeded hasher still keeps
    // peers who pick their addresses and ports from making the table slow.
    let mut ends: HashMap<(SocketAddr, SocketAddr), &Socket, foldhash::fast::RandomState> =
        HashMap::with_capacity_and_hasher(state.sockets.len(), Default::default());
    for s in state.sockets() {
        if s.proto == Proto::Tcp && s.state == SocketState::Listen {
            listened.insert(s.local_port);
            if let Some(end) = owner(s) {
                listener_owner.insert(s.local_port, end);
            }
        } else if connected(&s)
            && let (Some(addr), Some(port)) = (s.remote_addr, s.remote_port)
        {
            ends.insert(
                (canonical(s.local_addr, s.local_port), canonical(addr, port)),
                s,
            );
        }
    }
    let owner = |s: &Socket| owner(s).or_else(|| listener_owner.get(&s.local_port).copied());
    let mut counts: HashMap<(End, End, u16), usize, foldhash::fast::RandomState> =
        HashMap::default();
    for (&(local, remote), s) in &ends {
        let Some(me) = owner(s) else { continue };
        match ends.get(&(remote, local)) {
            Some(other) => {
                // Counted once, from the client's end: the server's port is listened on (or,
                // with neither or both listened, it is the lower one).
                let mine = listened.contains(&local.port());
                let theirs = listened.contains(&remote.port());
                let client = match (mine, theirs) {
                    (false, true) => true,
                    (true, false) => false,
                    _ => (local.port(), local) > (remote.port(), remote),
                };
                if !client {
                    continue;
                }
                let Some(server) = owner(other) else { continue };
                *counts.entry((me, server, remote.port())).or_default() += 1;
            }
            None => {
                let far = End::Remote(remote.ip());
                let key = if listened.contains(&local.port()) {
                    (far, me, local.port())
                } else {
                    (me, far, remote.port())
                };
                *counts.entry(key).or_default() += 1;
            }
        }
    }
    // Nodes and edges in the order of their ids.
    let counts: BTreeMap<(String, String, u16), usize> = counts
        .into_iter()
        .map(|((from, to, port), n)| ((from.id(), to.id(), port), n))
        .collect();
    let mut used: BTreeSet<&str> = BTreeSet::new();
    for (from, to, _) in counts.keys() {
        used.insert(from);
        used.insert(to);
    }
    let mut nodes: Vec<GraphNode> = Vec::new();
    for id in used {
        if let Some(pid) = id.strip_prefix('p').and_then(|p| p.parse::<u32>().ok()) {
            let process = state.processes.get(&pid);
            nodes.push(GraphNode {
                id: id.to_owned(),
                kind: GraphNodeKind::Process,
                label: process.map_or_else(|| format!("pid {pid}"), |p| p.name.clone()),
                pid: Some(pid),
                project: process
                    .and_then(|p| p.project.as_ref())
                    .map(|p| p.name.clone()),
                addr: None,
                name: None,
            });
        } else if let Some(addr) = id.strip_prefix('r').and_then(|a| a.parse::<IpAddr>().ok()) {
            nodes.push(GraphNode {
                id: id.to_owned(),
                kind: GraphNodeKind::Remote,
                label: addr.to_string(),
                pid: None,
                project: None,
                addr: Some(addr),
                name: None,
            });
        } else {
            nodes.push(GraphNode {
                id: id.to_owned(),
                kind: GraphNodeKind::Hidden,
                label: "hidden owners (run as root to see them)".into(),
                pid: None,
                project: None,
                addr: None,
                name: None,
            });
        }
    }
    let edges = counts
        .into_iter()
        .map(|((from, to, port), count)| GraphEdge {
            from,
            to,
            port,
            count,
        })
        .collect();
    Graph { nodes, edges }
}

/// A node, before it is named by its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum End {
    Process(u32),
    Hidden,
    Remote(IpAddr),
}

impl End {
    /// `p<PID>`, `hidden`, `r<ADDRESS>`.
    fn id(self) -> String {
        match self {
            End::Process(pid) => format!("p{pid}"),
            End::Hidden => "hidden".into(),
            End::Remote(addr) => format!("r{addr}"),
        }
    }
}

/// The node of a socket's owner: its first process, or the hidden owners.
fn owner(s: &Socket) -> Option<End> {
    match (s.pids.first(), s.owner) {
        (Some(&pid), _) => Some(End::Process(pid)),
        (None, OwnerStatus::Hidden) => Some(End::Hidden),
        _ => None,
    }
}

/// Graphviz input: processes grouped by project in clusters, remote addresses as ellipses,
/// each edge labelled with its port and count.
pub fn dot(graph: &Graph) -> String {
    let mut out = String::from(
        "digraph portscope {\n  rankdir=LR;\n  node [shape=box, fontname=\"sans-serif\"];\n  edge [fontname=\"sans-serif\"];\n",
    );
    let mut by_project: BTreeMap<Option<&str>, Vec<&GraphNode>> = BTreeMap::new();
    for node in &graph.nodes {
        by_project
            .entry(node.project.as_deref())
            .or_default()
            .push(node);
    }
    for (project, nodes) in by_project {
        let indent = if project.is_some() { "    " } else { "  " };
        if let Some(name) = project {
            out.push_str(&format!(
                "  subgraph {} {{\n    label={};\n",
                quote(&format!("cluster_{name}")),
                quote(name)
            ));
        }
        for node in nodes {
            let (label, shape) = match node.kind {
                GraphNodeKind::Process => (
                    format!("{} ({})", node.label, node.pid.unwrap_or_default()),
                    "box",
                ),
                GraphNodeKind::Remote => match &node.name {
                    Some(name) => (format!("{name} ({})", node.label), "ellipse"),
                    None => (node.label.clone(), "ellipse"),
                },
                _ => (node.label.clone(), "octagon"),
            };
            out.push_str(&format!(
                "{indent}{} [label={}, shape={shape}];\n",
                quote(&node.id),
                quote(&label)
            ));
        }
        if project.is_some() {
            out.push_str("  }\n");
        }
    }
    for e in &graph.edges {
        out.push_str(&format!(
            "  {} -> {} [label={}];\n",
            quote(&e.from),
            quote(&e.to),
            quote(&format!(":{} ×{}", e.port, e.count))
        ));
    }
    out.push_str("}\n");
    out
}

/// A DOT string: quoted, with quotes, backslashes and line breaks escaped (process names are
/// chosen by whoever started the process).
fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' | '\r' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One line per edge, for people: `psql (pid 12) → postgres (pid 10)  :5432 ×3`.
pub fn text(graph: &Graph) -> String {
    let name = |id: &str| {
        graph
            .nodes
            .iter()
            .find(|n| n.id == id)
            .map(|n| match (n.pid, &n.name) {
                (Some(pid), _) => format!("{} (pid {pid})", crate::text::one_line(&n.label)),
                (None, Some(name)) => format!(
                    "{} ({})",
                    crate::text::one_line(name),
                    crate::text::one_line(&n.label)
                ),
                (None, None) => crate::text::one_line(&n.label),
            })
            .unwrap_or_else(|| id.to_owned())
    };
    let mut out = String::new();
    for e in &graph.edges {
        out.push_str(&format!(
            "{} → {}  :{} ×{}\n",
            name(&e.from),
            name(&e.to),
            e.port,
            e.count
        ));
    }
    out
}

#[cfg(test)]
mod tests;
