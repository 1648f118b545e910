//! The timeline's components (wasm32 only): the Timeline tab (an SVG drawn through Leptos from
//! the model's [`Layout`]: only the rows in the plot's view and a margin, one element per
//! bar), the "Recent changes" panel, the detail of a tenure whose owner is gone, and the
//! connections chart of a listener's detail. Data comes from the history routes through `api`
//! and from the live `Events` the link collects; every decision about what to draw (which
//! rows, which bars, which is the tab stop, which is highlighted) is the model's.

use std::sync::Arc;
use std::time::Duration;

use leptos::ev;
use leptos::html;
use leptos::prelude::*;
use portscope_shared::{ConnectionHistory, Event, Hello, OwnerStatus, Spans};
use wasm_bindgen::JsCast;

use super::connections::Chart;
use super::recent::{line, matches, port_of, recent};
use super::time::{self, DAY_MS, HOUR_MS, MINUTE_MS};
use super::{
    AXIS_PX, Bar, BarId, GROUP_PX, HealthPoint, LANE_PX, ListenerKey, Row, Scale, Tenure, Window,
    lanes, layout, merge, neighbour, restart_marks,
};
use crate::api;
use crate::table::Table;

/// Minutes east of UTC of the browser's clock, for local times.
pub fn offset_min() -> i32 {
    -(js_sys::Date::new_0().get_timezone_offset() as i32)
}

/// How many events "Recent changes" shows.
pub const RECENT: usize = 50;

/// Most spans one request asks for (the route's maximum): a week of 200 restless ports.
const SPANS_LIMIT: usize = 20_000;

/// How often a peer's timeline asks its history again (no live events come for it).
const PEER_REFETCH_MS: f64 = 10_000.0;

/// Presets: (button text, length).
const PRESETS: [(&str, f64); 3] = [
    ("Last hour", HOUR_MS),
    ("Last day", DAY_MS),
    ("Last week", 7.0 * DAY_MS),
];

/// The tenure the timeline points at: the detail's subject, drawn highlighted. `live_row` is
/// the table row of its listener while its owner still holds it (the socket detail shows it
/// then), `None` for a tenure that ended (the tenure's own detail shows it).
#[derive(Clone, Debug, PartialEq)]
pub struct Picked {
    pub tenure: Tenure,
    pub live_row: Option<String>,
}

/// The timeline's state, shared with the page (the recent changes move its window).
#[derive(Clone, Copy, Debug)]
pub struct TimelineState {
    /// The window shown; it follows the present while `follow` is set.
    pub window: RwSignal<Window>,
    pub follow: RwSignal<bool>,
    /// Tenures from the history's spans (or, without a history, what was open at the page's
    /// opening), before the live events are merged in.
    pub base: RwSignal<Vec<Tenure>>,
    /// The time the base covers (`end` `None`: up to now).
    pub fetched: RwSignal<Option<(f64, Option<f64>)>>,
    /// What the timeline must say about its data (an error, a truncated answer).
    pub note: RwSignal<Option<String>>,
    pub picked: RwSignal<Option<Picked>>,
    /// The clock the open bars grow with (ms since the epoch), a tick every few seconds.
    pub now: RwSignal<f64>,
    /// Base and live events merged (shared with each drawing made from it, whose bars name
    /// tenures by their index in it).
    pub tenures: Memo<Arc<Vec<Tenure>>>,
    /// Whose listeners it shows: this machine's (`None`), or a hub's peer's, from the peer's
    /// history relayed by the hub (fetched again every [`PEER_REFETCH_MS`]: the page gets no
    /// live events of a peer).
    pub host: Signal<Option<String>>,
    /// With all hosts picked on a hub: the peers whose histories are merged with this
    /// machine's, each on lanes named after it (empty otherwise).
    pub others: Signal<Vec<String>>,
}

impl TimelineState {
    pub fn new(
        events: RwSignal<Vec<Event>>,
        host: Signal<Option<String>>,
        others: Signal<Vec<String>>,
    ) -> Self {
        let now = RwSignal::new(js_sys::Date::now());
        let base = RwSignal::new(Vec::new());
        // The live events are this machine's: a peer's timeline is its history alone.
        let tenures = Memo::new(move |_| {
            let local = host.with(Option::is_none);
            Arc::new(base.with(|b: &Vec<Tenure>| {
                if local {
                    events.with(|e| merge(b.clone(), e))
                } else {
                    merge(b.clone(), &[])
                }
            }))
        });
        Self {
            window: RwSignal::new(Window::last(HOUR_MS, now.get_untracked())),
            follow: RwSignal::new(true),
            base,
            fetched: RwSignal::new(None),
            note: RwSignal::new(None),
            picked: RwSignal::new(None),
            now,
            tenures,
            host,
            others,
        }
    }

    /// Shows `t`'s moment (the window moves there when it lies outside) and points at it.
    pub fn show(&self, tenure: Tenure, live_row: Option<String>) {
        let window = self.window.get_untracked();
        let now = self.now.get_untracked();
        let end = tenure.end_or(now);
        if !(tenure.start < window.end && end > window.start) {
            let len = window.len().max((end - tenure.start) * 1.5);
            let mid = (tenure.start + end) / 2.0;
            let start = (mid - len / 2.0).min(now - len);
            self.follow.set(false);
            self.window.set(Window {
                start,
                end: start + len,
            });
        }
        self.picked.set(Some(Picked { tenure, live_row }));
    }
}

