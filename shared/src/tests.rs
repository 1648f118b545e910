//! JSON snapshot tests of every message, tolerant-reader tests, and the check that
//! `docs/protocol.md` shows exactly what the code sends.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use expect_test::{Expect, expect};

use super::*;

fn listener() -> Socket {
    Socket {
        id: "tcp 127.0.0.1:5173 - i41234".into(),
        proto: Proto::Tcp,
        family: Family::Ipv4,
        local_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        local_port: 5173,
        remote_addr: None,
        remote_port: None,
        state: SocketState::Listen,
        pids: vec![4242],
        uid: Some(1000),
        owner: OwnerStatus::Known,
        exposure: Some(Exposure::Loopback),
        service: None,
        app: Some("Vite dev server".into()),
        risk: None,
        http: true,
        host: None,
        health: None,
    }
}

fn connection() -> Socket {
    Socket {
        id: "tcp [::1]:5173 [::1]:51000 i41240".into(),
        proto: Proto::Tcp,
        family: Family::Ipv6,
        local_addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
        local_port: 5173,
        remote_addr: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        remote_port: Some(51000),
        state: SocketState::Established,
        pids: vec![],
        uid: Some(0),
        owner: OwnerStatus::Hidden,
        exposure: None,
        service: None,
        app: None,
        risk: None,
        http: false,
        host: None,
        health: None,
    }
}

fn process() -> Process {
    Process {
        pid: 4242,
        ppid: Some(4200),
        name: "node".into(),
        exe: Some("/usr/bin/node".into()),
        cmdline: vec!["node".into(), "node_modules/.bin/vite".into()],
        user: Some("dev".into()),
        uid: Some(1000),
        start_time: Some(1_795_000_000),
        start_ms: None,
        stopped: false,
        cwd: Some("/home/dev/app".into()),
        host: None,
        project: Some(Project {
            name: "app".into(),
            root: "/home/dev/app".into(),
            source: ProjectSource::Git,
        }),
    }
}

