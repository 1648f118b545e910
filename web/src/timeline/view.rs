//! The timeline's components (wasm32 only) beside the Timeline tab (`tab.rs`): its state
//! ([`TimelineState`]: the window, the tenures fetched and merged), the "Recent changes"
//! panel, the detail of a tenure whose owner is gone, and the connections chart of a
//! listener's detail. Data comes from the history routes through `api` and from the live
//! `Events` the link collects; every decision about what to draw is the model's.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use leptos::prelude::*;
use portscope_shared::{ConnectionHistory, Event, Hello, OwnerStatus, Spans};

use super::connections::Chart;
use super::recent::{Change, port_of, recent};
use super::time::{self, HOUR_MS, MINUTE_MS};
use super::{HealthPoint, ListenerKey, Tenure, Window, merge};
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
    // A merged peer's tenure names its host in its key; a socket's key never does.
    let key = ListenerKey {
        host: None,
        ..t.key.clone()
    };
    table
        .rows
        .values()
        .find(|r| {
            let s = &r.socket;
            r.closed_at.is_none()
                && s.host.as_deref() == host
                && s.is_listening()
                && ListenerKey::of_socket(s) == key
                && s.owner == OwnerStatus::Known
                && t.pid.is_some_and(|pid| s.pids.contains(&pid))
        })
        .map(|r| r.key.clone())
}

