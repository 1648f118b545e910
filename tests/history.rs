//! The port history (#11, part): a real agent records listeners that a separate process opens
//! and closes into its SQLite file; `portscope history` reads it while the agent runs; an agent
//! killed with SIGKILL leaves a valid file, and at its next start it records what opened while
//! it was down as such; an unusable history is a warning while the live view goes on.

use std::path::Path;
use std::time::Duration;

use portscope_shared::{ConnectionHistory, Event, EventKind, Spans};

use crate::support::{Agent, Situation, run_cli, wait_for};

/// `history --json` on a file, with extra arguments.
#[track_caller]
fn history(file: &Path, args: &[&str]) -> Vec<Event> {
    let mut all = vec!["history", "--json", "--history", file.to_str().unwrap()];
    all.extend_from_slice(args);
    let (code, out, err) = run_cli(&all);
    assert!(code == 0 || code == 1, "history {args:?}: {code}\n{err}");
    #[derive(serde::Deserialize)]
    struct Events {
        events: Vec<Event>,
    }
    serde_json::from_str::<Events>(&out)
        .unwrap_or_else(|e| panic!("{e}: {out}"))
        .events
}

fn file_of(agent: &Agent) -> std::path::PathBuf {
    agent.state_dir.path().join("portscope/history.db")
}

#[test]
fn listeners_are_remembered_across_a_kill_9() {
    let agent = Agent::start_ticking("200ms");
    let file = file_of(&agent);
    let spawned = std::time::SystemTime::now();
    let first = Situation::start(&["listen", "127.0.0.1"]);
    let started = std::time::SystemTime::now();
    let port = first.port.to_string();
    let opened = wait_for(
        "the opening in the history",
        Duration::from_secs(15),
        || {
            std::fs::metadata(&file).ok()?;
            let events = history(&file, &[&port]);
            events.iter().find(|e| e.kind == EventKind::Opened).cloned()
        },
    );
    assert_eq!(opened.pid, Some(first.pid));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "command lines are the user's alone");
    assert_eq!(opened.process.as_deref(), Some("python3"));
    assert!(
        opened.cmdline.iter().any(|a| a.ends_with("situation.py")),
        "{opened:?}"
    );
    let first_pid = first.pid;
    // Times are kept to the millisecond but read to the second: hold it long enough for a
    // whole second to lie between its opening and its closing.
    std::thread::sleep(Duration::from_millis(2500));
    let stopping = std::time::SystemTime::now();
    drop(first);
    let stopped = std::time::SystemTime::now();
    wait_for(
        "the closing and the exit in the history",
        Duration::from_secs(15),
        || {
            history(&file, &[&port])
                .first()
                .filter(|e| e.kind == EventKind::Exited)
                .cloned()
        },
    );
    // Newest first: its process exited, the listener closed (with it), it opened.
    let events = history(&file, &[&port]);
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [EventKind::Exited, EventKind::Closed, EventKind::Opened],
        "{events:#?}"
    );
    let exited = &events[0];
    assert_eq!(exited.pid, Some(first_pid));
    // Polling, its exit is seen at the closing's tick; with kernel events the close is told as
    // it happens (while the process is still exiting) and the exit at the next look at owners
    // that closed their listeners (every 2 s).
    let at = |e: &portscope_shared::Event| humantime::parse_rfc3339(&e.time).unwrap();
    let after_close = at(exited)
        .duration_since(at(&events[1]))
        .expect("the exit is not seen before the close");
    // (Two looks, and room for a loaded CI machine.)
    assert!(
        after_close <= Duration::from_secs(6),
        "seen gone {after_close:?} after the closing"
    );
    assert!(exited.start_time.is_some(), "{exited:?}");
    assert_eq!(
        exited.start_time, opened.start_time,
        "the same process as the opening's"
    );
    // How long it ran, from the kernel's start time to the tick that saw it gone: at least
    // from its first line to its stop, at most from its spawn to the tick after it was gone.
    let start_ms = exited.start_ms.expect("the start time in ms");
    let ran = humantime::parse_rfc3339(&exited.time)
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH + Duration::from_millis(start_ms))
        .unwrap();
    let least = stopping.duration_since(started).unwrap();
    // (The tick that saw it gone may come a scan late on a busy machine.)
    let most = stopped.duration_since(spawned).unwrap() + Duration::from_millis(1000);
    assert!(
        ran >= least && ran <= most,
        "ran {ran:?}, between {least:?} and {most:?}"
    );
    // Who held it between the two: the first holder.
    let between = {
        let opened_at = humantime::parse_rfc3339(&events[2].time).unwrap();
        let closed_at = humantime::parse_rfc3339(&events[1].time).unwrap();
        let middle = opened_at + (closed_at.duration_since(opened_at).unwrap() / 2);
        humantime::format_rfc3339_seconds(middle).to_string()
    };
    let held = history(&file, &[&port, "--at", &between]);
    assert_eq!(
        held.iter().map(|e| e.pid).collect::<Vec<_>>(),
        [Some(first_pid)],
        "at {between}"
    );
    let (_, text, _) = run_cli(&["history", &port, "--history", file.to_str().unwrap()]);
    assert!(
        text.contains("closed") && text.contains(&format!("python3 (pid {first_pid})")),
        "{text}"
    );
    let told = format!(", ran {:.1} s", ran.as_secs_f64());
    assert!(
        text.contains("exited") && text.contains(&told),
        "the exit, with how long it ran ({told}): {text}"
    );

    // SIGKILL: the file stays valid, and what opened while the agent was down is recorded as
    // such at its next start.
    let held = Situation::start(&["listen", "127.0.0.1"]);
    let held_port = held.port.to_string();
    wait_for("the second opening", Duration::from_secs(15), || {
        history(&file, &[&held_port]).first().cloned()
    });
    let state_dir = agent.kill9();
    let conn = rusqlite::Connection::open(&file).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    let while_down = Situation::start(&["listen", "127.0.0.1"]);
    drop(held);
    let again = Agent::start_in_state("200ms", state_dir);
    let down_port = while_down.port.to_string();
    let seen = wait_for(
        "what opened while the agent was down",
        Duration::from_secs(15),
        || history(&file, &[&down_port]).first().cloned(),
    );
    assert_eq!(seen.kind, EventKind::Opened);
    assert_eq!(seen.pid, Some(while_down.pid));
    assert!(
        seen.since.is_some(),
        "between the last look and the restart: {seen:?}"
    );
    let gone = wait_for(
        "what closed while the agent was down, and its owner's exit",
        Duration::from_secs(15),
        || {
            let events = history(&file, &[&held_port]);
            (events.len() >= 3).then_some(events)
        },
    );
    let kinds: Vec<EventKind> = gone.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds[..2],
        [EventKind::Exited, EventKind::Closed],
        "{gone:#?}"
    );
    assert!(
        gone[..2].iter().all(|e| e.since.is_some()),
        "both between the last look and the restart: {gone:#?}"
    );
    drop(again);
}

