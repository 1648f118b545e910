//! The Projects view's model (#12), pure and host-tested: the table's open listeners grouped
//! into one card per project (the git repository, worktree or Compose project of their owners,
//! `Process.project`), each listener a [`Service`] — its port(s), the program behind it, where it
//! listens, since when, its connections and health — and what is left in [`Projects::other`]
//! (system daemons, other users' servers). Also the notifications' model: which services a user
//! watches ([`Watch`]) and what changed for them between two groupings ([`changes`]).
//!
//! A service is one program on one port and protocol of one host: `0.0.0.0:8000` and
//! `[::]:8000` held by the same process are one service listening on two addresses.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use portscope_shared::{
    Exposure, Health, OwnerStatus, Process, ProjectSource, Proto, Socket, SocketState,
};

use crate::table::{Table, project_filter, project_term};

#[cfg(target_arch = "wasm32")]
pub mod view;

/// One program's listener on one port: what a card lists.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    /// The host it runs on (`None`: this agent).
    pub host: Option<String>,
    pub proto: Proto,
    pub port: u16,
    /// What serves it, for people: the recognised program ("Vite dev server", "PostgreSQL"),
    /// the container, else the process's name.
    pub program: String,
    /// The owning processes, `name (pid N)`, comma-separated; empty when hidden.
    pub owners: String,
    /// Owner pids (empty when hidden).
    pub pids: Vec<u32>,
    /// No process holds it: its owner has just exited and the kernel has not yet dropped it
    /// (or it is the kernel's own).
    pub ownerless: bool,
    /// The addresses it listens on (`127.0.0.1`, `[::1]`, `0.0.0.0`).
    pub addresses: Vec<String>,
    /// The widest exposure among them (all interfaces over one interface over loopback).
    pub exposure: Option<Exposure>,
    /// Established connections to it (the server ends on its port).
    pub connections: usize,
    /// The last health check, for listeners the agent checks.
    pub health: Option<Health>,
    /// It speaks HTTP (from what the agent knows of the program or heard from it).
    pub http: bool,
    /// Its first row's key in the table, to open it there.
    pub row: String,
    /// When its oldest owner started (ms since the epoch), where known: the uptime's fallback
    /// when the history does not say when the listener opened.
    pub started: Option<f64>,
}

impl Service {
    /// Its key in [`Watch`] and in `opened`: host, protocol and port.
    pub fn key(&self) -> ServiceKey {
        ServiceKey {
            host: self.host.clone(),
            proto: self.proto,
            port: self.port,
        }
    }

    /// Where a browser on this machine opens it, for HTTP services of this machine that
    /// listen on loopback or all interfaces.
    pub fn open_url(&self) -> Option<String> {
        (self.http && self.host.is_none() && self.exposure != Some(Exposure::Interface))
            .then(|| format!("http://localhost:{}/", self.port))
    }

    /// `vite on :5173`, as a notification names it.
    pub fn name(&self) -> String {
        format!("{} on :{}", self.program, self.port)
    }
}

/// A service's identity across groupings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    pub host: Option<String>,
    pub proto: Proto,
    pub port: u16,
}

/// One project and its services.
#[derive(Clone, Debug, PartialEq)]
pub struct Card {
    pub name: String,
    /// Where it is checked out.
    pub root: String,
    pub source: ProjectSource,
    /// The host its processes run on (`None`: this agent); a project checked out on two
    /// machines makes two cards.
    pub host: Option<String>,
    /// By port, then protocol.
    pub services: Vec<Service>,
}

impl Card {
    /// The filter that shows this project's sockets in the table.
    pub fn filter(&self) -> String {
        project_term(&self.name)
    }
}

/// The Projects view: cards by name (then host), and the listeners of no project.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Projects {
    pub cards: Vec<Card>,
    pub other: Vec<Service>,
}

impl Projects {
    /// Whether any project has a listener: then the dashboard opens on this view.
    pub fn any(&self) -> bool {
        !self.cards.is_empty()
    }

    /// Every service, the cards' and the others'.
    pub fn services(&self) -> impl Iterator<Item = (Option<&Card>, &Service)> {
        self.cards
            .iter()
            .flat_map(|c| c.services.iter().map(move |s| (Some(c), s)))
            .chain(self.other.iter().map(|s| (None, s)))
    }
}

