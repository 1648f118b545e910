//! The live socket table: rows selectable with the keyboard (one tab stop; arrows, Page Up and
//! Down, Home and End move through the whole filtered index, not only the rendered rows),
//! compact cards below 600 px, only the rows in view rendered (two spacer rows stand for the
//! others, so 20 000 sockets cost what 60 do), stale rows dimmed with a note saying why.

use std::time::Duration;

use leptos::ev;
use leptos::html;
use leptos::prelude::*;
use portscope_shared::{Exposure, Hello, OwnerStatus, PortRange, Socket};
use wasm_bindgen::JsCast;

use crate::address::Tab;
use crate::conn::{self, Link};
use crate::fleet::{Fleet, local_time, peer_status};
use crate::nav::Page;
use crate::table::{self, Column, Row, Table, View};
use crate::windowing;

/// Height of one table row in pixels, fixed by the stylesheet (`.sockets tr.row td`): the table
/// renders only the rows in view and stands in for the others with two spacer rows, so 20 000
/// sockets cost what 60 do.
const ROW_PX: f64 = 29.0;

/// Below this width (the stylesheet's `@media (max-width: 600px)`) each socket is a card of
/// four lines, `CARD_PX` high, instead of a table row: eight columns do not fit a phone.
const NARROW: &str = "(max-width: 600px)";
const CARD_PX: f64 = 92.0;

/// Rows rendered beyond each edge of the view, so that fast scrolling shows no blank band.
const OVERSCAN: usize = 20;

/// The rows in view, and how many rows the spacers above and below stand for.
#[derive(Clone, Debug, Default, PartialEq)]
struct Window {
    before: usize,
    rows: Vec<RowView>,
    after: usize,
}

/// A CSS string for an attribute selector: ids carry spaces, brackets and colons, which are
/// harmless inside quotes; quotes and backslashes are escaped, and so are control characters
/// (a peer's row key holds one, `table::KEY_SEP`).
fn css_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '"' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\{:x} ", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// Focuses the table row whose key is `id`, once it is rendered; focusing scrolls it into view
/// (below the sticky header: `scroll-margin-top` in the stylesheet).
fn focus_row(id: &str) {
    let selector = format!("#sockets tr.row[data-id=\"{}\"]", css_string(id));
    if let Some(row) = document()
        .query_selector(&selector)
        .ok()
        .flatten()
        .and_then(|el| el.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = row.focus();
    }
}