/// The table row of a tenure's listener while the same owner still holds it, among the rows
/// of `host` (the timeline's machine).
pub fn live_row(table: &Table, t: &Tenure, host: Option<&str>) -> Option<String> {
    if t.end.is_some() {
        return None;
    }
    table
        .rows
        .values()
        .find(|r| {
            let s = &r.socket;
            r.closed_at.is_none()
                && s.host.as_deref() == host
                && s.is_listening()
                && ListenerKey::of_socket(s) == t.key
                && s.owner == OwnerStatus::Known
                && t.pid.is_some_and(|pid| s.pids.contains(&pid))
        })
        .map(|r| r.key.clone())
}

/// The tenure an event began or ended, among the merged ones.
pub fn tenure_of_event(tenures: &[Tenure], e: &Event) -> Option<Tenure> {
    let at = time::parse(&e.time)?;
    let key = ListenerKey::of_event(e);
    tenures
        .iter()
        .filter(|t| t.key == key && t.pid == e.pid)
        .min_by(|a, b| {
            let d = |t: &Tenure| match e.kind {
                portscope_shared::EventKind::Closed | portscope_shared::EventKind::Exited => {
                    (t.end.unwrap_or(f64::INFINITY) - at).abs()
                }
                _ => (t.start - at).abs(),
            };
            d(a).total_cmp(&d(b))
        })
        .cloned()
}

/// Keeps `base` in step: the history's spans of the window (fetched again when the window
/// leaves what was fetched), or, without a history, the listeners open when the page opened.
pub fn keep_base(
    state: TimelineState,
    hello: Signal<Option<Hello>>,
    table: RwSignal<Table>,
    active: Signal<bool>,
) {
    let request = StoredValue::new(0u64);
    let seeded = StoredValue::new(None::<Option<String>>);
    // Another machine picked (or other peers merged): what was fetched or seeded is another's.
    let shown = StoredValue::new(None::<(Option<String>, Vec<String>)>);
    // When a peer's spans were fetched (its timeline has no live events to move it on).
    let fetched_at = StoredValue::new(0.0f64);
    Effect::new(move |_| {
        let host = state.host.get();
        let others = state.others.get();
        let now_shown = (host.clone(), others.clone());
        if shown.with_value(|s| s.as_ref() != Some(&now_shown)) {
            shown.set_value(Some(now_shown));
            state.fetched.set(None);
            state.base.set(Vec::new());
            state.picked.set(None);
        }
        // Peers' histories come without live events: asked again every little while.
        let remote = host.is_some() || !others.is_empty();
        let Some(history) = hello.with(|h| h.as_ref().map(|h| h.history)) else {
            return;
        };
        if !history {
            // Once per machine: what is open now began at the latest now, as far as this page
            // knows.
            if seeded.get_value().as_ref() != Some(&host)
                && table.with(|t| t.loaded(host.as_deref()))
            {
                seeded.set_value(Some(host.clone()));
                let now = js_sys::Date::now();
                let seeds = table.with_untracked(|t| seed_tenures(t, now, host.as_deref()));
                state.base.set(seeds);
            }
            return;
        }
        if !active.get() {
            return;
        }
        let window = state.window.get();
        let now = if remote {
            state.now.get()
        } else {
            state.now.get_untracked()
        };
        let covered = state.fetched.with(|f| {
            f.is_some_and(|(start, end)| {
                start <= window.start && end.is_none_or(|e| e >= window.end)
            })
        });
        let stale = remote && now - fetched_at.get_value() > PEER_REFETCH_MS;
        if covered && !stale {
            return;
        }
        fetched_at.set_value(now);
        // A margin on each side, so that a little panning needs no new request.
        let since = window.start - window.len() / 2.0;
        let until = (window.end + window.len() / 2.0 < now - MINUTE_MS)
            .then(|| window.end + window.len() / 2.0);
        let n = request.get_value() + 1;
        request.set_value(n);
        let mut path = format!(
            "/api/v1/history/spans?since={}&limit={SPANS_LIMIT}",
            time::format_utc(since)
        );
        if let Some(until) = until {
            path.push_str(&format!("&until={}", time::format_utc(until)));
        }
        // The host picked, or this machine and, with all hosts picked, each peer merged in.
        let mut asks = vec![(None, api::on_host(&path, host.as_deref()))];
        asks.extend(
            others
                .iter()
                .map(|peer| (Some(peer.clone()), api::on_host(&path, Some(peer)))),
        );
        // Mark it fetched at once, so that the ticks of the clock ask no second time.
        state.fetched.set(Some((since, until)));
        leptos::task::spawn_local(async move {
            let mut base = Vec::new();
            let mut notes = Vec::new();
            for (peer, path) in asks {
                let answer = api::get::<Spans>(&path).await;
                if request.get_value() != n {
                    return;
                }
                let whose = peer
                    .as_deref()
                    .map_or_else(String::new, |p| format!(" of {p}"));
                match answer {
                    Ok(spans) => {
                        if spans.truncated {
                            notes.push(format!("The history{whose} holds more than {SPANS_LIMIT} listener lives in this window: the earliest are left out. Zoom in to see them."));
                        }
                        let tenures = spans.spans.iter().filter_map(Tenure::from_span);
                        match &peer {
                            Some(peer) => base.extend(tenures.map(|t| t.on(peer))),
                            None => base.extend(tenures),
                        }
                    }
                    Err(e) if peer.is_some() => {
                        notes.push(format!("The history{whose} could not be read ({e})."));
                    }
                    Err(e) => {
                        state.fetched.set(None);
                        notes.push(format!(
                            "The history could not be read ({e}): showing the changes since this page opened."
                        ));
                    }
                }
            }
            state.note.set((!notes.is_empty()).then(|| notes.join(" ")));
            state.base.set(base);
        });
    });
}

