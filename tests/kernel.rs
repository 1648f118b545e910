//! Kernel events (#22) end to end: the real agent with its BPF probes, real processes that
//! fail to bind, are refused, and listen for a few milliseconds, and a real WebSocket client.
//! The tests run as root on Linux with BTF (CI's machine); without them the agent says why it
//! polls, and these tests fail saying so.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use portscope_shared::{Changes, Event, EventKind, ServerMessage};

use crate::support::{Agent, Ws};

/// The agent as a user runs it: kernel events, a full scan every 30 s.
fn kernel_agent() -> Agent {
    Agent::start_exactly(&["--interval", "1s", "--reconcile", "30s"])
}

/// Runs a Python program to its end; its pid.
fn python(code: &str) -> u32 {
    let mut child = Command::new("python3")
        .args(["-c", code])
        .stdin(Stdio::null())
        .spawn()
        .expect("python3 runs");
    let pid = child.id();
    let status = child.wait().expect("python3 ends");
    assert!(status.success(), "python3 failed: {code}");
    pid
}

/// A Python process that holds `code`'s sockets until dropped, after printing a line.
struct Holding {
    child: std::process::Child,
    line: String,
}

impl Holding {
    fn start(code: &str) -> Holding {
        Holding::start_in(code, std::path::Path::new("."))
    }

    /// [`Holding::start`] working in `dir`.
    fn start_in(code: &str, dir: &std::path::Path) -> Holding {
        let mut child = Command::new("python3")
            .args(["-c", code])
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let out = child.stdout.take().unwrap();
        let line =
            crate::support::read_line_within(std::io::BufReader::new(out), Duration::from_secs(10))
                .expect("the holder prints its port");
        Holding {
            child,
            line: line.trim().to_owned(),
        }
    }