/// Retention forgets closed listeners older than the keep, never one still open: a daemon up
/// longer than the keep is answered by `history --at` from its first second on, after a restart
/// (which prunes) as before it.
#[test]
fn an_open_listener_outlives_the_keep_and_a_closed_one_does_not() {
    let keep = ["--history-keep", "3s"];
    // Open before the agent ever looked: "open before" its first look, not "opened" then.
    let daemon = Situation::start(&["listen", "127.0.0.1"]);
    let agent = Agent::start_in_state_with(&keep, tempfile::tempdir().unwrap());
    let file = file_of(&agent);
    let short = Situation::start(&["listen", "127.0.0.1"]);
    let (port, short_port) = (daemon.port.to_string(), short.port.to_string());
    let opened = wait_for(
        "both openings in the history",
        Duration::from_secs(15),
        || {
            std::fs::metadata(&file).ok()?;
            history(&file, &[&short_port]).first()?;
            history(&file, &[&port]).first().cloned()
        },
    );
    assert_eq!(opened.kind, EventKind::Opened);
    assert!(
        opened.since.is_some() && opened.start_time.is_some(),
        "it opened after its owner started, before the agent looked: {opened:?}"
    );
    let (_, text, _) = run_cli(&["history", &port, "--history", file.to_str().unwrap()]);
    assert!(text.contains(" open before "), "{text}");
    drop(short);
    wait_for("the short one's closing", Duration::from_secs(15), || {
        history(&file, &[&short_port])
            .iter()
            .any(|e| e.kind == EventKind::Closed)
            .then_some(())
    });
    // The daemon's first seconds (times are read to the second: 1.5 s after the second of its
    // opening is after its opening), asked for once everything is older than the keep and the
    // agent has started again (it prunes when it starts).
    let first_second =
        humantime::parse_rfc3339(&opened.time).unwrap() + Duration::from_millis(1500);
    let first_second = humantime::format_rfc3339_millis(first_second).to_string();
    std::thread::sleep(Duration::from_secs(4));
    let state_dir = agent.terminate();
    let again = Agent::start_in_state_with(&keep, state_dir);
    wait_for(
        "the closed listener to be pruned",
        Duration::from_secs(15),
        || history(&file, &[&short_port]).is_empty().then_some(()),
    );
    // Nothing to show is said, with the file read.
    let (code, text, _) = run_cli(&["history", &short_port, "--history", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(
        text.trim(),
        format!("No events for port {short_port} in {}.", file.display())
    );
    let held = history(&file, &[&port, "--at", &first_second]);
    assert_eq!(
        held.iter().map(|e| e.pid).collect::<Vec<_>>(),
        [Some(daemon.pid)],
        "who held :{port} at {first_second}, in its first seconds"
    );
    let events = history(&file, &[&port]);
    assert_eq!(
        events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [EventKind::Opened],
        "its opening is kept whole: {events:#?}"
    );
    drop(again);
}

#[test]
fn a_listener_closed_by_a_process_that_runs_on_is_no_exit_until_it_exits() {
    let agent = Agent::start_ticking("200ms");
    let file = file_of(&agent);
    let server = Situation::start(&["close-after", "127.0.0.1", "2"]);
    let port = server.port.to_string();
    let closed = wait_for(
        "the closing in the history",
        Duration::from_secs(15),
        || {
            history(&file, &[&port])
                .into_iter()
                .find(|e| e.kind == EventKind::Closed)
        },
    );
    assert_eq!(closed.pid, Some(server.pid));
    // Later ticks are written (a marker listener's opening is in the file): still no exit, as
    // it runs.
    let marker = Situation::start(&["listen", "127.0.0.1"]);
    let marker_port = marker.port.to_string();
    wait_for(
        "a later tick in the history",
        Duration::from_secs(15),
        || history(&file, &[&marker_port]).first().cloned(),
    );
    let kinds: Vec<EventKind> = history(&file, &[&port]).iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::Closed, EventKind::Opened]);
    let why = agent
        .get(&format!("/api/v1/why?target=127.0.0.1:{port}"))
        .body;
    assert!(
        why.contains(&format!(
            "; pid {} still runs, without the port",
            server.pid
        )),
        "{why}"
    );
    // When it exits later (a graceful shutdown: listener first, then the process), that exit
    // is the listener's story too.
    let pid = server.pid;
    drop(server);
    // (Asked after every 2 s; 30 s leaves room for a machine under heavy load.)
    let exited = wait_for(
        "the later exit in the history",
        Duration::from_secs(30),
        || {
            history(&file, &[&port])
                .into_iter()
                .find(|e| e.kind == EventKind::Exited)
        },
    );
    assert_eq!(exited.pid, Some(pid));
    assert!(
        exited.time >= closed.time,
        "after its closing: {exited:?} {closed:?}"
    );
    let why = agent
        .get(&format!("/api/v1/why?target=127.0.0.1:{port}"))
        .body;
    assert!(why.contains("; it has exited"), "{why}");
    drop(agent);
}

