//! The kernel events' figures (#22), in the full `cargo xtask bench` and alone with
//! `--kernel-only`: on the same load (default 21 000 TCP sockets), the agent polling
//! (`--no-kernel-events`) and the agent fed by the kernel, side by side with `ss -tuna`:
//! CPU per second idle with a dashboard open, RSS with the history on, change → WebSocket
//! latency, listeners of 150 ms and of no time at all, the latency of a failed bind's and a
//! refused connect's events, and churn (1 000 connections a second for 30 s: events lost, and
//! the model against `ss` afterwards).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::rig::{
    RunningAgent, cpu_seconds, median, median_wall, percentile, python_json, rss_kib, start_load,
    ws_client,
};

/// Churn: connections opened and closed per second, and for how long.
const CHURN_RATE: u32 = 1000;
const CHURN_SECONDS: u32 = 30;
/// How long the idle CPU is counted, a dashboard (a WebSocket client) open.
const IDLE_SECONDS: u64 = 30;

/// One way of learning of changes, measured.
pub(crate) struct Mode {
    name: &'static str,
    cpu_per_second: f64,
    rss_mib: f64,
    latency_ms: Vec<f64>,
    /// `bench/kernel.py`'s report.
    events: Value,
    churn_cpu_percent: f64,
    /// From `/metrics` after the churn: kernel changes received and lost.
    received: Option<f64>,
    lost: Option<f64>,
    /// The model against `ss -tan` after the churn: (listeners and connections `ss` shows
    /// that the model lacks, those the model holds that `ss` does not).
    model_vs_ss: (usize, usize),
}

pub(crate) struct Kernel {
    ss_tuna: Option<f64>,
    modes: Vec<Mode>,
}

/// `--kernel-only`: makes the load, measures and prints.
pub(crate) fn kernel_figures(
    root: &Path,
    agent: &Path,
    sockets: usize,
    procs: usize,
) -> Result<(), String> {
    eprintln!("xtask: == opening {sockets} sockets in {procs} processes");
    let load = start_load(root, sockets, procs, None)?;
    let k = measure(root, agent)?;
    drop(load);
    print(&k);
    Ok(())
}

/// The figures on the load that is open now.
pub(crate) fn measure(root: &Path, agent: &Path) -> Result<Kernel, String> {
    let ss_tuna = median_wall("ss", &["-tuna"], 5);
    let mut modes = Vec::new();
    for (name, more) in [("poll", &["--no-kernel-events"][..]), ("kernel", &[][..])] {
        eprintln!("xtask: == kernel events: the agent with changes by {name}");
        modes.push(measure_mode(root, agent, name, more)?);
    }
    Ok(Kernel { ss_tuna, modes })
}

fn measure_mode(
    root: &Path,
    agent: &Path,
    name: &'static str,
    more: &[&str],
) -> Result<Mode, String> {
    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let serve = RunningAgent::start_as_given(agent, more, Some(state.path()))?;
    let (pid, port, token) = (serve.pid, serve.port, serve.token.clone());
    std::thread::sleep(Duration::from_secs(3));
    let before = cpu_seconds(pid)?;
    let clock = Instant::now();
    ws_client(root, port, &token, IDLE_SECONDS, 0, 2.5)?;
    let cpu_per_second = (cpu_seconds(pid)? - before) / clock.elapsed().as_secs_f64();
    let rss_mib = rss_kib(pid)? as f64 / 1024.0;
    let latency = ws_client(root, port, &token, 0, 20, 2.5)?;
    let latency_ms: Vec<f64> = latency["latency_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    let before = cpu_seconds(pid)?;
    let clock = Instant::now();
    let events = python_json(
        root,
        "kernel.py",
        &[
            port.to_string(),
            token.clone(),
            CHURN_RATE.to_string(),
            CHURN_SECONDS.to_string(),
        ],
    )?;
    let churn_cpu_percent = (cpu_seconds(pid)? - before) / clock.elapsed().as_secs_f64() * 100.0;
    let metrics = get(port, &token, "/metrics")?;
    let metric = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("portscope_{name} ")))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let model_vs_ss = compare_with_ss(port, &token)?;
    Ok(Mode {
        name,
        cpu_per_second,
        rss_mib,
        latency_ms,
        events,
        churn_cpu_percent,
        received: metric("kernel_events"),
        lost: metric("kernel_events_lost"),
        model_vs_ss,
    })
}

/// One `GET` with the token over HTTP/1.0 (no chunked body); the body.
fn get(port: u16, token: &str, path: &str) -> Result<String, String> {
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .map_err(|e| format!("GET {path}: {e}"))?;
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .ok_or_else(|| format!("GET {path}: no body"))
}