/// Groups the table's open listeners (of the host picked, when one is) into projects.
/// `query` is the filter's text: a service is kept when every term matches it (a number its
/// port or a pid; other text its project, program, owners, addresses, exposure or host).
pub fn group(table: &Table, host: Option<&str>, query: &str) -> Projects {
    let local = table.local_name().map(str::to_owned);
    // (host, proto, port) → the listeners, and the established server ends per port.
    let mut listeners: BTreeMap<ServiceKey, Vec<&Socket>> = BTreeMap::new();
    let mut established: HashMap<(Option<&str>, Proto, u16), usize> = HashMap::new();
    for row in table.rows.values().filter(|r| r.closed_at.is_none()) {
        let s = &row.socket;
        if let Some(h) = host
            && s.host.as_deref().or(local.as_deref()) != Some(h)
        {
            continue;
        }
        if s.is_listening() {
            listeners
                .entry(ServiceKey {
                    host: s.host.clone(),
                    proto: s.proto,
                    port: s.local_port,
                })
                .or_default()
                .push(s);
        } else if s.state == SocketState::Established {
            *established
                .entry((s.host.as_deref(), s.proto, s.local_port))
                .or_default() += 1;
        }
    }
    let terms: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    let mut cards: BTreeMap<(String, Option<String>), Card> = BTreeMap::new();
    let mut other = Vec::new();
    for (key, mut sockets) in listeners {
        // Rows in a stable order, so the service's "first row" does not flicker.
        sockets.sort_by(|a, b| a.id.cmp(&b.id));
        // One service per set of owners: two programs on one port (SO_REUSEPORT, v4 and v6
        // held apart) are two services.
        let mut by_owner: BTreeMap<Vec<u32>, Vec<&Socket>> = BTreeMap::new();
        for s in sockets {
            by_owner.entry(owner_key(s)).or_default().push(s);
        }
        for (_, sockets) in by_owner {
            let first = sockets[0];
            let procs: Vec<&Process> = first
                .pids
                .iter()
                .filter_map(|pid| table.process(first.host.as_deref(), *pid))
                .collect();
            let project = procs.iter().find_map(|p| p.project.as_ref());
            let service = service(
                &key,
                &sockets,
                &procs,
                established
                    .get(&(key.host.as_deref(), key.proto, key.port))
                    .copied()
                    .unwrap_or(0),
            );
            let host_name = key.host.clone().or_else(|| local.clone());
            if !matches(
                &terms,
                &service,
                project.map(|p| p.name.as_str()),
                host_name.as_deref(),
            ) {
                continue;
            }
            match project {
                Some(p) => cards
                    .entry((p.name.clone(), key.host.clone()))
                    .or_insert_with(|| Card {
                        name: p.name.clone(),
                        root: p.root.clone(),
                        source: p.source,
                        host: key.host.clone(),
                        services: Vec::new(),
                    })
                    .services
                    .push(service),
                None => other.push(service),
            }
        }
    }
    Projects {
        cards: cards.into_values().collect(),
        other,
    }
}

/// Most pids a service line names per program; the rest are counted ("and 12 more").
const PIDS_SHOWN: usize = 3;