/// The listeners of `host` (this machine's: `None`) in the table as tenures that began no later
/// than `now`.
fn seed_tenures(table: &Table, now: f64, host: Option<&str>) -> Vec<Tenure> {
    table
        .rows
        .values()
        .filter(|r| {
            r.closed_at.is_none() && r.socket.host.as_deref() == host && r.socket.is_listening()
        })
        .map(|r| {
            let s = &r.socket;
            let pid = s.pids.first().copied();
            let process = pid.and_then(|p| table.process(host, p));
            Tenure {
                key: ListenerKey::of_socket(s),
                pid,
                process: process.map(|p| p.name.clone()),
                cmdline: process.map(|p| p.cmdline.clone()).unwrap_or_default(),
                user: process.and_then(|p| p.user.clone()),
                app: s.app.clone(),
                start: now,
                start_since: None,
                end: None,
                before_page: true,
                // Without a history, what its check says now is all there is.
                health: s.health.iter().map(|h| HealthPoint::new(now, h)).collect(),
                project: process.and_then(|p| Some(p.project.as_ref()?.name.clone())),
            }
        })
        .collect()
}

/// The Timeline tab: range buttons, zoom and pan, and the lanes.
#[component]
pub fn Timeline(
    state: TimelineState,
    active: Signal<bool>,
    hello: Signal<Option<Hello>>,
    table: RwSignal<Table>,
    query: Signal<String>,
    selected: RwSignal<Option<String>>,
    /// On a hub with all hosts picked: that the timeline is this machine's alone.
    host_note: Signal<Option<String>>,
) -> impl IntoView {
    let offset = offset_min();
    let plot_ref = NodeRef::<html::Div>::new();
    let width = RwSignal::new(800.0);
    // The plot's scroll position and height, which pick the rows to draw (as the table's do).
    let scroll_top = RwSignal::new(0.0);
    let viewport = RwSignal::new(1000.0);
    let measure = move || {
        if let Some(el) = plot_ref.get_untracked() {
            let w = f64::from(el.client_width());
            if w > 0.0 && w != width.get_untracked() {
                width.set(w);
            }
            // Hidden, it measures nothing: the last height stands.
            let h = f64::from(el.client_height());
            if h > 0.0 && h != viewport.get_untracked() {
                viewport.set(h);
            }
            let top = f64::from(el.scroll_top());
            if top != scroll_top.get_untracked() {
                scroll_top.set(top);
            }
        }
    };
    Effect::new(move |_| {
        if active.get() {
            set_timeout(measure, Duration::ZERO);
        }
    });
    crate::plot::on_resize(plot_ref, measure);
    let label_px = Memo::new(move |_| if width.get() < 560.0 { 100.0 } else { 170.0 });
    let scale = Memo::new(move |_| {
        let label = label_px.get();
        Scale {
            window: state.window.get(),
            x0: label,
            width: (width.get() - label - 12.0).max(40.0),
        }
    });
    // The present moves on, and a following window with it: redrawn once it moved a pixel
    // (every few seconds for an hour, every quarter hour for a week), not on every tick.
    set_interval(
        move || {
            if !(active.get_untracked() || state.picked.with_untracked(Option::is_some)) {
                return;
            }
            let now = js_sys::Date::now();
            let s = scale.get_untracked();
            if (now - state.now.get_untracked()) / s.window.len() * s.width < 1.0 {
                return;
            }
            state.now.set(now);
            if state.follow.get_untracked() {
                state.window.update(|w| *w = Window::last(w.len(), now));
            }
        },
        Duration::from_secs(1),
    );
    // The layout, with the tenures it was made from and a number of its own: the rows drawn
    // are keyed by it, so that scrolling keeps the rows it does not move, while a new layout
    // (zoom, pan, the clock, a change) draws the rows in view anew.
    type Drawing = (super::Layout, Arc<Vec<Tenure>>, u64);
    let generation = StoredValue::new(0u64);
    let drawn: Memo<Drawing> = Memo::new(move |_| {
        let scale = scale.get();
        let now = state.now.get();
        let q = query.get();
        let tenures = state.tenures.get();
        let groups = lanes(&tenures, scale.window, now, &q);
        let n = generation.get_value() + 1;
        generation.set_value(n);
        (layout(&tenures, &groups, scale, now, offset), tenures, n)
    });
    // The rows in the plot's view and a margin: the only ones in the DOM.
    let rows_drawn = Memo::new(move |_| {
        let (top, height) = (scroll_top.get(), viewport.get());
        drawn.with(|(d, _, _)| d.rows_in_view(top, height))
    });
    // The keyboard's bar, by identity (its lane and a tenure it shows), so that it stays the
    // same bar when the drawing changes around it; and where it is drawn now.
    let cursor = RwSignal::new(None::<BarId>);
    let cursor_at = Memo::new(move |_| {
        cursor.with(|id| {
            drawn.with(|(d, tenures, _)| id.as_ref().and_then(|id| d.locate(tenures, id)))
        })
    });
    // The drawing's one tab stop, always among the rows drawn.
    let tab_stop = Memo::new(move |_| {
        let rows = rows_drawn.get();
        let at = cursor_at.get();
        drawn.with(|(d, _, _)| super::tab_stop(d, rows, at))
    });
    // The bar of the picked tenure, drawn highlighted.
    let picked_at = Memo::new(move |_| {
        state.picked.with(|p| {
            drawn.with(|(d, tenures, _)| p.as_ref().and_then(|p| d.bar_showing(tenures, &p.tenure)))
        })
    });
    // The tab stop and the highlight move without drawing anything anew: the bars are drawn
    // with the marks of the moment (static attributes, no effect per bar), and this one effect
    // moves the marks on the bars in the DOM when they change.
    Effect::new(move |before: Option<Marks>| {
        let marks = (tab_stop.get(), picked_at.get());
        if let Some((stop, picked)) = before {
            if stop != marks.0 {
                set_tab_stop(stop, false);
                set_tab_stop(marks.0, true);
            }
            if picked != marks.1 {
                set_picked(picked, false);
                set_picked(marks.1, true);
            }
        }
        marks
    });
    // A new layout draws the rows anew, and scrolling moves the rows drawn in the DOM (the
    // keyed `For` moves nodes when rows come in above), which drops the focus a bar had: give
    // it back to the keyboard's bar while it is drawn, without scrolling to it (the plot may
    // be scrolled away from it on purpose).
    let bar_focused = StoredValue::new(false);
    let _focus = window_event_listener(ev::focusin, move |e| {
        let on_bar = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|el| el.closest("#timeline-svg .bar").ok().flatten().is_some());
        bar_focused.set_value(on_bar);
    });
    Effect::new(move |_| {
        drawn.track();
        let drawn_rows = rows_drawn.get();
        let here = cursor_at
            .get_untracked()
            .is_some_and(|(r, _)| drawn_rows.contains(&r));
        if bar_focused.get_value() && here {
            set_timeout(
                || {
                    let lost = document()
                        .active_element()
                        .is_none_or(|el| el.tag_name() == "BODY");
                    if lost {
                        focus_stop(false);
                    }
                },
                Duration::ZERO,
            );
        }
    });
    let open = move |tenure: Tenure| {
        let row =
            table.with_untracked(|t| live_row(t, &tenure, state.host.get_untracked().as_deref()));
        selected.set(row.clone());
        state.picked.set(Some(Picked {
            tenure,
            live_row: row,
        }));
    };
    // Drag to pan: where the pointer went down and the window then; a drag is no click.
    let drag = StoredValue::new(None::<(f64, Window)>);
    let dragged = StoredValue::new(false);
    let on_down = move |e: web_sys::PointerEvent| {
        if e.button() != 0 {
            return;
        }
        drag.set_value(Some((
            f64::from(e.client_x()),
            state.window.get_untracked(),
        )));
        dragged.set_value(false);
    };
    let on_move = move |e: web_sys::PointerEvent| {
        let Some((x, from)) = drag.get_value() else {
            return;
        };
        let dx = f64::from(e.client_x()) - x;
        if dx.abs() < 4.0 && !dragged.get_value() {
            return;
        }
        dragged.set_value(true);
        let now = state.now.get_untracked();
        let to = from.pan(-dx / scale.get_untracked().width, now);
        state.follow.set(to.end >= now - 1.0);
        state.window.set(to);
    };
    let on_up = move |_| drag.set_value(None);
    // Zooming at the right edge of a window that follows the present keeps following it;
    // anywhere else it zooms around that moment.
    let zoom = move |factor: f64, anchor: f64| {
        let now = js_sys::Date::now();
        state.now.set(now);
        let window = state.window.get_untracked();
        let follow = state.follow.get_untracked() && anchor >= 0.99;
        let mut w = if follow {
            Window::last(window.len(), now).zoom(factor, 1.0)
        } else {
            window.zoom(factor, anchor)
        };
        if w.end > now {
            w = Window::last(w.len(), now);
        }
        state.follow.set(follow || w.end >= now - 1.0);
        state.window.set(w);
    };
    let pan = move |fraction: f64| {
        let now = js_sys::Date::now();
        state.now.set(now);
        let w = state.window.get_untracked().pan(fraction, now);
        state.follow.set(w.end >= now - 1.0);
        state.window.set(w);
    };
    let on_wheel = move |e: web_sys::WheelEvent| {
        let s = scale.get_untracked();
        let rect = plot_ref
            .get_untracked()
            .map(|el| el.get_bounding_client_rect().left())
            .unwrap_or(0.0);
        let anchor = ((f64::from(e.client_x()) - rect - s.x0) / s.width).clamp(0.0, 1.0);
        if e.ctrl_key() || e.meta_key() {
            e.prevent_default();
            zoom((e.delta_y() * 0.002).exp(), anchor);
        } else if e.shift_key() || e.delta_x().abs() > e.delta_y().abs() {
            e.prevent_default();
            let d = if e.delta_x() != 0.0 {
                e.delta_x()
            } else {
                e.delta_y()
            };
            pan(d / s.width);
        }
    };
    let range_text = move || {
        let w = state.window.get();
        format!(
            "{} – {} ({})",
            time::date_time(w.start, offset),
            if state.follow.get() {
                "now".to_owned()
            } else {
                time::date_time(w.end, offset)
            },
            time::duration(w.len())
        )
    };
    let no_history = move || hello.with(|h| h.as_ref().is_some_and(|h| !h.history));
    let count = move || {
        drawn.with(|(d, _, _)| {
            let lanes = d
                .rows
                .iter()
                .filter(|r| matches!(r, Row::Lane { .. }))
                .count();
            let bars = d.bar_count();
            format!("{lanes} ports, {bars} bars")
        })
    };

    // One element per bar: its `<rect>` is the button (role, name, tab stop) and holds the
    // `<title>` that hovering shows. Clicks, keys and focus are handled once, on the `<svg>`,
    // for the bar they reach (`data-at`).
    let bar_view = move |row: usize,
                         index: usize,
                         bar: &Bar,
                         tenures: &[Tenure],
                         (stop, picked): (bool, bool)| {
        let now = state.now.get_untracked();
        let title = if bar.tenures.len() == 1 {
            tenures[bar.tenures[0]].describe(now, offset)
        } else {
            let mut names: Vec<String> = bar
                .tenures
                .iter()
                .map(|&i| {
                    let t = &tenures[i];
                    t.pid.map_or_else(
                        || t.program().to_owned(),
                        |p| format!("{} (pid {p})", t.program()),
                    )
                })
                .collect();
            names.dedup();
            let shown = names.iter().take(6).cloned().collect::<Vec<_>>().join(", ");
            format!(
                "{} listeners too close together to draw apart: {shown}{} — zoom in to see each",
                bar.tenures.len(),
                if names.len() > 6 { ", …" } else { "" }
            )
        };
        let first = &tenures[bar.tenures[0]];
        let class = format!(
            "bar {}{}{}{}",
            bar.colour
                .map_or_else(|| "mixed".to_owned(), |c| format!("c{c}")),
            if bar.open { " open" } else { " ended" },
            if bar.tenures.len() > 1 { " merged" } else { "" },
            if picked { " picked" } else { "" },
        );
        let label = title.replace('\n', "; ");
        // Its height, its place in the lane and its corners are the stylesheet's (`.bar`).
        view! {
            <rect
                class=class
                role="button"
                tabindex=if stop { "0" } else { "-1" }
                aria-label=label
                data-at=format!("{row}-{index}")
                data-key=format!("{} {}", first.key.proto_label(), first.key.endpoint())
                data-host=first.key.host.clone()
                x=format!("{:.1}", bar.x)
                width=format!("{:.1}", bar.width)
            >
                <title>{title}</title>
            </rect>
        }
    };
    // One row (a group's heading or a lane) of the current layout, as the rows' `For` draws it.
    let row_view = move |r: usize| -> AnyView {
        let s = scale.get_untracked();
        let w = width.get_untracked();
        drawn.with_untracked(|(d, tenures, _)| match &d.rows[r] {
            Row::Group { y, name, colour } => view! {
                <g class="group">
                    <rect class=format!("swatch c{colour}") x="4" y=y + 7.0 width="10" height="10" rx="2" />
                    <text class="group-name" x="20" y=y + 16.0>{name.clone()}</text>
                    <line class="group-line" x1="0" x2=w y1=*y + GROUP_PX y2=*y + GROUP_PX />
                </g>
            }
            .into_any(),
            Row::Lane { y, label, addrs, bars, health } => {
                let (stop, picked) = (tab_stop.get_untracked(), picked_at.get_untracked());
                let bars_view = bars
                    .iter()
                    .enumerate()
                    .map(|(b, bar)| {
                        let marks = (stop == Some((r, b)), picked == Some((r, b)));
                        bar_view(r, b, bar, tenures, marks)
                    })
                    .collect_view();
                // The lane is moved to its row: its bars and marks are drawn from y = 0.
                let restarts = restart_marks(bars, 0.0).map(|d| view! { <path class="restart" d=d /> });
                let up = health.up.clone().map(|d| view! { <path class="health-up" d=d /> });
                let down = health.down.clone().map(|d| view! { <path class="health-down" d=d /> });
                view! {
                    <g class="lane" transform=format!("translate(0 {y})") data-port=label.rsplit(' ').next().unwrap_or_default().to_owned()>
                        <text class="lane-label" x="20" y="16">{label.clone()}<tspan class="lane-addr" dx="6">{addrs.clone()}</tspan></text>
                        <line class="lane-line" x1=s.x0 x2=s.x0 + s.width y1=LANE_PX / 2.0 y2=LANE_PX / 2.0 />
                        {bars_view}
                        {restarts}
                        {up}
                        {down}
                    </g>
                }
                .into_any()
            }
        })
    };
    // The bar an event reached: `data-at` of the `.bar` it came from (row-bar of the layout).
    let bar_at = move |e: &web_sys::Event| -> Option<(usize, usize)> {
        let el = e
            .target()?
            .dyn_into::<web_sys::Element>()
            .ok()?
            .closest(".bar")
            .ok()??;
        let at = el.get_attribute("data-at")?;
        let (r, b) = at.split_once('-')?;
        let (r, b) = (r.parse().ok()?, b.parse().ok()?);
        drawn
            .with_untracked(|(d, _, _)| b < d.bars(r).len())
            .then_some((r, b))
    };
    let on_click = move |e: web_sys::MouseEvent| {
        if dragged.get_value() {
            dragged.set_value(false);
            return;
        }
        let Some((r, b)) = bar_at(&e) else { return };
        let s = scale.get_untracked();
        let left = plot_ref
            .get_untracked()
            .map(|el| el.get_bounding_client_rect().left())
            .unwrap_or(0.0);
        let at = s.time(f64::from(e.client_x()) - left);
        let now = state.now.get_untracked();
        let tenure = drawn.with_untracked(|(d, tenures, _)| {
            tenures[d.bars(r)[b].tenure_at(tenures, at, now)].clone()
        });
        open(tenure);
    };
    let on_key = move |e: web_sys::KeyboardEvent| {
        let Some((row, index)) = bar_at(&e) else {
            return;
        };
        let key = e.key();
        if key == "Enter" || key == " " {
            e.prevent_default();
            let last = drawn.with_untracked(|(d, tenures, _)| {
                let bar = &d.bars(row)[index];
                tenures[*bar.tenures.last().expect("a bar has a tenure")].clone()
            });
            open(last);
            return;
        }
        let Some((r, b)) = drawn.with_untracked(|(d, _, _)| neighbour(d, row, index, &key)) else {
            return;
        };
        e.prevent_default();
        cursor.set(drawn.with_untracked(|(d, tenures, _)| d.id(tenures, r, b)));
        // A lane scrolled out of the rows drawn is scrolled near first, then focused.
        if !rows_drawn.get_untracked().contains(&r)
            && let Some(el) = plot_ref.get_untracked()
        {
            let y = drawn.with_untracked(|(d, _, _)| d.rows[r].y());
            el.set_scroll_top((y - f64::from(el.client_height()) / 2.0).max(0.0) as i32);
            measure();
        }
        set_timeout(|| focus_stop(true), Duration::ZERO);
    };
    let on_focus = move |e: web_sys::FocusEvent| {
        let Some((r, b)) = bar_at(&e) else { return };
        let me = drawn.with_untracked(|(d, tenures, _)| d.id(tenures, r, b));
        if cursor.get_untracked() != me {
            cursor.set(me);
        }
    };

    let svg = move || {
        // The axis, its grid and the present: a few elements, drawn anew with each layout.
        let axis = move || {
            let s = scale.get();
            let now = state.now.get();
            drawn.with(|(d, _, _)| {
                // A label that would run past the plot's right edge is left out (its line stays).
                let ticks = d
                    .ticks
                    .iter()
                    .map(|t| {
                        let label = (t.x + 40.0 <= s.x0 + s.width).then(|| {
                            view! { <text class="tick" x=t.x + 3.0 y=14>{t.label.clone()}</text> }
                        });
                        view! {
                            <line class="grid" x1=t.x x2=t.x y1=AXIS_PX - 4.0 y2=d.height />
                            {label}
                        }
                    })
                    .collect_view();
                let now_x = s.window.contains(now).then(|| {
                    let x = s.x(now);
                    view! { <line class="now" x1=x x2=x y1=AXIS_PX - 4.0 y2=d.height /> }
                });
                view! { {ticks} {now_x} }
            })
        };
        view! {
            <svg
                id="timeline-svg"
                class="timeline-svg"
                width=move || width.get()
                height=move || drawn.with(|(d, _, _)| d.height.max(AXIS_PX + 40.0))
                aria-labelledby="timeline-title"
                aria-describedby="timeline-range"
                on:click=on_click
                on:keydown=on_key
                on:focusin=on_focus
            >
                {axis}
                <For
                    each=move || {
                        let n = drawn.with(|d| d.2);
                        rows_drawn.get().map(|r| (r, n)).collect::<Vec<_>>()
                    }
                    key=|row| *row
                    children=move |(r, _)| row_view(r)
                />
            </svg>
        }
    };

    let empty = move || {
        drawn.with(|(d, _, _)| d.rows.is_empty()).then(|| {
            let text = if query.with(|q| q.is_empty()) {
                "No listener opened, closed or lasted in this window."
            } else {
                "No port in this window matches the filter."
            };
            view! { <p class="empty">{text}</p> }
        })
    };

    view! {
        <section class="timeline" id="panel-timeline" role="tabpanel" aria-labelledby="tab-timeline" hidden=move || !active.get()>
            <h2 class="visually-hidden" id="timeline-title">"Timeline of listeners"</h2>
            <div class="timeline-bar">
                <div class="presets" role="group" aria-label="Window">
                    {PRESETS
                        .into_iter()
                        .map(|(text, len)| {
                            let pressed = move || {
                                let w = state.window.get();
                                state.follow.get() && (w.len() - len).abs() < 1.0
                            };
                            view! {
                                <button
                                    type="button"
                                    data-range=format!("{}", (len / HOUR_MS) as u64)
                                    aria-pressed=move || if pressed() { "true" } else { "false" }
                                    on:click=move |_| {
                                        let now = js_sys::Date::now();
                                        state.now.set(now);
                                        state.follow.set(true);
                                        state.window.set(Window::last(len, now));
                                    }
                                >
                                    {text}
                                </button>
                            }
                        })
                        .collect_view()}
                </div>
                <div class="zoom" role="group" aria-label="Zoom and pan">
                    <button type="button" id="tl-earlier" title="Earlier" aria-label="Earlier" on:click=move |_| pan(-0.5)>"◀"</button>
                    <button type="button" id="tl-zoom-out" title="Zoom out" aria-label="Zoom out" on:click=move |_| zoom(2.0, 1.0)>"−"</button>
                    <button type="button" id="tl-zoom-in" title="Zoom in" aria-label="Zoom in" on:click=move |_| zoom(0.5, if state.follow.get_untracked() { 1.0 } else { 0.5 })>"+"</button>
                    <button type="button" id="tl-later" title="Later" aria-label="Later" on:click=move |_| pan(0.5)>"▶"</button>
                </div>
                <span class="range" id="timeline-range">{range_text}</span>
                <span class="count" id="timeline-count">{count}</span>
            </div>
            {move || no_history().then(|| view! {
                <p class="note" id="timeline-no-history">"This agent keeps no history (started with --no-history): showing changes since this page opened."</p>
            })}
            {move || host_note.get().map(|n| view! { <p class="note" id="timeline-host-note">{n}</p> })}
            {move || state.note.get().map(|n| view! { <p class="note" id="timeline-note">{n}</p> })}
            <p class="hint muted">"Drag or Shift+wheel to pan, Ctrl+wheel to zoom; arrow keys move between bars, Enter opens one. Under an HTTP server's bar, a line shows its health checks: "<span class="key health-up-key"></span>" up, "<span class="key health-down-key"></span>" down."</p>
            <div
                class="plot"
                node_ref=plot_ref
                on:pointerdown=on_down
                on:pointermove=on_move
                on:pointerup=on_up
                on:pointerleave=on_up
                on:wheel=on_wheel
                on:scroll=move |_| measure()
            >
                <Show when=move || active.get()>{svg}</Show>
                {empty}
            </div>
        </section>
    }
}

