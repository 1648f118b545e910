//! The dashboard's components: header with the link status and the Sockets | Timeline tabs,
//! toolbar (filter, listening toggle, count), the live socket table (rows selectable with the
//! keyboard; compact cards below 600 px), "Recent changes" beside it, and the detail panel of
//! the selected row with what `portscope who` says of its owners and, for a listener, its
//! connections over the last hour. The timeline's own components are in `timeline::view`.
//!
//! On a hub (`--peers`), [`Fleet`] follows `GET /api/v1/hosts` and opens one more link per
//! peer into the same table; the header then has a host switcher (All / each host) and each
//! peer's link status, the table a Host column, and a peer's row's actions ask that peer. With
//! one host the page is what it always was: no switcher, no Host column.

use std::time::Duration;

use leptos::ev;
use leptos::html;
use leptos::prelude::*;
use std::collections::HashMap;

use portscope_shared::{
    ConnectionHistory, Event, Exposure, Hello, Host, HostStatus, Hosts, KillScope, Owner,
    OwnerStatus, PROTOCOL_VERSION, PortRange, Process, Proto, Socket, WhoReport,
};
use wasm_bindgen::{JsCast, JsValue};

use crate::address::Tab;
use crate::conn::{self, Applying, Link, Sinks};
use crate::doctor::{Doctor, Kind, StopTarget, Troubleshoot};
use crate::map::view::{LinkDetail, Map, MapState, keep_graph};
use crate::portspace::view::PortSpace;
use crate::projects::view::{ProjectsState, ProjectsView};
use crate::stopping;
use crate::table::{self, Column, Row, Table, View};
use crate::timeline::ListenerKey;
use crate::timeline::view::{
    RecentChanges, TenureDetail, Timeline, TimelineState, connections_view, keep_base, live_row,
    tenure_of_event,
};
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

/// How often a hub's page asks for its hosts' links (`GET /api/v1/hosts`). A lone agent's page
/// asks only when its link (re)opens: it cannot gain peers without a restart.
const HOSTS_EVERY: Duration = Duration::from_secs(3);

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

/// A peer the page follows: its own link to the hub's relay of it, and what that link heard.
#[derive(Clone, Copy, Debug)]
struct PeerLink {
    link: RwSignal<Link>,
    hello: RwSignal<Option<Hello>>,
}

/// The hosts the page shows: the hub's list (`GET /api/v1/hosts`, this agent first) and a link
/// per peer feeding the table. A lone agent's list holds itself only.
#[derive(Clone, Copy)]
struct Fleet {
    /// Empty until the agent answered (an agent without the route never does).
    hosts: RwSignal<Vec<Host>>,
    /// Each followed peer's link, in the list's order.
    peers: RwSignal<Vec<(String, PeerLink)>>,
    /// What ends each peer's link, by name.
    handles: StoredValue<HashMap<String, conn::Handle>, LocalStorage>,
    token: StoredValue<Option<String>>,
    table: RwSignal<Table>,
    view: RwSignal<View>,
}

impl Fleet {
    /// Whether the page shows more than one host (tracked).
    fn multi(self) -> bool {
        self.hosts.with(|h| h.len() > 1)
    }

    /// Asks the agent for its hosts and follows the answer.
    fn refresh(self) {
        leptos::task::spawn_local(async move {
            if let Ok(list) = api::get::<Hosts>("/api/v1/hosts").await {
                self.follow(list.hosts);
            }
        });
    }

