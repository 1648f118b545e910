//! The port timeline's model (#11, "the picture"): listeners' tenures from the history's spans
//! merged with the live `Events`, grouped into one lane per port, and laid out for a window of
//! time as bars a fixed number of pixels can hold. Also the "Recent changes" list
//! ([`recent`]) and the connections chart ([`connections`]).
//!
//! Everything here is pure Rust over `portscope_shared` types and milliseconds since the epoch:
//! it compiles on the host, where `tests.rs` checks it. It must not touch the browser; the
//! Leptos components that draw it live in `view.rs` (wasm32 only).
//!
//! The element count stays bounded whatever the history holds: only tenures that overlap the
//! window become bars, each clipped to it, and bars narrower than [`MERGE_PX`] merge with
//! their neighbours, so a lane never holds more than one bar per [`MERGE_PX`] pixels. The
//! drawing holds only the rows in the plot's view and a margin ([`Layout::rows_in_view`],
//! [`OVERSCAN_ROWS`]): a week of 200 ports restarted every 2 hours is 16 800 bars, of which
//! the DOM holds those of the 20-odd lanes in view and a dozen more. Which bar is the
//! keyboard's tab stop ([`tab_stop`], kept by identity through [`BarId`]) and which one is
//! highlighted ([`Layout::bar_showing`]) are decided here too.

pub mod connections;
pub mod recent;
#[cfg(target_arch = "wasm32")]
pub mod tab;
pub mod time;
#[cfg(target_arch = "wasm32")]
pub mod view;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use portscope_shared::{Event, EventKind, Family, Health, Proto, Span};

use time::{DAY_MS, HOUR_MS, MINUTE_MS};

/// An event and the span the history recorded from the same event carry the same time; a
/// little slack covers an agent that writes them on different ticks.
const SAME_MOMENT_MS: f64 = 1500.0;

/// A listener that opens this soon after the lane's previous one ended counts as a restart
/// and is marked as one; a longer gap is drawn as empty space.
pub const RESTART_MS: f64 = 10_000.0;

/// Bars narrower than this merge with their neighbours (and are drawn at least this wide).
pub const MERGE_PX: f64 = 3.0;

/// Heights of the timeline's rows, in pixels.
pub const AXIS_PX: f64 = 22.0;
pub const GROUP_PX: f64 = 22.0;
pub const LANE_PX: f64 = 24.0;

/// Rows drawn beyond each edge of the plot's view (about 140 px, more than a wheel step), so
/// that scrolling shows no blank band and the keyboard's next lane is drawn already. Fewer
/// than the table's 20: a lane can hold hundreds of bars, a table row is one row.
pub const OVERSCAN_ROWS: usize = 6;

/// The shortest and longest windows zooming reaches.
pub const MIN_WINDOW_MS: f64 = MINUTE_MS;
pub const MAX_WINDOW_MS: f64 = 31.0 * DAY_MS;

/// Colours bars are drawn in (classes `c0` … in the stylesheet), one per program name.
pub const PALETTE: usize = 10;

/// One listener: what the history and the events both name it by.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerKey {
    pub proto: Proto,
    pub family: Family,
    pub addr: IpAddr,
    pub port: u16,
    /// The hub's peer it listens on, with all hosts merged; `None`: this machine (or the one
    /// host shown).
    pub host: Option<String>,
}

impl ListenerKey {
    pub fn of_event(e: &Event) -> Self {
        Self {
            proto: e.proto,
            family: e.family,
            addr: e.local_addr,
            port: e.local_port,
            host: None,
        }
    }

    /// The listener a live socket is (its local end).
    pub fn of_socket(s: &portscope_shared::Socket) -> Self {
        Self {
            proto: s.proto,
            family: s.family,
            addr: s.local_addr,
            port: s.local_port,
            host: None,
        }
    }

    pub fn of_span(s: &Span) -> Self {
        Self {
            proto: s.proto,
            family: s.family,
            addr: s.local_addr,
            port: s.local_port,
            host: None,
        }
    }

    /// `127.0.0.1:8000`, `[::1]:8000`.
    pub fn endpoint(&self) -> String {
        SocketAddr::new(self.addr, self.port).to_string()
    }

    /// `tcp`, `tcp6`, `udp`, `udp6`.
    pub fn proto_label(&self) -> &'static str {
        match (self.proto, self.family) {
            (Proto::Tcp, Family::Ipv4) => "tcp",
            (Proto::Tcp, Family::Ipv6) => "tcp6",
            (Proto::Udp, Family::Ipv4) => "udp",
            (Proto::Udp, Family::Ipv6) => "udp6",
        }
    }
}