/// The drawing's tab stop and its picked bar, as (row, bar) of the layout.
type Marks = (Option<(usize, usize)>, Option<(usize, usize)>);

/// The bar `at` of the drawing, when it is in the DOM.
fn bar_element(at: Option<(usize, usize)>) -> Option<web_sys::Element> {
    let (r, b) = at?;
    document()
        .query_selector(&format!("#timeline-svg .bar[data-at=\"{r}-{b}\"]"))
        .ok()
        .flatten()
}

/// Makes the bar `at` the drawing's tab stop, or no longer.
fn set_tab_stop(at: Option<(usize, usize)>, stop: bool) {
    if let Some(el) = bar_element(at) {
        let _ = el.set_attribute("tabindex", if stop { "0" } else { "-1" });
    }
}

/// Highlights the bar `at` as the picked one, or no longer.
fn set_picked(at: Option<(usize, usize)>, picked: bool) {
    if let Some(el) = bar_element(at) {
        let _ = el.class_list().toggle_with_force("picked", picked);
    }
}

/// Focuses the drawing's tab stop (the keyboard's bar) once it is drawn; `scroll`: brought
/// into view, as the keyboard moving to it wants (giving a redrawn bar its focus back does
/// not move the plot).
fn focus_stop(scroll: bool) {
    if let Some(el) = document()
        .query_selector("#timeline-svg .bar[tabindex=\"0\"]")
        .ok()
        .flatten()
        .and_then(|el| el.dyn_into::<web_sys::SvgElement>().ok())
    {
        let options = web_sys::FocusOptions::new();
        options.set_prevent_scroll(!scroll);
        let _ = el.focus_with_options(&options);
    }
}

