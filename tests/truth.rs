//! Truth: `portscope ls --json` and `ss -tunapH` on the same machine agree on the listening
//! sockets and their owners. `ss` is read before and after portscope; only sockets that differ
//! between those two reads may disagree.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::process::Command;

use portscope_shared::{Proto, Snapshot, SocketState};

use crate::support::{Holder, run_cli};

/// (protocol, local address — `None` for `*` —, local port)
type Key = (Proto, Option<IpAddr>, u16);

#[derive(Debug, Default)]
struct SsView {
    /// Listening sockets (TCP LISTEN, UDP UNCONN) → owning pids.
    listening: BTreeMap<Key, BTreeSet<u32>>,
}

fn run_ss() -> SsView {
    let out = Command::new("ss")
        .arg("-tunapH")
        .output()
        .expect("cannot run ss (install it: apt-get install iproute2)");
    assert!(
        out.status.success(),
        "ss failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_ss(&String::from_utf8_lossy(&out.stdout))
}

fn parse_ss(text: &str) -> SsView {
    let mut view = SsView::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 6 {
            continue;
        }
        let proto = match fields[0] {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            _ => continue,
        };
        let Some(key) = parse_endpoint(proto, fields[4]) else {
            panic!("cannot parse ss local address {:?} in {line:?}", fields[4]);
        };
        let listening = matches!(
            (proto, fields[1]),
            (Proto::Tcp, "LISTEN") | (Proto::Udp, "UNCONN")
        );
        if listening {
            let pids = fields[6..].join(" ");
            let pids: BTreeSet<u32> = pids
                .split("pid=")
                .skip(1)
                .filter_map(|rest| {
                    rest.split(|c: char| !c.is_ascii_digit())
                        .next()?
                        .parse()
                        .ok()
                })
                .collect();
            view.listening.entry(key).or_default().extend(pids);
        }
    }
    view
}

/// `127.0.0.1:80`, `[::1]:80`, `*:80`, `0.0.0.0%lo:53`, `[fe80::1]%eth0:546`.
fn parse_endpoint(proto: Proto, text: &str) -> Option<Key> {
    let (addr, port) = text.rsplit_once(':')?;
    let addr = addr.split('%').next()?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    let addr = if addr == "*" {
        None
    } else {
        Some(addr.parse().ok()?)
    };
    Some((proto, addr, port.parse().ok()?))
}

fn portscope_listening() -> BTreeMap<Key, BTreeSet<u32>> {
    let (code, out, err) = run_cli(&["ls", "--json", "--listening"]);
    assert_eq!(code, 0, "{err}");
    let snapshot: Snapshot = serde_json::from_str(&out).unwrap();
    let mut map: BTreeMap<Key, BTreeSet<u32>> = BTreeMap::new();
    for s in snapshot.sockets {
        assert!(s.proto == Proto::Udp || s.state == SocketState::Listen);
        map.entry((s.proto, Some(s.local_addr), s.local_port))
            .or_default()
            .extend(s.pids);
    }
    map
}

/// `ss` prints `*` for a wildcard address where portscope has `0.0.0.0` or `::`.
fn lookup<'a>(map: &'a BTreeMap<Key, BTreeSet<u32>>, key: &Key) -> Option<&'a BTreeSet<u32>> {
    match key.1 {
        Some(_) => map.get(key),
        None => map
            .iter()
            .find(|((p, a, port), _)| {
                *p == key.0 && *port == key.2 && a.is_some_and(|a| a.is_unspecified())
            })
            .map(|(_, pids)| pids),
    }
}

#[test]
fn ls_agrees_with_ss_on_listeners_and_owners() {
    let holder = Holder::start(); // At least a few listeners with a known owner.
    let before = run_ss();
    let ours = portscope_listening();
    let after = run_ss();

    let stable: BTreeMap<&Key, &BTreeSet<u32>> = before
        .listening
        .iter()
        .filter(|(k, pids)| after.listening.get(k) == Some(pids))
        .collect();
    assert!(
        stable.len() >= 3,
        "expected the holder's listeners in ss: {stable:?}"
    );

    let mut problems = Vec::new();
    for (key, ss_pids) in &stable {
        match lookup(&ours, key) {
            Some(pids) if pids == *ss_pids => {}
            Some(pids) => problems.push(format!(
                "{key:?}: ss says pids {ss_pids:?}, portscope {pids:?}"
            )),
            None => problems.push(format!("{key:?}: in ss, missing from portscope")),
        }
    }
    for (key, pids) in &ours {
        let in_ss = |view: &SsView| {
            view.listening.contains_key(key)
                // ss prints a wildcard listener as `*:port`.
                || (key.1.is_some_and(|a| a.is_unspecified())
                    && view.listening.contains_key(&(key.0, None, key.2)))
        };
        if !in_ss(&before) && !in_ss(&after) {
            problems.push(format!("{key:?} (pids {pids:?}): in portscope, not in ss"));
        }
    }
    assert!(
        problems.is_empty(),
        "portscope and ss disagree:\n{}",
        problems.join("\n")
    );
    let tcp4 = (
        Proto::Tcp,
        Some(IpAddr::from([127, 0, 0, 1])),
        holder.ports.tcp4,
    );
    assert_eq!(ours.get(&tcp4), Some(&BTreeSet::from([holder.pid()])));
}

#[test]
fn ss_parser_reads_the_forms_ss_prints() {
    let text = "tcp LISTEN 0 128 127.0.0.1:5173 0.0.0.0:* users:((\"node\",pid=42,fd=20),(\"node\",pid=43,fd=20))\n\
                udp UNCONN 0 0 127.0.0.53%lo:53 0.0.0.0:* users:((\"systemd-resolve\",pid=7,fd=13))\n\
                tcp LISTEN 0 4096 *:22 *:*\n\
                tcp ESTAB 0 0 [::1]:5173 [::1]:40000 users:((\"node\",pid=42,fd=21))\n";
    let view = parse_ss(text);
    let lo = Some(IpAddr::from([127, 0, 0, 1]));
    assert_eq!(
        view.listening[&(Proto::Tcp, lo, 5173)],
        BTreeSet::from([42, 43])
    );
    assert_eq!(
        view.listening[&(Proto::Udp, Some(IpAddr::from([127, 0, 0, 53])), 53)],
        BTreeSet::from([7])
    );
    assert!(view.listening[&(Proto::Tcp, None, 22)].is_empty());
    assert_eq!(view.listening.len(), 3);
}
