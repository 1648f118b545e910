//! The live doctor (#22): a failed `bind()` or a refused `connect()` the kernel reported,
//! turned into an event that says who failed, who holds the port or where the server listens
//! instead, and what to do — as it happens, without the user asking. Pure functions of the
//! kernel's [`Change`] and the live [`State`]: nothing is probed or sent, so nothing here can
//! disturb the servers it names.
//!
//! [`Failures`] rate-limits them per (process, port, kind): a client retrying in a loop is
//! one event at once and, when it went on, one more with the count when [`WINDOW`] is up.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use portscope_core::model::State;
use portscope_core::os::kernel::{Change, ChangeKind, errno_text};
use portscope_shared::{Event, EventKind, Family, Holder, Proto, Socket, SocketState};

/// How long repeats of one failure are counted before they are told.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Failures counted at once at most (one per process, port and kind); past it, every count
/// is told at once and counting starts over, so memory stays bounded.
pub const MAX_COUNTING: usize = 4096;

/// Holders named in one event at most.
const MAX_HOLDERS: usize = 8;

/// Errno of `EADDRINUSE`, `EACCES`, `EADDRNOTAVAIL` (Linux).
const EADDRINUSE: i32 = 98;
const EACCES: i32 = 13;
const EADDRNOTAVAIL: i32 = 99;

/// The event a failure is, with the id it is recorded under (its own: a failure holds no
/// socket), or `None` for a change that is not a failure.
pub fn event_of(change: &Change, state: &State, local: &[IpAddr]) -> Option<(String, Event)> {
    let kind = match change.kind {
        ChangeKind::BindFailed => EventKind::BindFailed,
        ChangeKind::Refused => EventKind::ConnectRefused,
        _ => return None,
    };
    let owner = change.owner.as_ref();
    let process = owner.and_then(|o| {
        state
            .processes
            .get(&o.pid)
            .filter(|p| p.start_time == o.start_time)
    });
    let port = match kind {
        EventKind::ConnectRefused => change.remote?.port(),
        _ => change.local.port(),
    };
    let holders = match kind {
        EventKind::BindFailed => bind_holders(change, state),
        _ => elsewhere(change.remote?, state, local),
    };
    let mut event = Event {
        time: portscope_core::events::time_text(change.at),
        since: None,
        kind,
        proto: change.proto.unwrap_or(Proto::Tcp),
        family: family(change.local.ip()),
        local_addr: change.local.ip(),
        local_port: change.local.port(),
        remote_addr: change.remote.map(|r| r.ip()),
        remote_port: change.remote.map(|r| r.port()),
        pid: owner.map(|o| o.pid),
        process: owner.map(|o| o.comm.clone()),
        cmdline: owner.map(|o| o.cmdline.clone()).unwrap_or_default(),
        user: owner.and_then(|o| o.user.clone()),
        cwd: owner.and_then(|o| o.cwd.clone()),
        exe: owner.and_then(|o| o.exe.clone()),
        start_time: owner.and_then(|o| o.start_time),
        start_ms: owner.and_then(|o| o.start_ms),
        app: None,
        health: None,
        project: process
            .and_then(|p| p.project.as_ref())
            .map(|p| p.name.clone()),
        error: change.errno.map(errno_text),
        holders,
        count: Some(1),
        fix: None,
        brief: false,
    };
    event.fix = Some(fix(&event, change.errno, port));
    let id = format!(
        "{} {} pid{} {}",
        match kind {
            EventKind::BindFailed => "bind-failed",
            _ => "refused",
        },
        port,
        event.pid.unwrap_or(0),
        event.time
    );
    Some((id, event))
}

fn family(addr: IpAddr) -> Family {
    match addr {
        IpAddr::V4(_) => Family::Ipv4,
        IpAddr::V6(_) => Family::Ipv6,
    }
}

fn holder(s: &Socket, state: &State) -> Holder {
    let first = s.pids.first().and_then(|pid| state.processes.get(pid));
    Holder {
        proto: s.proto,
        local_addr: s.local_addr,
        local_port: s.local_port,
        state: Some(s.state),
        pids: s.pids.clone(),
        process: first.map(|p| p.name.clone()),
        start_time: first.and_then(|p| p.start_time),
        project: first
            .and_then(|p| p.project.as_ref())
            .map(|p| p.name.clone()),
    }
}

/// The sockets a failed bind collided with: those on the port in the same protocol (every
/// protocol when the socket's type was unreadable), listeners first.
fn bind_holders(change: &Change, state: &State) -> Vec<Holder> {
    let port = change.local.port();
    let mut on: Vec<&Socket> = state
        .sockets()
        .filter(|s| s.local_port == port && change.proto.is_none_or(|p| p == s.proto))
        .filter(|s| s.remote_addr.is_none() || s.state == SocketState::TimeWait)
        .collect();
    on.sort_by_key(|s| !s.is_listening());
    on.into_iter()
        .take(MAX_HOLDERS)
        .map(|s| holder(s, state))
        .collect()
}

/// The listeners on a refused connect's port at other addresses or in the other family —
/// where the client could have gone — when it tried this machine; none for another host's.
fn elsewhere(target: SocketAddr, state: &State, local: &[IpAddr]) -> Vec<Holder> {
    if !crate::probe::is_local(target.ip(), local) {
        return Vec::new();
    }
    state
        .sockets()
        .filter(|s| s.proto == Proto::Tcp && s.is_listening() && s.local_port == target.port())
        .take(MAX_HOLDERS)
        .map(|s| holder(s, state))
        .collect()
}

