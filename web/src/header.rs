//! The page's top: the header (the agent's name, the host switcher and peers' links on a hub,
//! the views' tabs, the link's status, the shortcuts' list), the banners (a protocol mismatch,
//! the scan's warnings), the toolbar (filter, listening toggle, count) and the keyboard
//! shortcuts every view shares.

use std::time::Duration;

use leptos::ev;
use leptos::html;
use leptos::prelude::*;
use portscope_shared::{Hello, PROTOCOL_VERSION};
use wasm_bindgen::JsCast;

use crate::address::Tab;
use crate::conn::{Applying, Link};
use crate::doctor::Doctor;
use crate::fleet::{Fleet, HostSwitcher, PeerLinks};
use crate::nav::Page;
use crate::table::Table;
use crate::timeline::view::TimelineState;

/// How long the filter waits for typing to pause before it filters: a keystroke then costs a
/// timer, and 21 000 rows are filtered once per pause instead of once per letter.
const FILTER_PAUSE_MS: u64 = 150;

/// One view's tab: a click or the arrow keys (the ARIA tabs pattern, `Tab::after_key`) show it.
fn tab_button(page: Page, which: Tab) -> impl IntoView {
    let id = format!("tab-{}", which.key());
    let panel = format!("panel-{}", which.key());
    view! {
        <button
            type="button"
            role="tab"
            id=id
            aria-controls=panel
            aria-selected=move || if page.tab.get() == which { "true" } else { "false" }
            tabindex=move || if page.tab.get() == which { "0" } else { "-1" }
            on:click=move |_| page.choose(which)
            on:keydown=move |e: web_sys::KeyboardEvent| {
                let Some(other) = which.after_key(&e.key()) else {
                    return;
                };
                e.prevent_default();
                page.choose(other);
                if let Some(el) = document()
                    .get_element_by_id(&format!("tab-{}", other.key()))
                    .and_then(|el| el.dyn_into::<web_sys::HtmlElement>().ok())
                {
                    let _ = el.focus();
                }
            }
        >
            {which.label()}
        </button>
    }
}

#[component]
pub fn Header(
    page: Page,
    hello: RwSignal<Option<Hello>>,
    link: RwSignal<Link>,
    ever_opened: RwSignal<bool>,
    fleet: Fleet,
    choices: Memo<Vec<(String, bool)>>,
    doctor: Doctor,
    multi: Memo<bool>,
    shortcuts: NodeRef<html::Dialog>,
) -> impl IntoView {
    view! {
        <header class="top">
            <h1 class="brand">"portscope"</h1>
            <span class="host">
                {move || hello.with(|h| h.as_ref().map(|h| format!("{} · agent {} · {}", h.hostname, h.agent_version, h.os)))}
            </span>
            {move || hello.with(|h| h.as_ref().map(changes_badge))}
            <Show when=move || multi.get()>
                <HostSwitcher fleet choices doctor />
            </Show>
            <div class="tabs" role="tablist" aria-label="Views">
                {Tab::ALL.into_iter().map(|t| tab_button(page, t)).collect_view()}
            </div>
            <Show when=move || multi.get()>
                <PeerLinks fleet />
            </Show>
            <LinkStatus link ever_opened />
            <button type="button" class="shortcuts-button" aria-label="Keyboard shortcuts" title="Keyboard shortcuts (?)" on:click=move |_| show(shortcuts)>"?"</button>
        </header>
        <Shortcuts dialog=shortcuts />
    }
}

/// How the agent learns of changes: "live" when the kernel reports them, else its polling
/// period; the title says what that means.
fn changes_badge(h: &Hello) -> impl IntoView + use<> {
    let (text, title, kind) = match h.changes {
        portscope_shared::Changes::Kernel => (
            "live".to_owned(),
            "The kernel reports each change as it happens: short-lived listeners, failed binds and refused connects are caught".to_owned(),
            "kernel",
        ),
        _ => (
            if h.tick_ms < 1000 {
                format!("polling every {} ms", h.tick_ms)
            } else {
                format!("polling every {}", crate::timeline::time::duration(h.tick_ms as f64))
            },
            "The agent rescans every tick: changes between two scans are not seen (kernel events need Linux with root or CAP_BPF + CAP_PERFMON)".to_owned(),
            "poll",
        ),
    };
    view! { <span class="tag changes-mode" data-changes=kind title=title>{text}</span> }
}

/// Opens the shortcuts' list, unless it is open.
fn show(dialog: NodeRef<html::Dialog>) {
    if let Some(dialog) = dialog.get_untracked()
        && !dialog.open()
    {
        let _ = dialog.show_modal();
    }
}

#[component]
fn Shortcuts(dialog: NodeRef<html::Dialog>) -> impl IntoView {
    view! {
        <dialog class="shortcuts" id="shortcuts" node_ref=dialog aria-labelledby="shortcuts-title">
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
    }
}

/// The shortcuts every view shares: `/` the filter, `?` the list, a digit a view, Esc closes
/// what is open (the stop dialog first, else the detail).
pub fn listen_for_shortcuts(
    page: Page,
    filter: NodeRef<html::Input>,
    shortcuts: NodeRef<html::Dialog>,
    doctor: Doctor,
    timeline: TimelineState,
) {
    let _keys = window_event_listener(ev::keydown, move |e: web_sys::KeyboardEvent| {
        let typing = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.active_element())
            .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"));
        let plain = !(e.ctrl_key() || e.meta_key() || e.alt_key());
        if e.key() == "/" && !typing {
            e.prevent_default();
            if let Some(input) = filter.get() {
                let _ = input.focus();
            }
        } else if e.key() == "?" && !typing {
            e.prevent_default();
            show(shortcuts);
        } else if let Some(which) = Tab::of_digit(&e.key()).filter(|_| plain && !typing) {
            e.prevent_default();
            page.choose(which);
        } else if e.key() == "Escape" {
            if doctor.stopping.get_untracked().is_some() {
                doctor.stopping.set(None);
            } else {
                page.selected.set(None);
                timeline.picked.set(None);
            }
        }
    });
}

/// The filter box (typing filters once it pauses), the listening toggle and the count, which
/// also carries what the last change and the last view change cost (read by the bench).
#[component]
pub fn Toolbar(
    page: Page,
    multi: Memo<bool>,
    filter: NodeRef<html::Input>,
    applied: RwSignal<Option<Applying>>,
    view_ms: RwSignal<Option<(f64, String)>>,
    /// (rows shown, of which open).
    shown: Memo<(usize, usize)>,
) -> impl IntoView {
    let (view, typed) = (page.view, page.typed);
    let typing_timer = StoredValue::new(None::<TimeoutHandle>);
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
    let total = Memo::new(move |_| {
        page.table
            .with(|t| t.rows.values().filter(|r| r.closed_at.is_none()).count())
    });
    view! {
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
                node_ref=filter
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

#[component]
pub fn Banner(
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
