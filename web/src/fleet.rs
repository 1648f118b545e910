//! The hosts the page shows. On a hub (`--peers`), [`Fleet`] follows `GET /api/v1/hosts` and
//! opens one more link per peer into the same table; the header then has a host switcher (All
//! / each host) and each peer's link status, the table a Host column, and a peer's row's
//! actions ask that peer. With one host the page is what it always was: no switcher, no Host
//! column.

use std::collections::HashMap;
use std::time::Duration;

use leptos::prelude::*;
use portscope_shared::{Hello, Host, HostStatus, Hosts, PortRange};
use wasm_bindgen::JsValue;

use crate::api;
use crate::conn::{self, Link, Sinks};
use crate::doctor::Doctor;
use crate::table::{Table, View};

/// How often a hub's page asks for its hosts' links (`GET /api/v1/hosts`). A lone agent's page
/// asks only when its link (re)opens: it cannot gain peers without a restart.
const HOSTS_EVERY: Duration = Duration::from_secs(3);

/// A peer the page follows: its own link to the hub's relay of it, and what that link heard.
#[derive(Clone, Copy, Debug)]
pub struct PeerLink {
    pub link: RwSignal<Link>,
    pub hello: RwSignal<Option<Hello>>,
}

/// The hosts the page shows: the hub's list (`GET /api/v1/hosts`, this agent first) and a link
/// per peer feeding the table. A lone agent's list holds itself only.
#[derive(Clone, Copy)]
pub struct Fleet {
    /// Empty until the agent answered (an agent without the route never does).
    pub hosts: RwSignal<Vec<Host>>,
    /// Each followed peer's link, in the list's order.
    pub peers: RwSignal<Vec<(String, PeerLink)>>,
    /// What ends each peer's link, by name.
    handles: StoredValue<HashMap<String, conn::Handle>, LocalStorage>,
    token: StoredValue<Option<String>>,
    table: RwSignal<Table>,
    view: RwSignal<View>,
}

impl Fleet {
    /// Whether the page shows more than one host (tracked).
    pub fn multi(self) -> bool {
        self.hosts.with(|h| h.len() > 1)
    }

    /// Asks the agent for its hosts and follows the answer.
    pub fn refresh(self) {
        leptos::task::spawn_local(async move {
            if let Ok(list) = api::get::<Hosts>("/api/v1/hosts").await {
                self.follow(list.hosts);
            }
        });
    }

    /// Opens a link for each new peer, ends those of peers gone (and forgets their rows), names
    /// this agent's rows while there is more than one host, and drops a host the view picked
    /// that is no longer there.
    pub fn follow(self, list: Vec<Host>) {
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
    pub fn entry(self, name: &str) -> Option<Host> {
        self.hosts
            .with(|list| list.iter().find(|h| h.name == name).cloned())
    }

    /// The page's link to a peer's relay (tracked).
    pub fn peer_link(self, name: &str) -> Option<PeerLink> {
        self.peers
            .with(|p| p.iter().find(|(n, _)| n == name).map(|(_, l)| *l))
    }

    /// Whether a peer's rows are the present: the hub follows it live and the page follows the
    /// hub's relay of it (tracked).
    pub fn peer_live(self, name: &str) -> bool {
        self.entry(name)
            .is_some_and(|h| h.status == HostStatus::Live)
            && self
                .peer_link(name)
                .is_some_and(|l| l.link.get() == Link::Live)
    }

    /// Whether the page may offer to stop a process on `host`: this agent stops processes,
    /// and for a peer its own agent does too (tracked).
    pub fn can_kill(self, host: Option<&str>, hello: RwSignal<Option<Hello>>) -> bool {
        let here = hello.with(|h| h.as_ref().is_some_and(|h| h.can_kill));
        match host {
            None => here,
            Some(name) => here && self.entry(name).is_some_and(|h| h.can_kill),
        }
    }

    /// The ephemeral port range of `host`, as its agent said (tracked).
    pub fn ephemeral(
        self,
        host: Option<&str>,
        hello: RwSignal<Option<Hello>>,
    ) -> Option<PortRange> {
        let hello = match host {
            None => hello,
            Some(name) => self.peer_link(name)?.hello,
        };
        hello.with(|h| h.as_ref().and_then(|h| h.ephemeral_ports))
    }

    /// The page's hosts: this agent's alone until its list says otherwise. Peers' links carry
    /// `token` (the hub relays them; the token never leaves for a peer).
    pub fn new(table: RwSignal<Table>, view: RwSignal<View>, token: Option<String>) -> Self {
        Self {
            hosts: RwSignal::new(Vec::new()),
            peers: RwSignal::new(Vec::new()),
            handles: StoredValue::new_local(HashMap::new()),
            token: StoredValue::new(token),
            table,
            view,
        }
    }

    /// Asks for the hosts whenever this agent's link (re)opens — a restarted agent may have
    /// other peers — and every few seconds on a hub, for each peer's status.
    pub fn keep_current(self, hello: RwSignal<Option<Hello>>) {
        Effect::new(move |_| {
            if hello.with(Option::is_some) {
                self.refresh();
            }
        });
        set_interval(
            move || {
                if self.hosts.with_untracked(|h| h.len() > 1) {
                    self.refresh();
                }
            },
            HOSTS_EVERY,
        );
    }

    /// The hosts to choose from (name, whether it is this agent): unlike the list, which
    /// changes with every answer (socket counts), these change only when hosts come or go.
    pub fn choices(self) -> Memo<Vec<(String, bool)>> {
        Memo::new(move |_| {
            self.hosts.with(|list| {
                list.iter()
                    .map(|h| (h.name.clone(), h.local))
                    .collect::<Vec<_>>()
            })
        })
    }

    /// Peers whose rows are not the present: dimmed, and said so above the table.
    pub fn stale_peers(self) -> Memo<Vec<String>> {
        Memo::new(move |_| {
            self.peers.with(|peers| {
                peers
                    .iter()
                    .map(|(name, _)| name.clone())
                    .filter(|name| !self.peer_live(name))
                    .collect::<Vec<_>>()
            })
        })
    }
}

/// A peer's link as its status pill says it: the hub's view (`crate::peers::pill`), with this
/// page's own stream of it on hover.
pub fn peer_status(host: &Host, relay: Option<&Link>) -> (&'static str, String, String) {
    let last_live = host.last_live.as_deref().and_then(local_time);
    crate::peers::pill(host, relay.map(|l| matches!(l, Link::Live)), last_live)
}

/// An RFC 3339 time in the browser's local time and format.
pub fn local_time(rfc3339: &str) -> Option<String> {
    let ms = crate::timeline::time::parse(rfc3339)?;
    let date = js_sys::Date::new(&JsValue::from_f64(ms));
    Some(String::from(
        date.to_locale_string("default", &JsValue::UNDEFINED),
    ))
}

/// The host switcher of a hub: all hosts' rows, or one host's (`?host=NAME`). Picking a host
/// also points the troubleshoot bar at it.
#[component]
pub fn HostSwitcher(
    fleet: Fleet,
    choices: Memo<Vec<(String, bool)>>,
    doctor: Doctor,
) -> impl IntoView {
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
pub fn PeerLinks(fleet: Fleet) -> impl IntoView {
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
