//! The map's model (#12, "who talks to whom"): the agent's connection graph
//! (`GET /api/v1/graph`) followed over time, filtered, and laid out so that it stays put while
//! it changes.
//!
//! The graph itself — which local sockets are the two ends of one connection, which end is the
//! server — is the agent's (`core/src/graph/mod.rs`); the page fetches it again when deltas
//! arrive (throttled, `view.rs`) rather than pairing sockets a second time. This module:
//!
//! - [`Live`]: successive graphs as one picture that changes gently — the edges of one client
//!   → server pair merged into one [`Link`] (its ports and counts), a link that appears marked
//!   new, one that goes kept for [`FADE_MS`] marked gone (drawn fading), a node kept while a
//!   link of it is drawn; [`Live::shown`] applies the page's filter.
//! - [`Layout`]: places kept between updates. Processes are grouped by project, remote
//!   addresses in a group of their own; each group is a band of grid columns, and a node's
//!   place is a slot of its band. A node keeps its slot as long as it is drawn, whatever comes
//!   or goes: a new node takes a free slot of its band (a band grows downwards, into space no
//!   other band uses), a new group a band to the right of the others (or an emptied band's
//!   columns). Only [`Layout::arrange`] — a new filter, or the user's "Tidy up" — moves nodes,
//!   to a compact picture that fits the plot's width. Node boxes never overlap: slots are grid
//!   cells and bands own disjoint columns.
//! - [`draw`]: the picture as boxes, paths and labels in pixels, for `view.rs` to turn into
//!   SVG; [`connections`]: the sockets of a link, for the list a click on it opens;
//!   [`neighbour`]: arrow keys between nodes.
//!
//! Pure Rust over `portscope_shared` types: it compiles on the host, where `tests.rs` checks
//! it. It must not touch the browser.

#[cfg(test)]
mod tests;
#[cfg(target_arch = "wasm32")]
pub mod view;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use portscope_shared::{Graph, GraphNode, GraphNodeKind, Proto, Socket, SocketState};

/// A node's box, in pixels.
pub const NODE_W: f64 = 156.0;
pub const NODE_H: f64 = 36.0;
/// Grid pitch: a column holds a node and the room its edges curve through; a row a node and a
/// gap.
pub const COL_PITCH: f64 = 236.0;
pub const ROW_PITCH: f64 = 50.0;
/// A band's heading, above its first row.
pub const BAND_HEAD: f64 = 30.0;
/// Space around the whole picture and inside a band's frame.
pub const MARGIN: f64 = 18.0;
pub const FRAME_PAD: f64 = 10.0;

/// How long a link whose connections all closed stays drawn (fading) before it goes.
pub const FADE_MS: f64 = 5_000.0;
/// How long a link that appeared is marked new.
pub const NEW_MS: f64 = 4_000.0;

/// Up to this many links every link's label is drawn; above it only the labels of the links of
/// the node or link in focus (the rest would cover each other and the nodes).
pub const LABEL_LIMIT: usize = 60;

/// A band is at least this many rows tall before a group gets a second column.
pub const MIN_ROWS: usize = 6;
/// Space between a tier of bands and the next one below it.
pub const TIER_GAP: f64 = 16.0;

/// The group a node is drawn in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// Processes working on one project (`Process.project`).
    Project(String),
    /// Processes without a project, and the hidden owners.
    Other,
    /// Remote addresses (the other ends of connections that do not end on this machine).
    Remote,
}

impl Group {
    pub fn of(node: &GraphNode) -> Group {
        match (node.kind, &node.project) {
            (GraphNodeKind::Remote, _) => Group::Remote,
            (_, Some(project)) => Group::Project(project.clone()),
            _ => Group::Other,
        }
    }

    /// The band's heading.
    pub fn title(&self) -> String {
        match self {
            Group::Project(name) => name.clone(),
            Group::Other => "No project".to_owned(),
            Group::Remote => "Remote peers".to_owned(),
        }
    }
}

/// All connections from one client node to one server node, on any of its ports.
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    pub from: String,
    pub to: String,
    /// (server port, connections), by port.
    pub ports: Vec<(u16, usize)>,
    /// When the page first saw it (`-∞`: in the first graph it fetched).
    pub since: f64,
    /// When its connections were last seen gone; it is drawn fading until `FADE_MS` later.
    pub gone_at: Option<f64>,
}