/// One owner's tenure of one listener: a bar of the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Tenure {
    pub key: ListenerKey,
    pub pid: Option<u32>,
    pub process: Option<String>,
    pub cmdline: Vec<String>,
    pub user: Option<String>,
    pub app: Option<String>,
    /// When it began (ms since the epoch).
    pub start: f64,
    /// For a listener that opened while the agent was not running: the earliest it can have.
    pub start_since: Option<f64>,
    /// When it ended; `None` while it lasts.
    pub end: Option<f64>,
    /// It was already open when this page opened and the agent keeps no history: `start` is
    /// the page's opening, not the listener's.
    pub before_page: bool,
    /// Its HTTP health checks' answers, oldest first, each holding until the next (or the
    /// tenure's end): from the span, then the live `health` events.
    pub health: Vec<HealthPoint>,
    /// The owner's project's name, for the filter's `project:NAME`.
    pub project: Option<String>,
}

/// What a listener's health check got, from a moment on.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthPoint {
    /// ms since the epoch.
    pub at: f64,
    pub up: bool,
    /// `up (200, 3 ms)`, `answers 500`.
    pub words: String,
}

impl HealthPoint {
    pub fn new(at: f64, health: &Health) -> Self {
        Self {
            at,
            up: health.up,
            words: recent::health_words(health),
        }
    }
}

impl Tenure {
    /// The tenure a span describes; `None` when its start is not a moment.
    /// The same tenure on a hub's peer, with all hosts merged.
    pub fn on(mut self, host: &str) -> Self {
        self.key.host = Some(host.to_owned());
        self
    }

    pub fn from_span(s: &Span) -> Option<Self> {
        Some(Self {
            key: ListenerKey::of_span(s),
            pid: s.pid,
            process: s.process.clone(),
            cmdline: s.cmdline.clone(),
            user: s.user.clone(),
            app: s.app.clone(),
            start: time::parse(&s.start)?,
            start_since: s.start_since.as_deref().and_then(time::parse),
            end: s.end.as_deref().and_then(time::parse),
            before_page: false,
            health: s
                .health
                .iter()
                .filter_map(|m| Some(HealthPoint::new(time::parse(&m.time)?, &m.health)))
                .collect(),
            project: s.project.clone(),
        })
    }

    fn from_event(e: &Event, at: f64) -> Self {
        Self {
            key: ListenerKey::of_event(e),
            pid: e.pid,
            process: e.process.clone(),
            cmdline: e.cmdline.clone(),
            user: e.user.clone(),
            app: e.app.clone(),
            start: at,
            start_since: e.since.as_deref().and_then(time::parse),
            end: None,
            before_page: false,
            health: Vec::new(),
            project: e.project.clone(),
        }
    }

    /// Whether `other` is the same tenure (one may come from a span, the other from an event,
    /// their starts a tick apart).
    pub fn same(&self, other: &Tenure) -> bool {
        self.key == other.key && self.pid == other.pid && (self.start - other.start).abs() < 1500.0
    }

    /// The program's name as the lanes and colours use it.
    pub fn program(&self) -> &str {
        self.process.as_deref().unwrap_or("unknown owner")
    }

    /// Its end, or `now` while it lasts.
    pub fn end_or(&self, now: f64) -> f64 {
        self.end.unwrap_or(now)
    }

    /// What hovering its bar says: owner, pid, user, command line, start–end.
    pub fn describe(&self, now: f64, offset_min: i32) -> String {
        let mut text = format!(
            "{} {} — {}",
            self.key.proto_label(),
            self.key.endpoint(),
            self.program()
        );
        if let Some(pid) = self.pid {
            text.push_str(&format!(" (pid {pid})"));
        }
        if let Some(user) = &self.user {
            text.push_str(&format!(", user {user}"));
        }
        if let Some(app) = &self.app {
            text.push_str(&format!(", {app}"));
        }
        if !self.cmdline.is_empty() {
            text.push_str(&format!("\n{}", self.cmdline.join(" ")));
        }
        text.push_str(&format!("\n{}", self.period(now, offset_min)));
        if let Some(health) = self.health_summary(offset_min) {
            text.push_str(&format!("\n{health}"));
        }
        text
    }

    /// `health: up (200, 3 ms) at 13:10, answers 500 at 13:58` — the last [`HEALTH_TOLD`]
    /// answers; `None` when it was never checked.
    pub fn health_summary(&self, offset_min: i32) -> Option<String> {
        let last = self.health.len().saturating_sub(HEALTH_TOLD);
        let told: Vec<String> = self.health[last..]
            .iter()
            .map(|p| format!("{} at {}", p.words, time::clock(p.at, offset_min)))
            .collect();
        if told.is_empty() {
            return None;
        }
        let earlier = if last > 0 {
            format!(" ({last} earlier)")
        } else {
            String::new()
        };
        Some(format!("health: {}{earlier}", told.join(", ")))
    }

