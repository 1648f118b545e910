//! `cargo xtask bench [--sockets N] [--procs P] [--json PATH]`: makes the load itself (N TCP
//! sockets held by P processes, `bench/load.py`), then measures on that same load portscope's
//! cold snapshot, steady refresh, CPU, memory, bytes on the wire and change latency, and the
//! same machine's `ss`, `netstat` and `lsof`, and prints each figure with its ratio and target.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};

use crate::rig::{
    RunningAgent, browser, cpu_seconds, machine, median, median_wall, percentile, python_json,
    rss_kib, start_load, thread_cpu_seconds, ws_client,
};

/// The small load for the idle-cost figure.
const SMALL: usize = 1_000;

/// Seconds a client waits after its snapshot before idle bytes are counted: the first delta
/// shows the client's own new connection.
const SETTLE: f64 = 2.5;

struct Options {
    sockets: usize,
    procs: usize,
    json: Option<String>,
    /// Only the history's figures (its cost under churn, `history PORT` on a 30-day file).
    history_only: bool,
    /// Only a hub's figures (three namespaced peers of 5 000 sockets).
    hub_only: bool,
    /// Only the dashboard's timeline on a week of 200 ports (no load, no history cost).
    timeline_only: bool,
    /// Only what projects and the graph (#12) add to the tick, on the same load.
    developer_only: bool,
    /// Only the kernel events' figures (#22): polling and kernel-fed agents on the same load.
    kernel_only: bool,
}

fn options(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        sockets: 21_000,
        procs: 20,
        json: None,
        history_only: false,
        hub_only: false,
        timeline_only: false,
        developer_only: false,
        kernel_only: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--sockets" => o.sockets = value()?.parse().map_err(|e| format!("--sockets: {e}"))?,
            "--procs" => o.procs = value()?.parse().map_err(|e| format!("--procs: {e}"))?,
            "--json" => o.json = Some(value()?),
            "--history-only" => o.history_only = true,
            "--hub-only" => o.hub_only = true,
            "--timeline-only" => o.timeline_only = true,
            "--developer-only" => o.developer_only = true,
            "--kernel-only" => o.kernel_only = true,
            other => {
                return Err(format!(
                    "unknown bench option {other}; expected --sockets N, --procs P, --json PATH, --history-only, --hub-only, --timeline-only, --developer-only, --kernel-only"
                ));
            }
        }
    }
    if o.procs == 0 || o.sockets < o.procs * 2 {
        return Err("need at least one process and two sockets per process".into());
    }
    Ok(o)
}

pub fn bench(args: &[String]) -> Result<(), String> {
    let o = options(args)?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    install_tools()?;
    crate::step(
        "build the release agent",
        crate::cargo(&["build", "--release", "--package", "portscope", "--locked"]),
    )?;
    // Where Cargo put it: `CARGO_TARGET_DIR` when set (relative to the directory both run in).
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), std::path::PathBuf::from);
    let agent = target.join("release/portscope");
    if o.timeline_only {
        return timeline_figures(&root, &agent);
    }
    if o.history_only {
        return history_figures(&root, &agent, &o);
    }
    if o.hub_only {
        return crate::hub::hub_figures(&root, &agent);
    }
    if o.kernel_only {
        return crate::kernel::kernel_figures(&root, &agent, o.sockets, o.procs);
    }
    if o.developer_only {
        return crate::developer::developer_figures(
            &root,
            &agent,
            o.sockets,
            o.procs,
            o.json.as_deref(),
        );
    }

    let f = measure(&root, &agent, &o)?;
    print_figures(&f, &o);
    if let Some(path) = &o.json {
        let mut file = std::fs::File::create(path).map_err(|e| format!("{path}: {e}"))?;
        writeln!(
            file,
            "{}",
            serde_json::to_string_pretty(&figures_json(&f, &o)).unwrap_or_default()
        )
        .map_err(|e| e.to_string())?;
        eprintln!("xtask: wrote {path}");
    }
    Ok(())
}