impl Link {
    pub fn count(&self) -> usize {
        self.ports.iter().map(|(_, n)| n).sum()
    }

    /// `:5432 ×3, :6379` — the label drawn on it.
    pub fn label(&self) -> String {
        self.ports
            .iter()
            .map(|(port, n)| {
                if *n == 1 {
                    format!(":{port}")
                } else {
                    format!(":{port} ×{n}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn is_new(&self, now: f64) -> bool {
        self.gone_at.is_none() && now - self.since < NEW_MS
    }
}

/// A link's key: (client node id, server node id).
pub type LinkKey = (String, String);

/// The graph as the page follows it: the last one fetched, with the links that went still
/// fading out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Live {
    pub nodes: BTreeMap<String, GraphNode>,
    pub links: BTreeMap<LinkKey, Link>,
    /// Whether a graph arrived: links of the first one are not "new".
    primed: bool,
}

impl Live {
    /// Takes a newly fetched graph: links are added (new), updated, or marked gone; links gone
    /// for `FADE_MS` and nodes no link is drawn to any more leave.
    pub fn receive(&mut self, graph: &Graph, now: f64) {
        let mut present: BTreeMap<LinkKey, Vec<(u16, usize)>> = BTreeMap::new();
        for e in &graph.edges {
            present
                .entry((e.from.clone(), e.to.clone()))
                .or_default()
                .push((e.port, e.count));
        }
        for (key, link) in &mut self.links {
            if !present.contains_key(key) && link.gone_at.is_none() {
                link.gone_at = Some(now);
            }
        }
        let since = if self.primed { now } else { f64::NEG_INFINITY };
        for (key, mut ports) in present {
            ports.sort_unstable();
            match self.links.get_mut(&key) {
                Some(link) => {
                    if link.gone_at.take().is_some() {
                        link.since = since;
                    }
                    link.ports = ports;
                }
                None => {
                    self.links.insert(
                        key.clone(),
                        Link {
                            from: key.0,
                            to: key.1,
                            ports,
                            since,
                            gone_at: None,
                        },
                    );
                }
            }
        }
        for node in &graph.nodes {
            self.nodes.insert(node.id.clone(), node.clone());
        }
        self.primed = true;
        self.sweep(now);
    }

    /// Drops links gone for `FADE_MS` and the nodes left without links. Whether anything went.
    pub fn sweep(&mut self, now: f64) -> bool {
        let before = (self.links.len(), self.nodes.len());
        self.links
            .retain(|_, l| l.gone_at.is_none_or(|at| now - at < FADE_MS));
        let used: HashSet<&str> = self
            .links
            .values()
            .flat_map(|l| [l.from.as_str(), l.to.as_str()])
            .collect();
        self.nodes.retain(|id, _| used.contains(id.as_str()));
        before != (self.links.len(), self.nodes.len())
    }

    /// Forgets everything (another host picked): the next graph is a first one.
    pub fn clear(&mut self) {
        *self = Live::default();
    }

    /// The links the filter shows and the nodes at their ends. Each whitespace-separated term
    /// of `query` must match the link: a number its port or the pid at either end (exactly, as
    /// the table's filter does), other text a substring of either end's name, project or
    /// address.
    pub fn shown(&self, query: &str) -> Shown {
        let query = query.to_lowercase();
        let terms: Vec<&str> = query.split_whitespace().collect();
        let hay: HashMap<&str, String> = self
            .nodes
            .iter()
            .map(|(id, n)| (id.as_str(), haystack(n)))
            .collect();
        let matches = |link: &Link, term: &str| {
            if let Ok(n) = term.parse::<u32>() {
                let pid = |id: &str| self.nodes.get(id).and_then(|n| n.pid);
                return link.ports.iter().any(|(p, _)| u32::from(*p) == n)
                    || pid(&link.from) == Some(n)
                    || pid(&link.to) == Some(n);
            }
            let ends = [&link.from, &link.to];
            // `project:NAME`: a link with an end in the project (what it talks to, too).
            let projects = ends
                .iter()
                .filter_map(|id| self.nodes.get(id.as_str())?.project.as_deref());
            crate::table::project_filter(term, projects).unwrap_or_else(|| {
                ends.iter()
                    .any(|id| hay.get(id.as_str()).is_some_and(|h| h.contains(term)))
            })
        };
        let mut shown = Shown::default();
        for (key, link) in &self.links {
            if terms.iter().all(|t| matches(link, t)) {
                shown.nodes.insert(link.from.clone());
                shown.nodes.insert(link.to.clone());
                shown.links.push(key.clone());
            }
        }
        shown
    }
}

/// What the filter lets through: node ids, and link keys in key order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shown {
    pub nodes: BTreeSet<String>,
    pub links: Vec<LinkKey>,
}

/// A node's text for the filter, lowercase.
fn haystack(n: &GraphNode) -> String {
    format!(
        "{} {} {} {}",
        n.label,
        n.project.as_deref().unwrap_or_default(),
        n.addr.map(|a| a.to_string()).unwrap_or_default(),
        n.name.as_deref().unwrap_or_default()
    )
    .to_lowercase()
}

/// One group's columns and the nodes in its slots (row by row: slot `i` is column
/// `col + i % width`, row `i / width`). Bands stand side by side in a tier; a tier that would
/// be wider than the plot goes on in a tier below, and a band with a tier below it holds at
/// most `max_rows` rows (more of its group take another band), so it never grows into it.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    pub group: Group,
    /// Its first grid column.
    pub col: usize,
    pub width: usize,
    /// Its top (its heading's), in pixels.
    pub top: f64,
    /// How many rows it may hold; `None` in the last tier, which grows downwards.
    pub max_rows: Option<usize>,
    pub slots: Vec<Option<String>>,
}

impl Band {
    fn new(group: Group, col: usize, width: usize, top: f64) -> Self {
        Self {
            group,
            col,
            width,
            top,
            max_rows: None,
            slots: Vec::new(),
        }
    }