/// One sample of every message, in the order `docs/protocol.md` shows them.
fn samples() -> Vec<(&'static str, String)> {
    let server = [
        (
            "Hello",
            ServerMessage::Hello(Hello {
                protocol_version: PROTOCOL_VERSION,
                agent_version: "0.1.0".into(),
                hostname: "devbox".into(),
                os: "linux".into(),
                tick_ms: 30000,
                changes: Changes::Kernel,
                ephemeral_ports: Some(PortRange {
                    first: 32768,
                    last: 60999,
                }),
                can_kill: true,
                history: true,
                kill_scope: Some(KillScope {
                    uid: Some(1000),
                    root: true,
                    first_user_uid: 1000,
                    allow_system: false,
                }),
            }),
        ),
        (
            "Snapshot",
            ServerMessage::Snapshot(Snapshot {
                seq: 7,
                sockets: vec![listener()],
                processes: vec![process()],
                warnings: vec![],
                more: false,
            }),
        ),
        (
            "Delta",
            ServerMessage::Delta(Delta {
                from_seq: 7,
                seq: 8,
                added: vec![connection()],
                changed: vec![],
                removed: vec!["udp 0.0.0.0:5353 - i1999".into()],
                processes: vec![],
                processes_removed: vec![3100],
                warnings: vec![],
            }),
        ),
        (
            "Events",
            ServerMessage::Events(Events {
                seq: 8,
                events: vec![
                    Event {
error: None, holders: Vec::new(), count: None, fix: None, brief: false,
                        time: "2026-11-29T14:02:03Z".into(),
                        since: None,
                        kind: EventKind::Closed,
                        proto: Proto::Udp,
                        family: Family::Ipv4,
                        local_addr: "0.0.0.0".parse().unwrap(),
                        local_port: 5353,
                        remote_addr: None,
                        remote_port: None,
                        pid: Some(1999),
                        process: Some("avahi-daemon".into()),
                        cmdline: vec!["avahi-daemon: running [devbox.local]".into()],
                        user: Some("avahi".into()),
                        cwd: Some("/".into()),
                        exe: Some("/usr/sbin/avahi-daemon".into()),
                        start_time: Some(1_794_990_000),
                        start_ms: None,
                        app: Some("mDNS".into()),
                        health: None,
                        project: None,
                    },
                    Event {
error: None, holders: Vec::new(), count: None, fix: None, brief: false,
                        time: "2026-11-29T14:02:03Z".into(),
                        since: None,
                        kind: EventKind::Health,
                        proto: Proto::Tcp,
                        family: Family::Ipv4,
                        local_addr: "127.0.0.1".parse().unwrap(),
                        local_port: 8000,
                        remote_addr: None,
                        remote_port: None,
                        pid: Some(4242),
                        process: Some("python3".into()),
                        cmdline: vec!["python3".into(), "-m".into(), "http.server".into()],
                        user: Some("dev".into()),
                        cwd: Some("/home/dev/shop".into()),
                        exe: Some("/usr/bin/python3.11".into()),
                        start_time: Some(1_794_996_600),
                        start_ms: None,
                        app: None,
                        health: Some(Health {
                            up: false,
                            status: Some(500),
                            latency_ms: 4,
                            detail: Some("HTTP 500".into()),
                        }),
                        project: Some("shop".into()),
                    },
                    Event {
                        time: "2026-11-29T14:02:03.412Z".into(),
                        since: None,
                        kind: EventKind::BindFailed,
                        proto: Proto::Tcp,
                        family: Family::Ipv4,
                        local_addr: "0.0.0.0".parse().unwrap(),
                        local_port: 8000,
                        remote_addr: None,
                        remote_port: None,
                        pid: Some(4300),
                        process: Some("node".into()),
                        cmdline: vec!["node".into(), "server.js".into()],
                        user: Some("dev".into()),
                        cwd: Some("/home/dev/shop-web".into()),
                        exe: None,
                        start_time: Some(1_795_000_100),
                        start_ms: Some(1_795_000_100_250),
                        app: None,
                        health: None,
                        project: Some("shop-web".into()),
                        error: Some("EADDRINUSE (address already in use)".into()),
                        holders: vec![Holder {
                            proto: Proto::Tcp,
                            local_addr: "127.0.0.1".parse().unwrap(),
                            local_port: 8000,
                            state: Some(SocketState::Listen),
                            pids: vec![4242],
                            process: Some("python3".into()),
                            start_time: Some(1_794_996_600),
                            project: Some("shop".into()),
                        }],
                        count: Some(1),
                        fix: Some("python3 (pid 4242) holds port 8000: stop it (portscope kill 8000) or give node another port (portscope free 8000)".into()),
                        brief: false,
                    },
                    Event {
                        time: "2026-11-29T14:02:04.020Z".into(),
                        since: None,
                        kind: EventKind::ConnectRefused,
                        proto: Proto::Tcp,
                        family: Family::Ipv4,
                        local_addr: "127.0.0.1".parse().unwrap(),
                        local_port: 51712,
                        remote_addr: Some("127.0.0.1".parse().unwrap()),
                        remote_port: Some(5173),
                        pid: Some(4400),
                        process: Some("curl".into()),
                        cmdline: vec!["curl".into(), "http://127.0.0.1:5173/".into()],
                        user: Some("dev".into()),
                        cwd: Some("/home/dev/app".into()),
                        exe: None,
                        start_time: Some(1_795_000_200),
                        start_ms: None,
                        app: None,
                        health: None,
                        project: Some("app".into()),
                        error: None,
                        holders: vec![Holder {
                            proto: Proto::Tcp,
                            local_addr: "::1".parse().unwrap(),
                            local_port: 5173,
                            state: Some(SocketState::Listen),
                            pids: vec![4242],
                            process: Some("node".into()),
                            start_time: Some(1_795_000_000),
                            project: Some("app".into()),
                        }],
                        count: Some(3),
                        fix: Some("node (pid 4242) listens on [::1]:5173 only: connect to [::1]:5173 (or localhost), or have it listen on 127.0.0.1 too".into()),
                        brief: false,
                    },
                ],
            }),
        ),
        (
            "Error",
            ServerMessage::Error(ErrorMessage {
                code: ApiErrorCode::BadMessage,
                message: "expected a JSON object with a \"type\" field".into(),
            }),
        ),
    ];
    let more = ServerMessage::SnapshotMore(SnapshotMore {
        seq: 7,
        sockets: vec![connection()],
        processes: vec![],
        more: false,
    });
    let mut out: Vec<(&'static str, String)> = server
        .into_iter()
        .map(|(name, msg)| (name, serde_json::to_string_pretty(&msg).unwrap()))
        .collect();
    out.insert(
        2,
        ("SnapshotMore", serde_json::to_string_pretty(&more).unwrap()),
    );
    let who = WhoReport {
        port: 5173,
        sockets: vec![listener()],
        owners: vec![Owner {
            process: process(),
            cwd: Some("/home/dev/app".into()),
            ancestors: vec![Process {
                pid: 4200,
                ppid: Some(4100),
                name: "npm run dev".into(),
                exe: Some("/usr/bin/node".into()),
                cmdline: vec!["npm".into(), "run".into(), "dev".into()],
                user: Some("dev".into()),
                uid: Some(1000),
                start_time: Some(1_794_999_990),
                start_ms: None,
                stopped: false,
                cwd: None,
                host: None,
                project: None,
            }],
        }],
        clients: vec![],
        hints: vec![],
    };
    out.push(("WhoReport", serde_json::to_string_pretty(&who).unwrap()));
    let why = Diagnosis {
        question: Question::Why,
        target: "localhost:5173".into(),
        port: 5173,
        checks: vec![
            Check {
                id: "connect".into(),
                verdict: Verdict::Warning,
                title: "connection to [::1]:5173 refused: nothing accepts connections there".into(),
                evidence: vec![],
                fixes: vec![],
            },
            Check {
                id: "family".into(),
                verdict: Verdict::Warning,
                title: "the server listens on IPv4 only (127.0.0.1:5173), but ::1 is IPv6; localhost resolves to ::1 first, and clients that do not fall back (Node 17+, Java, Docker) fail".into(),
                evidence: vec![],
                fixes: vec![Fix {
                    text: "connect to the IPv4 address".into(),
                    command: Some("curl http://127.0.0.1:5173/".into()),
                }],
            },
        ],
        verdict: Verdict::Warning,
        summary: "the server listens on IPv4 only (127.0.0.1:5173), but ::1 is IPv6; localhost resolves to ::1 first, and clients that do not fall back (Node 17+, Java, Docker) fail".into(),
        free_ports: vec![],
    };
    out.push(("Diagnosis", serde_json::to_string_pretty(&why).unwrap()));
    let free = FreePorts {
        ports: vec![8100, 8101, 8099],
    };
    out.push(("FreePorts", serde_json::to_string_pretty(&free).unwrap()));
    // `watch --json` prints it on one line: the compact form is what a reader sees.
    let event = Event {
        error: None,
        holders: Vec::new(),
        count: None,
        fix: None,
        brief: false,
        time: "2026-11-29T14:02:03Z".into(),
        since: None,
        kind: EventKind::Opened,
        proto: Proto::Tcp,
        family: Family::Ipv6,
        local_addr: "::1".parse().unwrap(),
        local_port: 5173,
        remote_addr: None,
        remote_port: None,
        pid: Some(4242),
        process: Some("node".into()),
        cmdline: vec!["node".into(), "node_modules/.bin/vite".into()],
        user: Some("dev".into()),
        cwd: Some("/home/dev/app".into()),
        exe: Some("/usr/bin/node".into()),
        start_time: Some(1_795_000_000),
        start_ms: None,
        app: Some("Vite dev server".into()),
        health: None,
        project: Some("app".into()),
    };
    out.push(("Event", serde_json::to_string(&event).unwrap()));
    let spans = Spans {
        spans: vec![
            Span {
                proto: Proto::Tcp,
                family: Family::Ipv4,
                local_addr: "127.0.0.1".parse().unwrap(),
                local_port: 8000,
                pid: Some(4242),
                process: Some("python3".into()),
                cmdline: vec!["python3".into(), "-m".into(), "http.server".into()],
                user: Some("dev".into()),
                app: None,
                start: "2026-11-29T13:10:00Z".into(),
                start_since: None,
                end: Some("2026-11-29T14:02:03Z".into()),
                health: vec![
                    HealthMark {
                        time: "2026-11-29T13:10:04Z".into(),
                        health: Health {
                            up: true,
                            status: Some(200),
                            latency_ms: 3,
                            detail: None,
                        },
                    },
                    HealthMark {
                        time: "2026-11-29T13:58:14Z".into(),
                        health: Health {
                            up: false,
                            status: Some(500),
                            latency_ms: 4,
                            detail: Some("HTTP 500".into()),
                        },
                    },
                ],
                project: Some("shop".into()),
            },
            Span {
                proto: Proto::Tcp,
                family: Family::Ipv6,
                local_addr: "::1".parse().unwrap(),
                local_port: 5173,
                pid: Some(4300),
                process: Some("node".into()),
                cmdline: vec!["node".into(), "node_modules/.bin/vite".into()],
                user: Some("dev".into()),
                app: Some("Vite dev server".into()),
                start: "2026-11-29T14:02:03Z".into(),
                start_since: Some("2026-11-29T13:58:41Z".into()),
                end: None,
                health: vec![],
                project: Some("app".into()),
            },
        ],
        truncated: false,
    };
    out.push(("Spans", serde_json::to_string_pretty(&spans).unwrap()));
    let connections = ConnectionHistory {
        port: 5173,
        minutes: vec![
            ConnectionMinute {
                time: "2026-11-29T14:02:00Z".into(),
                accepted: 12,
                open: 6,
                peers: 1,
            },
            ConnectionMinute {
                time: "2026-11-29T14:03:00Z".into(),
                accepted: 3,
                open: 6,
                peers: 2,
            },
        ],
    };
    out.push((
        "ConnectionHistory",
        serde_json::to_string_pretty(&connections).unwrap(),
    ));
    let hosts = Hosts {
        hosts: vec![
            Host {
                name: "laptop".into(),
                local: true,
                url: None,
                status: HostStatus::Live,
                detail: None,
                hostname: Some("laptop".into()),
                agent_version: Some("0.1.0".into()),
                last_live: None,
                sockets: 214,
                can_kill: true,
            },
            Host {
                name: "build-box".into(),
                local: false,
                url: Some("https://192.0.2.10:7678/".into()),
                status: HostStatus::Unreachable,
                detail: Some("unreachable (Connection refused (os error 111))".into()),
                hostname: Some("build-box".into()),
                agent_version: Some("0.1.0".into()),
                last_live: Some("2026-11-29T14:02:03Z".into()),
                sockets: 5120,
                can_kill: false,
            },
        ],
    };
    out.push(("Hosts", serde_json::to_string_pretty(&hosts).unwrap()));
    let graph = Graph {
        nodes: vec![
            GraphNode {
                id: "p4242".into(),
                kind: GraphNodeKind::Process,
                label: "node".into(),
                pid: Some(4242),
                project: Some("app".into()),
                addr: None,
                name: None,
            },
            GraphNode {
                id: "p900".into(),
                kind: GraphNodeKind::Process,
                label: "postgres".into(),
                pid: Some(900),
                project: None,
                addr: None,
                name: None,
            },
            GraphNode {
                id: "r192.0.2.8".into(),
                kind: GraphNodeKind::Remote,
                label: "192.0.2.8".into(),
                pid: None,
                project: None,
                addr: Some("192.0.2.8".parse().unwrap()),
                name: Some("api.internal".into()),
            },
        ],
        edges: vec![
            GraphEdge {
                from: "p4242".into(),
                to: "p900".into(),
                port: 5432,
                count: 3,
            },
            GraphEdge {
                from: "p4242".into(),
                to: "r192.0.2.8".into(),
                port: 443,
                count: 1,
            },
        ],
    };
    out.push(("Graph", serde_json::to_string_pretty(&graph).unwrap()));
    let kill = KillRequest {
        pid: 4242,
        signal: Some("TERM".into()),
        force_after_ms: Some(5000),
        start_time: 1_795_000_000,
    };
    out.push(("KillRequest", serde_json::to_string_pretty(&kill).unwrap()));
    let killed = KillReport {
        pid: 4242,
        name: "node".into(),
        signal: "TERM".into(),
        outcome: KillOutcome::Exited,
        elapsed_ms: 40,
        message: "sent SIGTERM to node (pid 4242); it exited after 40 ms".into(),
    };
    out.push(("KillReport", serde_json::to_string_pretty(&killed).unwrap()));
    out.push((
        "Resync",
        serde_json::to_string_pretty(&ClientMessage::Resync).unwrap(),
    ));
    out
}

fn check(msg: &impl Serialize, expect: Expect) {
    expect.assert_eq(&serde_json::to_string(msg).unwrap());
}

#[test]
fn hello_json() {
    check(
        &ServerMessage::Hello(Hello {
            protocol_version: 1,
            agent_version: "0.1.0".into(),
            hostname: "devbox".into(),
            os: "linux".into(),
            tick_ms: 1000,
            changes: Changes::Poll,
            ephemeral_ports: None,
            can_kill: false,
            history: false,
            kill_scope: None,
        }),
        expect![[
            r#"{"type":"Hello","protocol_version":1,"agent_version":"0.1.0","hostname":"devbox","os":"linux","tick_ms":1000,"changes":"poll","ephemeral_ports":null,"can_kill":false,"history":false}"#
        ]],
    );
}

#[test]
fn snapshot_json() {
    check(
        &ServerMessage::Snapshot(Snapshot {
            seq: 7,
            sockets: vec![listener()],
            processes: vec![process()],
            warnings: vec!["could not read /proc/9/fd: permission denied".into()],
            more: false,
        }),
        expect![[
            r#"{"type":"Snapshot","seq":7,"sockets":[{"id":"tcp 127.0.0.1:5173 - i41234","proto":"tcp","family":"ipv4","local_addr":"127.0.0.1","local_port":5173,"remote_addr":null,"remote_port":null,"state":"LISTEN","pids":[4242],"uid":1000,"owner":"known","exposure":"loopback","service":null,"app":"Vite dev server","risk":null,"http":true}],"processes":[{"pid":4242,"ppid":4200,"name":"node","exe":"/usr/bin/node","cmdline":["node","node_modules/.bin/vite"],"user":"dev","uid":1000,"start_time":1795000000,"stopped":false,"cwd":"/home/dev/app","project":{"name":"app","root":"/home/dev/app","source":"git"}}],"warnings":["could not read /proc/9/fd: permission denied"],"more":false}"#
        ]],
    );
}

#[test]
fn delta_json() {
    check(
        &ServerMessage::Delta(Delta {
            from_seq: 7,
            seq: 8,
            added: vec![connection()],
            changed: vec![],
            removed: vec!["udp 0.0.0.0:5353 - i1999".into()],
            processes: vec![],
            processes_removed: vec![3100],
            warnings: vec![],
        }),
        expect![[
            r#"{"type":"Delta","from_seq":7,"seq":8,"added":[{"id":"tcp [::1]:5173 [::1]:51000 i41240","proto":"tcp","family":"ipv6","local_addr":"::1","local_port":5173,"remote_addr":"::1","remote_port":51000,"state":"ESTABLISHED","pids":[],"uid":0,"owner":"hidden","exposure":null,"service":null,"app":null,"risk":null,"http":false}],"changed":[],"removed":["udp 0.0.0.0:5353 - i1999"],"processes":[],"processes_removed":[3100],"warnings":[]}"#
        ]],
    );
}

#[test]
fn error_json() {
    check(
        &ServerMessage::Error(ErrorMessage {
            code: ApiErrorCode::BadMessage,
            message: "unknown".into(),
        }),
        expect![[r#"{"type":"Error","code":"bad_message","message":"unknown"}"#]],
    );
}

/// Where each code is in [`ApiErrorCode::ALL`]: a match with no wildcard, so a variant added to
/// the enum does not compile until it is given a place (and then must be in `ALL` there).
fn position(code: ApiErrorCode) -> Option<usize> {
    use ApiErrorCode as C;
    Some(match code {
        C::MissingToken => 0,
        C::WrongToken => 1,
        C::MetricsOnly => 2,
        C::ForbiddenHost => 3,
        C::ForbiddenOrigin => 4,
        C::CrossSite => 5,
        C::TooManyConnections => 6,
        C::TooManyFailures => 7,
        C::BadRequest => 8,
        C::Busy => 9,
        C::Internal => 10,
        C::ReadOnly => 11,
        C::LinkUsed => 12,
        C::NoHistory => 13,
        C::HistoryUnavailable => 14,
        C::UnknownHost => 15,
        C::PeerRefused => 16,
        C::PeerUnreachable => 17,
        C::NoSuchProcess => 18,
        C::NotASocketOwner => 19,
        C::ProcessChanged => 20,
        C::OtherUser => 21,
        C::SystemProcess => 22,
        C::ContainerPort => 23,
        C::NotPermitted => 24,
        C::Refused => 25,
        C::BadMessage => 26,
        C::UnknownMessage => 27,
        C::TooManyResyncs => 28,
        C::TooLarge => 29,
        C::Unknown => return None,
    })
}

#[test]
fn error_codes_are_written_as_serde_writes_them_and_unknown_ones_are_read() {
    for (i, code) in ApiErrorCode::ALL.into_iter().enumerate() {
        assert_eq!(position(code), Some(i), "{code:?} out of place in ALL");
        let json = serde_json::to_string(&code).unwrap();
        assert_eq!(json, format!("\"{}\"", code.as_str()));
        assert_eq!(serde_json::from_str::<ApiErrorCode>(&json).unwrap(), code);
    }
    check(
        &ErrorBody::new(
            ApiErrorCode::ProcessChanged,
            "pid 812 is now another program",
        ),
        expect![[
            r#"{"error":{"code":"process_changed","message":"pid 812 is now another program"}}"#
        ]],
    );
    let newer: ErrorBody =
        serde_json::from_str(r#"{"error":{"code":"from_the_future","message":"m"}}"#).unwrap();
    assert_eq!(newer.error.code, ApiErrorCode::Unknown);
}

#[test]
fn protocol_doc_lists_every_error_code() {
    let doc = include_str!("../../docs/protocol.md");
    let section = doc
        .split("\n### Error codes\n")
        .nth(1)
        .expect("docs/protocol.md has a section `### Error codes`");
    let section = section.split("\n#").next().unwrap_or(section);
    // Table rows: | `code` | status | meaning |
    let listed: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
        .collect();
    let codes: Vec<&str> = ApiErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        listed, codes,
        "docs/protocol.md's error codes, in the enum's order"
    );
}

#[test]
fn client_messages_json() {
    check(&ClientMessage::Resync, expect![[r#"{"type":"Resync"}"#]]);
}

#[test]
fn every_state_round_trips_by_its_wire_name() {
    use SocketState::*;
    for state in [
        Listen,
        Established,
        SynSent,
        SynRecv,
        FinWait1,
        FinWait2,
        TimeWait,
        Close,
        CloseWait,
        LastAck,
        Closing,
        Unconn,
        Unknown,
    ] {
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(json, format!("\"{}\"", state.as_str()));
        assert_eq!(serde_json::from_str::<SocketState>(&json).unwrap(), state);
    }
}

#[test]
fn future_message_types_decode_as_unknown() {
    let msg: ServerMessage =
        serde_json::from_str(r#"{"type":"History","points":[1,2,3],"v":2}"#).unwrap();
    assert_eq!(msg, ServerMessage::Unknown);
    let msg: ClientMessage = serde_json::from_str(r#"{"type":"Kill","pid":1}"#).unwrap();
    assert_eq!(msg, ClientMessage::Unknown);
}

#[test]
fn future_fields_and_states_are_tolerated() {
    let json = r#"{"type":"Delta","from_seq":1,"seq":2,"added":[{"id":"x","proto":"tcp",
        "family":"ipv4","local_addr":"127.0.0.1","local_port":1,"remote_addr":null,
        "remote_port":null,"state":"NEW_SYN_RECV","pids":[],"uid":null,"owner":"none",
        "rtt_us":12}],"latency":{"p50":1}}"#;
    let ServerMessage::Delta(delta) = serde_json::from_str(json).unwrap() else {
        panic!("not decoded as a Delta");
    };
    assert_eq!(delta.added[0].state, SocketState::Unknown);
    assert!(delta.changed.is_empty() && delta.removed.is_empty());
}

#[test]
fn an_older_agents_hello_and_socket_decode_with_defaults() {
    let hello: ServerMessage = serde_json::from_str(
        r#"{"type":"Hello","protocol_version":1,"agent_version":"0.1.0","hostname":"h","os":"linux","tick_ms":1000}"#,
    )
    .unwrap();
    let ServerMessage::Hello(hello) = hello else {
        panic!("not a Hello")
    };
    assert_eq!((hello.ephemeral_ports, hello.can_kill), (None, false));
    let verdict: Verdict = serde_json::from_str(r#""catastrophic""#).unwrap();
    assert_eq!(verdict, Verdict::Unknown);
    // A newer agent's event kind, and an event without the optional fields.
    let event: Event = serde_json::from_str(
        r#"{"time":"t","kind":"renamed","proto":"udp","family":"ipv4","local_addr":"0.0.0.0","local_port":53}"#,
    )
    .unwrap();
    assert_eq!(
        (event.kind, event.pid, event.cmdline.len()),
        (EventKind::Unknown, None, 0)
    );
    // An older agent's process, without `stopped`.
    let process: Process = serde_json::from_str(
        r#"{"pid":1,"ppid":null,"name":"x","exe":null,"cmdline":[],"user":null,"uid":null,"start_time":null}"#,
    )
    .unwrap();
    assert!(!process.stopped);
}

#[test]
fn exposure_follows_the_bound_address() {
    let exposure = |a: &str| Exposure::of(a.parse().unwrap());
    assert_eq!(exposure("127.0.0.1"), Exposure::Loopback);
    assert_eq!(exposure("127.3.2.1"), Exposure::Loopback);
    assert_eq!(exposure("::1"), Exposure::Loopback);
    assert_eq!(exposure("::ffff:127.0.0.1"), Exposure::Loopback);
    assert_eq!(exposure("0.0.0.0"), Exposure::All);
    assert_eq!(exposure("::"), Exposure::All);
    assert_eq!(exposure("192.168.1.20"), Exposure::Interface);
    assert_eq!(exposure("fe80::1"), Exposure::Interface);
}

#[test]
fn messages_without_a_type_are_errors() {
    assert!(serde_json::from_str::<ClientMessage>(r#"{"kind":"Resync"}"#).is_err());
    assert!(serde_json::from_str::<ServerMessage>("[]").is_err());
}

#[test]
fn protocol_doc_shows_every_message_as_sent() {
    let doc = include_str!("../../docs/protocol.md");
    let mut missing = String::new();
    for (name, json) in samples() {
        let block = format!("```json\n{json}\n```");
        if !doc.contains(&block) {
            missing.push_str(&format!("\n### {name}\n\n{block}\n"));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/protocol.md is out of step with shared/src/lib.rs; it must contain these blocks \
         exactly (update the prose around them too):\n{missing}"
    );
    assert!(
        doc.contains(&format!("Protocol version: **{PROTOCOL_VERSION}**")),
        "docs/protocol.md must state `Protocol version: **{PROTOCOL_VERSION}**`"
    );
}

#[test]
fn listening_labels_and_endpoints_read_as_ss_and_netstat_show_them() {
    let mut s = listener();
    assert!(s.is_listening());
    assert_eq!(s.proto_label(), "tcp");
    assert_eq!(s.local_endpoint().to_string(), "127.0.0.1:5173");
    assert_eq!(s.remote_text(), "*");
    let c = connection();
    assert!(!c.is_listening());
    assert_eq!(c.proto_label(), "tcp6");
    assert_eq!(c.local_endpoint().to_string(), "[::1]:5173");
    assert_eq!(c.remote_text(), "[::1]:51000");
    s.proto = Proto::Udp;
    s.state = SocketState::Unconn;
    assert!(
        s.is_listening(),
        "an unconnected UDP socket receives from anyone"
    );
    s.remote_addr = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    s.remote_port = Some(53);
    s.state = SocketState::Established;
    assert!(
        !s.is_listening(),
        "a connected UDP socket talks to one peer"
    );
    assert_eq!(s.proto_label(), "udp");
}

#[test]
fn a_kill_scope_lets_the_user_stop_their_own_and_a_root_agent_no_daemon() {
    let scope = KillScope {
        uid: Some(1000),
        root: true,
        first_user_uid: 1000,
        allow_system: false,
    };
    // (uid, what a root agent started by `sudo` from uid 1000 says, and with --allow-kill-system)
    let cases = [
        (Some(1000), None, None),
        (
            Some(1001),
            Some(KillBar::OtherUser),
            Some(KillBar::OtherUser),
        ),
        (Some(0), Some(KillBar::SystemAccount), None),
        (Some(33), Some(KillBar::SystemAccount), None),
        (Some(999), Some(KillBar::SystemAccount), None),
        (None, Some(KillBar::OtherUser), Some(KillBar::OtherUser)),
    ];
    let allowed = KillScope {
        allow_system: true,
        ..scope
    };
    for (uid, strict, loose) in cases {
        assert_eq!(scope.refuses(uid), strict, "uid {uid:?}");
        assert_eq!(
            allowed.refuses(uid),
            loose,
            "uid {uid:?}, --allow-kill-system"
        );
    }
    // Root without sudo: its own processes are root's, daemons all.
    let bare_root = KillScope {
        uid: Some(0),
        ..scope
    };
    assert_eq!(bare_root.refuses(Some(0)), Some(KillBar::SystemAccount));
    // An agent that is not root: its user's processes only, whatever their uid.
    let user = KillScope {
        uid: Some(500),
        root: false,
        ..scope
    };
    assert_eq!(user.refuses(Some(500)), None);
    assert_eq!(user.refuses(Some(0)), Some(KillBar::OtherUser));
}