/// Everything the full bench measures, for the table it prints and the JSON it writes.
struct Figures {
    /// ss, netstat and lsof on the same load: (name, median seconds).
    peers: Vec<(&'static str, Option<f64>)>,
    /// `portscope ls --json`, median seconds.
    cold: f64,
    steady: Option<f64>,
    /// The agent's CPU seconds and the seconds they were counted over.
    cpu: f64,
    elapsed: f64,
    rss_mib: f64,
    /// The WebSocket client's report at full load, idle, and under churn.
    idle: Value,
    churn: Value,
    /// The idle cost at [`SMALL`] sockets: (CPU %, steady refresh, the client's report).
    small: (f64, Option<f64>, Value),
    /// The dashboard's figures (`bench/browser.py`).
    page: Value,
    history: HistoryCost,
    lookup: Lookup,
    timeline: [(u32, Value); 2],
    developer: crate::developer::Developer,
    kernel: crate::kernel::Kernel,
}

impl Figures {
    fn peer(&self, name: &str) -> Option<f64> {
        self.peers
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, t)| *t)
    }

    fn latencies(&self) -> Vec<f64> {
        self.idle["latency_ms"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    }

    fn bytes_per_tick(report: &Value, key: &str) -> f64 {
        report[key].as_f64().unwrap_or(0.0) / 10.0
    }
}

/// The full bench's measurements, in order: the idle cost at [`SMALL`] sockets, then on the
/// big load ss/netstat/lsof and portscope side by side, the dashboard, churn, the history,
/// projects and the graph, `history PORT`, the timeline.
fn measure(root: &Path, agent: &Path, o: &Options) -> Result<Figures, String> {
    eprintln!("xtask: == idle cost with {SMALL} sockets and one client");
    let small_load = start_load(root, SMALL, 20, None)?;
    let small = {
        let serve = RunningAgent::start(agent)?;
        let before = cpu_seconds(serve.pid)?;
        let clock = Instant::now();
        let report = ws_client(root, serve.port, &serve.token, 20, 0, SETTLE)?;
        let cpu_percent =
            (cpu_seconds(serve.pid)? - before) / clock.elapsed().as_secs_f64() * 100.0;
        let refresh = serve.steady_refresh();
        (cpu_percent, refresh, report)
    };
    drop(small_load);

    eprintln!(
        "xtask: == opening {} sockets in {} processes",
        o.sockets, o.procs
    );
    let mut load = start_load(root, o.sockets, o.procs, None)?;

    eprintln!("xtask: == measuring ss, netstat and lsof");
    let peers: Vec<(&str, Option<f64>)> = [
        ("ss -tuna", "ss", &["-tuna"][..]),
        ("ss -tunap", "ss", &["-tunap"][..]),
        ("netstat -tunap", "netstat", &["-tunap"][..]),
        ("lsof -nP -i", "lsof", &["-nP", "-i"][..]),
    ]
    .into_iter()
    .map(|(name, program, args)| (name, median_wall(program, args, 5)))
    .collect();

    eprintln!("xtask: == measuring portscope");
    let agent_str = agent.to_str().ok_or("non-UTF-8 path")?;
    let cold = median_wall(agent_str, &["ls", "--json"], 5).ok_or("portscope ls failed")?;

    // The agent itself: steady refresh from its own log, CPU and memory from /proc.
    let serve = RunningAgent::start(agent)?;
    let (pid, port, token) = (serve.pid, serve.port, serve.token.clone());
    let cpu_before = cpu_seconds(pid)?;
    let clock = Instant::now();
    let idle = ws_client(root, port, &token, 10, 20, SETTLE)?;
    let elapsed = clock.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid)? - cpu_before;
    let rss_mib = rss_kib(pid)? as f64 / 1024.0;
    let steady = serve.steady_refresh();

    eprintln!("xtask: == measuring the dashboard in headless Chromium");
    // Chromium must keep up beside the load on this machine; when it does not, the other
    // figures are still measured, and the table and the JSON say why these are missing.
    let page = browser(
        root,
        &format!("http://127.0.0.1:{port}/?token={token}"),
        o.sockets * 9 / 10,
    )
    .unwrap_or_else(|e| {
        eprintln!("xtask: the dashboard's figures are missing: {e}");
        json!({ "error": e })
    });

    // Churn: a second, small load that replaces connections all the time, beside the big one
    // (which stays, so its teardown and TIME_WAIT leftovers do not count as churn).
    eprintln!("xtask: == measuring bytes under churn");
    let churn_load = start_load(root, 200, 2, Some(10.0))?;
    let churn = ws_client(root, port, &token, 10, 0, SETTLE)?;
    drop(serve);

    // Kernel events against polling on the same big load (before the churn load starts).
    drop(churn_load);
    let kernel = crate::kernel::measure(root, agent)?;
    let churn_load = start_load(root, 200, 2, Some(10.0))?;
    // The history's cost: the same big load and churn (20 connections and 2 listener restarts a
    // second), measured by an agent without history and one with it, side by side.
    eprintln!(
        "xtask: == measuring the history's cost under churn ({HISTORY_SECONDS} s, side by side)"
    );
    let history = history_cost(root, agent)?;
    drop(churn_load);
    drop(load.take());
    // Projects and the graph: loads of their own, in a git repository and outside any.
    let developer = crate::developer::measure(root, agent, o.sockets, o.procs)?;
    eprintln!("xtask: == measuring `history PORT` on a 30-day file");
    let lookup = history_lookup(root, agent)?;
    eprintln!("xtask: == measuring the timeline on a week of 200 ports");
    let timeline = [
        (1440, timeline_week(root, agent, 1440)?),
        (120, timeline_week(root, agent, 120)?),
    ];

    Ok(Figures {
        peers,
        cold,
        steady,
        cpu,
        elapsed,
        rss_mib,
        idle,
        churn,
        small,
        page,
        history,
        lookup,
        timeline,
        developer,
        kernel,
    })
}