    /// How many slots it may have.
    fn capacity(&self) -> usize {
        self.max_rows.map_or(usize::MAX, |rows| rows * self.width)
    }

    /// Whether it can take one more node.
    fn has_room(&self) -> bool {
        let capacity = self.capacity();
        self.slots.iter().take(capacity).any(Option::is_none) || self.slots.len() < capacity
    }

    /// Its bottom (its last row's box), in pixels.
    fn bottom(&self) -> f64 {
        self.top + BAND_HEAD + (self.rows() as f64 * ROW_PITCH - (ROW_PITCH - NODE_H)).max(0.0)
    }

    fn rows(&self) -> usize {
        let used = self
            .slots
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |i| i + 1);
        used.div_ceil(self.width)
    }

    fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// The first free slot, a new one at the end when all are taken (see [`Band::has_room`]).
    fn take_slot(&mut self, id: String) -> usize {
        let capacity = self.capacity();
        match self.slots.iter().take(capacity).position(Option::is_none) {
            Some(i) => {
                self.slots[i] = Some(id);
                i
            }
            None => {
                self.slots.push(Some(id));
                self.slots.len() - 1
            }
        }
    }
}

/// Where each node is drawn: a band per group (more when a group outgrows a band with a tier
/// below it), a slot per node. See the module's comment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layout {
    pub bands: Vec<Band>,
    /// Node id → (band index, slot).
    places: HashMap<String, (usize, usize)>,
    /// The grid columns the plot had room for when it was arranged (0: never arranged).
    fit_cols: usize,
}

/// A node to place: its id, its group, and how strongly it is a server (connections in minus
/// out), which orders groups and nodes left to right, top to bottom.
#[derive(Clone, Debug, PartialEq)]
pub struct Placing {
    pub id: String,
    pub group: Group,
    pub label: String,
    pub serves: i64,
}

