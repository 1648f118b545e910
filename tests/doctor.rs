//! The port doctor on real situations: each test makes the situation for real (a listener on
//! one family, on an interface address in a network namespace, a port left in TIME_WAIT, a
//! privileged port for an ordinary user, a stopped process, an HTTP server) and checks the verdict
//! `why`, `bind`, `free` and `kill` give, as JSON parsed back and as text.

use std::process::Command;
use std::time::Duration;

use portscope_shared::{Check, Diagnosis, FreePorts, KillOutcome, KillReport, Verdict};

use crate::support::{Agent, Situation, run, run_cli};

#[track_caller]
fn diagnose(args: &[&str], expected_code: i32) -> Diagnosis {
    let (code, out, err) = run_cli(args);
    assert_eq!(code, expected_code, "portscope {args:?}\n{out}\n{err}");
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("{args:?} printed no Diagnosis ({e}):\n{out}"))
}

#[track_caller]
fn find<'a>(d: &'a Diagnosis, id: &str) -> &'a Check {
    d.checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no `{id}` check in {d:#?}"))
}

#[test]
fn why_explains_an_ipv4_only_listener_probed_over_ipv6() {
    let s = Situation::start(&["listen", "127.0.0.1"]);
    let target = format!("[::1]:{}", s.port);
    let d = diagnose(&["why", &target, "--json"], 1);
    assert_eq!(d.verdict, Verdict::Problem);
    let family = find(&d, "family");
    assert_eq!(family.verdict, Verdict::Problem);
    assert!(
        family
            .title
            .contains(&format!("IPv4 only (127.0.0.1:{})", s.port)),
        "{}",
        family.title
    );
    assert!(
        family
            .fixes
            .iter()
            .any(|f| f.command.as_deref() == Some(&*format!("nc -vz 127.0.0.1 {}", s.port)))
    );
    assert_eq!(
        d.summary, family.title,
        "the summary names the cause, not the symptom"
    );
    let listening = find(&d, "listening");
    assert!(
        listening.title.contains(&format!("(pid {})", s.pid)),
        "{}",
        listening.title
    );

    // Through `localhost`: whether ::1 comes first depends on this machine's /etc/hosts; the
    // verdict must follow what it resolves to.
    let target = format!("localhost:{}", s.port);
    let d = diagnose(&["why", &target, "--json"], 0);
    let resolve = find(&d, "resolve");
    if resolve.title.contains("::1") {
        assert_eq!(find(&d, "family").verdict, Verdict::Warning, "{d:#?}");
    } else {
        assert!(d.checks.iter().all(|c| c.id != "family"), "{d:#?}");
        assert!(d.summary.contains("listens on TCP port"), "{}", d.summary);
    }
}

#[test]
fn why_explains_an_ipv6_only_listener_probed_over_ipv4() {
    let s = Situation::start(&["listen", "::1"]);
    let target = format!("127.0.0.1:{}", s.port);
    let d = diagnose(&["why", &target, "--json"], 1);
    let family = find(&d, "family");
    assert_eq!(family.verdict, Verdict::Problem);
    assert!(family.title.contains("IPv6 only"), "{}", family.title);
    // The text form says the same, with verdict labels.
    let (code, out, _) = run_cli(&["why", &target]);
    assert_eq!(code, 1);
    assert!(
        out.contains("PROBLEM   the server listens on IPv6 only"),
        "{out}"
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("PROBLEM: the server listens on IPv6 only"),
        "{out}"
    );
}

/// Runs a shell script in a network namespace of our own (as root, or as an unprivileged user
/// through a user namespace). Fails the test, saying how to fix it, where none can be created:
/// a test that cannot run its situation must not pass.
#[track_caller]
fn in_namespace(script: &str) -> (i32, String, String) {
    let namespaced = |unshare_args: &[&str]| {
        let mut c = Command::new("unshare");
        c.args(unshare_args).args(["sh", "-c", script]);
        run(c)
    };
    let (code, out, err) = namespaced(&["--net"]);
    if !err.starts_with("unshare:") {
        return (code, out, err);
    }
    let (code, out, err) = namespaced(&["--user", "--map-root-user", "--net"]);
    if !err.starts_with("unshare:") {
        return (code, out, err);
    }
    panic!(
        "no network namespace can be created here ({}): run the tests as root, or allow \
         unprivileged user namespaces (`sysctl -w kernel.unprivileged_userns_clone=1`; \
         util-linux provides unshare)",
        err.trim()
    );
}

/// The script's lines to start a listener in the namespace and wait until portscope sees it.
fn listen_in_namespace(addr: &str, port: u16) -> String {
    format!(
        "sleep 30 2> /dev/null | python3 {situation} listen-at {addr} {port} > /dev/null 2>&1 & \
         for i in $(seq 100); do {bin} who {port} > /dev/null && break; sleep 0.1; done; ",
        situation = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/support/situation.py"),
        bin = env!("CARGO_BIN_EXE_portscope"),
    )
}

/// A server bound to 10.200.0.1 only (an address we give the namespace's loopback device),
/// probed on 127.0.0.1.
#[test]
fn why_finds_a_listener_bound_to_an_interface_address_only() {
    let script = format!(
        "set -e; ip link set lo up; ip addr add 10.200.0.1/24 dev lo; {listen}\
         {bin} why 127.0.0.1:18080 --json; kill %1 2>/dev/null || true",
        listen = listen_in_namespace("10.200.0.1", 18080),
        bin = env!("CARGO_BIN_EXE_portscope"),
    );
    let (code, out, err) = in_namespace(&script);
    assert_eq!(code, 1, "{out}\n{err}");
    let d: Diagnosis = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    let interface = find(&d, "interface");
    assert_eq!(interface.verdict, Verdict::Problem);
    assert!(
        interface.title.contains("listens only on 10.200.0.1:18080"),
        "{}",
        interface.title
    );
    assert_eq!(
        interface.fixes[0].command.as_deref(),
        Some("nc -vz 10.200.0.1 18080")
    );
}

