//! The port space's model (#12, "the compass"): the whole 0–65535 range of one machine as a
//! strip — IANA's privileged, registered and dynamic ranges, this machine's ephemeral range
//! (`Hello.ephemeral_ports`, from the kernel), every listener as a mark coloured by exposure,
//! the ranges still free for a new server, and `free`'s suggestions.
//!
//! The strip's [`Scale`] is a square root of the port number: a linear strip gives the first
//! 10 000 ports — where nearly every developer's server listens — a seventh of its width; the
//! square root gives them two fifths while keeping the order and the ranges' true ends (ticks
//! say where each number is). Marks closer than
//! [`MERGE_PX`] merge ([`marks`]), so the strip holds at most one mark per few pixels whatever
//! the machine runs. Listeners inside the ephemeral range are flagged: the kernel hands those
//! ports to outgoing connections, so while such a server is down one may take its port, and
//! its restart fails with "address already in use" — sporadically ([`EPHEMERAL_WHY`]).
//!
//! Pure Rust over `portscope_shared` types: it compiles on the host, where `tests.rs` checks
//! it. The Leptos component that draws it is `view.rs` (wasm32 only).

#[cfg(test)]
mod tests;
#[cfg(target_arch = "wasm32")]
pub mod view;

use std::collections::BTreeSet;

use portscope_shared::{Exposure, OwnerStatus, PortRange, Process, Socket};

/// IANA's ranges (RFC 6335).
pub const PRIVILEGED: PortRange = PortRange {
    first: 0,
    last: 1023,
};
pub const REGISTERED: PortRange = PortRange {
    first: 1024,
    last: 49151,
};
pub const DYNAMIC: PortRange = PortRange {
    first: 49152,
    last: 65535,
};

/// A mark is at least this wide (a single port is a fraction of a pixel).
pub const MARK_MIN_PX: f64 = 4.0;

/// Marks nearer than this many pixels are drawn as one.
pub const MERGE_PX: f64 = 6.0;

/// Free ranges narrower than this many pixels are not drawn (a port or two between listeners).
pub const MIN_FREE_PX: f64 = 2.0;

/// Why a listener in the ephemeral range is a problem, for people.
pub const EPHEMERAL_WHY: &str = "The kernel hands ports from this range to outgoing connections: while the server is down (a restart, a crash), a client's connection can take its port, and the server's next start fails with \"address already in use\" — sporadically, which makes it hard to track down. Move it outside the range.";

/// Where ports are drawn: `x0` is port 0, `x0 + width` port 65535.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    pub x0: f64,
    pub width: f64,
}

impl Scale {
    /// The x of a port's left edge (its band runs to the next port's).
    pub fn x(self, port: u32) -> f64 {
        self.x0 + self.width * (f64::from(port) / 65536.0).sqrt()
    }

    /// The band of ports `range` covers: its left edge and width.
    pub fn span(self, range: PortRange) -> (f64, f64) {
        let left = self.x(u32::from(range.first));
        (left, self.x(u32::from(range.last) + 1) - left)
    }

    /// The port drawn at `x` (clamped to the strip).
    pub fn port_at(self, x: f64) -> u16 {
        let f = ((x - self.x0) / self.width).clamp(0.0, 1.0);
        (f * f * 65536.0).floor().min(65535.0) as u16
    }
}

/// One listening socket as the strip and its list show it.
#[derive(Clone, Debug, PartialEq)]
pub struct Listener {
    /// Its table row (`table::row_key`).
    pub key: String,
    pub port: u16,
    pub proto: &'static str,
    /// `127.0.0.1:8000`, `[::]:5432`.
    pub endpoint: String,
    pub exposure: Option<Exposure>,
    /// `python3 (pid 4242)`, `hidden (uid 0)`, `–`.
    pub owner: String,
    pub pids: Vec<u32>,
    /// What serves it (the table's "what").
    pub what: String,
    /// It lies in the machine's ephemeral range.
    pub ephemeral: bool,
    /// Its owners' projects' names, for the filter's `project:NAME`.
    pub projects: Vec<String>,
}