/// "Recent changes": the last [`RECENT`] listener events, newest first; each links to its row
/// or its bar (`pick`).
#[component]
pub fn RecentChanges(
    hello: Signal<Option<Hello>>,
    events: RwSignal<Vec<Event>>,
    query: Signal<String>,
    pick: Callback<Event>,
    /// Whose changes: this machine's (`None`), or a hub's peer's from its relayed history.
    host: Signal<Option<String>>,
) -> impl IntoView {
    let offset = offset_min();
    let history = RwSignal::new(Vec::<Event>::new());
    let failed = RwSignal::new(None::<String>);
    let request = StoredValue::new(0u64);
    // A peer's changes come from its history alone: asked again every little while.
    let again = RwSignal::new(0u32);
    set_interval(
        move || {
            if host.with_untracked(Option::is_some) {
                again.update(|n| *n += 1);
            }
        },
        Duration::from_millis(PEER_REFETCH_MS as u64),
    );
    // The last hour from the history: of the filter's port when it names one (a busy machine's
    // last 50 changes would leave it out), else of every port; asked again when that changes.
    let asked_port = Memo::new(move |_| query.with(|q| port_of(q)));
    Effect::new(move |_| {
        let port = asked_port.get();
        let host = host.get();
        again.track();
        if hello.with(|h| h.as_ref().map(|h| h.history)) != Some(true) {
            history.set(Vec::new());
            return;
        }
        let n = request.get_value() + 1;
        request.set_value(n);
        // A number may be a pid as well as a port: the port's changes and the last ones.
        let mut paths = vec![format!("/api/v1/history?since=1h&limit={RECENT}")];
        if let Some(port) = port {
            paths.push(format!("{}&port={port}", paths[0]));
        }
        let paths: Vec<String> = paths
            .iter()
            .map(|p| api::on_host(p, host.as_deref()))
            .collect();
        leptos::task::spawn_local(async move {
            #[derive(serde::Deserialize)]
            struct Answer {
                events: Vec<Event>,
            }
            let mut got = Vec::new();
            for path in paths {
                let answer = api::get::<Answer>(&path).await;
                if request.get_value() != n {
                    return;
                }
                match answer {
                    Ok(a) => got.extend(a.events),
                    Err(e) => {
                        failed.set(Some(e));
                        return;
                    }
                }
            }
            // Newest first, as one answer would be; `recent` drops the events both held.
            got.sort_by(|a, b| {
                let at = |e: &Event| time::parse(&e.time).unwrap_or(f64::NEG_INFINITY);
                at(b).total_cmp(&at(a))
            });
            failed.set(None);
            history.set(got);
        });
    });
    let list = Memo::new(move |_| {
        // The live events are this machine's.
        let local = host.with(Option::is_none);
        query.with(|q| {
            history.with(|h| {
                events.with(|live| {
                    let h: Vec<Event> = h.iter().filter(|e| matches(e, q)).cloned().collect();
                    let live: Vec<Event> = live
                        .iter()
                        .filter(|e| local && matches(e, q))
                        .cloned()
                        .collect();
                    recent(&h, &live, RECENT)
                })
            })
        })
    });
    let narrow = web_sys::window()
        .and_then(|w| w.match_media("(max-width: 900px)").ok().flatten())
        .is_some_and(|m| m.matches());
    let note = move || {
        if hello.with(|h| h.as_ref().is_some_and(|h| !h.history)) {
            Some("No history on this agent: changes since this page opened.".to_owned())
        } else {
            failed
                .get()
                .map(|e| format!("The last hour could not be read: {e}"))
        }
    };
    view! {
        <aside class="recent" id="recent" aria-label="Recent changes">
            <details open=!narrow>
                <summary>"Recent changes " <span class="muted">{move || format!("({})", list.with(Vec::len))}</span></summary>
                {move || note().map(|n| view! { <p class="muted small">{n}</p> })}
                {move || list.with(Vec::is_empty).then(|| {
                let text = if query.with(String::is_empty) {
                    "No listener opened or closed in the last hour."
                } else {
                    "No change in the last hour matches the filter."
                };
                view! { <p class="muted small">{text}</p> }
            })}
                <ol class="events">
                    {move || {
                        list.get()
                            .into_iter()
                            .map(|e| {
                                let text = line(&e, offset);
                                let kind = super::recent::verb(e.kind).replace(' ', "-");
                                let port = e.local_port;
                                view! {
                                    <li class=format!("event {kind}")>
                                        <button type="button" class="event-link" data-port=port data-kind=kind.clone() data-pid=e.pid.map(|p| p.to_string())
                                            on:click=move |_| pick.run(e.clone())>
                                            {text}
                                        </button>
                                    </li>
                                }
                            })
                            .collect_view()
                    }}
                </ol>
            </details>
        </aside>
    }
}

