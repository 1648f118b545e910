//! `cargo xtask bench --hub-only`: a hub's cost. Three "machines" — network namespaces of our
//! own, each joined by a veth pair (10.231.24N.x) — each hold 5 000 TCP sockets with churn
//! (`bench/load.py` run inside) and an agent sharing on its address; a hub in this namespace
//! follows the three (`--peers`). Measured over 30 s: the hub's CPU (a share of one core) and
//! resident memory, with no dashboard and then with one WebSocket client per peer (what a
//! browser showing all hosts costs it), beside one peer agent's own CPU for scale.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::rig::{Guarded, RunningAgent, cpu_seconds, rss_kib};

const PEERS: usize = 3;
const SOCKETS: usize = 5_000;
const SECONDS: u64 = 30;

/// One namespace with its load and its sharing agent; removed on drop.
struct Machine {
    netns: String,
    addr: String,
    token: String,
    fingerprint: String,
    agent: Guarded,
    _load: Guarded,
    _config: tempfile::TempDir,
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = self.agent.0.kill();
        let _ = self.agent.0.wait();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let status = Command::new("ip")
        .args(args)
        .status()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?} failed (the hub benchmark makes network namespaces: run it as root)"
        ))
    }
}

impl Machine {
    fn start(root: &Path, agent: &Path, i: usize) -> Result<Machine, String> {
        let n = 240 + i;
        let netns = format!("portscope-bench-{n}");
        let (here, there) = (format!("psb{n}"), format!("psbp{n}"));
        let _ = Command::new("ip")
            .args(["netns", "del", &netns])
            .stderr(Stdio::null())
            .status();
        ip(&["netns", "add", &netns])?;
        ip(&["link", "add", &here, "type", "veth", "peer", "name", &there])?;
        ip(&["link", "set", &there, "netns", &netns])?;
        ip(&["addr", "add", &format!("10.231.{n}.1/24"), "dev", &here])?;
        ip(&["link", "set", &here, "up"])?;
        let addr = format!("10.231.{n}.2");
        ip(&[
            "-n",
            &netns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            &there,
        ])?;
        ip(&["-n", &netns, "link", "set", &there, "up"])?;
        ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        // The load: 5 000 sockets in 10 processes, one pair replaced 10 times a second.
        let load = crate::rig::start_load_in(root, Some(&netns), SOCKETS, 10, Some(10.0))?
            .ok_or("the load did not start")?;
        let config = tempfile::tempdir().map_err(|e| e.to_string())?;
        let token = format!("bench-peer-{n}-{}", "0".repeat(32));
        let mut child = Command::new("ip")
            .args(["netns", "exec", &netns])
            .arg(agent)
            .args(["serve", "--share", &addr, "--port", "7678", "--no-history"])
            .env("XDG_CONFIG_HOME", config.path())
            .env("XDG_STATE_HOME", config.path())
            .env("XDG_RUNTIME_DIR", config.path())
            .env("PORTSCOPE_TOKEN", &token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the peer agent: {e}"))?;
        let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let _url = lines.next().ok_or("the peer printed no URL")?;
        let print = lines
            .next()
            .ok_or("the peer printed no fingerprint")?
            .map_err(|e| e.to_string())?;
        let fingerprint = print
            .strip_prefix("TLS certificate SHA-256 fingerprint: ")
            .ok_or(format!("no fingerprint in {print:?}"))?
            .to_owned();
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Machine {
            netns,
            addr,
            token,
            fingerprint,
            agent: Guarded(child),
            _load: load,
            _config: config,
        })
    }

    fn entry(&self, name: &str) -> String {
        format!(
            "[[peer]]\nname = \"{name}\"\nurl = \"https://{}:7678/\"\ntoken = \"{}\"\nfingerprint = \"{}\"\n",
            self.addr, self.token, self.fingerprint
        )
    }
}

