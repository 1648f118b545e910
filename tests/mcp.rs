//! `portscope mcp` driven by a real MCP client — the Python MCP SDK (`support/mcp_client.py`,
//! installed into target/python-mcp by `cargo xtask test`) — over stdio: initialize, list the
//! tools, call each against real listeners, bad calls, `kill` only with `--allow-kill`, and the
//! answers read from a running agent when one runs. The SDK checks each structured answer
//! against its tool's output schema.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Agent, Situation, free_port, run, wait_for};

/// Where `cargo xtask test` installs the Python MCP SDK.
fn sdk() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/python-mcp"));
    assert!(
        dir.join("mcp").is_dir(),
        "the Python MCP SDK is missing from {}: `cargo xtask test` installs it (or run `python3 -m pip install --target {} mcp`)",
        dir.display(),
        dir.display()
    );
    dir
}

/// What one session said.
struct Transcript {
    tools: Vec<Value>,
    calls: Vec<Value>,
    raw: Value,
}

impl Transcript {
    fn tool_names(&self) -> Vec<&str> {
        self.tools
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect()
    }

    /// The `i`th call's answer, which must be a structured, schema-valid success.
    #[track_caller]
    fn ok(&self, i: usize) -> &Value {
        let call = &self.calls[i];
        assert_eq!(call["is_error"], json!(false), "call {i}: {call:#}");
        assert!(call.get("client_error").is_none(), "call {i}: {call:#}");
        &call["structured"]
    }

    /// The `i`th call's tool error text.
    #[track_caller]
    fn tool_error(&self, i: usize) -> &str {
        let call = &self.calls[i];
        assert_eq!(call["is_error"], json!(true), "call {i}: {call:#}");
        call["text"].as_str().unwrap()
    }
}

/// Runs one MCP session: `portscope mcp ARGS` with `env`, making `calls` in order.
#[track_caller]
fn session(args: &[&str], env: &[(&str, &std::path::Path)], calls: Value) -> Transcript {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/support/mcp_client.py"
    );
    let dir = tempfile::tempdir().unwrap();
    let calls_file = dir.path().join("calls.json");
    std::fs::write(&calls_file, calls.to_string()).unwrap();
    let mut command = Command::new("python3");
    command
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_portscope"))
        .arg("mcp")
        .args(args)
        .env("PYTHONPATH", sdk())
        .envs(env.iter().map(|(k, v)| (k, v.as_os_str())))
        .stdin(std::fs::File::open(&calls_file).unwrap());
    let (code, out, err) = run_with_stdin(command);
    assert_eq!(code, 0, "the MCP client failed: {out}{err}");
    let raw: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    Transcript {
        tools: raw["tools"].as_array().unwrap().clone(),
        calls: raw["calls"].as_array().unwrap().clone(),
        raw,
    }
}

/// Runs `command` with the stdin it was given (the calls file; [`run`] gives none), for two
/// minutes at most.
fn run_with_stdin(mut command: Command) -> (i32, String, String) {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run python3 (install it: apt-get install python3)");
    let output = wait_output(child, Duration::from_secs(120));
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The child's output, killing it (and failing) after `limit`.
fn wait_output(child: std::process::Child, limit: Duration) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("the MCP session did not end within {limit:?}");
        }
    }
}

