//! Many machines (#13): a hub (`--peers`) showing agents that run in network namespaces of
//! their own (`support/machine.rs`), its refusals, the doctor on a peer, `peer add|list`; and
//! fleets: `GET /metrics` behind the token, in the OpenMetrics text format, and a real
//! Prometheus (Debian's package) scraping a real agent with its token from a `credentials_file`.

use std::time::Duration;

use crate::support::machine::{Machine, peers_file};
use crate::support::servers::Prometheus;
use crate::support::{Agent, Situation, free_port, http, wait_for};

#[test]
fn metrics_need_the_token_and_name_each_listener() {
    let agent = Agent::start();
    let s = Situation::start(&["keep", "127.0.0.1"]);
    let client = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let host = agent.host();
    let refused = http(agent.port, "GET", "/metrics", &[("Host", &host)]);
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(!refused.body.contains("portscope_"), "{}", refused.body);
    let wrong = http(
        agent.port,
        "GET",
        "/metrics",
        &[("Host", &host), ("Authorization", "Bearer not-the-token")],
    );
    assert_eq!(wrong.status, 401, "{}", wrong.body);

    let line = format!(
        r#"portscope_listen_info{{proto="tcp",family="ipv4",addr="127.0.0.1",port="{}",process="python3",exposure="loopback",project="{}"}} 1"#,
        s.port,
        // The listener's process takes its parent's project: this test's checkout.
        crate::support::own_project_name()
    );
    let connections = format!(
        r#"portscope_listener_connections{{proto="tcp",addr="127.0.0.1",port="{}"}} 1"#,
        s.port
    );
    let res = wait_for("the listener in /metrics", Duration::from_secs(10), || {
        let res = agent.get("/metrics");
        (res.body.contains(&line) && res.body.contains(&connections)).then_some(res)
    });
    assert_eq!(res.status, 200);
    assert!(
        res.header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        res.headers
    );
    assert!(res.body.ends_with("# EOF\n"), "{}", res.body);
    // Only listeners are series of their own: the connection's ports are in no label.
    let client_port = client.local_addr().unwrap().port().to_string();
    assert!(
        !res.body.contains(&format!("\"{client_port}\"")),
        "a connection's port is a label: {}",
        res.body
    );
    // The agent counts its own scans (the refresher observes each).
    let scans = res
        .body
        .lines()
        .find_map(|l| l.strip_prefix("portscope_scan_duration_seconds_count "))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{}", res.body));
    assert!(scans >= 1, "{}", res.body);
}

/// The README's PromQL: listeners on all interfaces across the fleet.
const ALL_INTERFACES: &str =
    r#"count by (instance, port, process) (portscope_listen_info{exposure="all"})"#;
/// The README's PromQL: ports that more than one program held in the last hour.
const MOVED: &str = "count by (instance, port) (count by (instance, port, process) \
    (max_over_time(portscope_listen_info[1h]))) > 1";

/// A token file as `--metrics-token-file` wants it: the user's, mode 0600.
fn scrape_token_file(dir: &std::path::Path, token: &str, mode: u32) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join("scrape.token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    file
}

