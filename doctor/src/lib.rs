//! `portscope-doctor`: who holds a port and why a connection fails — `who`, `why`, `bind`,
//! `free`, `kill` and `wait`, with the probes and the firewall's reading they use.
//!
//! It reads the core's model (and the history's store, read-only, for what listened before)
//! and takes its own option types: clap stays in the binary, which converts its arguments at
//! the edge. It must not depend on the server or the command line.
//!
//! The port doctor: `why` (connection refused), `bind` (address already in use) and `free`
//! (ports to use instead). Each builds a [`Diagnosis`] of [`Check`]s from facts it reads, so the
//! CLI and the dashboard show the same answer.

pub mod bind;
pub mod firewall;
pub mod free;
pub mod kill;
pub mod live;
#[cfg(any(test, target_os = "macos"))]
pub mod pf;
pub mod probe;
pub mod target;
pub mod wait;
pub mod who;
pub mod why;

use std::io::Write;
use std::sync::Arc;

use portscope_shared::{Check, Diagnosis, EventKind, Fix, Question, Verdict};

use portscope_core::collector::Collector;
use portscope_core::metrics::Metrics;
use portscope_core::model::{Published, State};

/// What the doctor learnt about listeners by talking to them: whether each speaks HTTP, by
/// socket id (which names the socket until it closes). The collector reads it, so a listener
/// that answered HTTP gets the dashboard's "Open in browser" although its program is unknown,
/// and one that did not loses it — from a probe result, never from a port number.
#[derive(Clone, Debug, Default)]
pub struct Learned {
    http: Arc<std::sync::Mutex<std::collections::HashMap<String, bool>>>,
}

impl portscope_core::collector::Annotate for Learned {
    fn annotate(&self, sockets: &mut portscope_core::collector::Sockets) {
        self.apply(sockets);
    }
}

