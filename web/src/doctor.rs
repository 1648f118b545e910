//! The troubleshoot panel: one input for a port, `host:port` or URL, and the agent's answers
//! (`why`, `bind`, `who`) as readable lists with verdicts in words and icons, evidence and
//! copyable fixes, in a live region that screen readers announce. On a hub, a choice of the
//! machine to ask (a row's actions pick the row's). Also the confirm dialog of "stop process",
//! a modal `<dialog>`.

use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;
use portscope_shared::{Diagnosis, KillReport, KillRequest, Verdict, WhoReport};

use crate::api;

/// A question for the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Why,
    Bind,
    Who,
}

/// What the panel shows.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    Idle,
    Asking(String),
    Diagnosis(Diagnosis),
    Who(WhoReport),
    Stopped(KillReport),
    /// The process was gone before the stop (see [`crate::stopping::NotStopped::Gone`]).
    Gone(String),
    Error(String),
}

/// The panel's state, shared with the row actions of the detail panel.
#[derive(Clone, Copy, Debug)]
pub struct Doctor {
    pub target: RwSignal<String>,
    pub answer: RwSignal<Answer>,
    /// The process the confirm dialog offers to stop.
    pub stopping: RwSignal<Option<StopTarget>>,
    /// The machine questions go to: `None` for this agent, else a hub's peer.
    pub host: RwSignal<Option<String>>,
    /// The peer the shown answer came from (`None`: this agent).
    answered_on: RwSignal<Option<String>>,
}

/// What "stop process" would stop, shown in the confirm dialog.
#[derive(Clone, Debug, PartialEq)]
pub struct StopTarget {
    /// The peer it runs on; `None` for this agent's machine.
    pub host: Option<String>,
    pub pid: u32,
    /// As the page saw it: the agent refuses if the pid now names another process.
    pub start_time: u64,
    pub name: String,
    pub command: String,
    pub sockets: Vec<String>,
}

impl Doctor {
    pub fn new() -> Self {
        Self {
            target: RwSignal::new(String::new()),
            answer: RwSignal::new(Answer::Idle),
            stopping: RwSignal::new(None),
            host: RwSignal::new(None),
            answered_on: RwSignal::new(None),
        }
    }

    /// Asks `host` (`None`: this agent) about `target`: a row's actions ask the row's machine.
    pub fn ask_on(self, host: Option<String>, kind: Kind, target: String) {
        self.host.set(host);
        self.ask(kind, target);
    }

    /// Asks the machine chosen ([`Doctor::host`]) about `target` and shows the answer.
    pub fn ask(self, kind: Kind, target: String) {
        let target = target.trim().to_owned();
        if target.is_empty() {
            self.answer.set(Answer::Error(
                "Type a port (5173), host:port, [::1]:port or a URL first.".into(),
            ));
            return;
        }
        self.target.set(target.clone());
        let host = self.host.get_untracked();
        let encoded = String::from(js_sys::encode_uri_component(&target));
        self.answered_on.set(host.clone());
        self.answer.set(Answer::Asking(format!(
            "{} {target}{}…",
            match kind {
                Kind::Why => "Diagnosing",
                Kind::Bind => "Trying to bind",
                Kind::Who => "Looking up",
            },
            host.as_ref()
                .map(|h| format!(" on {h}"))
                .unwrap_or_default()
        )));
        let answer = self.answer;
        let path = |route: &str| api::on_host(&format!("{route}{encoded}"), host.as_deref());
        let (why, bind, who) = (
            path("/api/v1/why?target="),
            path("/api/v1/bind?port="),
            path("/api/v1/who?port="),
        );
        spawn_local(async move {
            let result = match kind {
                Kind::Why => api::get(&why).await.map(Answer::Diagnosis),
                Kind::Bind => api::get(&bind).await.map(Answer::Diagnosis),
                Kind::Who => api::get(&who).await.map(Answer::Who),
            };
            answer.set(result.unwrap_or_else(|f| Answer::Error(f.message)));
        });
    }