impl Listener {
    /// A socket of the table as a listener; `procs` looks its owners up.
    pub fn of<'a>(
        key: &str,
        s: &Socket,
        procs: impl Fn(u32) -> Option<&'a Process>,
        ephemeral: Option<PortRange>,
    ) -> Listener {
        let owner = match s.owner {
            OwnerStatus::Known => s
                .pids
                .iter()
                .map(|&pid| match procs(pid) {
                    Some(p) => format!("{} (pid {pid})", p.name),
                    None => format!("pid {pid}"),
                })
                .collect::<Vec<_>>()
                .join(", "),
            OwnerStatus::Hidden => format!(
                "hidden (uid {}) — run as root to see it",
                s.uid.map_or_else(|| "?".into(), |u| u.to_string())
            ),
            OwnerStatus::None => "no process".to_owned(),
        };
        Listener {
            key: key.to_owned(),
            port: s.local_port,
            proto: s.proto_label(),
            endpoint: s.local_endpoint().to_string(),
            exposure: s.exposure,
            owner,
            pids: s.pids.clone(),
            what: s
                .app
                .clone()
                .or_else(|| s.service.clone())
                .unwrap_or_default(),
            ephemeral: ephemeral.is_some_and(|r| r.contains(s.local_port)),
            projects: s
                .pids
                .iter()
                .filter_map(|&pid| Some(procs(pid)?.project.as_ref()?.name.clone()))
                .collect(),
        }
    }

    /// `8000 tcp python3 (pid 4242) · loopback`: its hover text and accessible name.
    pub fn describe(&self) -> String {
        let mut text = format!("{} {} {}", self.endpoint, self.proto, self.owner);
        if !self.what.is_empty() {
            text.push_str(&format!(" — {}", self.what));
        }
        if let Some(e) = self.exposure {
            text.push_str(&format!(" · {}", exposure_words(e)));
        }
        if self.ephemeral {
            text.push_str(" · ⚠ inside the ephemeral range");
        }
        text
    }

    /// Whether the filter shows it: every whitespace-separated term matches — a number its
    /// port or an owner's pid exactly, `project:NAME` an owner's project exactly, other text a
    /// substring of what the list shows.
    pub fn matches(&self, query: &str) -> bool {
        let hay = format!(
            "{} {} {} {} {}",
            self.endpoint,
            self.proto,
            self.owner,
            self.what,
            self.exposure.map_or("", |e| e.as_str())
        )
        .to_lowercase();
        query.to_lowercase().split_whitespace().all(|term| {
            if let Ok(n) = term.parse::<u32>() {
                return u32::from(self.port) == n || self.pids.contains(&n);
            }
            let projects = self.projects.iter().map(String::as_str);
            crate::table::project_filter(term, projects).unwrap_or_else(|| hay.contains(term))
        })
    }
}

/// Exposure in the words of the legend.
pub fn exposure_words(e: Exposure) -> &'static str {
    match e {
        Exposure::Loopback => "loopback only",
        Exposure::Interface => "one interface",
        Exposure::All => "all interfaces",
    }
}