impl Learned {
    fn map(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, bool>> {
        self.http
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps what a `why` heard on `addr`: the listeners on that port that take its connections.
    pub fn record(&self, facts: &why::Facts) {
        let Some((addr, answer)) = &facts.answer else {
            return;
        };
        let speaks = match answer {
            probe::Answer::Http {
                reply: probe::Http::Response { .. } | probe::Http::Tls,
                ..
            } => true,
            probe::Answer::Http {
                reply: probe::Http::Other(_),
                ..
            }
            | probe::Answer::Greeting(_) => false,
            // Nothing was learnt: nothing sent, or nothing came back.
            _ => return,
        };
        let mut map = self.map();
        for socket in facts.sockets.iter().filter(|s| {
            s.state == portscope_shared::SocketState::Listen
                && s.local_port == addr.port()
                && (s.local_addr == addr.ip() || s.local_addr.is_unspecified())
        }) {
            map.insert(socket.id.clone(), speaks);
        }
    }

    /// Applies what was learnt to a fresh scan's listeners, and forgets closed sockets.
    pub fn apply(&self, sockets: &mut portscope_core::collector::Sockets) {
        let mut map = self.map();
        if map.is_empty() {
            return;
        }
        map.retain(|id, _| sockets.contains_key(id));
        for (id, speaks) in map.iter() {
            if let Some(socket) = sockets.get_mut(id) {
                socket.http = *speaks;
            }
        }
    }
}

/// What the history says used to listen on a port where nothing listens now.
#[derive(Clone, Debug)]
pub struct Previous {
    /// Its closing.
    pub closed: portscope_shared::Event,
    /// How long ago it closed, when read.
    pub ago: std::time::Duration,
    /// Whether its process still runs (without the port).
    pub running: bool,
}

impl Previous {
    /// What used to listen on `port`, when none of the port's `sockets` listens now.
    pub fn unless_listening(
        history: Option<&std::path::Path>,
        port: u16,
        sockets: &[portscope_shared::Socket],
    ) -> Option<Previous> {
        if sockets.iter().any(portscope_shared::Socket::is_listening) {
            return None;
        }
        Previous::find(history, port)
    }

    /// The last listener on `port` that the history saw close, if the history is readable.
    pub fn find(history: Option<&std::path::Path>, port: u16) -> Option<Previous> {
        let store = portscope_history::Store::open_read_only(history?).ok()?;
        let events = store
            .query(&portscope_history::Query {
                port: Some(port),
                limit: 16,
                ..portscope_history::Query::default()
            })
            .ok()?;
        // Newest first: the owner's `exited` events, if it exited, then the listeners' own.
        let mut exited = Vec::new();
        let mut events = events.into_iter();
        let closed = loop {
            let e = events.next()?;
            match e.kind {
                EventKind::Exited => exited.push((e.pid, e.start_time)),
                EventKind::Closed => break e,
                // Its last checks, before it closed.
                EventKind::Health => {}
                _ => return None,
            }
        };
        let at = humantime::parse_rfc3339(&closed.time).ok()?;
        let seen_exit = exited.contains(&(closed.pid, closed.start_time));
        Some(Previous {
            ago: std::time::SystemTime::now()
                .duration_since(at)
                .unwrap_or_default(),
            running: !seen_exit
                && closed.pid.is_some_and(|pid| {
                    portscope_core::events::still_runs(
                        pid,
                        closed.start_time,
                        closed.process.as_deref(),
                    )
                }),
            closed,
        })
    }

    /// "port 8000 was held by python3 (pid 4242) on 127.0.0.1 until 2 min ago
    /// (2026-11-29T14:02:03Z); it has exited", with where to read more.
    pub fn sentence(&self) -> String {
        let gone = &self.closed;
        let port = gone.local_port;
        let who = match (&gone.process, gone.pid) {
            (Some(name), Some(pid)) => {
                format!("{} (pid {pid})", portscope_core::text::one_line(name))
            }
            (None, Some(pid)) => format!("pid {pid}"),
            _ => "a process".into(),
        };
        let now = match (self.running, gone.pid) {
            (true, Some(pid)) => format!("; pid {pid} still runs, without the port"),
            (false, Some(_)) => "; it has exited".into(),
            _ => String::new(),
        };
        format!(
            "the history says port {port} was held by {who} on {} until {} ago ({}){now} (`portscope history {port}`)",
            gone.local_addr,
            portscope_core::text::duration(self.ago),
            gone.time
        )
    }
}

/// Where a doctor reads the machine's sockets and their owners.
#[derive(Clone, Debug)]
pub enum Source {
    /// A fresh scan: the CLI, or an agent that rescans less often than [`LIVE_ENOUGH`].
    Scan(Counted),
    /// The agent's live model, at most one tick old (`why` checks it against its connects).
    Live(Arc<Published>, Counted),
}

/// Where the doctor's full scans are counted: the agent's [`Metrics`]
/// (`portscope_doctor_scans_total` in `/metrics`, which the tests read to check that the
/// doctor's routes answer from the live model), or nowhere (the CLI's one-off answers).
pub type Counted = Option<Metrics>;

/// An agent that rescans at least this often answers the doctor's routes from its live model.
pub const LIVE_ENOUGH: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether an agent's live model is current enough for the doctor: the kernel tells it each
/// change as it happens, or it rescans at least every [`LIVE_ENOUGH`].
pub fn live_enough(hello: &portscope_shared::Hello) -> bool {
    hello.changes == portscope_shared::Changes::Kernel
        || std::time::Duration::from_millis(hello.tick_ms) <= LIVE_ENOUGH
}

impl Source {
    /// The command line's source: a scan made when asked, counted nowhere.
    pub fn scan() -> Self {
        Self::Scan(None)
    }

    /// A fresh scan counted where this source's scans are (a live source's fallback when its
    /// model cannot answer).
    pub fn rescan(&self) -> Self {
        match self {
            Self::Scan(counted) | Self::Live(_, counted) => Self::Scan(counted.clone()),
        }
    }

    /// Calls `f` with the state to read: the live one, or a scan made now (and counted).
    pub fn with<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        match self {
            Self::Live(published, _) => f(&published.state),
            Self::Scan(counted) => {
                if let Some(metrics) = counted {
                    metrics.doctor_scanned();
                }
                tracing::debug!("the doctor scans the machine");
                f(&Collector::this_machine().scan())
            }
        }
    }
}

/// `sudo ` in front of a command that needs root, when the user is not root (`root`: the
/// facts' [`os::is_root`], read once where the facts are gathered).
pub fn sudo_prefix(root: bool) -> &'static str {
    if root { "" } else { "sudo " }
}

/// Bad input found after parsing (e.g. a host that does not resolve): exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A check; the argument order reads as the printed line.
pub fn check(
    id: &str,
    verdict: Verdict,
    title: String,
    evidence: Vec<String>,
    fixes: Vec<Fix>,
) -> Check {
    Check {
        id: id.into(),
        verdict,
        title,
        evidence,
        fixes,
    }
}

pub fn fix(text: &str, command: Option<String>) -> Fix {
    Fix {
        text: text.into(),
        command,
    }
}