/// `--history PATH` is checked before anything is written: a link (dangling or not) or a file
/// that is not SQLite is refused with the reason (exit 2), a file others can read is made
/// private, and a second agent on the same file is refused, naming the first one's pid.
#[test]
fn a_history_path_is_checked_and_one_agent_writes_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let serve = |path: &Path| {
        crate::support::run_cli(&["serve", "--port", "0", "--history", path.to_str().unwrap()])
    };
    let dangling = dir.path().join("dangling.db");
    std::os::unix::fs::symlink(dir.path().join("nowhere.db"), &dangling).unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "not a database").unwrap();
    // Another user's (the tests run as root, which may give a file away).
    let theirs = dir.path().join("theirs.db");
    std::fs::write(&theirs, "").unwrap();
    std::os::unix::fs::chown(&theirs, Some(4242), Some(4242))
        .expect("giving a file to uid 4242 needs root: run the tests as root, as .ci/run does");
    for (path, says) in [
        (&dangling, "is a symbolic link"),
        (&notes, "is not a portscope history (not an SQLite file)"),
        (&theirs, "belongs to another user"),
    ] {
        let (code, _, err) = serve(path);
        assert_eq!(code, 2, "{path:?}: {err}");
        assert!(err.contains(says), "{path:?}: {err}");
        assert!(!err.contains("directory"), "it names the file: {err}");
    }
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "not a database");
    assert!(
        !dir.path().join("nowhere.db").exists(),
        "nothing made through the link"
    );

    let file = dir.path().join("history.db");
    std::fs::write(&file, "").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let first = Agent::start_with(&["--history", file.to_str().unwrap()]);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "made private: it holds command lines");
    let (code, _, err) = serve(&file);
    assert_eq!(code, 1, "{err}");
    let first_pid = first.pid();
    assert!(
        err.contains(&format!(
            "another portscope (pid {first_pid}) writes the history file"
        )),
        "{err}"
    );
    // `history` without --history reads the running agent's file, not the default one; with
    // another file, it says which one the agent writes.
    let history_as_user = |args: &[&str]| {
        let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_portscope"));
        cli.arg("history")
            .args(args)
            .env("XDG_STATE_HOME", first.state_dir.path());
        crate::support::run(cli)
    };
    let held = Situation::start(&["listen", "127.0.0.1"]);
    let held_port = held.port.to_string();
    let text = wait_for(
        "the running agent's file read without --history",
        Duration::from_secs(15),
        || {
            let (code, text, _) = history_as_user(&[&held_port]);
            (code == 0).then_some(text)
        },
    );
    assert!(text.contains(&format!("pid {}", held.pid)), "{text}");
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other).unwrap();
    let (code, text, _) = history_as_user(&[&held_port, "--history", other.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(
            "The running agent (pid {first_pid}) writes {}.",
            file.display()
        )),
        "{text}"
    );
    drop(first);
    // Once the first is gone, the file is free again.
    let again = Agent::start_with(&["--history", file.to_str().unwrap()]);
    drop(again);
}

