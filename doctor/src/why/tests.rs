//! `why`'s checks with made-up facts, and its gathering's pure parts.

use portscope_core::testing::listener;
use std::net::{Ipv4Addr, Ipv6Addr};

use portscope_shared::{Check, Diagnosis, Verdict};

use super::checks::*;
use super::*;
use crate::firewall;
use crate::probe::Http;

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn facts(target: &str, probes: Vec<(IpAddr, Connect)>, sockets: Vec<Socket>) -> Facts {
    Facts {
        target: Some(crate::target::parse(target).unwrap()),
        probes,
        local: true,
        sockets,
        ..Facts::default()
    }
}

fn ids(d: &Diagnosis) -> Vec<(&str, Verdict)> {
    d.checks
        .iter()
        .map(|c| (c.id.as_str(), c.verdict))
        .collect()
}

#[test]
fn nothing_listening_is_the_problem_and_time_wait_is_evidence() {
    let mut tw = listener(V4, 5173, 0);
    tw.state = SocketState::TimeWait;
    tw.pids.clear();
    let d = analyze(&facts(
        "127.0.0.1:5173",
        vec![(V4, Connect::Refused)],
        vec![tw],
    ));
    assert_eq!(d.verdict, Verdict::Problem);
    assert!(
        d.summary
            .contains("nothing listens on TCP port 5173 (the port is only in TIME_WAIT)"),
        "{}",
        d.summary
    );
    let listening = d.checks.iter().find(|c| c.id == "listening").unwrap();
    assert!(listening.evidence[0].contains("TIME_WAIT"));
}

#[test]
fn localhost_to_an_ipv4_only_server_warns_about_the_ipv6_first_trap() {
    let f = facts(
        "localhost:5173",
        vec![
            (V6, Connect::Refused),
            (V4, Connect::Connected(Duration::from_millis(1))),
        ],
        vec![listener(V4, 5173, 7)],
    );
    let d = analyze(&f);
    let family = d
        .checks
        .iter()
        .find(|c| c.id == "family")
        .expect("family check");
    assert_eq!(family.verdict, Verdict::Warning);
    assert!(
        family.title.contains("IPv4 only (127.0.0.1:5173)"),
        "{}",
        family.title
    );
    assert!(
        family.title.contains("localhost resolves to ::1 first"),
        "{}",
        family.title
    );
    assert_eq!(d.verdict, Verdict::Warning);
}

#[test]
fn a_name_that_resolves_to_one_address_fails_every_client_not_only_some() {
    // localhost → 127.0.0.1 alone (no ::1 line in the hosts file), an IPv6-only server.
    let d = analyze(&facts(
        "localhost:5173",
        vec![(V4, Connect::Refused)],
        vec![listener(V6, 5173, 7)],
    ));
    let family = d.checks.iter().find(|c| c.id == "family").expect("family");
    assert_eq!(family.verdict, Verdict::Problem);
    assert!(
        family
            .title
            .contains("localhost resolves to 127.0.0.1 alone, so every client of localhost fails"),
        "{}",
        family.title
    );
    assert!(!family.title.contains("fall back"), "{}", family.title);
}

#[test]
fn ipv4_client_to_an_ipv6_only_server_is_a_problem() {
    let d = analyze(&facts(
        "127.0.0.1:3000",
        vec![(V4, Connect::Refused)],
        vec![listener(V6, 3000, 7)],
    ));
    assert_eq!(
        ids(&d)[..3],
        [
            ("connect", Verdict::Problem),
            ("listening", Verdict::Ok),
            ("family", Verdict::Problem)
        ]
    );
    let d = analyze(&facts(
        "127.0.0.1:3000",
        vec![(V4, Connect::Refused)],
        vec![listener(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 3000, 7)],
    ));
    assert!(d.summary.contains("IPV6_V6ONLY"), "{}", d.summary);
}

#[test]
fn a_listener_on_an_interface_address_is_not_on_loopback() {
    let lan: IpAddr = "10.200.0.1".parse().unwrap();
    let d = analyze(&facts(
        "127.0.0.1:8080",
        vec![(V4, Connect::Refused)],
        vec![listener(lan, 8080, 7)],
    ));
    assert!(
        d.summary.contains("listens only on 10.200.0.1:8080"),
        "{}",
        d.summary
    );
    assert_eq!(
        d.checks.iter().find(|c| c.id == "interface").unwrap().fixes[0]
            .command
            .as_deref(),
        Some("nc -vz 10.200.0.1 8080"),
        "an unknown program gets a plain TCP test, not curl"
    );
}