/// The diagnosis with its overall verdict and one-line summary: the first of the worst
/// findings, or, when all is well, the most telling good one (the HTTP answer, then the
/// listener, then the first check).
pub fn finish(
    question: Question,
    target: String,
    port: u16,
    checks: Vec<Check>,
    free_ports: Vec<u16>,
) -> Diagnosis {
    let verdict = checks
        .iter()
        .map(|c| c.verdict)
        .filter(|v| *v != Verdict::Unknown)
        .max()
        .unwrap_or(Verdict::Ok);
    let verdict = if verdict == Verdict::Unchecked || verdict == Verdict::Info {
        Verdict::Ok
    } else {
        verdict
    };
    // A failed connect is the symptom; a later check of the same weight names the cause.
    let summary = if verdict >= Verdict::Warning {
        let worst = || checks.iter().filter(|c| c.verdict == verdict);
        worst()
            .find(|c| c.id != "connect")
            .or_else(|| worst().next())
            .map(|c| c.title.clone())
    } else {
        ["http", "listening", "summary"]
            .iter()
            .find_map(|id| {
                checks
                    .iter()
                    .find(|c| c.id == *id && c.verdict == Verdict::Ok)
            })
            .or_else(|| checks.iter().find(|c| c.verdict == Verdict::Ok))
            .map(|c| c.title.clone())
    }
    .unwrap_or_else(|| "nothing to report".into());
    Diagnosis {
        question,
        target,
        port,
        checks,
        verdict,
        summary,
        free_ports,
    }
}

/// Prints a diagnosis for a terminal: one line per check with its verdict, the evidence and
/// fixes below it, then the summary.
pub fn print(out: &mut impl Write, d: &Diagnosis) -> std::io::Result<()> {
    let question = match d.question {
        Question::Why => "why",
        Question::Bind => "bind",
        Question::Unknown => "?",
    };
    // Titles and evidence carry process names and HTTP answers: printed on one safe line.
    use portscope_core::text::one_line;
    writeln!(out, "portscope {question} {}", one_line(&d.target))?;
    for c in &d.checks {
        writeln!(out, "  {:<9} {}", label(c.verdict), one_line(&c.title))?;
        for e in &c.evidence {
            writeln!(out, "            · {}", one_line(e))?;
        }
        for f in &c.fixes {
            match &f.command {
                Some(cmd) => writeln!(
                    out,
                    "            → {}: {}",
                    one_line(&f.text),
                    one_line(cmd)
                )?,
                None => writeln!(out, "            → {}", one_line(&f.text))?,
            }
        }
    }
    if !d.free_ports.is_empty() {
        let ports: Vec<String> = d.free_ports.iter().map(u16::to_string).collect();
        writeln!(out, "  free ports nearby: {}", ports.join(", "))?;
    }
    writeln!(out, "{}: {}", label(d.verdict), one_line(&d.summary))?;
    Ok(())
}

fn label(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "ok",
        Verdict::Info => "info",
        Verdict::Unchecked => "unchecked",
        Verdict::Warning => "WARNING",
        Verdict::Problem => "PROBLEM",
        Verdict::Unknown => "?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_is_the_worst_finding_or_the_best_answer() {
        let checks = vec![
            check("connect", Verdict::Ok, "connected".into(), vec![], vec![]),
            check(
                "listening",
                Verdict::Ok,
                "python3 listens".into(),
                vec![],
                vec![],
            ),
            check(
                "firewall",
                Verdict::Unchecked,
                "not read".into(),
                vec![],
                vec![],
            ),
        ];
        let d = finish(Question::Why, "5173".into(), 5173, checks.clone(), vec![]);
        assert_eq!(
            (d.verdict, d.summary.as_str()),
            (Verdict::Ok, "python3 listens")
        );
        let mut worse = checks;
        worse.push(check(
            "family",
            Verdict::Warning,
            "IPv4 only".into(),
            vec![],
            vec![],
        ));
        worse.push(check("x", Verdict::Warning, "later".into(), vec![], vec![]));
        let d = finish(Question::Why, "5173".into(), 5173, worse, vec![]);
        assert_eq!(
            (d.verdict, d.summary.as_str()),
            (Verdict::Warning, "IPv4 only")
        );
        let mut text = Vec::new();
        print(&mut text, &d).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.starts_with("portscope why 5173\n  ok        connected\n"),
            "{text}"
        );
        assert!(text.ends_with("WARNING: IPv4 only\n"), "{text}");
    }
}