    /// `2026-11-29 13:10:00 – 14:02:03 (52 min)`, or `… – now (…)` while it lasts.
    pub fn period(&self, now: f64, offset_min: i32) -> String {
        let start = if self.before_page {
            format!("open before {}", time::date_time(self.start, offset_min))
        } else {
            match self.start_since {
                Some(since) => format!(
                    "opened between {} and {}",
                    time::date_time(since, offset_min),
                    time::date_time(self.start, offset_min)
                ),
                None => time::date_time(self.start, offset_min),
            }
        };
        let end = self
            .end
            .map_or_else(|| "now".to_owned(), |end| time::date_time(end, offset_min));
        let length = time::duration(self.end_or(now) - self.start);
        format!("{start} – {end} ({length})")
    }
}

/// Health answers a bar's title tells.
pub const HEALTH_TOLD: usize = 4;

/// The tenures the history's spans describe, with the live events applied in order: an
/// opening starts a tenure, a closing ends its owner's open one, a change of owner ends the
/// old owner's and starts the new one's (its health goes on), a health check's news is put on
/// its owner's tenure. An event the spans already show (the history records
/// the same events) changes nothing, so spans fetched after some events and events received
/// after some spans merge to the same picture.
pub fn merge(base: Vec<Tenure>, events: &[Event]) -> Vec<Tenure> {
    let mut tenures = base;
    let mut by_key: HashMap<ListenerKey, Vec<usize>> = HashMap::new();
    for (i, t) in tenures.iter().enumerate() {
        by_key.entry(t.key.clone()).or_default().push(i);
    }
    for e in events {
        let Some(at) = time::parse(&e.time) else {
            continue;
        };
        let key = ListenerKey::of_event(e);
        match e.kind {
            EventKind::Opened => open(&mut tenures, &mut by_key, e, at),
            EventKind::Closed => close(&mut tenures, &by_key, &key, e.pid, at),
            EventKind::OwnerChanged => {
                let mut going_on = None;
                for &i in by_key.get(&key).into_iter().flatten() {
                    let t = &mut tenures[i];
                    if t.end.is_none() && t.pid != e.pid && t.start <= at + SAME_MOMENT_MS {
                        t.end = Some(at);
                        going_on = t.health.last().cloned().or(going_on);
                    }
                }
                let before = tenures.len();
                open(&mut tenures, &mut by_key, e, at);
                if let (Some(point), Some(new)) = (going_on, tenures.get_mut(before)) {
                    new.health.push(HealthPoint { at, ..point });
                }
            }
            EventKind::Health => {
                if let Some(health) = &e.health {
                    checked(
                        &mut tenures,
                        &by_key,
                        &key,
                        e.pid,
                        HealthPoint::new(at, health),
                    );
                }
            }
            // Its listener's own event (closed, or passed on) ended the tenure; a failure
            // holds no port.
            EventKind::Exited
            | EventKind::BindFailed
            | EventKind::ConnectRefused
            | EventKind::Unknown => {}
        }
    }
    absorb_unseen_owners(tenures)
}

/// The agent can see a new listener a tick before it sees its owner: an opening without an
/// owner, then an owner change to the real one. The two tenures are one listener's life, told
/// as the known owner's from the opening (a nameless blip would hide the owner's bar).
pub const UNSEEN_OWNER_MS: f64 = 3000.0;

fn absorb_unseen_owners(mut tenures: Vec<Tenure>) -> Vec<Tenure> {
    let mut gone = vec![false; tenures.len()];
    let mut by_key: HashMap<ListenerKey, Vec<usize>> = HashMap::new();
    for (i, t) in tenures.iter().enumerate() {
        by_key.entry(t.key.clone()).or_default().push(i);
    }
    for ids in by_key.values() {
        for &blank in ids {
            let t = &tenures[blank];
            let Some(end) = t
                .end
                .filter(|&e| t.pid.is_none() && e - t.start <= UNSEEN_OWNER_MS)
            else {
                continue;
            };
            let owner = ids
                .iter()
                .copied()
                .find(|&i| tenures[i].pid.is_some() && (tenures[i].start - end).abs() < 1.0);
            if let Some(owner) = owner {
                let (start, since) = (tenures[blank].start, tenures[blank].start_since);
                let known = &mut tenures[owner];
                known.start = start;
                known.start_since = known.start_since.or(since);
                gone[blank] = true;
            }
        }
    }
    let mut keep = gone.iter().map(|g| !g);
    tenures.retain(|_| keep.next().unwrap_or(true));
    tenures
}