impl Layout {
    /// A compact layout of `nodes` in `fit_cols` grid columns: groups that mostly connect out
    /// (clients) to the left, those that mostly answer (servers) to the right; in a group,
    /// clients above servers, then by name. Each band is as tall as the smallest number of
    /// rows (at least [`MIN_ROWS`]) for which all bands fit the columns side by side; when no
    /// number does, bands of [`MIN_ROWS`] rows (no wider than the columns) fill tiers, one
    /// below the other.
    pub fn arrange(nodes: &[Placing], fit_cols: usize) -> Layout {
        let fit_cols = fit_cols.max(1);
        let mut groups: BTreeMap<&Group, Vec<&Placing>> = BTreeMap::new();
        for n in nodes {
            groups.entry(&n.group).or_default().push(n);
        }
        let mut order: Vec<(&Group, Vec<&Placing>)> = groups.into_iter().collect();
        // Mean server score of the group; ties by the group's own order.
        order.sort_by(|(ga, a), (gb, b)| {
            let score =
                |v: &[&Placing]| v.iter().map(|p| p.serves).sum::<i64>() as f64 / v.len() as f64;
            score(a).total_cmp(&score(b)).then_with(|| ga.cmp(gb))
        });
        let largest = order.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
        let fits = |rows: usize| {
            order
                .iter()
                .map(|(_, v)| v.len().div_ceil(rows))
                .sum::<usize>()
                <= fit_cols.max(1)
        };
        let rows = (MIN_ROWS..=largest.max(MIN_ROWS))
            .find(|&r| fits(r))
            .unwrap_or(MIN_ROWS);
        let mut layout = Layout {
            fit_cols,
            ..Layout::default()
        };
        for (group, mut members) in order {
            members.sort_by(|a, b| {
                a.serves
                    .cmp(&b.serves)
                    .then_with(|| a.label.cmp(&b.label))
                    .then_with(|| a.id.cmp(&b.id))
            });
            let width = members.len().div_ceil(rows).clamp(1, fit_cols);
            let band = layout.add_band(group.clone(), width);
            for m in members {
                let slot = layout.bands[band].take_slot(m.id.clone());
                layout.places.insert(m.id.clone(), (band, slot));
            }
        }
        layout
    }

    /// A new empty band of `width` columns right of the last tier's bands, or at the left of
    /// a new tier below everything when it would not fit the columns (the bands above then
    /// keep the rows they have).
    fn add_band(&mut self, group: Group, width: usize) -> usize {
        let fit_cols = self.columns();
        let last_top = self.bands.iter().map(|b| b.top).fold(MARGIN, f64::max);
        let last_tier = || self.bands.iter().filter(|b| b.top == last_top);
        let col = last_tier().map(|b| b.col + b.width).max().unwrap_or(0);
        let band = if col == 0 || col + width <= fit_cols {
            Band::new(group, col, width, last_top)
        } else {
            let below = self.bands.iter().map(Band::bottom).fold(MARGIN, f64::max);
            for b in self.bands.iter_mut().filter(|b| b.top == last_top) {
                b.max_rows = Some(b.rows().max(1));
            }
            Band::new(group, 0, width, below + FRAME_PAD + TIER_GAP)
        };
        self.bands.push(band);
        self.bands.len() - 1
    }

    /// Follows a new set of nodes without moving any node that stays: the nodes that left free
    /// their slots; each new node takes the first free slot of its group's band — a new group
    /// takes the first emptied band, else new columns to the right, as many as its new nodes
    /// need at the height of the tallest band.
    pub fn update(&mut self, nodes: &[Placing]) {
        let keep: HashSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
        let bands = &mut self.bands;
        self.places.retain(|id, &mut (b, s)| {
            let stays = keep.contains(id.as_str());
            if !stays {
                bands[b].slots[s] = None;
            }
            stays
        });
        let mut new: Vec<&Placing> = nodes
            .iter()
            .filter(|n| !self.places.contains_key(&n.id))
            .collect();
        new.sort_by(|a, b| {
            a.serves
                .cmp(&b.serves)
                .then_with(|| a.label.cmp(&b.label))
                .then_with(|| a.id.cmp(&b.id))
        });
        for n in new {
            let band = match self
                .bands
                .iter()
                .position(|b| b.group == n.group && !b.is_empty() && b.has_room())
                .or_else(|| self.bands.iter().position(Band::is_empty))
            {
                Some(b) => {
                    if self.bands[b].group != n.group {
                        self.bands[b].group = n.group.clone();
                        self.bands[b].slots.clear();
                    }
                    b
                }
                None => {
                    let rows = self
                        .bands
                        .iter()
                        .map(Band::rows)
                        .max()
                        .unwrap_or(0)
                        .max(MIN_ROWS);
                    let arriving = nodes
                        .iter()
                        .filter(|m| m.group == n.group && !self.places.contains_key(&m.id))
                        .count();
                    let width = arriving.div_ceil(rows).clamp(1, self.columns());
                    self.add_band(n.group.clone(), width)
                }
            };
            let slot = self.bands[band].take_slot(n.id.clone());
            self.places.insert(n.id.clone(), (band, slot));
        }
    }