/// The tenure a change began or ended, among the merged ones (a merged peer's tenures name
/// its host in their keys, as its changes do).
pub fn tenure_of_event(tenures: &[Tenure], c: &Change) -> Option<Tenure> {
    let e = &c.event;
    let at = time::parse(&e.time)?;
    let key = ListenerKey {
        host: c.host.clone(),
        ..ListenerKey::of_event(e)
    };
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

/// The last hour's events of `host` (this agent: `None`), newest first: the last [`RECENT`],
/// and with a port the filter names, that port's too (a number may be a pid as well as a port).
async fn last_hour(host: Option<&str>, port: Option<u16>) -> Result<Vec<Event>, api::Failure> {
    #[derive(serde::Deserialize)]
    struct Answer {
        events: Vec<Event>,
    }
    let mut paths = vec![format!("/api/v1/history?since=1h&limit={RECENT}")];
    if let Some(port) = port {
        paths.push(format!("{}&port={port}", paths[0]));
    }
    let mut events = Vec::new();
    for path in paths {
        events.extend(api::get::<Answer>(&api::on_host(&path, host)).await?.events);
    }
    Ok(events)
}

/// "Recent changes": the last [`RECENT`] listener events, newest first; each links to its row
/// or its bar (`pick`). With all hosts picked on a hub, the `merged` peers' last hours are
/// merged in, each line naming its host.
#[component]
pub fn RecentChanges(
    hello: Signal<Option<Hello>>,
    events: RwSignal<Vec<Event>>,
    query: Signal<String>,
    pick: Callback<Change>,
    /// Whose changes: this machine's (`None`), or a hub's peer's from its relayed history.
    host: Signal<Option<String>>,
    /// With all hosts picked on a hub: the peers whose histories are merged in.
    merged: Signal<Vec<String>>,
    /// Where a failure's "Diagnose" asks.
    doctor: crate::doctor::Doctor,
) -> impl IntoView {
    let offset = offset_min();
    let history = RwSignal::new(Vec::<Change>::new());
    // What could not be read, by source (`None`: the host shown).
    let problems = RwSignal::new(BTreeMap::<Option<String>, String>::new());
    let failed = Memo::new(move |_| {
        problems
            .with(|p| (!p.is_empty()).then(|| p.values().cloned().collect::<Vec<_>>().join("; ")))
    });
    // The sources asked now: one request (or two) at a time each, so that a peer slower than
    // the refetch never piles requests up on the hub (each relayed read takes one of its
    // slots), and each source's answer is shown as it comes, the others not waiting for it.
    let in_flight = StoredValue::new(HashSet::<Option<String>>::new());
    // A peer's changes come from its history alone: asked again every little while.
    let again = RwSignal::new(0u32);
    set_interval(
        move || {
            if host.with_untracked(Option::is_some) || merged.with_untracked(|m| !m.is_empty()) {
                again.update(|n| *n += 1);
            }
        },
        Duration::from_millis(PEER_REFETCH_MS as u64),
    );
    // The last hour from the history: of the filter's port when it names one (a busy machine's
    // last 50 changes would leave it out), else of every port; asked again when that changes.
    let asked_port = Memo::new(move |_| query.with(|q| port_of(q)));
    // What the answers are for: an answer to an older question (another port, another host)
    // is dropped.
    let asked = Memo::new(move |_| (asked_port.get(), host.get(), merged.get()));
    Effect::new(move |_| {
        let (port, host, merged) = asked.get();
        again.track();
        if hello.with(|h| h.as_ref().map(|h| h.history)) != Some(true) {
            history.set(Vec::new());
            problems.set(BTreeMap::new());
            return;
        }
        // Sources no longer asked leave the list.
        history.update(|h| h.retain(|c| c.host.as_ref().is_none_or(|p| merged.contains(p))));
        problems.update(|p| p.retain(|k, _| k.as_ref().is_none_or(|n| merged.contains(n))));
        // The host shown (its changes name no host), then each merged peer (theirs do).
        let mut sources: Vec<(Option<String>, Option<String>)> = vec![(host.clone(), None)];
        sources.extend(merged.iter().map(|p| (Some(p.clone()), Some(p.clone()))));
        for (ask, named) in sources {
            if !in_flight
                .try_update_value(|f| f.insert(named.clone()))
                .unwrap_or(false)
            {
                continue;
            }
            let question = (port, host.clone(), merged.clone());
            leptos::task::spawn_local(async move {
                let answer = last_hour(ask.as_deref(), port).await;
                in_flight.update_value(|f| {
                    f.remove(&named);
                });
                if asked.get_untracked() != question {
                    return;
                }
                match answer {
                    Ok(events) => {
                        problems.update(|p| drop(p.remove(&named)));
                        history.update(|h| {
                            h.retain(|c| c.host != named);
                            h.extend(events.into_iter().map(|event| Change {
                                host: named.clone(),
                                event,
                            }));
                            // Newest first, as one answer would be; `recent` drops the events
                            // held twice.
                            let at = |c: &Change| {
                                time::parse(&c.event.time).unwrap_or(f64::NEG_INFINITY)
                            };
                            h.sort_by(|a, b| at(b).total_cmp(&at(a)));
                        });
                    }
                    Err(e) => {
                        // The relay's own words name the peer already; the peer's do not.
                        let text = match &named {
                            Some(peer) if !e.message.contains(peer.as_str()) => {
                                format!("{peer}: {}", e.message)
                            }
                            _ => e.message,
                        };
                        problems.update(|p| drop(p.insert(named, text)));
                    }
                }
            });
        }
    });
    let list = Memo::new(move |_| {
        // The live events are this machine's.
        let local = host.with(Option::is_none);
        query.with(|q| {
            history.with(|h| {
                events.with(|live| {
                    let h: Vec<Change> = h.iter().filter(|c| c.matches(q)).cloned().collect();
                    let live: Vec<Change> = live
                        .iter()
                        .filter(|_| local)
                        .map(|e| Change::here(e.clone()))
                        .filter(|c| c.matches(q))
                        .collect();
                    recent(&h, &live, RECENT)
                })
            })
        })
    });
    let failed_list = Memo::new(move |_| list.with(|l| super::recent::failures(l, FAILURES_SHOWN)));
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
            <Show when=move || failed_list.with(|f| !f.is_empty())>
                <section class="failures" aria-label="Failures">
                    <h2 class="small">"Failures " <span class="muted">{move || format!("({})", failed_list.with(Vec::len))}</span></h2>
                    <ol class="failure-list">
                        {move || failed_list.get().into_iter().map(|c| failure_item(c, offset, doctor)).collect_view()}
                    </ol>
                </section>
            </Show>
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
                            .map(|c| {
                                let text = c.line(offset);
                                let kind = super::recent::verb(c.event.kind).replace(' ', "-");
                                let port = c.event.local_port;
                                let pid = c.event.pid.map(|p| p.to_string());
                                view! {
                                    <li class=format!("event {kind}")>
                                        <button type="button" class="event-link" data-port=port data-kind=kind.clone() data-pid=pid data-host=c.host.clone()
                                            on:click=move |_| pick.run(c.clone())>
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

/// Failures listed above the recent changes at most.
const FAILURES_SHOWN: usize = 10;

/// One failure of the Failures lane: what happened, the fix, and the doctor's full answer one
/// click away (`bind` for a failed bind, `why` for a refused connect), on the failure's host.
fn failure_item(c: Change, offset: i32, doctor: crate::doctor::Doctor) -> impl IntoView {
    use super::recent::{Ask, ask_of};
    use crate::doctor::Kind;
    let kind = super::recent::verb(c.event.kind).replace(' ', "-");
    let fix = c.event.fix.clone();
    let ask = ask_of(&c.event);
    let label = match &ask {
        Some(Ask::Bind(port)) => format!("Why could it not bind {port}?"),
        Some(Ask::Why(target)) => format!("Why is {target} refused?"),
        None => String::new(),
    };
    let host = c.host.clone();
    let port = c.event.remote_port.unwrap_or(c.event.local_port);
    view! {
        <li class=format!("event failure {kind}") data-port=port data-kind=kind.clone() data-pid=c.event.pid.map(|p| p.to_string())>
            <span class="failure-text">{c.line(offset)}</span>
            {fix.map(|f| view! { <span class="failure-fix small">{format!("Fix: {f}")}</span> })}
            {ask.map(|ask| {
                let host = host.clone();
                view! {
                    <button type="button" class="link diagnose" on:click=move |_| {
                        let (kind, target) = match ask.clone() {
                            Ask::Bind(t) => (Kind::Bind, t),
                            Ask::Why(t) => (Kind::Why, t),
                        };
                        doctor.ask_on(host.clone(), kind, target);
                        if let Some(el) = document().get_element_by_id("doctor-target") {
                            el.scroll_into_view();
                        }
                    }>{label.clone()}</button>
                }
            })}
        </li>
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
pub fn connections_view(answer: &Result<ConnectionHistory, api::Failure>, now: f64) -> AnyView {
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