fn open(
    tenures: &mut Vec<Tenure>,
    by_key: &mut HashMap<ListenerKey, Vec<usize>>,
    e: &Event,
    at: f64,
) {
    let ids = by_key.entry(ListenerKey::of_event(e)).or_default();
    // The same tenure seen again (in the spans, or twice live), or one that goes on: an owner
    // change that keeps the first pid (a fork that passed the socket to a child, which let go).
    let known = ids.iter().any(|&i| {
        let t = &tenures[i];
        t.pid == e.pid && (t.end.is_none() || (t.start - at).abs() <= SAME_MOMENT_MS)
    });
    if !known {
        ids.push(tenures.len());
        tenures.push(Tenure::from_event(e, at));
    }
}

/// A health check's news on the tenure of `pid` that holds the listener at its moment, unless
/// that tenure has it already (from its span).
fn checked(
    tenures: &mut [Tenure],
    by_key: &HashMap<ListenerKey, Vec<usize>>,
    key: &ListenerKey,
    pid: Option<u32>,
    point: HealthPoint,
) {
    let Some(ids) = by_key.get(key) else { return };
    let at = point.at;
    let holder = ids
        .iter()
        .copied()
        .filter(|&i| {
            let t = &tenures[i];
            t.pid == pid
                && t.start <= at + SAME_MOMENT_MS
                && t.end.is_none_or(|end| end + SAME_MOMENT_MS >= at)
        })
        .max_by(|&a, &b| tenures[a].start.total_cmp(&tenures[b].start));
    let Some(t) = holder.map(|i| &mut tenures[i]) else {
        return;
    };
    let known = t
        .health
        .iter()
        .any(|p| (p.at - at).abs() <= SAME_MOMENT_MS && p.words == point.words);
    if !known {
        let place = t.health.partition_point(|p| p.at <= at);
        t.health.insert(place, point);
    }
}

fn close(
    tenures: &mut [Tenure],
    by_key: &HashMap<ListenerKey, Vec<usize>>,
    key: &ListenerKey,
    pid: Option<u32>,
    at: f64,
) {
    let Some(ids) = by_key.get(key) else { return };
    let already = ids.iter().any(|&i| {
        tenures[i].pid == pid
            && tenures[i]
                .end
                .is_some_and(|end| (end - at).abs() <= SAME_MOMENT_MS)
    });
    if already {
        return;
    }
    // The owner's open tenure that began last before the closing.
    let open = ids
        .iter()
        .copied()
        .filter(|&i| {
            let t = &tenures[i];
            t.pid == pid && t.end.is_none() && t.start <= at + SAME_MOMENT_MS
        })
        .max_by(|&a, &b| tenures[a].start.total_cmp(&tenures[b].start));
    if let Some(i) = open {
        tenures[i].end = Some(at.max(tenures[i].start));
    }
}

/// A stretch of time the timeline shows, in ms since the epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub start: f64,
    pub end: f64,
}

impl Window {
    /// The last `len` ms up to `now`.
    pub fn last(len: f64, now: f64) -> Self {
        Self {
            start: now - len,
            end: now,
        }
    }

    pub fn len(&self) -> f64 {
        self.end - self.start
    }

    /// Zoomed by `factor` (below 1 zooms in) around the point `anchor` of the way across
    /// (0 = left edge, 1 = right edge), within [`MIN_WINDOW_MS`] and [`MAX_WINDOW_MS`].
    pub fn zoom(self, factor: f64, anchor: f64) -> Self {
        let anchor = anchor.clamp(0.0, 1.0);
        let len = (self.len() * factor).clamp(MIN_WINDOW_MS, MAX_WINDOW_MS);
        let at = self.start + self.len() * anchor;
        Self {
            start: at - len * anchor,
            end: at - len * anchor + len,
        }
    }

    /// Moved by `fraction` of its length (negative: into the past), never past `now`.
    pub fn pan(self, fraction: f64, now: f64) -> Self {
        let shift = (self.len() * fraction).min(now - self.end);
        Self {
            start: self.start + shift,
            end: self.end + shift,
        }
    }

    /// Whether `t` lies inside.
    pub fn contains(&self, t: f64) -> bool {
        (self.start..=self.end).contains(&t)
    }
}

/// Maps moments of a window onto pixels: the window's start at `x0`, its end `width` further.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    pub window: Window,
    pub x0: f64,
    pub width: f64,
}

impl Scale {
    pub fn x(&self, t: f64) -> f64 {
        self.x0 + (t - self.window.start) / self.window.len() * self.width
    }

    pub fn time(&self, x: f64) -> f64 {
        self.window.start + (x - self.x0) / self.width * self.window.len()
    }
}

/// The palette index of a program: the same name always gets the same colour (FNV-1a).
pub fn colour(program: &str) -> usize {
    let hash = program.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % PALETTE as u64) as usize
}