/// An nftables rule that drops the port, in the namespace's own ruleset.
#[test]
fn why_reports_the_firewall_rule_that_drops_the_port() {
    let script = format!(
        "set -e; ip link set lo up; \
         nft add table inet portscope_test; \
         nft add chain inet portscope_test input '{{ type filter hook input priority 0; policy accept; }}'; \
         nft add rule inet portscope_test input tcp dport 18082 drop; {listen}\
         {bin} why 127.0.0.1:18082 --timeout 500ms --json || true; kill %1 2>/dev/null || true",
        listen = listen_in_namespace("127.0.0.1", 18082),
        bin = env!("CARGO_BIN_EXE_portscope"),
    );
    let (code, out, err) = in_namespace(&script);
    assert_eq!(code, 0, "{out}\n{err}");
    let d: Diagnosis = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    let firewall = find(&d, "firewall");
    assert!(firewall.title.contains("(nft)"), "{}", firewall.title);
    assert!(
        firewall
            .evidence
            .iter()
            .any(|e| e.contains("inet portscope_test chain input: tcp dport 18082 drop")),
        "{firewall:?}"
    );
    // Problem when the drop made the connect time out; Warning where the kernel let it through.
    let connected = d
        .checks
        .iter()
        .any(|c| c.id == "connect" && c.verdict == Verdict::Ok);
    assert_eq!(
        firewall.verdict,
        if connected {
            Verdict::Warning
        } else {
            Verdict::Problem
        },
        "{d:#?}"
    );
}

/// Rules judged against the probe's packet, in a namespace of our own: a drop from 10.0.0.0/8
/// and one on eth0 cannot match a loopback client and are not blamed; a drop in a chain that
/// input jumps to is followed and blamed; a chain nothing jumps to is ignored; a DNAT rule in
/// nat output says where the port goes.
#[test]
fn why_judges_firewall_rules_by_the_packet_it_sends() {
    let nft = |rule: &str| format!("nft {rule}; ");
    let mut rules = String::new();
    for r in [
        "add table inet pt",
        "add chain inet pt input '{ type filter hook input priority 0; policy accept; }'",
        "add chain inet pt checks",
        "add chain inet pt orphan",
        "add rule inet pt input ip saddr 10.0.0.0/8 tcp dport 18083 drop",
        "add rule inet pt input iifname eth0 tcp dport 18083 drop",
        "add rule inet pt orphan tcp dport 18083 drop",
        "add table ip ptnat",
        "add chain ip ptnat output '{ type nat hook output priority -100; policy accept; }'",
        "add rule ip ptnat output tcp dport 18084 dnat to 127.0.0.1:18083",
    ] {
        rules.push_str(&nft(r));
    }
    let script = format!(
        "set -e; ip link set lo up; {rules}{listen}\
         {bin} why 127.0.0.1:18083 --timeout 500ms --json || true; \
         echo; {bin} why 127.0.0.1:18084 --timeout 500ms --json || forwarded=$?; \
         nft add rule inet pt input jump checks; nft add rule inet pt checks tcp dport 18083 drop; \
         echo; {bin} why 127.0.0.1:18083 --timeout 500ms --json || true; kill %1 2>/dev/null || true; \
         if [ -n \"$forwarded\" ]; then echo \"why of the forwarded port exited $forwarded\" >&2; exit 1; fi",
        listen = listen_in_namespace("127.0.0.1", 18083),
        bin = env!("CARGO_BIN_EXE_portscope"),
    );
    let (code, out, err) = in_namespace(&script);
    // Also: `why` of the forwarded port exits 0, since it connects.
    assert_eq!(code, 0, "{out}\n{err}");
    let answers: Vec<Diagnosis> = serde_json::Deserializer::from_str(&out)
        .into_iter::<Diagnosis>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    assert_eq!(answers.len(), 3, "{out}");

    // 1. Rules that cannot match loopback: not blamed, and the connection works.
    let firewall = find(&answers[0], "firewall");
    assert_eq!(firewall.verdict, Verdict::Ok, "{firewall:#?}");
    assert!(
        !firewall
            .evidence
            .iter()
            .any(|e| e.contains("10.0.0.0/8") || e.contains("eth0") || e.contains("orphan")),
        "{firewall:#?}"
    );
    assert_eq!(answers[0].verdict, Verdict::Ok, "{:#?}", answers[0]);

    // 2. A drop in a chain input jumps to: followed and blamed.
    let firewall = find(&answers[2], "firewall");
    assert_ne!(firewall.verdict, Verdict::Ok, "{firewall:#?}");
    assert!(
        firewall
            .evidence
            .iter()
            .any(|e| e.contains("chain checks: tcp dport 18083 drop")),
        "{firewall:#?}"
    );

    // 3. The DNAT rule (asked before the drop was added): the port goes elsewhere.
    let forward = find(&answers[1], "forward");
    assert!(
        forward.title.contains("forwarded to 127.0.0.1:18083"),
        "{forward:#?}"
    );
    // It connects although nothing listens on 18084 here: information, not a problem (#10: a
    // forwarded port used to be "nothing listens" as a PROBLEM).
    let listening = find(&answers[1], "listening");
    assert_eq!(listening.verdict, Verdict::Info, "{:#?}", answers[1]);
    assert!(
        listening.title.contains("forwarded elsewhere"),
        "{}",
        listening.title
    );
    assert_ne!(answers[1].verdict, Verdict::Problem, "{:#?}", answers[1]);
}