    /// Stops a process (after the dialog's confirmation) the agent's way: the program's own
    /// clean stop, and KILL only for a program that is not a database and makes no progress.
    pub fn stop(self, target: &StopTarget) {
        let (pid, start_time) = (target.pid, target.start_time);
        let host = target.host.clone();
        self.stopping.set(None);
        self.answered_on.set(host.clone());
        self.answer.set(Answer::Asking(format!(
            "Stopping pid {pid}{}…",
            host.as_ref()
                .map(|h| format!(" on {h}"))
                .unwrap_or_default()
        )));
        let answer = self.answer;
        let path = api::on_host("/api/v1/kill", host.as_deref());
        spawn_local(async move {
            let request = KillRequest {
                pid,
                signal: None,
                force_after_ms: None,
                start_time,
            };
            let result = api::post(&path, &request).await;
            answer.set(match result {
                Ok(report) => Answer::Stopped(report),
                Err(failure) => {
                    match crate::stopping::not_stopped(failure.code, &failure.message, pid) {
                        crate::stopping::NotStopped::Gone(news) => Answer::Gone(news),
                        crate::stopping::NotStopped::Refused(why) => Answer::Error(why),
                    }
                }
            });
        });
    }
}

/// The troubleshoot bar. `hosts` are the hub's hosts (name, whether it is this agent), this
/// agent first: with more than one, a choice of the machine to ask comes first.
#[component]
pub fn Troubleshoot(doctor: Doctor, hosts: Signal<Vec<(String, bool)>>) -> impl IntoView {
    let input = RwSignal::new(String::new());
    // Row actions set the target; the input follows.
    Effect::new(move |_| input.set(doctor.target.get()));
    let ask = move |kind| doctor.ask(kind, input.get_untracked());
    // The machine to ask: this agent's option has the empty value.
    let machine = move || {
        hosts.with(|list| {
            (list.len() > 1).then(|| {
                let options = list
                    .iter()
                    .map(|(name, local)| {
                        let value = if *local { String::new() } else { name.clone() };
                        let text = if *local {
                            format!("{name} (this machine)")
                        } else {
                            name.clone()
                        };
                        let chosen = value.clone();
                        view! {
                            <option
                                value=value
                                prop:selected=move || doctor.host.with(|d| d.as_deref().unwrap_or_default() == chosen)
                            >
                                {text}
                            </option>
                        }
                    })
                    .collect_view();
                view! {
                    <select
                        id="doctor-host"
                        class="doctor-host"
                        aria-label="Machine to ask"
                        title="The machine whose port the questions are about"
                        on:change=move |e| {
                            let name = event_target_value(&e);
                            doctor.host.set((!name.is_empty()).then_some(name));
                        }
                    >
                        {options}
                    </select>
                }
            })
        })
    };
    view! {
        <div class="troubleshoot">
            {machine}
            <input
                id="doctor-target"
                class="doctor-target"
                type="text"
                placeholder="Port, host:port or URL, e.g. localhost:5173"
                aria-label="Port or address to troubleshoot"
                autocomplete="off"
                spellcheck="false"
                prop:value=move || input.get()
                on:input=move |e| input.set(event_target_value(&e))
                on:keydown=move |e: web_sys::KeyboardEvent| {
                    if e.key() == "Enter" {
                        ask(Kind::Why);
                    }
                }
            />
            <button id="ask-why" on:click=move |_| ask(Kind::Why) title="Connect to it and explain why it fails">
                "Why can't I connect?"
            </button>
            <button id="ask-bind" on:click=move |_| ask(Kind::Bind) title="Bind the port as servers do and explain failures">
                "Can I bind it?"
            </button>
            <button id="ask-who" on:click=move |_| ask(Kind::Who) title="Who holds this port">
                "Who holds it?"
            </button>
        </div>
        // Polite: an answer is read out once the reader is idle, not over what it is saying.
        <div id="answer-live" aria-live="polite">{move || render(doctor)}</div>
        <StopDialog doctor />
    }
}

fn render(doctor: Doctor) -> Option<AnyView> {
    let close = move |_| doctor.answer.set(Answer::Idle);
    let body = match doctor.answer.get() {
        Answer::Idle => return None,
        Answer::Asking(what) => view! { <p class="muted">{what}</p> }.into_any(),
        Answer::Error(e) => view! {
            <p class="verdict-problem">
                <span class="icon" aria-hidden="true">"✖"</span>
                <span class="verdict-word">"Error"</span>" "{e}
            </p>
        }
        .into_any(),
        Answer::Gone(news) => view! {
            <p class="verdict-info" id="stop-gone">
                <span class="icon" aria-hidden="true">"ℹ"</span>
                <span class="verdict-word">"Info"</span>" "{news}
            </p>
        }
        .into_any(),
        Answer::Stopped(r) => view! {
            <p class=format!("stopped outcome-{:?}", r.outcome).to_lowercase()>{r.message}</p>
        }
        .into_any(),
        Answer::Who(w) => who_view(w).into_any(),
        Answer::Diagnosis(d) => diagnosis_view(d, doctor).into_any(),
    };
    let on = doctor
        .answered_on
        .get()
        .map(|h| view! { <p class="muted answer-host" id="answer-host">{format!("On {h}:")}</p> });
    Some(
        view! {
            <section class="answer" id="answer">
                <button class="close" title="Close" aria-label="Close the answer" on:click=close>"×"</button>
                {on}
                {body}
            </section>
        }
        .into_any(),
    )
}

