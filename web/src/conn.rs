//! A link to the agent: one WebSocket, and an explicit state machine around it —
//! connecting → live → reconnecting (with backoff) → connecting … — that resyncs from a fresh
//! snapshot after every reconnect. A protocol mismatch stops it with a message instead.
//!
//! The page opens one link for this agent's stream and, on a hub, one more per peer
//! (`/api/v1/ws?host=NAME`, the hub's relay of that peer), all feeding the same [`Table`], each
//! into its own host's rows.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use portscope_shared::{ClientMessage, Event, Hello, PROTOCOL_VERSION, ServerMessage};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

pub use crate::link::{Link, backoff_ms};
use crate::table::{Applied, Table};

/// The reactive state a link writes to.
#[derive(Clone, Copy, Debug)]
pub struct Sinks {
    pub link: RwSignal<Link>,
    pub hello: RwSignal<Option<Hello>>,
    pub table: RwSignal<Table>,
    /// True once any connection opened; before that, failures hint at the token.
    pub ever_opened: RwSignal<bool>,
    /// How long the last delta took to reach the page: decoded, applied, rendered and laid out
    /// (this agent's link only: what `cargo xtask bench` reads).
    pub applied: Option<RwSignal<Option<Applying>>>,
    /// Listener events received on this page, oldest first, at most [`LIVE_EVENTS`] (this
    /// agent's link only: the timeline is this machine's).
    pub events: Option<RwSignal<Vec<Event>>>,
}

/// Live events the page keeps; older ones come from the history when it needs them.
pub const LIVE_EVENTS: usize = 2000;

/// The cost of one delta in the page, shown on the row count (`data-apply-ms`) so that anyone,
/// and `cargo xtask bench`, can read it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Applying {
    /// Rows added, changed or removed.
    pub rows: usize,
    pub ms: f64,
}

/// A high-resolution clock in milliseconds.
pub fn clock() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or_else(js_sys::Date::now, |p| p.now())
}

