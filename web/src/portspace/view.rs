//! The Port space tab (wasm32 only): the strip the model lays out, as SVG through Leptos — the
//! IANA ranges, the machine's ephemeral range, the free ranges, every listener's mark (a
//! `role="button"` with its owners as accessible name and `<title>`; one tab stop, arrow keys
//! between marks), `free`'s suggestions — above a warning for listeners inside the ephemeral
//! range and the list of listeners the marks stand for (each opens its row in the Sockets
//! view). Listeners and used ports come from the live table; the suggestions from
//! `GET /api/v1/free`, asked when the tab opens and every [`FREE_EVERY`] while it shows.

use std::collections::BTreeSet;
use std::time::Duration;

use leptos::html;
use leptos::prelude::*;
use portscope_shared::{Exposure, FreePorts, PortRange};
use wasm_bindgen::JsCast;

use super::{
    DYNAMIC, EPHEMERAL_WHY, Listener, Mark, PRIVILEGED, REGISTERED, Scale, count, exposure_words,
    free_bands, free_ranges, largest, marks, safe_ranges, ticks,
};
use crate::api;
use crate::table::Table;

/// How often the free ports are asked again while the tab shows.
const FREE_EVERY: Duration = Duration::from_secs(30);

/// How many free ports to mark.
const SUGGESTIONS: usize = 5;

/// Rows of the strip, in pixels from its top.
const ZONE_Y: f64 = 24.0;
const ZONE_H: f64 = 22.0;
const EPH_Y: f64 = 50.0;
const EPH_H: f64 = 18.0;
const FREE_Y: f64 = 72.0;
const FREE_H: f64 = 8.0;
const MARK_LABEL_Y: f64 = 98.0;
const MARK_Y: f64 = 104.0;
const MARK_H: f64 = 34.0;
const FLAG_Y: f64 = 142.0;
const SUGGEST_Y: f64 = 160.0;
const AXIS_Y: f64 = 190.0;
const HEIGHT: f64 = 216.0;

fn exposure_class(e: Option<Exposure>) -> &'static str {
    match e {
        Some(Exposure::Loopback) => "exp-loopback",
        Some(Exposure::Interface) => "exp-interface",
        Some(Exposure::All) => "exp-all",
        None => "exp-unknown",
    }
}

/// `8000`, `8000–8080`.
fn ports_text(m: &Mark) -> String {
    if m.first == m.last {
        m.first.to_string()
    } else {
        format!("{}–{}", m.first, m.last)
    }
}

/// The mark an event reached, by its first port.
fn mark_at(e: &web_sys::Event) -> Option<u16> {
    e.target()?
        .dyn_into::<web_sys::Element>()
        .ok()?
        .closest(".mark")
        .ok()??
        .get_attribute("data-first")?
        .parse()
        .ok()
}