    /// The columns bands must fit in: those it was arranged for; no limit for a layout never
    /// arranged (one only updated lays its groups side by side, as before tiers).
    fn columns(&self) -> usize {
        if self.fit_cols == 0 {
            usize::MAX
        } else {
            self.fit_cols
        }
    }

    /// The top-left corner of a node's box.
    pub fn position(&self, id: &str) -> Option<(f64, f64)> {
        let &(b, s) = self.places.get(id)?;
        let band = &self.bands[b];
        let col = band.col + s % band.width;
        let row = s / band.width;
        Some((
            MARGIN + col as f64 * COL_PITCH,
            band.top + BAND_HEAD + row as f64 * ROW_PITCH,
        ))
    }

    /// The grid column of a node.
    fn column(&self, id: &str) -> Option<usize> {
        let &(b, s) = self.places.get(id)?;
        let band = &self.bands[b];
        Some(band.col + s % band.width)
    }

    /// The picture's size in pixels (emptied bands keep their columns).
    pub fn size(&self) -> (f64, f64) {
        let cols = self
            .bands
            .iter()
            .map(|b| b.col + b.width)
            .max()
            .unwrap_or(0);
        let bottom = self
            .bands
            .iter()
            .map(Band::bottom)
            .fold(MARGIN + BAND_HEAD, f64::max);
        // Right of the last column: room for the links that bulge out of it and their labels.
        (
            2.0 * MARGIN + (cols as f64 * COL_PITCH).max(0.0) + FRAME_PAD,
            bottom + MARGIN + FRAME_PAD,
        )
    }

    pub fn placed(&self) -> usize {
        self.places.len()
    }
}

/// The nodes of `shown` to place, from `live`.
pub fn placing(live: &Live, shown: &Shown) -> Vec<Placing> {
    let mut serves: HashMap<&str, i64> = HashMap::new();
    for key in &shown.links {
        if let Some(l) = live.links.get(key) {
            let n = l.count() as i64;
            *serves.entry(l.to.as_str()).or_default() += n;
            *serves.entry(l.from.as_str()).or_default() -= n;
        }
    }
    shown
        .nodes
        .iter()
        .filter_map(|id| {
            let node = live.nodes.get(id)?;
            Some(Placing {
                id: id.clone(),
                group: Group::of(node),
                label: node.label.clone(),
                serves: serves.get(id.as_str()).copied().unwrap_or(0),
            })
        })
        .collect()
}

/// A node as drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeBox {
    pub id: String,
    pub x: f64,
    pub y: f64,
    pub kind: GraphNodeKind,
    /// First line: the process's name or the address, cut to [`TITLE_CHARS`].
    pub title: String,
    /// Second line: `pid 4242`, `remote`, ….
    pub sub: String,
    /// Whether every link of it is fading (its connections all closed).
    pub gone: bool,
    /// Its accessible name and hover text.
    pub describe: String,
}

/// A link as drawn: a cubic Bézier from the client's box to the server's, its label at the
/// curve's middle.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkPath {
    pub key: LinkKey,
    pub d: String,
    pub label: String,
    pub label_at: (f64, f64),
    /// Where the label hangs from `label_at`: `middle`, or `start` right of a link that
    /// bulges out of its column.
    pub label_anchor: &'static str,
    pub count: usize,
    pub new: bool,
    pub gone: bool,
    pub describe: String,
}

/// A band's frame and heading.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub title: String,
    pub remote: bool,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// The whole picture.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Drawing {
    pub frames: Vec<Frame>,
    pub nodes: Vec<NodeBox>,
    pub links: Vec<LinkPath>,
    pub width: f64,
    pub height: f64,
    /// Every label is drawn (few links); else only those of the links in focus.
    pub all_labels: bool,
}

/// A node's name for people: `python3 (pid 4242)`, `203.0.113.9`, `api.internal (192.0.2.8)`.
pub fn node_name(n: &GraphNode) -> String {
    match (n.pid, &n.name) {
        (Some(pid), _) => format!("{} (pid {pid})", n.label),
        (None, Some(name)) => format!("{name} ({})", n.label),
        (None, None) => n.label.clone(),
    }
}

