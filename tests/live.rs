//! The live path: a separate process opens sockets; the agent's WebSocket stream and REST
//! snapshot show them with the right owner, and a closed listener leaves within two ticks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use portscope_shared::{
    ApiErrorCode, EventKind, Family, OwnerStatus, PROTOCOL_VERSION, Proto, ServerMessage, Snapshot,
    Socket, SocketState,
};

use crate::support::{Agent, Holder};

fn find(
    sockets: &[Socket],
    proto: Proto,
    addr: IpAddr,
    port: u16,
    state: SocketState,
) -> Option<&Socket> {
    sockets.iter().find(|s| {
        s.proto == proto && s.local_addr == addr && s.local_port == port && s.state == state
    })
}

#[track_caller]
fn assert_held(snapshot: &Snapshot, socket: Option<&Socket>, pid: u32, what: &str) {
    let socket = socket.unwrap_or_else(|| panic!("{what} is missing from the snapshot"));
    assert_eq!(socket.pids, vec![pid], "{what}: wrong owner");
    assert_eq!(socket.owner, OwnerStatus::Known, "{what}");
    let process = snapshot
        .processes
        .iter()
        .find(|p| p.pid == pid)
        .unwrap_or_else(|| panic!("{what}: owner pid {pid} has no process entry"));
    assert!(
        process.name.starts_with("python3"),
        "{what}: owner is {:?}, expected python3",
        process.name
    );
    assert!(
        process.cmdline.iter().any(|a| a.ends_with("holder.py")),
        "{:?}",
        process.cmdline
    );
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        process.cwd.as_deref(),
        cwd.to_str(),
        "the holder runs where this test does"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_shows_sockets_of_another_process_and_their_removal() {
    let mut holder = Holder::start();
    let ports = holder.ports;
    let pid = holder.pid();
    // A one-second tick, so that "within two ticks" is not swamped by scheduling noise on a
    // busy machine.
    let tick = Duration::from_secs(1);
    let agent = Agent::start_ticking("1s");
    let mut ws = agent.connect().await;

    let ServerMessage::Hello(hello) = ws.next(Duration::from_secs(5)).await else {
        panic!("the first message must be Hello");
    };
    assert_eq!(hello.protocol_version, PROTOCOL_VERSION);
    assert_eq!(hello.tick_ms, 1000);
    assert!(!hello.hostname.is_empty());
    assert_eq!(hello.os, "linux");

    // The second message is the Snapshot (in parts on a busy machine).
    let snapshot = ws.snapshot(Duration::from_secs(15)).await;
    let lo4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let lo6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let sockets = &snapshot.sockets;
    let listener = find(sockets, Proto::Tcp, lo4, ports.tcp4, SocketState::Listen);
    assert_held(&snapshot, listener, pid, "the 127.0.0.1 listener");
    let listener_id = listener.unwrap().id.clone();
    let v6 = find(sockets, Proto::Tcp, lo6, ports.tcp6, SocketState::Listen);
    assert_held(&snapshot, v6, pid, "the ::1 listener");
    assert_eq!(v6.unwrap().family, Family::Ipv6);
    let udp = find(sockets, Proto::Udp, lo4, ports.udp, SocketState::Unconn);
    assert_held(&snapshot, udp, pid, "the UDP socket");
    // By both ends: the kernel gives one ephemeral port to connections to different places,
    // so on a busy machine another connection may share its local port.
    let client = sockets.iter().find(|s| {
        s.proto == Proto::Tcp
            && s.local_addr == lo4
            && s.local_port == ports.client
            && s.remote_port == Some(ports.tcp4)
            && s.state == SocketState::Established
    });
    assert_held(&snapshot, client, pid, "the client end of the connection");
    assert_eq!(client.unwrap().remote_port, Some(ports.tcp4));
    let server_end = sockets.iter().find(|s| {
        s.local_port == ports.tcp4
            && s.remote_port == Some(ports.client)
            && s.state == SocketState::Established
    });
    assert_held(
        &snapshot,
        server_end,
        pid,
        "the server end of the connection",
    );

    // Close the listener: a Delta must remove it within two ticks.
    assert_eq!(holder.command("close-listener"), "closed");
    let closed_at = Instant::now();
    let mut seq = snapshot.seq;
    let limit = 2 * tick;
    loop {
        let msg = ws.next(limit.saturating_sub(closed_at.elapsed())).await;
        let delta = match msg {
            ServerMessage::Delta(delta) => delta,
            // Other listeners of this busy machine come and go too.
            ServerMessage::Events(events) => {
                assert_eq!(events.seq, seq, "events follow the delta they describe");
                continue;
            }
            other => panic!("expected only Deltas and Events after the Snapshot, got {other:?}"),
        };
        assert_eq!(delta.from_seq, seq, "deltas must follow on from each other");
        assert!(delta.seq > seq);
        seq = delta.seq;
        if delta.removed.contains(&listener_id) {
            break;
        }
    }
    let latency = closed_at.elapsed();
    eprintln!("listener removal reached the client after {latency:?} (tick {tick:?})");
    // Right after that delta comes its listener event: closed, with the owner as last seen.
    let msg = ws.next(Duration::from_secs(1)).await;
    let ServerMessage::Events(events) = msg else {
        panic!("expected the Events of the delta that removed the listener, got {msg:?}");
    };
    assert_eq!(events.seq, seq);
    let closed = events
        .events
        .iter()
        .find(|e| e.local_port == ports.tcp4 && e.local_addr == lo4)
        .unwrap_or_else(|| panic!("no event for the closed listener in {events:?}"));
    assert_eq!(closed.kind, EventKind::Closed);
    assert_eq!(closed.pid, Some(pid));
    assert_eq!(closed.process.as_deref(), Some("python3"));

    // The REST snapshot agrees with the stream.
    let res = agent.get("/api/v1/snapshot");
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(
        res.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let rest: Snapshot = serde_json::from_str(&res.body).unwrap();
    assert!(rest.seq >= seq);
    assert!(
        rest.sockets.iter().all(|s| s.id != listener_id),
        "closed listener still in /api/v1/snapshot"
    );
    let v6 = find(
        &rest.sockets,
        Proto::Tcp,
        lo6,
        ports.tcp6,
        SocketState::Listen,
    );
    assert_held(&rest, v6, pid, "the ::1 listener (REST)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_client_messages_get_an_error_and_the_stream_goes_on() {
    let agent = Agent::start();
    let mut ws = agent.connect().await;
    let _hello = ws.next(Duration::from_secs(5)).await;
    let _snapshot = ws.snapshot(Duration::from_secs(15)).await;

    for (input, code) in [
        ("not json", ApiErrorCode::BadMessage),
        (r#"{"no_type":1}"#, ApiErrorCode::BadMessage),
        (r#"{"type":"LaunchMissiles"}"#, ApiErrorCode::UnknownMessage),
    ] {
        ws.send_text(input).await;
        loop {
            match ws.next(Duration::from_secs(5)).await {
                ServerMessage::Error(e) => {
                    assert_eq!(e.code, code, "for input {input:?}");
                    assert!(!e.message.is_empty());
                    break;
                }
                ServerMessage::Delta(_) | ServerMessage::Events(_) => continue,
                other => panic!("expected an Error for {input:?}, got {other:?}"),
            }
        }
    }
    // Still serving: a Resync gets a fresh snapshot.
    ws.send_text(r#"{"type":"Resync"}"#).await;
    let again = ws.snapshot(Duration::from_secs(15)).await;
    assert!(!again.sockets.is_empty());
}

#[test]
fn ls_prints_the_same_sockets_as_table_and_json() {
    let holder = Holder::start();
    let port = holder.ports.tcp4.to_string();
    let (code, out, err) =
        crate::support::run_cli(&["ls", "--json", "--listening", "--port", &port]);
    assert_eq!(code, 0, "{err}");
    let snapshot: Snapshot = serde_json::from_str(&out).unwrap();
    assert_eq!(snapshot.sockets.len(), 1, "{out}");
    assert_eq!(snapshot.sockets[0].pids, vec![holder.pid()]);
    assert_eq!(snapshot.processes.len(), 1);

    let (code, out, err) = crate::support::run_cli(&["ls", "--pid", &holder.pid().to_string()]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("PROTO"), "{out}");
    // Two listeners, two UDP sockets and both ends of the connection.
    assert_eq!(lines.len(), 1 + 6, "{out}");
    assert!(lines.iter().skip(1).all(|l| l.contains("python3")), "{out}");
    assert!(out.contains(&format!("127.0.0.1:{port}")), "{out}");
    assert!(
        out.contains(&format!("[::1]:{}", holder.ports.tcp6)),
        "{out}"
    );
}

#[test]
fn bad_usage_exits_with_status_2_and_says_what_was_expected() {
    let (code, _, err) = crate::support::run_cli(&["ls", "--port", "70000"]);
    assert_eq!(code, 2);
    assert!(err.contains("70000"), "{err}");
    let (code, _, err) = crate::support::run_cli(&["serve", "--interval", "soon"]);
    assert_eq!(code, 2);
    assert!(err.contains("expected a duration"), "{err}");
    let (code, _, err) = crate::support::run_cli(&["serve", "--bind", "0.0.0.0", "--port", "0"]);
    assert_eq!(code, 2, "a refused --bind is a usage error: {err}");
    assert!(err.contains("not a loopback address"), "{err}");
    let (code, _, err) = crate::support::run_cli(&["who", "abc"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("`abc` is not a port number; expected a number from 1 to 65535"),
        "{err}"
    );
    assert!(
        !err.contains("invalid digit"),
        "no Rust parser jargon: {err}"
    );
    // Every port takes the same words, a negative one and `--port` included.
    let port_message = "is not a port number; expected a number from 1 to 65535";
    for args in [
        &["ls", "--port", "99999"][..],
        &["bind", "-1"],
        &["who", "-5"],
        &["serve", "--port", "99999"],
    ] {
        let (code, _, err) = crate::support::run_cli(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains(port_message) || err.contains("a port is a number from 1 to 65535"),
            "{args:?}: {err}"
        );
    }
    // A configured token too short to be safe: the user's mistake, so 2, naming the variable.
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_portscope"));
    serve
        .args(["serve", "--port", "0", "--no-history"])
        .env("PORTSCOPE_TOKEN", "short");
    let (code, _, err) = crate::support::run(serve);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("PORTSCOPE_TOKEN must be at least 32"), "{err}");
    // A peer that would get its token in clear, or a fingerprint that is none: refused before
    // the token is read (stdin is empty here), as usage errors.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("peers.toml");
    let file = file.to_str().unwrap();
    let fp = ["AB"; 32].join(":");
    for (args, says) in [
        (
            [
                "peer",
                "--file",
                file,
                "add",
                "b",
                "http://127.0.0.1:7678/",
                "--fingerprint",
                &fp,
            ],
            "in clear",
        ),
        (
            [
                "peer",
                "--file",
                file,
                "add",
                "b",
                "https://127.0.0.1:7678/",
                "--fingerprint",
                "AB:CD",
            ],
            "is not a SHA-256 fingerprint",
        ),
    ] {
        let (code, _, err) = crate::support::run_cli(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// `--token-file` (the systemd unit's): the first start makes a token and keeps it in a 0600
/// file in a 0700 directory; the next start serves the same token, so open dashboards
/// reconnect; a file others may read, or one with no real token, is refused, saying why.
#[test]
fn the_token_file_keeps_the_token_across_restarts() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config/portscope/token");
    let option = format!("--token-file={}", file.display());
    let first = Agent::start_with(&[&option, "--no-history"]);
    let kept = std::fs::read_to_string(&file).unwrap();
    assert_eq!(kept.trim(), first.token);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    first.stop();
    let again = Agent::start_with(&[&option, "--no-history"]);
    assert_eq!(again.token, kept.trim(), "the same token after a restart");
    let res = again.get("/api/v1/snapshot");
    assert_eq!(res.status, 200, "{}", res.body);
    again.stop();

    let refused = |why: &str| {
        let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_portscope"));
        serve.args(["serve", "--port", "0", "--no-history", &option]);
        serve.env_remove("PORTSCOPE_TOKEN");
        let (code, _, err) = crate::support::run(serve);
        assert_eq!(code, 2, "{why}: {err}");
        assert!(err.contains("--token-file"), "{why}: {err}");
        err
    };
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = refused("readable by others");
    assert!(err.contains(&file.display().to_string()), "{err}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&file, "short\n").unwrap();
    let err = refused("no real token");
    assert!(err.contains("at least 32 characters"), "{err}");
}

#[test]
fn logs_are_coloured_only_on_a_terminal_and_never_with_no_color() {
    // stderr is a pipe here: no colour codes, with or without NO_COLOR.
    let logged = |no_color: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_portscope"));
        c.args(["ls", "--port", "1"])
            .env("RUST_LOG", "portscope=debug");
        c.env_remove("NO_COLOR");
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        crate::support::run(c).2
    };
    for err in [logged(None), logged(Some("1"))] {
        assert!(err.contains("DEBUG"), "debug logs were written: {err}");
        assert!(
            !err.contains('\x1b'),
            "no ANSI codes in a file or pipe: {err:?}"
        );
    }
    // On a terminal (script(1) gives it one), colour unless NO_COLOR is set.
    let on_tty = |no_color: &str| {
        let bin = env!("CARGO_BIN_EXE_portscope");
        let mut c = std::process::Command::new("script");
        c.args(["-qec", &format!("{bin} ls --port 1"), "/dev/null"])
            .env("RUST_LOG", "portscope=debug")
            .env("NO_COLOR", no_color);
        crate::support::run(c).1
    };
    assert!(on_tty("").contains('\x1b'), "a terminal gets colour");
    let plain = on_tty("1");
    assert!(
        plain.contains("DEBUG") && !plain.contains('\x1b'),
        "{plain:?}"
    );
}

#[test]
fn a_taken_port_is_explained_with_its_holder() {
    let holder = Holder::start();
    let port = holder.ports.tcp4.to_string();
    let (code, _, err) = crate::support::run_cli(&["serve", "--port", &port]);
    assert_eq!(code, 1);
    assert!(err.contains("already in use"), "{err}");
    assert!(err.contains(&format!("pid {}", holder.pid())), "{err}");
    assert!(err.contains("--port"), "{err}");
}

#[test]
fn who_names_the_holder_its_command_its_directory_and_what_started_it() {
    let holder = Holder::start();
    let port = holder.ports.tcp4.to_string();
    let (code, out, err) = crate::support::run_cli(&["who", &port, "--json"]);
    assert_eq!(code, 0, "{err}");
    let report: portscope_shared::WhoReport = serde_json::from_str(&out).unwrap();
    assert_eq!(report.port, holder.ports.tcp4);
    // The listener and the accepted end of the connection are bound to the port.
    assert_eq!(report.sockets.len(), 2, "{out}");
    assert!(
        report.sockets.iter().all(|s| s.pids == vec![holder.pid()]),
        "{out}"
    );
    assert_eq!(report.owners.len(), 1, "{out}");
    let owner = &report.owners[0];
    assert_eq!(owner.process.pid, holder.pid());
    assert!(
        owner
            .process
            .cmdline
            .iter()
            .any(|a| a.ends_with("holder.py"))
    );
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(owner.cwd.as_deref(), Some(cwd.to_str().unwrap()));
    assert_eq!(
        owner.ancestors.first().map(|p| p.pid),
        Some(std::process::id()),
        "the holder's parent is this test process: {out}"
    );

    let (code, out, err) = crate::support::run_cli(&["who", &port]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("Port {port}: 2 sockets")), "{out}");
    assert!(out.contains(&format!("(pid {})", holder.pid())), "{out}");
    assert!(
        out.contains("holder.py") && out.contains("started by: "),
        "{out}"
    );
}

#[test]
fn who_on_a_free_port_exits_1_and_bad_ports_exit_2() {
    let port = crate::support::free_port().to_string();
    let (code, out, _) = crate::support::run_cli(&["who", &port]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Nothing holds port"), "{out}");
    for bad in ["0", "65536", "http"] {
        let (code, _, err) = crate::support::run_cli(&["who", bad]);
        assert_eq!(code, 2, "who {bad}: {err}");
        assert!(err.contains(bad), "the error names the bad value: {err}");
    }
}

/// Without netlink sock_diag (forced here with `PORTSCOPE_SOCKETS_FROM=proc`), the sockets come
/// from `/proc/net/*` and match what netlink shows: same sockets, states and owners.
#[test]
fn sockets_read_from_proc_match_netlink() {
    let holder = Holder::start();
    let key = |s: &Socket| {
        (
            s.proto,
            s.local_addr,
            s.local_port,
            s.remote_addr,
            s.remote_port,
            s.state,
            s.pids.clone(),
        )
    };
    let mine = |out: &str| -> Vec<_> {
        let snapshot: Snapshot = serde_json::from_str(out).unwrap();
        let mut v: Vec<_> = snapshot
            .sockets
            .iter()
            .filter(|s| s.pids == vec![holder.pid()])
            .map(key)
            .collect();
        v.sort();
        v
    };
    let (code, netlink, err) =
        crate::support::run_cli(&["ls", "--json", "--pid", &holder.pid().to_string()]);
    assert_eq!(code, 0, "{err}");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_portscope"));
    command
        .args(["ls", "--json", "--pid", &holder.pid().to_string()])
        .env("PORTSCOPE_SOCKETS_FROM", "proc");
    let (code, proc, err) = crate::support::run(command);
    assert_eq!(code, 0, "{err}");
    let (a, b) = (mine(&netlink), mine(&proc));
    assert_eq!(a.len(), 6, "the holder's six sockets: {netlink}");
    assert_eq!(a, b, "netlink and /proc/net disagree");
}

/// As an ordinary user (`nobody`, through setpriv; the tests run as root): the scan works,
/// other users' sockets are kept with their uid, and the warning says how to see their owners.
#[test]
fn an_ordinary_user_sees_hidden_owners_and_is_told_why() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test runs `ls` as nobody beside a listener of root's, which needs root: run the \
         tests as root (`sudo -E cargo xtask test`, as .ci/run does)"
    );
    let holder = Holder::start(); // runs as this (root) user
    let mut command = std::process::Command::new("setpriv");
    command.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        env!("CARGO_BIN_EXE_portscope"),
        "ls",
        "--json",
    ]);
    let (code, out, err) = crate::support::run(command);
    assert_eq!(code, 0, "{err}");
    let snapshot: Snapshot = serde_json::from_str(&out).unwrap();
    let listener = snapshot
        .sockets
        .iter()
        .find(|s| s.local_port == holder.ports.tcp4 && s.state == SocketState::Listen)
        .expect("another user's listener is still listed");
    assert_eq!(listener.owner, OwnerStatus::Hidden);
    assert_eq!(listener.uid, Some(0));
    assert!(listener.pids.is_empty());
    assert!(
        snapshot
            .warnings
            .iter()
            .any(|w| w.contains("run portscope as root")),
        "{:?}",
        snapshot.warnings
    );
    assert!(
        err.contains("run portscope as root"),
        "the warning is on stderr too: {err}"
    );
}

/// `watch --json --listening` prints a line for a listener that opens, with its owner, and one
/// when it closes; a closed pipe ends it cleanly.
#[test]
fn watch_prints_a_line_when_a_listener_opens_and_closes() {
    use std::io::{BufRead, BufReader};
    // No agent where it looks: it scans by itself.
    let nowhere = tempfile::tempdir().unwrap();
    let mut watch = std::process::Command::new(env!("CARGO_BIN_EXE_portscope"))
        .args(["watch", "--json", "--listening", "--interval", "200ms"])
        .env("XDG_RUNTIME_DIR", nowhere.path())
        .env("XDG_STATE_HOME", nowhere.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Let it take its first look, then open a listener.
    std::thread::sleep(Duration::from_millis(500));
    let holder = Holder::start();
    let port = holder.ports.tcp4;
    let pid = holder.pid();
    let next = |kind: &str| -> portscope_shared::Event {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no `{kind}` line for port {port} within 15 s"));
            let event: portscope_shared::Event =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let k = serde_json::to_value(event.kind).unwrap();
            if event.local_port == port && k == kind {
                return event;
            }
        }
    };
    let opened = next("opened");
    assert_eq!(opened.pid, Some(pid), "{opened:?}");
    assert_eq!(opened.local_addr, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert!(opened.time.ends_with('Z'), "{}", opened.time);
    drop(holder);
    let closed = next("closed");
    assert_eq!(closed.pid, Some(pid));
    let _ = watch.kill();
    let _ = watch.wait();
}

/// With an agent running, `watch` follows its live model through the agent's local socket (it
/// says so, with the agent's tick), connections included; when the agent stops, it goes on by
/// scanning itself.
#[test]
fn watch_follows_the_running_agent_and_scans_once_it_is_gone() {
    use std::io::{BufRead, BufReader};
    let agent = Agent::start_ticking("200ms");
    let mut watch = std::process::Command::new(env!("CARGO_BIN_EXE_portscope"))
        .args(["watch", "--json", "--interval", "1s"])
        .env("XDG_RUNTIME_DIR", agent.state_dir.path())
        .env("XDG_STATE_HOME", agent.state_dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    for pipe in [
        Box::new(watch.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(watch.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    // Every line so far: one tick's events come in socket id order, not in the order asked.
    let seen = std::cell::RefCell::new(Vec::<String>::new());
    let next = |what: &str, wanted: &dyn Fn(&str) -> bool| -> String {
        if let Some(line) = seen.borrow().iter().find(|l| wanted(l)) {
            return line.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no line with {what} within 15 s: {:#?}", seen.borrow())
            });
            seen.borrow_mut().push(line.clone());
            if wanted(&line) {
                return line;
            }
        }
    };
    let said = next("the agent followed", &|l| l.starts_with("portscope: "));
    assert_eq!(
        said,
        "portscope: following the running agent (the kernel reports changes; a full scan every 200ms)"
    );

    // A listener and a connection of another process: both, at the agent's tick.
    let holder = Holder::start();
    let event = |line: &str| serde_json::from_str::<portscope_shared::Event>(line).ok();
    let tcp4 = holder.ports.tcp4;
    let opened = next("the listener", &|l| {
        event(l).is_some_and(|e| e.local_port == tcp4 && e.remote_port.is_none())
    });
    assert_eq!(event(&opened).unwrap().pid, Some(holder.pid()), "{opened}");
    let client = holder.ports.client;
    next("the connection", &|l| {
        event(l).is_some_and(|e| e.local_port == client && e.remote_port == Some(tcp4))
    });

    // The socket is the user's alone, and serves the stream only: no doctor, no kill.
    use std::os::unix::fs::PermissionsExt;
    let socket = agent.state_dir.path().join("portscope/agent.sock");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(socket.parent().unwrap()), 0o700);
    for request in [
        "POST /api/v1/kill",
        "GET /api/v1/snapshot",
        "GET /api/v1/why?target=22",
    ] {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        write!(
            s,
            "{request} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 404"), "{request}: {answer}");
    }

    // The agent stops: it takes its socket away; watch says so and scans by itself.
    let state = agent.terminate();
    assert!(!state.path().join("portscope/agent.sock").exists());
    next("the agent lost", &|l| {
        l.starts_with("portscope: lost the agent")
    });
    drop(holder);
    let closed = next("the listener closing", &|l| {
        event(l)
            .is_some_and(|e| e.local_port == tcp4 && e.kind == portscope_shared::EventKind::Closed)
    });
    assert!(closed.contains("\"closed\""), "{closed}");
    let _ = watch.kill();
    let _ = watch.wait();
}

/// The local socket's promises (SECURITY.md item 11): a second agent never takes a live
/// agent's socket (nor removes it when it stops); an open directory is closed to 0700 first;
/// a directory of another user is refused (no socket at all).
#[test]
fn the_local_socket_is_one_agents_and_its_users_alone() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let follow = |dir: &std::path::Path| -> String {
        let mut watch = std::process::Command::new(env!("CARGO_BIN_EXE_portscope"))
            .args(["watch", "--json"])
            .env("XDG_RUNTIME_DIR", dir)
            .env("XDG_STATE_HOME", dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut err = std::io::BufReader::new(watch.stderr.take().unwrap());
        std::io::BufRead::read_line(&mut err, &mut line).unwrap();
        let _ = watch.kill();
        let _ = watch.wait();
        line.trim().to_owned()
    };

    // An open directory, prepared before the agent starts: closed to 0700.
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("portscope");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let first = Agent::start_in_state("200ms", state);
    let dir = first.state_dir.path().join("portscope");
    assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    assert_eq!(
        follow(first.state_dir.path()),
        "portscope: following the running agent (the kernel reports changes; a full scan every 200ms)"
    );

    // A second agent pointed at the same directory leaves the socket to the first, also
    // when it stops.
    let runtime = first.state_dir.path().to_str().unwrap().to_owned();
    let second = Agent::start_with_env("300ms", &[("XDG_RUNTIME_DIR", &runtime)]);
    assert_eq!(
        follow(first.state_dir.path()),
        "portscope: following the running agent (the kernel reports changes; a full scan every 200ms)"
    );
    second.terminate();
    assert!(
        dir.join("agent.sock").exists(),
        "the second agent removed the first's socket"
    );
    assert_eq!(
        follow(first.state_dir.path()),
        "portscope: following the running agent (the kernel reports changes; a full scan every 200ms)"
    );
    drop(first);

    // A directory that belongs to another user: no socket (the agent serves on as usual).
    assert!(
        rustix::process::geteuid().is_root(),
        "this test gives a directory to another user, which needs root: run it as root (CI does)"
    );
    let state = tempfile::tempdir().unwrap();
    let theirs = state.path().join("portscope");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let agent = Agent::start_in_state("200ms", state);
    assert_eq!(agent.get("/api/v1/snapshot").status, 200);
    let socket = agent.state_dir.path().join("portscope/agent.sock");
    assert!(!socket.exists(), "a socket in another user's directory");
}