/// The Port space tab.
#[component]
pub fn PortSpace(
    active: Signal<bool>,
    table: RwSignal<Table>,
    host: Memo<Option<String>>,
    ephemeral: Signal<Option<PortRange>>,
    host_note: Signal<Option<String>>,
    query: Signal<String>,
    open: Callback<(String, Option<String>)>,
) -> impl IntoView {
    let plot_ref = NodeRef::<html::Div>::new();
    let width = crate::plot::watch_width(plot_ref, active);
    let scale = Memo::new(move |_| Scale {
        x0: 16.0,
        width: (width.get() - 32.0).max(200.0),
    });

    let suggested = suggestions(active, host);

    let (shown, used) = listeners(active, table, host, ephemeral, query);
    let drawn_marks = Memo::new(move |_| shown.with(|s| marks(s, scale.get())));
    let free = Memo::new(move |_| used.with(|u| free_ranges(&safe_ranges(ephemeral.get()), u)));
    // The mark whose listeners the list shows (by its first port), and the keyboard's mark.
    let picked = RwSignal::new(None::<u16>);
    let cursor = RwSignal::new(None::<u16>);
    let stop = Memo::new(move |_| {
        let at = cursor.get();
        drawn_marks.with(|ms| {
            at.filter(|p| ms.iter().any(|m| m.first == *p))
                .or_else(|| ms.first().map(|m| m.first))
        })
    });

    // A mark of one listener opens it; a merged mark lists its listeners below the strip.
    let open_mark = move |first: u16| {
        let members = drawn_marks.with_untracked(|ms| {
            ms.iter()
                .find(|m| m.first == first)
                .map(|m| m.listeners.clone())
        });
        match members.as_deref() {
            Some([one]) => {
                let l = shown.with_untracked(|s| s[*one].clone());
                open.run((l.port.to_string(), Some(l.key)));
            }
            Some(_) => {
                picked.set(Some(first));
                if let Some(el) = document().get_element_by_id("ports-list") {
                    el.scroll_into_view();
                }
            }
            None => {}
        }
    };
    let on_click = move |e: web_sys::MouseEvent| {
        if let Some(first) = mark_at(&e) {
            open_mark(first);
        }
    };
    let on_key = move |e: web_sys::KeyboardEvent| {
        let Some(first) = mark_at(&e) else { return };
        let key = e.key();
        if key == "Enter" || key == " " {
            e.prevent_default();
            open_mark(first);
            return;
        }
        let step: isize = match key.as_str() {
            "ArrowRight" | "ArrowDown" => 1,
            "ArrowLeft" | "ArrowUp" => -1,
            "Home" => -100_000,
            "End" => 100_000,
            _ => return,
        };
        e.prevent_default();
        let next = drawn_marks.with_untracked(|ms| {
            let at = ms.iter().position(|m| m.first == first)? as isize;
            let to = (at + step).clamp(0, ms.len() as isize - 1) as usize;
            Some(ms[to].first)
        });
        if let Some(next) = next {
            cursor.set(Some(next));
            set_timeout(
                move || {
                    if let Some(el) = document()
                        .query_selector(&format!("#ports-svg .mark[data-first=\"{next}\"]"))
                        .ok()
                        .flatten()
                        .and_then(|el| el.dyn_into::<web_sys::SvgElement>().ok())
                    {
                        let _ = el.focus();
                    }
                },
                Duration::ZERO,
            );
        }
    };

    let svg = move || {
        let s = scale.get();
        let range = ephemeral.get();
        let zones = zones_view(s);
        let eph = range.map(|r| ephemeral_view(s, r));
        let free_view = free.with(|f| free_view(f, s));
        let free_label = view! { <text class="zone-label muted-label" x=s.x0 y=FREE_Y - 2.0>"free for a new server"</text> };
        let marks_view =
            drawn_marks.with(|ms| shown.with(|listeners| marks_view(ms, listeners, stop)));
        let (suggestions, suggestion_label) =
            suggested.with(|ports| (suggestions_view(ports, s), suggestion_label(ports, s)));
        let axis = axis_view(s, range);
        view! {
            <svg
                id="ports-svg"
                class="ports-svg"
                width=move || width.get()
                height=HEIGHT
                role="group"
                aria-labelledby="ports-title"
                aria-describedby="ports-summary"
                on:click=on_click
                on:keydown=on_key
            >
                <g aria-hidden="true">{axis}{zones}{eph}{free_label}{free_view}</g>
                <g class="marks">{marks_view}</g>
                <g class="suggestions" aria-hidden="true">{suggestions}{suggestion_label}</g>
            </svg>
        }
    };

    let summary = move || free.with(|f| summary_text(shown.with(Vec::len), ephemeral.get(), f));
    let warning = move || {
        let flagged: Vec<Listener> =
            shown.with(|s| s.iter().filter(|l| l.ephemeral).cloned().collect());
        let r = ephemeral.get()?;
        (!flagged.is_empty()).then(|| suggested.with(|p| ephemeral_warning(&flagged, r, p)))
    };
    let rows = move || {
        let pick = picked.get();
        let ms = drawn_marks.get();
        let members: Option<Vec<usize>> = pick.and_then(|p| {
            ms.iter()
                .find(|m| m.first == p)
                .map(|m| m.listeners.clone())
        });
        shown.with(|s| listener_rows(s, members.as_deref(), open))
    };
    let list_title = move || drawn_marks.with(|ms| list_title(picked.get(), ms));

    view! {
        <section class="ports" id="panel-ports" role="tabpanel" aria-labelledby="tab-ports" hidden=move || !active.get()>
            <h2 class="visually-hidden" id="ports-title">"Port space: every port from 0 to 65535"</h2>
            <div class="map-bar"><span id="ports-summary">{summary}</span></div>
            {move || host_note.get().map(|n| view! { <p class="note">{n}</p> })}
            {warning}
            <div class="ports-plot" node_ref=plot_ref>
                <Show when=move || active.get()>{svg}</Show>
            </div>
            <p class="legend muted small">
                <span class="swatch exp-loopback"></span>" loopback only  "
                <span class="swatch exp-interface"></span>" one interface  "
                <span class="swatch exp-all"></span>" all interfaces  "
                <span class="swatch flag-key"></span>" inside the ephemeral range  "
                <span class="swatch free-key"></span>" free for a new server  "
                <span class="swatch suggest-key"></span>" suggested by portscope free · square-root scale: low ports get more room"
            </p>
            <h3 class="ports-list-title">
                {list_title}
                {move || picked.get().map(|_| view! { " " <button type="button" id="ports-show-all" on:click=move |_| picked.set(None)>"Show all"</button> })}
            </h3>
            <table class="ports-list" id="ports-list" aria-label="Listeners">
                <thead><tr><th>"Address"</th><th>"Proto"</th><th>"Reach"</th><th>"Owner"</th><th>"What"</th><th>"Note"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
            {move || shown.with(Vec::is_empty).then(|| view! { <p class="empty">{if query.with(String::is_empty) { "No listener on this machine." } else { "No listener matches the filter." }}</p> })}
        </section>
    }
}

