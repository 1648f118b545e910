//! The dashboard's components: header with the link status and the Sockets | Timeline tabs,
//! toolbar (filter, listening toggle, count), the live socket table (rows selectable with the
//! keyboard; compact cards below 600 px), "Recent changes" beside it, and the detail panel of
//! the selected row with what `portscope who` says of its owners and, for a listener, its
//! connections over the last hour. The timeline's own components are in `timeline::view`.

use std::time::Duration;

use leptos::ev;
use leptos::html;
use leptos::prelude::*;
use portscope_shared::{
    ConnectionHistory, Event, Exposure, Hello, Owner, OwnerStatus, PROTOCOL_VERSION, PortRange,
    Process, Proto, Socket, WhoReport,
};
use wasm_bindgen::{JsCast, JsValue};

use crate::conn::{self, Applying, Link, Sinks};
use crate::doctor::{Doctor, Kind, StopTarget, Troubleshoot};
use crate::table::{self, Column, Row, Table, View};
use crate::timeline::ListenerKey;
use crate::timeline::view::{
    RecentChanges, TenureDetail, Timeline, TimelineState, connections_view, keep_base, live_row,
    tenure_of_event,
};
use crate::url::Tab;
use crate::{api, url, windowing};

/// Height of one table row in pixels, fixed by the stylesheet (`.sockets tr.row td`): the table
/// renders only the rows in view and stands in for the others with two spacer rows, so 20 000
/// sockets cost what 60 do.
const ROW_PX: f64 = 29.0;

/// Below this width (the stylesheet's `@media (max-width: 600px)`) each socket is a card of
/// four lines, `CARD_PX` high, instead of a table row: eight columns do not fit a phone.
const NARROW: &str = "(max-width: 600px)";
const CARD_PX: f64 = 92.0;

/// How long the filter waits for typing to pause before it filters: a keystroke then costs a
/// timer, and 21 000 rows are filtered once per pause instead of once per letter.
const FILTER_PAUSE_MS: u64 = 150;

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
/// harmless inside quotes; quotes and backslashes are escaped.
fn css_string(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Focuses the table row of socket `id`, once it is rendered; focusing scrolls it into view
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
    id: String,
    rev: u64,
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
    /// Exposure, risk and ephemeral-range tags: (class, text, explanation on hover).
    tags: Vec<(&'static str, &'static str, String)>,
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
            id: s.id.clone(),
            rev: row.rev,
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
) -> Vec<(&'static str, &'static str, String)> {
    let mut tags = Vec::new();
    for pid in stopped {
        tags.push((
            "tag stopped",
            "stopped",
            format!("pid {pid} is stopped (SIGSTOP, or Ctrl-Z in its terminal): it holds the socket but answers nothing; `kill -CONT {pid}` resumes it"),
        ));
    }
    if let Some(exposure) = s.exposure {
        let (class, text) = match exposure {
            Exposure::Loopback => ("tag loopback", "loopback"),
            Exposure::Interface => ("tag interface", "interface"),
            Exposure::All => ("tag all", "all interfaces"),
        };
        tags.push((class, text, exposure.explain().to_owned()));
    }
    if let Some(risk) = &s.risk {
        tags.push(("tag risk", "⚠ exposed", risk.clone()));
    }
    if let Some(range) = ephemeral.filter(|r| s.is_listening() && r.contains(s.local_port)) {
        tags.push((
            "tag ephemeral",
            "ephemeral",
            format!(
                "port {} lies in the ephemeral range {}–{}: outgoing connections may take it, so a restart of this server can fail to bind",
                s.local_port, range.first, range.last
            ),
        ));
    }
    tags
}

