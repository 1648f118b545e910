//! Small builders of sockets, processes and states for tests, here and in the crates above
//! (with this crate's `testing` feature, which only their dev-dependencies turn on).

use std::net::{IpAddr, Ipv4Addr};

use portscope_shared::{Family, OwnerStatus, Proto, Socket, SocketState};

use crate::model::State;

/// A socket that differs from others by `id` and `state` only.
pub fn socket(id: &str, state: SocketState) -> Socket {
    Socket {
        id: id.into(),
        proto: Proto::Tcp,
        family: Family::Ipv4,
        local_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        local_port: 1,
        remote_addr: None,
        remote_port: None,
        state,
        pids: vec![],
        uid: None,
        owner: OwnerStatus::None,
        exposure: None,
        service: None,
        app: None,
        risk: None,
        http: false,
        host: None,
        health: None,
    }
}

/// A TCP listener on `addr:port` held by `pid` (uid 1000).
pub fn listener(addr: IpAddr, port: u16, pid: u32) -> Socket {
    Socket {
        id: format!("tcp {} - i{pid}", std::net::SocketAddr::new(addr, port)),
        family: if addr.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        },
        local_addr: addr,
        local_port: port,
        state: SocketState::Listen,
        pids: vec![pid],
        uid: Some(1000),
        owner: OwnerStatus::Known,
        exposure: Some(portscope_shared::Exposure::of(addr)),
        ..socket("", SocketState::Listen)
    }
}

/// A process (pid 9) with this name and command line, nothing else known.
pub fn process(name: &str, cmdline: &[&str]) -> portscope_shared::Process {
    portscope_shared::Process {
        pid: 9,
        ppid: None,
        name: name.into(),
        exe: None,
        cmdline: cmdline.iter().map(|s| s.to_string()).collect(),
        user: None,
        uid: None,
        start_time: None,
        start_ms: None,
        stopped: false,
        cwd: None,
        host: None,
        project: None,
    }
}

pub fn state(sockets: &[Socket]) -> State {
    State {
        sockets: sockets.iter().map(|s| (s.id.clone(), s.clone())).collect(),
        ..State::default()
    }
}

/// A random state over a small pool of ids and pids, so that two of them share keys with
/// equal and with changed values (the core's property tests).
#[cfg(test)]
pub fn any_state() -> impl proptest::strategy::Strategy<Value = State> {
    use proptest::prelude::*;

    let socket = (
        0..8u8,
        prop_oneof![
            Just(SocketState::Listen),
            Just(SocketState::Established),
            Just(SocketState::TimeWait),
        ],
        0..3u16,
        proptest::collection::vec(1..4u32, 0..3),
        any::<bool>(),
        proptest::option::of((any::<bool>(), proptest::option::of(200..202u16), 0..3u32)),
    )
        .prop_map(|(id, state, port, pids, http, health)| Socket {
            local_port: port,
            pids,
            http,
            health: health.map(|(up, status, latency_ms)| portscope_shared::Health {
                up,
                status,
                latency_ms,
                detail: None,
            }),
            ..socket(&format!("s{id}"), state)
        });
    let process = (
        1..8u32,
        prop_oneof![Just("a"), Just("b")],
        0..3usize,
        any::<bool>(),
        proptest::option::of(1..3u64),
    )
        .prop_map(
            |(pid, name, args, stopped, start_time)| portscope_shared::Process {
                pid,
                cmdline: vec!["x".to_owned(); args],
                stopped,
                start_time,
                ..process(name, &[])
            },
        );
    (
        0..5u64,
        proptest::collection::vec(socket, 0..8),
        proptest::collection::vec(process, 0..6),
        proptest::collection::vec(prop_oneof![Just("w1"), Just("w2")], 0..2),
    )
        .prop_map(|(seq, sockets, processes, warnings)| State {
            seq,
            sockets: sockets.into_iter().map(|s| (s.id.clone(), s)).collect(),
            processes: processes.into_iter().map(|p| (p.pid, p)).collect(),
            warnings: warnings.into_iter().map(String::from).collect(),
        })
}
