//! wasm32 only: the Projects view (one card per project, then "Other") and the notifications
//! a user turns on per project or per service.

use std::collections::HashMap;

use leptos::prelude::*;
use portscope_shared::{Exposure, Hello, Spans};

use super::{Card, Change, Projects, Service, ServiceKey, Watch, changes, health_tag, uptime};
use crate::api;
use crate::table::Table;
use crate::timeline::time;

/// Where the watch list is kept: this browser's localStorage, so that it survives a reload.
const WATCH_KEY: &str = "portscope_watch";

/// How many changes of watched services the view lists.
const CHANGES_KEPT: usize = 20;

/// What the Projects view and the notifications share with the page.
#[derive(Clone, Copy, Debug)]
pub struct ProjectsState {
    /// The grouping of the table's open listeners for the view's host and filter.
    pub projects: Memo<Projects>,
    pub watch: RwSignal<Watch>,
    /// When each of this machine's listeners opened, from the history (ms since the epoch).
    opened: RwSignal<HashMap<ServiceKey, f64>>,
    /// The last changes of watched services, newest first, with when they happened.
    pub changes: RwSignal<Vec<(f64, Change)>>,
    /// What the browser said when asked for permission to notify, when it said no.
    refused: RwSignal<Option<String>>,
    /// The failures the kernel reported since the page opened, newest first, at most
    /// [`FAILURES_KEPT`]: each card shows its project's.
    failures: RwSignal<Vec<portscope_shared::Event>>,
}

/// How many failures the view keeps; a card shows its last [`CARD_FAILURES`].
const FAILURES_KEPT: usize = 100;
const CARD_FAILURES: usize = 3;

impl ProjectsState {
    /// The grouping is made only while the view shows (`active`): a delta at 20 000 rows need
    /// not walk them for a hidden view.
    pub fn new(
        table: RwSignal<Table>,
        host: Signal<Option<String>>,
        query: Signal<String>,
        active: Signal<bool>,
    ) -> Self {
        let projects = Memo::new(move |_| {
            if !active.get() {
                return Projects::default();
            }
            let host = host.get();
            query.with(|q| table.with(|t| super::group(t, host.as_deref(), q)))
        });
        let watch = RwSignal::new(load_watch());
        Effect::new(move |_| watch.with(save_watch));
        Self {
            projects,
            watch,
            opened: RwSignal::new(HashMap::new()),
            changes: RwSignal::new(Vec::new()),
            refused: RwSignal::new(None),
            failures: RwSignal::new(Vec::new()),
        }
    }

    /// Follows the live events for failures: each is kept for the cards, and one of a watched
    /// project (or service) becomes a line of the watched list and a notification.
    pub fn notify_on_failures(self, events: RwSignal<Vec<portscope_shared::Event>>) {
        // The last event already looked at: the live list drops its oldest past its limit,
        // so the new ones are those after it.
        let last = StoredValue::new(None::<portscope_shared::Event>);
        Effect::new(move |_| {
            let new: Vec<portscope_shared::Event> = events.with(|all| {
                let from = last
                    .with_value(|l| l.as_ref().and_then(|l| all.iter().rposition(|e| e == l)))
                    .map_or(0, |i| i + 1);
                all[from..].to_vec()
            });
            let Some(newest) = new.last() else {
                return;
            };
            last.set_value(Some(newest.clone()));
            let failed: Vec<portscope_shared::Event> = new
                .into_iter()
                .filter(crate::timeline::recent::is_failure)
                .collect();
            if failed.is_empty() {
                return;
            }
            let watch = self.watch.get_untracked();
            let at = js_sys::Date::now();
            let said: Vec<Change> = failed
                .iter()
                .filter_map(|e| {
                    super::failure_change(e, &watch, crate::timeline::view::offset_min())
                })
                .collect();
            for change in &said {
                notify(change);
            }
            if !said.is_empty() {
                self.changes.update(|list| {
                    for change in said {
                        list.insert(0, (at, change));
                    }
                    list.truncate(CHANGES_KEPT);
                });
            }
            self.failures.update(|kept| {
                for e in failed {
                    kept.insert(0, e);
                }
                kept.truncate(FAILURES_KEPT);
            });
        });
    }