/// One table row as rendered; rebuilt only when its socket changes (`rev`).
#[derive(Clone, Debug, PartialEq)]
struct RowView {
    /// The row's key (`table::row_key`): its socket id for this agent's rows.
    id: String,
    rev: u64,
    /// The peer it is on (`None`: this agent's).
    peer: Option<String>,
    /// Its host's name as the Host column shows it.
    host: String,
    closed: bool,
    class: &'static str,
    proto: &'static str,
    local: String,
    remote: String,
    state: &'static str,
    pid: String,
    process: String,
    what: String,
    user: String,
    /// Health, exposure, risk and ephemeral-range tags: (class, text, explanation on hover).
    tags: Vec<(&'static str, String, String)>,
}

impl RowView {
    fn new(table: &Table, row: &Row, now: f64, ephemeral: Option<PortRange>) -> Self {
        let s = &row.socket;
        let class = if row.closed_at.is_some() {
            "row closed"
        } else if row.is_new(now) {
            "row new"
        } else {
            "row"
        };
        let (pid, process) = match s.owner {
            OwnerStatus::Known => (
                s.pids
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                table.process_names(s),
            ),
            OwnerStatus::Hidden => ("?".into(), "hidden — run as root".into()),
            OwnerStatus::None => ("–".into(), "–".into()),
        };
        Self {
            id: row.key.clone(),
            rev: row.rev,
            peer: s.host.clone(),
            host: table.host_name(s).unwrap_or_default().to_owned(),
            closed: row.closed_at.is_some(),
            class,
            proto: s.proto_label(),
            local: s.local_endpoint().to_string(),
            remote: s.remote_text(),
            state: s.state.as_str(),
            pid,
            process,
            what: table::what(s),
            user: table.user(s),
            tags: tags(s, ephemeral, &table.stopped_owners(s)),
        }
    }
}

/// The tags of a socket: a stopped owner; for a listener, who can reach it, whether that is a
/// risk, and whether its port lies in the ephemeral range.
fn tags(
    s: &Socket,
    ephemeral: Option<PortRange>,
    stopped: &[u32],
) -> Vec<(&'static str, String, String)> {
    let mut tags = Vec::new();
    if let Some(h) = &s.health {
        let (class, text) = crate::projects::health_tag(h);
        let why = h
            .detail
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        tags.push((
            class,
            text,
            format!("GET / over loopback, checked every 10 s while a dashboard is open{why}"),
        ));
    }
    for pid in stopped {
        tags.push((
            "tag stopped",
            "stopped".into(),
            format!("pid {pid} is stopped (SIGSTOP, or Ctrl-Z in its terminal): it holds the socket but answers nothing; `kill -CONT {pid}` resumes it"),
        ));
    }
    if let Some(exposure) = s.exposure {
        let (class, text) = match exposure {
            Exposure::Loopback => ("tag loopback", "loopback"),
            Exposure::Interface => ("tag interface", "interface"),
            Exposure::All => ("tag all", "all interfaces"),
        };
        tags.push((class, text.into(), exposure.explain().to_owned()));
    }
    if let Some(risk) = &s.risk {
        tags.push(("tag risk", "⚠ exposed".into(), risk.clone()));
    }
    if let Some(range) = ephemeral.filter(|r| s.is_listening() && r.contains(s.local_port)) {
        tags.push((
            "tag ephemeral",
            "ephemeral".into(),
            format!(
                "port {} lies in the ephemeral range {}–{}: outgoing connections may take it, so a restart of this server can fail to bind",
                s.local_port, range.first, range.last
            ),
        ));
    }
    tags
}

#[component]
fn SortHeader(column: Column, view: RwSignal<View>) -> impl IntoView {
    let arrow = move || {
        view.with(|v| match (v.sort == column, v.descending) {
            (true, false) => " ▲",
            (true, true) => " ▼",
            _ => "",
        })
    };
    // Only the sorted column says how it is sorted (ARIA: at most one header with aria-sort).
    let sort = move || {
        view.with(|v| match (v.sort == column, v.descending) {
            (true, false) => Some("ascending"),
            (true, true) => Some("descending"),
            _ => None,
        })
    };
    // The click is the header's (a click anywhere in it sorts); the button inside makes it
    // focusable and pressable with Enter or Space, whose click bubbles up to here.
    view! {
        <th
            class:sorted=move || view.with(|v| v.sort == column)
            data-column=column.key()
            aria-sort=sort
            on:click=move |_| {
                view.update(|v| {
                    if v.sort == column {
                        v.descending = !v.descending;
                    } else {
                        v.sort = column;
                        v.descending = false;
                    }
                })
            }
        >
            <button type="button" class="sort" title=format!("Sort by {}", column.label().to_lowercase())>
                {column.label()}
                <span aria-hidden="true">{arrow}</span>
            </button>
        </th>
    }
}

/// The scroll box's measures, which pick the rows to render: its scroll position, its height,
/// and the height of a row (a card's on a narrow screen).
#[derive(Clone, Copy)]
struct Scroll {
    wrap: NodeRef<html::Div>,
    top: RwSignal<f64>,
    viewport: RwSignal<f64>,
    row_px: RwSignal<f64>,
}

impl Scroll {
    fn new() -> Self {
        Self {
            wrap: NodeRef::new(),
            top: RwSignal::new(0.0),
            viewport: RwSignal::new(1000.0),
            row_px: RwSignal::new(ROW_PX),
        }
    }

    fn measure(self) {
        if let Some(wrap) = self.wrap.get_untracked() {
            self.top.set(f64::from(wrap.scroll_top()));
            self.viewport.set(f64::from(wrap.client_height()));
        }
        let narrow = web_sys::window()
            .and_then(|w| w.match_media(NARROW).ok().flatten())
            .is_some_and(|m| m.matches());
        self.row_px.set(if narrow { CARD_PX } else { ROW_PX });
    }

