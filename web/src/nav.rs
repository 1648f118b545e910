//! The page's shared state ([`Page`]: the table, the view, the tab, the selected row) and where
//! the views' links lead ([`Links`]): a line of Recent changes to its row or its timeline bar,
//! a project card to its sockets, a process on the map or in the port space to the table.
//! The decisions a click makes are here once, not in each view.

use leptos::prelude::*;

use crate::address::Tab;
use crate::map::view::MapState;
use crate::table::{Table, View};
use crate::timeline::ListenerKey;
use crate::timeline::recent::Change;
use crate::timeline::view::{TimelineState, live_row, tenure_of_event};
use crate::url;

/// What every part of the page reads and moves: the rows, the view they are shown in, the
/// tab, and the selected and keyboard rows.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub table: RwSignal<Table>,
    pub view: RwSignal<View>,
    pub tab: RwSignal<Tab>,
    /// Whether the tab was chosen (by the address or the user) rather than left for the
    /// first snapshot to pick.
    pub tab_chosen: RwSignal<bool>,
    pub selected: RwSignal<Option<String>>,
    /// The row the keyboard is on (the table's one tab stop): arrows move it, Enter selects it.
    pub cursor: RwSignal<Option<String>>,
    /// What the filter box shows, ahead of `view.query` while typing has not paused.
    pub typed: RwSignal<String>,
}

impl Page {
    /// The page the address asks for: its view, and its tab when it names one (else the first
    /// snapshot chooses: Projects when a project has a listener).
    pub fn from_address() -> Self {
        let view = url::read_view();
        let asked = url::read_tab();
        Self {
            table: RwSignal::new(Table::default()),
            typed: RwSignal::new(view.query.clone()),
            view: RwSignal::new(view),
            tab: RwSignal::new(asked.unwrap_or(Tab::Sockets)),
            tab_chosen: RwSignal::new(asked.is_some()),
            selected: RwSignal::new(None),
            cursor: RwSignal::new(None),
        }
    }

    /// Shows `which` (the user's choice: the first snapshot no longer picks).
    pub fn choose(self, which: Tab) {
        self.tab_chosen.set(true);
        self.tab.set(which);
    }

    /// Whether `which` is the tab shown (tracked).
    pub fn on(self, which: Tab) -> Signal<bool> {
        Signal::derive(move || self.tab.get() == which)
    }

    /// Filters every view by `q`, in the box and the view at once.
    pub fn filter(self, q: String) {
        self.typed.set(q.clone());
        self.view.update(|v| v.query = q);
    }

    /// The filter every view applies (tracked).
    pub fn query(self) -> Signal<String> {
        Signal::derive(move || self.view.with(|v| v.query.clone()))
    }

    /// Chooses the first tab once the first snapshot is in, unless the address or the user
    /// chose one: Projects when some project has a listener, else Sockets.
    pub fn choose_first_tab(self) {
        Effect::new(move |_| {
            if !self.tab_chosen.get_untracked() && self.table.with(Table::any_loaded) {
                self.tab_chosen.set(true);
                if self
                    .table
                    .with_untracked(|t| crate::projects::group(t, None, "").any())
                {
                    self.tab.set(Tab::Projects);
                }
            }
        });
    }
}

/// Where the views' links lead.
#[derive(Clone, Copy)]
pub struct Links {
    /// A line of "Recent changes": the row while it is open (the table filtered to its port),
    /// else its bar in the timeline.
    pub pick: Callback<Change>,
    /// A project card's link: the table filtered to the project's sockets.
    pub to_filter: Callback<String>,
    /// A service on a card: its row in the table, selected, with the filter set to its port.
    pub to_row: Callback<String>,
    /// A port in a timeline bar's detail: the table filtered to it.
    pub to_port: Callback<u16>,
    /// The map and the port space open a process or a socket in the table: (filter, row).
    pub open_in_table: Callback<(String, Option<String>)>,
}

