//! The dashboard's shell: it makes the page's shared state ([`Page`]), opens this agent's
//! stream and follows a hub's hosts ([`Fleet`]), and composes the parts, each in a file of its
//! own — the header, banners and toolbar (`header.rs`), the troubleshoot bar (`doctor.rs`),
//! the views (Projects, the socket table in `sockets.rs`, Timeline, Map, Port space), "Recent
//! changes" and the detail panels (`detail.rs`, the timeline's and the map's). Where the views'
//! links lead is `nav.rs`.

use std::time::Duration;

use leptos::html;
use leptos::prelude::*;
use portscope_shared::Hello;

use crate::address::Tab;
use crate::conn::{self, Applying, Link, Sinks};
use crate::detail::Detail;
use crate::doctor::{Doctor, Troubleshoot};
use crate::fleet::Fleet;
use crate::header::{Banner, Header, Toolbar, listen_for_shortcuts};
use crate::map::view::{LinkDetail, Map, MapState, keep_graph};
use crate::nav::{Links, Page};
use crate::portspace::view::PortSpace;
use crate::projects::view::{ProjectsState, ProjectsView};
use crate::sockets::{SocketTable, keep_view_applied};
use crate::table::Table;
use crate::timeline::tab::Timeline;
use crate::timeline::view::{RecentChanges, TenureDetail, TimelineState, keep_base};
use crate::{api, url};

/// What the views that show one machine (Map, Port space, Timeline) show: the host picked,
/// else this agent's; and what they say when all hosts are picked.
#[derive(Clone, Copy)]
struct OneHost {
    /// The peer picked (`None`: this machine).
    host: Memo<Option<String>>,
    /// What that host's agent said of itself.
    hello: Signal<Option<Hello>>,
    /// "All hosts are picked: this view shows … alone", while they are.
    note: Signal<Option<String>>,
    /// The Timeline's note: peers are on lanes of their own.
    timeline_note: Signal<Option<String>>,
    /// With all hosts picked on a hub, the peers keeping a history, merged into the Timeline
    /// (this agent keeping one too).
    merged_peers: Memo<Vec<String>>,
    /// Of those, the ones live now, whose last hour Recent changes asks for (through the hub)
    /// again every few seconds: a peer the hub cannot reach is not asked.
    recent_peers: Memo<Vec<String>>,
}

