//! `cargo xtask bench --developer-only` (and part of the full run): what #12's developer
//! features add to the tick at the bench's load (21 000 sockets by default). Its target: "at
//! 21 000 sockets, building the graph and the projects adds under 10 % to the tick".
//!
//! Projects: the same load (`bench/load.py`) is started with its processes working in a fresh
//! `git init` repository, and then in a plain temporary directory outside any repository
//! (detached from the bench, so that no ancestor's directory lends it a project); an agent (no
//! history) runs on each in turn. Two readings of each: its refresh times (`refresh took`, as
//! the rest of the bench reads them), side by side, and its own timing of the lookups
//! (`projects took`: how many processes were looked up in each scan and how long that took).
//! Both for the steady ticks (no process new: every answer known) and for ticks while a
//! spawner (`load.py --spawn`) starts 10 short-lived listeners a second, each in a directory
//! the agent has not seen (no cache hit: the worst case for the lookup). The two places
//! alternate for [`ROUNDS`] rounds and each figure is the median of all their ticks. Outside a
//! repository the lookup runs too, and costs more (it walks up to `/`, then the process's
//! ancestors); the wall-time difference is within this machine's run-to-run noise, which is why
//! the agent's own timing is printed beside it. The graph's and the snapshot's answers check
//! that the processes in the repository got its project and the others none.
//!
//! The graph: `GET /api/v1/graph` is built per request from the published state, and the Map
//! asks at most once a second while it is open. Its request time over loopback (a fresh
//! connection each, with the token) is compared with that of `GET /api/v1/hosts`, a small
//! route behind the same middleware, on the same agent: the difference is the graph's build
//! and its JSON, what the Map costs the agent a second.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::rig::{RunningAgent, median, start_load_at};

/// Rounds of the two places, in turn and in alternating order (the machine drifts over
/// minutes: one place's steady median moved by up to a third from one run to the next).
const ROUNDS: usize = 2;
/// Ticks measured per case and round, after the first.
const TICKS: usize = 15;
/// New processes a second in the spawning case.
const SPAWN_RATE: u32 = 10;
/// Requests to each of the two routes per round and place.
const REQUESTS: usize = 15;
/// The agent's tick (`RunningAgent` starts it with `--interval 1s`), in seconds.
const TICK_SECONDS: f64 = 1.0;
/// The repository's directory name: the project the agent should name.
const PROJECT: &str = "bench-project";

/// One place's ticks and requests, pooled over the rounds.
#[derive(Default)]
struct Place {
    /// The first scan's project lookups: seconds, how many (every process is new).
    first: Vec<(f64, u64)>,
    /// Refresh seconds, and the project lookups of the same ticks.
    steady: Vec<f64>,
    steady_lookups: Vec<(f64, u64)>,
    spawning: Vec<f64>,
    spawning_lookups: Vec<(f64, u64)>,
    /// Each run's steady and spawning medians, to show the spread.
    round_medians: Vec<f64>,
    spawning_round_medians: Vec<f64>,
    /// Spawned processes in the snapshot at the end of the spawning ticks (the last round's).
    spawned_seen: usize,
    graph: Vec<f64>,
    hosts: Vec<f64>,
}

pub(crate) struct Developer {
    sockets: usize,
    procs: usize,
    repo: Place,
    plain: Place,
    /// The graph's last answer on the repository's load: nodes, edges, bytes.
    graph_size: (usize, usize, usize),
}

impl Developer {
    fn spawning_lookups(&self) -> Option<f64> {
        median(&lookup_seconds(&self.repo.spawning_lookups))?
            .max(median(&lookup_seconds(&self.plain.spawning_lookups))?)
            .into()
    }

    fn graph_request(&self) -> Option<f64> {
        median(&[&self.repo.graph[..], &self.plain.graph[..]].concat())
    }

    fn hosts_request(&self) -> Option<f64> {
        median(&[&self.repo.hosts[..], &self.plain.hosts[..]].concat())
    }