/// The detail of a tenure whose owner no longer holds the listener: the span's facts.
#[component]
pub fn TenureDetail(
    state: TimelineState,
    selected: RwSignal<Option<String>>,
    on_port: Callback<u16>,
) -> impl IntoView {
    let offset = offset_min();
    let content = move || {
        if selected.with(Option::is_some) {
            return None;
        }
        let picked = state.picked.get()?;
        if picked.live_row.is_some() {
            return None;
        }
        let t = picked.tenure;
        let now = state.now.get_untracked();
        let port = t.key.port;
        let status = match t.end {
            Some(_) => "ended: this owner no longer holds it",
            None => "open, but its owner is not in the table (hidden, or the page is not live)",
        };
        let opened = if t.before_page {
            format!("before {}", time::date_time(t.start, offset))
        } else {
            match t.start_since {
                Some(since) => format!(
                    "between {} and {} (the agent was not running)",
                    time::date_time(since, offset),
                    time::date_time(t.start, offset)
                ),
                None => time::date_time(t.start, offset),
            }
        };
        Some(view! {
            <aside class="detail" id="detail" aria-label="Listener details">
                <button class="close" title="Close (Esc)" aria-label="Close the details" on:click=move |_| state.picked.set(None)>"×"</button>
                <h2 class="mono">{format!("{} {}", t.key.proto_label(), t.key.endpoint())}</h2>
                <p class="muted">{status}</p>
                <section class="proc">
                    <h3>{format!("{} ", t.program())}<span class="muted">{t.pid.map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}"))}</span></h3>
                    <dl>
                        <dt>"Command"</dt><dd class="mono cmdline">{if t.cmdline.is_empty() { "unknown".to_owned() } else { t.cmdline.join(" ") }}</dd>
                        <dt>"User"</dt><dd>{t.user.clone().unwrap_or_else(|| "unknown".into())}</dd>
                        {t.app.clone().map(|a| view! { <dt>"Serves"</dt><dd>{a}</dd> })}
                        <dt>"Opened"</dt><dd class="opened">{opened}</dd>
                        <dt>"Closed"</dt><dd class="closed">{t.end.map_or_else(|| "not yet".to_owned(), |e| time::date_time(e, offset))}</dd>
                        <dt>"Held for"</dt><dd>{time::duration(t.end_or(now) - t.start)}</dd>
                        {t.health_summary(offset).map(|h| view! { <dt>"Health"</dt><dd class="health">{h.trim_start_matches("health: ").to_owned()}</dd> })}
                    </dl>
                </section>
                <div class="actions">
                    <button id="action-port-now" on:click=move |_| on_port.run(port)>{format!("Sockets on {port} now")}</button>
                </div>
            </aside>
        })
    };
    view! { {content} }
}