    /// Opens a link for each new peer, ends those of peers gone (and forgets their rows), names
    /// this agent's rows while there is more than one host, and drops a host the view picked
    /// that is no longer there.
    fn follow(self, list: Vec<Host>) {
        let names: Vec<String> = list
            .iter()
            .filter(|h| !h.local)
            .map(|h| h.name.clone())
            .collect();
        let mut gone = Vec::new();
        self.handles.update_value(|handles| {
            handles.retain(|name, handle| {
                let keep = names.contains(name);
                if !keep {
                    handle.stop();
                    gone.push(name.clone());
                }
                keep
            });
        });
        for name in &gone {
            self.table.update(|t| t.remove_host(name));
        }
        let mut links = self.peers.get_untracked();
        links.retain(|(name, _)| names.contains(name));
        for name in &names {
            if links.iter().any(|(n, _)| n == name) {
                continue;
            }
            let peer = PeerLink {
                link: RwSignal::new(Link::Connecting),
                hello: RwSignal::new(None),
            };
            let sinks = Sinks {
                link: peer.link,
                hello: peer.hello,
                table: self.table,
                ever_opened: RwSignal::new(false),
                applied: None,
                events: None,
            };
            let token = self.token.get_value();
            let handle = conn::start(sinks, token.as_deref(), Some(name.clone()));
            self.handles
                .update_value(|handles| drop(handles.insert(name.clone(), handle)));
            links.push((name.clone(), peer));
        }
        links.sort_by_key(|(name, _)| names.iter().position(|n| n == name));
        let same = self.peers.with_untracked(|old| {
            old.len() == links.len() && old.iter().zip(&links).all(|(a, b)| a.0 == b.0)
        });
        if !same {
            self.peers.set(links);
        }

        let multi = list.len() > 1;
        let local = list
            .iter()
            .find(|h| h.local)
            .map(|h| h.name.clone())
            .filter(|_| multi);
        self.table.maybe_update(|t| {
            let changed = t.local_name() != local.as_deref();
            if changed {
                t.set_local_name(local);
            }
            changed
        });
        let picked_gone = self.view.with_untracked(|v| {
            v.host
                .as_ref()
                .is_some_and(|h| !multi || !list.iter().any(|l| &l.name == h))
        });
        if picked_gone {
            self.view.update(|v| v.host = None);
        }
        if self.hosts.with_untracked(|old| *old != list) {
            self.hosts.set(list);
        }
    }

    /// The hub's entry for a peer (tracked).
    fn entry(self, name: &str) -> Option<Host> {
        self.hosts
            .with(|list| list.iter().find(|h| h.name == name).cloned())
    }

    /// The page's link to a peer's relay (tracked).
    fn peer_link(self, name: &str) -> Option<PeerLink> {
        self.peers
            .with(|p| p.iter().find(|(n, _)| n == name).map(|(_, l)| *l))
    }

    /// Whether a peer's rows are the present: the hub follows it live and the page follows the
    /// hub's relay of it (tracked).
    fn peer_live(self, name: &str) -> bool {
        self.entry(name)
            .is_some_and(|h| h.status == HostStatus::Live)
            && self
                .peer_link(name)
                .is_some_and(|l| l.link.get() == Link::Live)
    }

    /// Whether the page may offer to stop a process on `host`: this agent stops processes,
    /// and for a peer its own agent does too (tracked).
    fn can_kill(self, host: Option<&str>, hello: RwSignal<Option<Hello>>) -> bool {
        let here = hello.with(|h| h.as_ref().is_some_and(|h| h.can_kill));
        match host {
            None => here,
            Some(name) => here && self.entry(name).is_some_and(|h| h.can_kill),
        }
    }

    /// The ephemeral port range of `host`, as its agent said (tracked).
    fn ephemeral(self, host: Option<&str>, hello: RwSignal<Option<Hello>>) -> Option<PortRange> {
        let hello = match host {
            None => hello,
            Some(name) => self.peer_link(name)?.hello,
        };
        hello.with(|h| h.as_ref().and_then(|h| h.ephemeral_ports))
    }
}

/// A peer's link as its status pill says it: the hub's view (`crate::peers::pill`), with this
/// page's own stream of it on hover.
fn peer_status(host: &Host, relay: Option<&Link>) -> (&'static str, String, String) {
    let last_live = host.last_live.as_deref().and_then(local_time);
    crate::peers::pill(host, relay.map(|l| matches!(l, Link::Live)), last_live)
}