    /// Watches the grouping for changes of watched services: each becomes a line of the
    /// view's list and, when the browser allows it, a notification. Unfiltered, so that a
    /// filter typed does not read as services closing; made only while something is watched.
    pub fn notify_on_changes(self, table: RwSignal<Table>) {
        let all = Memo::new(move |_| table.with(|t| super::group(t, None, "")));
        let last = StoredValue::new(None::<Projects>);
        Effect::new(move |_| {
            let watch = self.watch.get();
            if watch.is_empty() {
                last.set_value(None);
                return;
            }
            let now = all.get();
            let before = last.get_value();
            last.set_value(Some(now.clone()));
            // The first grouping (and one before any snapshot) is no change.
            let Some(before) = before.filter(|b| !b.cards.is_empty() || !b.other.is_empty()) else {
                return;
            };
            let said = changes(&before, &now, &watch);
            if said.is_empty() {
                return;
            }
            let at = js_sys::Date::now();
            for change in &said {
                notify(change);
            }
            self.changes.update(|list| {
                for change in said {
                    list.insert(0, (at, change));
                }
                list.truncate(CHANGES_KEPT);
            });
        });
    }

    /// Turns the notifications for a project (`Some(name)`) or a service on or off; turning
    /// one on asks the browser's permission the first time.
    fn toggle(self, project: Option<String>, service: Option<ServiceKey>) {
        let on = self.watch.with_untracked(|w| match (&project, &service) {
            (Some(p), _) => !w.projects.contains(p),
            (None, Some(s)) => !w.services.contains(s),
            (None, None) => false,
        });
        self.watch.update(|w| match (project, service) {
            (Some(p), _) if on => {
                w.projects.insert(p);
            }
            (Some(p), _) => {
                w.projects.remove(&p);
            }
            (None, Some(s)) if on => {
                w.services.insert(s);
            }
            (None, Some(s)) => {
                w.services.remove(&s);
            }
            (None, None) => {}
        });
        if on {
            self.ask_permission();
        }
    }

    fn ask_permission(self) {
        match web_sys::Notification::permission() {
            web_sys::NotificationPermission::Granted => self.refused.set(None),
            web_sys::NotificationPermission::Denied => self.refused.set(Some(
                "This browser blocks notifications from this page: changes are listed here only."
                    .to_owned(),
            )),
            _ => {
                let Ok(promise) = web_sys::Notification::request_permission() else {
                    return;
                };
                leptos::task::spawn_local(async move {
                    let answer = wasm_bindgen_futures::JsFuture::from(promise).await;
                    let granted =
                        answer.ok().and_then(|v| v.as_string()).as_deref() == Some("granted");
                    self.refused.set((!granted).then(|| {
                        "Notifications were not allowed: changes are listed here only.".to_owned()
                    }));
                });
            }
        }
    }

