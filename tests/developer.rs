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