/// Draws the shown part of `live` as `layout` places it.
pub fn draw(live: &Live, layout: &Layout, shown: &Shown, now: f64) -> Drawing {
    let (width, height) = layout.size();
    let frames = layout
        .bands
        .iter()
        .filter(|b| !b.is_empty())
        .map(|b| Frame {
            title: b.group.title(),
            remote: b.group == Group::Remote,
            x: MARGIN + b.col as f64 * COL_PITCH - FRAME_PAD,
            y: b.top - 4.0,
            width: b.width as f64 * COL_PITCH - (COL_PITCH - NODE_W) + 2.0 * FRAME_PAD,
            height: BAND_HEAD + b.rows() as f64 * ROW_PITCH - (ROW_PITCH - NODE_H)
                + FRAME_PAD
                + 4.0,
        })
        .collect();
    let mut live_ends: HashSet<&str> = HashSet::new();
    for key in &shown.links {
        if let Some(l) = live.links.get(key).filter(|l| l.gone_at.is_none()) {
            live_ends.insert(&l.from);
            live_ends.insert(&l.to);
        }
    }
    let nodes = shown
        .nodes
        .iter()
        .filter_map(|id| {
            let n = live.nodes.get(id)?;
            let (x, y) = layout.position(id)?;
            let (title, sub) = match n.kind {
                GraphNodeKind::Process => (
                    n.label.clone(),
                    n.pid.map_or_else(String::new, |p| format!("pid {p}")),
                ),
                GraphNodeKind::Remote => match &n.name {
                    // The name the hosts file gives it, over its address.
                    Some(name) => (name.clone(), n.label.clone()),
                    None => (n.label.clone(), "remote address".to_owned()),
                },
                _ => ("hidden owners".to_owned(), "run as root to see".to_owned()),
            };
            let gone = !live_ends.contains(id.as_str());
            // The accessible name starts with the text the box shows (WCAG's label in name).
            let shown = fit(&title, TITLE_CHARS);
            let mut describe = format!("{shown} {sub}");
            if shown != title {
                describe.push_str(&format!(", {title}"));
            }
            if let Some(p) = &n.project {
                describe.push_str(&format!(", project {p}"));
            }
            if gone {
                describe.push_str(", its connections closed");
            }
            let title = shown;
            Some(NodeBox {
                id: id.clone(),
                x,
                y,
                kind: n.kind,
                title,
                sub,
                gone,
                describe,
            })
        })
        .collect();
    let ends = attachments(live, layout, shown);
    let links = shown
        .links
        .iter()
        .filter_map(|key| {
            let l = live.links.get(key)?;
            let (start, end, shape) = ends.get(key).copied()?;
            let (d, label_at, label_anchor) = curve(start, end, shape);
            let name = |id: &str| live.nodes.get(id).map_or_else(|| id.to_owned(), node_name);
            let connections = if l.count() == 1 {
                "1 connection".to_owned()
            } else {
                format!("{} connections", l.count())
            };
            let mut describe = format!(
                "{} → {} {}: {connections}",
                name(&l.from),
                name(&l.to),
                l.label()
            );
            if l.gone_at.is_some() {
                describe.push_str(" (closed)");
            }
            Some(LinkPath {
                key: key.clone(),
                d,
                label: l.label(),
                label_at,
                label_anchor,
                count: l.count(),
                new: l.is_new(now),
                gone: l.gone_at.is_some(),
                describe,
            })
        })
        .collect::<Vec<_>>();
    Drawing {
        frames,
        nodes,
        all_labels: links.len() <= LABEL_LIMIT,
        links,
        width,
        height,
    }
}

/// How many characters of a node's name its box shows.
pub const TITLE_CHARS: usize = 20;

/// `text` cut to `chars` characters, the last an ellipsis when it was longer.
pub fn fit(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(chars.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// How a link runs: between columns (left to right or back), out of a column's right side and
/// back into it, or from a process to itself.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    Across,
    SameColumn,
    Loop,
}

/// A link's two ends (on the client's box, on the server's) and how it runs between them.
type Ends = ((f64, f64), (f64, f64), Shape);

/// The link ends meeting one side of a box: (the other end's height, the link, whether this is
/// its start).
type SideEnds<'a> = Vec<(f64, &'a LinkKey, bool)>;