/// Listeners and established connections: the agent's model against `ss -tan`, after two
/// quiet seconds, leaving out the agent's own port (the request itself).
fn compare_with_ss(port: u16, token: &str) -> Result<(usize, usize), String> {
    std::thread::sleep(Duration::from_secs(2));
    let out = std::process::Command::new("ss")
        .args(["-tanH"])
        .output()
        .map_err(|e| format!("ss: {e}"))?;
    let parse = |text: &str| text.trim_start_matches('[').replace("]:", ":");
    let mut truth = BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(state), Some(local), Some(peer)) = (f.first(), f.get(3), f.get(4)) else {
            continue;
        };
        let state = match *state {
            "LISTEN" => "LISTEN",
            "ESTAB" => "ESTABLISHED",
            _ => continue,
        };
        let local: Option<SocketAddr> = local.parse().ok().or_else(|| parse(local).parse().ok());
        let Some(local) = local else { continue };
        let peer = (state != "LISTEN")
            .then(|| peer.parse::<SocketAddr>().ok())
            .flatten();
        truth.insert((state.to_owned(), local, peer));
    }
    let body = get(port, token, "/api/v1/snapshot")?;
    let snapshot: Value = serde_json::from_str(&body).map_err(|e| format!("snapshot: {e}"))?;
    let mut model = BTreeSet::new();
    for s in snapshot["sockets"].as_array().into_iter().flatten() {
        let state = s["state"].as_str().unwrap_or_default();
        if s["proto"] != "tcp" || !matches!(state, "LISTEN" | "ESTABLISHED") {
            continue;
        }
        let addr = |a: &Value, p: &Value| -> Option<SocketAddr> {
            Some(SocketAddr::new(
                a.as_str()?.parse().ok()?,
                u16::try_from(p.as_u64()?).ok()?,
            ))
        };
        let Some(local) = addr(&s["local_addr"], &s["local_port"]) else {
            continue;
        };
        let peer = addr(&s["remote_addr"], &s["remote_port"]);
        model.insert((state.to_owned(), local, peer));
    }
    let ours = |(_, local, peer): &(String, SocketAddr, Option<SocketAddr>)| {
        local.port() == port || peer.is_some_and(|p| p.port() == port)
    };
    let missing = truth.difference(&model).filter(|e| !ours(e)).count();
    let extra = model.difference(&truth).filter(|e| !ours(e)).count();
    Ok((missing, extra))
}

pub(crate) fn print(k: &Kernel) {
    let ss = k.ss_tuna.unwrap_or(f64::NAN);
    println!();
    println!(
        "  kernel events (#22), the same load; ss -tuna takes {:.3} s",
        ss
    );
    println!("  figure                                 poll             kernel           target");
    let both = |f: &dyn Fn(&Mode) -> String| {
        let cell = |name: &str| {
            k.modes
                .iter()
                .find(|m| m.name == name)
                .map_or("n/a".into(), f)
        };
        (cell("poll"), cell("kernel"))
    };
    let row = |label: &str, f: &dyn Fn(&Mode) -> String, target: &str| {
        let (poll, kernel) = both(f);
        println!("  {label:<38} {poll:<16} {kernel:<16} {target}");
    };
    row(
        "CPU per second, idle, a dashboard open",
        &|m| {
            format!(
                "{:.1} ms ({:.2} ×)",
                m.cpu_per_second * 1e3,
                m.cpu_per_second / ss
            )
        },
        "≤ 0.25 × one ss -tuna",
    );
    row(
        "RSS, history on",
        &|m| format!("{:.1} MiB", m.rss_mib),
        "< 40 MiB",
    );
    row(
        "open → on the stream, p50 / p95",
        &|m| {
            format!(
                "{:.0} / {:.0} ms",
                percentile(&m.latency_ms, 50.0).unwrap_or(f64::NAN),
                percentile(&m.latency_ms, 95.0).unwrap_or(f64::NAN)
            )
        },
        "p95 < 50 ms",
    );
    row(
        "listeners of 150 ms recorded",
        &|m| format!("{} of 5", m.events["brief_150ms"]),
        "5 of 5",
    );
    row(
        "listeners of no time recorded",
        &|m| format!("{} of 5", m.events["brief_0ms"]),
        "(every listener)",
    );
    let ms = |m: &Mode, key: &str| {
        let v: Vec<f64> = m.events[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        match (median(&v), v.len()) {
            (Some(med), n) => format!("{med:.1} ms ({n}/5)"),
            (None, _) => "none".into(),
        }
    };
    row(
        "failed bind → event, median",
        &|m| ms(m, "bind_failed_ms"),
        "< 100 ms",
    );
    row(
        "refused connect → event, median",
        &|m| ms(m, "connect_refused_ms"),
        "< 100 ms",
    );
    row(
        "churn: connections, agent CPU",
        &|m| {
            format!(
                "{} in {:.0} s, {:.0} %",
                m.events["churn_connections"],
                m.events["churn_seconds"].as_f64().unwrap_or(f64::NAN),
                m.churn_cpu_percent
            )
        },
        &format!("{CHURN_RATE}/s for {CHURN_SECONDS} s"),
    );
    row(
        "churn: kernel events, lost",
        &|m| {
            format!(
                "{:.0}, {:.0}",
                m.received.unwrap_or(0.0),
                m.lost.unwrap_or(0.0)
            )
        },
        "none lost unsaid",
    );
    row(
        "after it: model vs ss (missing, extra)",
        &|m| format!("{}, {}", m.model_vs_ss.0, m.model_vs_ss.1),
        "0, 0",
    );
}

pub(crate) fn json(k: &Kernel) -> Value {
    json!({
        "ss_tuna_seconds": k.ss_tuna,
        "modes": k.modes.iter().map(|m| json!({
            "changes": m.name,
            "cpu_seconds_per_second_idle": m.cpu_per_second,
            "rss_mib": m.rss_mib,
            "latency_ms": m.latency_ms,
            "events": m.events,
            "churn_cpu_percent": m.churn_cpu_percent,
            "kernel_events": m.received,
            "kernel_events_lost": m.lost,
            "model_vs_ss_missing": m.model_vs_ss.0,
            "model_vs_ss_extra": m.model_vs_ss.1,
        })).collect::<Vec<_>>(),
    })
}
