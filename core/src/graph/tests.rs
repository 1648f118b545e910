use std::net::{IpAddr, Ipv4Addr};

use portscope_shared::{Family, Process};

use super::*;
use crate::testing::{listener, process, socket, state};

/// A connected socket `local → remote` held by `pid`.
fn end(local: &str, remote: &str, pid: u32) -> Socket {
    let (l, r): (SocketAddr, SocketAddr) = (local.parse().unwrap(), remote.parse().unwrap());
    Socket {
        family: if l.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        },
        local_addr: l.ip(),
        local_port: l.port(),
        remote_addr: Some(r.ip()),
        remote_port: Some(r.port()),
        pids: vec![pid],
        owner: OwnerStatus::Known,
        ..socket(&format!("tcp {l} {r}"), SocketState::Established)
    }
}

fn named(s: &mut State, pid: u32, name: &str) {
    s.processes.insert(
        pid,
        Process {
            pid,
            ..process(name, &[])
        },
    );
}

fn edges(g: &Graph) -> Vec<(&str, &str, u16, usize)> {
    g.edges
        .iter()
        .map(|e| (e.from.as_str(), e.to.as_str(), e.port, e.count))
        .collect()
}

#[test]
fn local_connections_run_from_client_to_server_once_each() {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut s = state(&[
        listener(lo, 5432, 10),
        end("127.0.0.1:40000", "127.0.0.1:5432", 20),
        end("127.0.0.1:5432", "127.0.0.1:40000", 10),
        end("127.0.0.1:40001", "127.0.0.1:5432", 20),
        end("127.0.0.1:5432", "127.0.0.1:40001", 10),
        // A dual-stack listener's accepted end shows the IPv4-mapped address.
        listener(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 8000, 11),
        end("127.0.0.1:41000", "127.0.0.1:8000", 21),
        end("[::ffff:127.0.0.1]:8000", "[::ffff:127.0.0.1]:41000", 11),
    ]);
    named(&mut s, 10, "postgres");
    named(&mut s, 20, "psql");
    let g = of(&s);
    assert_eq!(
        edges(&g),
        [("p20", "p10", 5432, 2), ("p21", "p11", 8000, 1)]
    );
    let psql = g.nodes.iter().find(|n| n.id == "p20").unwrap();
    assert_eq!((psql.label.as_str(), psql.pid), ("psql", Some(20)));
    assert_eq!(
        text(&g).lines().next(),
        Some("psql (pid 20) → postgres (pid 10)  :5432 ×2")
    );
}

#[test]
fn connections_to_other_machines_run_to_or_from_their_address() {
    let mut s = state(&[
        listener(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 22, 10),
        end("10.0.0.5:22", "192.0.2.7:51000", 10),
        end("10.0.0.5:45000", "192.0.2.8:443", 30),
        end("10.0.0.5:45001", "192.0.2.8:443", 30),
    ]);
    named(&mut s, 30, "curl");
    let g = of(&s);
    assert_eq!(
        edges(&g),
        [("p30", "r192.0.2.8", 443, 2), ("r192.0.2.7", "p10", 22, 1)]
    );
    let remote = g.nodes.iter().find(|n| n.id == "r192.0.2.7").unwrap();
    assert_eq!(remote.kind, GraphNodeKind::Remote);
    assert_eq!(remote.addr, Some("192.0.2.7".parse().unwrap()));
}

#[test]
fn remote_addresses_take_their_names_from_the_hosts_file_only() {
    let names = HostNames::parse(
        "# comment\n\
         127.0.0.1\tlocalhost\n\
         192.0.2.8   api.internal api   # the test API\n\
         fe80::1%lo0 localhost\n\
         not-an-address name\n\
         192.0.2.8 second-entry\n\
         2001:db8::5 db6\n",
    );
    assert_eq!(
        names.get("192.0.2.8".parse().unwrap()),
        Some("api.internal")
    );
    assert_eq!(
        names.get("::ffff:192.0.2.8".parse().unwrap()),
        Some("api.internal"),
        "an IPv4-mapped address is its IPv4 address"
    );
    assert_eq!(names.get("2001:db8::5".parse().unwrap()), Some("db6"));
    assert_eq!(
        names.get("192.0.2.7".parse().unwrap()),
        None,
        "nothing is looked up elsewhere"
    );
    let mut s = state(&[
        end("10.0.0.5:45000", "192.0.2.8:443", 30),
        end("10.0.0.5:45001", "192.0.2.7:443", 30),
    ]);
    named(&mut s, 30, "curl");
    let mut g = of(&s);
    name_remotes(&mut g, &names);
    let name = |id: &str| g.nodes.iter().find(|n| n.id == id).unwrap().name.clone();
    assert_eq!(name("r192.0.2.8").as_deref(), Some("api.internal"));
    assert_eq!(name("r192.0.2.7"), None);
    assert_eq!(name("p30"), None, "processes are named by themselves");
    assert!(text(&g).contains("curl (pid 30) → api.internal (192.0.2.8)  :443 ×1"));
    assert!(dot(&g).contains(r#""r192.0.2.8" [label="api.internal (192.0.2.8)", shape=ellipse];"#));
}

#[test]
fn dot_quotes_what_processes_call_themselves() {
    let mut s = state(&[end("10.0.0.5:45000", "192.0.2.8:443", 30)]);
    named(&mut s, 30, "evil\" -> \"x\\\n");
    let text = dot(&of(&s));
    assert!(
        text.contains(r#""p30" [label="evil\" -> \"x\\\n (30)", shape=box];"#),
        "{text}"
    );
    assert!(
        text.contains(r#""p30" -> "r192.0.2.8" [label=":443 ×1"];"#),
        "{text}"
    );
}

#[test]
fn a_connection_not_yet_accepted_is_its_listeners() {
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut queued = end("127.0.0.1:8000", "127.0.0.1:42000", 0);
    queued.pids.clear();
    queued.owner = OwnerStatus::None;
    let s = state(&[
        listener(lo, 8000, 10),
        end("127.0.0.1:42000", "127.0.0.1:8000", 20),
        queued,
    ]);
    assert_eq!(edges(&of(&s)), [("p20", "p10", 8000, 1)]);
}

#[test]
fn the_hosts_file_is_read_again_only_when_it_changes_and_never_past_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts");
    std::fs::write(&path, "192.0.2.8 api\n").unwrap();
    let cache = HostsCache::new(path.clone());
    let addr: IpAddr = "192.0.2.8".parse().unwrap();
    let first = cache.get();
    assert_eq!(first.get(addr), Some("api"));
    assert!(
        std::sync::Arc::ptr_eq(&first, &cache.get()),
        "unchanged: the same names, not read again"
    );
    // Another length (a new line): read again.
    std::fs::write(&path, "192.0.2.8 db\n192.0.2.9 cache\n").unwrap();
    let second = cache.get();
    assert_eq!(second.get(addr), Some("db"));
    assert!(!std::sync::Arc::ptr_eq(&first, &second));

    // A file far past the cap: read up to it, its cut last line dropped.
    let line = "192.0.2.10 filler-name-of-some-length\n";
    let mut big = String::new();
    while (big.len() as u64) < MAX_HOSTS_FILE {
        big.push_str(line);
    }
    big.push_str("192.0.2.77 past-the-cap\n");
    std::fs::write(&path, &big).unwrap();
    let names = HostNames::read_from(&path);
    assert_eq!(
        names.get("192.0.2.10".parse().unwrap()),
        Some("filler-name-of-some-length")
    );
    assert_eq!(
        names.get("192.0.2.77".parse().unwrap()),
        None,
        "past the cap"
    );
}