/// The owners as a service line names them, short enough for a narrow card: each program once,
/// with its first pids (`nginx (pids 10, 11, 12 and 5 more)`, `node (pid 42)`).
pub fn owners_text(procs: &[&Process]) -> String {
    let mut programs: Vec<(&str, Vec<u32>)> = Vec::new();
    for p in procs {
        match programs.iter_mut().find(|(name, _)| *name == p.name) {
            Some((_, pids)) => pids.push(p.pid),
            None => programs.push((&p.name, vec![p.pid])),
        }
    }
    programs
        .into_iter()
        .map(|(name, pids)| match pids.as_slice() {
            [pid] => format!("{name} (pid {pid})"),
            _ => {
                let shown: Vec<String> = pids.iter().take(PIDS_SHOWN).map(u32::to_string).collect();
                let more = pids.len().saturating_sub(PIDS_SHOWN);
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                format!("{name} (pids {}{more})", shown.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The owners that make a service: the pids, or nothing for a hidden owner.
fn owner_key(s: &Socket) -> Vec<u32> {
    let mut pids = s.pids.clone();
    pids.sort_unstable();
    pids
}

fn service(
    key: &ServiceKey,
    sockets: &[&Socket],
    procs: &[&Process],
    connections: usize,
) -> Service {
    let first = sockets[0];
    let program = first
        .app
        .clone()
        .or_else(|| procs.first().map(|p| p.name.clone()))
        .or_else(|| first.service.clone())
        .unwrap_or_else(|| match first.owner {
            OwnerStatus::Hidden => "a hidden process".to_owned(),
            _ => "no process".to_owned(),
        });
    let owners = owners_text(procs);
    let addresses: BTreeSet<String> = sockets
        .iter()
        .map(|s| match s.local_addr {
            std::net::IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        })
        .collect();
    let exposure = sockets.iter().filter_map(|s| s.exposure).max();
    // A check that failed on one address and passed on another is a failure.
    let health = sockets
        .iter()
        .filter_map(|s| s.health.clone())
        .min_by_key(|h| h.up);
    Service {
        host: key.host.clone(),
        proto: key.proto,
        port: key.port,
        program,
        owners,
        pids: first.pids.clone(),
        ownerless: first.owner == OwnerStatus::None,
        addresses: addresses.into_iter().collect(),
        exposure,
        connections,
        health,
        http: sockets.iter().any(|s| s.http),
        row: crate::table::row_key(first.host.as_deref(), &first.id),
        started: procs
            .iter()
            .filter_map(|p| p.start_time)
            .min()
            .map(|secs| secs as f64 * 1000.0),
    }
}

/// Whether every term of the filter matches a service.
fn matches(terms: &[String], s: &Service, project: Option<&str>, host: Option<&str>) -> bool {
    let hay = format!(
        "{} {} {} {} {} {}",
        project.unwrap_or_default(),
        s.program,
        s.owners,
        s.addresses.join(" "),
        s.exposure.map_or("", |e| e.as_str()),
        host.unwrap_or_default(),
    )
    .to_lowercase();
    terms.iter().all(|term| match term.parse::<u32>() {
        Ok(n) => u32::from(s.port) == n || s.pids.contains(&n),
        Err(_) => {
            project_filter(term, project.into_iter()).unwrap_or_else(|| hay.contains(term.as_str()))
        }
    })
}

/// What the user asked to be told about: whole projects (by name) and single services.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Watch {
    pub projects: BTreeSet<String>,
    pub services: BTreeSet<ServiceKey>,
}

impl Watch {
    pub fn is_empty(&self) -> bool {
        self.projects.is_empty() && self.services.is_empty()
    }

    /// Whether a service (of the card `project`, if any) is watched.
    pub fn watches(&self, project: Option<&str>, s: &ServiceKey) -> bool {
        self.services.contains(s) || project.is_some_and(|p| self.projects.contains(p))
    }

    /// The stored form: one entry a line, `project NAME` or `port HOST PROTO PORT` (`-` for
    /// this agent), so that it survives a reload.
    pub fn to_text(&self) -> String {
        let mut lines: Vec<String> = self
            .projects
            .iter()
            .map(|p| format!("project {p}"))
            .collect();
        lines.extend(self.services.iter().map(|k| {
            format!(
                "port {} {} {}",
                k.host.as_deref().unwrap_or("-"),
                proto_text(k.proto),
                k.port
            )
        }));
        lines.join("\n")
    }

    /// Reads [`Watch::to_text`]'s form; lines it does not understand are dropped.
    pub fn from_text(text: &str) -> Self {
        let mut watch = Self::default();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("project ") {
                watch.projects.insert(name.to_owned());
            } else if let Some(rest) = line.strip_prefix("port ") {
                let parts: Vec<&str> = rest.split(' ').collect();
                let [host, proto, port] = parts[..] else {
                    continue;
                };
                let proto = match proto {
                    "tcp" => Proto::Tcp,
                    "udp" => Proto::Udp,
                    _ => continue,
                };
                let Ok(port) = port.parse() else { continue };
                watch.services.insert(ServiceKey {
                    host: (host != "-").then(|| host.to_owned()),
                    proto,
                    port,
                });
            }
        }
        watch
    }
}

fn proto_text(proto: Proto) -> &'static str {
    match proto {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    }
}

/// Whether a failure concerns project `name`: its process works in it, or the port it wanted
/// (or tried) is held by one of the project's.
pub fn failure_in(e: &portscope_shared::Event, name: &str) -> bool {
    crate::timeline::recent::is_failure(e)
        && (e.project.as_deref() == Some(name)
            || e.holders.iter().any(|h| h.project.as_deref() == Some(name)))
}

/// A failure as a change of the watched: when its project (or a holder's) is watched, or the
/// port's service is. Always bad news.
pub fn failure_change(
    e: &portscope_shared::Event,
    watch: &Watch,
    offset_min: i32,
) -> Option<Change> {
    if !crate::timeline::recent::is_failure(e) {
        return None;
    }
    let port = e.remote_port.unwrap_or(e.local_port);
    let key = ServiceKey {
        host: None,
        proto: e.proto,
        port,
    };
    let watched = watch.projects.iter().any(|p| failure_in(e, p)) || watch.services.contains(&key);
    watched.then(|| Change {
        key,
        text: crate::timeline::recent::failure_words(e, offset_min),
        bad: true,
    })
}

/// Something a watched service did between two groupings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub key: ServiceKey,
    /// For people, as the notification's title: "vite on :5173 closed".
    pub text: String,
    /// It is bad news (closed, or its health turned bad).
    pub bad: bool,
}

/// What changed for the watched services from `before` to `after`: a service that went
/// ("closed"), came back ("is back"), or whose health turned bad or good again. Only
/// changes: a service that stays down says nothing more. A listener no process holds any more
/// is gone already: an exiting server lets go of its descriptors a moment before the kernel
/// drops its listener, and that moment has no project to watch it by.
pub fn changes(before: &Projects, after: &Projects, watch: &Watch) -> Vec<Change> {
    let index = |p: &Projects| -> BTreeMap<ServiceKey, (Option<String>, Service)> {
        p.services()
            .filter(|(_, s)| !s.ownerless)
            .map(|(card, s)| (s.key(), (card.map(|c| c.name.clone()), s.clone())))
            .collect()
    };
    let (old, new) = (index(before), index(after));
    let mut out = Vec::new();
    for (key, (project, s)) in &old {
        if !new.contains_key(key) && watch.watches(project.as_deref(), key) {
            out.push(Change {
                key: key.clone(),
                text: format!("{} closed", s.name()),
                bad: true,
            });
        }
    }
    for (key, (project, s)) in &new {
        if !watch.watches(project.as_deref(), key) {
            continue;
        }
        let Some((_, was)) = old.get(key) else {
            out.push(Change {
                key: key.clone(),
                text: format!("{} is back", s.name()),
                bad: false,
            });
            continue;
        };
        let up = |h: &Option<Health>| h.as_ref().map(|h| h.up);
        match (up(&was.health), up(&s.health)) {
            (Some(true) | None, Some(false)) => out.push(Change {
                key: key.clone(),
                text: format!("{} {}", s.name(), health_text(s.health.as_ref())),
                bad: true,
            }),
            (Some(false), Some(true)) => out.push(Change {
                key: key.clone(),
                text: format!("{} answers again", s.name()),
                bad: false,
            }),
            _ => {}
        }
    }
    out
}

/// A failed check in words: "answers 500", "is down (timed out after 1 s)".
pub fn health_text(h: Option<&Health>) -> String {
    match h {
        Some(Health {
            up: false,
            status: Some(code),
            ..
        }) => format!("answers {code}"),
        Some(Health {
            up: false, detail, ..
        }) => match detail {
            Some(d) => format!("is down ({d})"),
            None => "is down".to_owned(),
        },
        Some(h) => match h.status {
            Some(code) => format!("answers {code} in {} ms", h.latency_ms),
            None => "is up".to_owned(),
        },
        None => "is not checked".to_owned(),
    }
}

/// "up 3 h", from when a service began (ms) to `now` (ms).
pub fn uptime(since: f64, now: f64) -> String {
    format!("up {}", crate::timeline::time::duration(now - since))
}

/// A health check as a tag: its class and text (`✓ 200 · 3 ms`, `✗ 500`, `✗ down`).
pub fn health_tag(h: &Health) -> (&'static str, String) {
    match (h.up, h.status) {
        (true, Some(status)) => ("tag up", format!("✓ {status} · {} ms", h.latency_ms)),
        (true, None) => ("tag up", format!("✓ {} ms", h.latency_ms)),
        (false, Some(status)) => ("tag down", format!("✗ {status}")),
        (false, None) => ("tag down", "✗ down".to_owned()),
    }
}

#[cfg(test)]
mod tests;