/// The scrape-only token reads `GET /metrics` and nothing else: the API and the WebSocket
/// answer 401 `metrics_only`; the agent's own token still reads the metrics. A token file others
/// may read, a link, or one holding the agent's own token are refused at start (exit 2).
#[test]
fn a_scrape_only_token_reads_the_metrics_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let scrape = "scrape-".repeat(6);
    let file = scrape_token_file(dir.path(), &scrape, 0o600);
    let agent = Agent::start_with(&["--metrics-token-file", file.to_str().unwrap()]);
    let get = |path: &str, token: &str| {
        crate::support::http(
            agent.port,
            "GET",
            path,
            &[
                ("Host", &agent.host()),
                ("Authorization", &format!("Bearer {token}")),
            ],
        )
    };
    let metrics = get("/metrics", &scrape);
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    assert!(
        metrics.body.contains("portscope_build_info"),
        "{}",
        metrics.body
    );
    assert_eq!(get("/metrics", &agent.token).status, 200);
    for path in [
        "/api/v1/snapshot",
        "/api/v1/who?port=1",
        "/api/v1/history",
        "/api/v1/ws",
    ] {
        let res = get(path, &scrape);
        assert_eq!(res.status, 401, "{path}: {}", res.body);
        assert!(res.body.contains("metrics_only"), "{path}: {}", res.body);
    }
    let upgrade = crate::support::http(
        agent.port,
        "GET",
        &format!("/api/v1/ws?token={scrape}"),
        &[
            ("Host", &agent.host()),
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    );
    assert_eq!(
        upgrade.status, 401,
        "the WebSocket refuses it: {}",
        upgrade.body
    );

    let refused = |file: &std::path::Path, says: &str| {
        let (code, _, err) = crate::support::run_cli(&[
            "serve",
            "--port",
            "0",
            "--no-history",
            "--metrics-token-file",
            file.to_str().unwrap(),
        ]);
        assert_eq!(code, 2, "{file:?}: {err}");
        assert!(err.contains(says), "{file:?}: {err}");
    };
    let open = tempfile::tempdir().unwrap();
    refused(&scrape_token_file(open.path(), &scrape, 0o644), "chmod 600");
    let link = dir.path().join("link.token");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    refused(&link, "cannot read");
    let short = tempfile::tempdir().unwrap();
    refused(
        &scrape_token_file(short.path(), "abc", 0o600),
        "at least 32 characters",
    );
    // The agent's own token as the scraper's would read everything.
    let mut same = std::process::Command::new(env!("CARGO_BIN_EXE_portscope"));
    same.args([
        "serve",
        "--port",
        "0",
        "--no-history",
        "--metrics-token-file",
    ])
    .arg(&file)
    .env("PORTSCOPE_TOKEN", &scrape);
    let (code, _, err) = crate::support::run(same);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the agent's own token"), "{err}");
}

