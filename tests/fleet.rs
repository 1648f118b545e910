//! Fleets (#13): `GET /metrics` behind the token, in the OpenMetrics text format, and a real
//! Prometheus (Debian's package) scraping a real agent with its token from a `credentials_file`.

use std::time::Duration;

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
        r#"portscope_listen_info{{proto="tcp",family="ipv4",addr="127.0.0.1",port="{}",process="python3",exposure="loopback"}} 1"#,
        s.port
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

#[test]
fn prometheus_scrapes_the_agent_with_its_token() {
    let agent = Agent::start();
    let port = free_port();
    let s = Situation::start(&["listen-at", "127.0.0.1", &port.to_string()]);
    let prometheus = Prometheus::scraping(agent.port, &agent.token);
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
