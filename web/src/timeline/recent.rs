//! "Recent changes": the listener events of the last hour from the history, and those received
//! live since, as one list, newest first, without the events both sources hold twice; only
//! those the filter's words match, as in the table and the timeline. On a hub with all hosts
//! picked, each peer's history is merged in, every [`Change`] naming its host.

use std::collections::HashSet;
use std::net::SocketAddr;

use portscope_shared::{Event, EventKind};

use super::time;

/// An event and the host it happened on: `None` for the machine the view shows by itself (this
/// agent, or the one peer picked), a peer's name when all hosts are merged on a hub.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub host: Option<String>,
    pub event: Event,
}

impl Change {
    /// An event of the machine the view shows by itself.
    pub fn here(event: Event) -> Self {
        Self { host: None, event }
    }

    /// Whether every word of `query` is in the event (see [`matches`]) or its host's name.
    pub fn matches(&self, query: &str) -> bool {
        matches_with(&self.event, self.host.as_deref().unwrap_or_default(), query)
    }

    /// The event's [`line`], after its host's name when it has one (`build-box · 14:02 opened
    /// …`, as the timeline names a merged peer's lanes).
    pub fn line(&self, offset_min: i32) -> String {
        let line = line(&self.event, offset_min);
        match &self.host {
            Some(host) => format!("{host} · {line}"),
            None => line,
        }
    }
}

/// What a change is told apart by: two sources name the same event with the same fields, on
/// the same host.
fn identity(c: &Change) -> String {
    let e = &c.event;
    format!(
        "{:?} {} {:?} {:?} {:?} {} {} {:?}",
        c.host, e.time, e.kind, e.proto, e.family, e.local_addr, e.local_port, e.pid
    )
}

/// The last `n` changes, newest first: `history` as the history routes answer (newest first,
/// each host's in turn), `live` as the WebSocket delivered them (oldest first).
pub fn recent(history: &[Change], live: &[Change], n: usize) -> Vec<Change> {
    let mut seen = HashSet::new();
    let mut all: Vec<(f64, usize, &Change)> = history
        .iter()
        .rev()
        .chain(live)
        .filter(|c| seen.insert(identity(c)))
        .enumerate()
        .map(|(order, c)| {
            let at = time::parse(&c.event.time).unwrap_or(f64::NEG_INFINITY);
            (at, order, c)
        })
        .collect();
    // Newest first; of events in the same moment, the later received first.
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
    all.into_iter().take(n).map(|(_, _, e)| e.clone()).collect()
}

/// Whether every word of `query` (lowercase or not) is in the event's port, address,
/// process, pid, user or app, or its verb; `project:NAME` names its owner's project exactly.
pub fn matches(e: &Event, query: &str) -> bool {
    matches_with(e, "", query)
}

/// [`matches`], with `extra` words (a host's name) in what the query's words may match.
fn matches_with(e: &Event, extra: &str, query: &str) -> bool {
    let hay = format!(
        "{} {} {} {} {} {} {} {extra}",
        SocketAddr::new(e.local_addr, e.local_port),
        verb(e.kind),
        e.process.as_deref().unwrap_or_default(),
        e.pid.map(|p| p.to_string()).unwrap_or_default(),
        e.user.as_deref().unwrap_or_default(),
        e.app.as_deref().unwrap_or_default(),
        if e.proto == portscope_shared::Proto::Udp {
            "udp"
        } else {
            "tcp"
        },
    )
    .to_lowercase();
    query.split_whitespace().all(|word| {
        let word = word.to_lowercase();
        crate::table::project_filter(&word, e.project.as_deref().into_iter())
            .unwrap_or_else(|| hay.contains(&word))
    })
}

/// The port the filter names when it is a port number alone: the history is then asked for
/// that port's events only.
pub fn port_of(query: &str) -> Option<u16> {
    let mut words = query.split_whitespace();
    let port = words.next()?.parse().ok()?;
    words.next().is_none().then_some(port)
}

/// The verb of an event: `opened`, `closed`, `passed on`, `owner exited`, `health`.
pub fn verb(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Opened => "opened",
        EventKind::Closed => "closed",
        EventKind::OwnerChanged => "passed on",
        EventKind::Exited => "owner exited",
        EventKind::Health => "health",
        EventKind::BindFailed => "could not bind",
        EventKind::ConnectRefused => "was refused at",
        EventKind::Unknown => "changed",
    }
}

