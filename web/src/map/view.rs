//! The Map tab (wasm32 only): the agent's graph fetched again when the host's stream moves on
//! (at most once per [`REFETCH_MS`], only while the tab shows), followed by the model's
//! [`Live`], laid out by its [`Layout`] and drawn as SVG — the page around it through Leptos,
//! the drawing's frames, links (under the nodes) and nodes kept in step with the model by
//! [`sync`], each link and node a `role="button"` element with its accessible name and
//! `<title>`.
//! Nodes and links are each one tab stop (arrow keys move between nodes, and along the links);
//! hovering or focusing a node or link highlights it with its neighbours (and shows the labels
//! of a busy map). A click on a node opens its process in the Sockets view; on a link, the list
//! of its connections ([`LinkDetail`]).
//!
//! The time from a new drawing to the browser having laid it out is on `#panel-map` as
//! `data-render-ms` (with `data-render-links`, and `data-render-n` counting the drawings), the
//! last fetch's as `data-fetch-ms`.

use std::time::Duration;

use leptos::html;
use leptos::prelude::*;
use portscope_shared::{Graph, GraphNodeKind};
use wasm_bindgen::JsCast;

use super::{
    COL_PITCH, Drawing, Layout, LinkKey, Live, MARGIN, NODE_H, NODE_W, connections, draw, fit,
    neighbour, node_name, placing,
};
use crate::api;
use crate::conn::clock;
use crate::table::Table;

/// The shortest time between two fetches of the graph: deltas come every tick, and the map
/// need not redraw more often than a person can follow.
const REFETCH_MS: f64 = 1000.0;

/// What the map shows and what it points at, shared with the page.
#[derive(Clone, Copy, Debug)]
pub struct MapState {
    pub live: RwSignal<Live>,
    /// The link whose connections are listed.
    pub picked: RwSignal<Option<LinkKey>>,
    /// Why the graph could not be fetched, while it cannot.
    pub note: RwSignal<Option<String>>,
    /// Bumped by "Tidy up": lays the map out afresh.
    pub tidy: RwSignal<u64>,
    pub fetch_ms: RwSignal<Option<f64>>,
}

impl Default for MapState {
    fn default() -> Self {
        Self::new()
    }
}

impl MapState {
    pub fn new() -> Self {
        Self {
            live: RwSignal::new(Live::default()),
            picked: RwSignal::new(None),
            note: RwSignal::new(None),
            tidy: RwSignal::new(0),
            fetch_ms: RwSignal::new(None),
        }
    }
}

/// Keeps `state.live` in step with the graph of `host` (`None`: this agent's) while `active`:
/// fetched when the tab opens and whenever that host's stream moved on, at most once per
/// [`REFETCH_MS`] (a change during a fetch or the pause is fetched once after it).
pub fn keep_graph(
    state: MapState,
    table: RwSignal<Table>,
    host: Memo<Option<String>>,
    active: Signal<bool>,
) {
    let seq =
        Memo::new(move |_| host.with(|h| table.with(|t| t.host(h.as_deref()).map(|p| p.seq))));
    let tick = RwSignal::new(0u64);
    let last = StoredValue::new(f64::NEG_INFINITY);
    let busy = StoredValue::new(false);
    let again = StoredValue::new(false);
    let scheduled = StoredValue::new(false);
    let followed = StoredValue::new(None::<Option<String>>);
    Effect::new(move |_| {
        seq.track();
        tick.track();
        let h = host.get();
        if !active.get() {
            return;
        }
        if followed.get_value().as_ref() != Some(&h) {
            followed.set_value(Some(h.clone()));
            state.live.update(Live::clear);
            state.picked.set(None);
        }
        if busy.get_value() {
            again.set_value(true);
            return;
        }
        let wait = last.get_value() + REFETCH_MS - clock();
        if wait > 0.0 {
            if !scheduled.get_value() {
                scheduled.set_value(true);
                set_timeout(
                    move || {
                        scheduled.set_value(false);
                        tick.update(|t| *t += 1);
                    },
                    Duration::from_millis(wait.ceil() as u64),
                );
            }
            return;
        }
        busy.set_value(true);
        let started = clock();
        last.set_value(started);
        let path = api::on_host("/api/v1/graph", h.as_deref());
        leptos::task::spawn_local(async move {
            let answer = api::get::<Graph>(&path).await;
            busy.set_value(false);
            if followed.get_value().as_ref() == Some(&h) {
                match answer {
                    Ok(graph) => {
                        state.fetch_ms.set(Some(clock() - started));
                        state.note.set(None);
                        let now = js_sys::Date::now();
                        state.live.update(|l| l.receive(&graph, now));
                    }
                    Err(e) => state
                        .note
                        .set(Some(format!("The map could not be read: {e}"))),
                }
            }
            if again.get_value() {
                again.set_value(false);
                tick.update(|t| *t += 1);
            }
        });
    });
    // Links that closed fade out and leave even when nothing else changes.
    set_interval(
        move || {
            if active.get_untracked()
                && state
                    .live
                    .with_untracked(|l| l.links.values().any(|l| l.gone_at.is_some()))
            {
                let now = js_sys::Date::now();
                state.live.maybe_update(|l| l.sweep(now));
            }
        },
        Duration::from_millis(500),
    );
}