/// Facts about one listener owned by a process (pid 9) with this command line.
fn owned(target: &str, probe: Connect, addr: IpAddr, port: u16, cmd: &[&str]) -> Facts {
    let mut f = facts(
        target,
        vec![(target_ip(target), probe)],
        vec![listener(addr, port, 9)],
    );
    f.processes
        .insert(9, portscope_core::testing::process(cmd[0], cmd));
    f
}

/// A listener that took the connection.
fn live(target: &str, addr: IpAddr, port: u16, cmd: &[&str]) -> Facts {
    owned(target, Connect::Connected(Duration::ZERO), addr, port, cmd)
}

fn target_ip(target: &str) -> IpAddr {
    crate::target::parse(target)
        .unwrap()
        .literal()
        .unwrap_or(V4)
}

fn commands(d: &Diagnosis) -> Vec<String> {
    d.checks
        .iter()
        .flat_map(|c| c.fixes.iter().filter_map(|f| f.command.clone()))
        .collect()
}

#[test]
fn an_answer_says_when_the_server_logs_even_a_bare_connect() {
    let mut sshd = live("127.0.0.1:2222", V4, 2222, &["sshd", "-D"]);
    let Speaks::Other(why) = speaks(&sshd, 2222) else {
        panic!("{:?}", speaks(&sshd, 2222))
    };
    sshd.answer = Some((SocketAddr::new(V4, 2222), Answer::NotSent(why)));
    let d = analyze(&sshd);
    let answer = d.checks.iter().find(|c| c.id == "answer").unwrap();
    assert!(
        answer.evidence.iter().any(|e| e
            .starts_with("SSH server logs even this connect and close")
            && e.contains("kex_exchange_identification")),
        "{answer:#?}"
    );
    // Redis logs no bare connect: nothing said.
    let mut redis = live("127.0.0.1:6379", V4, 6379, &["redis-server"]);
    redis.answer = Some((
        SocketAddr::new(V4, 6379),
        Answer::NotSent("Redis speaks RESP".into()),
    ));
    let d = analyze(&redis);
    let answer = d.checks.iter().find(|c| c.id == "answer").unwrap();
    assert_eq!(answer.evidence.len(), 1, "{answer:#?}");
}

#[test]
fn nothing_is_sent_to_programs_known_not_to_speak_http() {
    let redis = live("[::1]:6380", V6, 6380, &["redis-server", "::1:6380"]);
    assert!(
        matches!(speaks(&redis, 6380), Speaks::Other(ref why) if why.contains("Redis (pid 9) speaks the Redis protocol")),
        "{:?}",
        speaks(&redis, 6380)
    );
    let pg = live("127.0.0.1:15432", V4, 15432, &["postgres", "-D", "/data"]);
    assert!(matches!(speaks(&pg, 15432), Speaks::Other(_)));
    // An unknown program on Redis's port: the port's protocol, said as a guess.
    let python = live("127.0.0.1:6379", V4, 6379, &["python3", "server.py"]);
    assert!(
        matches!(speaks(&python, 6379), Speaks::Other(ref why) if why.contains("usually Redis")),
        "{:?}",
        speaks(&python, 6379)
    );
    let apache = live("127.0.0.1:6379", V4, 6379, &["apache2", "-k", "start"]);
    assert_eq!(
        speaks(&apache, 6379),
        Speaks::Http,
        "a known HTTP server beats the port"
    );
    // nginx can relay Redis on its port (a `stream` block): no HTTP until it answered some.
    let mut nginx = live("127.0.0.1:6379", V4, 6379, &["nginx", "-g", "daemon off;"]);
    assert!(
        matches!(speaks(&nginx, 6379), Speaks::Proxy(ref why) if why.contains("nginx (pid 9) can relay any protocol")),
        "{:?}",
        speaks(&nginx, 6379)
    );
    for s in &mut nginx.sockets {
        s.http = true; // `why` heard it answer HTTP
    }
    assert_eq!(speaks(&nginx, 6379), Speaks::Http);
    let unknown = live("127.0.0.1:18080", V4, 18080, &["python3", "server.py"]);
    assert_eq!(speaks(&unknown, 18080), Speaks::Unknown);

    let mut f = redis;
    f.answer = Some((
        SocketAddr::new(V6, 6380),
        Answer::NotSent("Redis (pid 9) speaks RESP, not HTTP".into()),
    ));
    let d = analyze(&f);
    let answer = d.checks.iter().find(|c| c.id == "answer").unwrap();
    assert!(
        answer.title.starts_with("sent nothing to [::1]:6380"),
        "{}",
        answer.title
    );
    assert_eq!(
        answer.fixes[0].command.as_deref(),
        Some("redis-cli -h ::1 -p 6380 ping")
    );
}