    /// The graph's own share of its request: build and JSON (seconds).
    fn graph_build(&self) -> Option<f64> {
        Some(self.graph_request()? - self.hosts_request()?)
    }

    /// The graph once a second and the lookups of a tick while new processes keep appearing
    /// (the costlier place's median, as the agent times them), in seconds a second.
    fn together(&self) -> Option<f64> {
        Some(self.graph_build()? + self.spawning_lookups()? / TICK_SECONDS)
    }

    /// The steady refresh, both places pooled (the denominator of the shares).
    fn steady(&self) -> Option<f64> {
        median(&[&self.repo.steady[..], &self.plain.steady[..]].concat())
    }
}

/// `--developer-only`: these figures alone, printed (and written to `json` when given).
pub fn developer_figures(
    root: &Path,
    agent: &Path,
    sockets: usize,
    procs: usize,
    json_path: Option<&str>,
) -> Result<(), String> {
    let d = measure(root, agent, sockets, procs)?;
    println!();
    println!("portscope bench (developer): {sockets} sockets held by {procs} processes");
    println!("  machine: {}", crate::rig::machine());
    print(&d);
    if let Some(path) = json_path {
        let report = json!({
            "sockets": sockets,
            "processes": procs,
            "machine": crate::rig::machine(),
            "developer": json(&d),
        });
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        std::fs::write(path, text + "\n").map_err(|e| format!("{path}: {e}"))?;
        eprintln!("xtask: wrote {path}");
    }
    Ok(())
}

/// Runs both places in turn, [`ROUNDS`] times.
pub(crate) fn measure(
    root: &Path,
    agent: &Path,
    sockets: usize,
    procs: usize,
) -> Result<Developer, String> {
    let dirs = tempfile::tempdir().map_err(|e| e.to_string())?;
    let repo = dirs.path().join(PROJECT);
    let plain = dirs.path().join("plain");
    std::fs::create_dir(&repo).map_err(|e| e.to_string())?;
    std::fs::create_dir(&plain).map_err(|e| e.to_string())?;
    let status = Command::new("git")
        .args(["init", "--quiet"])
        .current_dir(&repo)
        .status()
        .map_err(|e| format!("cannot run git init: {e}"))?;
    if !status.success() {
        return Err("git init failed in the bench's temporary directory".into());
    }
    if let Some(git) = plain
        .ancestors()
        .map(|a| a.join(".git"))
        .find(|g| g.exists())
    {
        return Err(format!(
            "the temporary directory is inside a repository ({}): set TMPDIR elsewhere",
            git.display()
        ));
    }
    let mut d = Developer {
        sockets,
        procs,
        repo: Place::default(),
        plain: Place::default(),
        graph_size: (0, 0, 0),
    };
    for round in 1..=ROUNDS {
        let mut places = [
            ("a git repository", &repo, true),
            ("no repository", &plain, false),
        ];
        // A B B A …: a drift of the machine over the run biases neither.
        if round % 2 == 0 {
            places.reverse();
        }
        for (name, dir, in_repo) in places {
            eprintln!(
                "xtask: == projects and graph, round {round}/{ROUNDS}: {sockets} sockets working in {name}"
            );
            let place = if in_repo { &mut d.repo } else { &mut d.plain };
            let size = run_place(root, agent, dir, sockets, procs, in_repo, place)?;
            if in_repo {
                d.graph_size = size;
            }
        }
    }
    Ok(d)
}

