//! The detail panel of the selected row: what `portscope who` says of its owners (command
//! line, parent, working directory, project), its actions (troubleshoot, stop, open), and for
//! a TCP listener its connections over the last hour from the history (this agent's or, on a
//! hub, the row's peer's).

use std::time::Duration;

use leptos::prelude::*;
use portscope_shared::{
    ConnectionHistory, Exposure, Hello, KillScope, Owner, OwnerStatus, Process, Proto, Socket,
    WhoReport,
};
use wasm_bindgen::JsValue;

use crate::api;
use crate::doctor::{Doctor, Kind, StopTarget};
use crate::fleet::Fleet;
use crate::stopping;
use crate::table::Table;
use crate::timeline::view::connections_view;

#[component]
pub fn Detail(
    selected: RwSignal<Option<String>>,
    table: RwSignal<Table>,
    hello: RwSignal<Option<Hello>>,
    doctor: Doctor,
    fleet: Fleet,
    now: RwSignal<f64>,
) -> impl IntoView {
    // A TCP listener's connections over the last hour, from the history: asked once per
    // selection and again each minute while it stays selected. `None` inside: not answered yet.
    type Answer = Option<Result<ConnectionHistory, api::Failure>>;
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
                who.set(Some((
                    id,
                    answer.map_or_else(|f| Asked::Failed(f.message), Asked::Got),
                )));
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