    fn port(&self) -> u16 {
        self.line.parse().expect("a port")
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The history's events on `port` (`GET /api/v1/history?port=`), newest first.
fn history(agent: &Agent, port: u16) -> Vec<Event> {
    let body = agent.get(&format!("/api/v1/history?port={port}")).body;
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    serde_json::from_value(v["events"].clone()).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The Hello's `changes`.
async fn hello(ws: &mut Ws) -> portscope_shared::Hello {
    match ws.next(Duration::from_secs(10)).await {
        ServerMessage::Hello(hello) => hello,
        other => panic!("Hello expected, got {other:?}"),
    }
}

/// Events from the stream until `want` holds for one, within `limit`; all events seen.
async fn events_until(
    ws: &mut Ws,
    limit: Duration,
    mut want: impl FnMut(&Event) -> bool,
) -> (Event, Vec<Event>) {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the event did not come within {limit:?}; events seen: {seen:#?}"
        );
        if let ServerMessage::Events(events) = ws.next(left).await {
            for e in events.events {
                let found = want(&e);
                seen.push(e.clone());
                if found {
                    return (e, seen);
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kernel_tells_a_failed_bind_with_who_holds_the_port() {
    let agent = kernel_agent();
    let mut ws = agent.connect().await;
    let hello = hello(&mut ws).await;
    assert_eq!(
        hello.changes,
        Changes::Kernel,
        "the agent must get kernel events here (root, BTF, clang at build time); its log says why not"
    );
    assert_eq!(hello.tick_ms, 30_000);
    ws.snapshot(Duration::from_secs(10)).await;

    let holder = Holding::start(
        "import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\n\
         print(s.getsockname()[1],flush=True)\nsys.stdin.read()",
    );
    let port = holder.port();
    let failing = python(&format!(
        "import socket\ns=socket.socket()\ntry:\n s.bind(('127.0.0.1',{port}))\nexcept OSError:\n pass"
    ));
    let (failed, _) = events_until(&mut ws, Duration::from_secs(5), |e| {
        e.kind == EventKind::BindFailed && e.local_port == port
    })
    .await;
    assert_eq!(failed.pid, Some(failing), "{failed:#?}");
    assert_eq!(failed.process.as_deref(), Some("python3"));
    assert!(failed.start_time.is_some(), "{failed:#?}");
    assert!(
        failed
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("EADDRINUSE")),
        "{failed:#?}"
    );
    assert_eq!(failed.count, Some(1));
    let held = failed.holders.first().expect("the holder is named");
    assert_eq!(held.pids, vec![holder.child.id()], "{failed:#?}");
    assert_eq!(held.local_port, port);
    let fix = failed.fix.as_deref().unwrap_or_default();
    assert!(
        fix.contains(&format!("pid {}", holder.child.id())) && fix.contains("portscope free"),
        "{fix}"
    );

    // The history keeps it, with its holders.
    std::thread::sleep(Duration::from_millis(500));
    let body = history(&agent, port);
    let kept = body
        .iter()
        .find(|e| e.kind == EventKind::BindFailed)
        .unwrap_or_else(|| panic!("no bind_failed in the history: {body:#?}"));
    assert_eq!(kept.pid, Some(failing));
    assert_eq!(kept.holders, failed.holders);
    assert_eq!(kept.fix, failed.fix);
    drop(holder);
    agent.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connect_names_the_listener_in_the_other_family_and_repeats_are_counted() {
    let agent = kernel_agent();
    let mut ws = agent.connect().await;
    assert_eq!(hello(&mut ws).await.changes, Changes::Kernel);
    ws.snapshot(Duration::from_secs(10)).await;

    // A server on [::1] only, as Vite on a machine whose `localhost` is ::1.
    let server = Holding::start(
        "import socket,sys\ns=socket.socket(socket.AF_INET6)\n\
         s.setsockopt(socket.IPPROTO_IPV6,socket.IPV6_V6ONLY,1)\ns.bind(('::1',0))\ns.listen()\n\
         print(s.getsockname()[1],flush=True)\nsys.stdin.read()",
    );
    let port = server.port();
    // Wait until the model holds it (a kernel change: well under a second).
    events_until(&mut ws, Duration::from_secs(5), |e| {
        e.kind == EventKind::Opened && e.local_port == port
    })
    .await;
    // A client that tries 127.0.0.1 twenty times, as a retry loop does.
    let client = python(&format!(
        "import socket\nfor _ in range(20):\n c=socket.socket()\n try:\n  c.connect(('127.0.0.1',{port}))\n except OSError:\n  pass\n c.close()"
    ));
    let (refused, _) = events_until(&mut ws, Duration::from_secs(5), |e| {
        e.kind == EventKind::ConnectRefused && e.remote_port == Some(port)
    })
    .await;
    assert_eq!(refused.pid, Some(client), "{refused:#?}");
    assert_eq!(refused.remote_addr, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(refused.count, Some(1));
    let elsewhere = refused
        .holders
        .first()
        .expect("the [::1] listener is named");
    assert_eq!(
        elsewhere.local_addr,
        "::1".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(elsewhere.pids, vec![server.child.id()]);
    let fix = refused.fix.as_deref().unwrap_or_default();
    assert!(fix.contains(&format!("[::1]:{port}")), "{fix}");

    // The 19 repeats are one more event, when the 10 s window closes.
    let (repeats, seen) = events_until(&mut ws, Duration::from_secs(15), |e| {
        e.kind == EventKind::ConnectRefused && e.remote_port == Some(port) && e.count != Some(1)
    })
    .await;
    assert_eq!(repeats.count, Some(19), "{repeats:#?}");
    let told = seen
        .iter()
        .filter(|e| e.kind == EventKind::ConnectRefused && e.remote_port == Some(port))
        .count();
    assert_eq!(told, 1, "only the count in between: {seen:#?}");
    drop(server);
    agent.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_that_live_150_ms_or_no_time_at_all_are_all_recorded_with_their_owner() {
    let agent = kernel_agent();
    let mut ws = agent.connect().await;
    assert_eq!(hello(&mut ws).await.changes, Changes::Kernel);
    ws.snapshot(Duration::from_secs(10)).await;
    let mut ports = Vec::new();
    for life in ["0.15", "0"] {
        let out = Command::new("python3")
            .args([
                "-c",
                &format!(
                    "import socket,time\nfor _ in range(5):\n s=socket.socket()\n s.bind(('127.0.0.1',0))\n s.listen()\n print(s.getsockname()[1],flush=True)\n time.sleep({life})\n s.close()\n time.sleep(0.05)"
                ),
            ])
            .output()
            .expect("python3 runs");
        assert!(out.status.success());
        ports.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.parse::<u16>().unwrap()),
        );
    }
    assert_eq!(ports.len(), 10);
    let mut opened = std::collections::BTreeSet::new();
    let mut closed = std::collections::BTreeSet::new();
    let _ = events_until(&mut ws, Duration::from_secs(10), |e| {
        if ports.contains(&e.local_port) && e.process.as_deref() == Some("python3") {
            match e.kind {
                EventKind::Opened => {
                    opened.insert(e.local_port);
                }
                EventKind::Closed => {
                    closed.insert(e.local_port);
                }
                _ => {}
            }
        }
        opened.len() == 10 && closed.len() == 10
    })
    .await;
    // And in the history, each with its opening and closing.
    std::thread::sleep(Duration::from_millis(500));
    for port in &ports {
        let kept = history(&agent, *port);
        let kinds: Vec<EventKind> = kept.iter().map(|e| e.kind).collect();
        assert!(
            kinds.contains(&EventKind::Opened) && kinds.contains(&EventKind::Closed),
            "port {port}: {kept:#?}"
        );
        assert!(kept.iter().all(|e| e.process.as_deref() == Some("python3")));
    }
    agent.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_kernel_events_polls_and_says_so() {
    let agent = Agent::start_exactly(&["--interval", "300ms", "--no-kernel-events"]);
    let mut ws = agent.connect().await;
    let hello = hello(&mut ws).await;
    assert_eq!(hello.changes, Changes::Poll);
    assert_eq!(hello.tick_ms, 300);
    agent.stop();
}

/// The tracepoints fire for every network namespace; the agent tells only its own, as its
/// scans see only its own: a listener and a failed bind in another namespace (`unshare -n`,
/// a container's view) are not this machine's events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_network_namespaces_failures_and_listeners_are_not_told() {
    let agent = kernel_agent();
    let mut ws = agent.connect().await;
    assert_eq!(hello(&mut ws).await.changes, Changes::Kernel);
    ws.snapshot(Duration::from_secs(10)).await;
    let elsewhere = crate::support::free_port();
    let status = Command::new("unshare")
        .args([
            "-n",
            "python3",
            "-c",
            &format!(
                "import socket\na=socket.socket()\na.bind(('0.0.0.0',{elsewhere}))\na.listen()\n\
                 b=socket.socket()\ntry:\n b.bind(('0.0.0.0',{elsewhere}))\nexcept OSError:\n pass\na.close()"
            ),
        ])
        .status()
        .expect("unshare runs (util-linux)");
    assert!(status.success(), "unshare -n failed: run the tests as root");
    // A failure of our own afterwards: once it is told, the other's would have been.
    let holder = Holding::start(
        "import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\n\
         print(s.getsockname()[1],flush=True)\nsys.stdin.read()",
    );
    let here = holder.port();
    python(&format!(
        "import socket\ns=socket.socket()\ntry:\n s.bind(('127.0.0.1',{here}))\nexcept OSError:\n pass"
    ));
    let (_, seen) = events_until(&mut ws, Duration::from_secs(5), |e| {
        e.kind == EventKind::BindFailed && e.local_port == here
    })
    .await;
    // (`free_port` itself listened on it for a moment, in this namespace.)
    let leaked: Vec<&Event> = seen
        .iter()
        .filter(|e| e.local_port == elsewhere && e.pid != Some(std::process::id()))
        .collect();
    assert!(leaked.is_empty(), "another namespace's events: {leaked:#?}");
    drop(holder);
    agent.stop();
}

/// The model follows a listener without a scan: the delta that adds it is the one the agent
/// published from the kernel's change (its log says so, under the delta's `seq`), with the
/// process that listened as its owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_listener_is_in_the_model_without_waiting_for_a_scan() {
    let (agent, mut ws) = kernel_agent_logging().await;
    let holder = Holding::start(
        "import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\n\
         print(s.getsockname()[1],flush=True)\nsys.stdin.read()",
    );
    let port = holder.port();
    let deadline = Instant::now() + Duration::from_secs(5);
    let (seq, socket) = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the listener did not reach the stream within 5 s"
        );
        if let ServerMessage::Delta(delta) = ws.next(left).await
            && let Some(s) = delta.added.iter().find(|s| s.local_port == port)
        {
            break (delta.seq, s.clone());
        }
    };
    assert_eq!(socket.pids, vec![holder.child.id()]);
    assert!(
        logged(&agent, "followed the kernel's listeners", seq),
        "delta {seq} was not published from the kernel's change; log: {:#?}",
        agent.log.lock().unwrap()
    );
    drop(holder);
    agent.stop();
}

/// A kernel-fed agent reconciling every 30 s, its refresher's debug log kept (what
/// [`logged`] reads), and a client past its snapshot.
async fn kernel_agent_logging() -> (Agent, Ws) {
    let agent = Agent::start_with_env("30s", &[("RUST_LOG", "portscope_server::refresh=debug")]);
    let mut ws = agent.connect().await;
    assert_eq!(hello(&mut ws).await.changes, Changes::Kernel);
    ws.snapshot(Duration::from_secs(10)).await;
    (agent, ws)
}

/// Whether the agent's debug log has a line saying `what` about the state `seq`.
fn logged(agent: &Agent, what: &str, seq: u64) -> bool {
    let field = format!("seq={seq}");
    agent.log.lock().unwrap().iter().any(|l| {
        let l = l
            .replace("\u{1b}[3m", "")
            .replace("\u{1b}[0m", "")
            .replace("\u{1b}[2m", "");
        l.contains(what)
            && l.split_whitespace()
                .any(|word| word == field || word.strip_suffix(',') == Some(&field))
    })
}

/// A connection comes into the model and goes out of it without a scan: both ends are read
/// again alone when the kernel reports them changing, each with its owner — the accepted end
/// too, which a server takes 100 ms to `accept()` (until then no process holds it) — and the
/// accepted end leaves when it closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_comes_and_goes_in_the_model_without_a_scan() {
    use std::io::Write;
    let (agent, mut ws) = kernel_agent_logging().await;
    let mut holder = Holding::start(
        "import select,socket,sys,time\nl=socket.socket()\nl.bind(('127.0.0.1',0))\n\
         l.listen()\nprint(l.getsockname()[1],flush=True)\nselect.select([l],[],[])\n\
         time.sleep(0.1)\na,_=l.accept()\nsys.stdin.readline()\na.close()\nsys.stdin.read()",
    );
    let port = holder.port();
    let client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
    let mine = client.local_addr().unwrap().port();
    let ours = |s: &portscope_shared::Socket| s.local_port == mine && s.remote_port == Some(port);
    let theirs = |s: &portscope_shared::Socket| s.local_port == port && s.remote_port == Some(mine);
    // Each end as last published, with the seq that published it; and every delta that
    // touched them (other tests' changes wake full scans of this agent too, which may publish
    // one of them first: at least one must be the kernel's).
    let mut seen: [Option<(u64, portscope_shared::Socket)>; 2] = [None, None];
    let mut touched = Vec::new();
    let owned = |seen: &[Option<(u64, portscope_shared::Socket)>; 2]| {
        seen[0]
            .as_ref()
            .is_some_and(|(_, s)| s.pids == vec![std::process::id()])
            && seen[1]
                .as_ref()
                .is_some_and(|(_, s)| s.pids == vec![holder.child.id()])
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !owned(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the connection's ends did not reach the stream with their owners within 5 s: \
             {seen:#?}"
        );
        if let ServerMessage::Delta(delta) = ws.next(left).await {
            for s in delta.added.iter().chain(&delta.changed) {
                if ours(s) {
                    seen[0] = Some((delta.seq, s.clone()));
                    touched.push(delta.seq);
                } else if theirs(s) {
                    seen[1] = Some((delta.seq, s.clone()));
                    touched.push(delta.seq);
                }
            }
        }
    }
    for (_, socket) in seen.iter().flatten() {
        assert_eq!(socket.state, portscope_shared::SocketState::Established);
    }
    let by_kernel = |seqs: &[u64]| {
        seqs.iter()
            .any(|&seq| logged(&agent, "read changed connections alone", seq))
    };
    assert!(
        by_kernel(&touched),
        "none of deltas {touched:?} was published from the kernel's change; log: {:#?}",
        agent.log.lock().unwrap()
    );

    // Both ends close: the accepted end goes (ours waits in TIME_WAIT, as `ss` shows it).
    let accepted = seen[1].as_ref().unwrap().1.id.clone();
    drop(client);
    writeln!(holder.child.stdin.as_mut().unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut touched = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the accepted end did not leave the stream within 5 s"
        );
        if let ServerMessage::Delta(delta) = ws.next(left).await {
            let ours = delta
                .added
                .iter()
                .chain(&delta.changed)
                .any(|s| ours(s) || theirs(s));
            if ours || delta.removed.contains(&accepted) {
                touched.push(delta.seq);
            }
            if delta.removed.contains(&accepted) {
                break;
            }
        }
    }
    assert!(
        by_kernel(&touched),
        "its closing ({touched:?}) was not published from the kernel's change"
    );
    drop(holder);
    agent.stop();
}

/// A listener's project comes without a scan too: asked without waiting when the listener is
/// followed, and told as soon as it answers (with a 30 s reconcile, the next scan is far).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_listeners_project_comes_without_a_scan() {
    let (agent, mut ws) = kernel_agent_logging().await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("shop-api");
    std::fs::create_dir_all(repo.join(".git")).unwrap();
    let holder = Holding::start_in(
        "import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\n\
         print(s.getsockname()[1],flush=True)\nsys.stdin.read()",
        &repo,
    );
    let pid = holder.child.id();
    let deadline = Instant::now() + Duration::from_secs(5);
    let seq = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the listener's project did not come within 5 s"
        );
        if let ServerMessage::Delta(delta) = ws.next(left).await
            && delta
                .processes
                .iter()
                .any(|p| p.pid == pid && p.project.as_ref().is_some_and(|p| p.name == "shop-api"))
        {
            break delta.seq;
        }
    };
    assert!(
        logged(&agent, "followed the kernel's listeners", seq)
            || logged(&agent, "projects answered", seq),
        "the project came with delta {seq}, which no kernel change published; log: {:#?}",
        agent.log.lock().unwrap()
    );
    drop(holder);
    agent.stop();
}

/// A connect that gets no answer (its SYN dropped: the listener's queue is full) is told
/// before its port is chosen, so it cannot be read alone: after a second a scan shows it, in
/// `SYN_SENT`, without waiting for the reconcile (30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_left_unanswered_shows_within_seconds() {
    let (agent, mut ws) = kernel_agent_logging().await;
    let holder = Holding::start(
        "import socket,sys\nl=socket.socket()\nl.bind(('127.0.0.1',0))\nl.listen(0)\n\
         held=[]\nfor _ in range(3):\n    c=socket.socket()\n    c.setblocking(False)\n    \
         c.connect_ex(l.getsockname())\n    held.append(c)\n\
         print(held[-1].getsockname()[1],flush=True)\nsys.stdin.read()",
    );
    let port = holder.port();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the unanswered connect from port {port} did not show within 5 s"
        );
        if let ServerMessage::Delta(delta) = ws.next(left).await
            && delta
                .added
                .iter()
                .chain(&delta.changed)
                .any(|s| s.local_port == port && s.state == portscope_shared::SocketState::SynSent)
        {
            break;
        }
    }
    drop(holder);
    agent.stop();
}