#[component]
pub fn App() -> impl IntoView {
    let table = RwSignal::new(Table::default());
    let link = RwSignal::new(Link::Connecting);
    let hello = RwSignal::new(None::<Hello>);
    let ever_opened = RwSignal::new(false);
    let applied = RwSignal::new(None::<Applying>);
    let events = RwSignal::new(Vec::<portscope_shared::Event>::new());
    let view = RwSignal::new(url::read_view());
    let tab = RwSignal::new(url::read_tab());
    let selected = RwSignal::new(None::<String>);
    // The row the keyboard is on (the table's one tab stop): arrows move it, Enter selects it.
    let cursor = RwSignal::new(None::<String>);
    // What the filter box shows, ahead of `view.query` while typing has not paused.
    let typed = RwSignal::new(view.get_untracked().query);
    let typing_timer = StoredValue::new(None::<TimeoutHandle>);
    // The cost of the last view change (filter or sort: index rebuilt, rendered, laid out), and
    // the query it was for, so that a reader knows which change it measured.
    let view_ms = RwSignal::new(None::<(f64, String)>);

    let token = url::take_token();
    api::set_token(token.clone());
    conn::start(
        Sinks {
            link,
            hello,
            table,
            ever_opened,
            applied,
            events,
        },
        token,
    );
    let doctor = Doctor::new();
    let timeline = TimelineState::new(events);
    let on_timeline = Signal::derive(move || tab.get() == Tab::Timeline);
    keep_base(timeline, hello, table, on_timeline);

    // Closed rows leave after their grace period.
    set_interval(
        move || table.maybe_update(|t| t.sweep(js_sys::Date::now())),
        Duration::from_millis(500),
    );
    // The URL mirrors the filter and sort, so a view can be bookmarked or shared.
    Effect::new(move |_| url::write_view(tab.get(), &view.get()));

    let filter_ref = NodeRef::<html::Input>::new();
    let _keys = window_event_listener(ev::keydown, move |e: web_sys::KeyboardEvent| {
        let typing = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.active_element())
            .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA"));
        if e.key() == "/" && !typing {
            e.prevent_default();
            if let Some(input) = filter_ref.get() {
                let _ = input.focus();
            }
        } else if e.key() == "Escape" {
            if doctor.stopping.get_untracked().is_some() {
                doctor.stopping.set(None);
            } else {
                selected.set(None);
                timeline.picked.set(None);
            }
        }
    });

    // The table keeps its rows filtered and sorted for the view; a new view rebuilds that index.
    Effect::new(move |_| {
        let v = view.get();
        let started = conn::clock();
        table.update(|t| t.set_view(&v));
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
    let type_filter = move |text: String| {
        typed.set(text);
        if let Some(timer) = typing_timer.get_value() {
            timer.clear();
        }
        let timer = set_timeout_with_handle(
            move || {
                let query = typed.get_untracked();
                if view.with_untracked(|v| v.query != query) {
                    view.update(|v| v.query = query);
                }
            },
            Duration::from_millis(FILTER_PAUSE_MS),
        );
        typing_timer.set_value(timer.ok());
    };
    // (rows shown, of which open): closed rows linger for a moment but no longer count.
    let shown = Memo::new(move |_| table.with(Table::shown_counts));
    // The scroll position and height of the table's scroll box, which pick the rows to render.
    let wrap_ref = NodeRef::<html::Div>::new();
    let scroll_top = RwSignal::new(0.0);
    let viewport = RwSignal::new(1000.0);
    let row_px = RwSignal::new(ROW_PX);
    let measure = move || {
        if let Some(wrap) = wrap_ref.get_untracked() {
            scroll_top.set(f64::from(wrap.scroll_top()));
            viewport.set(f64::from(wrap.client_height()));
        }
        let narrow = web_sys::window()
            .and_then(|w| w.match_media(NARROW).ok().flatten())
            .is_some_and(|m| m.matches());
        row_px.set(if narrow { CARD_PX } else { ROW_PX });
    };
    Effect::new(move |_| {
        if wrap_ref.get().is_some() {
            measure();
        }
    });
    let _resize = window_event_listener(ev::resize, move |_| measure());
    // The table's box measures nothing while its tab is hidden: measure again when it shows.
    Effect::new(move |_| {
        if tab.get() == Tab::Sockets {
            set_timeout(measure, Duration::ZERO);
        }
    });
    let window = Memo::new(move |_| {
        let now = js_sys::Date::now();
        let ephemeral = hello.with(|h| h.as_ref().and_then(|h| h.ephemeral_ports));
        let (top, height, px) = (scroll_top.get(), viewport.get(), row_px.get());
        table.with(|t| {
            let (len, _) = t.shown_counts();
            let rows = windowing::rows_in_view(len, |i| (i + 1) as f64 * px, top, height, OVERSCAN);
            let (first, last) = (rows.start, rows.end);
            Window {
                before: first,
                rows: t
                    .shown_rows(first, last)
                    .map(|r| RowView::new(t, r, now, ephemeral))
                    .collect(),
                after: len - last,
            }
        })
    });
    // Set through CSSOM (`style:height`), which the page's CSP allows; a `style` attribute it
    // would refuse.
    let spacer = move |rows: usize| format!("{}px", rows as f64 * row_px.get());
    let total = Memo::new(move |_| {
        table.with(|t| t.rows.values().filter(|r| r.closed_at.is_none()).count())
    });
    // The table's one tab stop: the keyboard's row when it is rendered, else the first row.
    let tab_stop = Memo::new(move |_| {
        let at = cursor.get();
        window.with(|w| {
            at.filter(|id| w.rows.iter().any(|r| &r.id == id))
                .or_else(|| w.rows.first().map(|r| r.id.clone()))
        })
    });
    // Arrow keys, Page Up/Down, Home and End move the keyboard's row through the whole index,
    // not only the rendered window: a row out of the window is first scrolled near, then
    // focused once rendered.
    let move_cursor = move |from: &str, key: &str| -> bool {
        let page = (viewport.get_untracked() / row_px.get_untracked())
            .floor()
            .max(1.0) as usize;
        let target = table.with_untracked(|t| {
            let (len, _) = t.shown_counts();
            let at = t.shown_position(from)?;
            let to = match key {
                "ArrowDown" => at + 1,
                "ArrowUp" => at.checked_sub(1)?,
                "PageDown" => at + page,
                "PageUp" => at.saturating_sub(page),
                "Home" => 0,
                "End" => len.checked_sub(1)?,
                _ => return None,
            }
            .min(len.checked_sub(1)?);
            Some((to, t.shown_rows(to, to + 1).next()?.socket.id.clone()))
        });
        let Some((to, id)) = target else {
            return false;
        };
        cursor.set(Some(id.clone()));
        let rendered = window.with_untracked(|w| (w.before..w.before + w.rows.len()).contains(&to));
        if rendered {
            // At once, so that the next key of a quick run already starts from this row.
            focus_row(&id);
        } else if let Some(wrap) = wrap_ref.get_untracked() {
            let px = row_px.get_untracked();
            let top = to as f64 * px - f64::from(wrap.client_height()) / 2.0;
            wrap.set_scroll_top(top.max(0.0) as i32);
            measure();
            set_timeout(move || focus_row(&id), Duration::ZERO);
        }
        true
    };
    // A row is drawn anew when its socket changes (keyed by id and revision), which drops the
    // focus it had: give it back to the keyboard's row.
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
    // While the link is down the rows are the last ones received: dimmed, so nobody takes
    // them for the present.
    let stale = move || !matches!(link.get(), Link::Live);

    // A line of "Recent changes" leads to its listener: the row while it is open (the table
    // filtered to its port), else its bar in the timeline.
    let show_port = move |port: u16| {
        let q = port.to_string();
        typed.set(q.clone());
        view.update(|v| v.query = q);
    };
    let pick = Callback::new(move |e: Event| {
        let key = ListenerKey::of_event(&e);
        let row = table.with_untracked(|t| {
            t.rows
                .values()
                .find(|r| {
                    let s = &r.socket;
                    r.closed_at.is_none()
                        && s.is_listening()
                        && ListenerKey::of_socket(s) == key
                        && e.pid.is_some_and(|p| s.pids.contains(&p))
                })
                .map(|r| r.socket.id.clone())
        });
        let tenure = timeline
            .tenures
            .with_untracked(|ts| tenure_of_event(ts, &e));
        match (tab.get_untracked(), row, tenure) {
            (Tab::Sockets, Some(id), _) => {
                show_port(e.local_port);
                timeline.picked.set(None);
                cursor.set(Some(id.clone()));
                selected.set(Some(id));
            }
            (_, _, Some(t)) => {
                let live = table.with_untracked(|tb| live_row(tb, &t));
                selected.set(live.clone());
                tab.set(Tab::Timeline);
                timeline.show(t, live);
            }
            (_, row, None) => {
                tab.set(Tab::Sockets);
                show_port(e.local_port);
                selected.set(row);
            }
        }
    });
    let to_port = Callback::new(move |port: u16| {
        timeline.picked.set(None);
        tab.set(Tab::Sockets);
        show_port(port);
    });
    let tab_button =
        move |which: Tab, text: &'static str, id: &'static str, panel: &'static str| {
            let other = match which {
                Tab::Sockets => (Tab::Timeline, "tab-timeline"),
                Tab::Timeline => (Tab::Sockets, "tab-sockets"),
            };
            view! {
                <button
                    type="button"
                    role="tab"
                    id=id
                    aria-controls=panel
                    aria-selected=move || if tab.get() == which { "true" } else { "false" }
                    tabindex=move || if tab.get() == which { "0" } else { "-1" }
                    on:click=move |_| tab.set(which)
                    on:keydown=move |e: web_sys::KeyboardEvent| {
                        if matches!(e.key().as_str(), "ArrowLeft" | "ArrowRight" | "Home" | "End") {
                            e.prevent_default();
                            tab.set(other.0);
                            if let Some(el) = document()
                                .get_element_by_id(other.1)
                                .and_then(|el| el.dyn_into::<web_sys::HtmlElement>().ok())
                            {
                                let _ = el.focus();
                            }
                        }
                    }
                >
                    {text}
                </button>
            }
        };

    view! {
        <header class="top">
            <h1 class="brand">"portscope"</h1>
            <span class="host">
                {move || hello.with(|h| h.as_ref().map(|h| format!("{} · agent {} · {}", h.hostname, h.agent_version, h.os)))}
            </span>
            <div class="tabs" role="tablist" aria-label="Views">
                {tab_button(Tab::Sockets, "Sockets", "tab-sockets", "panel-sockets")}
                {tab_button(Tab::Timeline, "Timeline", "tab-timeline", "panel-timeline")}
            </div>
            <LinkStatus link ever_opened />
        </header>
        <Banner link hello table />
        <div class="toolbar">
            <input
                id="filter"
                class="filter"
                type="search"
                placeholder="Filter: port, pid, address, process, user — press / to focus"
                aria-label="Filter sockets"
                autocomplete="off"
                spellcheck="false"
                node_ref=filter_ref
                prop:value=move || typed.get()
                on:input=move |e| type_filter(event_target_value(&e))
                on:keydown=move |e: web_sys::KeyboardEvent| {
                    if e.key() == "Escape" {
                        typed.set(String::new());
                        view.update(|v| v.query.clear());
                    }
                }
            />
            <label class="toggle">
                <input
                    id="listening"
                    type="checkbox"
                    prop:checked=move || view.with(|v| v.listening_only)
                    on:change=move |e| view.update(|v| v.listening_only = event_target_checked(&e))
                />
                " Listening only"
            </label>
            <span
                class="count"
                id="count"
                data-apply-ms=move || applied.get().map(|a| format!("{:.2}", a.ms))
                data-apply-rows=move || applied.get().map(|a| a.rows.to_string())
                data-view-ms=move || view_ms.with(|v| v.as_ref().map(|(ms, _)| format!("{ms:.2}")))
                data-view-query=move || view_ms.with(|v| v.as_ref().map(|(_, q)| q.clone()))
                title=move || applied.get().map(|a| format!("the last change ({} rows) was applied and drawn in {:.1} ms", a.rows, a.ms))
            >
                {move || {
                    // Closed rows linger for a moment but no longer count.
                    format!("{} of {} sockets", shown.get().1, total.get())
                }}
            </span>
        </div>
        <Troubleshoot doctor />
        <main class="content">
            <div class="views">
            <div
                class="table-wrap"
                id="panel-sockets"
                role="tabpanel"
                aria-labelledby="tab-sockets"
                hidden=move || tab.get() != Tab::Sockets
                class:stale=stale
                node_ref=wrap_ref
                on:scroll=move |_| measure()
            >
                <p class="stale-note" role="status">
                    {move || stale().then_some("Not live: these rows are the last ones received before the link went down.")}
                </p>
                <table class="sockets" id="sockets" aria-label="Sockets" aria-describedby="count">
                    <thead>
                        <tr>
                            {Column::ALL
                                .into_iter()
                                .map(|c| view! { <SortHeader column=c view /> })
                                .collect_view()}
                        </tr>
                    </thead>
                    <tbody>
                        <tr class="spacer" aria-hidden="true">
                            <td colspan="8" style:height=move || spacer(window.with(|w| w.before))></td>
                        </tr>
                        <For
                            each=move || window.with(|w| w.rows.clone())
                            key=|r| (r.id.clone(), r.rev)
                            children=move |r| {
                                let id = r.id.clone();
                                let (click_id, focus_id, key_id, tab_id) = (r.id.clone(), r.id.clone(), r.id.clone(), r.id.clone());
                                view! {
                                    <tr
                                        class=r.class
                                        class:selected=move || selected.with(|s| s.as_deref() == Some(id.as_str()))
                                        data-id=r.id.clone()
                                        tabindex=move || if tab_stop.with(|t| t.as_deref() == Some(tab_id.as_str())) { "0" } else { "-1" }
                                        on:click=move |_| selected.set(Some(click_id.clone()))
                                        on:focus=move |_| cursor.set(Some(focus_id.clone()))
                                        on:keydown=move |e: web_sys::KeyboardEvent| {
                                            let key = e.key();
                                            let handled = if key == "Enter" || key == " " {
                                                selected.set(Some(key_id.clone()));
                                                true
                                            } else {
                                                move_cursor(&key_id, &key)
                                            };
                                            if handled {
                                                e.prevent_default();
                                            }
                                        }
                                    >
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
                            <td colspan="8" style:height=move || spacer(window.with(|w| w.after))></td>
                        </tr>
                    </tbody>
                </table>
                <Show when=move || table.with(|t| t.loaded) && shown.get().0 == 0>
                    <p class="empty">"No socket matches this filter."</p>
                </Show>
            </div>
            <Timeline
                state=timeline
                active=on_timeline
                hello
                table
                query=Signal::derive(move || view.with(|v| v.query.clone()))
                selected
            />
            </div>
            <RecentChanges hello events query=Signal::derive(move || view.with(|v| v.query.clone())) pick />
            <Detail selected table hello doctor now=timeline.now />
            <TenureDetail state=timeline selected on_port=to_port />
        </main>
    }
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

#[component]
fn LinkStatus(link: RwSignal<Link>, ever_opened: RwSignal<bool>) -> impl IntoView {
    let text = move || match link.get() {
        Link::Connecting => "connecting…".to_owned(),
        Link::Live => "live".to_owned(),
        Link::Reconnecting { attempt, delay_ms } => format!(
            "disconnected — retrying in {:.1} s (attempt {})",
            f64::from(delay_ms) / 1000.0,
            attempt + 1
        ),
        Link::Mismatch { .. } => "incompatible agent".to_owned(),
    };
    let class = move || match link.get() {
        Link::Live => "status live",
        Link::Connecting => "status connecting",
        Link::Reconnecting { .. } => "status down",
        Link::Mismatch { .. } => "status error",
    };
    let hint = move || {
        matches!(link.get(), Link::Reconnecting { attempt, .. } if attempt >= 2 && !ever_opened.get())
            .then_some("The agent refuses this page or is not running. Open the URL that portscope printed when it started: it carries the access token.")
    };
    view! {
        <span class=class id="status" role="status" aria-live="polite">{text}</span>
        <span class="status-hint">{hint}</span>
    }
}

#[component]
fn Banner(
    link: RwSignal<Link>,
    hello: RwSignal<Option<Hello>>,
    table: RwSignal<Table>,
) -> impl IntoView {
    let mismatch = move || match link.get() {
        Link::Mismatch { agent } => Some(format!(
            "This dashboard speaks protocol version {PROTOCOL_VERSION}, the agent{} speaks version {agent}. \
             Reload the page to get the agent's own dashboard, or upgrade the older of the two portscope installs.",
            hello.with(|h| h
                .as_ref()
                .map(|h| format!(" on {} ({})", h.hostname, h.agent_version))
                .unwrap_or_default())
        )),
        _ => None,
    };
    let warnings = move || table.with(|t| t.warnings.clone());
    view! {
        {move || mismatch().map(|m| view! { <div class="banner error">{m}</div> })}
        <For
            each=warnings
            key=|w| w.clone()
            children=|w| view! { <div class="banner warn">{w}</div> }
        />
    }
}

#[component]
fn Detail(
    selected: RwSignal<Option<String>>,
    table: RwSignal<Table>,
    hello: RwSignal<Option<Hello>>,
    doctor: Doctor,
    now: RwSignal<f64>,
) -> impl IntoView {
    // A TCP listener's connections over the last hour, from the history: asked once per
    // selection and again each minute while it stays selected. `None` inside: not answered yet.
    type Answer = Option<Result<ConnectionHistory, String>>;
    let conns = RwSignal::new(None::<(String, Answer)>);
    let minute = RwSignal::new(0u32);
    set_interval(move || minute.update(|m| *m += 1), Duration::from_secs(60));
    Effect::new(move |_| {
        minute.track();
        let Some(id) = selected.get() else {
            conns.set(None);
            return;
        };
        let port = table.with_untracked(|t| {
            t.rows
                .get(&id)
                .filter(|r| r.socket.proto == Proto::Tcp && r.socket.is_listening())
                .map(|r| r.socket.local_port)
        });
        let Some(port) = port else {
            conns.set(None);
            return;
        };
        if hello.with_untracked(|h| h.as_ref().is_some_and(|h| !h.history)) {
            conns.set(Some((
                id,
                Some(Err(
                    "this agent keeps no history (started with --no-history)".into(),
                )),
            )));
            return;
        }
        if conns.with_untracked(|c| c.as_ref().is_none_or(|(asked, _)| *asked != id)) {
            conns.set(Some((id.clone(), None)));
        }
        leptos::task::spawn_local(async move {
            let answer = api::get::<ConnectionHistory>(&format!(
                "/api/v1/history/connections?port={port}&since=1h"
            ))
            .await;
            if selected.with_untracked(|s| s.as_deref() == Some(id.as_str())) {
                now.set(js_sys::Date::now());
                conns.set(Some((id, Some(answer))));
            }
        });
    });
    // What `portscope who` says of the selected row's port (working directories, who started
    // the owners, the clients on this machine): asked once per selection, not on every change.
    let who = RwSignal::new(None::<(String, Asked)>);
    Effect::new(move |_| {
        let Some(id) = selected.get() else {
            who.set(None);
            return;
        };
        let Some(port) = table.with_untracked(|t| t.rows.get(&id).map(|r| r.socket.local_port))
        else {
            return;
        };
        who.set(Some((id.clone(), Asked::Waiting)));
        leptos::task::spawn_local(async move {
            let answer = api::get::<WhoReport>(&format!("/api/v1/who?port={port}")).await;
            // Only if the selection is still the one asked about.
            if who.with_untracked(|w| w.as_ref().is_some_and(|(asked, _)| *asked == id)) {
                who.set(Some((id, answer.map_or_else(Asked::Failed, Asked::Got))));
            }
        });
    });
    let content = move || {
        let id = selected.get()?;
        let can_kill = hello.with(|h| h.as_ref().is_some_and(|h| h.can_kill));
        let asked = who.with(|w| {
            w.as_ref()
                .filter(|(asked, _)| *asked == id)
                .map_or(Asked::Waiting, |(_, a)| a.clone())
        });
        let chart = conns.with(|c| {
            c.as_ref()
                .filter(|(asked, _)| *asked == id)
                .map(|(_, answer)| match answer {
                    None => view! {
                        <section class="connections" id="connections">
                            <h4>"Connections, last hour"</h4>
                            <p class="muted small">"Reading the history…"</p>
                        </section>
                    }
                    .into_any(),
                    Some(answer) => connections_view(answer, now.get_untracked()),
                })
        });
        table.with(|t| {
            let row = t.rows.get(&id)?;
            Some(detail_view(
                t,
                &row.socket,
                selected,
                doctor,
                can_kill,
                asked,
                chart,
            ))
        })
    };
    view! { {content} }
}

/// The state of the detail panel's `who` question.
#[derive(Clone, Debug, PartialEq)]
enum Asked {
    Waiting,
    Got(WhoReport),
    Failed(String),
}

/// A process as `who` names it: `name (pid N)`.
fn named(p: &Process) -> String {
    format!("{} (pid {})", p.name, p.pid)
}

/// A process's command line as `who` prints it, or its name when the command line is
/// unreadable (kernel threads, exited processes).
fn command(p: &Process) -> String {
    if p.cmdline.is_empty() {
        p.name.clone()
    } else {
        p.cmdline.join(" ")
    }
}

/// The parent as name and pid: the nearest ancestor `who` found; pid 1 said in words (the
/// agent lists no ancestor then); the bare pid while `who` has not answered.
fn parent_text(p: &Process, owner: Option<&Owner>) -> String {
    match (owner.and_then(|o| o.ancestors.first()), p.ppid) {
        (Some(parent), _) => named(parent),
        (None, Some(1)) => "pid 1 (a daemon, or its parent exited)".into(),
        (None, Some(ppid)) => format!("pid {ppid}"),
        (None, None) => "none".into(),
    }
}

/// What "why can't I connect?" asks about for a TCP socket: a listener by the name clients use
/// (its interface address when bound to one), a connection by its peer when that is this
/// machine. `None` for UDP and for remote peers (the agent diagnoses local TCP ports only).
fn why_target(s: &Socket) -> Option<String> {
    if s.proto != Proto::Tcp {
        return None;
    }
    if s.is_listening() {
        return Some(if s.exposure == Some(Exposure::Interface) {
            s.local_endpoint().to_string()
        } else {
            format!("localhost:{}", s.local_port)
        });
    }
    let peer = s.remote_endpoint()?;
    peer.ip().is_loopback().then(|| peer.to_string())
}

/// The row's actions: who, why, bind, open in browser, copy a kill command, stop.
fn actions(t: &Table, s: &Socket, doctor: Doctor, can_kill: bool) -> impl IntoView + use<> {
    let port = s.local_port.to_string();
    let (who_port, bind_port) = (port.clone(), port.clone());
    let why = why_target(s).map(|target| {
        view! { <button id="action-why" on:click=move |_| doctor.ask(Kind::Why, target.clone())>"Why can't I connect?"</button> }
    });
    let open = (s.http && s.is_listening()).then(|| {
        let host = match s.exposure {
            Some(Exposure::Interface) => s.local_endpoint().to_string(),
            _ => format!("localhost:{}", s.local_port),
        };
        view! { <a class="button" id="action-open" href=format!("http://{host}/") target="_blank" rel="noopener noreferrer">"Open in browser"</a> }
    });
    let pid = (s.owner == OwnerStatus::Known)
        .then(|| s.pids.first().copied())
        .flatten();
    let copy = pid.map(|pid| {
        let command = format!("portscope kill --pid {pid}");
        view! { <button id="action-copy-kill" title=command.clone() on:click=move |_| api::copy(&command)>"Copy kill command"</button> }
    });
    // Without the start time the agent cannot tell the process from a later one with its pid.
    let stop = pid.filter(|_| can_kill).and_then(|pid| {
        let process = t.processes.get(&pid).cloned();
        let start_time = process.as_ref().and_then(|p| p.start_time)?;
        let sockets: Vec<String> = t
            .rows
            .values()
            .filter(|r| r.closed_at.is_none() && r.socket.pids.contains(&pid))
            .map(|r| format!("{} {} {}", r.socket.proto_label(), r.socket.local_endpoint(), r.socket.state.as_str()))
            .collect();
        let target = StopTarget {
            pid,
            start_time,
            name: process.as_ref().map_or_else(|| "process".into(), |p| p.name.clone()),
            command: process.map(|p| p.cmdline.join(" ")).unwrap_or_default(),
            sockets,
        };
        Some(view! { <button id="action-stop" class="danger" on:click=move |_| doctor.stopping.set(Some(target.clone()))>"Stop process…"</button> })
    });
    view! {
        <div class="actions">
            <button id="action-who" on:click=move |_| doctor.ask(Kind::Who, who_port.clone())>{format!("Who holds {port}?")}</button>
            {why}
            <button id="action-bind" on:click=move |_| doctor.ask(Kind::Bind, bind_port.clone())>"Can I bind it?"</button>
            {open}
            {copy}
            {stop}
        </div>
    }
}

fn detail_view(
    t: &Table,
    s: &Socket,
    selected: RwSignal<Option<String>>,
    doctor: Doctor,
    can_kill: bool,
    asked: Asked,
    chart: Option<AnyView>,
) -> impl IntoView + use<> {
    let actions = actions(t, s, doctor, can_kill);
    let labels: Vec<String> = [
        s.app.clone(),
        s.service.as_ref().map(|n| format!("IANA: {n}")),
        s.exposure.map(|e| e.explain().to_owned()),
        s.risk.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let processes: Vec<_> = s
        .pids
        .iter()
        .map(|pid| (*pid, t.processes.get(pid).cloned()))
        .collect();
    let owner_note = match s.owner {
        OwnerStatus::Known => None,
        OwnerStatus::Hidden => Some(format!(
            "Held by a process of uid {} that this agent may not inspect. Run portscope as root (sudo) to see it.",
            s.uid.map_or_else(|| "?".into(), |u| u.to_string())
        )),
        OwnerStatus::None => Some(
            "No process holds this socket (the kernel keeps it, e.g. in TIME_WAIT).".to_owned(),
        ),
    };
    let sections = processes
        .into_iter()
        .map(|(pid, p)| {
            let siblings: Vec<String> = t
                .rows
                .values()
                .filter(|r| r.closed_at.is_none() && r.socket.pids.contains(&pid))
                .map(|r| {
                    format!(
                        "{} {} → {} {}",
                        r.socket.proto_label(),
                        r.socket.local_endpoint(),
                        r.socket.remote_text(),
                        r.socket.state.as_str()
                    )
                })
                .collect();
            let report = match &asked {
                Asked::Got(report) => Some(report),
                _ => None,
            };
            let owner = report.and_then(|r| r.owners.iter().find(|o| o.process.pid == pid));
            let cwd = match (&asked, owner) {
                (Asked::Waiting, _) => "…".to_owned(),
                (_, Some(Owner { cwd: Some(cwd), .. })) => cwd.clone(),
                _ => "unknown".to_owned(),
            };
            let chain: Vec<String> = owner
                .map(|o| o.ancestors.iter().map(|a| format!("{} (pid {})", command(a), a.pid)).collect())
                .unwrap_or_default();
            let chain_text = chain.join(" ← ");
            let parent = p.as_ref().map(|p| parent_text(p, owner)).unwrap_or_default();
            match p {
                Some(p) => view! {
                    <section class="proc">
                        <h3>{format!("{} ", p.name)}<span class="muted">{format!("pid {pid}")}</span></h3>
                        <dl>
                            <dt>"Command"</dt><dd class="mono cmdline">{p.cmdline.join(" ")}</dd>
                            <dt>"Executable"</dt><dd class="mono">{p.exe.unwrap_or_else(|| "unknown".into())}</dd>
                            <dt>"User"</dt><dd>{p.user.unwrap_or_else(|| p.uid.map_or("unknown".into(), |u| format!("uid {u}")))}</dd>
                            <dt>"Directory"</dt><dd class="mono cwd">{cwd}</dd>
                            <dt>"Parent"</dt><dd class="parent">{parent}</dd>
                            {(!chain_text.is_empty()).then(|| view! { <dt>"Started by"</dt><dd class="mono started-by">{chain_text}</dd> })}
                            <dt>"Started"</dt><dd>{p.start_time.map_or("unknown".into(), format_time)}</dd>
                        </dl>
                        <h4>{format!("All its sockets ({})", siblings.len())}</h4>
                        <ul class="mono siblings">
                            {siblings.into_iter().map(|s| view! { <li>{s}</li> }).collect_view()}
                        </ul>
                    </section>
                }
                .into_any(),
                None => view! { <section class="proc"><p>{format!("pid {pid} exited or cannot be read.")}</p></section> }.into_any(),
            }
        })
        .collect_view();
    let who_note = match &asked {
        Asked::Waiting => Some(view! { <p class="muted">"Asking who holds it…"</p> }.into_any()),
        Asked::Failed(e) => Some(
            view! { <p class="note">{format!("Who holds it could not be asked: {e}")}</p> }
                .into_any(),
        ),
        Asked::Got(_) => None,
    };
    let clients = match &asked {
        Asked::Got(report) if !report.clients.is_empty() => {
            let items = report
                .clients
                .iter()
                .map(|c| {
                    let who = c.process.as_ref().map_or_else(|| "hidden or gone".to_owned(), named);
                    view! { <li><span class="mono">{format!("{} → {}", c.socket.local_endpoint(), c.socket.remote_text())}</span>" "{who}</li> }
                })
                .collect_view();
            Some(view! {
                <h4>{format!("Clients on this machine ({})", report.clients.len())}</h4>
                <ul class="siblings clients">{items}</ul>
            })
        }
        _ => None,
    };
    view! {
        <aside class="detail" id="detail" aria-label="Socket details">
            <button class="close" title="Close (Esc)" aria-label="Close the details" on:click=move |_| selected.set(None)>"×"</button>
            <h2 class="mono">{format!("{} {}", s.proto_label(), s.local_endpoint())}</h2>
            <p class="muted">{format!("{} · remote {}", s.state.as_str(), s.remote_text())}</p>
            <ul class="labels">{labels.into_iter().map(|l| view! { <li>{l}</li> }).collect_view()}</ul>
            {actions}
            {chart}
            {owner_note.map(|n| view! { <p class="note">{n}</p> })}
            {who_note}
            {sections}
            {clients}
        </aside>
    }
}

fn format_time(unix_secs: u64) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(unix_secs as f64 * 1000.0));
    String::from(date.to_locale_string("default", &JsValue::UNDEFINED))
}