/// Every tool an assistant is offered, each answering about real listeners with the CLI's
/// JSON and a schema the SDK checks; bad arguments are tool errors that say what was expected,
/// and the server goes on answering after them. No agent runs: each answer is a scan's.
#[test]
fn mcp_answers_every_tool_about_real_listeners() {
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("XDG_RUNTIME_DIR", home.path()),
        ("XDG_STATE_HOME", home.path()),
    ];
    let server = Situation::start(&["keep", "127.0.0.1"]);
    let port = server.port;
    // A connection of this test's own process to it: an edge of the graph.
    let _client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let closed = free_port();
    let t = session(
        &[],
        &env,
        json!([
            {"tool": "ls", "args": {"port": port, "listening": true}},
            {"tool": "ls", "args": {"listening": true, "limit": 1}},
            {"tool": "who", "args": {"port": port}},
            {"tool": "why", "args": {"target": format!("127.0.0.1:{port}")}},
            {"tool": "why", "args": {"target": format!("127.0.0.1:{closed}")}},
            {"tool": "bind", "args": {"port": port}},
            {"tool": "free", "args": {"count": 3, "consecutive": true}},
            {"tool": "wait", "args": {"ports": [port]}},
            {"tool": "wait", "args": {"ports": [closed], "timeout_secs": 1}},
            {"tool": "history", "args": {}},
            {"tool": "graph", "args": {}},
            // Bad calls (11-16).
            {"tool": "who", "args": {"port": 70000}},
            {"tool": "why", "args": {}},
            {"tool": "ls", "args": {"limit": 5000}},
            {"tool": "why", "args": {"target": "http://"}},
            {"tool": "nope", "args": {}},
            {"tool": "kill", "args": {"pid": server.pid, "start_time": 1}},
            {"tool": "ls", "args": {"state": "listen"}},
            // Still answering.
            {"tool": "who", "args": {"port": port}},
        ]),
    );
    assert_eq!(t.raw["server"], "portscope");
    assert_eq!(
        t.tool_names(),
        [
            "ls", "who", "why", "bind", "free", "wait", "history", "graph"
        ],
        "kill is offered only with --allow-kill"
    );
    for tool in &t.tools {
        assert!(tool["output_schema"].is_object(), "{tool:#}");
        assert_eq!(tool["read_only"], json!(true), "{tool:#}");
        assert!(
            tool["description"].as_str().unwrap().len() > 80,
            "says what it answers: {tool:#}"
        );
    }
    for (i, call) in t.calls.iter().enumerate().take(11) {
        let source = &call["meta"]["portscope/source"];
        assert!(
            ["scan", "connects", "history"].contains(&source.as_str().unwrap_or("none"))
                || call["is_error"] == json!(true),
            "call {i} says where it read: {call:#}"
        );
    }
    assert_eq!(t.calls[0]["meta"]["portscope/source"], "scan");

    // ls: the listener and its process, filtered and paged.
    let ls = t.ok(0);
    let socket = &ls["sockets"][0];
    assert_eq!(socket["local_port"], json!(port), "{ls:#}");
    assert_eq!(socket["state"], "LISTEN");
    assert_eq!(socket["pids"], json!([server.pid]));
    assert_eq!(ls["processes"][0]["pid"], json!(server.pid));
    let page = t.ok(1);
    assert_eq!(page["sockets"].as_array().unwrap().len(), 1, "{page:#}");
    let total = page["total"].as_u64().unwrap();
    assert!(total >= 1);
    if total > 1 {
        assert_eq!(page["next_offset"], json!(1), "{page:#}");
    }

    // who: the owner with its command line.
    let who = t.ok(2);
    assert_eq!(
        who["owners"][0]["process"]["pid"],
        json!(server.pid),
        "{who:#}"
    );
    assert!(
        who["owners"][0]["process"]["cmdline"]
            .to_string()
            .contains("situation.py")
    );

    // why: connects to the listener; nothing listens on the closed port.
    let open = t.ok(3);
    assert_eq!(open["verdict"], "ok", "{open:#}");
    let refused = t.ok(4);
    assert_eq!(refused["verdict"], "problem", "{refused:#}");
    assert!(
        refused["summary"]
            .as_str()
            .unwrap()
            .contains("nothing listens"),
        "{refused:#}"
    );

    // bind: the port is held, by the listener's process.
    let bind = t.ok(5);
    assert_eq!(bind["verdict"], "problem", "{bind:#}");
    assert!(
        bind.to_string().contains(&server.pid.to_string()),
        "{bind:#}"
    );

    // free: three consecutive ports.
    let free: Vec<u64> = t.ok(6)["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert_eq!(free.len(), 3, "{free:?}");
    assert!(free.windows(2).all(|w| w[1] == w[0] + 1), "{free:?}");

    // wait: ready at once; the closed port explained.
    let ready = t.ok(7);
    assert_eq!(ready["ready"], json!(true), "{ready:#}");
    assert_eq!(ready["ports"][0]["address"], format!("127.0.0.1:{port}"));
    let late = t.ok(8);
    assert_eq!(late["ready"], json!(false), "{late:#}");
    assert!(
        late["ports"][0]["summary"]
            .as_str()
            .unwrap()
            .contains("nothing listens"),
        "{late:#}"
    );

    // history: none kept in this home, said so.
    assert!(
        t.tool_error(9).contains("no history at"),
        "{}",
        t.tool_error(9)
    );

    // graph: this test's connection to the listener.
    let graph = t.ok(10);
    let server_node = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["pid"] == json!(server.pid))
        .unwrap_or_else(|| panic!("{graph:#}"));
    assert!(
        graph["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["to"] == server_node["id"] && e["port"] == json!(port)),
        "{graph:#}"
    );

    // Bad input: what was expected, as tool errors.
    assert!(t.tool_error(11).contains("from 1 to 65535, not 70000"));
    assert!(t.tool_error(12).contains("missing field `target`"));
    assert!(t.tool_error(13).contains("between 1 and 1000, not 5000"));
    assert!(
        t.tool_error(14).contains("http://"),
        "a target that does not parse: {}",
        t.tool_error(14)
    );
    for (i, says) in [(15, "there is no tool `nope`"), (16, "--allow-kill")] {
        let error = t.calls[i]["protocol_error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "call {i}: {:#}", t.calls[i]);
    }
    assert!(
        t.tool_error(17).contains("one of LISTEN, ESTABLISHED"),
        "{}",
        t.tool_error(17)
    );
    assert_eq!(t.ok(18)["owners"][0]["process"]["pid"], json!(server.pid));
}

/// `kill` exists only with `--allow-kill`, and then by the dashboard's rules: the start time
/// `who` answered is required (another one stops nothing), the program's own signal is sent,
/// and a root server (as these tests run) stops only the invoking user's processes (SUDO_UID),
/// never root's daemons.
#[test]
fn mcp_kill_only_when_allowed_and_only_the_process_who_named() {
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("XDG_RUNTIME_DIR", home.path()),
        ("XDG_STATE_HOME", home.path()),
        ("SUDO_UID", std::path::Path::new("4242")),
    ];
    let mut mine = crate::doctor::listener_of(4242);
    let rootd = Situation::start(&["listen", "127.0.0.1"]);
    let started = |t: &Transcript, i: usize| {
        t.ok(i)["owners"][0]["process"]["start_time"]
            .as_u64()
            .expect("who gives the start time")
    };
    let (start_time, root_start) = {
        let t = session(
            &[],
            &env,
            json!([
                {"tool": "who", "args": {"port": mine.port}},
                {"tool": "who", "args": {"port": rootd.port}},
            ]),
        );
        (started(&t, 0), started(&t, 1))
    };
    let t = session(
        &["--allow-kill"],
        &env,
        json!([
            {"tool": "kill", "args": {"pid": mine.pid, "start_time": start_time + 1}},
            {"tool": "kill", "args": {"pid": mine.pid, "start_time": start_time, "signal": "KILL"}},
            {"tool": "kill", "args": {"pid": 1, "start_time": 0}},
            {"tool": "kill", "args": {"pid": rootd.pid, "start_time": root_start}},
            {"tool": "kill", "args": {"pid": mine.pid, "start_time": start_time}},
        ]),
    );
    let kill = t
        .tools
        .iter()
        .find(|tool| tool["name"] == "kill")
        .expect("kill is offered with --allow-kill");
    assert_eq!(kill["destructive"], json!(true), "{kill:#}");
    assert!(
        kill["input_schema"]["required"]
            .as_array()
            .unwrap()
            .contains(&json!("start_time"))
    );
    let changed = t.tool_error(0);
    assert!(
        changed.contains("restarted") || changed.contains("no longer"),
        "another start time stops nothing: {changed}"
    );
    assert!(
        t.tool_error(1).contains("unknown field `signal`"),
        "an assistant names no signal: {}",
        t.tool_error(1)
    );
    assert!(
        t.tool_error(2).contains("pid 1 "),
        "pid 1 is never stopped: {}",
        t.tool_error(2)
    );
    assert!(
        t.tool_error(3).contains("system account"),
        "root's daemon: {}",
        t.tool_error(3)
    );
    let stopped = t.ok(4);
    assert_eq!(stopped["pid"], json!(mine.pid), "{stopped:#}");
    assert_eq!(stopped["signal"], "TERM");
    assert_eq!(stopped["outcome"], "exited", "{stopped:#}");
    assert!(mine.wait_exit(Duration::from_secs(10)).is_some());
    assert!(
        std::path::Path::new(&format!("/proc/{}", rootd.pid)).exists(),
        "root's process still runs"
    );
}

/// With an agent running, the answers come from its live model and its history, and say so.
#[test]
fn mcp_answers_from_the_running_agent() {
    let agent = Agent::start_ticking("200ms");
    let home = agent.state_dir.path();
    let env = [("XDG_RUNTIME_DIR", home), ("XDG_STATE_HOME", home)];
    let server = Situation::start(&["listen", "127.0.0.1"]);
    let port = server.port;
    // The agent has recorded the listener's opening.
    wait_for(
        "the opening in the history",
        Duration::from_secs(15),
        || {
            let mut cli = Command::new(env!("CARGO_BIN_EXE_portscope"));
            cli.args(["history", &port.to_string(), "--json"])
                .env("XDG_RUNTIME_DIR", home)
                .env("XDG_STATE_HOME", home);
            let (code, out, _) = run(cli);
            (code == 0).then_some(out)
        },
    );
    let t = session(
        &[],
        &env,
        json!([
            {"tool": "who", "args": {"port": port}},
            {"tool": "history", "args": {"port": port}},
            {"tool": "ls", "args": {"port": port}},
        ]),
    );
    assert_eq!(
        t.calls[0]["meta"]["portscope/source"], "agent",
        "{:#}",
        t.calls[0]
    );
    assert_eq!(t.ok(0)["owners"][0]["process"]["pid"], json!(server.pid));
    let history = t.ok(1);
    assert_eq!(t.calls[1]["meta"]["portscope/source"], "history");
    assert!(
        t.calls[1]["meta"]["portscope/history_file"]
            .as_str()
            .unwrap()
            .starts_with(home.to_str().unwrap()),
        "{:#}",
        t.calls[1]
    );
    let opened = &history["events"][0];
    assert_eq!(opened["kind"], "opened", "{history:#}");
    assert_eq!(opened["pid"], json!(server.pid));
    assert_eq!(t.calls[2]["meta"]["portscope/source"], "agent");
    assert_eq!(t.ok(2)["sockets"][0]["pids"], json!([server.pid]));
}

/// An agent that polls less often than the doctor's 2 s is not answered from: its model may
/// be that old. The answer is a scan's, and says so. (One fed by the kernel is current whatever
/// its reconciling period: `mcp_answers_from_a_kernel_fed_agent`.)
#[test]
fn mcp_scans_when_the_running_agent_rescans_too_seldom() {
    let agent = Agent::start_exactly(&["--interval", "5s", "--no-kernel-events"]);
    let home = agent.state_dir.path();
    let env = [("XDG_RUNTIME_DIR", home), ("XDG_STATE_HOME", home)];
    let server = Situation::start(&["listen", "127.0.0.1"]);
    let t = session(
        &[],
        &env,
        json!([{"tool": "who", "args": {"port": server.port}}]),
    );
    assert_eq!(
        t.calls[0]["meta"]["portscope/source"], "scan",
        "{:#}",
        t.calls[0]
    );
    assert_eq!(t.ok(0)["owners"][0]["process"]["pid"], json!(server.pid));
}

/// An agent fed by the kernel is current whatever its full-scan period (30 s here): answered
/// from, and a listener opened a moment before the call is in the answer.
#[test]
fn mcp_answers_from_a_kernel_fed_agent() {
    let agent = Agent::start_exactly(&["--interval", "5s", "--reconcile", "30s"]);
    let home = agent.state_dir.path();
    let env = [("XDG_RUNTIME_DIR", home), ("XDG_STATE_HOME", home)];
    std::thread::sleep(std::time::Duration::from_secs(1));
    let server = Situation::start(&["listen", "127.0.0.1"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let t = session(
        &[],
        &env,
        json!([{"tool": "who", "args": {"port": server.port}}]),
    );
    assert_eq!(
        t.calls[0]["meta"]["portscope/source"], "agent",
        "{:#}",
        t.calls[0]
    );
    assert_eq!(t.ok(0)["owners"][0]["process"]["pid"], json!(server.pid));
}