#[test]
fn an_unusable_history_is_a_warning_and_the_live_view_goes_on() {
    // A history path whose directory is a file: it cannot be made.
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let file = blocker.join("history.db");
    let agent = Agent::start_with(&["--history", file.to_str().unwrap()]);
    let warned = wait_for("the history warning", Duration::from_secs(15), || {
        let res = agent.get("/api/v1/snapshot");
        let snapshot: portscope_shared::Snapshot = serde_json::from_str(&res.body).ok()?;
        let holder = Situation::start(&["listen", "127.0.0.1"]);
        drop(holder);
        snapshot
            .warnings
            .into_iter()
            .find(|w| w.contains("port history is off"))
            .map(|w| (w, snapshot.sockets.len()))
    });
    assert!(warned.0.contains("not-a-dir"), "{}", warned.0);
    assert!(warned.1 > 0, "the live view goes on");
}

/// A tmpfs of its own, unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    #[track_caller]
    fn mount(at: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir(at).unwrap();
        let (code, _, err) = crate::support::run({
            let mut mount = std::process::Command::new("mount");
            mount.args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ]);
            mount.arg(at);
            mount
        });
        assert_eq!(
            code, 0,
            "mounting a tmpfs needs root (the tests run as root): {err}"
        );
        SmallDisk(at.to_owned())
    }

    /// Fills what is left with a file; returns it.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.0.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 16 << 10];
        while f.write_all(&chunk).is_ok() {}
        // What a partial chunk left.
        while f.write_all(&[0]).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_is_a_warning_and_a_counted_error_and_the_live_view_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("small"), "2m");
    let file = disk.0.join("history.db");
    let agent = Agent::start_with(&["--history", file.to_str().unwrap()]);
    let first = Situation::start(&["listen", "127.0.0.1"]);
    let port = first.port.to_string();
    wait_for(
        "the opening in the history",
        Duration::from_secs(15),
        || {
            std::fs::metadata(&file).ok()?;
            history(&file, &[&port]).first().cloned()
        },
    );
    let filler = disk.fill();
    // 400 listeners (unconnected UDP sockets) at once: more than the WAL's room.
    let many = Situation::start(&["many", "400"]);
    // The live view goes on: the new sockets are shown beside the warning. (On a busy machine
    // other listeners' changes fill the disk first, so the warning can come before them.)
    let warned = wait_for(
        "the warning, with the new sockets shown",
        Duration::from_secs(30),
        || {
            let snapshot: portscope_shared::Snapshot =
                serde_json::from_str(&agent.get("/api/v1/snapshot").body).ok()?;
            let warning = snapshot
                .warnings
                .into_iter()
                .find(|w| w.contains("port history is not being written"))?;
            let seen = snapshot.sockets.iter().any(|s| s.local_port == many.port);
            seen.then_some(warning)
        },
    );
    assert!(warned.contains("full"), "says why: {warned}");
    let errors = agent
        .get("/metrics")
        .body
        .lines()
        .find_map(|l| l.strip_prefix("portscope_history_write_errors_total "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(errors.is_some_and(|n| n >= 1), "counted: {errors:?}");
    // Room again: the history is written again, and the warning goes.
    std::fs::remove_file(filler).unwrap();
    drop(many);
    wait_for("the warning to go", Duration::from_secs(30), || {
        let snapshot: portscope_shared::Snapshot =
            serde_json::from_str(&agent.get("/api/v1/snapshot").body).ok()?;
        (!snapshot.warnings.iter().any(|w| w.contains("port history"))).then_some(())
    });
    drop(first);
    wait_for(
        "the closing in the history",
        Duration::from_secs(15),
        || {
            history(&file, &[&port])
                .into_iter()
                .find(|e| e.kind == EventKind::Closed)
        },
    );
    let conn = rusqlite::Connection::open(&file).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    drop(agent);
}

/// `GET /api/v1/history` answers what `history --json` prints, behind the token.
#[test]
fn the_api_answers_the_history() {
    let agent = Agent::start_ticking("200ms");
    let s = Situation::start(&["listen", "127.0.0.1"]);
    let path = format!("/api/v1/history?port={}", s.port);
    let events = wait_for("the opening over the API", Duration::from_secs(15), || {
        let res = agent.get(&path);
        if res.status != 200 {
            return None;
        }
        let body: serde_json::Value = serde_json::from_str(&res.body).ok()?;
        let events: Vec<Event> = serde_json::from_value(body["events"].clone()).ok()?;
        (!events.is_empty()).then_some(events)
    });
    assert_eq!(events[0].kind, EventKind::Opened);
    assert_eq!(events[0].pid, Some(s.pid));
    // Where its owner runs: the situation's working directory is this test's.
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(events[0].cwd.as_deref(), cwd.to_str());
    // And what tells it apart from a later process with its pid: its executable and start time,
    // as the kernel has them.
    let exe = std::fs::read_link(format!("/proc/{}/exe", s.pid)).unwrap();
    assert_eq!(events[0].exe.as_deref(), exe.to_str());
    // `ps` says how long ago it started (seconds): its start time within a second or two.
    let out = std::process::Command::new("ps")
        .args(["-o", "etimes=", "-p", &s.pid.to_string()])
        .output()
        .unwrap();
    let elapsed: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let started = events[0].start_time.expect("a start time");
    assert!(
        started.abs_diff(now - elapsed) <= 2,
        "start time {started}, ps says {}",
        now - elapsed
    );
    // A second from now (moments are read to the second; the opening has milliseconds).
    let now =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(1))
            .to_string();
    let at = agent.get(&format!("{path}&at={now}"));
    assert!(
        at.body.contains(&format!("\"pid\":{}", s.pid)),
        "{}",
        at.body
    );
    let bad = agent.get(&format!("{path}&since=yesterday-ish"));
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("?since="), "{}", bad.body);
    let no_port = agent.get(&format!("/api/v1/history?at={now}"));
    assert_eq!(no_port.status, 400, "{}", no_port.body);
    // The token guards it like every /api route.
    let res = crate::support::http(agent.port, "GET", &path, &[("Host", &agent.host())]);
    assert_eq!(res.status, 401);
    // Once it has closed, `why` says what used to be there.
    let pid = s.pid;
    drop(s);
    wait_for("the closing over the API", Duration::from_secs(15), || {
        let body = agent.get(&path).body;
        body.contains("\"closed\"").then_some(())
    });
    let port = path.rsplit('=').next().unwrap().to_owned();
    let why = agent.get(&format!("/api/v1/why?target=127.0.0.1:{port}"));
    let said =
        format!("the history says port {port} was held by python3 (pid {pid}) on 127.0.0.1 until");
    assert!(why.body.contains(&said), "{}", why.body);
    // `bind` says it too, and that the process has exited (the situation was stopped).
    let bind = agent.get(&format!("/api/v1/bind?port={port}"));
    let d: portscope_shared::Diagnosis = serde_json::from_str(&bind.body).unwrap();
    let history = d
        .checks
        .iter()
        .find(|c| c.id == "history")
        .unwrap_or_else(|| panic!("{}", bind.body));
    assert!(history.title.starts_with(&said), "{}", history.title);
    assert!(history.title.contains("s ago ("), "{}", history.title);
    assert!(
        history.title.contains("; it has exited"),
        "{}",
        history.title
    );
    let off = Agent::start_with(&["--no-history"]);
    assert_eq!(off.get("/api/v1/history").status, 404);
}