/// The bench's table: each figure with its ratio to ss or its target.
fn print_figures(f: &Figures, o: &Options) {
    let (peers, cold, steady, cpu, elapsed, rss_mib) =
        (&f.peers, f.cold, f.steady, f.cpu, f.elapsed, f.rss_mib);
    let (idle, small, page) = (&f.idle, &f.small, &f.page);
    let peer = |name: &str| f.peer(name);
    let latencies = f.latencies();
    let (p50, p95) = (percentile(&latencies, 50.0), percentile(&latencies, 95.0));
    let idle_bytes_per_tick = Figures::bytes_per_tick(idle, "idle_bytes");
    let churn_bytes_per_tick = Figures::bytes_per_tick(&f.churn, "idle_bytes");
    let cpu_per_tick_ms = cpu / elapsed.max(1.0) * 1e3;
    let page_ms = |key: &str| page[key].as_f64().unwrap_or(f64::NAN);
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2} ×", a / b),
        _ => "n/a".into(),
    };
    let secs = |t: Option<f64>| t.map_or("did not run".into(), |t| format!("{:.3} s", t));
    println!();
    println!(
        "portscope bench: {} sockets held by {} processes, on this machine",
        o.sockets, o.procs
    );
    println!("  machine: {}", machine());
    println!();
    for (name, t) in peers {
        println!("  {name:<16} {}", secs(*t));
    }
    println!();
    println!("  figure                                 value            ratio / target");
    println!(
        "  cold snapshot with owners (ls --json)  {:<16} {} of ss -tunap (target ≤ 1.0 ×)",
        secs(Some(cold)),
        ratio(Some(cold), peer("ss -tunap"))
    );
    println!(
        "  steady refresh with owners (median)    {:<16} {} of ss -tuna (target ≤ 1.5 ×)",
        secs(steady),
        ratio(steady, peer("ss -tuna"))
    );
    println!(
        "  open → visible, p50 / p95              {:.0} / {:.0} ms      tick 1000 ms (target p95 ≤ 1050 ms)",
        p50.unwrap_or(f64::NAN),
        p95.unwrap_or(f64::NAN)
    );
    println!(
        "  agent CPU per tick, one client         {cpu_per_tick_ms:.1} ms           {:.2} % of a core",
        cpu / elapsed * 100.0
    );
    println!("  agent RSS                              {rss_mib:.1} MiB         (target < 40 MiB)");
    println!(
        "  bytes per tick, idle                   {idle_bytes_per_tick:.0} B + {:.0} B keep-alive (target 0 beyond keep-alives)",
        idle["idle_keepalive_bytes"].as_f64().unwrap_or(0.0) / 10.0
    );
    println!(
        "  idle agent, {SMALL} sockets, one client  {:.2} % of a core (refresh {})   (target < 1 %)",
        small.0,
        secs(small.1)
    );
    println!("  bytes per tick, churn (20 changes/s)   {churn_bytes_per_tick:.0} B");
    if let Some(e) = page.get("error") {
        println!("  dashboard: not measured ({e})");
    } else {
        println!(
            "  dashboard: {} rows, {} in the page, first view {:.1} s",
            page["rows"],
            page["dom_rows"],
            page_ms("load_seconds")
        );
        println!(
            "  ~100-row delta applied and drawn       {:.1} ms median, {:.1} ms max (target < 16 ms)",
            page_ms("delta_ms_median"),
            page_ms("delta_ms_max")
        );
        println!(
            "  sort / filter, drawn                   {:.1} / {:.1} ms median",
            page_ms("sort_ms_median"),
            page_ms("filter_ms_median")
        );
        println!(
            "  scroll: wheel step / jump, drawn       {:.1} / {:.1} ms median",
            page_ms("scroll_step_ms_median"),
            page_ms("scroll_ms_median")
        );
        println!(
            "  floor: one cell changed and drawn      {:.1} ms median (this machine's Chromium)",
            page_ms("floor_ms_median")
        );
    }
    println!(
        "  first snapshot to a client             {:.0} KiB in {} part(s), {:.3} s",
        idle["snapshot_bytes"].as_f64().unwrap_or(0.0) / 1024.0,
        idle["snapshot_parts"],
        idle["snapshot_seconds"].as_f64().unwrap_or(0.0)
    );

    print_history(&f.history, &f.lookup);
    print_timeline(&f.timeline);
    crate::developer::print(&f.developer);
    crate::kernel::print(&f.kernel);
}

