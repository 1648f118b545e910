//! The developer's view (#12, part): a server started in a real git checkout (and in a linked
//! worktree of it) is its repository's, in `ls --json` and the agent's snapshot, and
//! `ls --by-project` groups its listener under it; `graph` draws who talks to whom from real
//! connections between two processes, as JSON, as Graphviz input Graphviz accepts, and over the
//! API.

use std::time::Duration;

use portscope_shared::{ProjectSource, Snapshot};

use crate::support::{Agent, Situation, git, git_checkout, run, run_cli, wait_for};

#[test]
fn a_server_in_a_checkout_belongs_to_its_repository() {
    let dir = tempfile::tempdir().unwrap();
    let repo = git_checkout(dir.path(), "my-app");
    std::fs::create_dir_all(repo.join("web")).unwrap();
    let worktree = dir.path().join("my-app-fix");
    git(
        &["worktree", "add", "-q", worktree.to_str().unwrap()],
        &repo,
    );
    let in_repo = Situation::start_in(&repo.join("web"), &["listen", "127.0.0.1"]);
    let in_worktree = Situation::start_in(&worktree, &["listen", "127.0.0.1"]);
    let outside = Situation::start_in(dir.path(), &["listen", "127.0.0.1"]);
    let at_root = Situation::start_in(std::path::Path::new("/"), &["listen", "127.0.0.1"]);

    let (code, out, err) = run_cli(&["ls", "--json", "--listening"]);
    assert_eq!(code, 0, "{err}");
    let snapshot: Snapshot = serde_json::from_str(&out).unwrap();
    let project = |pid: u32| {
        snapshot
            .processes
            .iter()
            .find(|p| p.pid == pid)
            .unwrap_or_else(|| panic!("pid {pid} in {out}"))
            .project
            .clone()
    };
    let p = project(in_repo.pid).expect("the checkout's project");
    assert_eq!(
        (p.name.as_str(), p.root.as_str(), p.source),
        ("my-app", repo.to_str().unwrap(), ProjectSource::Git)
    );
    let p = project(in_worktree.pid).expect("the worktree's project");
    assert_eq!(
        (p.name.as_str(), p.source),
        ("my-app@my-app-fix", ProjectSource::Worktree)
    );
    // A real directory outside any repository is no project, whatever its parent works on;
    // a directory that says nothing (`/`, a daemon's) takes its parent's, this test's, whose
    // checkout git names.
    assert_eq!(project(outside.pid), None, "a temp directory is no project");
    let top = crate::support::own_checkout();
    assert_eq!(
        project(at_root.pid).map(|p| p.root),
        (!top.is_empty()).then_some(top),
        "the parent's project"
    );
    // `who --json` names each owner's project as `ls --json` does.
    let (code, out, err) = run_cli(&["who", &in_repo.port.to_string(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let who: portscope_shared::WhoReport = serde_json::from_str(&out).unwrap();
    let owner = who
        .owners
        .iter()
        .find(|o| o.process.pid == in_repo.pid)
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        owner.process.project.as_ref().map(|p| p.name.as_str()),
        Some("my-app"),
        "{out}"
    );

    let (code, text, _) = run_cli(&["ls", "--by-project"]);
    assert_eq!(code, 0);
    let heading = format!("my-app  (git: {})", repo.display());
    let at = text
        .lines()
        .position(|l| l == heading)
        .unwrap_or_else(|| panic!("no {heading:?} in\n{text}"));
    let group: Vec<&str> = text
        .lines()
        .skip(at + 1)
        .take_while(|l| l.starts_with(['├', '└']))
        .collect();
    assert_eq!(group.len(), 1, "{text}");
    assert!(
        group[0].contains(&format!("127.0.0.1:{} ", in_repo.port))
            && group[0].contains(&format!("python3 (pid {})", in_repo.pid)),
        "{text}"
    );

    // The agent's snapshot says the same.
    let agent = Agent::start();
    let seen = wait_for(
        "the project in the snapshot",
        Duration::from_secs(10),
        || {
            let s: Snapshot = serde_json::from_str(&agent.get("/api/v1/snapshot").body).ok()?;
            s.processes
                .into_iter()
                .find(|p| p.pid == in_repo.pid)?
                .project
        },
    );
    assert_eq!(seen.name, "my-app");
}

#[test]
fn graph_draws_each_client_to_its_server_with_the_port_and_count() {
    let server = Situation::start(&["keep", "127.0.0.1"]);
    let client = Situation::start(&["dial", &server.port.to_string(), "3"]);
    let edge = |graph: &portscope_shared::Graph| {
        graph
            .edges
            .iter()
            .find(|e| e.from == format!("p{}", client.pid) && e.to == format!("p{}", server.pid))
            .map(|e| (e.port, e.count))
    };
    let graph = wait_for(
        "the three connections accepted",
        Duration::from_secs(10),
        || {
            let (code, out, _) = run_cli(&["graph", "--json"]);
            assert_eq!(code, 0);
            let graph: portscope_shared::Graph = serde_json::from_str(&out).unwrap();
            (edge(&graph) == Some((server.port, 3))).then_some(graph)
        },
    );
    let node = graph
        .nodes
        .iter()
        .find(|n| n.pid == Some(client.pid))
        .unwrap();
    assert_eq!(node.label, "python3");
    // No edge the other way: the server does not dial its clients.
    assert!(
        !graph
            .edges
            .iter()
            .any(|e| e.from == format!("p{}", server.pid) && e.to == format!("p{}", client.pid)),
        "{graph:#?}"
    );

    // Graphviz takes the DOT form.
    let (code, dot_text, _) = run_cli(&["graph", "--dot"]);
    assert_eq!(code, 0);
    assert!(
        dot_text.contains(&format!(
            "\"p{}\" -> \"p{}\" [label=\":{} ×3\"];",
            client.pid, server.pid, server.port
        )),
        "{dot_text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("map.dot");
    std::fs::write(&file, &dot_text).unwrap();
    let mut render = std::process::Command::new("dot");
    render.arg("-Tsvg").arg(&file);
    let (code, svg, err) = run(render);
    assert_eq!(
        code, 0,
        "dot rejected it: {err} (graphviz comes with `cargo xtask test`)"
    );
    assert!(svg.contains("<svg") && svg.contains("python3"), "{svg}");

    // The agent answers the same from its live state.
    let agent = Agent::start();
    wait_for("the edge over the API", Duration::from_secs(10), || {
        let graph: portscope_shared::Graph =
            serde_json::from_str(&agent.get("/api/v1/graph").body).ok()?;
        (edge(&graph) == Some((server.port, 3))).then_some(())
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn http_listeners_are_checked_while_a_dashboard_is_open() {
    let port = crate::support::free_port();
    let _server = crate::support::HttpServer::start(port);
    let plain = Situation::start(&["listen", "127.0.0.1"]);
    let probing = Agent::start();
    let quiet = Agent::start_with(&["--no-probe"]);
    let listener = |agent: &Agent, port: u16| {
        let s: Snapshot = serde_json::from_str(&agent.get("/api/v1/snapshot").body).ok()?;
        s.sockets
            .into_iter()
            .find(|s| s.local_port == port && s.is_listening())
    };
    wait_for("the server as HTTP", Duration::from_secs(10), || {
        listener(&probing, port).filter(|s| s.http)
    });
    // A round runs at once when a dashboard opens, the health loop looking every second: three
    // of its seconds without one, then still no check.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        listener(&probing, port).and_then(|s| s.health),
        None,
        "no dashboard, no check"
    );
    // A dashboard on each: the one that probes checks the server, not the plain listener.
    let _a = probing.connect().await;
    let _b = quiet.connect().await;
    let health = wait_for("a health check", Duration::from_secs(15), || {
        listener(&probing, port)?.health
    });
    assert!(health.up, "{health:?}");
    assert_eq!(health.status, Some(200));
    assert!(health.latency_ms < 1000, "{health:?}");
    assert_eq!(listener(&probing, plain.port).unwrap().health, None);
    assert_eq!(
        listener(&quiet, port).expect("the server").health,
        None,
        "--no-probe sends nothing"
    );
}

/// A FUSE file system whose `.git` lookups never answer (`support/hung_fs.py`), mounted for
/// one test; on drop its server is killed (which ends every request stuck on it) and the mount
/// removed.
struct HungMount {
    server: std::process::Child,
    dir: tempfile::TempDir,
}

impl HungMount {
    fn start() -> HungMount {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("mnt")).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/support/hung_fs.py");
        let mut server = std::process::Command::new("/usr/bin/python3")
            .arg(script)
            .arg(dir.path().join("mnt"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("/usr/bin/python3 runs the hung FUSE mount (apt-get install python3)");
        let out = std::io::BufReader::new(server.stdout.take().unwrap());
        let said = out.lines().next().and_then(Result::ok).unwrap_or_default();
        assert_eq!(
            said, "mounted",
            "the hung FUSE mount did not start: it needs /dev/fuse, root and Debian's \
             python3-fusepy (cargo xtask install-deps)"
        );
        HungMount { server, dir }
    }

    /// The directory on the mount a process can work in.
    fn work(&self) -> std::path::PathBuf {
        self.dir.path().join("mnt/work")
    }
}

impl Drop for HungMount {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path().join("mnt"))
            .status();
    }
}

/// The listening socket of `port` in the agent's snapshot, with its owner's project.
fn listener_and_project(
    agent: &Agent,
    port: u16,
) -> Option<(Snapshot, Option<portscope_shared::Project>)> {
    let s: Snapshot = serde_json::from_str(&agent.get("/api/v1/snapshot").body).ok()?;
    let socket = s
        .sockets
        .iter()
        .find(|s| s.local_port == port && s.is_listening())?;
    let pid = *socket.pids.first()?;
    let project = s.processes.iter().find(|p| p.pid == pid)?.project.clone();
    Some((s, project))
}

#[test]
fn a_working_directory_on_a_hung_mount_stalls_neither_the_live_view_nor_the_history() {
    // The agent before the mount: when the test fails, the mount is dropped (its server
    // killed, which frees whatever waits on it) before the agent is.
    let agent = Agent::start();
    let mount = HungMount::start();
    let stuck = Situation::start_in(&mount.work(), &["listen", "127.0.0.1"]);
    // Its listener shows, without a project; once the lookup is given up, a warning names the
    // mount.
    let mount_dir = mount.dir.path().join("mnt").display().to_string();
    let (snapshot, project) = wait_for(
        "the listener on the hung mount, and the warning",
        Duration::from_secs(15),
        || {
            let (s, project) = listener_and_project(&agent, stuck.port)?;
            s.warnings
                .iter()
                .any(|w| w.contains(&mount_dir) && w.contains("hung"))
                .then_some((s, project))
        },
    );
    assert_eq!(project, None, "{:?}", snapshot.warnings);
    // Later listeners still come, with their projects, while the lookup stays stuck.
    let dir = tempfile::tempdir().unwrap();
    let repo = git_checkout(dir.path(), "steady");
    let later = Situation::start_in(&repo, &["listen", "127.0.0.1"]);
    let t0 = std::time::Instant::now();
    let project = wait_for("the later listener", Duration::from_secs(10), || {
        listener_and_project(&agent, later.port)?.1
    });
    assert_eq!(project.name, "steady");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "the later listener took {:?}",
        t0.elapsed()
    );
    // The history records its opening.
    wait_for(
        "its opening in the history",
        Duration::from_secs(10),
        || {
            let body = agent
                .get(&format!("/api/v1/history?port={}", later.port))
                .body;
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            v["events"]
                .as_array()?
                .iter()
                .any(|e| e["kind"] == "opened" && e["pid"] == later.pid)
                .then_some(())
        },
    );
    // A one-off `ls` answers, and ends: its lookup helper stuck in the mount stays behind.
    let t0 = std::time::Instant::now();
    let (code, out, err) = run_cli(&["ls", "--json", "--listening"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "ls took {:?}",
        t0.elapsed()
    );
    let s: Snapshot = serde_json::from_str(&out).unwrap();
    let project_of = |pid| {
        s.processes
            .iter()
            .find(|p| p.pid == pid)
            .map(|p| p.project.clone())
    };
    assert_eq!(project_of(stuck.pid), Some(None), "{out}");
    assert_eq!(
        project_of(later.pid).flatten().map(|p| p.name).as_deref(),
        Some("steady")
    );
    // The agent stops on SIGTERM as always: nothing of it is held by the mount.
    let pid = agent.pid();
    let state = agent.terminate();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the agent is gone"
    );
    drop(state);
}

#[test]
fn a_repository_made_under_a_running_server_names_its_project() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let server = Situation::start_in(&plain, &["listen", "127.0.0.1"]);
    let agent = Agent::start();
    wait_for("the listener", Duration::from_secs(10), || {
        listener_and_project(&agent, server.port)
            .filter(|(_, project)| project.is_none())
            .map(drop)
    });
    git(&["init", "-q"], &plain);
    let project = wait_for("its new project", Duration::from_secs(20), || {
        listener_and_project(&agent, server.port)?.1
    });
    assert_eq!(
        (project.name.as_str(), project.source),
        ("plain", ProjectSource::Git)
    );
    std::fs::remove_dir_all(plain.join(".git")).unwrap();
    wait_for("no project again", Duration::from_secs(20), || {
        listener_and_project(&agent, server.port)
            .filter(|(_, project)| project.is_none())
            .map(drop)
    });
}
