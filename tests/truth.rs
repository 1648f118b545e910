//! Truth: portscope and `ss -tunapH` on the same machine agree on sockets and their owners.
//!
//! - `portscope ls --json` (one full scan) and `ss` agree on every listener; `ss` is read before
//!   and after portscope, and only sockets that differ between those two reads may disagree.
//! - The live agent, whose collector is incremental, follows sockets that change owner — a fork,
//!   a listener passed to another process over `SCM_RIGHTS`, a holder that exits, hundreds of
//!   processes exiting mid-scan — and then names the same owners as a full scan and as `ss`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use portscope_shared::{Proto, ServerMessage, Snapshot, Socket, SocketState};

use crate::support::{Agent, Holder, Ws, run_cli};

/// (protocol, local address — `None` for `*` —, local port)
type Key = (Proto, Option<IpAddr>, u16);

/// A TCP socket by (local port, peer port — `None` when not connected).
type Conn = (u16, Option<u16>);

#[derive(Debug, Default)]
struct SsView {
    /// Listening sockets (TCP LISTEN, UDP UNCONN) → owning pids.
    listening: BTreeMap<Key, BTreeSet<u32>>,
    /// Every TCP socket on loopback → owning pids.
    tcp: BTreeMap<Conn, BTreeSet<u32>>,
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
        if proto == Proto::Tcp {
            let peer = fields[5]
                .rsplit_once(':')
                .and_then(|(_, port)| port.parse().ok());
            view.tcp
                .entry((key.2, peer))
                .or_default()
                .extend(pids.iter().copied());
        }
        if listening {
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

/// What `family.py` printed: its pid, its receiver's, the listener's port and the client end's.
#[derive(Debug, serde::Deserialize)]
struct Family {
    pid: u32,
    receiver: u32,
    port: u16,
    client: u16,
}

/// A dashboard's view: a WebSocket client that applies the snapshot and every delta.
struct Live {
    ws: Ws,
    seq: u64,
    sockets: BTreeMap<String, Socket>,
    warnings: Vec<String>,
}

impl Live {
    async fn connect(agent: &Agent) -> Live {
        let mut ws = agent.connect().await;
        let ServerMessage::Hello(_) = ws.next(Duration::from_secs(10)).await else {
            panic!("the first message must be Hello");
        };
        let mut live = Live {
            ws,
            seq: 0,
            sockets: BTreeMap::new(),
            warnings: Vec::new(),
        };
        loop {
            let more = match live.ws.next(Duration::from_secs(10)).await {
                ServerMessage::Snapshot(s) => {
                    live.seq = s.seq;
                    live.warnings = s.warnings;
                    live.add(s.sockets);
                    s.more
                }
                ServerMessage::SnapshotMore(m) => {
                    live.add(m.sockets);
                    m.more
                }
                other => panic!("expected the snapshot, got {other:?}"),
            };
            if !more {
                return live;
            }
        }
    }

    fn add(&mut self, sockets: Vec<Socket>) {
        self.sockets
            .extend(sockets.into_iter().map(|s| (s.id.clone(), s)));
    }

    /// Applies the deltas that arrive within `limit`.
    async fn follow(&mut self, limit: Duration) {
        self.follow_until(tokio::time::Instant::now() + limit, |_| false)
            .await;
    }

    /// Applies the deltas that arrive until `done` holds (checked after each) or `deadline`;
    /// whether `done` held.
    async fn follow_until(
        &mut self,
        deadline: tokio::time::Instant,
        done: impl Fn(&Live) -> bool,
    ) -> bool {
        if done(self) {
            return true;
        }
        let wait = deadline.saturating_duration_since(tokio::time::Instant::now()) * 2;
        while let Ok(msg) = tokio::time::timeout_at(deadline, self.ws.next(wait)).await {
            let delta = match msg {
                ServerMessage::Delta(delta) => delta,
                // A delta's listener events: what the state shows already.
                ServerMessage::Events(events) => {
                    assert_eq!(events.seq, self.seq, "events follow their delta");
                    continue;
                }
                other => panic!("expected deltas and their events, got {other:?}"),
            };
            assert_eq!(delta.from_seq, self.seq, "deltas follow on");
            self.seq = delta.seq;
            for id in &delta.removed {
                self.sockets.remove(id);
            }
            self.add(delta.added);
            self.add(delta.changed);
            self.warnings = delta.warnings;
            if done(self) {
                return true;
            }
        }
        false
    }

    fn owners(&self, conns: &[Conn]) -> BTreeMap<Conn, BTreeSet<u32>> {
        owners_of(self.sockets.values(), conns)
    }
}

/// The owners of the given TCP sockets on 127.0.0.1.
fn owners_of<'a>(
    sockets: impl IntoIterator<Item = &'a Socket>,
    conns: &[Conn],
) -> BTreeMap<Conn, BTreeSet<u32>> {
    let mut map = BTreeMap::new();
    for s in sockets {
        let conn = (s.local_port, s.remote_port);
        if s.proto == Proto::Tcp && conns.contains(&conn) && s.state != SocketState::TimeWait {
            map.insert(conn, s.pids.iter().copied().collect());
        }
    }
    map
}

/// Waits (following the stream) until the live view shows `expected`, at most two ticks after
/// the change was made: the next scan sees it (a new process is walked, a changed descriptor
/// count makes its process walked), and the tick after that is the margin for the scan itself
/// and the delta's way to the client. That is far inside the collector's sweep period (30 ticks
/// before any sweep walk), so the live view must get there by its own detection. Then checks
/// that a full scan and `ss` say the same.
async fn agree(
    live: &mut Live,
    expected: &BTreeMap<Conn, BTreeSet<u32>>,
    what: &str,
    tick: Duration,
) {
    let conns: Vec<Conn> = expected.keys().copied().collect();
    let started = Instant::now();
    let seen = live
        .follow_until(tokio::time::Instant::now() + 2 * tick, |l| {
            l.owners(&conns) == *expected
        })
        .await;
    assert!(
        seen,
        "{what}: after two ticks ({:?}) the live view says {:?}, expected {expected:?}",
        2 * tick,
        live.owners(&conns)
    );
    eprintln!("{what}: seen after {:?}", started.elapsed());
    let (code, out, err) = run_cli(&["ls", "--json"]);
    assert_eq!(code, 0, "{err}");
    let full: Snapshot = serde_json::from_str(&out).unwrap();
    assert_eq!(
        owners_of(&full.sockets, &conns),
        *expected,
        "{what}: a full scan disagrees"
    );
    let ss = run_ss();
    let from_ss: BTreeMap<Conn, BTreeSet<u32>> = conns
        .iter()
        .filter_map(|c| Some((*c, ss.tcp.get(c)?.clone())))
        .collect();
    assert_eq!(from_ss, *expected, "{what}: ss disagrees");
    eprintln!("{what}: live view, full scan and ss agree: {expected:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_view_follows_owner_changes_like_a_full_scan_and_ss() {
    owner_changes(Agent::start_ticking("200ms"), Duration::from_millis(200)).await;
}

/// The same on the path of kernels before 6.2, which report no descriptor count (forced here
/// with `PORTSCOPE_FD_COUNT=list`). With a 500 ms tick the sweep walks nobody before 15 s, and
/// `agree` waits two ticks (1 s): each change must be seen by its own detection, not the sweep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_view_follows_owner_changes_without_a_kernel_descriptor_count() {
    owner_changes(
        Agent::start_with_env("500ms", &[("PORTSCOPE_FD_COUNT", "list")]),
        Duration::from_millis(500),
    )
    .await;
}

async fn owner_changes(agent: Agent, tick: Duration) {
    let mut family = Holder::<Family>::start_script("family.py");
    let (pid, receiver) = (family.ports.pid, family.ports.receiver);
    let listener = (family.ports.port, None);
    let accepted = (family.ports.port, Some(family.ports.client));
    let client = (family.ports.client, Some(family.ports.port));
    let mut live = Live::connect(&agent).await;
    let all = |pids: &[u32]| -> BTreeMap<Conn, BTreeSet<u32>> {
        [listener, accepted, client]
            .into_iter()
            .map(|c| (c, pids.iter().copied().collect()))
            .collect()
    };
    agree(&mut live, &all(&[pid]), "at start", tick).await;

    let child: u32 = family.command("fork").parse().unwrap();
    agree(&mut live, &all(&[pid, child]), "after a fork", tick).await;

    assert_eq!(family.command("end-child"), "ended");
    agree(&mut live, &all(&[pid]), "after the child exited", tick).await;

    assert_eq!(family.command("move"), "moved");
    let mut moved = all(&[pid]);
    moved.insert(listener, BTreeSet::from([receiver]));
    agree(
        &mut live,
        &moved,
        "after the listener was passed over SCM_RIGHTS",
        tick,
    )
    .await;

    // Processes that exit while the agent scans them: it keeps serving, and once they are gone
    // nothing names them.
    let churned: BTreeSet<u32> = family
        .command("churn 200")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(churned.len(), 200);
    live.follow(Duration::from_secs(1)).await;
    agree(&mut live, &moved, "after 200 short-lived holders", tick).await;
    let named: Vec<&Socket> = live
        .sockets
        .values()
        .filter(|s| s.pids.iter().any(|p| churned.contains(p)))
        .collect();
    assert!(named.is_empty(), "exited processes still named: {named:?}");
    assert!(
        !live.warnings.iter().any(|w| w.contains("scan failed")),
        "{:?}",
        live.warnings
    );
}