/// An RFC 3339 time in the browser's local time and format.
fn local_time(rfc3339: &str) -> Option<String> {
    let ms = crate::timeline::time::parse(rfc3339)?;
    let date = js_sys::Date::new(&JsValue::from_f64(ms));
    Some(String::from(
        date.to_locale_string("default", &JsValue::UNDEFINED),
    ))
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
    // The view: the URL's, else chosen once the first snapshot shows whether any project
    // has a listener.
    let asked_tab = url::read_tab();
    let tab = RwSignal::new(asked_tab.unwrap_or(Tab::Sockets));
    let tab_chosen = RwSignal::new(asked_tab.is_some());
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
    // This agent's stream: its link lives as long as the page.
    let _local = conn::start(
        Sinks {
            link,
            hello,
            table,
            ever_opened,
            applied: Some(applied),
            events: Some(events),
        },
        token.as_deref(),
        None,
    );
    let fleet = Fleet {
        hosts: RwSignal::new(Vec::new()),
        peers: RwSignal::new(Vec::new()),
        handles: StoredValue::new_local(HashMap::new()),
        token: StoredValue::new(token),
        table,
        view,
    };
    let multi = Memo::new(move |_| fleet.multi());
    // The hosts to choose from (name, whether it is this agent): unlike the list, which
    // changes with every answer (socket counts), these change only when hosts come or go.
    let choices = Memo::new(move |_| {
        fleet.hosts.with(|list| {
            list.iter()
                .map(|h| (h.name.clone(), h.local))
                .collect::<Vec<_>>()
        })
    });
    // The hosts: asked whenever this agent's link (re)opens — a restarted agent may have other
    // peers — and every few seconds on a hub, for each peer's status.
    Effect::new(move |_| {
        if hello.with(Option::is_some) {
            fleet.refresh();
        }
    });
    set_interval(
        move || {
            if fleet.hosts.with_untracked(|h| h.len() > 1) {
                fleet.refresh();
            }
        },
        HOSTS_EVERY,
    );
    // Peers whose rows are not the present: dimmed, and said so above the table.
    let stale_peers = Memo::new(move |_| {
        fleet.peers.with(|peers| {
            peers
                .iter()
                .map(|(name, _)| name.clone())
                .filter(|name| !fleet.peer_live(name))
                .collect::<Vec<_>>()
        })
    });
    let doctor = Doctor::new();
    let on_projects = Signal::derive(move || tab.get() == Tab::Projects);
    let projects = ProjectsState::new(
        table,
        Signal::derive(move || view.with(|v| v.host.clone())),
        Signal::derive(move || view.with(|v| v.query.clone())),
        on_projects,
    );
    projects.keep_opened(hello, on_projects);
    projects.notify_on_changes(table);
    Effect::new(move |_| {
        if !tab_chosen.get_untracked() && table.with(Table::any_loaded) {
            tab_chosen.set(true);
            if table.with_untracked(|t| crate::projects::group(t, None, "").any()) {
                tab.set(Tab::Projects);
            }
        }
    });
    // The map and the port space show one machine: the host picked, else this agent's.
    let map = MapState::new();
    let on_map = Signal::derive(move || tab.get() == Tab::Map);
    let on_ports = Signal::derive(move || tab.get() == Tab::Ports);
    let one_host = Memo::new(move |_| {
        let local = table.with(|t| t.local_name().map(str::to_owned));
        view.with(|v| v.host.clone().filter(|h| Some(h) != local.as_ref()))
    });
    let one_host_note = Signal::derive(move || {
        (multi.get() && view.with(|v| v.host.is_none())).then(|| {
            let name = table.with(|t| t.local_name().unwrap_or("this machine").to_owned());
            format!("All hosts are picked: this view shows {name} (this machine) alone. Pick a host above to see another's.")
        })
    });
    let one_host_ephemeral =
        Signal::derive(move || fleet.ephemeral(one_host.get().as_deref(), hello));
    // The Timeline and Recent changes show the picked host's history (a peer's, relayed by
    // the hub), else this machine's; what that host's agent said of itself.
    let one_host_hello = Signal::derive(move || match one_host.get() {
        None => hello.get(),
        Some(name) => fleet.peer_link(&name).and_then(|l| l.hello.get()),
    });
    // With all hosts picked on a hub, the Timeline merges in each peer that keeps a history,
    // on lanes named after it.
    let merged_peers = Memo::new(move |_| {
        if !(multi.get() && view.with(|v| v.host.is_none())) {
            return Vec::new();
        }
        choices.with(|c| {
            c.iter()
                .filter(|(_, local)| !local)
                .filter(|(name, _)| {
                    fleet
                        .peer_link(name)
                        .and_then(|l| l.hello.get())
                        .is_some_and(|h| h.history)
                })
                .map(|(name, _)| name.clone())
                .collect::<Vec<_>>()
        })
    });
    let timeline = TimelineState::new(events, one_host.into(), merged_peers.into());
    let timeline_host_note = Signal::derive(move || {
        (multi.get() && view.with(|v| v.host.is_none())).then(|| {
            let name = table.with(|t| t.local_name().unwrap_or("this machine").to_owned());
            format!("All hosts are picked: each peer's listeners are on lanes named after it. Recent changes lists {name}'s (this machine's); pick a host to see another's.")
        })
    });
    let on_timeline = Signal::derive(move || tab.get() == Tab::Timeline);
    keep_base(timeline, one_host_hello, table, on_timeline);
    keep_graph(map, table, one_host, on_map);

    // Closed rows leave after their grace period.
    set_interval(
        move || table.maybe_update(|t| t.sweep(js_sys::Date::now())),
        Duration::from_millis(500),
    );
    // The URL mirrors the filter and sort, so a view can be bookmarked or shared.
    Effect::new(move |_| url::write_view(tab_chosen.get().then(|| tab.get()), &view.get()));

    let filter_ref = NodeRef::<html::Input>::new();
    let shortcuts_ref = NodeRef::<html::Dialog>::new();
    let show_shortcuts = move || {
        if let Some(dialog) = shortcuts_ref.get_untracked()
            && !dialog.open()
        {
            let _ = dialog.show_modal();
        }
    };
    let _keys = window_event_listener(ev::keydown, move |e: web_sys::KeyboardEvent| {
        let typing = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.active_element())
            .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"));
        let plain = !(e.ctrl_key() || e.meta_key() || e.alt_key());
        let view_key = e
            .key()
            .parse::<usize>()
            .ok()
            .and_then(|n| Tab::ALL.get(n.checked_sub(1)?).copied());
        if e.key() == "/" && !typing {
            e.prevent_default();
            if let Some(input) = filter_ref.get() {
                let _ = input.focus();
            }
        } else if e.key() == "?" && !typing {
            e.prevent_default();
            show_shortcuts();
        } else if let Some(which) = view_key.filter(|_| plain && !typing) {
            e.prevent_default();
            tab_chosen.set(true);
            tab.set(which);
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
        // Each host's own ephemeral range, looked up once per host in view.
        let mut ephemeral: Vec<(Option<String>, Option<PortRange>)> = Vec::new();
        let (top, height, px) = (scroll_top.get(), viewport.get(), row_px.get());
        table.with(|t| {
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
            Some((to, t.shown_rows(to, to + 1).next()?.key.clone()))
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
    // them for the present. On a hub, so are the rows of a peer that is not live.
    let stale = move || !matches!(link.get(), Link::Live);
    let stale_note = Memo::new(move |_| {
        if stale() {
            return Some(
                "Not live: these rows are the last ones received before the link went down."
                    .to_owned(),
            );
        }
        let picked = view.with(|v| v.host.clone());
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
    });

    // A line of "Recent changes" leads to its listener: the row while it is open (the table
    // filtered to its port), else its bar in the timeline.
    let show_port = move |port: u16| {
        let q = port.to_string();
        typed.set(q.clone());
        // The changes are the picked host's (a peer's, or this machine's): its rows stay shown.
        view.update(|v| v.query = q);
    };
    let pick = Callback::new(move |e: Event| {
        let key = ListenerKey::of_event(&e);
        let row = table.with_untracked(|t| {
            t.rows
                .values()
                .find(|r| {
                    let s = &r.socket;
                    // The changes are the timeline's host's.
                    r.closed_at.is_none()
                        && s.host == timeline.host.get_untracked()
                        && s.is_listening()
                        && ListenerKey::of_socket(s) == key
                        && e.pid.is_some_and(|p| s.pids.contains(&p))
                })
                .map(|r| r.key.clone())
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
                let host = timeline.host.get_untracked();
                let live = table.with_untracked(|tb| live_row(tb, &t, host.as_deref()));
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
    // A project card's link: the table filtered to the project's sockets.
    let to_filter = Callback::new(move |q: String| {
        typed.set(q.clone());
        view.update(|v| v.query = q);
        selected.set(None);
        tab_chosen.set(true);
        tab.set(Tab::Sockets);
    });
    // A service on a card: its row in the table, selected, with the filter set to its port.
    let to_row = Callback::new(move |key: String| {
        let port = table.with_untracked(|t| t.rows.get(&key).map(|r| r.socket.local_port));
        if let Some(port) = port {
            show_port(port);
        }
        cursor.set(Some(key.clone()));
        selected.set(Some(key));
        tab_chosen.set(true);
        tab.set(Tab::Sockets);
    });
    let to_port = Callback::new(move |port: u16| {
        timeline.picked.set(None);
        tab.set(Tab::Sockets);
        show_port(port);
    });
    // The map and the port space open a process or a socket in the table: (filter, row).
    // A process opened before the table holds its rows (a busy machine's snapshot still coming
    // in parts): its row is selected when they come, unless the filter changed meanwhile.
    let open_pending = RwSignal::new(None::<(String, u32)>);
    let open_in_table = Callback::new(move |(q, row): (String, Option<String>)| {
        typed.set(q.clone());
        open_pending.set(match (&row, q.parse::<u32>()) {
            (None, Ok(pid)) => Some((q.clone(), pid)),
            _ => None,
        });
        view.update(|v| v.query = q);
        timeline.picked.set(None);
        map.picked.set(None);
        tab_chosen.set(true);
        tab.set(Tab::Sockets);
        cursor.set(row.clone());
        selected.set(row);
    });
    Effect::new(move |_| {
        let Some((q, pid)) = open_pending.get() else {
            return;
        };
        if view.with(|v| v.query != q) {
            open_pending.set(None);
            return;
        }
        let host = one_host.get();
        if let Some(row) = table.with(|t| crate::map::view::row_of(t, host.as_deref(), pid)) {
            open_pending.set(None);
            cursor.set(Some(row.clone()));
            selected.set(Some(row));
        }
    });
    let columns = move || if multi.get() { "9" } else { "8" };
    let tab_button = move |which: Tab| {
        let text = which.label();
        let id = format!("tab-{}", which.key());
        let panel = format!("panel-{}", which.key());
        view! {
                <button
                    type="button"
                    role="tab"
                    id=id
                    aria-controls=panel
                    aria-selected=move || if tab.get() == which { "true" } else { "false" }
                    tabindex=move || if tab.get() == which { "0" } else { "-1" }
                    on:click=move |_| {
                        tab_chosen.set(true);
                        tab.set(which);
                    }
                    on:keydown=move |e: web_sys::KeyboardEvent| {
                        let at = Tab::ALL.iter().position(|t| *t == which).unwrap_or(0);
                        let last = Tab::ALL.len() - 1;
                        let to = match e.key().as_str() {
                            "ArrowLeft" => if at == 0 { last } else { at - 1 },
                            "ArrowRight" => if at == last { 0 } else { at + 1 },
                            "Home" => 0,
                            "End" => last,
                            _ => return,
                        };
                        e.prevent_default();
                        let other = Tab::ALL[to];
                        tab_chosen.set(true);
                        tab.set(other);
                        if let Some(el) = document()
                            .get_element_by_id(&format!("tab-{}", other.key()))
                            .and_then(|el| el.dyn_into::<web_sys::HtmlElement>().ok())
                        {
                            let _ = el.focus();
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
            <Show when=move || multi.get()>
                <HostSwitcher fleet choices doctor />
            </Show>
            <div class="tabs" role="tablist" aria-label="Views">
                {Tab::ALL.into_iter().map(tab_button).collect_view()}
            </div>
            <Show when=move || multi.get()>
                <PeerLinks fleet />
            </Show>
            <LinkStatus link ever_opened />
            <button type="button" class="shortcuts-button" aria-label="Keyboard shortcuts" title="Keyboard shortcuts (?)" on:click=move |_| show_shortcuts()>"?"</button>
        </header>
        <dialog class="shortcuts" id="shortcuts" node_ref=shortcuts_ref aria-labelledby="shortcuts-title">
            <h2 id="shortcuts-title">"Keyboard shortcuts"</h2>
            <dl>
                {Tab::ALL.iter().enumerate().map(|(i, t)| view! {
                    <dt><kbd>{(i + 1).to_string()}</kbd></dt><dd>{format!("the {} view", t.label())}</dd>
                }).collect_view()}
                <dt><kbd>"/"</kbd></dt><dd>"the filter (it applies to every view)"</dd>
                <dt><kbd>"Esc"</kbd></dt><dd>"clears the filter while typing; else closes the detail"</dd>
                <dt><kbd>"←"</kbd>" "<kbd>"→"</kbd></dt><dd>"between the views' tabs, when a tab has the focus"</dd>
                <dt><kbd>"↑"</kbd>" "<kbd>"↓"</kbd>" "<kbd>"PgUp"</kbd>" "<kbd>"PgDn"</kbd>" "<kbd>"Home"</kbd>" "<kbd>"End"</kbd></dt><dd>"through the socket table's rows"</dd>
                <dt><kbd>"Enter"</kbd></dt><dd>"opens the row or the timeline bar that has the focus"</dd>
                <dt><kbd>"←"</kbd>" "<kbd>"→"</kbd>" "<kbd>"↑"</kbd>" "<kbd>"↓"</kbd></dt><dd>"between the timeline's bars"</dd>
                <dt><kbd>"?"</kbd></dt><dd>"this list"</dd>
            </dl>
            <form method="dialog"><button type="submit" autofocus>"Close"</button></form>
        </dialog>
        <Banner link hello table />
        <div class="toolbar">
            <input
                id="filter"
                class="filter"
                type="search"
                placeholder=move || if multi.get() {
                    "Filter: port, pid, address, process, user, host — press / to focus"
                } else {
                    "Filter: port, pid, address, process, user — press / to focus"
                }
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
        <Troubleshoot doctor hosts=choices.into() />
        <main class="content">
            <div class="views">
            <ProjectsView state=projects active=on_projects on_filter=to_filter on_row=to_row />
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
            <Timeline
                state=timeline
                active=on_timeline
                hello=one_host_hello
                host_note=timeline_host_note
                table
                query=Signal::derive(move || view.with(|v| v.query.clone()))
                selected
            />
            <Map state=map active=on_map table host=one_host host_note=one_host_note query=Signal::derive(move || view.with(|v| v.query.clone())) open=open_in_table />
            <PortSpace active=on_ports table host=one_host ephemeral=one_host_ephemeral host_note=one_host_note query=Signal::derive(move || view.with(|v| v.query.clone())) open=open_in_table />
            </div>
            <RecentChanges hello=one_host_hello events query=Signal::derive(move || view.with(|v| v.query.clone())) pick host=one_host.into() />
            <Detail selected table hello doctor fleet now=timeline.now />
            <TenureDetail state=timeline selected on_port=to_port />
            <LinkDetail state=map active=on_map table host=one_host open=open_in_table />
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

/// The host switcher of a hub: all hosts' rows, or one host's (`?host=NAME`). Picking a host
/// also points the troubleshoot bar at it.
#[component]
fn HostSwitcher(fleet: Fleet, choices: Memo<Vec<(String, bool)>>, doctor: Doctor) -> impl IntoView {
    let view = fleet.view;
    let options = move || {
        choices.with(|list| {
            list.iter()
                .map(|(name, local)| {
                    let text = if *local {
                        format!("{name} (this machine)")
                    } else {
                        name.clone()
                    };
                    let name = name.clone();
                    let chosen = name.clone();
                    view! {
                        <option
                            value=name
                            prop:selected=move || view.with(|v| v.host.as_deref() == Some(chosen.as_str()))
                        >
                            {text}
                        </option>
                    }
                })
                .collect_view()
        })
    };
    let pick = move |e: web_sys::Event| {
        let name = event_target_value(&e);
        let host = (!name.is_empty()).then_some(name);
        if let Some(name) = &host {
            let local = choices.with_untracked(|list| list.iter().any(|(n, l)| *l && n == name));
            doctor.host.set((!local).then(|| name.clone()));
        }
        view.update(|v| v.host = host);
    };
    view! {
        <span class="host-pick">
            <label for="host-select">"Host"</label>
            <select id="host-select" on:change=pick>
                <option value="" prop:selected=move || view.with(|v| v.host.is_none())>"All hosts"</option>
                {options}
            </select>
        </span>
    }
}

/// Each peer's link as a hub follows it: live, connecting, unreachable, refused (why on hover,
/// with when its rows were last live).
#[component]
fn PeerLinks(fleet: Fleet) -> impl IntoView {
    // Drawn anew only when a pill's words change, not with every answer of the hub.
    let states = Memo::new(move |_| {
        fleet.hosts.with(|list| {
            list.iter()
                .filter(|h| !h.local)
                .map(|h| {
                    let relay = fleet.peer_link(&h.name).map(|l| l.link.get());
                    let (class, text, title) = peer_status(h, relay.as_ref());
                    (h.name.clone(), class, text, title)
                })
                .collect::<Vec<_>>()
        })
    });
    let pills = move || {
        states
            .get()
            .into_iter()
            .map(|(name, class, text, title)| {
                view! {
                    <span class=format!("{class} peer") data-host=name.clone() title=title>
                        {format!("{name}: {text}")}
                    </span>
                }
            })
            .collect_view()
    };
    view! {
        <span class="peers" id="peers" role="status" aria-label="Peers' links">{pills}</span>
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
    let warnings = move || table.with(Table::warnings);
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
    fleet: Fleet,
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
        // The row's machine's history: this agent's, or a peer's (relayed by the hub).
        let row = table.with_untracked(|t| {
            t.rows
                .get(&id)
                .filter(|r| r.socket.proto == Proto::Tcp && r.socket.is_listening())
                .map(|r| (r.socket.local_port, r.socket.host.clone()))
        });
        let Some((port, host)) = row else {
            conns.set(None);
            return;
        };
        let keeps_none = match &host {
            None => hello.with_untracked(|h| h.as_ref().is_some_and(|h| !h.history)),
            Some(name) => fleet
                .peer_link(name)
                .and_then(|l| l.hello.get_untracked())
                .is_some_and(|h| !h.history),
        };
        if keeps_none {
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
            let path = format!("/api/v1/history/connections?port={port}&since=1h");
            let answer = api::get::<ConnectionHistory>(&api::on_host(&path, host.as_deref())).await;
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
        let Some((port, host)) = table.with_untracked(|t| {
            t.rows
                .get(&id)
                .map(|r| (r.socket.local_port, r.socket.host.clone()))
        }) else {
            return;
        };
        who.set(Some((id.clone(), Asked::Waiting)));
        // On the row's own machine: a hub sends it on to a peer.
        let path = api::on_host(&format!("/api/v1/who?port={port}"), host.as_deref());
        leptos::task::spawn_local(async move {
            let answer = api::get::<WhoReport>(&path).await;
            // Only if the selection is still the one asked about.
            if who.with_untracked(|w| w.as_ref().is_some_and(|(asked, _)| *asked == id)) {
                who.set(Some((id, answer.map_or_else(Asked::Failed, Asked::Got))));
            }
        });
    });
    // What the selected row's machine allows, in a memo: the hosts' list it reads changes with
    // every answer of a hub, and the panel is drawn anew only when this does.
    let permits = Memo::new(move |_| {
        let id = selected.get()?;
        let host = table.with(|t| t.rows.get(&id).map(|r| r.socket.host.clone()))?;
        let can_kill = fleet.can_kill(host.as_deref(), hello);
        // Where a peer's listener on all interfaces can be opened: the peer's own address.
        let peer_addr = host.as_deref().and_then(|name| {
            let url = fleet.entry(name)?.url?;
            web_sys::Url::new(&url).ok().map(|u| u.hostname())
        });
        // This agent's rule for its own rows (a peer's agent answers for its own).
        let kill_scope = host
            .is_none()
            .then(|| hello.with(|h| h.as_ref().and_then(|h| h.kill_scope)))
            .flatten();
        Some(Permits {
            can_kill,
            peer_addr,
            kill_scope,
        })
    });
    let content = move || {
        let id = selected.get()?;
        let permits = permits.get()?;
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
                permits,
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

/// What the row's machine allows the page.
#[derive(Clone, Debug, PartialEq)]
struct Permits {
    /// Its agent (and, for a peer, the hub too) stops processes.
    can_kill: bool,
    /// A peer's address, from its URL: where its listeners on all interfaces are reached.
    peer_addr: Option<String>,
    /// Whose processes the agent stops (this machine's rows only).
    kill_scope: Option<KillScope>,
}

/// The rows of the process `pid` of `host` that are open.
fn sockets_of<'a>(
    t: &'a Table,
    host: Option<&'a str>,
    pid: u32,
) -> impl Iterator<Item = &'a Socket> + 'a {
    t.rows
        .values()
        .filter(move |r| {
            r.closed_at.is_none()
                && r.socket.host.as_deref() == host
                && r.socket.pids.contains(&pid)
        })
        .map(|r| &r.socket)
}

/// The row's actions: who, why, bind, open in browser, copy a kill command, stop — each on the
/// row's own machine (`&host=` for a hub's peer).
fn actions(t: &Table, s: &Socket, doctor: Doctor, permits: &Permits) -> impl IntoView + use<> {
    let port = s.local_port.to_string();
    let (who_port, bind_port) = (port.clone(), port.clone());
    let host = s.host.clone();
    let (why_host, who_host, bind_host) = (host.clone(), host.clone(), host.clone());
    let why = why_target(s).map(|target| {
        view! { <button id="action-why" on:click=move |_| doctor.ask_on(why_host.clone(), Kind::Why, target.clone())>"Why can't I connect?"</button> }
    });
    // On this machine, as its clients name it; a peer's only where this browser may reach it:
    // an interface address, or the peer's own address for a listener on all interfaces.
    let reach = match (&host, s.exposure) {
        (_, Some(Exposure::Interface)) => Some(s.local_endpoint().to_string()),
        (None, _) => Some(format!("localhost:{}", s.local_port)),
        (Some(_), Some(Exposure::All)) => permits
            .peer_addr
            .as_ref()
            .map(|addr| format!("{addr}:{}", s.local_port)),
        (Some(_), _) => None,
    };
    let open = reach.filter(|_| s.http && s.is_listening()).map(|at| {
        view! { <a class="button" id="action-open" href=format!("http://{at}/") target="_blank" rel="noopener noreferrer">"Open in browser"</a> }
    });
    let pid = (s.owner == OwnerStatus::Known)
        .then(|| s.pids.first().copied())
        .flatten();
    let copy = pid.map(|pid| {
        let command = format!("portscope kill --pid {pid}");
        let title = match &host {
            None => command.clone(),
            Some(name) => format!("{command} (to run on {name})"),
        };
        view! { <button id="action-copy-kill" title=title on:click=move |_| api::copy(&command)>"Copy kill command"</button> }
    });
    // Without the start time the agent cannot tell the process from a later one with its pid.
    let stop = pid.filter(|_| permits.can_kill).and_then(|pid| {
        let process = t.process(host.as_deref(), pid).cloned();
        let start_time = process.as_ref().and_then(|p| p.start_time)?;
        let refused = stopping::refusal(
            permits.kill_scope.as_ref(),
            process.as_ref().and_then(|p| p.uid),
            process.as_ref().and_then(|p| p.user.as_deref()),
            pid,
        );
        if let Some(why) = refused {
            return Some(
                view! {
                    <button id="action-stop" class="danger" disabled=true title=why.clone()>"Stop process…"</button>
                    <p id="stop-refused" class="note">{why}</p>
                }
                .into_any(),
            );
        }
        let sockets: Vec<String> = sockets_of(t, host.as_deref(), pid)
            .map(|s| format!("{} {} {}", s.proto_label(), s.local_endpoint(), s.state.as_str()))
            .collect();
        let target = StopTarget {
            host: host.clone(),
            pid,
            start_time,
            name: process.as_ref().map_or_else(|| "process".into(), |p| p.name.clone()),
            command: process.map(|p| p.cmdline.join(" ")).unwrap_or_default(),
            sockets,
        };
        Some(view! { <button id="action-stop" class="danger" on:click=move |_| doctor.stopping.set(Some(target.clone()))>"Stop process…"</button> }.into_any())
    });
    view! {
        <div class="actions">
            <button id="action-who" on:click=move |_| doctor.ask_on(who_host.clone(), Kind::Who, who_port.clone())>{format!("Who holds {port}?")}</button>
            {why}
            <button id="action-bind" on:click=move |_| doctor.ask_on(bind_host.clone(), Kind::Bind, bind_port.clone())>"Can I bind it?"</button>
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
    permits: Permits,
    asked: Asked,
    chart: Option<AnyView>,
) -> impl IntoView + use<> {
    let actions = actions(t, s, doctor, &permits);
    let host = s.host.as_deref();
    let machine = host.map_or_else(|| "this machine".to_owned(), str::to_owned);
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
        .map(|pid| (*pid, t.process(host, *pid).cloned()))
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
            let siblings: Vec<String> = sockets_of(t, host, pid)
                .map(|s| {
                    format!(
                        "{} {} → {} {}",
                        s.proto_label(),
                        s.local_endpoint(),
                        s.remote_text(),
                        s.state.as_str()
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
                <h4>{format!("Clients on {machine} ({})", report.clients.len())}</h4>
                <ul class="siblings clients">{items}</ul>
            })
        }
        _ => None,
    };
    view! {
        <aside class="detail" id="detail" aria-label="Socket details">
            <button class="close" title="Close (Esc)" aria-label="Close the details" on:click=move |_| selected.set(None)>"×"</button>
            <h2 class="mono">{format!("{} {}", s.proto_label(), s.local_endpoint())}</h2>
            <p class="muted">
                {format!("{} · remote {}", s.state.as_str(), s.remote_text())}
                {host.map(|h| view! { " · on " <span class="detail-host">{h.to_owned()}</span> })}
            </p>
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