    /// Measures now, on resize, and when the table's tab shows (a hidden box measures nothing).
    fn keep_measured(self, tab: RwSignal<Tab>) {
        Effect::new(move |_| {
            if self.wrap.get().is_some() {
                self.measure();
            }
        });
        let _resize = window_event_listener(ev::resize, move |_| self.measure());
        Effect::new(move |_| {
            if tab.get() == Tab::Sockets {
                set_timeout(move || self.measure(), Duration::ZERO);
            }
        });
    }
}

/// The rows in view (each host's own ephemeral range looked up once per host in view).
fn window_of(
    page: Page,
    scroll: Scroll,
    fleet: Fleet,
    hello: RwSignal<Option<Hello>>,
) -> Memo<Window> {
    Memo::new(move |_| {
        let now = js_sys::Date::now();
        let mut ephemeral: Vec<(Option<String>, Option<PortRange>)> = Vec::new();
        let (top, height, px) = (scroll.top.get(), scroll.viewport.get(), scroll.row_px.get());
        page.table.with(|t| {
            let (len, _) = t.shown_counts();
            let rows = windowing::rows_in_view(len, |i| (i + 1) as f64 * px, top, height, OVERSCAN);
            let (first, last) = (rows.start, rows.end);
            Window {
                before: first,
                rows: t
                    .shown_rows(first, last)
                    .map(|r| {
                        let host = r.socket.host.as_deref();
                        let range = match ephemeral.iter().find(|(h, _)| h.as_deref() == host) {
                            Some((_, range)) => *range,
                            None => {
                                let range = fleet.ephemeral(host, hello);
                                ephemeral.push((host.map(str::to_owned), range));
                                range
                            }
                        };
                        RowView::new(t, r, now, range)
                    })
                    .collect(),
                after: len - last,
            }
        })
    })
}

/// Moves the keyboard's row from `from` by `key` through the whole index: a row out of the
/// window is first scrolled near, then focused once rendered. Whether the key moved it.
fn move_cursor(page: Page, scroll: Scroll, window: Memo<Window>, from: &str, key: &str) -> bool {
    let page_rows = (scroll.viewport.get_untracked() / scroll.row_px.get_untracked())
        .floor()
        .max(1.0) as usize;
    let target = page.table.with_untracked(|t| {
        let (len, _) = t.shown_counts();
        let to = windowing::cursor_step(t.shown_position(from)?, len, page_rows, key)?;
        Some((to, t.shown_rows(to, to + 1).next()?.key.clone()))
    });
    let Some((to, id)) = target else {
        return false;
    };
    page.cursor.set(Some(id.clone()));
    let rendered = window.with_untracked(|w| (w.before..w.before + w.rows.len()).contains(&to));
    if rendered {
        // At once, so that the next key of a quick run already starts from this row.
        focus_row(&id);
    } else if let Some(wrap) = scroll.wrap.get_untracked() {
        let px = scroll.row_px.get_untracked();
        let top = to as f64 * px - f64::from(wrap.client_height()) / 2.0;
        wrap.set_scroll_top(top.max(0.0) as i32);
        scroll.measure();
        set_timeout(move || focus_row(&id), Duration::ZERO);
    }
    true
}

/// A row is drawn anew when its socket changes (keyed by id and revision), which drops the
/// focus it had: give it back to the keyboard's row.
fn keep_focus(cursor: RwSignal<Option<String>>, window: Memo<Window>) {
    let row_focused = StoredValue::new(false);
    let _focus = window_event_listener(ev::focusin, move |e| {
        let on_row = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|el| el.class_list().contains("row"));
        row_focused.set_value(on_row);
    });
    Effect::new(move |_| {
        window.track();
        let lost = document()
            .active_element()
            .is_none_or(|el| el.tag_name() == "BODY");
        if lost
            && row_focused.get_value()
            && let Some(id) = cursor.get_untracked()
        {
            set_timeout(move || focus_row(&id), Duration::ZERO);
        }
    });
}

/// While the link is down the rows are the last ones received: said above them, so nobody
/// takes them for the present. On a hub, so are the rows of a peer that is not live.
fn stale_note(
    page: Page,
    link: RwSignal<Link>,
    fleet: Fleet,
    stale_peers: Memo<Vec<String>>,
) -> Memo<Option<String>> {
    Memo::new(move |_| {
        if !matches!(link.get(), Link::Live) {
            return Some(
                "Not live: these rows are the last ones received before the link went down."
                    .to_owned(),
            );
        }
        let picked = page.view.with(|v| v.host.clone());
        let notes: Vec<String> = stale_peers
            .get()
            .into_iter()
            .filter(|name| picked.as_ref().is_none_or(|p| p == name))
            .filter_map(|name| {
                let host = fleet.entry(&name)?;
                let relay = fleet.peer_link(&name).map(|l| l.link.get());
                let (_, text, _) = peer_status(&host, relay.as_ref());
                let since = host
                    .last_live
                    .as_deref()
                    .and_then(local_time)
                    .map_or_else(String::new, |at| format!(", as of {at}"));
                Some(format!(
                    "Not live: {name} is {text}; its rows are the last ones received{since}."
                ))
            })
            .collect();
        (!notes.is_empty()).then(|| notes.join(" "))
    })
}

/// The table keeps its rows filtered and sorted for the view; a new view rebuilds that index,
/// and `view_ms` gets what that cost (index rebuilt, rendered, laid out) and for which query.
pub fn keep_view_applied(page: Page, view_ms: RwSignal<Option<(f64, String)>>) {
    Effect::new(move |_| {
        let v = page.view.get();
        let started = conn::clock();
        page.table.update(|t| t.set_view(&v));
        // As for deltas (`conn.rs`): a timeout runs after the re-render, a layout read lays out.
        set_timeout(
            move || {
                if let Some(root) = document().document_element() {
                    let _ = root.client_height();
                }
                view_ms.set(Some((conn::clock() - started, v.query)));
            },
            Duration::ZERO,
        );
    });
}