/// The connections chart of a listener: `open` as a line, `accepted` per minute as bars, and
/// the summary in words (the chart's accessible name).
pub fn connections_view(answer: &Result<ConnectionHistory, String>, now: f64) -> AnyView {
    let history = match answer {
        Ok(h) => h,
        Err(e) => {
            return view! {
                <section class="connections" id="connections">
                    <h4>"Connections, last hour"</h4>
                    <p class="muted small" id="conn-summary">{format!("No connection history: {e}")}</p>
                </section>
            }
            .into_any();
        }
    };
    let chart = Chart::new(history, now, 60);
    const W: f64 = 300.0;
    const H: f64 = 70.0;
    let slot = W / chart.slots.len() as f64;
    let top = f64::from(chart.top());
    let y = |v: u32| H - f64::from(v) / top * (H - 4.0);
    let bars = chart
        .slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.accepted > 0)
        .map(|(i, s)| {
            view! { <rect class="accepted" x=i as f64 * slot + 0.5 y=y(s.accepted) width=(slot - 1.0).max(1.0) height=H - y(s.accepted) /> }
        })
        .collect_view();
    let points = chart
        .slots
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{:.1},{:.1}", i as f64 * slot + slot / 2.0, y(s.open)))
        .collect::<Vec<_>>()
        .join(" ");
    let summary = chart.summary();
    view! {
        <section class="connections" id="connections">
            <h4>"Connections, last hour"</h4>
            <p class="small" id="conn-summary">{summary}</p>
            <svg class="conn-chart" viewBox=format!("0 0 {W} {}", H + 14.0) role="img" aria-labelledby="conn-summary">
                <line class="base" x1="0" x2=W y1=H y2=H />
                {bars}
                <polyline class="open-line" points=points />
                <text class="tick" x="0" y=H + 12.0>"−60 min"</text>
                <text class="tick" x=W y=H + 12.0 text-anchor="end">"now"</text>
            </svg>
            <p class="muted small legend"><span class="key accepted"></span>" accepted per minute  "<span class="key open"></span>" most open at once"</p>
        </section>
    }
    .into_any()
}