/// Where each shown link leaves its client's box and enters its server's: on the side facing
/// the other end (the right side for links within a column), the links meeting one side spread
/// along it in the order of their other ends' heights, so that they neither cross at the box
/// nor pile their arrowheads on one point.
fn attachments(live: &Live, layout: &Layout, shown: &Shown) -> HashMap<LinkKey, Ends> {
    // (node, right side?) → (the other end's centre height, link, its start?)
    let mut sides: HashMap<(&str, bool), SideEnds<'_>> = HashMap::new();
    let mut shapes: HashMap<&LinkKey, Shape> = HashMap::new();
    for key in &shown.links {
        let Some(l) = live.links.get(key) else {
            continue;
        };
        let (Some(a), Some(b)) = (layout.position(&l.from), layout.position(&l.to)) else {
            continue;
        };
        let shape = if l.from == l.to {
            Shape::Loop
        } else if layout.column(&l.from) == layout.column(&l.to) {
            Shape::SameColumn
        } else {
            Shape::Across
        };
        if shape == Shape::Loop {
            // Out of its right side and back in, at two neighbouring points of it.
            let side = sides.entry((&l.from, true)).or_default();
            side.push((a.1 - 0.5, key, true));
            side.push((a.1 + 0.5, key, false));
            shapes.insert(key, shape);
            continue;
        }
        let rightwards = b.0 > a.0;
        let (from_right, to_right) = match shape {
            Shape::Across => (rightwards, !rightwards),
            _ => (true, true),
        };
        sides
            .entry((&l.from, from_right))
            .or_default()
            .push((b.1, key, true));
        sides
            .entry((&l.to, to_right))
            .or_default()
            .push((a.1, key, false));
        shapes.insert(key, shape);
    }
    let mut points: HashMap<&LinkKey, [Option<(f64, f64)>; 2]> = HashMap::new();
    for ((id, right), mut list) in sides {
        let Some((x, y)) = layout.position(id) else {
            continue;
        };
        list.sort_by(|p, q| p.0.total_cmp(&q.0).then_with(|| p.1.cmp(q.1)));
        let n = list.len() as f64;
        for (i, (_, key, start)) in list.into_iter().enumerate() {
            let at = (
                if right { x + NODE_W } else { x },
                y + 6.0 + (NODE_H - 12.0) * (i as f64 + 0.5) / n,
            );
            points.entry(key).or_default()[usize::from(!start)] = Some(at);
        }
    }
    let mut out = HashMap::new();
    for (key, shape) in shapes {
        let ends = match points.get(key) {
            Some([Some(s), Some(e)]) => (*s, *e),
            _ => continue,
        };
        out.insert(key.clone(), (ends.0, ends.1, shape));
    }
    out
}

/// The path from `s` (on the client's box) to `e` (on the server's), where its label goes and
/// how it hangs there: between columns a horizontal S (label centred on its middle); within a
/// column a bulge to the right and from a process to itself a loop (labels right of them, in
/// the gap between columns).
fn curve(s: (f64, f64), e: (f64, f64), shape: Shape) -> (String, (f64, f64), &'static str) {
    let (p1, p2) = match shape {
        Shape::Loop => ((s.0 + 40.0, s.1 - 24.0), (e.0 + 40.0, e.1 + 24.0)),
        Shape::SameColumn => {
            let bulge = 36.0 + (e.1 - s.1).abs() * 0.1;
            ((s.0 + bulge, s.1), (e.0 + bulge, e.1))
        }
        Shape::Across => {
            let dx = ((e.0 - s.0) / 2.0).abs().max(30.0) * (e.0 - s.0).signum();
            ((s.0 + dx, s.1), (e.0 - dx, e.1))
        }
    };
    let mut at = (
        (s.0 + 3.0 * p1.0 + 3.0 * p2.0 + e.0) / 8.0,
        (s.1 + 3.0 * p1.1 + 3.0 * p2.1 + e.1) / 8.0,
    );
    let anchor = if shape == Shape::Across {
        "middle"
    } else {
        at.0 += 6.0;
        at.1 += 4.0;
        "start"
    };
    let d = format!(
        "M{:.1} {:.1}C{:.1} {:.1} {:.1} {:.1} {:.1} {:.1}",
        s.0, s.1, p1.0, p1.1, p2.0, p2.1, e.0, e.1
    );
    (d, at, anchor)
}