/// A lane: one port (and protocol), with the tenures of its listeners in the window.
#[derive(Clone, Debug, PartialEq)]
pub struct Lane {
    pub proto: Proto,
    pub port: u16,
    /// The peer it is on, with all hosts merged (`None`: this machine).
    pub host: Option<String>,
    /// The listeners' addresses, e.g. `127.0.0.1`, `::1`.
    pub addrs: Vec<IpAddr>,
    /// Indices into the tenures, oldest start first.
    pub tenures: Vec<usize>,
}

impl Lane {
    /// `tcp 8000`; with all hosts merged, a peer's lane is `box · tcp 8000`.
    pub fn label(&self) -> String {
        let proto = match self.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        };
        match &self.host {
            Some(host) => format!("{host} · {proto} {}", self.port),
            None => format!("{proto} {}", self.port),
        }
    }
}

/// Lanes of one program (or app), under its name.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub name: String,
    /// The colour of the program of its first lane (bars are drawn in their programs').
    pub colour: usize,
    pub lanes: Vec<Lane>,
}

/// The lanes of the tenures that overlap `window` (open ones last until `now`) and match
/// every word of `query` (port, address, program, app, pid, user, `project:NAME` exactly;
/// case-insensitive), grouped
/// by the program or app that held each port last, groups by name, lanes by port.
pub fn lanes(tenures: &[Tenure], window: Window, now: f64, query: &str) -> Vec<Group> {
    let mut by_lane: BTreeMap<(u16, Proto, Option<String>), Vec<usize>> = BTreeMap::new();
    for (i, t) in tenures.iter().enumerate() {
        if t.start < window.end && t.end_or(now) > window.start {
            by_lane
                .entry((t.key.port, t.key.proto, t.key.host.clone()))
                .or_default()
                .push(i);
        }
    }
    let terms: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    // By name, then the name as written; with the program whose colour the heading shows.
    let mut groups: BTreeMap<(String, String), (String, Vec<Lane>)> = BTreeMap::new();
    for ((port, proto, host), mut ids) in by_lane {
        ids.sort_by(|&a, &b| tenures[a].start.total_cmp(&tenures[b].start));
        if !terms.is_empty() {
            let mut hay = format!(
                "{port} {} {}",
                tenures[ids[0]].key.proto_label(),
                host.as_deref().unwrap_or_default()
            );
            for &i in &ids {
                let t = &tenures[i];
                hay.push_str(&format!(
                    " {} {} {} {} {}",
                    t.key.endpoint(),
                    t.program(),
                    t.app.as_deref().unwrap_or_default(),
                    t.pid.map(|p| p.to_string()).unwrap_or_default(),
                    t.user.as_deref().unwrap_or_default()
                ));
            }
            let hay = hay.to_lowercase();
            let projects = || ids.iter().filter_map(|&i| tenures[i].project.as_deref());
            let matches = |term: &String| {
                crate::table::project_filter(term, projects())
                    .unwrap_or_else(|| hay.contains(term.as_str()))
            };
            if !terms.iter().all(matches) {
                continue;
            }
        }
        let last = &tenures[*ids.last().expect("a lane has a tenure")];
        let name = last
            .app
            .clone()
            .unwrap_or_else(|| last.program().to_owned());
        let program = last.program().to_owned();
        let mut addrs: Vec<IpAddr> = ids.iter().map(|&i| tenures[i].key.addr).collect();
        addrs.sort();
        addrs.dedup();
        groups
            .entry((name.to_lowercase(), name))
            .or_insert_with(|| (program, Vec::new()))
            .1
            .push(Lane {
                proto,
                port,
                host,
                addrs,
                tenures: ids,
            });
    }
    groups
        .into_iter()
        .map(|((_, name), (program, lanes))| Group {
            colour: colour(&program),
            name,
            lanes,
        })
        .collect()
}

/// One bar as drawn: one tenure, or several merged when each alone would be too thin to see.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub x: f64,
    pub width: f64,
    /// The palette index; `None` when merged tenures of several programs share the bar.
    pub colour: Option<usize>,
    /// The tenures it stands for (indices), oldest first.
    pub tenures: Vec<usize>,
    /// The (last) tenure still lasts.
    pub open: bool,
    /// Its (first) listener opened within [`RESTART_MS`] of the lane's previous one's end.
    pub restart: bool,
}