/// `python3 (pid 99)`, or `pid 99`, or `another user's process` when its owner is hidden.
fn named(h: &Holder) -> String {
    match (&h.process, h.pids.first()) {
        (Some(name), Some(pid)) => format!("{name} (pid {pid})"),
        (None, Some(pid)) => format!("pid {pid}"),
        _ => "another user's process".to_owned(),
    }
}

fn endpoint(addr: IpAddr, port: u16) -> String {
    SocketAddr::new(addr, port).to_string()
}

/// The doctor's advice for a failure, in one sentence (`bind` and `why` give the whole answer).
fn fix(e: &Event, errno: Option<i32>, port: u16) -> String {
    let who = e.process.as_deref().unwrap_or("the program");
    match (e.kind, errno) {
        (EventKind::BindFailed, Some(EACCES)) => format!(
            "port {port} is privileged: give {who} a port from 1024 on (portscope free {port}), \
             or run it with CAP_NET_BIND_SERVICE"
        ),
        (EventKind::BindFailed, Some(EADDRNOTAVAIL)) => format!(
            "{} is not an address of this machine: have {who} bind 127.0.0.1, ::1 or 0.0.0.0",
            e.local_addr
        ),
        (EventKind::BindFailed, Some(EADDRINUSE)) => {
            let listening: Vec<&Holder> = e
                .holders
                .iter()
                .filter(|h| h.state == Some(SocketState::Listen) || h.proto == Proto::Udp)
                .collect();
            match listening.first() {
                Some(h) if h.pids.is_empty() => format!(
                    "another user's process holds port {port}: see whose with sudo portscope \
                     who {port}, or give {who} another port (portscope free {port})"
                ),
                Some(h) => format!(
                    "{} holds port {port}: stop it (portscope kill {port}) or give {who} another \
                     port (portscope free {port})",
                    named(h)
                ),
                None if e
                    .holders
                    .iter()
                    .any(|h| h.state == Some(SocketState::TimeWait)) =>
                {
                    format!(
                        "port {port} still has connections in TIME_WAIT from a server that \
                         stopped: have {who} set SO_REUSEADDR, or wait up to a minute \
                         (portscope bind {port} says more)"
                    )
                }
                None => format!(
                    "port {port} was taken when {who} asked and is free now: start it again, \
                     or see portscope bind {port}"
                ),
            }
        }
        (EventKind::BindFailed, _) => {
            format!("portscope bind {port} tries the ways servers bind and says which work")
        }
        _ => refused_fix(e, port),
    }
}

fn refused_fix(e: &Event, port: u16) -> String {
    let target = e.remote_addr.map(|a| endpoint(a, port)).unwrap_or_default();
    let Some(h) = e.holders.first() else {
        return format!(
            "nothing listens on port {port} at {target}: start the server, or check the port \
             it uses (portscope why {target})"
        );
    };
    let at = endpoint(h.local_addr, h.local_port);
    let client_v6 = matches!(e.remote_addr, Some(IpAddr::V6(_)));
    let family_word = match (h.local_addr, client_v6) {
        (IpAddr::V6(_), false) => " (IPv6; the client used IPv4)",
        (IpAddr::V4(_), true) => " (IPv4; the client used IPv6)",
        _ => "",
    };
    format!(
        "{} listens on {at} only{family_word}: connect to {at}, or have it listen on {target} \
         too (portscope why {target})",
        named(h)
    )
}

/// One failure being counted.
#[derive(Debug)]
struct Counting {
    until: Instant,
    repeats: u32,
    last: (String, Event),
}

/// Rate-limits failures per (process, port, kind).
#[derive(Debug, Default)]
pub struct Failures {
    counting: HashMap<(Option<u32>, u16, u8), Counting>,
}

impl Failures {
    /// The events to tell now: this one when it is the first of its kind in [`WINDOW`] (none
    /// when it is a repeat: counted, and told by [`Failures::due`]), after any counts told early
    /// because [`MAX_COUNTING`] were being counted.
    pub fn admit(&mut self, (id, event): (String, Event), now: Instant) -> Vec<(String, Event)> {
        let port = event.remote_port.unwrap_or(event.local_port);
        let key = (
            event.pid,
            port,
            u8::from(event.kind == EventKind::BindFailed),
        );
        if let Some(counting) = self.counting.get_mut(&key) {
            counting.repeats += 1;
            counting.last = (id, event);
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.counting.len() >= MAX_COUNTING {
            out = self.due(Instant::now() + WINDOW * 2);
        }
        self.counting.insert(
            key,
            Counting {
                until: now + WINDOW,
                repeats: 0,
                last: (id.clone(), event.clone()),
            },
        );
        out.push((id, event));
        out
    }

    /// The counts whose window is up at `now`: one event each for the repeats after the first
    /// (`count` their number), the last repeat's time and details.
    pub fn due(&mut self, now: Instant) -> Vec<(String, Event)> {
        let mut out = Vec::new();
        self.counting.retain(|_, c| {
            if c.until > now {
                return true;
            }
            if c.repeats > 0 {
                let (id, mut event) = c.last.clone();
                event.count = Some(c.repeats);
                out.push((id, event));
            }
            false
        });
        out.sort_by(|a, b| a.1.time.cmp(&b.1.time));
        out
    }

    /// When the next window is up, if any is open.
    pub fn next_due(&self) -> Option<Instant> {
        self.counting.values().map(|c| c.until).min()
    }
}