#[test]
fn each_answer_says_what_was_sent() {
    let mut f = live("127.0.0.1:18080", V4, 18080, &["python3", "server.py"]);
    let title = |f: &Facts, id: &str| {
        let d = analyze(f);
        d.checks
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no {id} check: {d:#?}"))
            .title
            .clone()
    };
    let addr = SocketAddr::new(V4, 18080);
    f.answer = Some((addr, Answer::Greeting("SSH-2.0-OpenSSH_9.2p1".into())));
    let t = title(&f, "answer");
    assert!(
        t.contains("“SSH-2.0-OpenSSH_9.2p1”") && t.contains("sent nothing"),
        "{t}"
    );
    let sent = |listened, reply| Answer::Http {
        request: "GET / HTTP/1.1".into(),
        listened,
        reply,
    };
    f.answer = Some((
        addr,
        sent(probe::LISTEN_FIRST, Http::Silent(Duration::from_secs(2))),
    ));
    let t = title(&f, "http");
    assert!(
        t.contains("portscope sent `GET / HTTP/1.1` after 0.4 s of silence")
            && t.contains("no answer"),
        "{t}"
    );
    f.answer = Some((addr, sent(probe::LISTEN_FIRST, Http::Other("-ERR".into()))));
    let t = title(&f, "http");
    assert!(
        t.contains("portscope sent `GET / HTTP/1.1`") && t.contains("“-ERR”"),
        "{t}"
    );
    let ok = Http::Response {
        status: "HTTP/1.0 200 OK".into(),
        server: None,
        title: None,
    };
    f.answer = Some((addr, sent(Duration::ZERO, ok)));
    let t = title(&f, "http");
    assert!(t.ends_with("(portscope sent `GET / HTTP/1.1`)"), "{t}");
    f.answer = Some((
        addr,
        Answer::Unreached("the server closed the connection without a word".into()),
    ));
    let t = title(&f, "answer");
    assert!(t.starts_with("sent nothing to 127.0.0.1:18080"), "{t}");
}

#[test]
fn fixes_fit_the_program() {
    // Redis on ::1 only, asked on 127.0.0.1: redis-cli, not curl or Node.
    let d = analyze(&owned(
        "127.0.0.1:6380",
        Connect::Refused,
        V6,
        6380,
        &["redis-server", "::1:6380"],
    ));
    let cmds = commands(&d);
    assert!(
        cmds.contains(&"redis-cli -h ::1 -p 6380 ping".to_owned()),
        "{cmds:?}"
    );
    assert!(!cmds.iter().any(|c| c.contains("curl")), "{cmds:?}");
    let text: Vec<&str> = d
        .checks
        .iter()
        .flat_map(|c| c.fixes.iter().map(|f| f.text.as_str()))
        .collect();
    assert!(
        text.iter().any(|t| t.contains("bind 127.0.0.1 ::1")),
        "{text:?}"
    );
    assert!(!text.iter().any(|t| t.contains("Node")), "{text:?}");

    // PostgreSQL on 127.0.0.1 only, asked on ::1: psql and listen_addresses.
    let d = analyze(&owned(
        "[::1]:15432",
        Connect::Refused,
        V4,
        15432,
        &["postgres", "-D", "/data"],
    ));
    assert!(
        commands(&d).contains(&"psql -h 127.0.0.1 -p 15432".to_owned()),
        "{:?}",
        commands(&d)
    );
    assert!(
        d.checks
            .iter()
            .flat_map(|c| &c.fixes)
            .any(|f| f.text.contains("listen_addresses"))
    );

    // A Node dev server on 127.0.0.1 asked on ::1: curl and the Node hint.
    let d = analyze(&owned(
        "http://[::1]:5173/",
        Connect::Refused,
        V4,
        5173,
        &["node", "/app/node_modules/.bin/vite"],
    ));
    assert!(
        commands(&d).contains(&"curl -i http://127.0.0.1:5173/".to_owned()),
        "{:?}",
        commands(&d)
    );
    assert!(
        d.checks
            .iter()
            .flat_map(|c| &c.fixes)
            .any(|f| f.text.contains("Node 17+"))
    );

    // localhost resolving to 127.0.0.1 only, server on ::1 only: /etc/hosts.
    let mut f = owned(
        "localhost:8080",
        Connect::Refused,
        V6,
        8080,
        &["python3", "s.py"],
    );
    f.target = Some(crate::target::parse("localhost:8080").unwrap());
    let d = analyze(&f);
    assert!(
        commands(&d)
            .iter()
            .any(|c| c.contains("::1 localhost") && c.contains("/etc/hosts")),
        "{:?}",
        commands(&d)
    );
    assert!(commands(&d).contains(&"nc -vz ::1 8080".to_owned()));
}

#[test]
fn a_live_model_that_contradicts_the_connects_is_read_again() {
    let refused = vec![(V4, Connect::Refused)];
    let connected = vec![(V4, Connect::Connected(Duration::ZERO))];
    let listening = vec![listener(V4, 8080, 1)];
    assert!(disagrees(&[], &connected), "a server that started since");
    assert!(
        disagrees(&listening, &refused),
        "a server that stopped since"
    );
    assert!(!disagrees(&listening, &connected));
    assert!(!disagrees(&[], &refused));
    let mut udp = listener(V4, 8080, 1);
    udp.proto = Proto::Udp;
    assert!(
        disagrees(&[udp], &connected),
        "UDP does not take TCP connections"
    );
}

#[test]
fn nothing_listening_names_what_the_history_saw_there_last() {
    let mut f = facts("127.0.0.1:8000", vec![(V4, Connect::Refused)], vec![]);
    let closed = portscope_shared::Event {
        error: None,
        holders: Vec::new(),
        count: None,
        fix: None,
        brief: false,
        time: "2026-11-29T14:02:03Z".into(),
        since: None,
        kind: portscope_shared::EventKind::Closed,
        proto: Proto::Tcp,
        family: portscope_shared::Family::Ipv4,
        local_addr: V4,
        local_port: 8000,
        remote_addr: None,
        remote_port: None,
        pid: Some(4242),
        process: Some("python3".into()),
        cmdline: vec![],
        user: None,
        cwd: None,
        exe: None,
        start_time: None,
        start_ms: None,
        app: None,
        health: None,
        project: None,
    };
    f.previous = Some(crate::Previous {
        closed,
        ago: std::time::Duration::from_secs(150),
        running: false,
    });
    let d = analyze(&f);
    let listening = d.checks.iter().find(|c| c.id == "listening").unwrap();
    assert_eq!(listening.verdict, Verdict::Problem);
    assert!(
        listening.evidence.contains(&"the history says port 8000 was held by python3 (pid 4242) on 127.0.0.1 until 2 min ago (2026-11-29T14:02:03Z); it has exited (`portscope history 8000`)".to_owned()),
        "{:?}",
        listening.evidence
    );
}

#[test]
fn a_connection_that_works_without_a_listener_is_forwarded_not_a_problem() {
    let d = analyze(&facts(
        "127.0.0.1:8080",
        vec![(V4, Connect::Connected(Duration::ZERO))],
        vec![],
    ));
    assert_eq!(d.verdict, Verdict::Ok, "{d:#?}");
    let listening = d.checks.iter().find(|c| c.id == "listening").unwrap();
    assert_eq!(listening.verdict, Verdict::Info);
    assert!(listening.title.contains("forwarded"), "{}", listening.title);
}

#[test]
fn a_stopped_master_with_running_workers_is_one_warning() {
    let mut socket = listener(V4, 8080, 10);
    socket.pids = vec![10, 11, 12];
    let mut f = facts(
        "127.0.0.1:8080",
        vec![(V4, Connect::Connected(Duration::ZERO))],
        vec![socket],
    );
    for pid in [10, 11, 12] {
        let mut p = portscope_core::testing::process("nginx", &["nginx"]);
        p.pid = pid;
        f.processes.insert(pid, p);
    }
    f.states = HashMap::from([(10, 'T'), (11, 'S'), (12, 'S')]);
    let d = analyze(&f);
    let stopped: Vec<&Check> = d.checks.iter().filter(|c| c.id == "stopped").collect();
    assert_eq!(stopped.len(), 1, "one check per process: {stopped:?}");
    assert_eq!(stopped[0].verdict, Verdict::Warning);
    assert!(
        stopped[0].title.contains("nginx (pid 11), nginx (pid 12)"),
        "{}",
        stopped[0].title
    );
    // All stopped: the problem.
    f.states = HashMap::from([(10, 'T'), (11, 'T'), (12, 'T')]);
    let d = analyze(&f);
    assert!(
        d.checks
            .iter()
            .filter(|c| c.id == "stopped")
            .all(|c| c.verdict == Verdict::Problem)
    );
    assert_eq!(d.checks.iter().filter(|c| c.id == "stopped").count(), 3);
}

#[test]
fn another_loopback_address_is_named_not_blamed_on_a_firewall() {
    let other: IpAddr = "127.0.0.53".parse().unwrap();
    let d = analyze(&facts(
        "127.0.0.1:53",
        vec![(V4, Connect::Refused)],
        vec![listener(other, 53, 7)],
    ));
    assert_eq!(
        d.summary,
        "the server listens on 127.0.0.53:53, not on 127.0.0.1"
    );
}

#[test]
fn a_stopped_owner_and_a_full_queue_are_named() {
    let mut f = facts(
        "127.0.0.1:9000",
        vec![(V4, Connect::TimedOut(Duration::from_secs(1)))],
        vec![listener(V4, 9000, 42)],
    );
    f.states.insert(42, 'T');
    f.queues.insert(f.sockets[0].id.clone(), 3);
    let d = analyze(&f);
    assert!(ids(&d).contains(&("stopped", Verdict::Problem)));
    assert!(ids(&d).contains(&("backlog", Verdict::Problem)));
    assert!(d.checks.iter().any(|c| {
        c.fixes
            .iter()
            .any(|f| f.command.as_deref() == Some("kill -CONT 42"))
    }));
}

#[test]
fn all_interfaces_is_flagged_with_the_services_risk() {
    let mut redis = listener(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 6379, 5);
    redis.risk = Some("listens on all interfaces: Redis has no password".into());
    let d = analyze(&facts(
        "127.0.0.1:6379",
        vec![(V4, Connect::Connected(Duration::ZERO))],
        vec![redis],
    ));
    let exposure = d.checks.iter().find(|c| c.id == "exposure").unwrap();
    assert_eq!(exposure.verdict, Verdict::Warning);
    assert!(exposure.evidence[0].contains("no password"));
}

#[test]
fn firewall_rules_and_http_answers_become_checks() {
    let mut f = facts(
        "127.0.0.1:8080",
        vec![(V4, Connect::TimedOut(Duration::from_secs(1)))],
        vec![listener(V4, 8080, 1)],
    );
    let rule = |text: &str, verdict: &str, policy: bool| firewall::Rule {
        text: text.into(),
        verdict: verdict.into(),
        policy,
        condition: None,
        forward: None,
    };
    f.firewall = Some(Firewall::Read {
        tool: "nft".into(),
        rules: vec![rule(
            "inet filter chain input: tcp dport 8080 drop",
            "drop",
            false,
        )],
        loopback_accepted: false,
    });
    assert!(ids(&analyze(&f)).contains(&("firewall", Verdict::Problem)));
    // Only under a condition portscope cannot evaluate: a warning that shows it.
    let mut conditional = rule(
        "inet filter chain input: ct mark == 1 tcp dport 8080 drop",
        "drop",
        false,
    );
    conditional.condition = Some("ct mark == 1".into());
    f.firewall = Some(Firewall::Read {
        tool: "nft".into(),
        rules: vec![conditional],
        loopback_accepted: false,
    });
    let d = analyze(&f);
    let fw = d.checks.iter().find(|c| c.id == "firewall").unwrap();
    assert_eq!(fw.verdict, Verdict::Warning);
    assert!(fw.title.contains("only when ct mark == 1"), "{}", fw.title);
    // A DNAT rule: where the port goes.
    let mut dnat = rule(
        "ip nat chain DOCKER: tcp dport 8080 dnat to 172.17.0.2:80",
        "dnat",
        false,
    );
    dnat.forward = Some("172.17.0.2:80".into());
    f.firewall = Some(Firewall::Read {
        tool: "nft".into(),
        rules: vec![dnat],
        loopback_accepted: false,
    });
    let d = analyze(&f);
    let fwd = d.checks.iter().find(|c| c.id == "forward").unwrap();
    assert!(
        fwd.title.contains("forwarded to 172.17.0.2:80"),
        "{}",
        fwd.title
    );
    assert_eq!(
        d.checks
            .iter()
            .find(|c| c.id == "firewall")
            .unwrap()
            .verdict,
        Verdict::Ok
    );
    f.firewall = Some(Firewall::Read {
        tool: "nft".into(),
        rules: vec![rule("inet filter chain input: policy drop", "drop", true)],
        loopback_accepted: true,
    });
    assert!(
        ids(&analyze(&f)).contains(&("firewall", Verdict::Info)),
        "a policy alone is not blamed"
    );
    f.firewall = Some(Firewall::Unreadable("nft needs root".into()));
    assert!(ids(&analyze(&f)).contains(&("firewall", Verdict::Unchecked)));

    let mut f = facts(
        "http://127.0.0.1:8080/",
        vec![(V4, Connect::Connected(Duration::ZERO))],
        vec![listener(V4, 8080, 1)],
    );
    f.answer = Some((
        SocketAddr::new(V4, 8080),
        Answer::Http {
            request: "GET / HTTP/1.1".into(),
            listened: Duration::ZERO,
            reply: Http::Response {
                status: "HTTP/1.0 200 OK".into(),
                server: Some("SimpleHTTP/0.6".into()),
                title: Some("Hello".into()),
            },
        },
    ));
    let d = analyze(&f);
    assert_eq!(d.verdict, Verdict::Ok);
    assert!(d.summary.contains("title “Hello”"), "{}", d.summary);
}

#[test]
fn firewall_and_forward_fixes_have_sudo_only_for_a_user_who_is_not_root() {
    let drop = firewall::Rule {
        text: "inet filter chain input: tcp dport 8080 drop".into(),
        verdict: "drop".into(),
        policy: false,
        condition: None,
        forward: None,
    };
    let commands_as = |tool: &str, root: bool| {
        let mut f = facts(
            "127.0.0.1:8080",
            vec![(V4, Connect::TimedOut(Duration::from_secs(1)))],
            vec![listener(V4, 8080, 1)],
        );
        f.firewall = Some(Firewall::Read {
            tool: tool.into(),
            rules: vec![drop.clone()],
            loopback_accepted: false,
        });
        f.root = root;
        commands(&analyze(&f))
    };
    assert!(commands_as("nft", false).contains(&"sudo nft -a list ruleset".to_owned()));
    assert!(commands_as("nft", true).contains(&"nft -a list ruleset".to_owned()));
    assert!(commands_as("iptables", false).contains(&"sudo iptables -S".to_owned()));
    assert!(commands_as("iptables", true).contains(&"iptables -S".to_owned()));
    // A connection that works with no listener: where the port is forwarded.
    let mut f = facts(
        "127.0.0.1:8080",
        vec![(V4, Connect::Connected(Duration::ZERO))],
        vec![],
    );
    f.root = false;
    let user = commands(&analyze(&f));
    assert!(
        user.iter().any(|c| c.starts_with("sudo nft list ruleset")),
        "{user:?}"
    );
    f.root = true;
    let root = commands(&analyze(&f));
    assert!(
        root.iter().any(|c| c.starts_with("nft list ruleset")),
        "{root:?}"
    );
    assert!(root.iter().all(|c| !c.contains("sudo")), "{root:?}");
}

#[test]
fn a_remote_target_gets_only_the_connect() {
    let mut f = facts(
        "192.0.2.1:80",
        vec![(
            "192.0.2.1".parse().unwrap(),
            Connect::TimedOut(Duration::from_secs(1)),
        )],
        vec![],
    );
    f.local = false;
    let d = analyze(&f);
    assert_eq!(
        ids(&d),
        [("connect", Verdict::Problem), ("local", Verdict::Info)]
    );
}