impl OneHost {
    fn new(
        page: Page,
        fleet: Fleet,
        hello: RwSignal<Option<Hello>>,
        multi: Memo<bool>,
        choices: Memo<Vec<(String, bool)>>,
    ) -> Self {
        let (table, view) = (page.table, page.view);
        let host = Memo::new(move |_| {
            let local = table.with(|t| t.local_name().map(str::to_owned));
            view.with(|v| v.host.clone().filter(|h| Some(h) != local.as_ref()))
        });
        let all_picked = move || multi.get() && view.with(|v| v.host.is_none());
        let local_name =
            move || table.with(|t| t.local_name().unwrap_or("this machine").to_owned());
        let note = Signal::derive(move || {
            all_picked().then(|| {
                format!("All hosts are picked: this view shows {} (this machine) alone. Pick a host above to see another's.", local_name())
            })
        });
        let timeline_note = Signal::derive(move || {
            all_picked().then(|| {
                "All hosts are picked: each peer's listeners are on lanes named after it, and Recent changes names the peer of each of its changes.".to_owned()
            })
        });
        // The Timeline and Recent changes show the picked host's history (a peer's, relayed by
        // the hub), else this machine's.
        let one_hello = Signal::derive(move || match host.get() {
            None => hello.get(),
            Some(name) => fleet.peer_link(&name).and_then(|l| l.hello.get()),
        });
        let merged_peers = Memo::new(move |_| {
            if !all_picked() {
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
        let recent_peers = Memo::new(move |_| {
            merged_peers.with(|m| {
                m.iter()
                    .filter(|name| fleet.peer_live(name))
                    .cloned()
                    .collect::<Vec<_>>()
            })
        });
        Self {
            host,
            hello: one_hello,
            note,
            timeline_note,
            merged_peers,
            recent_peers,
        }
    }
}

#[component]
pub fn App() -> impl IntoView {
    let page = Page::from_address();
    let table = page.table;
    let link = RwSignal::new(Link::Connecting);
    let hello = RwSignal::new(None::<Hello>);
    let ever_opened = RwSignal::new(false);
    let applied = RwSignal::new(None::<Applying>);
    let events = RwSignal::new(Vec::<portscope_shared::Event>::new());
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
    let fleet = Fleet::new(table, page.view, token);
    fleet.keep_current(hello);
    let multi = Memo::new(move |_| fleet.multi());
    let choices = fleet.choices();
    let stale_peers = fleet.stale_peers();
    let doctor = Doctor::new();

    let on_projects = page.on(Tab::Projects);
    let projects = ProjectsState::new(
        table,
        Signal::derive(move || page.view.with(|v| v.host.clone())),
        page.query(),
        on_projects,
    );
    projects.keep_opened(hello, on_projects);
    projects.notify_on_changes(table);
    projects.notify_on_failures(events);
    page.choose_first_tab();

    let one = OneHost::new(page, fleet, hello, multi, choices);
    let map = MapState::new();
    let (on_map, on_ports, on_timeline) = (
        page.on(Tab::Map),
        page.on(Tab::Ports),
        page.on(Tab::Timeline),
    );
    let ephemeral = Signal::derive(move || fleet.ephemeral(one.host.get().as_deref(), hello));
    let timeline = TimelineState::new(events, one.host.into(), one.merged_peers.into());
    keep_base(timeline, one.hello, table, on_timeline);
    keep_graph(map, table, one.host, on_map);
    keep_view_applied(page, view_ms);

    // Closed rows leave after their grace period.
    set_interval(
        move || table.maybe_update(|t| t.sweep(js_sys::Date::now())),
        Duration::from_millis(500),
    );
    // The URL mirrors the filter and sort, so a view can be bookmarked or shared.
    Effect::new(move |_| {
        url::write_view(
            page.tab_chosen.get().then(|| page.tab.get()),
            &page.view.get(),
        )
    });

    let filter = NodeRef::<html::Input>::new();
    let shortcuts = NodeRef::<html::Dialog>::new();
    listen_for_shortcuts(page, filter, shortcuts, doctor, timeline);
    // (rows shown, of which open): closed rows linger for a moment but no longer count.
    let shown = Memo::new(move |_| table.with(Table::shown_counts));
    let links = Links::new(page, timeline, map, one.host);
    let (selected, query) = (page.selected, page.query());

    view! {
        <Header page hello link ever_opened fleet choices doctor multi shortcuts />
        <Banner link hello table />
        <Toolbar page multi filter applied view_ms shown />
        <Troubleshoot doctor hosts=choices.into() />
        <main class="content">
            <div class="views">
            <ProjectsView state=projects active=on_projects on_filter=links.to_filter on_row=links.to_row />
            <SocketTable page fleet hello link multi stale_peers shown />
            <Timeline
                state=timeline
                active=on_timeline
                hello=one.hello
                host_note=one.timeline_note
                table
                query
                selected
            />
            <Map state=map active=on_map table host=one.host host_note=one.note query open=links.open_in_table />
            <PortSpace active=on_ports table host=one.host ephemeral host_note=one.note query open=links.open_in_table />
            </div>
            <RecentChanges hello=one.hello events query pick=links.pick host=one.host.into() merged=one.recent_peers.into() doctor />
            <Detail selected table hello doctor fleet now=timeline.now />
            <TenureDetail state=timeline selected on_port=links.to_port />
            <LinkDetail state=map active=on_map table host=one.host open=links.open_in_table />
        </main>
    }
}