    /// Asks the history when the listeners shown opened — this machine's, and a hub's peers'
    /// from their own histories (relayed by the hub) — when their set changes.
    pub fn keep_opened(self, hello: RwSignal<Option<Hello>>, active: Signal<bool>) {
        let request = StoredValue::new(0u64);
        let hosts = Memo::new(move |_| {
            self.projects.with(|p| {
                let mut hosts: Vec<Option<String>> =
                    p.services().map(|(_, s)| s.key().host).collect();
                hosts.sort();
                hosts.dedup();
                hosts
            })
        });
        Effect::new(move |_| {
            let mut hosts = hosts.get();
            if !active.get() || hosts.is_empty() {
                return;
            }
            // This agent's history only when it keeps one; a peer without one answers 404,
            // and its services show no uptime.
            if hello.with(|h| h.as_ref().map(|h| h.history)) != Some(true) {
                hosts.retain(Option::is_some);
            }
            let n = request.get_value() + 1;
            request.set_value(n);
            // The spans open a second ago: each open listener's life so far.
            let since = time::format_utc(js_sys::Date::now() - 1000.0);
            let path = format!("/api/v1/history/spans?since={since}&limit=5000");
            leptos::task::spawn_local(async move {
                let mut opened: HashMap<ServiceKey, f64> = HashMap::new();
                for host in hosts {
                    let Ok(spans) = api::get::<Spans>(&api::on_host(&path, host.as_deref())).await
                    else {
                        continue;
                    };
                    if request.get_value() != n {
                        return;
                    }
                    for s in spans.spans.iter().filter(|s| s.end.is_none()) {
                        let Some(start) = time::parse(&s.start) else {
                            continue;
                        };
                        let key = ServiceKey {
                            host: host.clone(),
                            proto: s.proto,
                            port: s.local_port,
                        };
                        let at = opened.entry(key).or_insert(start);
                        *at = at.min(start);
                    }
                }
                self.opened.set(opened);
            });
        });
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

fn load_watch() -> Watch {
    storage()
        .and_then(|s| s.get_item(WATCH_KEY).ok().flatten())
        .map(|text| Watch::from_text(&text))
        .unwrap_or_default()
}

fn save_watch(watch: &Watch) {
    if let Some(s) = storage() {
        let _ = s.set_item(WATCH_KEY, &watch.to_text());
    }
}

/// A browser notification, where the page may show one.
fn notify(change: &Change) {
    if web_sys::Notification::permission() != web_sys::NotificationPermission::Granted {
        return;
    }
    let options = web_sys::NotificationOptions::new();
    options.set_body("portscope");
    options.set_tag(&format!("portscope {:?}", change.key));
    let _ = web_sys::Notification::new_with_options(&change.text, &options);
}

#[component]
pub fn ProjectsView(
    state: ProjectsState,
    active: Signal<bool>,
    /// Shows a project's sockets in the table (the filter term).
    on_filter: Callback<String>,
    /// Opens a socket's row in the table.
    on_row: Callback<String>,
) -> impl IntoView {
    let now = RwSignal::new(js_sys::Date::now());
    set_interval(
        move || {
            if active.get_untracked() {
                now.set(js_sys::Date::now());
            }
        },
        std::time::Duration::from_secs(30),
    );
    let cards = move || {
        state.projects.with(|p| {
            p.cards
                .iter()
                .map(|c| card(c, state, now, on_filter, on_row))
                .collect_view()
        })
    };
    let other = move || {
        state.projects.with(|p| {
            p.other
                .iter()
                .map(|s| service(s, None, state, now, on_row))
                .collect_view()
        })
    };
    let other_count = move || state.projects.with(|p| p.other.len());
    let empty = move || state.projects.with(|p| p.cards.is_empty());
    view! {
        <section class="projects" id="panel-projects" role="tabpanel" aria-labelledby="tab-projects" hidden=move || !active.get()>
            <Show when=empty>
                <p class="muted projects-empty">
                    "No listener here belongs to a project: a project is the git repository (or Compose project) a server's working directory is in. Start a server inside a repository and its card appears here."
                </p>
            </Show>
            <Show when=move || state.refused.with(Option::is_some)>
                <p class="muted small" role="status">{move || state.refused.get()}</p>
            </Show>
            <Show when=move || state.changes.with(|c| !c.is_empty())>
                <section class="watched-changes" aria-label="Changes of watched services">
                    <h2 class="small">"Watched services"</h2>
                    <ol class="events">
                        {move || state.changes.get().into_iter().map(|(at, c)| {
                            let clock = time::clock(at, crate::timeline::view::offset_min());
                            view! { <li class="change" class:bad=c.bad>{format!("{clock} {}", c.text)}</li> }
                        }).collect_view()}
                    </ol>
                </section>
            </Show>
            <div class="cards">{cards}</div>
            <details class="other" id="projects-other">
                <summary>{move || format!("Other listeners ({}): system daemons, other users' servers, anything outside a project", other_count())}</summary>
                <ul class="services">{other}</ul>
            </details>
        </section>
    }
}

fn card(
    c: &Card,
    state: ProjectsState,
    now: RwSignal<f64>,
    on_filter: Callback<String>,
    on_row: Callback<String>,
) -> impl IntoView + use<> {
    let name = c.name.clone();
    let watched = {
        let name = name.clone();
        Signal::derive(move || state.watch.with(|w| w.projects.contains(&name)))
    };
    let toggle = {
        let name = name.clone();
        move |_| state.toggle(Some(name.clone()), None)
    };
    let filter = c.filter();
    let source = match c.source {
        portscope_shared::ProjectSource::Git => "git repository",
        portscope_shared::ProjectSource::Worktree => "git worktree",
        portscope_shared::ProjectSource::Compose => "Compose project",
        portscope_shared::ProjectSource::Unknown => "project",
    };
    let services = c
        .services
        .iter()
        .map(|s| service(s, Some(name.clone()), state, now, on_row))
        .collect_view();
    let count = c.services.len();
    let failures = {
        let name = name.clone();
        move || {
            state.failures.with(|all| {
                all.iter()
                    .filter(|e| super::failure_in(e, &name))
                    .take(CARD_FAILURES)
                    .map(|e| {
                        let text = crate::timeline::recent::failure_words(e, crate::timeline::view::offset_min());
                        let fix = e.fix.clone().map(|f| format!("Fix: {f}"));
                        view! { <li class="card-failure bad"><span>{text}</span>{fix.map(|f| view! { <span class="failure-fix small">{f}</span> })}</li> }
                    })
                    .collect_view()
            })
        }
    };
    view! {
        <article class="card" data-project=name.clone() aria-label=format!("Project {name}")>
            <header class="card-head">
                <h2 class="card-name">{name.clone()}</h2>
                {c.host.clone().map(|h| view! { <span class="tag host-badge" title="the machine it runs on">{h}</span> })}
                <span class="muted small mono card-root" title=source>{c.root.clone()}</span>
                <span class="card-actions">
                    <button type="button" class="link show-sockets" on:click=move |_| on_filter.run(filter.clone())>
                        {format!("{count} listener{} · show sockets", if count == 1 { "" } else { "s" })}
                    </button>
                    <button type="button" class="watch" aria-pressed=move || if watched.get() { "true" } else { "false" }
                        title="A browser notification when one of its listeners closes, comes back or its health turns bad"
                        on:click=toggle>
                        {move || if watched.get() { "✓ Notifying" } else { "Notify me" }}
                    </button>
                </span>
            </header>
            <ul class="services">{services}</ul>
            <ul class="card-failures" aria-label=format!("Failures in {name}")>{failures}</ul>
        </article>
    }
}

fn service(
    s: &Service,
    project: Option<String>,
    state: ProjectsState,
    now: RwSignal<f64>,
    on_row: Callback<String>,
) -> impl IntoView + use<> {
    let key = s.key();
    let since = {
        let key = key.clone();
        let started = s.started;
        Signal::derive(move || {
            let opened = state.opened.with(|o| o.get(&key).copied());
            let (at, source) = match (opened, started) {
                (Some(at), _) => (at, "opened"),
                (None, Some(at)) => (at, "its process started"),
                (None, None) => return None,
            };
            Some((
                uptime(at, now.get()),
                format!(
                    "{source} {}",
                    time::clock(at, crate::timeline::view::offset_min())
                ),
            ))
        })
    };
    let exposure = s.exposure.map(|e| {
        let (class, text) = match e {
            Exposure::Loopback => ("tag loopback", "loopback"),
            Exposure::Interface => ("tag interface", "one interface"),
            Exposure::All => ("tag all", "all interfaces"),
        };
        view! { <span class=class title=e.explain()>{text}</span> }
    });
    let health = s.health.as_ref().map(|h| {
        let (class, text) = health_tag(h);
        let title = h.detail.clone().unwrap_or_else(|| {
            "GET / over loopback, every 10 s while a dashboard is open".to_owned()
        });
        view! { <span class=class title=title>{text}</span> }
    });
    let open = s.open_url().map(|url| {
        view! { <a class="button open" href=url target="_blank" rel="noopener noreferrer">"Open"</a> }
    });
    let row = s.row.clone();
    let watched = {
        let key = key.clone();
        let project = project.clone();
        Signal::derive(move || state.watch.with(|w| w.watches(project.as_deref(), &key)))
    };
    let toggle = {
        let key = key.clone();
        move |_| state.toggle(None, Some(key.clone()))
    };
    let connections = match s.connections {
        0 => String::new(),
        1 => "1 connection".to_owned(),
        n => format!("{n} connections"),
    };
    let proto = match s.proto {
        portscope_shared::Proto::Tcp => "",
        portscope_shared::Proto::Udp => " udp",
    };
    view! {
        <li class="service" data-port=s.port>
            <button type="button" class="service-open" title=format!("{} — open in the socket table", s.addresses.join(", "))
                on:click=move |_| on_row.run(row.clone())>
                <span class="mono port">{format!(":{}{proto}", s.port)}</span>
                <span class="who">
                    <span class="program">{s.program.clone()}</span>
                    <span class="muted small owners" title=s.owners.clone()>{s.owners.clone()}</span>
                </span>
            </button>
            <span class="meta">
                {exposure}
                {health}
                <span class="muted small uptime" title=move || since.get().map(|(_, t)| t)>{move || since.get().map(|(u, _)| u)}</span>
                <span class="muted small conns">{connections}</span>
            </span>
            <span class="actions">
                {open}
                <button type="button" class="watch small-watch"
                    aria-label={
                        let port = s.port;
                        move || if watched.get() { format!("notifying about port {port}") } else { format!("notify about port {port}") }
                    }
                    aria-pressed=move || if watched.get() { "true" } else { "false" }
                    on:click=toggle>
                    {move || if watched.get() { "notifying" } else { "notify" }}
                </button>
            </span>
        </li>
    }
}