impl Bar {
    /// The tenure the bar shows at moment `t`: the one that lasts then (the latest to begin,
    /// when several do), else the nearest in time.
    pub fn tenure_at(&self, tenures: &[Tenure], t: f64, now: f64) -> usize {
        let distance = |i: usize| {
            let tenure = &tenures[i];
            if t < tenure.start {
                tenure.start - t
            } else {
                (t - tenure.end_or(now)).max(0.0)
            }
        };
        self.tenures
            .iter()
            .copied()
            .rev()
            .min_by(|&a, &b| distance(a).total_cmp(&distance(b)))
            .expect("a bar stands for a tenure")
    }
}

/// A row of the drawing: a group's heading or a port's lane.
#[derive(Clone, Debug, PartialEq)]
pub enum Row {
    Group {
        y: f64,
        name: String,
        colour: usize,
    },
    Lane {
        y: f64,
        label: String,
        addrs: String,
        bars: Vec<Bar>,
        /// Its listeners' health checks, as [`health_paths`] draws them.
        health: HealthPaths,
    },
}

/// A lane's HTTP health history as two SVG paths along its bottom, from the lane's top: where
/// the checks found it up and where down (each `None` when there is no such stretch). A
/// stretch lasts from an answer to the next or to its tenure's end; down stretches are drawn
/// at least [`MERGE_PX`] wide, so a short outage is seen.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HealthPaths {
    pub up: Option<String>,
    pub down: Option<String>,
}

/// Where a lane's health line runs, from the lane's top (below its bars).
pub const HEALTH_Y: f64 = LANE_PX - 1.5;

/// The health stretches of `lane`'s tenures inside the window: `(from, to, up)` in pixels,
/// left to right, neighbours of one kind within a pixel merged.
pub fn health_stretches(
    tenures: &[Tenure],
    lane: &Lane,
    scale: Scale,
    now: f64,
) -> Vec<(f64, f64, bool)> {
    let window = scale.window;
    let mut stretches: Vec<(f64, f64, bool)> = Vec::new();
    for &i in &lane.tenures {
        let t = &tenures[i];
        let end = t.end_or(now);
        for (k, point) in t.health.iter().enumerate() {
            let next = t.health.get(k + 1).map_or(end, |n| n.at.min(end));
            let (from, to) = (
                point.at.max(t.start).max(window.start),
                next.min(window.end),
            );
            // Times are whole seconds: a listener that went down and closed in the same
            // second still shows its outage.
            if from > to || (from == to && point.up) {
                continue;
            }
            let (x0, mut x1) = (scale.x(from), scale.x(to));
            if !point.up {
                x1 = x1.max(x0 + MERGE_PX);
            }
            stretches.push((x0, x1, point.up));
        }
    }
    stretches.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<(f64, f64, bool)> = Vec::new();
    for (x0, x1, up) in stretches {
        match merged.iter_mut().rev().find(|s| s.2 == up) {
            Some(last) if x0 <= last.1 + 1.0 => last.1 = last.1.max(x1),
            _ => merged.push((x0, x1, up)),
        }
    }
    merged
}

/// The two paths of [`HealthPaths`] for `lane`.
pub fn health_paths(tenures: &[Tenure], lane: &Lane, scale: Scale, now: f64) -> HealthPaths {
    let path = |up: bool, stretches: &[(f64, f64, bool)]| {
        let d: String = stretches
            .iter()
            .filter(|s| s.2 == up)
            .map(|(x0, x1, _)| format!("M{x0:.1} {HEALTH_Y:.1}H{x1:.1}"))
            .collect();
        (!d.is_empty()).then_some(d)
    };
    let stretches = health_stretches(tenures, lane, scale, now);
    HealthPaths {
        up: path(true, &stretches),
        down: path(false, &stretches),
    }
}

impl Row {
    /// Its top, in pixels from the drawing's top.
    pub fn y(&self) -> f64 {
        match self {
            Row::Group { y, .. } | Row::Lane { y, .. } => *y,
        }
    }

    /// Its bottom: a heading is [`GROUP_PX`] high, a lane [`LANE_PX`].
    pub fn bottom(&self) -> f64 {
        match self {
            Row::Group { y, .. } => y + GROUP_PX,
            Row::Lane { y, .. } => y + LANE_PX,
        }
    }
}

/// The restart marks of a lane at `y` as one SVG path: a vertical stroke at the left edge of
/// each bar whose listener opened within [`RESTART_MS`] of the previous one's end (one
/// element per lane instead of one per mark). `None` when the lane has none.
pub fn restart_marks(bars: &[Bar], y: f64) -> Option<String> {
    let d: Vec<String> = bars
        .iter()
        .filter(|b| b.restart)
        .map(|b| format!("M{:.1} {:.1}V{:.1}", b.x, y + 2.0, y + LANE_PX - 2.0))
        .collect();
    (!d.is_empty()).then(|| d.join(""))
}