/// The verdict in words, shown beside its icon: colour and shape alone do not reach everyone
/// (screen readers skip the icon, which is `aria-hidden`).
fn word(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "OK",
        Verdict::Info => "Info",
        Verdict::Unchecked => "Not checked",
        Verdict::Warning => "Warning",
        Verdict::Problem => "Problem",
        Verdict::Unknown => "Unknown",
    }
}

fn icon(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "✔",
        Verdict::Info => "ℹ",
        Verdict::Unchecked => "?",
        Verdict::Warning => "⚠",
        Verdict::Problem => "✖",
        Verdict::Unknown => "·",
    }
}

fn diagnosis_view(d: Diagnosis, doctor: Doctor) -> impl IntoView {
    let checks = d
        .checks
        .into_iter()
        .map(|c| {
            let fixes = c
                .fixes
                .into_iter()
                .map(|f| {
                    let command = f.command.map(|cmd| {
                        let copied = cmd.clone();
                        view! {
                            <code class="command">{cmd}</code>
                            <button class="copy" title="Copy to the clipboard" on:click=move |_| api::copy(&copied)>"Copy"</button>
                        }
                    });
                    view! { <li class="fix">"→ " {f.text} " " {command}</li> }
                })
                .collect_view();
            let evidence = c
                .evidence
                .into_iter()
                .map(|e| view! { <li>{e}</li> })
                .collect_view();
            view! {
                <li class=format!("check verdict-{}", c.verdict.as_str()) data-check=c.id title=c.verdict.as_str()>
                    <span class="icon" aria-hidden="true">{icon(c.verdict)}</span>
                    <span class="verdict-word">{word(c.verdict)}</span>" "
                    <span class="check-title">{c.title}</span>
                    <ul class="evidence">{evidence}</ul>
                    <ul class="fixes">{fixes}</ul>
                </li>
            }
        })
        .collect_view();
    let free = (!d.free_ports.is_empty()).then(|| {
        let chips = d
            .free_ports
            .iter()
            .map(|&p| {
                view! { <button class="chip" on:click=move |_| doctor.ask(Kind::Bind, p.to_string())>{p}</button> }
            })
            .collect_view();
        view! { <p class="free">"Free ports nearby: " {chips}</p> }
    });
    view! {
        <h2 class=format!("summary verdict-{}", d.verdict.as_str()) id="verdict" data-verdict=d.verdict.as_str()>
            <span class="icon" aria-hidden="true">{icon(d.verdict)}</span>
            <span class="verdict-word">{word(d.verdict)}</span>" "
            {d.summary}
        </h2>
        <ol class="checks">{checks}</ol>
        {free}
    }
}

fn who_view(w: WhoReport) -> impl IntoView {
    let port = w.port;
    if w.sockets.is_empty() {
        return view! { <h2 class="summary verdict-ok" id="verdict" data-verdict="ok">{format!("Nothing holds port {port}.")}</h2> }.into_any();
    }
    let sockets = w
        .sockets
        .iter()
        .map(|s| view! { <li class="mono">{format!("{} {} → {} {}", s.proto_label(), s.local_endpoint(), s.remote_text(), s.state.as_str())}</li> })
        .collect_view();
    let owners = w
        .owners
        .into_iter()
        .map(|o| {
            let chain: Vec<String> = o.ancestors.iter().map(|a| format!("{} ({})", a.name, a.pid)).collect();
            view! {
                <li>
                    <strong>{format!("{} (pid {})", o.process.name, o.process.pid)}</strong>
                    <div class="mono cmdline">{o.process.cmdline.join(" ")}</div>
                    <div class="muted">{o.cwd.map(|c| format!("in {c}"))}</div>
                    <div class="muted">{(!chain.is_empty()).then(|| format!("started by {}", chain.join(" ← ")))}</div>
                </li>
            }
        })
        .collect_view();
    let hints = w
        .hints
        .into_iter()
        .map(|h| view! { <p class="note">{h}</p> })
        .collect_view();
    let clients = (!w.clients.is_empty()).then(|| {
        let items = w
            .clients
            .iter()
            .map(|c| {
                let who = c
                    .process
                    .as_ref()
                    .map_or_else(|| "hidden or gone".to_owned(), |p| format!("{} (pid {})", p.name, p.pid));
                view! { <li class="mono">{format!("{who}: {} → {} {}", c.socket.local_endpoint(), c.socket.remote_text(), c.socket.state.as_str())}</li> }
            })
            .collect_view();
        view! { <h3>"Clients on this machine"</h3><ul class="who-clients">{items}</ul> }
    });
    view! {
        <h2 class="summary verdict-info" id="verdict" data-verdict="info">{format!("Port {port}: {} socket(s)", w.sockets.len())}</h2>
        <ul class="who-sockets">{sockets}</ul>
        <ul class="owners">{owners}</ul>
        {clients}
        {hints}
    }
    .into_any()
}