/// The bench's figures as `--json` writes them (the README's table comes from them).
fn figures_json(f: &Figures, o: &Options) -> Value {
    let (history, lookup, small) = (&f.history, &f.lookup, &f.small);
    let latencies = f.latencies();
    json!({
        "sockets": o.sockets,
        "processes": o.procs,
        "machine": machine(),
        "peers_seconds": f.peers.iter().map(|(n, t)| (n.to_string(), json!(t))).collect::<serde_json::Map<_, _>>(),
        "cold_snapshot_seconds": f.cold,
        "steady_refresh_seconds": f.steady,
        "open_to_visible_ms": {
            "p50": percentile(&latencies, 50.0),
            "p95": percentile(&latencies, 95.0),
            "samples": latencies,
        },
        "cpu_seconds_per_tick": f.cpu / f.elapsed.max(1.0),
        "rss_mib": f.rss_mib,
        "bytes_per_tick_idle": Figures::bytes_per_tick(&f.idle, "idle_bytes"),
        "keepalive_bytes_per_tick_idle": Figures::bytes_per_tick(&f.idle, "idle_keepalive_bytes"),
        "idle_cpu_percent_1k_sockets": small.0,
        "dashboard": f.page,
        "steady_refresh_seconds_1k_sockets": small.1,
        "bytes_per_tick_idle_1k_sockets": small.2["idle_bytes"].as_f64().unwrap_or(0.0) / 20.0,
        "bytes_per_tick_churn": Figures::bytes_per_tick(&f.churn, "idle_bytes"),
        "history": {
            "cpu_seconds_per_tick_with": history.cpu_with,
            "cpu_seconds_per_tick_without": history.cpu_without,
            "attributed_seconds_per_tick": history.attributed,
            "writer_cpu_seconds_per_tick": history.writer,
            "tick_share_seconds": history.tick_share,
            "bytes_per_day": history.bytes_per_day,
            "lookup_port_seconds": lookup.port_seconds,
            "lookup_at_seconds": lookup.at_seconds,
            "lookup_file_bytes": lookup.file_bytes,
            "timeline_week": f.timeline
                .iter()
                .map(|(m, t)| (m.to_string(), t.clone()))
                .collect::<serde_json::Map<_, _>>(),
        },
        "developer": crate::developer::json(&f.developer),
        "kernel": crate::kernel::json(&f.kernel),
    })
}

/// `--history-only`: the big load with churn, the history's cost on it, then the lookup.
fn history_figures(root: &Path, agent: &Path, o: &Options) -> Result<(), String> {
    eprintln!(
        "xtask: == opening {} sockets in {} processes, and churn",
        o.sockets, o.procs
    );
    let load = start_load(root, o.sockets, o.procs, None)?;
    let churn = start_load(root, 200, 2, Some(10.0))?;
    eprintln!(
        "xtask: == measuring the history's cost under churn ({HISTORY_SECONDS} s, side by side)"
    );
    let history = history_cost(root, agent)?;
    drop(churn);
    drop(load);
    eprintln!("xtask: == measuring `history PORT` on a 30-day file");
    let lookup = history_lookup(root, agent)?;
    eprintln!("xtask: == measuring the timeline on a week of 200 ports");
    let timeline = [
        (1440, timeline_week(root, agent, 1440)?),
        (120, timeline_week(root, agent, 120)?),
    ];
    println!();
    println!(
        "portscope bench (history): {} sockets held by {} processes, 20 connections and 2 listener restarts a second",
        o.sockets, o.procs
    );
    println!("  machine: {}", machine());
    print_history(&history, &lookup);
    print_timeline(&timeline);
    Ok(())
}