/// A bar named by what it shows rather than where it is drawn: its lane's label and the start
/// (whole ms) of a tenure it stands for. Positions change with every zoom, pan and new lane;
/// the keyboard's bar must stay the same bar.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BarId {
    pub lane: String,
    pub start: i64,
}

/// A tick on the time axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Tick {
    pub x: f64,
    pub label: String,
}

/// The timeline as drawn: rows top to bottom, the axis's ticks, the total height.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layout {
    pub rows: Vec<Row>,
    pub ticks: Vec<Tick>,
    pub height: f64,
}

impl Layout {
    /// How many bars it draws.
    pub fn bar_count(&self) -> usize {
        self.rows
            .iter()
            .map(|r| match r {
                Row::Lane { bars, .. } => bars.len(),
                Row::Group { .. } => 0,
            })
            .sum()
    }

    /// The bars of lane row `row`.
    pub fn bars(&self, row: usize) -> &[Bar] {
        match self.rows.get(row) {
            Some(Row::Lane { bars, .. }) => bars,
            _ => &[],
        }
    }

    /// The rows to draw while the plot shows `height` pixels from `top` (the drawing's
    /// coordinates, i.e. the plot's scroll position): those in view and [`OVERSCAN_ROWS`]
    /// beyond each edge. The axis, the grid and the drawing's height stay whole, so the plot
    /// scrolls as if every row were there.
    pub fn rows_in_view(&self, top: f64, height: f64) -> Range<usize> {
        crate::windowing::rows_in_view(
            self.rows.len(),
            |i| self.rows[i].bottom(),
            top,
            height,
            OVERSCAN_ROWS,
        )
    }

    /// What bar `bar` of row `row` shows, drawn from `tenures`.
    pub fn id(&self, tenures: &[Tenure], row: usize, bar: usize) -> Option<BarId> {
        match self.rows.get(row)? {
            Row::Lane { label, bars, .. } => Some(BarId {
                lane: label.clone(),
                start: tenures[*bars.get(bar)?.tenures.first()?].start as i64,
            }),
            Row::Group { .. } => None,
        }
    }

    /// Where the bar `id` names is drawn now: the bar of its lane that stands for a tenure
    /// starting then (merged with others, or alone).
    pub fn locate(&self, tenures: &[Tenure], id: &BarId) -> Option<(usize, usize)> {
        self.rows.iter().enumerate().find_map(|(r, row)| match row {
            Row::Lane { label, bars, .. } if *label == id.lane => bars
                .iter()
                .position(|b| {
                    b.tenures
                        .iter()
                        .any(|&i| tenures[i].start as i64 == id.start)
                })
                .map(|b| (r, b)),
            _ => None,
        })
    }

    /// The bar that stands for `tenure` (the same one, from a span or an event).
    pub fn bar_showing(&self, tenures: &[Tenure], tenure: &Tenure) -> Option<(usize, usize)> {
        self.rows.iter().enumerate().find_map(|(r, row)| match row {
            Row::Lane { bars, .. } => bars
                .iter()
                .position(|b| b.tenures.iter().any(|&i| tenures[i].same(tenure)))
                .map(|b| (r, b)),
            Row::Group { .. } => None,
        })
    }
}

/// The drawing's one tab stop among the bars drawn (rows `drawn`): the keyboard's bar `at`
/// while its row is drawn, else the first bar of the first drawn lane that has one — Tab
/// always reaches a bar in view, never one scrolled away that is not in the DOM.
pub fn tab_stop(
    layout: &Layout,
    drawn: Range<usize>,
    at: Option<(usize, usize)>,
) -> Option<(usize, usize)> {
    at.filter(|&(r, b)| drawn.contains(&r) && b < layout.bars(r).len())
        .or_else(|| {
            drawn
                .clone()
                .find(|&r| !layout.bars(r).is_empty())
                .map(|r| (r, 0))
        })
}