/// The stop confirmation: a real modal `<dialog>` (`showModal`), so the page behind it is inert
/// and focus stays inside it; focus starts on Cancel, the harmless choice. Escape closes it (the
/// browser's `cancel`), which `close` reports back.
#[component]
fn StopDialog(doctor: Doctor) -> impl IntoView {
    let dialog = NodeRef::<html::Dialog>::new();
    let cancel = NodeRef::<html::Button>::new();
    let confirm = NodeRef::<html::Button>::new();
    Effect::new(move |_| {
        let open = doctor.stopping.with(Option::is_some);
        let Some(el) = dialog.get() else { return };
        if open && !el.open() {
            let _ = el.show_modal();
            if let Some(button) = cancel.get_untracked() {
                let _ = button.focus();
            }
        } else if !open && el.open() {
            el.close();
        }
    });
    // Two buttons: Tab and Shift+Tab go from one to the other and never out to the browser's
    // own controls (which `showModal` alone allows).
    let keep_focus = move |e: web_sys::KeyboardEvent| {
        if e.key() != "Tab" {
            return;
        }
        let (Some(first), Some(last)) = (cancel.get_untracked(), confirm.get_untracked()) else {
            return;
        };
        let active = document().active_element();
        let at = |el: &web_sys::HtmlButtonElement| {
            active
                .as_ref()
                .is_some_and(|a| a == AsRef::<web_sys::Element>::as_ref(el))
        };
        let wrap_to = if e.shift_key() && !at(&last) {
            Some(last)
        } else if !e.shift_key() && !at(&first) {
            Some(first)
        } else {
            None
        };
        if let Some(target) = wrap_to {
            e.prevent_default();
            let _ = target.focus();
        }
    };
    let target = move || doctor.stopping.get();
    let sockets = move || {
        target().map(|t| {
            t.sockets
                .into_iter()
                .map(|s| view! { <li class="mono">{s}</li> })
                .collect_view()
        })
    };
    view! {
        <dialog
            class="modal"
            id="stop-dialog"
            aria-labelledby="stop-title"
            node_ref=dialog
            on:close=move |_| doctor.stopping.set(None)
            on:keydown=keep_focus
        >
            <h2 id="stop-title">
                {move || target().map(|t| format!(
                    "Stop {} (pid {}){}?",
                    t.name,
                    t.pid,
                    t.host.as_ref().map(|h| format!(" on {h}")).unwrap_or_default()
                ))}
            </h2>
            <p class="mono cmdline">{move || target().map(|t| t.command)}</p>
            <p>"It holds these sockets, which will close:"</p>
            <ul>{sockets}</ul>
            <p class="muted">"portscope stops it the way its program expects (PostgreSQL: fast shutdown, nginx: graceful), else with SIGTERM. It sends SIGKILL only if, 5 s later, it still listens without progress — and never to a database."</p>
            <div class="modal-actions">
                <button id="stop-cancel" node_ref=cancel on:click=move |_| doctor.stopping.set(None)>"Cancel"</button>
                <button
                    id="stop-confirm"
                    class="danger"
                    node_ref=confirm
                    on:click=move |_| {
                        if let Some(t) = doctor.stopping.get_untracked() {
                            doctor.stop(&t);
                        }
                    }
                >
                    "Stop process"
                </button>
            </div>
        </dialog>
    }
}
