use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use portscope_shared::{Process, SocketState};

use super::*;
use crate::testing::{listener, process, socket, state};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A connection's end on this machine: `local_port` here, the peer at `remote_port`.
fn end(local: IpAddr, local_port: u16, remote_port: u16) -> Socket {
    Socket {
        local_addr: local,
        local_port,
        remote_addr: Some(local),
        remote_port: Some(remote_port),
        ..socket(
            &format!("tcp {local}:{local_port} {remote_port}"),
            SocketState::Established,
        )
    }
}

/// The sample lines of `name` in an exposition, labels and value as written.
fn samples<'a>(exposition: &'a str, name: &str) -> Vec<&'a str> {
    exposition
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .collect()
}

#[test]
fn listeners_sockets_and_connections_are_exported_from_the_state() {
    // python3 on 127.0.0.1:8000 with two accepted connections (and the client ends, whose local
    // ports are not the listener's); Postgres on [::]:5432 with one connection from a v6 peer
    // and one on its mapped-IPv4 address; an unconnected UDP socket of a hidden owner.
    let mut udp = listener(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5353, 77);
    udp.proto = Proto::Udp;
    udp.state = SocketState::Close;
    udp.id = "udp 0.0.0.0:5353".into();
    // A client's UDP socket on an ephemeral port (a resolver's) is no listener series.
    let ephemeral = crate::os::port_settings()
        .ephemeral
        .map_or(50_000, |r| r.first + 7);
    let mut resolver = udp.clone();
    resolver.local_port = ephemeral;
    resolver.id = format!("udp 0.0.0.0:{ephemeral}");
    let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
    let mut s = state(&[
        listener(LO, 8000, 10),
        end(LO, 8000, 40001),
        end(LO, 40001, 8000),
        end(LO, 8000, 40002),
        end(LO, 40002, 8000),
        listener(any6, 5432, 11),
        end(IpAddr::V6(Ipv6Addr::LOCALHOST), 5432, 40003),
        end(mapped, 5432, 40004),
        udp,
        resolver,
    ]);
    s.processes.insert(
        10,
        Process {
            pid: 10,
            project: Some(portscope_shared::Project {
                name: "my-app".into(),
                root: "/home/dev/my-app".into(),
                source: portscope_shared::ProjectSource::Git,
            }),
            ..process("python3", &[])
        },
    );
    s.processes.insert(
        11,
        Process {
            pid: 11,
            ..process("postgres", &[])
        },
    );
    let metrics = Metrics::default();
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
    let remote: IpAddr = "192.0.2.7".parse().unwrap();
    let dashboard = metrics.client(loopback);
    let _second = metrics.client(remote);
    let third = metrics.client(mapped);
    assert_eq!((metrics.clients(), metrics.local_clients()), (3, 2));
    drop(dashboard);
    drop(third);
    assert_eq!(
        (metrics.clients(), metrics.local_clients()),
        (1, 0),
        "a remote client alone is no dashboard of this machine's"
    );
    metrics.scanned(Duration::from_millis(3));
    metrics.history_write_failed();
    let out = metrics.render(&s, &[]);

    let mut listen = samples(&out, "portscope_listen_info");
    listen.sort();
    assert_eq!(
        listen,
        [
            r#"portscope_listen_info{proto="tcp",family="ipv4",addr="127.0.0.1",port="8000",process="python3",exposure="loopback",project="my-app"} 1"#,
            r#"portscope_listen_info{proto="tcp",family="ipv6",addr="::",port="5432",process="postgres",exposure="all",project=""} 1"#,
            r#"portscope_listen_info{proto="udp",family="ipv4",addr="0.0.0.0",port="5353",process="",exposure="all",project=""} 1"#,
        ],
        "{out}"
    );
    let mut connections = samples(&out, "portscope_listener_connections");
    connections.sort();
    assert_eq!(
        connections,
        [
            r#"portscope_listener_connections{proto="tcp",addr="127.0.0.1",port="8000"} 2"#,
            r#"portscope_listener_connections{proto="tcp",addr="::",port="5432"} 2"#,
        ],
        "{out}"
    );
    let mut sockets = samples(&out, "portscope_sockets");
    sockets.sort();
    assert_eq!(
        sockets,
        [
            r#"portscope_sockets{proto="tcp",state="ESTABLISHED"} 6"#,
            r#"portscope_sockets{proto="tcp",state="LISTEN"} 2"#,
            r#"portscope_sockets{proto="udp",state="CLOSE"} 2"#,
        ],
        "{out}"
    );
    assert_eq!(
        samples(&out, "portscope_websocket_clients"),
        ["portscope_websocket_clients 1"]
    );
    assert_eq!(
        samples(&out, "portscope_history_write_errors_total"),
        ["portscope_history_write_errors_total 1"]
    );
    assert!(
        out.contains("portscope_scan_duration_seconds_count 1\n"),
        "{out}"
    );
    assert!(
        out.contains(r#"portscope_scan_duration_seconds_bucket{le="0.004"} 1"#),
        "3 ms falls in the 4 ms bucket: {out}"
    );
    assert!(
        out.contains(&format!(
            "portscope_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{out}"
    );
    assert!(out.ends_with("# EOF\n"), "{out}");
    assert!(!out.contains("portscope_peer_up"), "not a hub: {out}");
    let hub = metrics.render(&s, &[("build-box".into(), true), ("vm".into(), false)]);
    let mut up = samples(&hub, "portscope_peer_up");
    up.sort();
    assert_eq!(
        up,
        [
            r#"portscope_peer_up{peer="build-box"} 1"#,
            r#"portscope_peer_up{peer="vm"} 0"#
        ]
    );
}

#[test]
fn a_closed_listener_is_gone_from_the_next_scrape() {
    let metrics = Metrics::default();
    let open = state(&[listener(LO, 8000, 10)]);
    assert_eq!(
        samples(&metrics.render(&open, &[]), "portscope_listen_info").len(),
        1
    );
    assert!(samples(&metrics.render(&state(&[]), &[]), "portscope_listen_info").is_empty());
}