impl Links {
    pub fn new(
        page: Page,
        timeline: TimelineState,
        map: MapState,
        one_host: Memo<Option<String>>,
    ) -> Self {
        let show_port = move |port: u16| page.filter(port.to_string());
        let to_filter = Callback::new(move |q: String| {
            page.filter(q);
            page.selected.set(None);
            page.choose(Tab::Sockets);
        });
        let to_row = Callback::new(move |key: String| {
            let port = page
                .table
                .with_untracked(|t| t.rows.get(&key).map(|r| r.socket.local_port));
            if let Some(port) = port {
                show_port(port);
            }
            page.cursor.set(Some(key.clone()));
            page.selected.set(Some(key));
            page.choose(Tab::Sockets);
        });
        let to_port = Callback::new(move |port: u16| {
            timeline.picked.set(None);
            page.tab.set(Tab::Sockets);
            show_port(port);
        });
        Self {
            pick: pick(page, timeline),
            to_filter,
            to_row,
            to_port,
            open_in_table: open_in_table(page, timeline, map, one_host),
        }
    }
}

/// A line of "Recent changes" leads to its listener: the row while it is open, else its bar
/// in the timeline. A change is the timeline's host's (a peer's, or this machine's), or with
/// all hosts merged, the peer's it names.
fn pick(page: Page, timeline: TimelineState) -> Callback<Change> {
    Callback::new(move |c: Change| {
        let e = &c.event;
        let key = ListenerKey::of_event(e);
        let host = c.host.clone().or_else(|| timeline.host.get_untracked());
        let row = page.table.with_untracked(|t| {
            t.rows
                .values()
                .find(|r| {
                    let s = &r.socket;
                    r.closed_at.is_none()
                        && s.host == host
                        && s.is_listening()
                        && ListenerKey::of_socket(s) == key
                        && e.pid.is_some_and(|p| s.pids.contains(&p))
                })
                .map(|r| r.key.clone())
        });
        let tenure = timeline
            .tenures
            .with_untracked(|ts| tenure_of_event(ts, &c));
        match (page.tab.get_untracked(), row, tenure) {
            (Tab::Sockets, Some(id), _) => {
                page.filter(e.local_port.to_string());
                timeline.picked.set(None);
                page.cursor.set(Some(id.clone()));
                page.selected.set(Some(id));
            }
            (_, _, Some(t)) => {
                let live = page
                    .table
                    .with_untracked(|tb| live_row(tb, &t, host.as_deref()));
                page.selected.set(live.clone());
                page.tab.set(Tab::Timeline);
                timeline.show(t, live);
            }
            (_, row, None) => {
                page.tab.set(Tab::Sockets);
                page.filter(e.local_port.to_string());
                page.selected.set(row);
            }
        }
    })
}

/// The map's and the port space's link to the table. A process opened before the table holds
/// its rows (a busy machine's snapshot still coming in parts) has its row selected when they
/// come, unless the filter changed meanwhile.
fn open_in_table(
    page: Page,
    timeline: TimelineState,
    map: MapState,
    one_host: Memo<Option<String>>,
) -> Callback<(String, Option<String>)> {
    let pending = RwSignal::new(None::<(String, u32)>);
    Effect::new(move |_| {
        let Some((q, pid)) = pending.get() else {
            return;
        };
        if page.view.with(|v| v.query != q) {
            pending.set(None);
            return;
        }
        let host = one_host.get();
        if let Some(row) = page
            .table
            .with(|t| crate::map::view::row_of(t, host.as_deref(), pid))
        {
            pending.set(None);
            page.cursor.set(Some(row.clone()));
            page.selected.set(Some(row));
        }
    });
    Callback::new(move |(q, row): (String, Option<String>)| {
        pending.set(match (&row, q.parse::<u32>()) {
            (None, Ok(pid)) => Some((q.clone(), pid)),
            _ => None,
        });
        page.filter(q);
        timeline.picked.set(None);
        map.picked.set(None);
        page.choose(Tab::Sockets);
        page.cursor.set(row.clone());
        page.selected.set(row);
    })
}