#[test]
fn who_names_a_child_holder_and_the_parent_that_started_it() {
    let s = Situation::start(&["child", "127.0.0.1"]);
    assert_ne!(s.pid, s.own_pid());
    let (code, out, err) = run_cli(&["who", &s.port.to_string(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let report: portscope_shared::WhoReport = serde_json::from_str(&out).unwrap();
    let owner = &report.owners[0];
    assert_eq!(owner.process.pid, s.pid, "{out}");
    let chain: Vec<u32> = owner.ancestors.iter().map(|p| p.pid).collect();
    assert_eq!(
        chain[..2],
        [s.own_pid(), std::process::id()],
        "child → situation.py → this test: {out}"
    );
}

#[test]
fn a_port_left_in_time_wait_is_explained_by_why_and_bind() {
    let s = Situation::start(&["timewait"]);
    let port = s.port.to_string();
    let d = diagnose(&["why", &format!("127.0.0.1:{port}"), "--json"], 1);
    let listening = find(&d, "listening");
    assert_eq!(listening.verdict, Verdict::Problem);
    assert!(
        listening.title.ends_with("(the port is only in TIME_WAIT)"),
        "{}",
        listening.title
    );
    assert!(
        listening.evidence[0].contains("TIME_WAIT"),
        "{:?}",
        listening.evidence
    );

    // Left by a server without SO_REUSEADDR: even servers that set it cannot bind (Linux needs
    // both to have set it).
    let d = diagnose(&["bind", &port, "--json"], 1);
    assert!(
        d.summary
            .contains("in TIME_WAIT, left by a server that did not set SO_REUSEADDR"),
        "{}",
        d.summary
    );
    assert_eq!(find(&d, "time_wait").verdict, Verdict::Problem);

    // Left by a server with SO_REUSEADDR: servers that set it bind, others do not.
    let s = Situation::start(&["timewait", "reuse"]);
    let d = diagnose(&["bind", &s.port.to_string(), "--json"], 0);
    let tw = find(&d, "time_wait");
    assert_eq!(tw.verdict, Verdict::Warning, "{tw:?}");
    assert!(
        tw.title
            .contains("does not set SO_REUSEADDR gets `address already in use`"),
        "{}",
        tw.title
    );
    assert!(
        d.checks
            .iter()
            .filter(|c| c.id == "bind")
            .all(|c| c.verdict == Verdict::Ok),
        "{d:#?}"
    );
}

#[test]
fn bind_names_the_holder_and_suggests_free_ports() {
    let s = Situation::start(&["listen", "127.0.0.1"]);
    let d = diagnose(&["bind", &s.port.to_string(), "--json"], 1);
    assert_eq!(d.verdict, Verdict::Problem);
    assert!(
        d.summary.contains(&format!(
            "address already in use by python3 (pid {})",
            s.pid
        )),
        "{}",
        d.summary
    );
    let v6only = d
        .checks
        .iter()
        .find(|c| c.title.contains("[::1]") && c.title.contains("IPv6 only"))
        .unwrap();
    assert_eq!(
        v6only.verdict,
        Verdict::Ok,
        "an IPv4 listener leaves [::1] free"
    );
    assert!(!d.free_ports.is_empty());
    for port in &d.free_ports {
        std::net::TcpListener::bind(("0.0.0.0", *port))
            .unwrap_or_else(|e| panic!("suggested port {port} does not bind: {e}"));
    }
}

#[test]
fn bind_explains_a_privileged_port_to_an_ordinary_user() {
    let start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        start > 1,
        "this machine has no privileged ports (ip_unprivileged_port_start = {start}); set it to 1024"
    );
    let port = (start - 1).to_string();
    let bin = env!("CARGO_BIN_EXE_portscope");
    // The ordinary user is `nobody`, and the port's holder root: both need the tests to run as
    // root. Never a silent pass without the root-held half.
    assert!(
        rustix::process::geteuid().is_root(),
        "this test runs `bind` as nobody against a port root holds, which needs root: run the \
         tests as root (`sudo -E cargo xtask test`, as .ci/run does)"
    );
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin]);
    c.args(["bind", &port, "--json"]);
    let (code, out, err) = run(c);
    assert_eq!(code, 1, "{out}\n{err}");
    let d: Diagnosis = serde_json::from_str(&out).unwrap();
    let privileged = find(&d, "privileged");
    assert_eq!(privileged.verdict, Verdict::Problem);
    assert!(privileged.fixes.iter().any(|f| {
        f.command
            .as_deref()
            .is_some_and(|c| c.contains("cap_net_bind_service"))
    }));
    assert!(
        d.summary.contains("need root or CAP_NET_BIND_SERVICE"),
        "{}",
        d.summary
    );
    // Held by root: the ordinary user is told so, not only "permission denied".
    let held = Situation::start(&["listen-at", "127.0.0.1", &port]);
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin])
        .args(["bind", &port, "--json"]);
    let (code, out, err) = run(c);
    assert_eq!(code, 1, "{out}\n{err}");
    let d: Diagnosis = serde_json::from_str(&out).unwrap();
    let first = &d.checks[0];
    assert!(
        first.title.contains("already holds it") && first.title.contains("uid 0"),
        "{}",
        first.title
    );
    drop(held);
}

#[test]
fn bind_warns_about_a_port_in_the_ephemeral_range() {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let first: u16 = text.split_whitespace().next().unwrap().parse().unwrap();
    let port = (first..first + 500)
        .find(|p| {
            std::net::TcpListener::bind(("0.0.0.0", *p)).is_ok()
                && std::net::UdpSocket::bind(("0.0.0.0", *p)).is_ok()
        })
        .unwrap();
    let d = diagnose(&["bind", &port.to_string(), "--json"], 0);
    let ephemeral = find(&d, "ephemeral");
    assert_eq!(ephemeral.verdict, Verdict::Warning);
    assert!(
        ephemeral.title.contains("ephemeral range"),
        "{}",
        ephemeral.title
    );
    assert_eq!(d.verdict, Verdict::Warning);
    assert!(
        d.free_ports.iter().all(|p| *p < first),
        "{:?}",
        d.free_ports
    );
}

#[test]
fn why_reads_the_status_server_and_title_of_an_http_listener() {
    let s = Situation::start(&["http", "127.0.0.1", "Fixture page"]);
    let url = format!("http://127.0.0.1:{}/", s.port);
    let d = diagnose(&["why", &url, "--json"], 0);
    assert_eq!(d.verdict, Verdict::Ok, "{d:#?}");
    let http = find(&d, "http");
    assert!(http.title.contains("HTTP/1.0 200 OK"), "{}", http.title);
    assert!(http.title.contains("Server: BaseHTTP/"), "{}", http.title);
    assert!(
        http.title.contains("title “Fixture page”"),
        "{}",
        http.title
    );
    assert_eq!(d.summary, http.title);
}