/// What the pointer or the keyboard is on: a node (by id) or a link.
#[derive(Clone, Debug, PartialEq)]
enum Focus {
    Node(String),
    Link(LinkKey),
}

/// A CSS string for an attribute selector (ids carry colons and dots; quotes escaped anyway).
fn css_string(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

fn link_id(key: &LinkKey) -> String {
    format!("{}>{}", key.0, key.1)
}

fn find_in_map(selector: &str) -> Option<web_sys::Element> {
    document()
        .query_selector(&format!("#map-svg {selector}"))
        .ok()
        .flatten()
}

fn node_el(id: &str) -> Option<web_sys::Element> {
    find_in_map(&format!(".node[data-id=\"{}\"]", css_string(id)))
}

fn link_el(key: &LinkKey) -> Option<web_sys::Element> {
    find_in_map(&format!(
        ".link[data-key=\"{}\"]",
        css_string(&link_id(key))
    ))
}

fn set_stop(el: Option<web_sys::Element>, stop: bool) {
    if let Some(el) = el {
        let _ = el.set_attribute("tabindex", if stop { "0" } else { "-1" });
    }
}

fn focus_el(el: Option<web_sys::Element>) {
    if let Some(el) = el.and_then(|e| e.dyn_into::<web_sys::SvgElement>().ok()) {
        let _ = el.focus();
    }
}

/// Marks `focus` and what it touches with `hl` (and the SVG with `focusing`, which dims the
/// rest), after taking the marks off everything else.
fn highlight(focus: Option<&Focus>) {
    let Some(svg) = document().get_element_by_id("map-svg") else {
        return;
    };
    if let Ok(marked) = svg.query_selector_all(".hl") {
        for i in 0..marked.length() {
            if let Some(el) = marked
                .item(i)
                .and_then(|n| n.dyn_into::<web_sys::Element>().ok())
            {
                let _ = el.class_list().remove_1("hl");
            }
        }
    }
    let _ = svg
        .class_list()
        .toggle_with_force("focusing", focus.is_some());
    let mark = |selector: &str| {
        if let Ok(found) = svg.query_selector_all(selector) {
            for i in 0..found.length() {
                if let Some(el) = found
                    .item(i)
                    .and_then(|n| n.dyn_into::<web_sys::Element>().ok())
                {
                    let _ = el.class_list().add_1("hl");
                }
            }
        }
    };
    match focus {
        Some(Focus::Node(id)) => {
            let id = css_string(id);
            mark(&format!(".node[data-id=\"{id}\"]"));
            if let Ok(links) = svg.query_selector_all(&format!(
                ".link[data-from=\"{id}\"], .link[data-to=\"{id}\"]"
            )) {
                for i in 0..links.length() {
                    let Some(el) = links
                        .item(i)
                        .and_then(|n| n.dyn_into::<web_sys::Element>().ok())
                    else {
                        continue;
                    };
                    let _ = el.class_list().add_1("hl");
                    for end in ["data-from", "data-to"] {
                        if let Some(other) = el.get_attribute(end) {
                            mark(&format!(".node[data-id=\"{}\"]", css_string(&other)));
                        }
                    }
                }
            }
        }
        Some(Focus::Link(key)) => {
            mark(&format!(
                ".link[data-key=\"{}\"]",
                css_string(&link_id(key))
            ));
            mark(&format!(".node[data-id=\"{}\"]", css_string(&key.0)));
            mark(&format!(".node[data-id=\"{}\"]", css_string(&key.1)));
        }
        None => {}
    }
}

/// The element an event reached, as a node id or a link key.
fn target_of(e: &web_sys::Event) -> Option<Focus> {
    let el = e.target()?.dyn_into::<web_sys::Element>().ok()?;
    if let Some(node) = el.closest(".node").ok().flatten() {
        return node.get_attribute("data-id").map(Focus::Node);
    }
    let link = el.closest(".link").ok().flatten()?;
    Some(Focus::Link((
        link.get_attribute("data-from")?,
        link.get_attribute("data-to")?,
    )))
}

/// The table row to open for a process of `host`: its first listener, else its first socket.
/// The row a process opens in the table: its first listener, else its first socket.
pub(crate) fn row_of(t: &Table, host: Option<&str>, pid: u32) -> Option<String> {
    let mut rows: Vec<_> = t
        .rows
        .values()
        .filter(|r| {
            r.closed_at.is_none()
                && r.socket.host.as_deref() == host
                && r.socket.pids.contains(&pid)
        })
        .collect();
    rows.sort_by_key(|r| (!r.socket.is_listening(), r.socket.local_port, r.key.clone()));
    rows.first().map(|r| r.key.clone())
}

/// The elements the map drew, by what they show, per group of the SVG.
#[derive(Default)]
struct Kept {
    frames: Vec<(String, web_sys::Element)>,
    links: Vec<(String, web_sys::Element)>,
    nodes: Vec<(String, web_sys::Element)>,
}

/// Keeps `parent`'s children in step with `items` (what each shows, as a key, and how to build
/// it): an element whose key is still drawn stays in place untouched — its animation runs on,
/// it keeps the focus —, the others go, and the new ones are built and appended. Written by
/// hand rather than as two keyed `For`s of Leptos views: with them the 500-link map took a
/// median of 65–100 ms to draw from scratch on a machine busy with other builds, with this
/// about 60 ms, and the bundle is 4.6 KB (gzip) smaller.
fn sync<F>(
    parent: &web_sys::Element,
    kept: &mut Vec<(String, web_sys::Element)>,
    items: impl Iterator<Item = (String, F)>,
) where
    F: FnOnce() -> Option<web_sys::Element>,
{
    // An element removed from its group (the tab was hidden and shown) is rebuilt.
    kept.retain(|(_, el)| {
        el.parent_node()
            .is_some_and(|p| p.is_same_node(Some(parent)))
    });
    let mut old: std::collections::HashMap<String, web_sys::Element> = kept.drain(..).collect();
    for (key, build) in items {
        match old.remove(&key) {
            Some(el) => kept.push((key, el)),
            None => {
                if let Some(el) = build() {
                    let _ = parent.append_child(&el);
                    kept.push((key, el));
                }
            }
        }
    }
    for el in old.into_values() {
        el.remove();
    }
}

/// An SVG element with its attributes. Text goes in through `set_text_content`, never as
/// markup: process names are anyone's text.
fn svg_el(tag: &str, attrs: &[(&str, &str)]) -> Option<web_sys::Element> {
    let el = document()
        .create_element_ns(Some("http://www.w3.org/2000/svg"), tag)
        .ok()?;
    for (name, value) in attrs {
        let _ = el.set_attribute(name, value);
    }
    Some(el)
}

fn with_text(el: web_sys::Element, text: &str) -> web_sys::Element {
    el.set_text_content(Some(text));
    el
}

fn append(parent: &web_sys::Element, children: &[Option<web_sys::Element>]) {
    for child in children.iter().flatten() {
        let _ = parent.append_child(child);
    }
}

/// A group's frame and heading.
fn frame_element(f: &super::Frame) -> Option<web_sys::Element> {
    let g = svg_el(
        "g",
        &[("class", if f.remote { "frame remote" } else { "frame" })],
    )?;
    let n = |v: f64| format!("{v:.1}");
    append(
        &g,
        &[
            svg_el(
                "rect",
                &[
                    ("x", &n(f.x)),
                    ("y", &n(f.y)),
                    ("width", &n(f.width)),
                    ("height", &n(f.height)),
                    ("rx", "10"),
                ],
            ),
            svg_el(
                "text",
                &[
                    ("class", "frame-title"),
                    ("x", &n(f.x + 10.0)),
                    ("y", &n(f.y + 19.0)),
                ],
            )
            .map(|t| with_text(t, &fit(&f.title, (f.width / 7.5) as usize))),
        ],
    );
    Some(g)
}

/// A link: a `role="button"` group with its name, a wide transparent path to hit, the line with
/// its arrow, its label and its `<title>`.
fn link_element(l: &super::LinkPath, stop: bool) -> Option<web_sys::Element> {
    let class = format!(
        "link{}{}",
        if l.new { " new" } else { "" },
        if l.gone { " gone" } else { "" }
    );
    let g = svg_el(
        "g",
        &[
            ("class", &class),
            ("role", "button"),
            ("tabindex", if stop { "0" } else { "-1" }),
            ("aria-label", &l.describe),
            ("data-key", &link_id(&l.key)),
            ("data-from", &l.key.0),
            ("data-to", &l.key.1),
        ],
    )?;
    let weight = format!("{:.1}", 1.2 + (l.count as f64).ln().max(0.0) * 0.9);
    append(
        &g,
        &[
            svg_el("path", &[("class", "hit"), ("d", &l.d)]),
            svg_el(
                "path",
                &[
                    ("class", "line"),
                    ("d", &l.d),
                    ("stroke-width", &weight),
                    ("marker-end", "url(#map-arrow)"),
                ],
            ),
            svg_el(
                "text",
                &[
                    ("class", "link-label"),
                    ("x", &format!("{:.1}", l.label_at.0)),
                    ("y", &format!("{:.1}", l.label_at.1 - 4.0)),
                    ("text-anchor", l.label_anchor),
                ],
            )
            .map(|t| with_text(t, &l.label)),
            svg_el("title", &[]).map(|t| with_text(t, &l.describe)),
        ],
    );
    Some(g)
}

/// A node: a `role="button"` group with its name, its box, one text of two lines (they read
/// "python3 pid 42", as the accessible name begins) and its `<title>`.
fn node_element(n: &super::NodeBox, stop: bool) -> Option<web_sys::Element> {
    let kind = match n.kind {
        GraphNodeKind::Process => "process",
        GraphNodeKind::Remote => "remote",
        _ => "hidden",
    };
    let class = format!("node {kind}{}", if n.gone { " gone" } else { "" });
    let g = svg_el(
        "g",
        &[
            ("class", &class),
            ("role", "button"),
            ("tabindex", if stop { "0" } else { "-1" }),
            ("aria-label", &n.describe),
            ("data-id", &n.id),
            ("transform", &format!("translate({:.1} {:.1})", n.x, n.y)),
        ],
    )?;
    let text = svg_el("text", &[("class", "node-title"), ("x", "10"), ("y", "15")])?;
    text.set_text_content(Some(&format!("{} ", n.title)));
    append(
        &text,
        &[
            svg_el("tspan", &[("class", "node-sub"), ("x", "10"), ("y", "29")])
                .map(|t| with_text(t, &n.sub)),
        ],
    );
    append(
        &g,
        &[
            svg_el(
                "rect",
                &[
                    ("width", &NODE_W.to_string()),
                    ("height", &NODE_H.to_string()),
                    ("rx", "6"),
                ],
            ),
            Some(text),
            svg_el("title", &[]).map(|t| with_text(t, &n.describe)),
        ],
    );
    Some(g)
}

/// The Map tab.
#[component]
pub fn Map(
    state: MapState,
    active: Signal<bool>,
    table: RwSignal<Table>,
    host: Memo<Option<String>>,
    /// A note on which machine is drawn (a hub's page with all hosts picked), if any.
    host_note: Signal<Option<String>>,
    query: Signal<String>,
    /// Opens the Sockets view: (filter, row to select).
    open: Callback<(String, Option<String>)>,
) -> impl IntoView {
    let plot_ref = NodeRef::<html::Div>::new();
    let width = crate::plot::watch_width(plot_ref, active);

    let (drawing, started) = arranged(state, query, host, width);
    let render_ms = render_timing(drawing, active, started);

    let Cursors {
        node_cursor,
        link_cursor,
        node_stop,
        link_stop,
    } = cursors(drawing);
    let (focus, had_focus) = keep_focus(drawing, state);

    let open_node = move |id: String| {
        let node = state.live.with_untracked(|l| l.nodes.get(&id).cloned());
        let Some(node) = node else { return };
        match (node.kind, node.pid, node.addr) {
            (GraphNodeKind::Process, Some(pid), _) => {
                let h = host.get_untracked();
                let row = table.with_untracked(|t| row_of(t, h.as_deref(), pid));
                open.run((pid.to_string(), row));
            }
            (_, _, Some(addr)) => open.run((addr.to_string(), None)),
            _ => {}
        }
    };
    let on_click = move |e: web_sys::MouseEvent| match target_of(&e) {
        Some(Focus::Node(id)) => open_node(id),
        Some(Focus::Link(key)) => {
            link_cursor.set(Some(key.clone()));
            state.picked.set(Some(key));
        }
        None => {}
    };
    let on_key = move |e: web_sys::KeyboardEvent| {
        let key = e.key();
        match target_of(&e) {
            Some(Focus::Node(id)) => {
                if key == "Enter" || key == " " {
                    e.prevent_default();
                    open_node(id);
                } else if let Some(next) = drawing.with_untracked(|d| neighbour(d, &id, &key)) {
                    e.prevent_default();
                    node_cursor.set(Some(next.clone()));
                    set_timeout(move || focus_el(node_el(&next)), Duration::ZERO);
                }
            }
            Some(Focus::Link(k)) => {
                if key == "Enter" || key == " " {
                    e.prevent_default();
                    state.picked.set(Some(k));
                    return;
                }
                let step: isize = match key.as_str() {
                    "ArrowDown" | "ArrowRight" => 1,
                    "ArrowUp" | "ArrowLeft" => -1,
                    _ => return,
                };
                e.prevent_default();
                let next = drawing.with_untracked(|d| {
                    let at = d.links.iter().position(|l| l.key == k)? as isize;
                    let to = (at + step).clamp(0, d.links.len() as isize - 1) as usize;
                    Some(d.links[to].key.clone())
                });
                if let Some(next) = next {
                    link_cursor.set(Some(next.clone()));
                    set_timeout(move || focus_el(link_el(&next)), Duration::ZERO);
                }
            }
            None => {}
        }
    };
    let on_focus = move |e: web_sys::FocusEvent| {
        let f = target_of(&e);
        match &f {
            Some(Focus::Node(id)) if node_cursor.get_untracked().as_ref() != Some(id) => {
                node_cursor.set(Some(id.clone()));
            }
            Some(Focus::Link(k)) if link_cursor.get_untracked().as_ref() != Some(k) => {
                link_cursor.set(Some(k.clone()));
            }
            _ => {}
        }
        had_focus.set_value(f.clone());
        focus.set(f);
    };
    let on_blur = move |_: web_sys::FocusEvent| {
        had_focus.set_value(None);
        focus.set(None);
    };
    let on_over = move |e: web_sys::MouseEvent| {
        let f = target_of(&e);
        if focus.with_untracked(|x| *x != f) {
            focus.set(f);
        }
    };
    let on_leave = move |_: web_sys::MouseEvent| {
        if had_focus.get_value().is_none() {
            focus.set(None);
        }
    };

    let (frames_ref, links_ref, nodes_ref) =
        keep_in_step(drawing, state, focus, node_stop, link_stop);

    let svg = move || {
        view! {
            <svg
                id="map-svg"
                class="map-svg"
                class:many=move || drawing.with(|d| !d.all_labels)
                width=move || drawing.with(|d| d.width)
                height=move || drawing.with(|d| d.height)
                role="group"
                aria-labelledby="map-title"
                aria-describedby="map-summary"
                on:click=on_click
                on:keydown=on_key
                on:focusin=on_focus
                on:focusout=on_blur
                on:mouseover=on_over
                on:mouseleave=on_leave
            >
                <defs>
                    <marker id="map-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto">
                        <path class="arrow" d="M0 1L10 5L0 9z" />
                    </marker>
                </defs>
                <g class="frames" aria-hidden="true" node_ref=frames_ref></g>
                <g class="links" node_ref=links_ref></g>
                <g class="nodes" node_ref=nodes_ref></g>
            </svg>
        }
    };

    let summary = move || drawing.with(summary_text);
    let empty = move || {
        drawing.with(|d| d.nodes.is_empty()).then(|| {
            let text = if state.live.with(|l| l.links.is_empty()) {
                "No TCP connection between two processes, or to another machine, right now."
            } else {
                "No connection matches the filter."
            };
            view! { <p class="empty">{text}</p> }
        })
    };
    view! {
        <section
            class="map"
            id="panel-map"
            role="tabpanel"
            aria-labelledby="tab-map"
            hidden=move || !active.get()
            data-render-ms=move || render_ms.get().map(|(ms, _, _)| format!("{ms:.2}"))
            data-render-links=move || render_ms.get().map(|(_, links, _)| links.to_string())
            data-render-n=move || render_ms.get().map(|(_, _, n)| n.to_string())
            data-fetch-ms=move || state.fetch_ms.get().map(|ms| format!("{ms:.2}"))
        >
            <h2 class="visually-hidden" id="map-title">"Map of connections: who talks to whom"</h2>
            <div class="map-bar">
                <span id="map-summary">{summary}</span>
                <button type="button" id="map-tidy" title="Lay the map out afresh, compactly (nodes otherwise keep their places as connections come and go)" on:click=move |_| state.tidy.update(|t| *t += 1)>"Tidy up"</button>
                <span class="legend muted small" aria-hidden="true">
                    <span class="key process"></span>" process  "
                    <span class="key remote"></span>" remote address  "
                    <span class="key link-new"></span>" new  "
                    <span class="key link-gone"></span>" closing"
                </span>
            </div>
            {move || host_note.get().map(|n| view! { <p class="note" id="map-host-note">{n}</p> })}
            {move || state.note.get().map(|n| view! { <p class="note" id="map-note">{n}</p> })}
            <p class="hint muted">"Client → server, grouped by project. Click a process to open it, a link to list its connections; Tab reaches the processes, then the links, arrow keys move between them."</p>
            <div class="map-plot" node_ref=plot_ref>
                <Show when=move || active.get()>{svg}</Show>
                {empty}
            </div>
        </section>
    }
}

/// The drawing of the live graph for the filter and host, with when its computation started.
/// The layout lives between drawings: updated (nobody moves) on a new graph, arranged anew on a
/// new filter, another host or "Tidy up", and when it holds nothing.
fn arranged(
    state: MapState,
    query: Signal<String>,
    host: Memo<Option<String>>,
    width: RwSignal<f64>,
) -> (Memo<Drawing>, StoredValue<f64>) {
    let layout = StoredValue::new(Layout::default());
    let arranged_for = StoredValue::new(None::<(String, u64, Option<String>)>);
    let started = StoredValue::new(0.0);
    let drawing: Memo<Drawing> = Memo::new(move |_| {
        let q = query.get();
        let tidy = state.tidy.get();
        let h = host.get();
        let fit_cols = ((width.get_untracked() - 2.0 * MARGIN + (COL_PITCH - NODE_W)) / COL_PITCH)
            .floor()
            .max(1.0) as usize;
        started.set_value(clock());
        let now = js_sys::Date::now();
        state.live.with(|live| {
            let shown = live.shown(&q);
            let nodes = placing(live, &shown);
            let key = Some((q, tidy, h));
            layout.update_value(|l| {
                if arranged_for.get_value() != key || l.placed() == 0 {
                    *l = Layout::arrange(&nodes, fit_cols);
                    arranged_for.set_value(key);
                } else {
                    l.update(&nodes);
                }
            });
            layout.with_value(|l| draw(live, l, &shown, now))
        })
    });
    (drawing, started)
}

/// How long each drawing took to reach the screen: from the memo to the browser's layout
/// (with the links drawn and a count of drawings), for `cargo xtask bench`.
fn render_timing(
    drawing: Memo<Drawing>,
    active: Signal<bool>,
    started: StoredValue<f64>,
) -> RwSignal<Option<(f64, usize, u64)>> {
    let render_ms = RwSignal::new(None::<(f64, usize, u64)>);
    Effect::new(move |_| {
        let links = drawing.with(|d| d.links.len());
        if !active.get_untracked() {
            return;
        }
        let t0 = started.get_value();
        set_timeout(
            move || {
                if let Some(svg) = document().get_element_by_id("map-svg") {
                    let _ = svg.get_bounding_client_rect();
                }
                if let Some(root) = document().document_element() {
                    let _ = root.client_height();
                }
                render_ms.update(|r| {
                    let n = r.map_or(1, |(_, _, n)| n + 1);
                    *r = Some((clock() - t0, links, n));
                });
            },
            Duration::ZERO,
        );
    });
    render_ms
}

/// The keyboard's node and link (each one tab stop), kept by identity across drawings.
#[derive(Clone, Copy)]
struct Cursors {
    node_cursor: RwSignal<Option<String>>,
    link_cursor: RwSignal<Option<LinkKey>>,
    node_stop: Memo<Option<String>>,
    link_stop: Memo<Option<LinkKey>>,
}

/// The keyboard's cursors, and the effect that moves the tab stop with them.
fn cursors(drawing: Memo<Drawing>) -> Cursors {
    let node_cursor = RwSignal::new(None::<String>);
    let link_cursor = RwSignal::new(None::<LinkKey>);
    let node_stop = Memo::new(move |_| {
        let at = node_cursor.get();
        drawing.with(|d| {
            at.filter(|id| d.nodes.iter().any(|n| &n.id == id))
                .or_else(|| d.nodes.first().map(|n| n.id.clone()))
        })
    });
    let link_stop = Memo::new(move |_| {
        let at = link_cursor.get();
        drawing.with(|d| {
            at.filter(|k| d.links.iter().any(|l| &l.key == k))
                .or_else(|| d.links.first().map(|l| l.key.clone()))
        })
    });
    Effect::new(move |before: Option<(Option<String>, Option<LinkKey>)>| {
        let now = (node_stop.get(), link_stop.get());
        if let Some((node, link)) = before {
            if node != now.0 {
                set_stop(node.as_deref().and_then(node_el), false);
                set_stop(now.0.as_deref().and_then(node_el), true);
            }
            if link != now.1 {
                set_stop(link.as_ref().and_then(link_el), false);
                set_stop(now.1.as_ref().and_then(link_el), true);
            }
        }
        now
    });
    Cursors {
        node_cursor,
        link_cursor,
        node_stop,
        link_stop,
    }
}

/// The element highlighted (by the pointer or the keyboard), re-applied to each new drawing,
/// and the focus a redraw gives back to the successor of the element it replaced.
fn keep_focus(
    drawing: Memo<Drawing>,
    state: MapState,
) -> (RwSignal<Option<Focus>>, StoredValue<Option<Focus>>) {
    let focus = RwSignal::new(None::<Focus>);
    Effect::new(move |_| {
        drawing.track();
        // The pointer's or the keyboard's, else the link whose connections are listed.
        let f = focus.get().or_else(|| state.picked.get().map(Focus::Link));
        highlight(f.as_ref());
    });
    // A redraw replaces the focused element: give the focus back to its successor.
    let had_focus = StoredValue::new(None::<Focus>);
    Effect::new(move |_| {
        drawing.track();
        if let Some(f) = had_focus.get_value() {
            set_timeout(
                move || {
                    let lost = document()
                        .active_element()
                        .is_none_or(|el| el.tag_name() == "BODY");
                    if lost {
                        focus_el(match &f {
                            Focus::Node(id) => node_el(id),
                            Focus::Link(key) => link_el(key),
                        });
                    }
                },
                Duration::ZERO,
            );
        }
    });
    (focus, had_focus)
}

/// The drawing's elements, kept in step with it by `sync` (see there): an element stays as
/// long as what it shows is unchanged. Returns the groups to mount: frames, links, nodes.
fn keep_in_step(
    drawing: Memo<Drawing>,
    state: MapState,
    focus: RwSignal<Option<Focus>>,
    node_stop: Memo<Option<String>>,
    link_stop: Memo<Option<LinkKey>>,
) -> (
    NodeRef<leptos::svg::G>,
    NodeRef<leptos::svg::G>,
    NodeRef<leptos::svg::G>,
) {
    let frames_ref = NodeRef::<leptos::svg::G>::new();
    let links_ref = NodeRef::<leptos::svg::G>::new();
    let nodes_ref = NodeRef::<leptos::svg::G>::new();
    let kept = StoredValue::new_local(Kept::default());
    Effect::new(move |_| {
        let (Some(frames_el), Some(links_el), Some(nodes_el)) =
            (frames_ref.get(), links_ref.get(), nodes_ref.get())
        else {
            return;
        };
        let (frames_el, links_el, nodes_el): (
            web_sys::Element,
            web_sys::Element,
            web_sys::Element,
        ) = (frames_el.into(), links_el.into(), nodes_el.into());
        let node_at = node_stop.get_untracked();
        let link_at = link_stop.get_untracked();
        drawing.with(|d| {
            kept.update_value(|k| {
                sync(
                    &frames_el,
                    &mut k.frames,
                    d.frames.iter().map(|f| {
                        let key = format!("{}|{}|{}|{}|{}", f.title, f.x, f.y, f.width, f.height);
                        (key, move || frame_element(f))
                    }),
                );
                sync(
                    &links_el,
                    &mut k.links,
                    d.links.iter().map(|l| {
                        let key = format!(
                            "{}|{}|{}|{}|{}",
                            link_id(&l.key),
                            l.d,
                            l.new,
                            l.gone,
                            l.label
                        );
                        let stop = link_at.as_ref() == Some(&l.key);
                        (key, move || link_element(l, stop))
                    }),
                );
                sync(
                    &nodes_el,
                    &mut k.nodes,
                    d.nodes.iter().map(|n| {
                        let key = format!("{}|{}|{}|{}|{}", n.id, n.x, n.y, n.gone, n.describe);
                        let stop = node_at.as_ref() == Some(&n.id);
                        (key, move || node_element(n, stop))
                    }),
                );
            });
        });
        let f = focus
            .get_untracked()
            .or_else(|| state.picked.get_untracked().map(Focus::Link));
        highlight(f.as_ref());
    });
    (frames_ref, links_ref, nodes_ref)
}

/// The line above the map: processes, remote addresses, links and connections drawn.
fn summary_text(d: &Drawing) -> String {
    let processes = d
        .nodes
        .iter()
        .filter(|n| n.kind != GraphNodeKind::Remote)
        .count();
    let remotes = d.nodes.len() - processes;
    let connections: usize = d.links.iter().filter(|l| !l.gone).map(|l| l.count).sum();
    let closing = d.links.iter().filter(|l| l.gone).count();
    let mut text = format!(
        "{} · {} · {} · {}",
        crate::portspace::count(processes, "process"),
        crate::portspace::count(remotes, "remote address"),
        crate::portspace::count(d.links.len() - closing, "link"),
        crate::portspace::count(connections, "connection"),
    );
    if closing > 0 {
        text.push_str(&format!(" ({closing} closing)"));
    }
    text
}

/// The connections of the picked link, beside the map: each opens its socket in the table.
#[component]
pub fn LinkDetail(
    state: MapState,
    active: Signal<bool>,
    table: RwSignal<Table>,
    host: Memo<Option<String>>,
    open: Callback<(String, Option<String>)>,
) -> impl IntoView {
    let _escape = window_event_listener(leptos::ev::keydown, move |e: web_sys::KeyboardEvent| {
        if e.key() == "Escape" && state.picked.with_untracked(Option::is_some) {
            state.picked.set(None);
        }
    });
    let content = move || {
        if !active.get() {
            return None;
        }
        let key = state.picked.get()?;
        let h = host.get();
        state.live.with(|live| {
            let link = live.links.get(&key)?.clone();
            let name = |id: &str| live.nodes.get(id).map_or_else(|| id.to_owned(), node_name);
            let (from, to) = (name(&link.from), name(&link.to));
            let client_pid = live.nodes.get(&link.from).and_then(|n| n.pid);
            let items = table.with(|t| {
                let sockets = t
                    .rows
                    .values()
                    .filter(|r| r.closed_at.is_none() && r.socket.host.as_deref() == h.as_deref())
                    .map(|r| &r.socket);
                connections(&link, &live.nodes, sockets)
                    .into_iter()
                    .map(|s| {
                        let text = format!(
                            "{} {} → {} {}",
                            s.proto_label(),
                            s.local_endpoint(),
                            s.remote_text(),
                            s.state.as_str()
                        );
                        let row = crate::table::row_key(s.host.as_deref(), &s.id);
                        let q = s
                            .pids
                            .first()
                            .map_or_else(|| s.local_port.to_string(), u32::to_string);
                        view! {
                            <li>
                                <button type="button" class="event-link mono" on:click=move |_| open.run((q.clone(), Some(row.clone())))>{text}</button>
                            </li>
                        }
                    })
                    .collect::<Vec<_>>()
            });
            let listed = items.len();
            let closed = link.gone_at.is_some();
            let note = if closed {
                Some("These connections closed: the link fades out.".to_owned())
            } else if listed < link.count() {
                Some(format!(
                    "{} of {} connections listed: the rest are held by processes this agent cannot see (run it as root), or closed since.",
                    listed,
                    link.count()
                ))
            } else {
                None
            };
            let (from_id, to_id) = (link.from.clone(), link.to.clone());
            let open_end = move |id: &str| {
                let node = state.live.with_untracked(|l| l.nodes.get(id).cloned())?;
                let h = host.get_untracked();
                Some(match node.pid {
                    Some(pid) => (pid.to_string(), table.with_untracked(|t| row_of(t, h.as_deref(), pid))),
                    None => (node.addr.map(|a| a.to_string()).unwrap_or_default(), None),
                })
            };
            let (a, b) = (open_end(&from_id), open_end(&to_id));
            Some(view! {
                <aside class="detail" id="link-detail" aria-label="Connections of the link">
                    <button class="close" title="Close (Esc)" aria-label="Close the connections" on:click=move |_| state.picked.set(None)>"×"</button>
                    <h2>{format!("{from} → {to}")}</h2>
                    <p class="muted">{format!("port {} · {}", link.ports.iter().map(|(p, _)| p.to_string()).collect::<Vec<_>>().join(", "), crate::portspace::count(link.count(), "connection"))}</p>
                    <div class="actions">
                        {a.map(|target| view! { <button type="button" id="link-open-client" on:click=move |_| open.run(target.clone())>"Open the client"</button> })}
                        {b.map(|target| view! { <button type="button" id="link-open-server" on:click=move |_| open.run(target.clone())>"Open the server"</button> })}
                    </div>
                    {note.map(|n| view! { <p class="note">{n}</p> })}
                    <h4>{format!("Connections{}", client_pid.map_or_else(String::new, |p| format!(" of pid {p}")))}</h4>
                    <ul class="events link-connections">{items}</ul>
                </aside>
            })
        })
    };
    view! { {content} }
}
