//! Tests of the map's model: the live graph (links merged per pair, new, fading, gone), the
//! filter, the layout's stability (a property: through any sequence of nodes arriving and
//! leaving, a node that stays never moves, and no two boxes ever overlap), its readability at
//! 50 processes and 500 edges, and the connections listed for a link against sockets written
//! out by hand.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use portscope_shared::{
    Family, Graph, GraphEdge, GraphNode, GraphNodeKind, OwnerStatus, Proto, Socket, SocketState,
};
use proptest::prelude::*;

use super::*;

fn process(pid: u32, name: &str, project: Option<&str>) -> GraphNode {
    GraphNode {
        id: format!("p{pid}"),
        kind: GraphNodeKind::Process,
        label: name.to_owned(),
        pid: Some(pid),
        project: project.map(str::to_owned),
        addr: None,
        name: None,
    }
}

fn remote(addr: &str) -> GraphNode {
    GraphNode {
        id: format!("r{addr}"),
        kind: GraphNodeKind::Remote,
        label: addr.to_owned(),
        pid: None,
        project: None,
        addr: Some(addr.parse().unwrap()),
        name: None,
    }
}

fn edge(from: &str, to: &str, port: u16, count: usize) -> GraphEdge {
    GraphEdge {
        from: from.to_owned(),
        to: to.to_owned(),
        port,
        count,
    }
}

fn graph(nodes: Vec<GraphNode>, edges: Vec<GraphEdge>) -> Graph {
    Graph { nodes, edges }
}