/// Lays the groups out under `scale`: each tenure clipped to the window, thin bars merged.
pub fn layout(
    tenures: &[Tenure],
    groups: &[Group],
    scale: Scale,
    now: f64,
    offset_min: i32,
) -> Layout {
    let mut rows = Vec::new();
    let mut y = AXIS_PX;
    for group in groups {
        rows.push(Row::Group {
            y,
            name: group.name.clone(),
            colour: group.colour,
        });
        y += GROUP_PX;
        for lane in &group.lanes {
            rows.push(Row::Lane {
                y,
                label: lane.label(),
                addrs: lane
                    .addrs
                    .iter()
                    .map(IpAddr::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                bars: lane_bars(tenures, lane, scale, now),
                health: health_paths(tenures, lane, scale, now),
            });
            y += LANE_PX;
        }
    }
    Layout {
        rows,
        ticks: ticks(scale, offset_min),
        height: y,
    }
}

fn lane_bars(tenures: &[Tenure], lane: &Lane, scale: Scale, now: f64) -> Vec<Bar> {
    let window = scale.window;
    let mut bars: Vec<Bar> = Vec::new();
    let mut previous_end: Option<f64> = None;
    for &i in &lane.tenures {
        let t = &tenures[i];
        let restart = previous_end.is_some_and(|end| t.start >= end && t.start - end <= RESTART_MS);
        previous_end = Some(previous_end.map_or(t.end_or(now), |p| p.max(t.end_or(now))));
        let x = scale.x(t.start.max(window.start));
        let right = scale.x(t.end_or(now).min(window.end));
        let width = (right - x).max(0.0);
        let colour = Some(colour(t.program()));
        if let Some(last) = bars.last_mut() {
            // Overlapping bars (a port held on two addresses at once) cannot be told apart;
            // thin ones need a pixel of space around them to be seen.
            let overlaps = x < last.x + last.width;
            let thin = width < MERGE_PX || last.width < MERGE_PX;
            if overlaps || (thin && x < last.x + last.width.max(MERGE_PX) + 1.0) {
                let end = (x + width).max(last.x + last.width);
                last.width = end - last.x;
                if last.colour != colour {
                    last.colour = None;
                }
                last.tenures.push(i);
                last.open = t.end.is_none();
                continue;
            }
        }
        bars.push(Bar {
            x,
            width,
            colour,
            tenures: vec![i],
            open: t.end.is_none(),
            restart,
        });
    }
    for bar in &mut bars {
        bar.width = bar.width.max(MERGE_PX);
    }
    bars
}

/// Steps between ticks, from a minute to a week.
const STEPS: [f64; 14] = [
    MINUTE_MS,
    2.0 * MINUTE_MS,
    5.0 * MINUTE_MS,
    10.0 * MINUTE_MS,
    15.0 * MINUTE_MS,
    30.0 * MINUTE_MS,
    HOUR_MS,
    2.0 * HOUR_MS,
    3.0 * HOUR_MS,
    6.0 * HOUR_MS,
    12.0 * HOUR_MS,
    DAY_MS,
    2.0 * DAY_MS,
    7.0 * DAY_MS,
];

/// Ticks at least this far apart, so that their labels do not touch.
pub const TICK_PX: f64 = 70.0;

/// The axis's ticks: the smallest round step at least [`TICK_PX`] wide, on round local times
/// (`14:00`; a date at midnight and for steps of a day or more).
pub fn ticks(scale: Scale, offset_min: i32) -> Vec<Tick> {
    let window = scale.window;
    let per_px = window.len() / scale.width.max(1.0);
    let step = STEPS
        .into_iter()
        .find(|s| s / per_px >= TICK_PX)
        .unwrap_or(STEPS[STEPS.len() - 1]);
    let offset = f64::from(offset_min) * MINUTE_MS;
    let mut t = ((window.start + offset) / step).ceil() * step - offset;
    let mut ticks = Vec::new();
    while t <= window.end {
        let midnight = ((t + offset) / DAY_MS).fract().abs() < 1e-9;
        let label = if step >= DAY_MS || midnight {
            time::month_day(t, offset_min)
        } else {
            time::clock(t, offset_min)
        };
        ticks.push(Tick {
            x: scale.x(t),
            label,
        });
        t += step;
    }
    ticks
}

/// Where the keyboard goes from bar `bar` of row `row` with `key`: left and right along the
/// lane, up and down to the nearest bar (by position) of the previous or next lane, Home and
/// End to the lane's ends. `None` when there is nowhere to go.
pub fn neighbour(layout: &Layout, row: usize, bar: usize, key: &str) -> Option<(usize, usize)> {
    let bars = layout.bars(row);
    let here = bars.get(bar)?;
    let centre = here.x + here.width / 2.0;
    let nearest = |target: usize| -> Option<(usize, usize)> {
        let bars = layout.bars(target);
        let best = (0..bars.len()).min_by(|&a, &b| {
            let d = |i: usize| (bars[i].x + bars[i].width / 2.0 - centre).abs();
            d(a).total_cmp(&d(b))
        })?;
        Some((target, best))
    };
    match key {
        "ArrowRight" => (bar + 1 < bars.len()).then_some((row, bar + 1)),
        "ArrowLeft" => bar.checked_sub(1).map(|b| (row, b)),
        "Home" => Some((row, 0)),
        "End" => Some((row, bars.len() - 1)),
        "ArrowDown" => (row + 1..layout.rows.len())
            .find(|&r| !layout.bars(r).is_empty())
            .and_then(nearest),
        "ArrowUp" => (0..row)
            .rev()
            .find(|&r| !layout.bars(r).is_empty())
            .and_then(nearest),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