#[test]
fn prometheus_scrapes_the_agent_with_its_token() {
    // Prometheus holds the scrape-only token, not the agent's.
    let dir = tempfile::tempdir().unwrap();
    let scrape = "prometheus-".repeat(4);
    let file = scrape_token_file(dir.path(), &scrape, 0o600);
    let agent = Agent::start_with(&["--metrics-token-file", file.to_str().unwrap()]);
    let port = free_port();
    let s = Situation::start(&["listen-at", "127.0.0.1", &port.to_string()]);
    let prometheus = Prometheus::scraping(agent.port, &scrape);
    let query = format!(r#"portscope_listen_info{{port="{}"}}"#, s.port);
    let found = wait_for(
        "Prometheus to scrape the test listener",
        Duration::from_secs(60),
        || {
            let result = prometheus.query(&query);
            (!result.is_empty()).then_some(result)
        },
    );
    let labels = &found[0]["metric"];
    assert_eq!(labels["process"], "python3", "{found:?}");
    assert_eq!(labels["addr"], "127.0.0.1", "{found:?}");
    assert_eq!(labels["exposure"], "loopback", "{found:?}");
    assert_eq!(found[0]["value"][1], "1", "{found:?}");
    // The scrape itself is healthy, with the token from the credentials file.
    let up = prometheus.query(r#"up{job="portscope"}"#);
    assert_eq!(up[0]["value"][1], "1", "{up:?}\n{}", prometheus.log());

    // The port passes to another program (python3 under another name), and a listener on all
    // interfaces opens: the README's two queries find them.
    drop(s);
    let dir = tempfile::tempdir().unwrap();
    let devserver = dir.path().join("devserver");
    std::os::unix::fs::symlink("/usr/bin/python3", &devserver).unwrap();
    let _next = Situation::start_by(&devserver, &["listen-at", "127.0.0.1", &port.to_string()]);
    let wide = Situation::start(&["listen", "0.0.0.0"]);
    let port_text = port.to_string();
    let moved = wait_for("the move in Prometheus", Duration::from_secs(60), || {
        let result = prometheus.query(MOVED);
        result
            .into_iter()
            .find(|r| r["metric"]["port"] == port_text.as_str())
    });
    assert_eq!(moved["value"][1], "2", "python3, then devserver: {moved:?}");
    let wide_port = wide.port.to_string();
    let exposed = wait_for(
        "the wide listener in Prometheus",
        Duration::from_secs(60),
        || {
            prometheus
                .query(ALL_INTERFACES)
                .into_iter()
                .find(|r| r["metric"]["port"] == wide_port.as_str())
        },
    );
    assert_eq!(exposed["metric"]["process"], "python3", "{exposed:?}");
    assert!(
        prometheus
            .query(ALL_INTERFACES)
            .iter()
            .all(|r| r["metric"]["port"] != port_text.as_str()),
        "a loopback listener is not on all interfaces"
    );
}

/// `GET /api/v1/hosts` as `name → host`.
fn hosts(hub: &Agent) -> std::collections::BTreeMap<String, portscope_shared::Host> {
    let res = hub.get("/api/v1/hosts");
    assert_eq!(res.status, 200, "{}", res.body);
    let hosts: portscope_shared::Hosts = serde_json::from_str(&res.body).unwrap();
    hosts
        .hosts
        .into_iter()
        .map(|h| (h.name.clone(), h))
        .collect()
}

/// A hub's view of one host (`GET /api/v1/snapshot?host=NAME`).
fn snapshot_of(hub: &Agent, host: &str) -> portscope_shared::Snapshot {
    let res = hub.get(&format!("/api/v1/snapshot?host={host}"));
    assert_eq!(res.status, 200, "{}", res.body);
    serde_json::from_str(&res.body).unwrap()
}

fn listens(snapshot: &portscope_shared::Snapshot, port: u16) -> Option<portscope_shared::Socket> {
    snapshot
        .sockets
        .iter()
        .find(|s| s.local_port == port && s.is_listening())
        .cloned()
}

fn status_of(hub: &Agent, name: &str) -> portscope_shared::Host {
    hosts(hub)
        .remove(name)
        .unwrap_or_else(|| panic!("no host {name}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hub_shows_each_peer_and_follows_it_going_and_coming_back() {
    use portscope_shared::{HostStatus, ServerMessage};
    let mut one = Machine::start();
    let two = Machine::start();
    let dir = tempfile::tempdir().unwrap();
    let file = peers_file(
        dir.path(),
        &[one.peer_entry("build-box"), two.peer_entry("staging")],
    );
    let hub = Agent::start_with(&["--peers", &file]);
    let first = one.situation(&["listen", "127.0.0.1"]);
    let second = two.situation(&["listen", "127.0.0.1"]);
    let mine = Situation::start(&["listen", "127.0.0.1"]);

    for (name, port) in [("build-box", first.port), ("staging", second.port)] {
        let seen = wait_for(
            "the peer's listener on the hub",
            Duration::from_secs(30),
            || listens(&snapshot_of(&hub, name), port),
        );
        assert_eq!(seen.host.as_deref(), Some(name), "{seen:?}");
    }
    let all = hosts(&hub);
    assert_eq!(all.len(), 3, "{all:?}");
    let me = all.values().find(|h| h.local).unwrap();
    assert_eq!(me.status, HostStatus::Live);
    for name in ["build-box", "staging"] {
        assert_eq!(all[name].status, HostStatus::Live, "{:?}", all[name]);
        assert!(all[name].last_live.is_some());
    }
    // Each listener is on its own machine only: the hub's own view has its own.
    let own = wait_for("the hub's own listener", Duration::from_secs(10), || {
        let own: portscope_shared::Snapshot =
            serde_json::from_str(&hub.get("/api/v1/snapshot").body).unwrap();
        listens(&own, mine.port).is_some().then_some(own)
    });
    assert!(listens(&own, mine.port).is_some_and(|s| s.host.is_none()));
    assert!(
        listens(&own, first.port).is_none(),
        "build-box's listener is not the hub's"
    );
    assert!(listens(&snapshot_of(&hub, "staging"), first.port).is_none());
    // The relayed stream over a real WebSocket: the peer's Hello, then its state with its host.
    let mut ws = hub.connect_host("build-box").await;
    let ServerMessage::Hello(hello) = ws.next(Duration::from_secs(5)).await else {
        panic!("no Hello first");
    };
    assert!(!hello.can_kill, "the peer shares read-only");
    let relayed = ws.snapshot(Duration::from_secs(15)).await;
    let relayed_listener = listens(&relayed, first.port).expect("the peer's listener");
    assert_eq!(relayed_listener.host.as_deref(), Some("build-box"));
    assert!(
        relayed
            .processes
            .iter()
            .all(|p| p.host.as_deref() == Some("build-box")),
        "every process is marked with its host"
    );
    let metrics = hub.get("/metrics").body;
    assert!(
        metrics.contains("portscope_peer_up{peer=\"build-box\"} 1"),
        "{metrics}"
    );
    // The peers' tokens stay in the hub: in nothing it answers — routes, relayed doctor
    // answers, and the relayed stream's frames.
    let who = format!("/api/v1/who?host=build-box&port={}", first.port);
    let why = format!("/api/v1/why?host=build-box&target=127.0.0.1:{}", first.port);
    for path in [
        "/api/v1/hosts",
        "/api/v1/snapshot?host=build-box",
        "/api/v1/graph?host=build-box",
        "/metrics",
        "/api/v1/history?host=build-box",
        "/api/v1/history/spans?host=build-box&since=1h",
        &who,
        &why,
    ] {
        let res = hub.get(path);
        assert_eq!(res.status, 200, "{path}: {}", res.body);
        assert!(
            !res.body.contains(&one.token) && !res.body.contains(&two.token),
            "{path} shows a peer's token: {}",
            res.body
        );
    }
    let mut stream = hub.connect_host("build-box").await;
    for _ in 0..2 {
        let frame = serde_json::to_string(&stream.next(Duration::from_secs(10)).await).unwrap();
        assert!(
            !frame.contains(&one.token) && !frame.contains(&two.token),
            "a relayed frame shows a peer's token: {frame}"
        );
    }
    // The peer's history, relayed: its listener's opening with its pid, which the hub's own
    // history does not have; and its spans for the timeline.
    let opened = wait_for(
        "build-box's history through the hub",
        Duration::from_secs(30),
        || {
            let res = hub.get(&format!(
                "/api/v1/history?host=build-box&port={}",
                first.port
            ));
            assert_eq!(res.status, 200, "{}", res.body);
            let events: serde_json::Value = serde_json::from_str(&res.body).unwrap();
            events["events"]
                .as_array()?
                .iter()
                .find(|e| e["kind"] == "opened")
                .cloned()
        },
    );
    assert_eq!(opened["pid"], first.pid, "{opened}");
    let here = hub.get(&format!("/api/v1/history?port={}", first.port));
    assert!(
        !here.body.contains(&format!("\"pid\": {}", first.pid))
            && !here.body.contains(&format!("\"pid\":{}", first.pid)),
        "the hub's own history knows nothing of it: {}",
        here.body
    );
    let spans = hub.get(&format!(
        "/api/v1/history/spans?host=build-box&since=1h&port={}",
        first.port
    ));
    let spans: portscope_shared::Spans = serde_json::from_str(&spans.body).unwrap();
    assert!(
        spans.spans.iter().any(|s| s.pid == Some(first.pid)),
        "{spans:?}"
    );
    let hello = hub
        .connect_host("build-box")
        .await
        .next(Duration::from_secs(10))
        .await;
    let ServerMessage::Hello(hello) = hello else {
        panic!("Hello first: {hello:?}")
    };
    assert!(
        hello.history,
        "the peer keeps a history, and the hub relays it"
    );

    // build-box's agent goes away: its rows stay, marked by the host's status.
    one.stop_agent();
    let gone = wait_for("build-box unreachable", Duration::from_secs(30), || {
        let host = status_of(&hub, "build-box");
        (host.status == HostStatus::Unreachable).then_some(host)
    });
    assert!(
        gone.last_live.is_some() && gone.detail.is_some(),
        "{gone:?}"
    );
    assert!(listens(&snapshot_of(&hub, "build-box"), first.port).is_some());
    assert_eq!(
        status_of(&hub, "staging").status,
        HostStatus::Live,
        "the other peer goes on"
    );
    let metrics = hub.get("/metrics").body;
    assert!(
        metrics.contains("portscope_peer_up{peer=\"build-box\"} 0"),
        "{metrics}"
    );
    // It comes back with a listener opened meanwhile: live again, resynced.
    let meanwhile = one.situation(&["listen", "127.0.0.1"]);
    drop(first);
    one.start_agent();
    wait_for(
        "build-box live and resynced",
        Duration::from_secs(60),
        || {
            let snapshot = snapshot_of(&hub, "build-box");
            (listens(&snapshot, meanwhile.port).is_some()
                && status_of(&hub, "build-box").status == HostStatus::Live)
                .then_some(())
        },
    );
    // And what closed while it was away is gone.
    wait_for("the closed listener gone", Duration::from_secs(10), || {
        let snapshot = snapshot_of(&hub, "build-box");
        listens(&snapshot, relayed_listener.local_port)
            .is_none()
            .then_some(())
    });
    drop(ws);
}

#[test]
fn a_hub_refuses_a_wrong_fingerprint_or_token_and_a_clear_text_url() {
    use portscope_shared::HostStatus;
    let machine = Machine::start();
    let dir = tempfile::tempdir().unwrap();
    let good = machine.peer_entry("good");
    let wrong_print = machine
        .peer_entry("wrong-print")
        .replace(&machine.fingerprint, &["00"; 32].join(":"));
    let wrong_token = machine
        .peer_entry("wrong-token")
        .replace(&machine.token, &"x".repeat(40));
    let file = peers_file(dir.path(), &[good, wrong_print, wrong_token]);
    let hub = Agent::start_with(&["--peers", &file]);
    let listener = machine.situation(&["listen", "127.0.0.1"]);
    wait_for("the good peer's listener", Duration::from_secs(30), || {
        listens(&snapshot_of(&hub, "good"), listener.port)
    });
    for (name, said) in [
        ("wrong-print", "refused: certificate fingerprint mismatch"),
        ("wrong-token", "refused: token"),
    ] {
        let host = wait_for("the refusal", Duration::from_secs(30), || {
            let host = status_of(&hub, name);
            (host.status == HostStatus::Refused).then_some(host)
        });
        assert_eq!(host.detail.as_deref(), Some(said), "{host:?}");
        assert_eq!(host.sockets, 0, "no rows from a refused peer");
        assert!(snapshot_of(&hub, name).sockets.is_empty());
    }
    // A clear-text URL to another machine: the hub does not start, and says why.
    let clear = peers_file(
        dir.path(),
        &[machine
            .peer_entry("clear")
            .replace("https://", "http://")
            .replace(&format!("fingerprint = \"{}\"\n", machine.fingerprint), "")],
    );
    let (code, _, err) = crate::support::run_cli(&["serve", "--port", "0", "--peers", &clear]);
    assert_ne!(code, 0);
    assert!(err.contains("in clear"), "{err}");
    // A file others can read is refused too.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = crate::support::run_cli(&["serve", "--port", "0", "--peers", &file]);
    assert_ne!(code, 0);
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn peer_add_and_list_take_the_token_from_stdin_never_the_command_line() {
    let machine = Machine::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("conf/peers.toml");
    let file = file.to_str().unwrap();
    let mut add = std::process::Command::new(env!("CARGO_BIN_EXE_portscope"));
    add.args([
        "peer",
        "add",
        "box",
        &machine.url(),
        "--fingerprint",
        &machine.fingerprint,
    ])
    .args(["--file", file])
    .env("PORTSCOPE_PEER_TOKEN", &machine.token);
    let (code, out, err) = crate::support::run(add);
    assert_eq!(code, 0, "{out}{err}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (code, out, err) = crate::support::run_cli(&["peer", "list", "--file", file]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("box") && out.contains("live ("), "{out}");
    let (code, out, _) = crate::support::run_cli(&["peer", "list", "--file", file, "--json"]);
    assert_eq!(code, 0);
    let hosts: portscope_shared::Hosts = serde_json::from_str(&out).unwrap();
    assert_eq!(hosts.hosts[0].status, portscope_shared::HostStatus::Live);
    // Without a token on stdin (closed) or in the environment, nothing is added.
    let (code, _, err) = crate::support::run_cli(&[
        "peer",
        "add",
        "other",
        &machine.url(),
        "--fingerprint",
        &machine.fingerprint,
        "--file",
        file,
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("no token"), "{err}");
}

#[test]
fn the_doctor_runs_on_the_peer_a_host_names() {
    let machine = Machine::start();
    let dir = tempfile::tempdir().unwrap();
    let file = peers_file(dir.path(), &[machine.peer_entry("box")]);
    let hub = Agent::start_with(&["--peers", &file]);
    let listener = machine.situation(&["listen", "127.0.0.1"]);
    wait_for("the peer's listener", Duration::from_secs(30), || {
        listens(&snapshot_of(&hub, "box"), listener.port)
    });
    let target = format!("127.0.0.1:{}", listener.port);
    let there = hub.get(&format!("/api/v1/why?host=box&target={target}"));
    assert_eq!(there.status, 200, "{}", there.body);
    let there: portscope_shared::Diagnosis = serde_json::from_str(&there.body).unwrap();
    let here: portscope_shared::Diagnosis =
        serde_json::from_str(&hub.get(&format!("/api/v1/why?target={target}")).body).unwrap();
    assert_ne!(
        there.verdict, here.verdict,
        "the peer's listener answers there, not here: {there:#?}\n{here:#?}"
    );
    assert_eq!(there.verdict, portscope_shared::Verdict::Ok, "{there:#?}");
    let who = hub.get(&format!("/api/v1/who?host=box&port={}", listener.port));
    let who: portscope_shared::WhoReport = serde_json::from_str(&who.body).unwrap();
    assert!(
        who.owners.iter().any(|o| o.process.pid == listener.pid),
        "{who:#?}"
    );
    // The peer's own rules: it shares read-only, so it refuses to stop anything.
    let kill = hub.post(
        "/api/v1/kill?host=box",
        &format!("{{\"pid\": {}, \"start_time\": 1}}", listener.pid),
        &[],
    );
    assert_eq!(kill.status, 403, "{}", kill.body);
    assert!(kill.body.contains("read_only"), "{}", kill.body);
    // And the hub's own: a request from another site is refused before it goes anywhere.
    let cross = hub.post(
        "/api/v1/kill?host=box",
        &format!("{{\"pid\": {}, \"start_time\": 1}}", listener.pid),
        &[("Sec-Fetch-Site", "cross-site")],
    );
    assert_eq!(cross.status, 403, "{}", cross.body);
    assert!(cross.body.contains("cross_site"), "{}", cross.body);
    let unknown = hub.get("/api/v1/who?host=nowhere&port=1");
    assert_eq!(unknown.status, 404);
    assert!(unknown.body.contains("unknown_host"), "{}", unknown.body);
    // Relayed requests take turns on one connection to the peer, kept between them: beside
    // the link's WebSocket, one established connection, and none closed by the hub.
    for _ in 0..5 {
        let who = hub.get(&format!("/api/v1/who?host=box&port={}", listener.port));
        assert_eq!(who.status, 200, "{}", who.body);
    }
    let to_peer = |state: &str| {
        let mut ss = std::process::Command::new("ss");
        ss.args([
            "-Htn",
            "state",
            state,
            "dst",
            &format!("{}:7678", machine.addr),
        ]);
        let (code, out, err) = crate::support::run(ss);
        assert_eq!(code, 0, "{err}");
        out.lines().count()
    };
    assert_eq!(
        to_peer("established"),
        2,
        "the link and one relay connection"
    );
    assert_eq!(
        to_peer("time-wait"),
        0,
        "no relay connection closed by the hub"
    );
}

/// A shared agent sends no HTTP on a remote client's behalf. A real `python3 -m http.server`
/// runs on a peer's own loopback, already there when the hub connects (so a health round "at
/// once when a dashboard opens" would reach it at once); the hub's dashboard watches the peer
/// and asks `why` of it through the hub. The server's log holds only the marker the test sends
/// itself at the end — no health check, no `GET` from `why`.
#[tokio::test(flavor = "multi_thread")]
async fn a_shared_agent_sends_no_http_for_a_remote_client() {
    let machine = Machine::start();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("http.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let port = free_port();
    let mut server = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &machine.netns,
            "python3",
            "-u",
            "-m",
            "http.server",
        ])
        .args([&port.to_string(), "--bind", "127.0.0.1"])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("python3 -m http.server in the namespace");
    let file = peers_file(dir.path(), &[machine.peer_entry("box")]);
    let hub = Agent::start_with(&["--peers", &file]);
    let seen = wait_for(
        "the peer's HTTP server on the hub",
        Duration::from_secs(30),
        || listens(&snapshot_of(&hub, "box"), port),
    );
    assert!(seen.http, "the peer knows it for an HTTP server: {seen:?}");
    let mut dashboard = hub.connect_host("box").await;
    let _hello = dashboard.next(Duration::from_secs(10)).await;
    let why = hub.get(&format!("/api/v1/why?host=box&target=127.0.0.1:{port}"));
    assert_eq!(why.status, 200, "{}", why.body);
    // Three of the health loop's one-second ticks with the dashboard open: a round "at once"
    // would have run by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut marker = std::process::Command::new("ip");
    marker.args(["netns", "exec", &machine.netns, "python3", "-c"]);
    marker.arg(format!(
        "import urllib.request, urllib.error\ntry: urllib.request.urlopen('http://127.0.0.1:{port}/portscope-marker')\nexcept urllib.error.HTTPError: pass"
    ));
    let (code, _, err) = crate::support::run(marker);
    assert_eq!(code, 0, "{err}");
    let lines = wait_for("the marker in the log", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&log_path).ok()?;
        text.contains("portscope-marker").then_some(text)
    });
    let requests: Vec<&str> = lines.lines().filter(|l| l.contains("\"GET ")).collect();
    assert_eq!(
        requests.len(),
        1,
        "only the test's own marker reached the server:\n{lines}"
    );
    let _ = server.kill();
    let _ = server.wait();
}

/// A hub keeps at most `--peer-max-size` of a peer: a peer whose processes' command lines
/// weigh more (here 24 listeners, each with a 30 KB argument: about 700 KB) is cut off with a
/// status that says so, and the hub's memory is measured; a hub with room for it shows it live.
#[tokio::test(flavor = "multi_thread")]
async fn a_peer_past_the_hubs_budget_is_cut_off_saying_so() {
    use portscope_shared::HostStatus;
    let machine = Machine::start();
    let filler = "x".repeat(30_000);
    let heavy: Vec<Situation> = (0..24)
        .map(|_| machine.situation(&["listen", "127.0.0.1", &filler]))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = peers_file(dir.path(), &[machine.peer_entry("heavy")]);
    let roomy = Agent::start_with(&["--peers", &file]);
    let tight = Agent::start_with(&["--peers", &file, "--peer-max-size", "256KB"]);
    let live = wait_for(
        "the peer live on the roomy hub",
        Duration::from_secs(30),
        || {
            let snapshot = snapshot_of(&roomy, "heavy");
            heavy
                .iter()
                .all(|s| listens(&snapshot, s.port).is_some())
                .then_some(status_of(&roomy, "heavy"))
        },
    );
    assert_eq!(live.status, HostStatus::Live, "{live:?}");
    let refused = wait_for(
        "the tight hub to refuse it",
        Duration::from_secs(30),
        || {
            let host = status_of(&tight, "heavy");
            (host.status == HostStatus::Refused).then_some(host)
        },
    );
    let detail = refused.detail.unwrap_or_default();
    assert!(
        detail.contains("too large") && detail.contains("--peer-max-size"),
        "{detail}"
    );
    let kept = snapshot_of(&tight, "heavy");
    assert!(
        kept.processes.len() < heavy.len(),
        "the tight hub kept no more than its budget: {} processes",
        kept.processes.len()
    );
    eprintln!(
        "hub RSS: {} KiB with the peer refused, {} KiB with it kept",
        tight.rss_kib(),
        roomy.rss_kib()
    );
    assert!(tight.rss_kib() < 64 << 10, "{} KiB", tight.rss_kib());
}

/// A peer that stops answering without closing (a paused VM: its kernel keeps the connection)
/// is declared lost after the silence limit, saying so, and comes back when it answers again.
#[test]
fn a_silent_peer_is_lost_after_the_silence_limit_and_comes_back() {
    use portscope_shared::HostStatus;
    let machine = Machine::start();
    let dir = tempfile::tempdir().unwrap();
    let file = peers_file(dir.path(), &[machine.peer_entry("paused")]);
    let hub = Agent::start_with(&["--peers", &file]);
    wait_for("the peer live", Duration::from_secs(30), || {
        (status_of(&hub, "paused").status == HostStatus::Live).then_some(())
    });
    let pid = rustix::process::Pid::from_raw(machine.agent_pid() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    let stopped = std::time::Instant::now();
    let lost = wait_for("the hub to give it up", Duration::from_secs(90), || {
        let host = status_of(&hub, "paused");
        (host.status != HostStatus::Live).then_some(host)
    });
    let after = stopped.elapsed();
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::CONT);
    let detail = lost.detail.unwrap_or_default();
    assert!(detail.contains("silent for 50 s"), "{detail}");
    assert!(
        after >= Duration::from_secs(45),
        "lost after only {after:?}"
    );
    wait_for("the peer live again", Duration::from_secs(60), || {
        (status_of(&hub, "paused").status == HostStatus::Live).then_some(())
    });
}

/// What a hub relays from a peer reaches the browser as JSON or as bytes it will not render: a
/// peer cannot make the hub serve a page of its choosing.
#[test]
fn a_peers_answer_reaches_the_browser_only_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let fingerprint = ring::digest::digest(&ring::digest::SHA256, cert.cert.der())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    #[derive(serde::Deserialize)]
    struct Listening {
        port: u16,
    }
    let peer = crate::support::Holder::<Listening>::start_script_with(
        "fake_peer.py",
        &[cert_path.to_str().unwrap(), key_path.to_str().unwrap()],
    );
    let entry = format!(
        "[[peer]]\nname = \"html\"\nurl = \"https://127.0.0.1:{}/\"\ntoken = \"{:0>40}\"\nfingerprint = \"{fingerprint}\"\n",
        peer.ports.port, "faketoken"
    );
    let file = peers_file(dir.path(), &[entry]);
    let hub = Agent::start_with(&["--peers", &file]);
    let answer = hub.get("/api/v1/who?host=html&port=1");
    assert_eq!(answer.status, 200, "the peer's own status: {}", answer.body);
    assert!(
        answer.body.contains("served by the peer"),
        "{}",
        answer.body
    );
    assert_eq!(
        answer.header("content-type"),
        Some("application/octet-stream"),
        "not the peer's text/html"
    );
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    drop(peer);
}

/// Stopping a process on a peer takes both consents: the peer's (`--allow-kill`) and the
/// hub's. A hub started with `--no-kill` relays no kill, whatever the peer allows; a hub that
/// may stop processes relays it, and the peer's process stops.
#[test]
fn a_relayed_kill_needs_the_hubs_consent_as_well_as_the_peers() {
    let machine = Machine::start_with(&["--allow-kill", "--allow-kill-system"]);
    let dir = tempfile::tempdir().unwrap();
    let file = peers_file(dir.path(), &[machine.peer_entry("box")]);
    let read_only = Agent::start_with(&["--peers", &file, "--no-kill"]);
    let hub = Agent::start_with(&["--peers", &file]);
    let mut listener = machine.situation(&["listen", "127.0.0.1"]);
    let start_time = wait_for("the peer's listener", Duration::from_secs(30), || {
        let snapshot = snapshot_of(&hub, "box");
        listens(&snapshot, listener.port)?;
        snapshot
            .processes
            .iter()
            .find(|p| p.pid == listener.pid)?
            .start_time
    });
    let body = format!(
        "{{\"pid\": {}, \"start_time\": {start_time}}}",
        listener.pid
    );
    let refused = read_only.post("/api/v1/kill?host=box", &body, &[]);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("read_only"), "{}", refused.body);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        listener.wait_exit(Duration::from_millis(100)),
        None,
        "the peer's process still runs"
    );
    let stopped = hub.post("/api/v1/kill?host=box", &body, &[]);
    assert_eq!(stopped.status, 200, "{}", stopped.body);
    assert!(
        listener.wait_exit(Duration::from_secs(10)).is_some(),
        "the peer stopped it: {}",
        stopped.body
    );
}

/// A peer's failures (#22) reach the hub's dashboard of that peer: the peer's kernel reports
/// them in its own namespace, its stream carries them as events alone, and the hub passes them
/// on; the hub's own kernel does not tell them as its own (another namespace).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_passes_on_a_peers_failed_bind() {
    use portscope_shared::{EventKind, ServerMessage};
    let machine = Machine::start();
    let dir = tempfile::tempdir().unwrap();
    let file = peers_file(dir.path(), &[machine.peer_entry("build-box")]);
    let hub = Agent::start_with(&["--peers", &file]);
    wait_for("the peer live", Duration::from_secs(30), || {
        (status_of(&hub, "build-box").status == portscope_shared::HostStatus::Live).then_some(())
    });
    let mut ws = hub.connect_host("build-box").await;
    let mut own = hub.connect().await;
    assert!(matches!(
        ws.next(Duration::from_secs(5)).await,
        ServerMessage::Hello(_)
    ));
    ws.snapshot(Duration::from_secs(15)).await;
    assert!(matches!(
        own.next(Duration::from_secs(5)).await,
        ServerMessage::Hello(_)
    ));
    own.snapshot(Duration::from_secs(15)).await;
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &machine.netns, "python3", "-c"])
        .arg(
            "import socket,time\na=socket.socket()\na.bind(('0.0.0.0',0))\na.listen()\n\
             time.sleep(1)\nb=socket.socket()\ntry:\n b.bind(('0.0.0.0',a.getsockname()[1]))\n\
             except OSError:\n pass\nprint(a.getsockname()[1],flush=True)\ntime.sleep(1)",
        )
        .output()
        .expect("python3 in the namespace");
    assert!(out.status.success());
    let port: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let failed = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(!left.is_zero(), "no bind_failed from the peer within 10 s");
        if let ServerMessage::Events(events) = ws.next(left).await
            && let Some(e) = events
                .events
                .into_iter()
                .find(|e| e.kind == EventKind::BindFailed && e.local_port == port)
        {
            break e;
        }
    };
    assert_eq!(failed.holders.first().map(|h| h.local_port), Some(port));
    // The hub's own stream never told it.
    let quiet_until = std::time::Instant::now() + Duration::from_secs(1);
    while let Some(left) = quiet_until.checked_duration_since(std::time::Instant::now()) {
        let Ok(message) = tokio::time::timeout(left, own.next(Duration::from_secs(5))).await else {
            break;
        };
        if let ServerMessage::Events(events) = message {
            assert!(
                !events
                    .events
                    .iter()
                    .any(|e| e.kind == EventKind::BindFailed && e.local_port == port),
                "the hub told the peer's failure as its own"
            );
        }
    }
}