/// The wider of two exposures (all > interface > loopback > unknown): a merged mark takes the
/// widest of its listeners', the one worth noticing.
fn wider(a: Option<Exposure>, b: Option<Exposure>) -> Option<Exposure> {
    let rank = |e: Option<Exposure>| match e {
        None => 0,
        Some(Exposure::Loopback) => 1,
        Some(Exposure::Interface) => 2,
        Some(Exposure::All) => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// Listeners drawn as one mark: those whose ports lie within [`MERGE_PX`] of the next.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    pub first: u16,
    pub last: u16,
    /// Indices into the listeners, by port.
    pub listeners: Vec<usize>,
    /// The widest exposure among them.
    pub exposure: Option<Exposure>,
    /// Any of them is in the ephemeral range.
    pub ephemeral: bool,
    /// Left edge and width in pixels (at least [`MARK_MIN_PX`], centred on a single port).
    pub x: f64,
    pub width: f64,
}

/// The marks of `listeners` (any order) on `scale`: sorted by port, a listener joins the mark
/// of the one before it when their ports are at most `MERGE_PX` apart on the strip.
pub fn marks(listeners: &[Listener], scale: Scale) -> Vec<Mark> {
    let mut order: Vec<usize> = (0..listeners.len()).collect();
    order.sort_by_key(|&i| (listeners[i].port, listeners[i].endpoint.clone()));
    let mut out: Vec<Mark> = Vec::new();
    for i in order {
        let l = &listeners[i];
        let x = scale.x(u32::from(l.port));
        match out.last_mut() {
            Some(m) if x - scale.x(u32::from(m.last)) <= MERGE_PX => {
                m.last = l.port;
                m.listeners.push(i);
                m.exposure = wider(m.exposure, l.exposure);
                m.ephemeral |= l.ephemeral;
            }
            _ => out.push(Mark {
                first: l.port,
                last: l.port,
                listeners: vec![i],
                exposure: l.exposure,
                ephemeral: l.ephemeral,
                x: 0.0,
                width: 0.0,
            }),
        }
    }
    for m in &mut out {
        let (a, b) = (scale.x(u32::from(m.first)), scale.x(u32::from(m.last)));
        let width = (b - a).max(MARK_MIN_PX);
        m.x = (a + b) / 2.0 - width / 2.0;
        m.width = width;
    }
    out
}

/// The ranges where a new server is safe from the usual troubles: unprivileged, registered
/// (not IANA's dynamic range), outside the machine's ephemeral range.
pub fn safe_ranges(ephemeral: Option<PortRange>) -> Vec<PortRange> {
    let mut out = vec![REGISTERED];
    if let Some(e) = ephemeral {
        out = out
            .into_iter()
            .flat_map(|r| {
                let mut parts = Vec::new();
                if r.first < e.first {
                    parts.push(PortRange {
                        first: r.first,
                        last: r.last.min(e.first - 1),
                    });
                }
                if r.last > e.last {
                    parts.push(PortRange {
                        first: r.first.max(e.last + 1),
                        last: r.last,
                    });
                }
                parts
            })
            .collect();
    }
    out
}

/// The free ranges of the safe ranges: their ports that no socket uses, as maximal runs.
pub fn free_ranges(safe: &[PortRange], used: &BTreeSet<u16>) -> Vec<PortRange> {
    let mut out = Vec::new();
    for r in safe {
        let mut start = u32::from(r.first);
        for &u in used.range(r.first..=r.last) {
            if u32::from(u) > start {
                out.push(PortRange {
                    first: start as u16,
                    last: u - 1,
                });
            }
            start = u32::from(u) + 1;
        }
        if start <= u32::from(r.last) {
            out.push(PortRange {
                first: start as u16,
                last: r.last,
            });
        }
    }
    out
}

/// `free` ranges wide enough to draw on `scale`, as their left edge and width in pixels.
pub fn free_bands(free: &[PortRange], scale: Scale) -> Vec<(PortRange, f64, f64)> {
    free.iter()
        .map(|&r| {
            let (x, w) = scale.span(r);
            (r, x, w)
        })
        .filter(|(_, _, w)| *w >= MIN_FREE_PX)
        .collect()
}

/// The largest free ranges, largest first (ties: lower first), at most `n`.
pub fn largest(free: &[PortRange], n: usize) -> Vec<PortRange> {
    let mut all = free.to_vec();
    all.sort_by_key(|r| {
        (
            std::cmp::Reverse(u32::from(r.last) - u32::from(r.first)),
            r.first,
        )
    });
    all.truncate(n);
    all
}

/// Labelled ticks: the ranges' ends and round numbers, left to right, each at least
/// `min_gap` pixels from the one before (the ranges' ends win over round numbers).
pub fn ticks(scale: Scale, ephemeral: Option<PortRange>, min_gap: f64) -> Vec<(f64, u32)> {
    let mut important: Vec<u32> = vec![0, 1024, 49152, 65535];
    if let Some(e) = ephemeral {
        important.push(u32::from(e.first));
        important.push(u32::from(e.last));
    }
    let round = [
        100u32, 443, 3000, 5000, 8000, 10000, 16384, 20000, 30000, 40000, 55000, 60000,
    ];
    let mut chosen: Vec<u32> = Vec::new();
    for set in [&important[..], &round[..]] {
        for &p in set {
            let x = scale.x(p);
            if chosen.iter().all(|&c| (scale.x(c) - x).abs() >= min_gap) {
                chosen.push(p);
            }
        }
    }
    chosen.sort_unstable();
    chosen.dedup();
    chosen.into_iter().map(|p| (scale.x(p), p)).collect()
}

/// A count with its noun: `1 listener`, `3 listeners`, `2 processes`.
pub fn count(n: usize, noun: &str) -> String {
    match (n, noun.ends_with('s')) {
        (1, _) => format!("1 {noun}"),
        (_, true) => format!("{n} {noun}es"),
        (_, false) => format!("{n} {noun}s"),
    }
}
