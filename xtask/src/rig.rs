//! The bench's rig, shared by every part of `cargo xtask bench` (`bench.rs`, `developer.rs`,
//! `hub.rs`): the load (`bench/load.py` in its processes, released when dropped), a running
//! release agent and what its log says, the WebSocket and browser clients, `ss`-style timing,
//! and CPU and memory read from `/proc`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;

/// A child that is killed (and its load released) when dropped.
pub(crate) struct Guarded(pub(crate) Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bench/load.py` and waits until its sockets are open. Its processes work in this
/// process's working directory.
pub(crate) fn start_load(
    root: &Path,
    sockets: usize,
    procs: usize,
    churn: Option<f64>,
) -> Result<Option<Guarded>, String> {
    start_load_in(root, None, sockets, procs, churn)
}

/// [`start_load`] run in the network namespace `netns`, when one is given (a hub's peer).
pub(crate) fn start_load_in(
    root: &Path,
    netns: Option<&str>,
    sockets: usize,
    procs: usize,
    churn: Option<f64>,
) -> Result<Option<Guarded>, String> {
    let (load, _) = load(root, netns, None, sockets, procs, &churn_args(churn))?;
    Ok(Some(load))
}

/// [`start_load`] with its processes working in `cwd` (projects are found from it), detached
/// from this process (`setsid --fork`: their parent is then init, not the bench, whose working
/// directory — the checkout — would lend a project to processes without one of their own),
/// and `more` arguments for `load.py` (`--spawn PER_SECOND`). It still ends when its stdin
/// closes, as the returned guard drops, which then waits for it to end.
pub(crate) fn start_load_at(
    root: &Path,
    cwd: &Path,
    sockets: usize,
    procs: usize,
    more: &[String],
) -> Result<Detached, String> {
    let (child, ready) = load(root, None, Some(cwd), sockets, procs, more)?;
    let pid = ready["parent"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .ok_or("load.py did not say its pid")?;
    Ok(Detached {
        child: Some(child),
        pid,
    })
}

/// A load started by [`start_load_at`]: `setsid` exits at once, so dropping its child only
/// closes the load's stdin; this waits (up to a minute) until the load itself has ended, so
/// that its sockets are gone before the next measurement.
pub(crate) struct Detached {
    child: Option<Guarded>,
    pid: u32,
}

impl Drop for Detached {
    fn drop(&mut self) {
        drop(self.child.take());
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        // Gone, or a zombie its new parent has not reaped yet.
        let running = |pid: u32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(") ")
                    .is_some_and(|(_, rest)| !rest.starts_with('Z'))
            })
        };
        while running(self.pid) && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

pub(crate) fn churn_args(churn: Option<f64>) -> Vec<String> {
    churn.map_or_else(Vec::new, |rate| {
        vec!["--churn".to_owned(), rate.to_string()]
    })
}

pub(crate) fn load(
    root: &Path,
    netns: Option<&str>,
    cwd: Option<&Path>,
    sockets: usize,
    procs: usize,
    more: &[String],
) -> Result<(Guarded, Value), String> {
    let mut cmd = match (netns, cwd) {
        (Some(netns), _) => {
            let mut ip = Command::new("ip");
            ip.args(["netns", "exec", netns, "python3"]);
            ip
        }
        (None, Some(_)) => {
            let mut setsid = Command::new("setsid");
            setsid.args(["--fork", "python3"]);
            setsid
        }
        (None, None) => Command::new("python3"),
    };
    cmd.arg(root.join("bench/load.py"))
        .args([sockets.to_string(), procs.to_string()])
        .args(more);
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run python3 bench/load.py: {e}"))?;
    let line = BufReader::new(child.stdout.take().ok_or("no stdout")?)
        .lines()
        .next()
        .ok_or("the load printed nothing")?
        .map_err(|e| e.to_string())?;
    let ready =
        serde_json::from_str::<Value>(&line).map_err(|e| format!("load said {line:?}: {e}"))?;
    Ok((Guarded(child), ready))
}

/// `portscope serve --interval 1s` with its refresh log read into `scans`; stopped when dropped.
pub(crate) struct RunningAgent {
    _child: Guarded,
    pub(crate) pid: u32,
    pub(crate) port: u16,
    pub(crate) token: String,
    /// Each tick's refresh time in seconds, from the agent's debug log.
    scans: Arc<Mutex<Vec<f64>>>,
    /// Each tick's history share of it (counting connections, queuing the writes).
    pub(crate) history_ticks: Arc<Mutex<Vec<f64>>>,
    /// Project lookups (seconds, how many): the first scan's, then each tick's.
    projects: Arc<Mutex<Vec<(f64, u64)>>>,
    /// The temporary state directory `start` made, removed with the agent.
    _state: Option<tempfile::TempDir>,
}

impl RunningAgent {
    /// The median refresh time so far, without the first tick (which reads every process).
    pub(crate) fn steady_refresh(&self) -> Option<f64> {
        let s = self.scans.lock().unwrap();
        median(&s[1.min(s.len())..])
    }

    /// Every tick's refresh time so far, in seconds, the first tick first.
    pub(crate) fn refreshes(&self) -> Vec<f64> {
        self.scans.lock().unwrap().clone()
    }

    /// The project lookups' time (seconds) and count: the first scan's (before the URL), then
    /// each tick's, in step with [`RunningAgent::refreshes`].
    pub(crate) fn project_lookups(&self) -> Vec<(f64, u64)> {
        self.projects.lock().unwrap().clone()
    }

    /// The agent with a history and local socket of its own (never the user's).
    pub(crate) fn start(agent: &Path) -> Result<Self, String> {
        let state = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut running = Self::start_with(agent, &[], Some(state.path()))?;
        running._state = Some(state);
        Ok(running)
    }

    /// The same with more arguments, and the history under `state` (`XDG_STATE_HOME`). It
    /// polls (`--no-kernel-events`): the figures it serves are the tick's (a scan every second,
    /// deltas of many rows); the kernel-fed agent's are `kernel.rs`'s, by
    /// [`RunningAgent::start_as_given`].
    pub(crate) fn start_with(
        agent: &Path,
        more: &[&str],
        state: Option<&Path>,
    ) -> Result<Self, String> {
        let mut polling = vec!["--no-kernel-events"];
        polling.extend_from_slice(more);
        Self::start_as_given(agent, &polling, state)
    }

    /// [`RunningAgent::start_with`] with kernel events where `more` does not turn them off.
    pub(crate) fn start_as_given(
        agent: &Path,
        more: &[&str],
        state: Option<&Path>,
    ) -> Result<Self, String> {
        let mut command = Command::new(agent);
        command.args(["serve", "--port", "0", "--interval", "1s"]);
        // Its history and local socket go to `state`, or nowhere: never into the user's own.
        match state {
            Some(state) => command
                .env("XDG_STATE_HOME", state)
                .env("XDG_RUNTIME_DIR", state),
            None => command
                .arg("--no-history")
                .env_remove("XDG_RUNTIME_DIR")
                .env("HOME", "/nonexistent"),
        };
        let mut serve = command
            .args(more)
            .env("RUST_LOG", "portscope_server::refresh=debug")
            .env_remove("PORTSCOPE_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the agent: {e}"))?;
        let pid = serve.id();
        let url = BufReader::new(serve.stdout.take().ok_or("no stdout")?)
            .lines()
            .next()
            .ok_or("the agent printed no URL")?
            .map_err(|e| e.to_string())?;
        let scans = Arc::new(Mutex::new(Vec::<f64>::new()));
        let history_ticks = Arc::new(Mutex::new(Vec::<f64>::new()));
        let projects = Arc::new(Mutex::new(Vec::<(f64, u64)>::new()));
        {
            let (scans, history_ticks, projects) =
                (scans.clone(), history_ticks.clone(), projects.clone());
            let stderr = serve.stderr.take().ok_or("no stderr")?;
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let line = strip_ansi(&line);
                    let field = |name: &str| {
                        line.split(name)
                            .nth(1)
                            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
                            .and_then(|n| n.parse::<f64>().ok())
                    };
                    let Some(micros) = field("micros=") else {
                        continue;
                    };
                    if line.contains("projects took") {
                        let lookups = field("lookups=").unwrap_or(0.0) as u64;
                        projects.lock().unwrap().push((micros / 1e6, lookups));
                    } else if line.contains("history tick took") {
                        history_ticks.lock().unwrap().push(micros / 1e6);
                    } else if line.contains("refresh took") {
                        scans.lock().unwrap().push(micros / 1e6);
                    }
                }
            });
        }
        let (port, token) = parse_url(&url)?;
        Ok(Self {
            _child: Guarded(serve),
            pid,
            port,
            token,
            scans,
            history_ticks,
            projects,
            _state: None,
        })
    }
}

/// Runs `bench/browser.py` (headless Chromium through chromedriver) on the agent's page.
pub(crate) fn browser(root: &Path, url: &str, min_rows: usize) -> Result<Value, String> {
    python_json(root, "browser.py", &[url.to_owned(), min_rows.to_string()])
}

/// Runs `bench/wsclient.py` against the agent (see its usage line).
pub(crate) fn ws_client(
    root: &Path,
    port: u16,
    token: &str,
    idle: u64,
    samples: u32,
    settle: f64,
) -> Result<Value, String> {
    python_json(
        root,
        "wsclient.py",
        &[
            port.to_string(),
            token.to_owned(),
            idle.to_string(),
            samples.to_string(),
            settle.to_string(),
        ],
    )
}

/// Runs `bench/SCRIPT ARGS…` with python3 and parses the one JSON object it prints.
pub(crate) fn python_json(root: &Path, script: &str, args: &[String]) -> Result<Value, String> {
    let out = Command::new("python3")
        .arg(root.join("bench").join(script))
        .args(args)
        .output()
        .map_err(|e| format!("cannot run bench/{script}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).map_err(|e| {
        format!(
            "{script} said {text:?} ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

pub(crate) fn parse_url(url: &str) -> Result<(u16, String), String> {
    let rest = url
        .strip_prefix("http://127.0.0.1:")
        .ok_or(format!("unexpected URL {url}"))?;
    let (port, token) = rest
        .split_once("/?token=")
        .ok_or(format!("no token in {url}"))?;
    Ok((port.parse().map_err(|e| format!("{e}"))?, token.to_owned()))
}

/// Median wall time of a command, output discarded; `None` when it does not run.
pub(crate) fn median_wall(program: &str, args: &[&str], runs: usize) -> Option<f64> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let status = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        if !status.success() && program != "lsof" {
            return None;
        }
        times.push(start.elapsed().as_secs_f64());
    }
    median(&times)
}

/// The log's text without its colour codes (`ESC [ … m`).
pub(crate) fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn median(values: &[f64]) -> Option<f64> {
    percentile(values, 50.0)
}

pub(crate) fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v.get(rank).copied()
}

/// User + system CPU seconds of a process, from /proc/<pid>/stat (fields 14 and 15).
/// The CPU seconds of the agent's thread named `name` (its history writer is `history`).
pub(crate) fn thread_cpu_seconds(pid: u32, name: &str) -> Result<f64, String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|e| e.to_string())?;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            return stat_cpu_seconds(&task.path().join("stat"));
        }
    }
    Err(format!("the agent has no thread named {name}"))
}

pub(crate) fn cpu_seconds(pid: u32) -> Result<f64, String> {
    stat_cpu_seconds(Path::new(&format!("/proc/{pid}/stat")))
}

/// utime + stime of a `/proc/…/stat` file, in seconds.
pub(crate) fn stat_cpu_seconds(path: &Path) -> Result<f64, String> {
    let stat = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let after = stat.rsplit_once(')').ok_or("bad stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let hz = 100.0; // USER_HZ on Linux
    Ok((ticks(11) + ticks(12)) / hz)
}

pub(crate) fn rss_kib(pid: u32) -> Result<u64, String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or("no VmRSS".into())
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores, {cpu}, Linux {}", kernel.trim())
}