/// One agent on one load in `dir`: its first and steady ticks, the two routes' request times,
/// then its ticks while new processes keep appearing there.
fn run_place(
    root: &Path,
    agent: &Path,
    dir: &Path,
    sockets: usize,
    procs: usize,
    in_repo: bool,
    place: &mut Place,
) -> Result<(usize, usize, usize), String> {
    let load = start_load_at(root, dir, sockets, procs, &[])?;
    let serve = RunningAgent::start_with(agent, &[], None)?;
    // Without the first tick, as the bench's steady refresh.
    let (ticks, lookups) = wait_ticks(&serve, TICKS + 1)?;
    place.first.push(lookups[0]);
    let steady = &ticks[1..=TICKS];
    place.steady.extend_from_slice(steady);
    place
        .steady_lookups
        .extend_from_slice(&lookups[2..=TICKS + 1]);
    place.round_medians.extend(median(steady));

    let mut size = (0, 0, 0);
    for i in 0..REQUESTS {
        // Alternating which goes first, so neither always meets the other's leftovers.
        let order = if i % 2 == 0 {
            ["/api/v1/graph", "/api/v1/hosts"]
        } else {
            ["/api/v1/hosts", "/api/v1/graph"]
        };
        for path in order {
            let (seconds, body) = get(serve.port, &serve.token, path)?;
            if path == "/api/v1/graph" {
                place.graph.push(seconds);
                if i == 0 {
                    size = check_graph(&body, in_repo, procs)?;
                }
            } else {
                place.hosts.push(seconds);
            }
        }
        std::thread::sleep(Duration::from_millis(70));
    }

    let spawner = start_load_at(
        root,
        dir,
        2,
        1,
        &["--spawn".to_owned(), SPAWN_RATE.to_string()],
    )?;
    // Two ticks for the first spawned processes to be seen, then the window.
    let from = serve.refreshes().len() + 2;
    let (ticks, lookups) = wait_ticks(&serve, from + TICKS)?;
    place.spawning.extend_from_slice(&ticks[from..from + TICKS]);
    place
        .spawning_round_medians
        .extend(median(&ticks[from..from + TICKS]));
    place
        .spawning_lookups
        .extend_from_slice(&lookups[from + 1..from + TICKS + 1]);
    let (_, snapshot) = get(serve.port, &serve.token, "/api/v1/snapshot")?;
    place.spawned_seen = check_spawned(&snapshot, in_repo)?;
    drop(spawner);
    drop(serve);
    drop(load);
    Ok(size)
}

/// The agent's refresh times and project lookups once it has logged `n` ticks (the lookups
/// start with the first scan's: tick `i`'s are at `i + 1`).
#[allow(clippy::type_complexity)] // two logs, read together
fn wait_ticks(serve: &RunningAgent, n: usize) -> Result<(Vec<f64>, Vec<(f64, u64)>), String> {
    let deadline = Instant::now() + Duration::from_secs(n as u64 * 3 + 30);
    loop {
        let (ticks, lookups) = (serve.refreshes(), serve.project_lookups());
        if ticks.len() >= n && lookups.len() > n {
            return Ok((ticks, lookups));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the agent logged {} refreshes, waited for {n}",
                ticks.len()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// That the load's processes (`python3`) got the repository's project, all of them, or none
/// outside it: the comparison is only one if they did. Returns the graph's nodes, edges and
/// bytes.
fn check_graph(body: &str, in_repo: bool, procs: usize) -> Result<(usize, usize, usize), String> {
    let graph: Value =
        serde_json::from_str(body).map_err(|e| format!("the graph is not JSON: {e}"))?;
    let nodes = graph["nodes"].as_array().map_or(&[][..], Vec::as_slice);
    let load: Vec<&Value> = nodes.iter().filter(|n| n["label"] == "python3").collect();
    let expected = if in_repo { json!(PROJECT) } else { Value::Null };
    let right = load.iter().filter(|n| n["project"] == expected).count();
    if load.len() < procs || right != load.len() {
        return Err(format!(
            "the graph has {} of the load's processes, {right} of them with the project {expected}, expected {procs}",
            load.len()
        ));
    }
    let edges = graph["edges"].as_array().map_or(0, Vec::len);
    Ok((nodes.len(), edges, body.len()))
}

/// That the agent saw the spawned processes (working under `spawned/`) and gave them the
/// repository's project, or none outside it. Returns how many the snapshot holds.
fn check_spawned(body: &str, in_repo: bool) -> Result<usize, String> {
    let snapshot: Value =
        serde_json::from_str(body).map_err(|e| format!("the snapshot is not JSON: {e}"))?;
    let spawned: Vec<&Value> = snapshot["processes"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .filter(|p| p["cwd"].as_str().is_some_and(|c| c.contains("/spawned/")))
        .collect();
    let expected = if in_repo { json!(PROJECT) } else { Value::Null };
    let right = spawned
        .iter()
        .filter(|p| p["project"]["name"] == expected)
        .count();
    if spawned.is_empty() || right != spawned.len() {
        return Err(format!(
            "the snapshot holds {} spawned processes, {right} of them with the project {expected}, expected all",
            spawned.len()
        ));
    }
    Ok(spawned.len())
}

/// `GET path` with the token over a fresh loopback connection: seconds from connect to the
/// last byte, and the body. An answer other than 200 is an error.
fn get(port: u16, token: &str, path: &str) -> Result<(f64, String), String> {
    let clock = Instant::now();
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port))
        .map_err(|e| format!("cannot connect to the agent: {e}"))?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut text = String::new();
    conn.read_to_string(&mut text).map_err(|e| e.to_string())?;
    let seconds = clock.elapsed().as_secs_f64();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "GET {path}: {}",
            head.lines().next().unwrap_or("no answer")
        ));
    }
    Ok((seconds, body.to_owned()))
}