/// The open socket and the callbacks it needs alive.
struct Open {
    ws: WebSocket,
    // Held so the socket and its callbacks are dropped together.
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_open: Closure<dyn FnMut()>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Open {
    /// Closes the socket without a word back: its callbacks are unset first, as they are
    /// dropped with it.
    fn close(self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

/// What [`start`] returns: the way to end a link (a peer the hub no longer follows).
pub struct Handle {
    current: Rc<RefCell<Option<Open>>>,
    stopped: Rc<Cell<bool>>,
}

impl Handle {
    /// Closes the link for good: no more attempts.
    pub fn stop(&self) {
        self.stopped.set(true);
        if let Some(open) = self.current.borrow_mut().take() {
            open.close();
        }
    }
}

/// One link's fixed parts: where it connects, for which host, and whether it was stopped.
struct Target {
    url: Option<String>,
    /// `None` for this agent's own stream, else the peer's name.
    host: Option<String>,
    stopped: Rc<Cell<bool>>,
}

/// Opens a link to `host`'s stream (`None`: this agent's) and keeps it up for the life of the
/// page, or until [`Handle::stop`]. `token` is the agent's access token (browsers cannot set
/// headers on a WebSocket, so it travels as `?token=`).
pub fn start(sinks: Sinks, token: Option<&str>, host: Option<String>) -> Handle {
    let current: Rc<RefCell<Option<Open>>> = Rc::new(RefCell::new(None));
    let stopped = Rc::new(Cell::new(false));
    let target = Rc::new(Target {
        url: ws_url(token, host.as_deref()),
        host,
        stopped: stopped.clone(),
    });
    connect(sinks, target, current.clone(), 0);
    Handle { current, stopped }
}

fn ws_url(token: Option<&str>, host: Option<&str>) -> Option<String> {
    let location = web_sys::window()?.location();
    let scheme = if location.protocol().ok()? == "https:" {
        "wss"
    } else {
        "ws"
    };
    let encode = |text: &str| String::from(js_sys::encode_uri_component(text));
    let params: Vec<String> = [
        token.map(|t| format!("token={}", encode(t))),
        host.map(|h| format!("host={}", encode(h))),
    ]
    .into_iter()
    .flatten()
    .collect();
    let query = if params.is_empty() {
        String::new()
    } else {
        format!("?{}", params.join("&"))
    };
    Some(format!(
        "{scheme}://{}/api/v1/ws{query}",
        location.host().ok()?
    ))
}

fn now() -> f64 {
    js_sys::Date::now()
}

fn connect(sinks: Sinks, target: Rc<Target>, current: Rc<RefCell<Option<Open>>>, attempt: u32) {
    if target.stopped.get() {
        return;
    }
    sinks.link.set(Link::Connecting);
    let Some(ws_url) = target.url.as_deref() else {
        return;
    };
    let ws = match WebSocket::new(ws_url) {
        Ok(ws) => ws,
        Err(_) => {
            schedule_retry(sinks, target, current, attempt);
            return;
        }
    };

    let on_open = Closure::<dyn FnMut()>::new(move || sinks.ever_opened.set(true));

    let on_message = {
        let ws = ws.clone();
        let target = target.clone();
        Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let host = target.host.as_deref();
            let started = clock();
            let Some(text) = event.data().as_string() else {
                return;
            };
            match serde_json::from_str::<ServerMessage>(&text) {
                Ok(ServerMessage::Delta(delta)) => {
                    let rows = delta.added.len() + delta.changed.len() + delta.removed.len();
                    handle(sinks, host, &ws, ServerMessage::Delta(delta));
                    let Some(applied) = sinks.applied else {
                        return;
                    };
                    // The table re-renders in microtasks after this handler; a timeout runs
                    // after them, and reading a layout property makes the browser lay out.
                    set_timeout(
                        move || {
                            if let Some(root) = document().document_element() {
                                let _ = root.client_height();
                            }
                            let ms = clock() - started;
                            applied.set(Some(Applying { rows, ms }));
                        },
                        Duration::ZERO,
                    );
                }
                Ok(msg) => handle(sinks, host, &ws, msg),
                Err(e) => web_sys::console::warn_1(&format!("portscope: bad message: {e}").into()),
            }
        })
    };

    let on_close = {
        let current = current.clone();
        let target = target.clone();
        Closure::<dyn FnMut(CloseEvent)>::new(move |_event: CloseEvent| {
            if matches!(sinks.link.get_untracked(), Link::Mismatch { .. }) {
                return;
            }
            // Only a connection that delivered its snapshot counts as a success; one that
            // fails right after Hello (e.g. a snapshot too large to send) keeps backing off.
            let was_live = sinks.link.get_untracked() == Link::Live;
            let next_attempt = if was_live { 0 } else { attempt + 1 };
            schedule_retry(sinks, target.clone(), current.clone(), next_attempt);
        })
    };

    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    *current.borrow_mut() = Some(Open {
        ws,
        _on_message: on_message,
        _on_open: on_open,
        _on_close: on_close,
    });
}

fn schedule_retry(
    sinks: Sinks,
    target: Rc<Target>,
    current: Rc<RefCell<Option<Open>>>,
    attempt: u32,
) {
    if target.stopped.get() {
        return;
    }
    let delay_ms = backoff_ms(attempt, js_sys::Math::random());
    sinks.link.set(Link::Reconnecting { attempt, delay_ms });
    set_timeout(
        move || {
            // Drop the old socket's callbacks only now: we are no longer inside them.
            current.borrow_mut().take();
            connect(sinks, target, current, attempt);
        },
        Duration::from_millis(u64::from(delay_ms)),
    );
}

fn handle(sinks: Sinks, host: Option<&str>, ws: &WebSocket, msg: ServerMessage) {
    match msg {
        ServerMessage::Hello(hello) => {
            if hello.protocol_version != PROTOCOL_VERSION {
                sinks.link.set(Link::Mismatch {
                    agent: hello.protocol_version,
                });
                let _ = ws.close();
            }
            sinks.hello.set(Some(hello));
        }
        ServerMessage::Snapshot(snapshot) => {
            let mut applied = false;
            sinks
                .table
                .update(|t| applied = t.receive_snapshot(host, snapshot, now()));
            if applied {
                sinks.link.set(Link::Live);
            }
        }
        ServerMessage::SnapshotMore(part) => {
            let mut result = Ok(false);
            sinks
                .table
                .update(|t| result = t.receive_part(host, part, now()));
            match result {
                Ok(true) => sinks.link.set(Link::Live),
                Ok(false) => {}
                Err(_) => {
                    let resync = serde_json::to_string(&ClientMessage::Resync)
                        .expect("protocol types always serialize");
                    let _ = ws.send_with_str(&resync);
                }
            }
        }
        ServerMessage::Delta(delta) => {
            let mut applied = Applied::Ok;
            sinks
                .table
                .update(|t| applied = t.apply_delta(host, delta, now()));
            if applied == Applied::OutOfStep {
                let resync = serde_json::to_string(&ClientMessage::Resync)
                    .expect("protocol types always serialize");
                let _ = ws.send_with_str(&resync);
            }
        }
        ServerMessage::Events(batch) => {
            if let Some(events) = sinks.events {
                events.update(|events| {
                    events.extend(batch.events);
                    let over = events.len().saturating_sub(LIVE_EVENTS);
                    events.drain(..over);
                });
            }
        }
        ServerMessage::Error(e) => {
            web_sys::console::warn_1(&format!("portscope agent: {}: {}", e.code, e.message).into());
        }
        ServerMessage::Unknown => {}
    }
}