/// The node the arrow key `key` leads to from `from`: the nearest node whose centre lies in
/// that direction (within 45° of it), nearer along the key's axis first.
pub fn neighbour(drawing: &Drawing, from: &str, key: &str) -> Option<String> {
    let here = drawing.nodes.iter().find(|n| n.id == from)?;
    let (dx, dy): (f64, f64) = match key {
        "ArrowRight" => (1.0, 0.0),
        "ArrowLeft" => (-1.0, 0.0),
        "ArrowDown" => (0.0, 1.0),
        "ArrowUp" => (0.0, -1.0),
        _ => return None,
    };
    drawing
        .nodes
        .iter()
        .filter(|n| n.id != from)
        .filter_map(|n| {
            let (vx, vy) = (n.x - here.x, n.y - here.y);
            let along = vx * dx + vy * dy;
            let across = (vx * dy - vy * dx).abs();
            (along > 0.0 && across <= along).then_some((along + 2.0 * across, n))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| n.id.clone())
}

/// The connections a link stands for, from the client's side (the sockets the client holds),
/// among `sockets` (one host's): the client's TCP connections to the link's ports, and — to a
/// local server — only those whose local port is one a socket of the server is connected to;
/// to a remote address, only those to that address. An incoming link from a remote address is
/// listed from the server's side: its connections from that address on the link's ports. The
/// hidden owners' side cannot be read: their links are listed from the other end.
pub fn connections<'a>(
    link: &Link,
    nodes: &BTreeMap<String, GraphNode>,
    sockets: impl Iterator<Item = &'a Socket> + Clone,
) -> Vec<&'a Socket> {
    let connected = |s: &&Socket| {
        s.proto == Proto::Tcp
            && matches!(
                s.state,
                SocketState::Established | SocketState::SynSent | SocketState::SynRecv
            )
    };
    let node = |id: &str| nodes.get(id);
    let pid = |id: &str| node(id).and_then(|n| n.pid);
    let addr = |id: &str| node(id).and_then(|n| n.addr);
    let canon = |a: IpAddr| a.to_canonical();
    let on_port = |p: Option<u16>| p.is_some_and(|p| link.ports.iter().any(|(q, _)| *q == p));
    let mut out: Vec<&Socket> = match (
        pid(&link.from),
        pid(&link.to),
        addr(&link.from),
        addr(&link.to),
    ) {
        // Process → remote address.
        (Some(client), _, _, Some(far)) => sockets
            .filter(connected)
            .filter(|s| s.pids.contains(&client) && on_port(s.remote_port))
            .filter(|s| s.remote_addr.map(canon) == Some(canon(far)))
            .collect(),
        // Remote address → this machine's server.
        (_, Some(server), Some(far), _) => sockets
            .filter(connected)
            .filter(|s| s.pids.contains(&server) && on_port(Some(s.local_port)))
            .filter(|s| s.remote_addr.map(canon) == Some(canon(far)))
            .collect(),
        // Process → process: the client's ends whose local port the server's ends point to.
        (Some(client), Some(server), _, _) => {
            let peers: HashSet<u16> = sockets
                .clone()
                .filter(connected)
                .filter(|s| s.pids.contains(&server) && on_port(Some(s.local_port)))
                .filter_map(|s| s.remote_port)
                .collect();
            sockets
                .filter(connected)
                .filter(|s| s.pids.contains(&client) && on_port(s.remote_port))
                .filter(|s| peers.contains(&s.local_port))
                .collect()
        }
        // Process → hidden owners: the client's ends to those ports.
        (Some(client), None, _, None) => sockets
            .filter(connected)
            .filter(|s| s.pids.contains(&client) && on_port(s.remote_port))
            .collect(),
        // Hidden owners → process: the server's ends on those ports.
        (None, Some(server), None, _) => sockets
            .filter(connected)
            .filter(|s| s.pids.contains(&server) && on_port(Some(s.local_port)))
            .collect(),
        _ => Vec::new(),
    };
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out.dedup_by(|a, b| a.id == b.id);
    out
}