/// The Sockets tab's panel.
#[component]
pub fn SocketTable(
    page: Page,
    fleet: Fleet,
    hello: RwSignal<Option<Hello>>,
    link: RwSignal<Link>,
    multi: Memo<bool>,
    stale_peers: Memo<Vec<String>>,
    /// (rows shown, of which open).
    shown: Memo<(usize, usize)>,
) -> impl IntoView {
    let scroll = Scroll::new();
    scroll.keep_measured(page.tab);
    let window = window_of(page, scroll, fleet, hello);
    keep_focus(page.cursor, window);
    let stale_note = stale_note(page, link, fleet, stale_peers);
    let stale = move || !matches!(link.get(), Link::Live);
    // Set through CSSOM (`style:height`), which the page's CSP allows; a `style` attribute it
    // would refuse.
    let spacer = move |rows: usize| format!("{}px", rows as f64 * scroll.row_px.get());
    // The table's one tab stop: the keyboard's row when it is rendered, else the first row.
    let tab_stop = Memo::new(move |_| {
        let at = page.cursor.get();
        window.with(|w| {
            at.filter(|id| w.rows.iter().any(|r| &r.id == id))
                .or_else(|| w.rows.first().map(|r| r.id.clone()))
        })
    });
    let columns = move || if multi.get() { "9" } else { "8" };
    let (table, view, selected) = (page.table, page.view, page.selected);
    view! {
        <div
            class="table-wrap"
            id="panel-sockets"
            role="tabpanel"
            aria-labelledby="tab-sockets"
            hidden=move || page.tab.get() != Tab::Sockets
            class:stale=stale
            node_ref=scroll.wrap
            on:scroll=move |_| scroll.measure()
        >
            <p class="stale-note" role="status">{move || stale_note.get()}</p>
            <table class="sockets" class:hosts=move || multi.get() id="sockets" aria-label="Sockets" aria-describedby="count">
                <thead>
                    <tr>
                        // The Host column only while there is more than one host.
                        {move || {
                            let multi = multi.get();
                            Column::ALL
                                .into_iter()
                                .filter(|c| multi || *c != Column::Host)
                                .map(|c| view! { <SortHeader column=c view /> })
                                .collect_view()
                        }}
                    </tr>
                </thead>
                <tbody>
                    <tr class="spacer" aria-hidden="true">
                        <td colspan=columns style:height=move || spacer(window.with(|w| w.before))></td>
                    </tr>
                    <For
                        each=move || window.with(|w| w.rows.clone())
                        key=|r| (r.id.clone(), r.rev)
                        children=move |r| {
                            let id = r.id.clone();
                            let (click_id, focus_id, key_id, tab_id) = (r.id.clone(), r.id.clone(), r.id.clone(), r.id.clone());
                            let peer = r.peer.clone();
                            let host = r.host.clone();
                            view! {
                                <tr
                                    class=r.class
                                    class:selected=move || selected.with(|s| s.as_deref() == Some(id.as_str()))
                                    class:stale=move || peer.as_ref().is_some_and(|p| stale_peers.with(|s| s.contains(p)))
                                    data-id=r.id.clone()
                                    data-host=r.peer.clone()
                                    tabindex=move || if tab_stop.with(|t| t.as_deref() == Some(tab_id.as_str())) { "0" } else { "-1" }
                                    on:click=move |_| selected.set(Some(click_id.clone()))
                                    on:focus=move |_| page.cursor.set(Some(focus_id.clone()))
                                    on:keydown=move |e: web_sys::KeyboardEvent| {
                                        let key = e.key();
                                        let handled = if key == "Enter" || key == " " {
                                            selected.set(Some(key_id.clone()));
                                            true
                                        } else {
                                            move_cursor(page, scroll, window, &key_id, &key)
                                        };
                                        if handled {
                                            e.prevent_default();
                                        }
                                    }
                                >
                                    {move || multi.get().then(|| view! { <td class="hostname">{host.clone()}</td> })}
                                    <td class="proto">{r.proto}</td>
                                    <td class="mono local">
                                        {r.local}
                                        {r.tags.into_iter().map(|(class, text, title)| view! { <span class=class title=title>{text}</span> }).collect_view()}
                                    </td>
                                    <td class="mono remote">{r.remote}</td>
                                    <td class=format!("state state-{}", r.state.to_lowercase())>{r.state}</td>
                                    <td class="mono num pid">{r.pid}</td>
                                    <td class="process">{r.process}</td>
                                    <td class="what">{r.what}</td>
                                    <td class="user">{r.user}</td>
                                </tr>
                            }
                        }
                    />
                    <tr class="spacer" aria-hidden="true">
                        <td colspan=columns style:height=move || spacer(window.with(|w| w.after))></td>
                    </tr>
                </tbody>
            </table>
            <Show when=move || table.with(Table::any_loaded) && shown.get().0 == 0>
                <p class="empty">"No socket matches this filter."</p>
            </Show>
        </div>
    }
}