pub fn hub_figures(root: &Path, agent: &Path) -> Result<(), String> {
    eprintln!("xtask: == a hub with {PEERS} peers of {SOCKETS} sockets each");
    let machines = (0..PEERS)
        .map(|i| Machine::start(root, agent, i))
        .collect::<Result<Vec<_>, _>>()?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("peers.toml");
    let entries: String = machines
        .iter()
        .enumerate()
        .map(|(i, m)| m.entry(&format!("peer{i}")))
        .collect();
    std::fs::write(&file, entries).map_err(|e| e.to_string())?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
    }
    let file = file.to_str().ok_or("non-UTF-8 path")?;
    let hub = RunningAgent::start_with(agent, &["--peers", file], None)?;
    // Ready when every peer is live with its load.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let hosts = hosts(hub.port, &hub.token);
        let ready = hosts.len() == PEERS
            && hosts
                .iter()
                .all(|(status, sockets)| status == "live" && *sockets >= SOCKETS);
        if ready {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("the peers did not all become live: {hosts:?}"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let peer_pid = machines[0].agent.0.id();
    let measure = |what: &str| -> Result<(f64, f64, f64), String> {
        eprintln!("xtask: == {SECONDS} s {what}");
        let (hub_before, peer_before) = (cpu_seconds(hub.pid)?, cpu_seconds(peer_pid)?);
        let clock = Instant::now();
        std::thread::sleep(Duration::from_secs(SECONDS));
        let wall = clock.elapsed().as_secs_f64();
        let hub_cpu = (cpu_seconds(hub.pid)? - hub_before) / wall * 100.0;
        // `ip netns exec` execs the agent: the child's pid is the agent's.
        let peer_cpu = (cpu_seconds(peer_pid)? - peer_before) / wall * 100.0;
        let rss = rss_kib(hub.pid)? as f64 / 1024.0;
        Ok((hub_cpu, peer_cpu, rss))
    };
    let quiet = measure("with no dashboard")?;
    let clients: Vec<Guarded> = (0..PEERS)
        .map(|i| {
            Command::new("python3")
                .arg(root.join("bench/wsclient.py"))
                .args([
                    hub.port.to_string(),
                    hub.token.clone(),
                    (SECONDS + 20).to_string(),
                    "0".into(),
                    "1".into(),
                    format!("peer{i}"),
                ])
                .stdout(Stdio::null())
                .spawn()
                .map(Guarded)
                .map_err(|e| format!("cannot start a client: {e}"))
        })
        .collect::<Result<_, _>>()?;
    std::thread::sleep(Duration::from_secs(3));
    let watched = measure("with one WebSocket client per peer")?;
    drop(clients);
    println!();
    println!(
        "A hub with {PEERS} peers of {SOCKETS} sockets each (10 pairs replaced a second on each):"
    );
    for (what, (hub_cpu, peer_cpu, rss)) in
        [("no dashboard", quiet), ("a client per peer", watched)]
    {
        println!(
            "  {what:<18} hub CPU {hub_cpu:5.1} % of a core, {rss:5.1} MiB resident; one peer's own agent {peer_cpu:5.1} %"
        );
    }
    Ok(())
}

/// Each host's status and socket count from the hub's `GET /api/v1/hosts`, peers only.
fn hosts(port: u16, token: &str) -> Vec<(String, usize)> {
    use std::io::{Read, Write};
    let answer = || -> std::io::Result<String> {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port))?;
        write!(
            conn,
            "GET /api/v1/hosts HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        )?;
        let mut text = String::new();
        conn.read_to_string(&mut text)?;
        Ok(text)
    };
    let text = answer().unwrap_or_default();
    let json = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    let body: Value = serde_json::from_str(json).unwrap_or_default();
    body["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["local"] == false)
        .map(|h| {
            (
                h["status"].as_str().unwrap_or_default().to_owned(),
                h["sockets"].as_u64().unwrap_or(0) as usize,
            )
        })
        .collect()
}