/// The timeline's and the chart's routes: a listener's life as a span (its owner, its start,
/// its end once it closed), and its connections per minute counted from real connections.
#[test]
fn spans_and_connection_counts_are_answered_for_the_timeline() {
    let agent = Agent::start_ticking("200ms");
    let s = Situation::start(&["keep", "127.0.0.1"]);
    let port = s.port;
    // Three connections from this process, which the listener accepts and keeps open.
    let clients: Vec<std::net::TcpStream> = (0..3)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let counted = wait_for("three connections counted", Duration::from_secs(15), || {
        let res = agent.get(&format!("/api/v1/history/connections?port={port}"));
        let body: ConnectionHistory = serde_json::from_str(&res.body).ok()?;
        assert_eq!(body.port, port);
        let accepted: u32 = body.minutes.iter().map(|m| m.accepted).sum();
        let open = body.minutes.iter().map(|m| m.open).max()?;
        (accepted >= 3 && open >= 3).then_some(body)
    });
    assert!(
        counted.minutes.iter().all(|m| m.peers == 1),
        "one peer address, 127.0.0.1: {counted:?}"
    );
    let pid = s.pid;
    drop(s);
    let span = wait_for(
        "the closed listener's span",
        Duration::from_secs(15),
        || {
            let res = agent.get(&format!("/api/v1/history/spans?since=10m&port={port}"));
            assert_eq!(res.status, 200, "{}", res.body);
            let spans: Spans = serde_json::from_str(&res.body).unwrap();
            spans.spans.into_iter().find(|s| s.end.is_some())
        },
    );
    assert_eq!(span.pid, Some(pid));
    assert_eq!(span.process.as_deref(), Some("python3"));
    assert!(span.start <= span.end.clone().unwrap(), "{span:?}");
    let all = agent.get("/api/v1/history/spans");
    let all: Spans = serde_json::from_str(&all.body).unwrap();
    assert!(
        all.spans
            .iter()
            .any(|s| s.local_port == port && s.pid == Some(pid)),
        "the default window (the last hour) holds it"
    );

    // Bad input is a 400 that says what was wrong; no history is a 404.
    for (path, says) in [
        ("/api/v1/history/connections", "?port="),
        ("/api/v1/history/spans?since=soon", "?since="),
        ("/api/v1/history/spans?since=1m&until=2h", "?until="),
        ("/api/v1/history/spans?limit=many", "?limit="),
    ] {
        let res = agent.get(path);
        assert_eq!(res.status, 400, "{path}: {}", res.body);
        assert!(res.body.contains(says), "{path}: {}", res.body);
    }
    let off = Agent::start_with(&["--no-history"]);
    assert_eq!(off.get("/api/v1/history/spans").status, 404);
    assert_eq!(off.get("/api/v1/history/connections?port=80").status, 404);
    drop(clients);
}