fn key(a: &str, b: &str) -> LinkKey {
    (a.to_owned(), b.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Live

#[test]
fn edges_of_one_pair_make_one_link_with_each_port() {
    let mut live = Live::default();
    live.receive(
        &graph(
            vec![
                process(1, "api", Some("shop")),
                process(2, "postgres", None),
                remote("203.0.113.9"),
            ],
            vec![
                edge("p1", "p2", 5432, 3),
                edge("p1", "p2", 6379, 1),
                edge("p1", "r203.0.113.9", 443, 2),
            ],
        ),
        1000.0,
    );
    let link = &live.links[&key("p1", "p2")];
    assert_eq!(link.ports, vec![(5432, 3), (6379, 1)]);
    assert_eq!(
        (link.count(), link.label().as_str()),
        (4, ":5432 ×3, :6379")
    );
    assert_eq!(live.links.len(), 2);
    // The first graph is what was there: nothing in it is new.
    assert!(live.links.values().all(|l| !l.is_new(1000.0)));
}

#[test]
fn links_appear_new_then_fade_out_and_leave_with_their_nodes() {
    let nodes = vec![
        process(1, "curl", None),
        process(2, "nginx", None),
        process(3, "psql", None),
    ];
    let mut live = Live::default();
    live.receive(&graph(nodes.clone(), vec![edge("p1", "p2", 80, 1)]), 0.0);
    live.receive(
        &graph(
            nodes.clone(),
            vec![edge("p1", "p2", 80, 1), edge("p3", "p2", 80, 1)],
        ),
        1000.0,
    );
    let fresh = &live.links[&key("p3", "p2")];
    assert!(fresh.is_new(1000.0) && fresh.is_new(1000.0 + NEW_MS - 1.0));
    assert!(!fresh.is_new(1000.0 + NEW_MS));
    assert!(!live.links[&key("p1", "p2")].is_new(1000.0));

    // p1's connection closes: its link fades, p1 stays drawn while it does.
    live.receive(&graph(nodes.clone(), vec![edge("p3", "p2", 80, 1)]), 2000.0);
    assert_eq!(live.links[&key("p1", "p2")].gone_at, Some(2000.0));
    assert!(live.nodes.contains_key("p1"));
    assert!(!live.sweep(2000.0 + FADE_MS - 1.0));
    assert!(live.sweep(2000.0 + FADE_MS));
    assert!(!live.links.contains_key(&key("p1", "p2")));
    assert!(
        !live.nodes.contains_key("p1"),
        "a node without links leaves"
    );
    assert!(live.nodes.contains_key("p2") && live.nodes.contains_key("p3"));

    // p3's link goes and comes back before it faded out: live again, and new again.
    live.receive(&graph(nodes.clone(), vec![]), 3000.0);
    assert!(live.links[&key("p3", "p2")].gone_at.is_some());
    live.receive(&graph(nodes, vec![edge("p3", "p2", 80, 2)]), 4000.0);
    let back = &live.links[&key("p3", "p2")];
    assert_eq!((back.gone_at, back.since, back.count()), (None, 4000.0, 2));
}

#[test]
fn the_filter_matches_ports_and_pids_exactly_and_names_as_text() {
    let mut live = Live::default();
    live.receive(
        &graph(
            vec![
                process(80, "vite", Some("shop")),
                process(2, "api", Some("shop")),
                process(3, "postgres", None),
                remote("203.0.113.9"),
            ],
            vec![
                edge("p80", "p2", 8000, 1),
                edge("p2", "p3", 5432, 2),
                edge("p2", "r203.0.113.9", 8080, 1),
            ],
        ),
        0.0,
    );
    let links = |q: &str| live.shown(q).links;
    assert_eq!(
        links(""),
        vec![key("p2", "p3"), key("p2", "r203.0.113.9"), key("p80", "p2")]
    );
    // 80 is vite's pid: not a prefix of 8000 or 8080.
    assert_eq!(links("80"), vec![key("p80", "p2")]);
    assert_eq!(links("5432"), vec![key("p2", "p3")]);
    assert_eq!(links("POSTGRES"), vec![key("p2", "p3")]);
    assert_eq!(links("shop 5432"), vec![key("p2", "p3")]);
    assert_eq!(links("203.0.113"), vec![key("p2", "r203.0.113.9")]);
    assert_eq!(links("nothing"), Vec::<LinkKey>::new());
    // The Projects view's exact term: the project's links, with what they reach outside it.
    assert_eq!(
        links("project:shop"),
        vec![key("p2", "p3"), key("p2", "r203.0.113.9"), key("p80", "p2")]
    );
    assert_eq!(links("project:sho"), Vec::<LinkKey>::new(), "exactly");
    assert_eq!(links("project:shop 5432"), vec![key("p2", "p3")]);
    let shown = live.shown("5432");
    assert_eq!(
        shown.nodes,
        BTreeSet::from(["p2".to_owned(), "p3".to_owned()])
    );
}

// ---------------------------------------------------------------------------------------------
// Layout

fn boxes_overlap(a: (f64, f64), b: (f64, f64)) -> bool {
    a.0 < b.0 + NODE_W && b.0 < a.0 + NODE_W && a.1 < b.1 + NODE_H && b.1 < a.1 + NODE_H
}

/// Every placed node of `nodes` has a box, no two boxes overlap, no two frames overlap, and
/// each box lies inside its group's frame.
fn check_readable(layout: &Layout, nodes: &[Placing]) -> Result<(), String> {
    let mut at: Vec<(&str, (f64, f64))> = Vec::new();
    for n in nodes {
        let p = layout
            .position(&n.id)
            .ok_or(format!("{} not placed", n.id))?;
        at.push((&n.id, p));
    }
    for (i, (a, pa)) in at.iter().enumerate() {
        for (b, pb) in &at[i + 1..] {
            if boxes_overlap(*pa, *pb) {
                return Err(format!("{a} at {pa:?} overlaps {b} at {pb:?}"));
            }
        }
    }
    let all: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
    let live = live_of(nodes);
    let shown = Shown {
        nodes: all.iter().cloned().collect(),
        links: Vec::new(),
    };
    let drawing = draw(&live, layout, &shown, 0.0);
    for (i, a) in drawing.frames.iter().enumerate() {
        for b in &drawing.frames[i + 1..] {
            if a.x < b.x + b.width
                && b.x < a.x + a.width
                && a.y < b.y + b.height
                && b.y < a.y + a.height
            {
                return Err(format!("frames {} and {} overlap", a.title, b.title));
            }
        }
    }
    for n in nodes {
        let (x, y) = layout.position(&n.id).unwrap();
        let title = n.group.title();
        let inside = drawing.frames.iter().any(|f| {
            f.title == title
                && f.x <= x
                && x + NODE_W <= f.x + f.width
                && f.y <= y
                && y + NODE_H <= f.y + f.height
        });
        if !inside {
            return Err(format!(
                "{} at ({x}, {y}) is outside its group's frame",
                n.id
            ));
        }
    }
    if drawing.width
        < drawing
            .frames
            .iter()
            .map(|f| f.x + f.width)
            .fold(0.0, f64::max)
        || drawing.height
            < drawing
                .frames
                .iter()
                .map(|f| f.y + f.height)
                .fold(0.0, f64::max)
    {
        return Err("a frame runs past the picture's size".into());
    }
    Ok(())
}

/// A `Live` holding these nodes (for drawing frames), without links.
fn live_of(nodes: &[Placing]) -> Live {
    let mut live = Live::default();
    for n in nodes {
        let mut node = process(0, &n.label, None);
        node.id = n.id.clone();
        match &n.group {
            Group::Project(p) => node.project = Some(p.clone()),
            Group::Other => {}
            Group::Remote => node.kind = GraphNodeKind::Remote,
        }
        live.nodes.insert(n.id.clone(), node);
    }
    live
}

fn placing(id: &str, group: Group, serves: i64) -> Placing {
    Placing {
        id: id.to_owned(),
        group,
        label: id.to_owned(),
        serves,
    }
}

/// Node `i` of the universe the property draws from: eight groups, 60 nodes.
fn universe(i: usize) -> Placing {
    let group = match i % 8 {
        0 => Group::Remote,
        1 | 2 => Group::Other,
        g => Group::Project(format!("project-{g}")),
    };
    placing(&format!("n{i:02}"), group, (i % 5) as i64 - 2)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Through any sequence of node sets, a node that stays keeps its place, every node is
    /// placed, and no boxes or frames overlap.
    #[test]
    fn a_node_keeps_its_place_whatever_else_comes_or_goes(
        first in prop::collection::btree_set(0usize..60, 0..30),
        steps in prop::collection::vec(
            (prop::collection::btree_set(0usize..60, 0..12), prop::collection::btree_set(0usize..60, 0..12)),
            1..12,
        ),
        fit in 1usize..12,
    ) {
        let mut present: BTreeSet<usize> = first;
        let nodes = |set: &BTreeSet<usize>| set.iter().map(|&i| universe(i)).collect::<Vec<_>>();
        let mut layout = Layout::arrange(&nodes(&present), fit);
        check_readable(&layout, &nodes(&present)).map_err(TestCaseError::fail)?;
        // As wide as the plot's columns, however many groups: tiers go downwards.
        let widest = |fit: usize| 2.0 * MARGIN + fit as f64 * COL_PITCH + FRAME_PAD;
        prop_assert!(layout.size().0 <= widest(fit), "{:?} wider than {fit} columns", layout.size());
        for (add, remove) in steps {
            let before: HashMap<usize, (f64, f64)> = present
                .iter()
                .map(|&i| (i, layout.position(&universe(i).id).unwrap()))
                .collect();
            for i in &remove {
                present.remove(i);
            }
            present.extend(add.iter().copied());
            layout.update(&nodes(&present));
            for (i, was) in &before {
                if present.contains(i) {
                    let now = layout.position(&universe(*i).id);
                    prop_assert_eq!(now, Some(*was), "node {} moved", i);
                }
            }
            for i in 0..60 {
                prop_assert_eq!(layout.position(&universe(i).id).is_some(), present.contains(&i));
            }
            prop_assert_eq!(layout.placed(), present.len());
            check_readable(&layout, &nodes(&present)).map_err(TestCaseError::fail)?;
            prop_assert!(layout.size().0 <= widest(fit), "{:?} wider than {fit} columns", layout.size());
        }
    }
}

#[test]
fn groups_wrap_into_tiers_in_a_narrow_plot_and_side_by_side_in_a_wide_one() {
    let nodes: Vec<Placing> = ["shop", "blog", "auth"]
        .iter()
        .enumerate()
        .map(|(i, p)| placing(&format!("p{i}"), Group::Project((*p).into()), 0))
        .collect();
    let tops = |layout: &Layout| -> Vec<f64> {
        let mut tops: Vec<f64> = nodes
            .iter()
            .map(|n| layout.position(&n.id).unwrap().1)
            .collect();
        tops.dedup();
        tops
    };
    assert_eq!(tops(&Layout::arrange(&nodes, 3)).len(), 1, "one tier");
    let narrow = Layout::arrange(&nodes, 1);
    assert_eq!(tops(&narrow).len(), 3, "a tier each");
    assert!(narrow.size().0 <= 2.0 * MARGIN + COL_PITCH + FRAME_PAD);
    // A layout never arranged has no width to keep to: side by side.
    let mut unarranged = Layout::default();
    unarranged.update(&nodes);
    assert_eq!(tops(&unarranged).len(), 1);
    check_readable(&unarranged, &nodes).unwrap();
}

#[test]
fn an_unrelated_arrival_moves_nothing_spelled_out() {
    let start = vec![
        placing("p1", Group::Project("shop".into()), -3),
        placing("p2", Group::Project("shop".into()), 3),
        placing("p3", Group::Other, 1),
    ];
    let mut layout = Layout::arrange(&start, 8);
    let before: Vec<_> = start.iter().map(|n| layout.position(&n.id)).collect();
    let mut more = start.clone();
    // A new project, a new remote address and a node of an existing group, all at once.
    more.push(placing("p9", Group::Project("blog".into()), 0));
    more.push(placing("r1", Group::Remote, 5));
    more.push(placing("p4", Group::Project("shop".into()), -9));
    layout.update(&more);
    let after: Vec<_> = start.iter().map(|n| layout.position(&n.id)).collect();
    assert_eq!(before, after);
    check_readable(&layout, &more).unwrap();
    // p3 leaves: the others stay; a new shop process may take a free slot, never p1's or p2's.
    more.retain(|n| n.id != "p3");
    layout.update(&more);
    assert_eq!(layout.position("p1"), before[0]);
    assert_eq!(layout.position("p2"), before[1]);
    assert_eq!(layout.position("p3"), None);
}

#[test]
fn clients_are_arranged_left_of_their_servers() {
    let nodes = vec![
        placing("db", Group::Project("data".into()), 10),
        placing("web", Group::Project("front".into()), -10),
        placing("api", Group::Project("back".into()), 0),
    ];
    let layout = Layout::arrange(&nodes, 8);
    let x = |id: &str| layout.position(id).unwrap().0;
    assert!(x("web") < x("api") && x("api") < x("db"));
}

/// A machine of 50 processes in 7 projects (and none), talking to each other and to 20 remote
/// addresses over 500 client → server port pairs.
fn busy_graph() -> Graph {
    let mut nodes = Vec::new();
    for pid in 1..=50u32 {
        let project = match pid % 8 {
            0 => None,
            n => Some(format!("project-{n}")),
        };
        nodes.push(process(
            1000 + pid,
            &format!("server-{pid}"),
            project.as_deref(),
        ));
    }
    for r in 0..20 {
        nodes.push(remote(&format!("198.51.100.{r}")));
    }
    let mut edges = Vec::new();
    let mut seed = 7u64;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut seen = BTreeSet::new();
    while edges.len() < 500 {
        let from = 1001 + next(50) as u32;
        let (to, port) = if next(5) == 0 {
            (format!("r198.51.100.{}", next(20)), 443)
        } else {
            let to = 1001 + next(50) as u32;
            (
                format!("p{to}"),
                3000 + (to % 50) as u16 + 100 * next(2) as u16,
            )
        };
        if seen.insert((from, to.clone(), port)) {
            edges.push(edge(&format!("p{from}"), &to, port, 1 + next(4) as usize));
        }
    }
    graph(nodes, edges)
}

#[test]
fn fifty_processes_and_five_hundred_edges_stay_readable() {
    let g = busy_graph();
    let mut live = Live::default();
    live.receive(&g, 0.0);
    let shown = live.shown("");
    let nodes = super::placing(&live, &shown);
    let ends: BTreeSet<&str> = g
        .edges
        .iter()
        .flat_map(|e| [e.from.as_str(), e.to.as_str()])
        .collect();
    assert_eq!(nodes.len(), ends.len());
    assert!(nodes.len() >= 65, "{}", nodes.len());
    // A plot about 1 300 px wide holds 5 columns.
    let layout = Layout::arrange(&nodes, 5);
    check_readable(&layout, &nodes).unwrap();
    let drawing = draw(&live, &layout, &shown, 0.0);
    assert_eq!(drawing.nodes.len(), nodes.len());
    assert!(
        drawing.links.len() <= 500 && drawing.links.len() > 300,
        "{}",
        drawing.links.len()
    );
    // Too many to label them all: labels follow the focus.
    assert!(!drawing.all_labels);
    // Eight groups, each a band of its own; no band taller than the tallest group needs.
    assert_eq!(drawing.frames.len(), 9);
    assert!(
        drawing.height < 2.0 * MARGIN + BAND_HEAD + 21.0 * ROW_PITCH,
        "{}",
        drawing.height
    );
    // Every path starts on its client's box and ends on its server's, each at a point of its
    // own (links meeting a side spread along it).
    let mut points = BTreeSet::new();
    for l in &drawing.links {
        let at = |id: &str| {
            drawing
                .nodes
                .iter()
                .find(|n| n.id == id)
                .map(|n| (n.x, n.y))
                .unwrap()
        };
        let (a, b) = (at(&l.key.0), at(&l.key.1));
        let numbers: Vec<f64> = l.d[1..]
            .split([' ', 'C'])
            .map(|n| n.parse().unwrap())
            .collect();
        let (start, end) = ((numbers[0], numbers[1]), (numbers[6], numbers[7]));
        let on_side = |p: (f64, f64), b: (f64, f64)| {
            ((p.0 - b.0).abs() < 0.1 || (p.0 - b.0 - NODE_W).abs() < 0.1)
                && p.1 >= b.1 - 0.1
                && p.1 <= b.1 + NODE_H + 0.1
        };
        assert!(
            on_side(start, a) && on_side(end, b),
            "{l:?} from {a:?} to {b:?}"
        );
        for p in [start, end] {
            let p = ((p.0 * 10.0) as i64, (p.1 * 10.0) as i64);
            assert!(points.insert(p), "two links meet a box at one point {p:?}");
        }
    }
}

#[test]
fn few_links_are_all_labelled() {
    let mut live = Live::default();
    live.receive(
        &graph(
            vec![process(1, "a", None), process(2, "b", None)],
            vec![edge("p1", "p2", 8000, 2)],
        ),
        0.0,
    );
    let shown = live.shown("");
    let layout = Layout::arrange(&super::placing(&live, &shown), 4);
    let d = draw(&live, &layout, &shown, 0.0);
    assert!(d.all_labels);
    assert_eq!(d.links[0].label, ":8000 ×2");
    assert_eq!(
        d.links[0].describe,
        "a (pid 1) → b (pid 2) :8000 ×2: 2 connections"
    );
    assert_eq!(d.nodes[0].describe, "a pid 1");
}

#[test]
fn arrow_keys_go_to_the_nearest_node_that_way() {
    let nodes: Vec<Placing> = (0..12)
        .map(|i| placing(&format!("n{i:02}"), Group::Other, 0))
        .collect();
    // One band of two columns and six rows: n00 n01 / n02 n03 / …
    let layout = Layout::arrange(&nodes, 2);
    let live = live_of(&nodes);
    let shown = Shown {
        nodes: nodes.iter().map(|n| n.id.clone()).collect(),
        links: Vec::new(),
    };
    let d = draw(&live, &layout, &shown, 0.0);
    let go = |from: &str, key: &str| neighbour(&d, from, key);
    assert_eq!(go("n00", "ArrowRight").as_deref(), Some("n01"));
    assert_eq!(go("n00", "ArrowDown").as_deref(), Some("n02"));
    assert_eq!(go("n03", "ArrowLeft").as_deref(), Some("n02"));
    assert_eq!(go("n03", "ArrowUp").as_deref(), Some("n01"));
    assert_eq!(go("n00", "ArrowUp"), None);
    assert_eq!(go("n01", "ArrowRight"), None);
    assert_eq!(go("n00", "Enter"), None);
}

// ---------------------------------------------------------------------------------------------
// A link's connections

fn tcp(
    id: &str,
    local: (&str, u16),
    remote: Option<(&str, u16)>,
    state: SocketState,
    pid: u32,
) -> Socket {
    Socket {
        id: id.to_owned(),
        proto: Proto::Tcp,
        family: Family::Ipv4,
        local_addr: local.0.parse().unwrap(),
        local_port: local.1,
        remote_addr: remote.map(|r| r.0.parse::<IpAddr>().unwrap()),
        remote_port: remote.map(|r| r.1),
        state,
        pids: vec![pid],
        uid: Some(1000),
        owner: OwnerStatus::Known,
        exposure: None,
        service: None,
        app: None,
        risk: None,
        http: false,
        host: None,
        health: None,
    }
}

#[test]
fn a_links_connections_are_its_clients_ends() {
    use SocketState::{Established, Listen, TimeWait};
    let lo = "127.0.0.1";
    let sockets = vec![
        tcp("listen", (lo, 8000), None, Listen, 2),
        // client 1 → server 2 on 8000, twice
        tcp("c1a", (lo, 40001), Some((lo, 8000)), Established, 1),
        tcp("s2a", (lo, 8000), Some((lo, 40001)), Established, 2),
        tcp("c1b", (lo, 40002), Some((lo, 8000)), Established, 1),
        tcp("s2b", (lo, 8000), Some((lo, 40002)), Established, 2),
        // client 1 → another server (pid 3) also on port 8000, at another address
        tcp(
            "c1c",
            ("10.0.0.5", 40003),
            Some(("10.0.0.9", 8000)),
            Established,
            1,
        ),
        tcp(
            "s3",
            ("10.0.0.9", 8000),
            Some(("10.0.0.5", 40003)),
            Established,
            3,
        ),
        // a closed one: not a connection any more
        tcp("c1d", (lo, 40004), Some((lo, 8000)), TimeWait, 1),
        // client 1 → the internet, and the internet → server 2
        tcp(
            "c1e",
            ("10.0.0.5", 40005),
            Some(("203.0.113.9", 443)),
            Established,
            1,
        ),
        tcp(
            "s2c",
            ("10.0.0.5", 8000),
            Some(("198.51.100.7", 50000)),
            Established,
            2,
        ),
    ];
    let nodes: BTreeMap<String, GraphNode> = [
        process(1, "curl", None),
        process(2, "api", None),
        process(3, "other", None),
        remote("203.0.113.9"),
        remote("198.51.100.7"),
    ]
    .into_iter()
    .map(|n| (n.id.clone(), n))
    .collect();
    let link = |from: &str, to: &str, port: u16| Link {
        from: from.into(),
        to: to.into(),
        ports: vec![(port, 1)],
        since: 0.0,
        gone_at: None,
    };
    let ids = |l: Link| -> Vec<String> {
        connections(&l, &nodes, sockets.iter())
            .into_iter()
            .map(|s| s.id.clone())
            .collect()
    };
    assert_eq!(ids(link("p1", "p2", 8000)), ["c1a", "c1b"]);
    assert_eq!(ids(link("p1", "p3", 8000)), ["c1c"]);
    assert_eq!(ids(link("p1", "r203.0.113.9", 443)), ["c1e"]);
    assert_eq!(ids(link("r198.51.100.7", "p2", 8000)), ["s2c"]);
    assert_eq!(ids(link("p1", "p2", 9999)), Vec::<String>::new());
}

#[test]
fn a_long_name_is_cut_in_its_box_and_whole_in_its_name() {
    let mut live = Live::default();
    let long = "a-very-long-process-name-indeed";
    live.receive(
        &graph(
            vec![process(7, long, Some("shop")), remote("2001:db8::1")],
            vec![edge("p7", "r2001:db8::1", 443, 1)],
        ),
        0.0,
    );
    let shown = live.shown("");
    let layout = Layout::arrange(&super::placing(&live, &shown), 4);
    let d = draw(&live, &layout, &shown, 0.0);
    let node = d.nodes.iter().find(|n| n.id == "p7").unwrap();
    assert_eq!(node.title, "a-very-long-process…");
    assert_eq!(node.title.chars().count(), TITLE_CHARS);
    // What the box shows comes first in its accessible name, then the whole name.
    assert_eq!(
        node.describe,
        format!("a-very-long-process… pid 7, {long}, project shop")
    );
    let far = d.nodes.iter().find(|n| n.id == "r2001:db8::1").unwrap();
    assert_eq!(far.describe, "2001:db8::1 remote address");
    assert_eq!(fit("short", 20), "short");
}

#[test]
fn a_remote_address_the_hosts_file_names_shows_its_name_over_its_address() {
    let mut live = Live::default();
    let named = GraphNode {
        name: Some("api.internal".into()),
        ..remote("192.0.2.8")
    };
    assert_eq!(node_name(&named), "api.internal (192.0.2.8)");
    live.receive(
        &graph(
            vec![process(7, "curl", None), named],
            vec![edge("p7", "r192.0.2.8", 443, 1)],
        ),
        0.0,
    );
    let layout = Layout::arrange(&super::placing(&live, &live.shown("")), 4);
    let d = draw(&live, &layout, &live.shown(""), 0.0);
    let far = d.nodes.iter().find(|n| n.id == "r192.0.2.8").unwrap();
    assert_eq!(
        (far.title.as_str(), far.describe.as_str()),
        ("api.internal", "api.internal 192.0.2.8")
    );
    assert!(
        live.shown("API.INTERNAL").nodes.contains("r192.0.2.8"),
        "the filter finds it by name"
    );
}