fn lookup_seconds(lookups: &[(f64, u64)]) -> Vec<f64> {
    lookups.iter().map(|&(s, _)| s).collect()
}

fn lookup_count(lookups: &[(f64, u64)]) -> Option<f64> {
    median(&lookups.iter().map(|&(_, n)| n as f64).collect::<Vec<_>>())
}

fn ms(seconds: Option<f64>) -> f64 {
    seconds.map_or(f64::NAN, |s| s * 1e3)
}

/// `a` over `b` as a change in percent.
fn change(a: Option<f64>, b: Option<f64>) -> f64 {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => (a / b - 1.0) * 100.0,
        _ => f64::NAN,
    }
}

pub(crate) fn print(d: &Developer) {
    let (repo, plain) = (&d.repo, &d.plain);
    let runs = |medians: &[f64]| {
        medians
            .iter()
            .map(|m| format!("{:.1}", m * 1e3))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let lookups = |l: &[(f64, u64)]| {
        format!(
            "{:.0} lookups in {:.2} ms",
            lookup_count(l).unwrap_or(f64::NAN),
            ms(median(&lookup_seconds(l)))
        )
    };
    println!(
        "  projects: {:+.1} % of the steady refresh: {:.1} ms median working in a git repository, {:.1} ms outside any ({} processes, {} ticks each, in turn; each run's median {} ms vs {} ms)",
        change(median(&repo.steady), median(&plain.steady)),
        ms(median(&repo.steady)),
        ms(median(&plain.steady)),
        d.procs,
        repo.steady.len(),
        runs(&repo.round_medians),
        runs(&plain.round_medians),
    );
    println!(
        "  projects, as the agent times them: steady tick {} (repository) / {} (outside); first scan {} / {}",
        lookups(&repo.steady_lookups),
        lookups(&plain.steady_lookups),
        lookups(&repo.first),
        lookups(&plain.first),
    );
    println!(
        "  projects, {SPAWN_RATE} new processes a second, each in a directory not seen before: refresh {:.1} ms vs {:.1} ms: {:+.1} % (each run's median {} ms vs {} ms); a tick's {} / {} = {:.2} % of the steady refresh at most ({} ticks each; {} / {} spawned processes live at the end, with / without the project)",
        ms(median(&repo.spawning)),
        ms(median(&plain.spawning)),
        change(median(&repo.spawning), median(&plain.spawning)),
        runs(&repo.spawning_round_medians),
        runs(&plain.spawning_round_medians),
        lookups(&repo.spawning_lookups),
        lookups(&plain.spawning_lookups),
        d.spawning_lookups()
            .zip(d.steady())
            .map_or(f64::NAN, |(l, s)| l / s * 100.0),
        repo.spawning.len(),
        repo.spawned_seen,
        plain.spawned_seen,
    );
    let build = d.graph_build();
    let (nodes, edges, bytes) = d.graph_size;
    println!(
        "  graph: {:.1} ms per request, at most one a second while the Map is open = {:.2} % of the tick ({TICK_SECONDS} s), {:.1} % of the steady refresh ({:.1} ms for /api/v1/graph − {:.1} ms for /api/v1/hosts, medians of {} requests each; {nodes} nodes, {edges} edges, {:.1} KiB)",
        ms(build),
        build.map_or(f64::NAN, |b| b / TICK_SECONDS * 100.0),
        build
            .zip(d.steady())
            .map_or(f64::NAN, |(b, s)| b / s * 100.0),
        ms(d.graph_request()),
        ms(d.hosts_request()),
        repo.graph.len() + plain.graph.len(),
        bytes as f64 / 1024.0,
    );
    let total = d.together();
    println!(
        "  graph + projects: {:.1} ms a second = {:.2} % of the tick, {:.1} % of the steady refresh (target < 10 %; the graph once a second and the projects' lookups of a tick with {SPAWN_RATE} new processes a second)",
        ms(total),
        total.map_or(f64::NAN, |t| t / TICK_SECONDS * 100.0),
        total
            .zip(d.steady())
            .map_or(f64::NAN, |(t, s)| t / s * 100.0),
    );
}

pub(crate) fn json(d: &Developer) -> Value {
    let lookups = |l: &[(f64, u64)]| json!({ "seconds": median(&lookup_seconds(l)), "lookups": lookup_count(l) });
    let place = |p: &Place| {
        json!({
            "steady_refresh_seconds": median(&p.steady),
            "steady_refresh_seconds_per_round": p.round_medians,
            "spawning_refresh_seconds": median(&p.spawning),
            "spawning_refresh_seconds_per_round": p.spawning_round_medians,
            "ticks": p.steady.len(),
            "first_scan_projects": lookups(&p.first),
            "steady_tick_projects": lookups(&p.steady_lookups),
            "spawning_tick_projects": lookups(&p.spawning_lookups),
            "spawned_seen": p.spawned_seen,
        })
    };
    json!({
        "sockets": d.sockets,
        "processes": d.procs,
        "in_repository": place(&d.repo),
        "outside_repository": place(&d.plain),
        "projects_change_of_steady_refresh": change(median(&d.repo.steady), median(&d.plain.steady)) / 100.0,
        "projects_change_of_spawning_refresh": change(median(&d.repo.spawning), median(&d.plain.spawning)) / 100.0,
        "projects_lookups_share_of_steady_refresh": d.spawning_lookups().zip(d.steady()).map(|(l, s)| l / s),
        "spawned_per_second": SPAWN_RATE,
        "graph_request_seconds": d.graph_request(),
        "hosts_request_seconds": d.hosts_request(),
        "graph_build_seconds": d.graph_build(),
        "graph_share_of_tick": d.graph_build().map(|b| b / TICK_SECONDS),
        "graph_share_of_steady_refresh": d.graph_build().zip(d.steady()).map(|(b, s)| b / s),
        "graph_and_projects_share_of_tick": d.together().map(|t| t / TICK_SECONDS),
        "graph_and_projects_share_of_steady_refresh": d.together().zip(d.steady()).map(|(t, s)| t / s),
        "graph_nodes": d.graph_size.0,
        "graph_edges": d.graph_size.1,
        "graph_bytes": d.graph_size.2,
    })
}