/// The host's listeners the filter shows, and the ports its sockets use. Only while the view
/// shows: a delta at 20 000 rows need not walk them for a hidden strip.
fn listeners(
    active: Signal<bool>,
    table: RwSignal<Table>,
    host: Memo<Option<String>>,
    ephemeral: Signal<Option<PortRange>>,
    query: Signal<String>,
) -> (Memo<Vec<Listener>>, Memo<BTreeSet<u16>>) {
    let all = Memo::new(move |_| {
        if !active.get() {
            return Vec::new();
        }
        let h = host.get();
        let range = ephemeral.get();
        table.with(|t| {
            let mut out: Vec<Listener> = t
                .rows
                .values()
                .filter(|r| {
                    r.closed_at.is_none()
                        && r.socket.host.as_deref() == h.as_deref()
                        && r.socket.is_listening()
                })
                .map(|r| Listener::of(&r.key, &r.socket, |pid| t.process(h.as_deref(), pid), range))
                .collect();
            out.sort_by(|a, b| (a.port, a.proto, &a.endpoint).cmp(&(b.port, b.proto, &b.endpoint)));
            out
        })
    });
    let used = Memo::new(move |_| {
        if !active.get() {
            return BTreeSet::new();
        }
        let h = host.get();
        table.with(|t| {
            t.rows
                .values()
                .filter(|r| r.closed_at.is_none() && r.socket.host.as_deref() == h.as_deref())
                .map(|r| r.socket.local_port)
                .collect::<BTreeSet<u16>>()
        })
    });
    let shown = Memo::new(move |_| {
        let q = query.get();
        all.with(|a| {
            a.iter()
                .filter(|l| l.matches(&q))
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    (shown, used)
}

/// The line above the strip: how many listeners, the ephemeral range, the largest free ranges.
fn summary_text(n: usize, ephemeral: Option<PortRange>, free: &[PortRange]) -> String {
    let range = ephemeral.map_or_else(
        || "ephemeral range unknown".to_owned(),
        |r| format!("ephemeral range {}–{} (from the kernel)", r.first, r.last),
    );
    let biggest = largest(free, 2)
        .iter()
        .map(|r| format!("{}–{}", r.first, r.last))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{} · {range} · largest free ranges: {biggest}",
        count(n, "listener")
    )
}

/// The warning over listeners inside the ephemeral range (`flagged`, not empty), with free
/// ports outside it (`p`, `free`'s suggestions).
fn ephemeral_warning(flagged: &[Listener], r: PortRange, p: &[u16]) -> impl IntoView + use<> {
    // The first few by name; the list below flags them all.
    const NAMED: usize = 4;
    let mut who = flagged
        .iter()
        .take(NAMED)
        .map(|l| format!("{} {}", l.endpoint, l.owner))
        .collect::<Vec<_>>()
        .join("; ");
    if flagged.len() > NAMED {
        who.push_str(&format!(
            " and {} more, flagged below",
            flagged.len() - NAMED
        ));
    }
    let alternatives = (!p.is_empty()).then(|| {
        format!(
            " Free ports outside it: {}.",
            p.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
        )
    });
    view! {
        <div class="note ephemeral-warning" id="ephemeral-warning" role="note">
            <strong>{format!("⚠ {} inside this machine's ephemeral range ({}–{}): ", count(flagged.len(), "listener"), r.first, r.last)}</strong>
            <span class="mono">{who}</span>". "
            {EPHEMERAL_WHY}
            {alternatives}
        </div>
    }
}

/// The list's rows: the listeners shown (those of the picked mark, `members`, when one is),
/// each opening its socket in the Sockets view.
fn listener_rows(
    s: &[Listener],
    members: Option<&[usize]>,
    open: Callback<(String, Option<String>)>,
) -> impl IntoView + use<> {
    s.iter()
        .enumerate()
        .filter(|(i, _)| members.as_ref().is_none_or(|m| m.contains(i)))
        .map(|(_, l)| {
            let target = (l.port.to_string(), Some(l.key.clone()));
            let exposure = l.exposure.map_or("unknown", exposure_words);
            view! {
                <tr class:flagged=l.ephemeral data-port=l.port>
                    <td class="mono"><button type="button" class="link-button" title="Open it in the Sockets view" on:click=move |_| open.run(target.clone())>{l.endpoint.clone()}</button></td>
                    <td>{l.proto}</td>
                    <td><span class=format!("swatch {}", exposure_class(l.exposure)) aria-hidden="true"></span>{exposure}</td>
                    <td>{l.owner.clone()}</td>
                    <td class="muted">{l.what.clone()}</td>
                    <td>{l.ephemeral.then(|| view! { <span class="tag ephemeral-warn" title=EPHEMERAL_WHY>"⚠ in the ephemeral range"</span> })}</td>
                </tr>
            }
        })
        .collect_view()
}

/// `free`'s suggestions for the host shown, asked again every [`FREE_EVERY`] while the view
/// shows, sorted to read left to right.
fn suggestions(active: Signal<bool>, host: Memo<Option<String>>) -> RwSignal<Vec<u16>> {
    let suggested = RwSignal::new(Vec::<u16>::new());
    let asked = RwSignal::new(0u32);
    set_interval(
        move || {
            if active.get_untracked() {
                asked.update(|n| *n += 1);
            }
        },
        FREE_EVERY,
    );
    Effect::new(move |_| {
        asked.track();
        let h = host.get();
        if !active.get() {
            return;
        }
        let path = api::on_host(&format!("/api/v1/free?count={SUGGESTIONS}"), h.as_deref());
        leptos::task::spawn_local(async move {
            if let Ok(mut answer) = api::get::<FreePorts>(&path).await
                && host.get_untracked() == h
            {
                // `free` answers nearest first; the strip reads left to right.
                answer.ports.sort_unstable();
                suggested.set(answer.ports);
            }
        });
    });
    suggested
}

/// The list's title: its listeners are all those shown, or the picked mark's.
fn list_title(picked: Option<u16>, ms: &[Mark]) -> String {
    picked
        .and_then(|p| ms.iter().find(|m| m.first == p))
        .map_or_else(
            || "Listeners".to_owned(),
            |m| format!("Listeners on {}", ports_text(m)),
        )
}

/// The strip's three IANA zones, each with its range on hover.
fn zones_view(s: Scale) -> impl IntoView {
    [
        (
            PRIVILEGED,
            "zone privileged",
            "privileged",
            "0–1023: binding needs root or CAP_NET_BIND_SERVICE",
        ),
        (
            REGISTERED,
            "zone registered",
            "registered",
            "1024–49151: IANA's registered ports, where servers belong",
        ),
        (
            DYNAMIC,
            "zone dynamic",
            "dynamic",
            "49152–65535: IANA's dynamic (private) range, for clients' ephemeral ports",
        ),
    ]
    .into_iter()
    .map(|(r, class, name, why)| {
        let (x, w) = s.span(r);
        let label = (w > 70.0).then(|| {
            let text = if w > 170.0 {
                format!("{name} {}–{}", r.first, r.last)
            } else {
                name.to_owned()
            };
            view! { <text class="zone-label" x=x + 6.0 y=ZONE_Y + 15.0>{text}</text> }
        });
        view! {
            <g>
                <rect class=class x=x y=ZONE_Y width=w height=ZONE_H><title>{why}</title></rect>
                {label}
            </g>
        }
    })
    .collect_view()
}

/// This machine's ephemeral range, as a band under the zones.
fn ephemeral_view(s: Scale, r: PortRange) -> impl IntoView {
    let (x, w) = s.span(r);
    let text = format!("ephemeral (this machine) {}–{}", r.first, r.last);
    let fits = w > text.len() as f64 * 6.4;
    view! {
        <g class="ephemeral-band">
            <rect class="ephemeral" x=x y=EPH_Y width=w height=EPH_H>
                <title>{format!("This machine's ephemeral range, {}–{} (net.ipv4.ip_local_port_range): the kernel picks outgoing connections' local ports from it.", r.first, r.last)}</title>
            </rect>
            <text class="zone-label" x=if fits { x + 6.0 } else { x - 6.0 } y=EPH_Y + 13.0 text-anchor=if fits { "start" } else { "end" }>{text}</text>
        </g>
    }
}

/// The free ranges a new server may take, as thin bands.
fn free_view(f: &[PortRange], s: Scale) -> impl IntoView + use<> {
    free_bands(f, s)
            .into_iter()
            .map(|(r, x, w)| {
                view! { <rect class="free" x=x y=FREE_Y width=w height=FREE_H><title>{format!("free: {}–{} ({} ports)", r.first, r.last, u32::from(r.last) - u32::from(r.first) + 1)}</title></rect> }
            })
            .collect_view()
}

/// The listeners' marks (`listeners`: those shown), with labels left to right, each where the
/// one before leaves room; `stop` is the keyboard's mark.
fn marks_view(
    ms: &[Mark],
    listeners: &[Listener],
    stop: Memo<Option<u16>>,
) -> impl IntoView + use<> {
    let mut right = f64::NEG_INFINITY;
    ms.iter()
            .map(|m| {
                let text = ports_text(m);
                let centre = m.x + m.width / 2.0;
                let half = text.len() as f64 * 3.4;
                let label = (centre - half > right + 4.0).then(|| {
                    right = centre + half;
                    view! { <text class="mark-label" x=centre y=MARK_LABEL_Y text-anchor="middle">{text.clone()}</text> }
                });
                let names: Vec<String> = m.listeners.iter().map(|&i| listeners[i].describe()).collect();
                let title = if names.len() == 1 {
                    names[0].clone()
                } else {
                    format!("{} on ports {}: {}", count(names.len(), "listener"), ports_text(m), names.join("; "))
                };
                let class = format!(
                    "mark {}{}",
                    exposure_class(m.exposure),
                    if m.ephemeral { " flagged" } else { "" }
                );
                let first = m.first;
                let flag = m.ephemeral.then(|| {
                    view! { <path class="flag" d=format!("M{:.1} {FLAG_Y}l6 11h-12z", centre) aria-hidden="true" /> }
                });
                view! {
                    {label}
                    <rect
                        class=class
                        role="button"
                        tabindex=move || if stop.get() == Some(first) { "0" } else { "-1" }
                        aria-label=title.clone()
                        data-first=first
                        data-last=m.last
                        x=format!("{:.1}", m.x)
                        y=MARK_Y
                        width=format!("{:.1}", m.width)
                        height=MARK_H
                    >
                        <title>{title.clone()}</title>
                    </rect>
                    {flag}
                }
            })
            .collect_view()
}

/// `free`'s suggestions, as small triangles on the strip.
fn suggestions_view(ports: &[u16], s: Scale) -> impl IntoView + use<> {
    ports
            .iter()
            .map(|&p| {
                let x = s.x(u32::from(p)) + (s.x(u32::from(p) + 1) - s.x(u32::from(p))) / 2.0;
                view! {
                    <g class="suggestion" data-port=p>
                        <path d=format!("M{x:.1} {SUGGEST_Y}l5 9h-10z") />
                        <title>{format!("{p} is free: `portscope free` suggests it (unprivileged, outside the ephemeral range, no well-known service's, unused, bindable)")}</title>
                    </g>
                }
            })
            .collect_view()
}

/// The suggestions' label, beside the first.
fn suggestion_label(ports: &[u16], s: Scale) -> impl IntoView + use<> {
    (!ports.is_empty()).then(|| {
        let x = s.x(u32::from(ports[0]));
        let text = format!(
            "free: {}",
            ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        view! { <text class="suggest-label" x=x + 8.0 y=SUGGEST_Y + 9.0>{text}</text> }
    })
}

/// The port numbers under the strip.
fn axis_view(s: Scale, range: Option<PortRange>) -> impl IntoView {
    ticks(s, range, 52.0)
        .into_iter()
        .map(|(x, p)| {
            // The strip's ends label inwards, so that no number is cut off.
            let anchor = if x < s.x0 + 20.0 {
                "start"
            } else if x > s.x0 + s.width - 20.0 {
                "end"
            } else {
                "middle"
            };
            view! {
                <line class="tick-line" x1=x x2=x y1=ZONE_Y y2=AXIS_Y - 6.0 />
                <text class="tick" x=x y=AXIS_Y + 8.0 text-anchor=anchor>{p.to_string()}</text>
            }
        })
        .collect_view()
}