/// `14:02 opened 127.0.0.1:8000 python3 (pid 4242)`, in local time (`offset_min` east of UTC).
pub fn line(e: &Event, offset_min: i32) -> String {
    let at = time::parse(&e.time).map_or_else(|| e.time.clone(), |t| time::clock(t, offset_min));
    if matches!(e.kind, EventKind::BindFailed | EventKind::ConnectRefused) {
        return format!("{at} {}", failure_words(e, offset_min));
    }
    let endpoint = SocketAddr::new(e.local_addr, e.local_port);
    let proto = match e.proto {
        portscope_shared::Proto::Tcp => "",
        portscope_shared::Proto::Udp => "udp ",
    };
    let mut text = format!("{at} {} {proto}{endpoint}", verb(e.kind));
    if e.kind == EventKind::OwnerChanged {
        text.push_str(" to");
    }
    match (&e.process, e.pid) {
        (Some(name), Some(pid)) => text.push_str(&format!(" {name} (pid {pid})")),
        (Some(name), None) => text.push_str(&format!(" {name}")),
        (None, Some(pid)) => text.push_str(&format!(" pid {pid}")),
        (None, None) => text.push_str(" (owner hidden)"),
    }
    if let Some(health) = e.health.as_ref().filter(|_| e.kind == EventKind::Health) {
        text.push_str(&format!(": {}", health_words(health)));
    }
    text
}

/// What a health check got, in words: `up (200, 3 ms)`, `answers 500`, `down (timed out)`.
pub fn health_words(h: &portscope_shared::Health) -> String {
    match (h.up, h.status, h.detail.as_deref()) {
        (true, Some(status), _) => format!("up ({status}, {} ms)", h.latency_ms),
        (true, None, _) => format!("up ({} ms)", h.latency_ms),
        (false, Some(status), _) => format!("answers {status}"),
        (false, None, Some(why)) => format!("down ({why})"),
        (false, None, None) => "down".to_owned(),
    }
}

/// A failure as a sentence: `node (pid 4242) could not bind 127.0.0.1:3000 (EADDRINUSE) —
/// held: 127.0.0.1:3000 python3 (pid 99), started 14:02 in shop-api`, `curl (pid 7) was
/// refused at 127.0.0.1:5173 — listening instead: [::1]:5173 node (pid 4242), started 13:58`,
/// with `×N` when it repeated; times local (`offset_min` east of UTC).
pub fn failure_words(e: &Event, offset_min: i32) -> String {
    let who = match (&e.process, e.pid) {
        (Some(name), Some(pid)) => format!("{name} (pid {pid})"),
        (Some(name), None) => name.clone(),
        (None, Some(pid)) => format!("pid {pid}"),
        (None, None) => "a process".to_owned(),
    };
    let target = match (e.kind, e.remote_addr, e.remote_port) {
        (EventKind::ConnectRefused, Some(addr), Some(port)) => SocketAddr::new(addr, port),
        _ => SocketAddr::new(e.local_addr, e.local_port),
    };
    let mut text = format!("{who} {} {target}", verb(e.kind));
    if let Some(error) = e
        .error
        .as_deref()
        .filter(|_| e.kind == EventKind::BindFailed)
    {
        text.push_str(&format!(" ({})", error.split(' ').next().unwrap_or(error)));
    }
    if let Some(count) = e.count.filter(|&c| c > 1) {
        text.push_str(&format!(" ×{count}"));
    }
    let holders: Vec<String> = e
        .holders
        .iter()
        .map(|h| {
            let owner = match (&h.process, h.pids.first()) {
                (Some(name), Some(pid)) => format!("{name} (pid {pid})"),
                (None, Some(pid)) => format!("pid {pid}"),
                _ => "an owner hidden from this user".to_owned(),
            };
            let started = h
                .start_time
                .map(|secs| {
                    format!(
                        ", started {}",
                        time::clock(secs as f64 * 1000.0, offset_min)
                    )
                })
                .unwrap_or_default();
            let project = h
                .project
                .as_deref()
                .map(|p| format!(" in {p}"))
                .unwrap_or_default();
            format!(
                "{} {owner}{started}{project}",
                SocketAddr::new(h.local_addr, h.local_port)
            )
        })
        .collect();
    match (e.kind, holders.is_empty()) {
        (EventKind::BindFailed, false) => {
            text.push_str(&format!(" — held: {}", holders.join(", ")))
        }
        (EventKind::ConnectRefused, false) => {
            text.push_str(&format!(" — listening instead: {}", holders.join(", ")))
        }
        (EventKind::ConnectRefused, true) => text.push_str(" — nothing listens on that port"),
        _ => {}
    }
    text
}

/// Whether an event is a failure the kernel reported (`bind_failed`, `connect_refused`).
pub fn is_failure(e: &Event) -> bool {
    matches!(e.kind, EventKind::BindFailed | EventKind::ConnectRefused)
}

/// The doctor's question a failure leads to: `bind` on the port a bind failed on, `why` on
/// the address a connect was refused at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ask {
    Bind(String),
    Why(String),
}

pub fn ask_of(e: &Event) -> Option<Ask> {
    match (e.kind, e.remote_addr, e.remote_port) {
        (EventKind::BindFailed, _, _) => Some(Ask::Bind(e.local_port.to_string())),
        (EventKind::ConnectRefused, Some(addr), Some(port)) => {
            Some(Ask::Why(SocketAddr::new(addr, port).to_string()))
        }
        _ => None,
    }
}

/// The failures among `changes` (newest first, as [`recent`] gives them), at most `n`.
pub fn failures(changes: &[Change], n: usize) -> Vec<Change> {
    changes
        .iter()
        .filter(|c| is_failure(&c.event))
        .take(n)
        .cloned()
        .collect()
}