/// `--timeline-only`: the dashboard's timeline on a week of 200 ports, nothing else.
fn timeline_figures(root: &Path, agent: &Path) -> Result<(), String> {
    eprintln!("xtask: == measuring the timeline on a week of 200 ports");
    let timeline = [
        (1440, timeline_week(root, agent, 1440)?),
        (120, timeline_week(root, agent, 120)?),
    ];
    println!();
    println!("portscope bench (timeline)");
    println!("  machine: {}", machine());
    print_timeline(&timeline);
    Ok(())
}

fn print_timeline(runs: &[(u32, Value)]) {
    for (minutes, t) in runs {
        print_timeline_run(*minutes, t);
    }
}

fn print_timeline_run(minutes: u32, t: &Value) {
    let ms = |key: &str| t[key].as_f64().unwrap_or(f64::NAN);
    println!(
        "  timeline, a week of 200 ports restarted every {minutes} min: {} ({} SVG elements) drawn {:.0} ms after \"Last week\"; zoom / pan {:.1} / {:.1} ms median to the next frame{}",
        t["count"].as_str().unwrap_or("?"),
        t["svg_elements"],
        ms("week_ms"),
        ms("zoom_ms_median"),
        ms("pan_ms_median"),
        t["note"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    );
}

fn print_history(history: &HistoryCost, lookup: &Lookup) {
    println!(
        "  history: agent CPU per tick            {:.1} ms with, {:.1} ms without: {:+.1} % (side by side; their order in a tick biases it)",
        history.cpu_with * 1e3,
        history.cpu_without * 1e3,
        (history.cpu_with / history.cpu_without - 1.0) * 100.0
    );
    println!(
        "  history: its own share                 at most {:.2} ms a tick ({:.2} ms writer thread CPU, read in 10 ms steps, + the refresher's time in it): {:.1} % of the agent's CPU (target < 5 %)",
        history.attributed * 1e3,
        history.writer * 1e3,
        history.attributed / history.cpu_with * 100.0
    );
    println!(
        "  history: its share of a refresh        {:.2} ms median wall time (counting connections, queuing writes; the writer thread is in the CPU figure)",
        history.tick_share.unwrap_or(f64::NAN) * 1e3
    );
    println!(
        "  history: file growth at this churn     {:.1} MiB a day: {:.0} events and {:.0} connection rows a day ({} bytes after the run; capped at 200 MB)",
        history.bytes_per_day / (1 << 20) as f64,
        history.events_per_day,
        history.rows_per_day,
        history.bytes
    );
    println!(
        "  history PORT on a 30-day file          {:.1} ms median, --at {:.1} ms ({:.0} MiB: {} events, {} connection minutes) (target < 50 ms)",
        lookup.port_seconds * 1e3,
        lookup.at_seconds * 1e3,
        lookup.file_bytes as f64 / (1 << 20) as f64,
        lookup.events,
        lookup.minutes
    );
}

/// Seconds each agent of the history comparison runs.
const HISTORY_SECONDS: u64 = 30;

struct HistoryCost {
    /// CPU seconds per tick of the agent without history, and with it.
    cpu_without: f64,
    cpu_with: f64,
    /// What the history itself takes of the agent with it, per second: its writer thread's CPU
    /// plus the refresher's time in it (wall time: an upper bound of that CPU).
    attributed: f64,
    writer: f64,
    /// The history's share of a refresh (median seconds), from the agent's log.
    tick_share: Option<f64>,
    /// The file's live bytes and rows after the run, and those rates over a day.
    bytes: u64,
    bytes_per_day: f64,
    events_per_day: f64,
    rows_per_day: f64,
}

/// Runs an agent without history and one with it side by side on the load in place, for
/// [`HISTORY_SECONDS`] after a settling tick.
fn history_cost(root: &Path, agent: &Path) -> Result<HistoryCost, String> {
    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    // Both at once, on the same load at the same moments: the churn and the machine drift
    // over a minute, which made two runs one after the other differ by more than 5 %.
    let clock = Instant::now();
    let without = RunningAgent::start_with(agent, &[], None)?;
    let with = RunningAgent::start_with(agent, &[], Some(state.path()))?;
    std::thread::sleep(std::time::Duration::from_secs(3));
    let before = (
        cpu_seconds(without.pid)?,
        cpu_seconds(with.pid)?,
        thread_cpu_seconds(with.pid, "history")?,
        with.history_ticks.lock().unwrap().len(),
    );
    let measured = Instant::now();
    std::thread::sleep(std::time::Duration::from_secs(HISTORY_SECONDS));
    let seconds = measured.elapsed().as_secs_f64();
    let cpu_without = (cpu_seconds(without.pid)? - before.0) / seconds;
    let cpu_with = (cpu_seconds(with.pid)? - before.1) / seconds;
    let writer = (thread_cpu_seconds(with.pid, "history")? - before.2) / seconds;
    let (tick_share, ticks_total) = {
        let ticks = with.history_ticks.lock().unwrap();
        let window: f64 = ticks[before.3.min(ticks.len())..].iter().sum();
        (median(&ticks[1.min(ticks.len())..]), window / seconds)
    };
    drop(with);
    drop(without);
    let ran = clock.elapsed().as_secs_f64();
    let file = state.path().join("portscope/history.db");
    let size = python_json(
        root,
        "history_size.py",
        &[file.to_string_lossy().into_owned()],
    )?;
    let per_day = |key: &str| size[key].as_f64().unwrap_or(f64::NAN) / ran * 86_400.0;
    Ok(HistoryCost {
        cpu_without,
        cpu_with,
        attributed: writer + ticks_total,
        writer,
        tick_share,
        bytes: size["bytes"].as_u64().unwrap_or(0),
        bytes_per_day: per_day("bytes"),
        events_per_day: per_day("events"),
        rows_per_day: per_day("connection_rows"),
    })
}

/// The timeline on a week of 200 ports, each restarted every `minutes`: the page's figures
/// (`bench/timeline.py`).
fn timeline_week(root: &Path, agent: &Path, minutes: u32) -> Result<Value, String> {
    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = made_history(agent, state.path())?;
    python_json(
        root,
        "history30.py",
        &[
            file.to_string_lossy().into_owned(),
            "7".into(),
            minutes.to_string(),
        ],
    )?;
    let path = file.to_str().ok_or("non-UTF-8 path")?;
    let serve = RunningAgent::start_with(agent, &["--history", path], Some(state.path()))?;
    python_json(
        root,
        "timeline.py",
        &[format!(
            "http://127.0.0.1:{}/?token={}",
            serve.port, serve.token
        )],
    )
}

/// A history file the agent made (its schema) in `state`.
fn made_history(agent: &Path, state: &Path) -> Result<std::path::PathBuf, String> {
    let file = state.join("portscope/history.db");
    // Its writer thread makes the file soon after the URL is printed.
    let _maker = RunningAgent::start_with(agent, &[], Some(state))?;
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while !file.exists() {
        if Instant::now() > deadline {
            return Err(format!(
                "the agent made no history file at {}",
                file.display()
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    Ok(file)
}

struct Lookup {
    port_seconds: f64,
    at_seconds: f64,
    file_bytes: u64,
    events: u64,
    minutes: u64,
}

/// `portscope history PORT` and `--at` on a file with 30 days of a busy machine: the agent
/// makes the file (its schema), `bench/history30.py` fills it.
fn history_lookup(root: &Path, agent: &Path) -> Result<Lookup, String> {
    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = made_history(agent, state.path())?;
    let filled = python_json(root, "history30.py", &[file.to_string_lossy().into_owned()])?;
    let agent = agent.to_str().ok_or("non-UTF-8 path")?;
    let path = file.to_str().ok_or("non-UTF-8 path")?;
    let port_seconds = median_wall(agent, &["history", "8100", "--history", path], 11)
        .ok_or("portscope history failed")?;
    let at_seconds = median_wall(
        agent,
        &["history", "8100", "--at", "15d", "--history", path],
        11,
    )
    .ok_or("portscope history --at failed")?;
    Ok(Lookup {
        port_seconds,
        at_seconds,
        file_bytes: std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0),
        events: filled["events"].as_u64().unwrap_or(0),
        minutes: filled["connection_minutes"].as_u64().unwrap_or(0),
    })
}

/// The peers to compare with — `ss` (iproute2), `netstat` (net-tools), `lsof` — and the browser
/// the dashboard's figures are measured in.
fn install_tools() -> Result<(), String> {
    crate::install_debian(
        "the benchmark's peers and browser",
        &[
            ("net-tools", "/usr/bin/netstat"),
            ("lsof", "/usr/bin/lsof"),
            ("iproute2", "/usr/bin/ss"),
            ("chromium", "/usr/bin/chromium"),
            ("chromium-driver", "/usr/bin/chromedriver"),
        ],
    )
}
