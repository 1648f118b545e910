//! The Timeline tab (wasm32 only): range buttons, zoom and pan, and the plot — an SVG drawn
//! through Leptos from the model's [`Layout`]: only the rows in the plot's view and a margin,
//! one element per bar. [`Plot`] holds what the drawing and its handlers share (the plot's
//! measures, the layout drawn, the keyboard's bar); every decision about what to draw (which
//! rows, which bars, which is the tab stop, which is highlighted) is the model's.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use leptos::ev;
use leptos::html;
use leptos::prelude::*;
use portscope_shared::Hello;
use wasm_bindgen::JsCast;

use super::time::{self, DAY_MS, HOUR_MS};
use super::view::{Picked, TimelineState, live_row, offset_min};
use super::{
    AXIS_PX, Bar, BarId, GROUP_PX, LANE_PX, Layout, Row, Scale, Tenure, Window, lanes, layout,
    neighbour, restart_marks,
};
use crate::table::Table;

/// Presets: (button text, length).
const PRESETS: [(&str, f64); 3] = [
    ("Last hour", HOUR_MS),
    ("Last day", DAY_MS),
    ("Last week", 7.0 * DAY_MS),
];

/// A bar of the layout: (row, bar).
type At = (usize, usize);

/// The layout, with the tenures it was made from and a number of its own: the rows drawn are
/// keyed by it, so that scrolling keeps the rows it does not move, while a new layout (zoom,
/// pan, the clock, a change) draws the rows in view anew.
type Drawing = (Layout, Arc<Vec<Tenure>>, u64);

/// What the plot's drawing and its handlers share.
#[derive(Clone, Copy)]
struct Plot {
    state: TimelineState,
    /// Minutes east of UTC, for the labels' local times.
    offset: i32,
    el: NodeRef<html::Div>,
    width: RwSignal<f64>,
    /// The plot's scroll position and height, which pick the rows to draw (as the table's do).
    scroll_top: RwSignal<f64>,
    viewport: RwSignal<f64>,
    scale: Memo<Scale>,
    drawn: Memo<Drawing>,
    /// The rows in the plot's view and a margin: the only ones in the DOM.
    rows_drawn: Memo<Range<usize>>,
    /// The keyboard's bar, by identity (its lane and a tenure it shows), so that it stays the
    /// same bar when the drawing changes around it; and where it is drawn now.
    cursor: RwSignal<Option<BarId>>,
    cursor_at: Memo<Option<At>>,
    /// The drawing's one tab stop, always among the rows drawn.
    tab_stop: Memo<Option<At>>,
    /// The bar of the picked tenure, drawn highlighted.
    picked_at: Memo<Option<At>>,
}

impl Plot {
    fn new(state: TimelineState, query: Signal<String>) -> Self {
        let offset = offset_min();
        let width = RwSignal::new(800.0);
        let label_px = Memo::new(move |_| if width.get() < 560.0 { 100.0 } else { 170.0 });
        let scale = Memo::new(move |_| {
            let label = label_px.get();
            Scale {
                window: state.window.get(),
                x0: label,
                width: (width.get() - label - 12.0).max(40.0),
            }
        });
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
        let (scroll_top, viewport) = (RwSignal::new(0.0), RwSignal::new(1000.0));
        let rows_drawn = Memo::new(move |_| {
            let (top, height) = (scroll_top.get(), viewport.get());
            drawn.with(|(d, _, _)| d.rows_in_view(top, height))
        });
        let cursor = RwSignal::new(None::<BarId>);
        let cursor_at = Memo::new(move |_| {
            cursor.with(|id| {
                drawn.with(|(d, tenures, _)| id.as_ref().and_then(|id| d.locate(tenures, id)))
            })
        });
        let tab_stop = Memo::new(move |_| {
            let rows = rows_drawn.get();
            let at = cursor_at.get();
            drawn.with(|(d, _, _)| super::tab_stop(d, rows, at))
        });
        let picked_at = Memo::new(move |_| {
            state.picked.with(|p| {
                drawn.with(|(d, tenures, _)| {
                    p.as_ref().and_then(|p| d.bar_showing(tenures, &p.tenure))
                })
            })
        });
        Self {
            state,
            offset,
            el: NodeRef::new(),
            width,
            scroll_top,
            viewport,
            scale,
            drawn,
            rows_drawn,
            cursor,
            cursor_at,
            tab_stop,
            picked_at,
        }
    }