#[test]
fn why_names_a_stopped_owner() {
    let s = Situation::start(&["listen", "127.0.0.1"]);
    let pid = rustix::process::Pid::from_raw(s.pid as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    let d = diagnose(
        &[
            "why",
            &format!("127.0.0.1:{}", s.port),
            "--timeout",
            "300ms",
            "--json",
        ],
        0,
    );
    rustix::process::kill_process(pid, rustix::process::Signal::CONT).unwrap();
    let stopped = find(&d, "stopped");
    assert_eq!(stopped.verdict, Verdict::Problem);
    assert!(
        stopped
            .fixes
            .iter()
            .any(|f| f.command.as_deref() == Some(&*format!("kill -CONT {}", s.pid)))
    );
    let http = find(&d, "http");
    assert!(
        http.title.contains("sent nothing")
            && http
                .title
                .contains("portscope sent `GET / HTTP/1.1` after 0.4 s of silence"),
        "it accepts but never answers, and the check says what was sent: {}",
        http.title
    );
    // Its own connects (the TCP probe and the GET) now wait in the stopped listener's accept
    // queue; the queue was read before them, so they are not taken for clients it ignores.
    assert!(
        d.checks.iter().all(|c| c.id != "backlog"),
        "portscope's own probes are not a backlog: {d:#?}"
    );
}

#[test]
fn why_names_a_full_accept_queue() {
    let s = Situation::start(&["deaf", "127.0.0.1"]);
    let d = diagnose(
        &[
            "why",
            &format!("127.0.0.1:{}", s.port),
            "--timeout",
            "300ms",
            "--json",
        ],
        1,
    );
    let backlog = find(&d, "backlog");
    assert_eq!(backlog.verdict, Verdict::Problem, "{d:#?}");
    assert!(
        backlog.title.contains("wait in the accept queue"),
        "{}",
        backlog.title
    );
    assert!(
        d.checks
            .iter()
            .any(|c| c.id == "connect" && c.title.contains("timed out")),
        "{d:#?}"
    );
}

#[test]
fn kill_tree_stops_the_whole_process_group() {
    let mut s = Situation::start_in_own_group(&["child", "127.0.0.1"]);
    let (parent, child) = (s.own_pid(), s.pid);
    let (code, out, err) = run_cli(&["kill", &s.port.to_string(), "--tree"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!("process group {parent}")) && out.contains("2 processes"),
        "{out}"
    );
    assert!(
        s.wait_exit(Duration::from_secs(5)).is_some(),
        "the parent stopped too"
    );
    let child_gone = std::fs::read_to_string(format!("/proc/{child}/stat"))
        .map_or(true, |stat| stat.contains(") Z "));
    assert!(child_gone, "the child stopped");
}

#[test]
fn kill_forces_a_holder_that_ignores_sigterm() {
    let mut s = Situation::start(&["stubborn", "127.0.0.1"]);
    let (code, out, err) = run_cli(&[
        "kill",
        &s.port.to_string(),
        "--force-after",
        "500ms",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let reports: Vec<KillReport> = serde_json::from_str(&out).unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].pid, s.pid);
    assert_eq!(reports[0].outcome, KillOutcome::Forced, "{out}");
    assert!(reports[0].elapsed_ms >= 500, "{out}");
    assert!(
        reports[0]
            .message
            .contains("ignored SIGTERM and still listened without progress for 0.5 s"),
        "{out}"
    );
    let status = s
        .wait_exit(Duration::from_secs(5))
        .expect("the holder is gone");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL");

    // A process that holds no listener (a client, stopped by pid) and ignores SIGTERM: asked
    // to, it is forced on lack of progress alone.
    let mut client = Command::new("python3")
        .args(["-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(client.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    let (code, out, err) = run_cli(&[
        "kill",
        "--pid",
        &client.id().to_string(),
        "--force-after",
        "500ms",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let reports: Vec<KillReport> = serde_json::from_str(&out).unwrap();
    assert_eq!(reports[0].outcome, KillOutcome::Forced, "{out}");
    assert!(
        reports[0]
            .message
            .contains("ignored SIGTERM and made no progress for 0.5 s"),
        "it never listened, so the report does not say it still did: {out}"
    );
    let status = client.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL");
}

/// Progress, not a timer alone: a holder that closes its listener on SIGTERM and then takes 2 s
/// to finish is shutting down, and is not forced although `--force-after` is 500 ms.
#[test]
fn kill_does_not_force_a_holder_that_closed_its_port_and_takes_its_time() {
    use std::os::unix::process::ExitStatusExt;
    let script = "import signal, socket, sys, time\n\
                  s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n\
                  def term(*_):\n    s.close(); time.sleep(2); sys.exit(3)\n\
                  signal.signal(signal.SIGTERM, term)\n\
                  print(s.getsockname()[1], flush=True)\n\
                  while True: time.sleep(1)\n";
    let mut slow = Command::new("python3")
        .args(["-c", script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(slow.stdout.take().unwrap()),
        &mut port,
    )
    .unwrap();
    let (code, out, err) = run_cli(&["kill", port.trim(), "--force-after", "500ms", "--json"]);
    let status = slow.wait().unwrap();
    assert_eq!(code, 0, "{out}\n{err}");
    let reports: Vec<KillReport> = serde_json::from_str(&out).unwrap();
    assert_eq!(reports[0].pid, slow.id(), "{out}");
    assert_eq!(reports[0].outcome, KillOutcome::Exited, "{out}");
    assert!(reports[0].elapsed_ms >= 1500, "it took its time: {out}");
    assert_eq!(
        (status.code(), status.signal()),
        (Some(3), None),
        "it finished its own shutdown, unforced"
    );
}

#[test]
fn kill_stops_a_holder_gracefully_and_refuses_what_it_must_not_touch() {
    let mut s = Situation::start(&["listen", "127.0.0.1"]);
    let (code, out, err) = run_cli(&["kill", "--pid", &s.pid.to_string()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "sent SIGTERM to python3 (pid {}); it exited after",
            s.pid
        )),
        "{out}"
    );
    assert!(s.wait_exit(Duration::from_secs(5)).is_some());

    let (code, _, err) = run_cli(&["kill", "--pid", "1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("refusing to signal pid 1") && err.contains("init"),
        "{err}"
    );
    let (code, _, err) = run_cli(&["kill", "--pid", "4000000"]);
    assert_eq!(code, 2);
    assert!(err.contains("no process with pid 4000000"), "{err}");
    let free = crate::support::free_port().to_string();
    let (code, _, err) = run_cli(&["kill", &free]);
    assert_eq!(code, 1);
    assert!(err.contains(&format!("nothing holds port {free}")), "{err}");
    // A holder started from this test shares its process group: --tree would hit the test.
    let s = Situation::start(&["listen", "127.0.0.1"]);
    let (code, _, err) = run_cli(&["kill", &s.port.to_string(), "--tree"]);
    assert_eq!(code, 1);
    assert!(err.contains("includes portscope itself"), "{err}");
    let (code, _, err) = run_cli(&["kill", &s.port.to_string(), "--signal", "FOO"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown signal `FOO`"), "{err}");
    // A signal that does not ask it to end is delivered, not escalated to KILL.
    let (code, out, err) = run_cli(&[
        "kill",
        "--pid",
        &s.pid.to_string(),
        "--signal",
        "CONT",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let reports: Vec<KillReport> = serde_json::from_str(&out).unwrap();
    assert_eq!(reports[0].outcome, KillOutcome::Signalled, "{out}");
    assert_eq!(
        {
            let mut c = Command::new("kill");
            c.args(["-0", &s.pid.to_string()]);
            run(c).0
        },
        0,
        "still running"
    );
    // A port only a client connection uses: its owner is named, nothing is stopped.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
    let client_port = client.local_addr().unwrap().port().to_string();
    let (code, _, err) = run_cli(&["kill", &client_port]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "nothing listens on port {client_port}; connections that use it belong to"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("(pid {})", std::process::id())),
        "{err}"
    );
}

#[test]
fn free_ports_bind_and_avoid_well_known_ones() {
    let (code, out, err) = run_cli(&["free", "--near", "8000", "--count", "3", "--json"]);
    assert_eq!(code, 0, "{err}");
    let free: FreePorts = serde_json::from_str(&out).unwrap();
    assert_eq!(free.ports.len(), 3, "{out}");
    for port in free.ports {
        assert!(
            ![8000, 8080, 8081, 8443, 8888].contains(&port),
            "{port} is a dev tool's"
        );
        assert!((1024..32768).contains(&port), "{port}");
        std::net::TcpListener::bind(("0.0.0.0", port)).unwrap_or_else(|e| panic!("{port}: {e}"));
    }
}

#[test]
fn free_consecutive_gives_a_block_that_binds() {
    let (code, out, err) = run_cli(&[
        "free",
        "--near",
        "8200",
        "--count",
        "4",
        "--consecutive",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let free: FreePorts = serde_json::from_str(&out).unwrap();
    assert_eq!(free.ports.len(), 4, "{out}");
    assert!(
        free.ports.windows(2).all(|w| w[1] == w[0] + 1),
        "not consecutive: {out}"
    );
    // Each port of the block binds, all at once, as the stack that asked would bind them.
    let held: Vec<_> = free
        .ports
        .iter()
        .map(|&port| {
            std::net::TcpListener::bind(("0.0.0.0", port)).unwrap_or_else(|e| panic!("{port}: {e}"))
        })
        .collect();
    // Asked again while the block is held, it gives another one.
    let (code, again, err) = run_cli(&["free", "--near", "8200", "--count", "4", "--consecutive"]);
    assert_eq!(code, 0, "{err}");
    let again: Vec<u16> = again.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(again.len(), 4, "{again:?}");
    assert!(
        again.iter().all(|p| !free.ports.contains(p)),
        "a held port offered again: {again:?} while holding {:?}",
        free.ports
    );
    drop(held);
}

#[test]
fn bad_targets_get_one_line_errors_and_exit_2() {
    for (target, says) in [
        ("0", "out of range"),
        ("65536", "out of range"),
        ("::1:80", "without brackets"),
        ("localhost:http", "not a port number"),
        ("http://", "no host"),
        ("nosuch.invalid:80", "cannot resolve"),
    ] {
        let (code, out, err) = run_cli(&["why", target]);
        assert_eq!(code, 2, "why {target}: {out}{err}");
        assert!(err.contains(says), "why {target}: {err}");
        assert!(out.is_empty(), "why {target}: {out}");
    }
}

#[test]
fn the_api_answers_why_and_bind_and_stops_socket_owners_only() {
    let agent = Agent::start();
    let s = Situation::start(&["listen", "127.0.0.1"]);

    let res = agent.get(&format!("/api/v1/why?target=127.0.0.1:{}", s.port));
    assert_eq!(res.status, 200, "{}", res.body);
    let d: Diagnosis = serde_json::from_str(&res.body).unwrap();
    assert!(
        d.summary.contains(&format!("pid {}", s.pid)),
        "{}",
        d.summary
    );
    let res = agent.get(&format!("/api/v1/bind?port={}", s.port));
    let d: Diagnosis = serde_json::from_str(&res.body).unwrap();
    assert_eq!(d.verdict, Verdict::Problem);
    // Not a way to probe other hosts (192.0.2.1 is TEST-NET-1: never contacted, it is not local).
    let res = agent.get("/api/v1/why?target=192.0.2.1:80");
    assert_eq!(res.status, 400);
    assert!(res.body.contains("local ports only"), "{}", res.body);
    assert_eq!(agent.get("/api/v1/bind?port=0").status, 400);

    // The start time the dashboard would send, from the agent's own snapshot.
    let start_time = |pid: u32| -> u64 {
        let snapshot: portscope_shared::Snapshot =
            serde_json::from_str(&agent.get("/api/v1/snapshot").body).unwrap();
        snapshot
            .processes
            .iter()
            .find(|p| p.pid == pid)
            .and_then(|p| p.start_time)
            .unwrap_or(1)
    };
    let kill = |pid: u32, extra: &[(&str, &str)]| {
        let body = format!(
            "{{\"pid\":{pid},\"start_time\":{},\"force_after_ms\":2000}}",
            start_time(pid)
        );
        agent.post("/api/v1/kill", &body, extra)
    };
    crate::support::wait_for(
        "the agent to see the listener",
        Duration::from_secs(10),
        || {
            agent
                .get("/api/v1/snapshot")
                .body
                .contains(&format!("\"pids\":[{}]", s.pid))
                .then_some(())
        },
    );
    let res = kill(s.pid, &[("Sec-Fetch-Site", "cross-site")]);
    assert!(res.body.contains("cross_site"), "{}", res.body);
    assert_eq!(res.status, 403, "{}", res.body);
    // A process that holds no socket (never this test process: it holds sockets of its own
    // while other tests run, and would be a legitimate target).
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let res = kill(sleeper.id(), &[]);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(res.status, 403, "{}", res.body);
    assert!(res.body.contains("not_a_socket_owner"), "{}", res.body);
    // Bad bodies and bad queries get JSON errors, not plain-text rejections.
    let bad = agent.post("/api/v1/kill", "not json", &[]);
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("bad_request"), "{}", bad.body);
    // The start time is required: without it a reused pid could not be told apart.
    let bare = agent.post("/api/v1/kill", &format!("{{\"pid\":{}}}", s.pid), &[]);
    assert_eq!(bare.status, 400, "{}", bare.body);
    assert!(
        bare.body.contains("missing field `start_time`"),
        "{}",
        bare.body
    );
    let res = agent.get("/api/v1/free?near=abc");
    assert_eq!(res.status, 400);
    assert!(res.body.contains("?near= must be a number"), "{}", res.body);
    // `who` and `bind` take what `why` takes.
    let res = agent.get(&format!("/api/v1/who?port=localhost:{}", s.port));
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(
        res.body.contains(&format!("\"pid\": {}", s.pid))
            || res.body.contains(&format!("\"pid\":{}", s.pid)),
        "{}",
        res.body
    );
    // A start time that is not the process's: the pid is taken to name another process.
    let stale = format!("{{\"pid\":{},\"start_time\":1}}", s.pid);
    let res = agent.post("/api/v1/kill", &stale, &[]);
    assert_eq!(res.status, 403, "{}", res.body);
    assert!(res.body.contains("process_changed"), "{}", res.body);

    let res = kill(s.pid, &[("Sec-Fetch-Site", "same-origin")]);
    assert_eq!(res.status, 200, "{}", res.body);
    let report: KillReport = serde_json::from_str(&res.body).unwrap();
    assert_eq!(report.outcome, KillOutcome::Exited, "{}", res.body);
}

/// The API answers from the agent's live model (one tick old at most), and reads the machine
/// again when the model cannot be right yet: a listener opened just before the question.
#[test]
fn the_api_sees_a_listener_opened_since_the_last_tick() {
    let agent = Agent::start_ticking("2s");
    for _ in 0..3 {
        let s = Situation::start(&["listen", "127.0.0.1"]);
        let res = agent.get(&format!("/api/v1/why?target=127.0.0.1:{}", s.port));
        let d: Diagnosis = serde_json::from_str(&res.body).unwrap();
        let listening = find(&d, "listening");
        assert_eq!(listening.verdict, Verdict::Ok, "{d:#?}");
        assert!(
            listening.title.contains(&format!("(pid {})", s.pid)),
            "{}",
            listening.title
        );
        let s = Situation::start(&["listen", "127.0.0.1"]);
        let res = agent.get(&format!("/api/v1/who?port={}", s.port));
        assert!(
            res.body.contains(&format!("\"pid\": {}", s.pid))
                || res.body.contains(&format!("\"pid\":{}", s.pid)),
            "{}",
            res.body
        );
        let s = Situation::start(&["listen", "0.0.0.0"]);
        let res = agent.get(&format!("/api/v1/bind?port={}", s.port));
        assert!(res.body.contains(&format!("pid {}", s.pid)), "{}", res.body);
    }
}

/// Full scans the agent's doctor made (`portscope_doctor_scans_total` in `/metrics`).
fn doctor_scans(agent: &Agent) -> u64 {
    let metrics = agent.get("/metrics").body;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("portscope_doctor_scans_total "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no portscope_doctor_scans_total in /metrics:\n{metrics}"))
}

/// Every doctor route answers from the live model when it is fresh (the agent ticks faster than
/// `LIVE_ENOUGH`) and the socket asked about is in it: not one full scan of the machine (each
/// costs 0.27 s at 21 000 sockets). An agent that ticks slower scans for each question.
#[test]
fn the_api_answers_from_the_live_model_without_a_full_scan() {
    let agent = Agent::start();
    let s = Situation::start(&["listen", "127.0.0.1"]);
    let start_time = shown_start_time(&agent, s.pid);
    assert_eq!(doctor_scans(&agent), 0);
    for path in [
        format!("/api/v1/who?port={}", s.port),
        format!("/api/v1/why?target=127.0.0.1:{}", s.port),
        format!("/api/v1/bind?port={}", s.port),
        "/api/v1/free?near=8100".to_owned(),
    ] {
        let res = agent.get(&path);
        assert_eq!(res.status, 200, "{path}: {}", res.body);
        assert!(
            path.contains("free") || res.body.contains(&format!("{}", s.pid)),
            "{path}: {}",
            res.body
        );
        assert_eq!(doctor_scans(&agent), 0, "{path} scanned the machine");
    }
    let body = format!("{{\"pid\":{},\"start_time\":{start_time}}}", s.pid);
    let res = agent.post("/api/v1/kill", &body, &[("Sec-Fetch-Site", "same-origin")]);
    assert_eq!(res.status, 200, "{}", res.body);
    let report: KillReport = serde_json::from_str(&res.body).unwrap();
    assert_eq!(report.outcome, KillOutcome::Exited, "{}", res.body);
    assert_eq!(doctor_scans(&agent), 0, "kill scanned the machine");

    // The counter does see scans: an agent polling every 5 s (its model may be that old)
    // reads the machine.
    let slow = Agent::start_exactly(&["--interval", "5s", "--no-kernel-events"]);
    let s = Situation::start(&["listen", "127.0.0.1"]);
    let res = slow.get(&format!("/api/v1/who?port={}", s.port));
    assert!(res.body.contains(&format!("{}", s.pid)), "{}", res.body);
    assert_eq!(doctor_scans(&slow), 1);
}

/// The dashboard's `kill` of a database that does not stop (a stand-in named `redis-server`
/// that ignores SIGTERM): after the 10 s wait it is reported still running, not forced, with the
/// local client that keeps it busy named — read from the live model, without a full scan.
#[test]
fn the_dashboards_kill_names_a_running_databases_clients_without_a_full_scan() {
    let agent = Agent::start();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("redis-server");
    std::fs::write(
        &script,
        "import signal, socket, time\n\
         signal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
         s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n\
         print(s.getsockname()[1], flush=True)\n\
         c, _ = s.accept()\n\
         time.sleep(120)\n",
    )
    .unwrap();
    let mut db = Command::new("python3")
        .arg(&script)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(db.stdout.take().unwrap()),
        &mut port,
    )
    .unwrap();
    let port: u16 = port.trim().parse().unwrap();
    let mut client = Command::new("python3")
        .args([
            "-c",
            &format!("import socket, time; s = socket.create_connection(('127.0.0.1', {port})); time.sleep(120)"),
        ])
        .spawn()
        .unwrap();
    let start_time = crate::support::wait_for(
        "the agent to see the server and its client",
        Duration::from_secs(10),
        || {
            let snapshot: portscope_shared::Snapshot =
                serde_json::from_str(&agent.get("/api/v1/snapshot").body).ok()?;
            snapshot
                .sockets
                .iter()
                .any(|x| x.remote_port == Some(port) && x.pids.contains(&client.id()))
                .then_some(())?;
            snapshot
                .processes
                .iter()
                .find(|p| p.pid == db.id())
                .and_then(|p| p.start_time)
        },
    );
    let body = format!("{{\"pid\":{},\"start_time\":{start_time}}}", db.id());
    let res = agent.post("/api/v1/kill", &body, &[("Sec-Fetch-Site", "same-origin")]);
    let (_, _) = (db.kill(), client.kill());
    let (_, _) = (db.wait(), client.wait());
    assert_eq!(res.status, 200, "{}", res.body);
    let report: KillReport = serde_json::from_str(&res.body).unwrap();
    assert_eq!(report.outcome, KillOutcome::StillRunning, "{}", res.body);
    assert!(
        report
            .message
            .contains(&format!("python3 (pid {})", client.id()))
            && report.message.contains("Not forced: Redis is a database"),
        "{}",
        report.message
    );
    assert_eq!(doctor_scans(&agent), 0, "kill scanned the machine");
}

/// "Speaks HTTP" comes from what a listener answered, not from its port: a program portscope
/// does not know is not marked HTTP until `why` heard it answer HTTP, and then it is.
#[test]
fn a_listener_that_answered_http_is_marked_as_speaking_it() {
    let agent = Agent::start();
    let s = Situation::start(&["http", "127.0.0.1", "Answers"]);
    let http_flag = || -> Option<bool> {
        let snapshot: portscope_shared::Snapshot =
            serde_json::from_str(&agent.get("/api/v1/snapshot").body).ok()?;
        snapshot
            .sockets
            .iter()
            .find(|x| x.local_port == s.port && x.state == portscope_shared::SocketState::Listen)
            .map(|x| x.http)
    };
    let before = crate::support::wait_for("the listener", Duration::from_secs(10), http_flag);
    assert!(
        !before,
        "python3 running a script is not known to speak HTTP"
    );
    let res = agent.get(&format!("/api/v1/why?target=127.0.0.1:{}", s.port));
    assert!(res.body.contains("answers HTTP"), "{}", res.body);
    crate::support::wait_for(
        "the listener to be marked HTTP",
        Duration::from_secs(10),
        || http_flag().filter(|h| *h),
    );
}

/// The start time the dashboard would send for `pid`, once the agent shows it holding a socket.
#[track_caller]
fn shown_start_time(agent: &Agent, pid: u32) -> u64 {
    crate::support::wait_for(
        "the agent to show the process holding its socket",
        Duration::from_secs(10),
        || {
            let snapshot: portscope_shared::Snapshot =
                serde_json::from_str(&agent.get("/api/v1/snapshot").body).ok()?;
            snapshot
                .sockets
                .iter()
                .any(|x| x.pids.contains(&pid))
                .then_some(())?;
            snapshot
                .processes
                .iter()
                .find(|p| p.pid == pid)
                .and_then(|p| p.start_time)
        },
    )
}

/// `POST /api/v1/kill` of `pid` as the dashboard sends it.
fn stop_from_dashboard(agent: &Agent, pid: u32) -> crate::support::HttpResponse {
    let body = format!(
        "{{\"pid\":{pid},\"start_time\":{},\"force_after_ms\":2000}}",
        shown_start_time(agent, pid)
    );
    agent.post("/api/v1/kill", &body, &[("Sec-Fetch-Site", "same-origin")])
}

fn runs(pid: u32) -> bool {
    let mut c = Command::new("kill");
    c.args(["-0", &pid.to_string()]);
    run(c).0 == 0
}

/// A listener run as user `uid` (through setpriv; the tests run as root), by Debian's python3:
/// another user may not run root's own (a pyenv under /root, say).
#[track_caller]
pub(crate) fn listener_of(uid: u32) -> Situation {
    assert!(
        std::path::Path::new("/usr/bin/python3").exists(),
        "this test runs /usr/bin/python3 as other users: apt-get install python3"
    );
    let (reuid, regid) = (format!("--reuid={uid}"), format!("--regid={uid}"));
    Situation::start_wrapped(
        "setpriv",
        &[&reuid, &regid, "--clear-groups", "/usr/bin/python3"],
        &["listen", "127.0.0.1"],
    )
}

/// A root agent's dashboard stops no daemon: a process of root or of a system account (below
/// UID_MIN) is refused with `system_process` unless the agent was started with
/// `--allow-kill-system`; started through sudo or pkexec it stops the invoking user's processes
/// and no one else's. Its Hello says so, for the dashboard.
#[test]
fn a_root_agents_dashboard_stops_no_daemon_unless_told_to() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test runs agents as root and processes as other users: run the tests as root \
         (`sudo -E cargo xtask test`, as .ci/run does)"
    );
    let agent = Agent::start_strict(&[], &[]);
    let hello = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut ws = agent.connect().await;
        match ws.next(Duration::from_secs(10)).await {
            portscope_shared::ServerMessage::Hello(hello) => hello,
            other => panic!("Hello expected, got {other:?}"),
        }
    });
    let scope = hello
        .kill_scope
        .expect("the Hello says whose processes it stops");
    assert_eq!(
        (scope.uid, scope.root, scope.allow_system),
        (Some(0), true, false),
        "{scope:?}"
    );
    let rootd = Situation::start(&["listen", "127.0.0.1"]);
    let www = listener_of(33);
    for (what, pid) in [("root's", rootd.pid), ("www-data's (uid 33)", www.pid)] {
        let res = stop_from_dashboard(&agent, pid);
        assert_eq!(res.status, 403, "{what}: {}", res.body);
        assert!(
            res.body.contains("\"system_process\""),
            "{what}: {}",
            res.body
        );
        assert!(
            res.body.contains("--allow-kill-system"),
            "{what}: {}",
            res.body
        );
        assert!(runs(pid), "{what} process still runs");
    }
    drop(agent);

    // Started by sudo (or pkexec) from uid 4242: that user's process stops, root's does not.
    for var in ["SUDO_UID", "PKEXEC_UID"] {
        let agent = Agent::start_strict(&[], &[(var, "4242")]);
        let mine = listener_of(4242);
        let res = stop_from_dashboard(&agent, rootd.pid);
        assert_eq!(res.status, 403, "{var}: {}", res.body);
        assert!(
            res.body.contains("\"system_process\""),
            "{var}: {}",
            res.body
        );
        let res = stop_from_dashboard(&agent, mine.pid);
        assert_eq!(res.status, 200, "{var}: {}", res.body);
        let report: KillReport = serde_json::from_str(&res.body).unwrap();
        assert_eq!(report.outcome, KillOutcome::Exited, "{var}: {}", res.body);
        let other = listener_of(4343);
        let res = stop_from_dashboard(&agent, other.pid);
        assert_eq!(res.status, 403, "{var}: {}", res.body);
        assert!(res.body.contains("\"other_user\""), "{var}: {}", res.body);
    }

    // Told to: root's and system accounts' processes stop.
    let agent = Agent::start_strict(&["--allow-kill-system"], &[]);
    for pid in [rootd.pid, www.pid] {
        let res = stop_from_dashboard(&agent, pid);
        assert_eq!(res.status, 200, "{}", res.body);
        let report: KillReport = serde_json::from_str(&res.body).unwrap();
        assert_eq!(report.outcome, KillOutcome::Exited, "{}", res.body);
    }
}

#[test]
fn an_agent_started_with_no_kill_stops_nothing() {
    let agent = Agent::start_with(&["--no-kill"]);
    let s = Situation::start(&["listen", "127.0.0.1"]);
    let res = agent.post("/api/v1/kill", &format!("{{\"pid\":{}}}", s.pid), &[]);
    assert_eq!(res.status, 403, "{}", res.body);
    assert!(res.body.contains("read_only"), "{}", res.body);
    assert!(
        {
            let mut c = Command::new("kill");
            c.args(["-0", &s.pid.to_string()]);
            run(c).0 == 0
        },
        "still running"
    );
}

#[test]
fn a_second_agent_on_a_taken_port_names_the_first_and_suggests_a_free_port() {
    let agent = Agent::start();
    let (code, _, err) = run_cli(&["serve", "--port", &agent.port.to_string()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("It is another portscope"), "{err}");
    assert!(
        err.contains(&format!("http://127.0.0.1:{}/", agent.port)),
        "{err}"
    );
    let suggested: u16 = err
        .split("Start with --port ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port suggested: {err}"));
    std::net::TcpListener::bind(("127.0.0.1", suggested))
        .unwrap_or_else(|e| panic!("the suggested port {suggested} does not bind: {e}"));
}

#[test]
fn ls_exposed_lists_listeners_beyond_loopback_with_names_and_risks() {
    // A port that /etc/services names, free here, for the IANA name.
    let services = std::fs::read_to_string("/etc/services")
        .expect("/etc/services is missing (Debian: apt-get install netbase)");
    let (named_port, name) = services
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.next()?;
            let (port, proto) = fields.next()?.split_once('/')?;
            let port: u16 = port.parse().ok()?;
            (proto == "tcp" && port > 1024 && !name.starts_with('#'))
                .then(|| (port, name.to_owned()))
        })
        .find(|(port, _)| std::net::TcpListener::bind(("0.0.0.0", *port)).is_ok())
        .expect("no free port named in /etc/services");
    let named = Situation::start(&["listen-at", "0.0.0.0", &named_port.to_string()]);
    // A debugger on all interfaces (its command line carries --inspect=0.0.0.0:PORT).
    let debug_port = crate::support::free_port().to_string();
    let inspector = Situation::start(&[
        "listen-at",
        "0.0.0.0",
        &debug_port,
        &format!("--inspect=0.0.0.0:{debug_port}"),
    ]);
    let local = Situation::start(&["listen", "127.0.0.1"]);

    let (code, out, err) = run_cli(&["ls", "--exposed", "--json"]);
    assert_eq!(code, 0, "{err}");
    let snapshot: portscope_shared::Snapshot = serde_json::from_str(&out).unwrap();
    let on = |port: u16| {
        snapshot
            .sockets
            .iter()
            .find(|s| s.local_port == port && s.is_listening())
    };
    let named_socket = on(named.port).unwrap_or_else(|| panic!("{named_port} missing: {out}"));
    assert_eq!(named_socket.exposure, Some(portscope_shared::Exposure::All));
    assert_eq!(named_socket.service.as_deref(), Some(name.as_str()));
    let debug = on(inspector.port).unwrap_or_else(|| panic!("inspector missing: {out}"));
    assert_eq!(debug.app.as_deref(), Some("Node.js inspector"));
    assert!(
        debug
            .risk
            .as_deref()
            .is_some_and(|r| r.contains("runs any code")),
        "{debug:?}"
    );
    assert!(
        on(local.port).is_none(),
        "a loopback listener is not exposed: {out}"
    );
    assert!(snapshot.sockets.iter().all(|s| {
        s.exposure
            .is_some_and(|e| e != portscope_shared::Exposure::Loopback)
    }));

    let (_, text, _) = run_cli(&["ls", "--exposed"]);
    assert!(
        text.contains(&format!(
            "warning: 0.0.0.0:{} Node.js inspector: listens on all interfaces",
            inspector.port
        )),
        "{text}"
    );
}

/// `wait`: ready once a listener appears (it opens a second after the wait starts); a port that
/// never opens times out with exit 1 and the doctor's reason; `--http` waits for a 2xx/3xx on
/// the path, not for the port alone; bad input is exit 2.
#[test]
fn wait_blocks_until_ports_are_ready_and_says_why_when_they_are_not() {
    let port = crate::support::free_port();
    let bin = env!("CARGO_BIN_EXE_portscope");
    let mut waiting = Command::new(bin)
        .args([
            "wait",
            &port.to_string(),
            "--timeout",
            "20s",
            "--host",
            "127.0.0.1",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "wait returned before the port opened"
    );
    let listener = Situation::start(&["listen-at", "127.0.0.1", &port.to_string()]);
    let status = crate::support::wait_for("wait to return", Duration::from_secs(15), || {
        waiting.try_wait().unwrap()
    });
    assert!(status.success(), "{status:?}");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut waiting.stdout.take().unwrap(), &mut out).unwrap();
    assert!(
        out.contains(&format!("port {port} is ready (127.0.0.1:{port})")),
        "{out}"
    );
    drop(listener);

    // A port that never opens: `wait` waits the whole timeout (not a moment less), then says
    // why, within a margin past it.
    let closed = crate::support::free_port().to_string();
    let started = std::time::Instant::now();
    let (code, _, err) = run_cli(&["wait", &closed, "--timeout", "2s", "--host", "127.0.0.1"]);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(12),
        "wait --timeout 2s returned after {took:?}"
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("port {closed} is not ready after 2s"))
            && err.contains(&format!("nothing listens on TCP port {closed}")),
        "the reason, in the doctor's words: {err}"
    );

    // An HTTP server whose /ready.txt appears later: the port alone is not enough.
    let dir = tempfile::tempdir().unwrap();
    let files = Situation::start(&["files", dir.path().to_str().unwrap()]);
    let http_port = files.port.to_string();
    let args = [
        "wait",
        &http_port,
        "--http",
        "/ready.txt",
        "--timeout",
        "20s",
        "--host",
        "127.0.0.1",
    ];
    let mut waiting = Command::new(bin)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert!(waiting.try_wait().unwrap().is_none(), "a 404 is not ready");
    std::fs::write(dir.path().join("ready.txt"), "ok").unwrap();
    let status = crate::support::wait_for("wait --http to return", Duration::from_secs(15), || {
        waiting.try_wait().unwrap()
    });
    assert!(status.success(), "{status:?}");
    let started = std::time::Instant::now();
    let (code, _, err) = run_cli(&[
        "wait",
        &http_port,
        "--http",
        "/missing",
        "--timeout",
        "2s",
        "--host",
        "127.0.0.1",
    ]);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(12),
        "a 404 kept it waiting the whole timeout: returned after {took:?}"
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("404"), "{err}");

    for bad in [
        &["wait"][..],
        &["wait", "abc"],
        &["wait", "80", "--http", "no-slash"],
    ] {
        let (code, _, err) = run_cli(bad);
        assert_eq!(code, 2, "{bad:?}: {err}");
    }
}