    fn measure(self) {
        if let Some(el) = self.el.get_untracked() {
            let w = f64::from(el.client_width());
            if w > 0.0 && w != self.width.get_untracked() {
                self.width.set(w);
            }
            // Hidden, it measures nothing: the last height stands.
            let h = f64::from(el.client_height());
            if h > 0.0 && h != self.viewport.get_untracked() {
                self.viewport.set(h);
            }
            let top = f64::from(el.scroll_top());
            if top != self.scroll_top.get_untracked() {
                self.scroll_top.set(top);
            }
        }
    }

    /// Measures when the tab shows and when the plot is resized.
    fn keep_measured(self, active: Signal<bool>) {
        Effect::new(move |_| {
            if active.get() {
                set_timeout(move || self.measure(), Duration::ZERO);
            }
        });
        crate::plot::on_resize(self.el, move || self.measure());
    }

    /// The present moves on, and a following window with it: redrawn once it moved a pixel
    /// (every few seconds for an hour, every quarter hour for a week), not on every tick.
    fn keep_present(self, active: Signal<bool>) {
        let state = self.state;
        set_interval(
            move || {
                if !(active.get_untracked() || state.picked.with_untracked(Option::is_some)) {
                    return;
                }
                let now = js_sys::Date::now();
                let s = self.scale.get_untracked();
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
    }

    /// The tab stop and the highlight move without drawing anything anew: the bars are drawn
    /// with the marks of the moment (static attributes, no effect per bar), and this one effect
    /// moves the marks on the bars in the DOM when they change.
    fn keep_marks(self) {
        Effect::new(move |before: Option<Marks>| {
            let marks = (self.tab_stop.get(), self.picked_at.get());
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
    }

    /// A new layout draws the rows anew, and scrolling moves the rows drawn in the DOM (the
    /// keyed `For` moves nodes when rows come in above), which drops the focus a bar had: give
    /// it back to the keyboard's bar while it is drawn, without scrolling to it (the plot may
    /// be scrolled away from it on purpose).
    fn keep_bar_focus(self) {
        let bar_focused = StoredValue::new(false);
        let _focus = window_event_listener(ev::focusin, move |e| {
            let on_bar = e
                .target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                .is_some_and(|el| el.closest("#timeline-svg .bar").ok().flatten().is_some());
            bar_focused.set_value(on_bar);
        });
        Effect::new(move |_| {
            self.drawn.track();
            let drawn_rows = self.rows_drawn.get();
            let here = self
                .cursor_at
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
    }

    /// Zooming at the right edge of a window that follows the present keeps following it;
    /// anywhere else it zooms around that moment.
    fn zoom(self, factor: f64, anchor: f64) {
        let state = self.state;
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
    }

    fn pan(self, fraction: f64) {
        let state = self.state;
        let now = js_sys::Date::now();
        state.now.set(now);
        let w = state.window.get_untracked().pan(fraction, now);
        state.follow.set(w.end >= now - 1.0);
        state.window.set(w);
    }

    /// Ctrl+wheel zooms around the pointer; Shift+wheel (or a sideways wheel) pans.
    fn on_wheel(self, e: web_sys::WheelEvent) {
        let s = self.scale.get_untracked();
        let left = self.left();
        let anchor = ((f64::from(e.client_x()) - left - s.x0) / s.width).clamp(0.0, 1.0);
        if e.ctrl_key() || e.meta_key() {
            e.prevent_default();
            self.zoom((e.delta_y() * 0.002).exp(), anchor);
        } else if e.shift_key() || e.delta_x().abs() > e.delta_y().abs() {
            e.prevent_default();
            let d = if e.delta_x() != 0.0 {
                e.delta_x()
            } else {
                e.delta_y()
            };
            self.pan(d / s.width);
        }
    }

    /// The plot's left edge in the page.
    fn left(self) -> f64 {
        self.el
            .get_untracked()
            .map(|el| el.get_bounding_client_rect().left())
            .unwrap_or(0.0)
    }

    /// The bar an event reached: `data-at` of the `.bar` it came from (row-bar of the layout).
    fn bar_at(self, e: &web_sys::Event) -> Option<At> {
        let el = e
            .target()?
            .dyn_into::<web_sys::Element>()
            .ok()?
            .closest(".bar")
            .ok()??;
        let at = el.get_attribute("data-at")?;
        let (r, b) = at.split_once('-')?;
        let (r, b) = (r.parse().ok()?, b.parse().ok()?);
        self.drawn
            .with_untracked(|(d, _, _)| b < d.bars(r).len())
            .then_some((r, b))
    }

    /// Arrow keys move the keyboard's bar (a lane scrolled out of the rows drawn is scrolled
    /// near first, then focused); Enter opens the bar's last tenure.
    fn on_key(self, e: web_sys::KeyboardEvent, open: impl Fn(Tenure)) {
        let Some((row, index)) = self.bar_at(&e) else {
            return;
        };
        let drawn = self.drawn;
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
        self.cursor
            .set(drawn.with_untracked(|(d, tenures, _)| d.id(tenures, r, b)));
        if !self.rows_drawn.get_untracked().contains(&r)
            && let Some(el) = self.el.get_untracked()
        {
            let y = drawn.with_untracked(|(d, _, _)| d.rows[r].y());
            el.set_scroll_top((y - f64::from(el.client_height()) / 2.0).max(0.0) as i32);
            self.measure();
        }
        set_timeout(|| focus_stop(true), Duration::ZERO);
    }

    /// A click opens the tenure under the pointer (a merged bar holds several).
    fn on_click(self, e: &web_sys::MouseEvent, open: impl Fn(Tenure)) {
        let Some((r, b)) = self.bar_at(e) else { return };
        let at = self
            .scale
            .get_untracked()
            .time(f64::from(e.client_x()) - self.left());
        let now = self.state.now.get_untracked();
        let tenure = self.drawn.with_untracked(|(d, tenures, _)| {
            tenures[d.bars(r)[b].tenure_at(tenures, at, now)].clone()
        });
        open(tenure);
    }

    fn on_focus(self, e: &web_sys::FocusEvent) {
        let Some((r, b)) = self.bar_at(e) else { return };
        let me = self
            .drawn
            .with_untracked(|(d, tenures, _)| d.id(tenures, r, b));
        if self.cursor.get_untracked() != me {
            self.cursor.set(me);
        }
    }

    /// One row (a group's heading or a lane) of the current layout, as the rows' `For` draws it.
    fn row_view(self, r: usize) -> AnyView {
        let s = self.scale.get_untracked();
        let w = self.width.get_untracked();
        let now = self.state.now.get_untracked();
        self.drawn.with_untracked(|(d, tenures, _)| match &d.rows[r] {
            Row::Group { y, name, colour } => view! {
                <g class="group">
                    <rect class=format!("swatch c{colour}") x="4" y=y + 7.0 width="10" height="10" rx="2" />
                    <text class="group-name" x="20" y=y + 16.0>{name.clone()}</text>
                    <line class="group-line" x1="0" x2=w y1=*y + GROUP_PX y2=*y + GROUP_PX />
                </g>
            }
            .into_any(),
            Row::Lane { y, label, addrs, bars, health } => {
                let (stop, picked) = (self.tab_stop.get_untracked(), self.picked_at.get_untracked());
                let bars_view = bars
                    .iter()
                    .enumerate()
                    .map(|(b, bar)| {
                        let marks = (stop == Some((r, b)), picked == Some((r, b)));
                        bar_view((r, b), bar, tenures, marks, (now, self.offset))
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
    }

    /// The axis, its grid and the present: a few elements, drawn anew with each layout.
    fn axis(self) -> impl IntoView {
        let s = self.scale.get();
        let now = self.state.now.get();
        self.drawn.with(|(d, _, _)| {
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
    }
}

/// One element per bar: its `<rect>` is the button (role, name, tab stop) and holds the
/// `<title>` that hovering shows. Clicks, keys and focus are handled once, on the `<svg>`,
/// for the bar they reach (`data-at`).
fn bar_view(
    (row, index): At,
    bar: &Bar,
    tenures: &[Tenure],
    (stop, picked): (bool, bool),
    (now, offset): (f64, i32),
) -> impl IntoView + use<> {
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
}

/// Drag to pan: where the pointer went down and the window then; a drag is no click.
#[derive(Clone, Copy)]
struct Drag {
    from: StoredValue<Option<(f64, Window)>>,
    dragged: StoredValue<bool>,
}

impl Drag {
    fn new() -> Self {
        Self {
            from: StoredValue::new(None),
            dragged: StoredValue::new(false),
        }
    }

    fn down(self, plot: Plot, e: &web_sys::PointerEvent) {
        if e.button() != 0 {
            return;
        }
        self.from.set_value(Some((
            f64::from(e.client_x()),
            plot.state.window.get_untracked(),
        )));
        self.dragged.set_value(false);
    }

    fn moved(self, plot: Plot, e: &web_sys::PointerEvent) {
        let Some((x, from)) = self.from.get_value() else {
            return;
        };
        let dx = f64::from(e.client_x()) - x;
        if dx.abs() < 4.0 && !self.dragged.get_value() {
            return;
        }
        self.dragged.set_value(true);
        let now = plot.state.now.get_untracked();
        let to = from.pan(-dx / plot.scale.get_untracked().width, now);
        plot.state.follow.set(to.end >= now - 1.0);
        plot.state.window.set(to);
    }

    fn up(self) {
        self.from.set_value(None);
    }

    /// Whether the click that ends a drag is the drag's (and not a click on a bar).
    fn take_drag(self) -> bool {
        let dragged = self.dragged.get_value();
        self.dragged.set_value(false);
        dragged
    }
}

/// The window's presets, zoom and pan buttons, the range shown and the drawing's count.
#[component]
fn TimelineBar(plot: Plot) -> impl IntoView {
    let state = plot.state;
    let range_text = move || {
        let w = state.window.get();
        format!(
            "{} – {} ({})",
            time::date_time(w.start, plot.offset),
            if state.follow.get() {
                "now".to_owned()
            } else {
                time::date_time(w.end, plot.offset)
            },
            time::duration(w.len())
        )
    };
    let count = move || {
        plot.drawn.with(|(d, _, _)| {
            let lanes = d
                .rows
                .iter()
                .filter(|r| matches!(r, Row::Lane { .. }))
                .count();
            let bars = d.bar_count();
            format!("{lanes} ports, {bars} bars")
        })
    };
    view! {
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
                <button type="button" id="tl-earlier" title="Earlier" aria-label="Earlier" on:click=move |_| plot.pan(-0.5)>"◀"</button>
                <button type="button" id="tl-zoom-out" title="Zoom out" aria-label="Zoom out" on:click=move |_| plot.zoom(2.0, 1.0)>"−"</button>
                <button type="button" id="tl-zoom-in" title="Zoom in" aria-label="Zoom in" on:click=move |_| plot.zoom(0.5, if state.follow.get_untracked() { 1.0 } else { 0.5 })>"+"</button>
                <button type="button" id="tl-later" title="Later" aria-label="Later" on:click=move |_| plot.pan(0.5)>"▶"</button>
            </div>
            <span class="range" id="timeline-range">{range_text}</span>
            <span class="count" id="timeline-count">{count}</span>
        </div>
    }
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
    let plot = Plot::new(state, query);
    plot.keep_measured(active);
    plot.keep_present(active);
    plot.keep_marks();
    plot.keep_bar_focus();
    let open = move |tenure: Tenure| {
        // A merged peer's tenure is on that peer; any other on the timeline's host.
        let host = tenure
            .key
            .host
            .clone()
            .or_else(|| state.host.get_untracked());
        let row = table.with_untracked(|t| live_row(t, &tenure, host.as_deref()));
        selected.set(row.clone());
        state.picked.set(Some(Picked {
            tenure,
            live_row: row,
        }));
    };
    let drag = Drag::new();
    let no_history = move || hello.with(|h| h.as_ref().is_some_and(|h| !h.history));
    let svg = move || {
        view! {
            <svg
                id="timeline-svg"
                class="timeline-svg"
                width=move || plot.width.get()
                height=move || plot.drawn.with(|(d, _, _)| d.height.max(AXIS_PX + 40.0))
                aria-labelledby="timeline-title"
                aria-describedby="timeline-range"
                on:click=move |e| {
                    if !drag.take_drag() {
                        plot.on_click(&e, open);
                    }
                }
                on:keydown=move |e| plot.on_key(e, open)
                on:focusin=move |e| plot.on_focus(&e)
            >
                {move || plot.axis()}
                <For
                    each=move || {
                        let n = plot.drawn.with(|d| d.2);
                        plot.rows_drawn.get().map(|r| (r, n)).collect::<Vec<_>>()
                    }
                    key=|row| *row
                    children=move |(r, _)| plot.row_view(r)
                />
            </svg>
        }
    };
    let empty = move || {
        plot.drawn.with(|(d, _, _)| d.rows.is_empty()).then(|| {
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
            <TimelineBar plot />
            {move || no_history().then(|| view! {
                <p class="note" id="timeline-no-history">"This agent keeps no history (started with --no-history): showing changes since this page opened."</p>
            })}
            {move || host_note.get().map(|n| view! { <p class="note" id="timeline-host-note">{n}</p> })}
            {move || state.note.get().map(|n| view! { <p class="note" id="timeline-note">{n}</p> })}
            <p class="hint muted">"Drag or Shift+wheel to pan, Ctrl+wheel to zoom; arrow keys move between bars, Enter opens one. Under an HTTP server's bar, a line shows its health checks: "<span class="key health-up-key"></span>" up, "<span class="key health-down-key"></span>" down."</p>
            <div
                class="plot"
                node_ref=plot.el
                on:pointerdown=move |e| drag.down(plot, &e)
                on:pointermove=move |e| drag.moved(plot, &e)
                on:pointerup=move |_| drag.up()
                on:pointerleave=move |_| drag.up()
                on:wheel=move |e| plot.on_wheel(e)
                on:scroll=move |_| plot.measure()
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
