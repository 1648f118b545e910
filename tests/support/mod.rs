//! Helpers shared by the integration tests: start the agent, start a socket holder, speak
//! HTTP and WebSocket to the agent, wait with deadlines.

#![allow(dead_code)] // Each test module uses a different subset.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use portscope_shared::ServerMessage;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

pub mod browser;
pub mod machine;
pub mod servers;

/// A running `portscope serve`, killed on drop.
pub struct Agent {
    child: Child,
    /// Its state directory (XDG_STATE_HOME): each test agent keeps its history apart.
    pub state_dir: tempfile::TempDir,
    pub url: String,
    pub port: u16,
    pub token: String,
    /// Its log lines, when the test gave it `RUST_LOG` (else empty: the log goes to stderr).
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Agent {
    /// Starts the agent on `127.0.0.1:0`, rescanning every 250 ms, and reads the URL from the
    /// first line of stdout.
    #[track_caller]
    pub fn start() -> Agent {
        Self::start_ticking("250ms")
    }

    /// The same with another `--interval`.
    #[track_caller]
    pub fn start_ticking(interval: &str) -> Agent {
        Self::spawn(&["--port", "0", "--interval", interval], None)
    }

    /// Starts the agent ticking every `interval` with extra environment variables.
    #[track_caller]
    pub fn start_with_env(interval: &str, env: &[(&str, &str)]) -> Agent {
        Self::spawn_env(&["--port", "0", "--interval", interval], None, env)
    }

    /// Starts the agent on an existing state directory (a restart that finds its history).
    #[track_caller]
    pub fn start_in_state(interval: &str, state_dir: tempfile::TempDir) -> Agent {
        Self::spawn_full(
            &["--port", "0", "--interval", interval],
            None,
            &[],
            state_dir,
        )
    }

    /// Starts the agent ticking every 200 ms with extra `serve` options on an existing state
    /// directory (a restart that finds its history).
    #[track_caller]
    pub fn start_in_state_with(options: &[&str], state_dir: tempfile::TempDir) -> Agent {
        let mut args = vec!["--port", "0", "--interval", "200ms"];
        args.extend_from_slice(options);
        Self::spawn_full(&args, None, &[], state_dir)
    }

    /// Starts the agent with extra `serve` options, e.g. `--no-kill`.
    #[track_caller]
    pub fn start_with(options: &[&str]) -> Agent {
        let mut args = vec!["--port", "0", "--interval", "250ms"];
        args.extend_from_slice(options);
        Self::spawn(&args, None)
    }

    /// Starts the agent on `127.0.0.1:0` with exactly these other `serve` options (no
    /// `--interval` of its own).
    #[track_caller]
    pub fn start_exactly(options: &[&str]) -> Agent {
        let mut args = vec!["--port", "0"];
        args.extend_from_slice(options);
        Self::spawn(&args, None)
    }

    /// Starts the agent on a given port with a configured token (`PORTSCOPE_TOKEN`), as a user
    /// restarting it would.
    #[track_caller]
    pub fn start_on(port: u16, token: &str) -> Agent {
        let port = port.to_string();
        Self::spawn(&["--port", &port, "--interval", "250ms"], Some(token))
    }

    #[track_caller]
    fn spawn(args: &[&str], token: Option<&str>) -> Agent {
        Self::spawn_env(args, token, &[])
    }

    #[track_caller]
    fn spawn_env(args: &[&str], token: Option<&str>, env: &[(&str, &str)]) -> Agent {
        let state_dir = tempfile::tempdir().expect("a state directory for the agent");
        Self::spawn_full(args, token, env, state_dir)
    }

    /// The tests run as root and stop processes they started, as root, through the dashboard's
    /// API: a root agent refuses that without `--allow-kill-system` (root's processes are
    /// daemons to it), so the test agents have it, but for [`Agent::start_strict`]'s, which
    /// test that refusal.
    #[track_caller]
    fn spawn_full(
        args: &[&str],
        token: Option<&str>,
        env: &[(&str, &str)],
        state_dir: tempfile::TempDir,
    ) -> Agent {
        let mut all = args.to_vec();
        all.push("--allow-kill-system");
        Self::spawn_process(&all, token, env, state_dir)
    }

    /// Starts the agent without `--allow-kill-system`, with extra `serve` options and
    /// environment variables (say, `SUDO_UID`).
    #[track_caller]
    pub fn start_strict(options: &[&str], env: &[(&str, &str)]) -> Agent {
        let mut args = vec!["--port", "0", "--interval", "250ms"];
        args.extend_from_slice(options);
        Self::spawn_process(
            &args,
            None,
            env,
            tempfile::tempdir().expect("a state directory"),
        )
    }

    #[track_caller]
    fn spawn_process(
        args: &[&str],
        token: Option<&str>,
        env: &[(&str, &str)],
        state_dir: tempfile::TempDir,
    ) -> Agent {
        // With kernel events (the tests run as root), `--interval` no longer paces the scans:
        // a full scan every `--reconcile` does. The tests that want scans at their interval
        // (processes stopped or exiting, descriptors passed on, UDP) reconcile at it too; the
        // kernel tests give `--reconcile` themselves.
        let mut args = args.to_vec();
        if !args.contains(&"--reconcile")
            && let Some(at) = args.iter().position(|a| *a == "--interval")
            && let Some(interval) = args.get(at + 1).copied()
        {
            args.extend(["--reconcile", interval]);
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_portscope"));
        cmd.env_remove("PORTSCOPE_TOKEN");
        // Who ran sudo (pkexec, doas) decides whose processes the dashboard stops: none here
        // unless a test says so.
        for var in ["SUDO_UID", "PKEXEC_UID", "DOAS_USER"] {
            cmd.env_remove(var);
        }
        // Its history and its local socket are its own (`watch` finds it with the same two).
        cmd.env("XDG_STATE_HOME", state_dir.path());
        cmd.env("XDG_RUNTIME_DIR", state_dir.path());
        cmd.envs(env.iter().copied());
        if let Some(token) = token {
            cmd.env("PORTSCOPE_TOKEN", token);
        }
        // A test that sets RUST_LOG reads the agent's log (`Agent::log`); it is echoed too.
        let capture = env.iter().any(|(k, _)| *k == "RUST_LOG");
        let mut child = cmd
            .arg("serve")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if capture {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("cannot start the portscope binary");
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        if let Some(stderr) = child.stderr.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("{line}");
                    log.lock().unwrap().push(line);
                }
            });
        }
        let stdout = child.stdout.take().unwrap();
        let line = read_line_within(BufReader::new(stdout), Duration::from_secs(30))
            .expect("portscope printed no URL on its first stdout line within 30 s");
        let url = line.trim().to_owned();
        let rest = url
            .strip_prefix("http://127.0.0.1:")
            .unwrap_or_else(|| panic!("unexpected URL {url:?}"));
        let (port, token) = rest
            .split_once("/?token=")
            .unwrap_or_else(|| panic!("URL without token: {url:?}"));
        Agent {
            port: port.parse().unwrap(),
            token: token.to_owned(),
            url,
            child,
            state_dir,
            log,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/api/v1/ws", self.port)
    }

    /// Opens the WebSocket with the token as a Bearer header.
    pub async fn connect(&self) -> Ws {
        self.connect_to(&self.ws_url()).await
    }

    /// Opens a hub's WebSocket of one of its peers (`?host=NAME`).
    pub async fn connect_host(&self, host: &str) -> Ws {
        self.connect_to(&format!("{}?host={host}", self.ws_url()))
            .await
    }

    async fn connect_to(&self, url: &str) -> Ws {
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {}", self.token)).unwrap(),
        );
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("websocket handshake with the agent failed");
        Ws { inner: ws }
    }

    /// `POST path` with the token, a JSON `body` and these extra headers.
    pub fn post(&self, path: &str, body: &str, extra: &[(&str, &str)]) -> HttpResponse {
        let auth = format!("Bearer {}", self.token);
        let (host, len) = (self.host(), body.len().to_string());
        let mut headers = vec![
            ("Host", host.as_str()),
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
            ("Content-Length", len.as_str()),
        ];
        headers.extend_from_slice(extra);
        http_with_body(self.port, "POST", path, &headers, body)
    }

    /// The agent's resident memory in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the agent is running");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/<pid>/status")
    }

    /// Whether the agent process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `GET path` with the token, returning status and body.
    pub fn get(&self, path: &str) -> HttpResponse {
        let auth = format!("Bearer {}", self.token);
        http(
            self.port,
            "GET",
            path,
            &[("Host", &self.host()), ("Authorization", &auth)],
        )
    }
}

impl Agent {
    /// Stops the agent (SIGKILL, as a crash would) and waits until it is gone.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the agent with SIGTERM (as Ctrl-C or systemd would), waits for it to exit (10 s at
    /// most), and hands back its state directory.
    pub fn terminate(mut self) -> tempfile::TempDir {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() {
            assert!(
                Instant::now() < deadline,
                "the agent ignored SIGTERM for 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::mem::replace(
            &mut self.state_dir,
            tempfile::tempdir().expect("a directory"),
        )
    }

    /// Kills the agent with SIGKILL (no chance to clean up) and hands back its state directory.
    pub fn kill9(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(
            &mut self.state_dir,
            tempfile::tempdir().expect("a directory"),
        )
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        // Not forever: a test that failed with the agent stuck must still end.
        reap_within(&mut self.child, Duration::from_secs(10));
    }
}

/// Waits for `child` to end, `limit` at most; whether it did.
pub fn reap_within(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().ok().flatten().is_some() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("cannot find a free port")
        .port()
}

/// Reads one line on a helper thread, so a silent child cannot hang the test.
pub fn read_line_within<R: Read + Send + 'static>(
    mut reader: BufReader<R>,
    limit: Duration,
) -> Option<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let ok = reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false);
        let _ = tx.send(ok.then_some(line));
        // Keep draining so the child never blocks on a full pipe.
        let mut sink = Vec::new();
        let _ = reader.read_to_end(&mut sink);
    });
    rx.recv_timeout(limit).ok().flatten()
}

/// Ports opened by `support/holder.py`.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
pub struct HeldPorts {
    pub tcp4: u16,
    pub tcp6: u16,
    pub udp: u16,
    pub client: u16,
    /// A UDP socket `connect`ed to `udp`.
    pub udp_client: u16,
}

/// A separate process holding sockets (`support/holder.py`, or another script that prints one
/// JSON line and then answers one line per command); exits when dropped (its stdin closes).
pub struct Holder<T = HeldPorts> {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// What the script printed first.
    pub ports: T,
}

impl Holder {
    #[track_caller]
    pub fn start() -> Holder {
        Self::start_script("holder.py")
    }
}

impl<T: serde::de::DeserializeOwned> Holder<T> {
    /// Runs `tests/support/NAME` with python3 and reads its first line as `T`.
    #[track_caller]
    pub fn start_script(name: &str) -> Holder<T> {
        Self::start_script_with(name, &[])
    }

    /// The same with arguments for the script.
    #[track_caller]
    pub fn start_script_with(name: &str, args: &[&str]) -> Holder<T> {
        let script = format!("{}/../tests/support/{name}", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new("python3")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot run python3 (install it: apt-get install python3)");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let ports =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("holder said {line:?}: {e}"));
        Holder {
            child,
            stdin,
            stdout,
            ports,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one command and returns the holder's one-line answer.
    pub fn command(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_owned()
    }
}

impl<T> Drop for Holder<T> {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One port situation made by `support/situation.py` (a listener, an HTTP server, a port left
/// in TIME_WAIT, …) in a separate process; it ends when dropped.
pub struct Situation {
    child: Child,
    _stdin: ChildStdin,
    pub port: u16,
    /// The process holding the port (for `child`, the child's pid).
    pub pid: u32,
}

impl Situation {
    #[track_caller]
    pub fn start(args: &[&str]) -> Situation {
        Self::spawn(args, false)
    }

    /// The same, in a process group of its own (as a shell starts a job).
    #[track_caller]
    pub fn start_in_own_group(args: &[&str]) -> Situation {
        Self::spawn(args, true)
    }

    /// The same run by `interpreter` (a link to python3 under another name is another
    /// program to portscope).
    #[track_caller]
    pub fn start_by(interpreter: &std::path::Path, args: &[&str]) -> Situation {
        Self::spawn_by(interpreter.as_os_str(), &[], args, false, None)
    }

    /// The same run by `program` with `before` the script (e.g. `ip netns exec NS python3`).
    #[track_caller]
    pub fn start_wrapped(program: &str, before: &[&str], args: &[&str]) -> Situation {
        Self::spawn_by(program.as_ref(), before, args, false, None)
    }

    /// The same working in `dir` (its working directory, as a developer's server in a
    /// checkout).
    #[track_caller]
    pub fn start_in(dir: &std::path::Path, args: &[&str]) -> Situation {
        Self::spawn_by("python3".as_ref(), &[], args, false, Some(dir))
    }

    #[track_caller]
    fn spawn(args: &[&str], own_group: bool) -> Situation {
        Self::spawn_by("python3".as_ref(), &[], args, own_group, None)
    }

    #[track_caller]
    fn spawn_by(
        program: &std::ffi::OsStr,
        before: &[&str],
        args: &[&str],
        own_group: bool,
        dir: Option<&std::path::Path>,
    ) -> Situation {
        use std::os::unix::process::CommandExt;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/support/situation.py");
        let mut command = Command::new(program);
        command.args(before);
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        if own_group {
            command.process_group(0);
        }
        let mut child = command
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot run python3 (install it: apt-get install python3)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let line = read_line_within(stdout, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("situation {args:?} said nothing"));
        #[derive(serde::Deserialize)]
        struct Said {
            port: u16,
            pid: u32,
        }
        let said: Said =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("situation said {line:?}: {e}"));
        Situation {
            child,
            _stdin: stdin,
            port: said.port,
            pid: said.pid,
        }
    }

    /// The python process itself (the parent, for `child`).
    pub fn own_pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit (after a `kill`), reaping it; its exit status or `None`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Situation {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebSocket client of the agent.
pub struct Ws {
    pub inner: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Ws {
    /// The whole snapshot that comes next (its first part, then each `SnapshotMore` until one
    /// says there is no more: a busy machine's state comes in parts), Deltas before it skipped.
    pub async fn snapshot(&mut self, limit: Duration) -> portscope_shared::Snapshot {
        let deadline = tokio::time::Instant::now() + limit;
        let mut snapshot = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                ServerMessage::Snapshot(s) => break s,
                ServerMessage::Delta(_) => continue,
                other => panic!("expected a Snapshot, got {other:?}"),
            }
        };
        while snapshot.more {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                ServerMessage::SnapshotMore(part) => {
                    snapshot.sockets.extend(part.sockets);
                    snapshot.processes.extend(part.processes);
                    snapshot.more = part.more;
                }
                other => panic!("expected the snapshot's next part, got {other:?}"),
            }
        }
        snapshot
    }

    /// The next protocol message, or a panic after `limit`.
    pub async fn next(&mut self, limit: Duration) -> ServerMessage {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.inner.next())
                .await
                .expect("no message from the agent before the deadline")
                .expect("the agent closed the WebSocket")
                .expect("WebSocket error");
            match msg {
                Message::Text(text) => {
                    return serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("undecodable message {text}: {e}"));
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        use futures_util::SinkExt;
        self.inner.send(Message::Text(text.into())).await.unwrap();
    }
}

/// An HTTP response as the tests need it.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one raw HTTP/1.1 request with exactly these headers (no client library, so hostile
/// and duplicate headers reach the agent untouched) and reads the whole response.
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    http_with_body(port, method, path, headers, "")
}

/// The same with a body (give its `Content-Length` in `headers`).
pub fn http_with_body(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("cannot connect to the agent");
    // `POST /api/v1/kill` may wait up to 30 s for a process to stop before it answers.
    stream
        .set_read_timeout(Some(Duration::from_secs(35)))
        .unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    // A 101 response keeps the connection open: read what arrived, up to the timeout.
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.starts_with(b"HTTP/1.1 101") && raw.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            // A read with a timeout is never restarted after a signal (signal(7)): the test
            // binary's child-process handler interrupts it on a busy machine.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if raw.is_empty() => panic!("no response from the agent: {e}"),
            Err(_) => break,
        }
    }
    let mut parsed_headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut parsed_headers);
    let header_len = match res.parse(&raw).expect("malformed HTTP response") {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => panic!("truncated HTTP response: {raw:?}"),
    };
    HttpResponse {
        status: res.code.unwrap(),
        headers: res
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&raw[header_len..]).into_owned(),
    }
}

/// Polls `check` until it returns `Some`, or panics with `what` after `limit`.
#[track_caller]
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `portscope` with these arguments and returns (exit code, stdout, stderr). A run that
/// has not ended after 60 s (say, a `serve` that should have refused to start) is killed and
/// fails the test.
#[track_caller]
pub fn run_cli(args: &[&str]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portscope"));
    command.args(args);
    run(command)
}

/// Runs git in `dir` (with a user name for commits), failing the test when it fails.
#[track_caller]
pub fn git(args: &[&str], dir: &std::path::Path) {
    let mut command = Command::new("git");
    command
        .args(["-c", "user.name=t", "-c", "user.email=t@t"])
        .args(args)
        .current_dir(dir);
    let (code, out, err) = run(command);
    assert_eq!(
        code, 0,
        "git {args:?}: {out}{err} (git comes with `cargo xtask test`)"
    );
}

/// A git repository with one commit: `name` in `dir`, as a developer's checkout.
#[track_caller]
pub fn git_checkout(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let repo = dir.join(name);
    std::fs::create_dir_all(&repo).unwrap();
    git(&["init", "-q"], &repo);
    git(&["commit", "-q", "--allow-empty", "-m", "first"], &repo);
    repo
}

/// Runs a command to its end (60 s at most) and returns (exit code, stdout, stderr).
#[track_caller]
pub fn run(mut command: Command) -> (i32, String, String) {
    let args = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {args}: {e}"));
    let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let limit = Duration::from_secs(60);
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("cannot wait for portscope") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let gone = reap_within(&mut child, Duration::from_secs(5));
            panic!("{args} did not exit within {limit:?} (SIGKILL ended it: {gone})");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code().unwrap_or(-1),
        out.join().unwrap(),
        err.join().unwrap(),
    )
}

/// The checkout these tests run in, as git itself names its top directory (empty outside
/// one): the project a test's own processes inherit.
pub fn own_checkout() -> String {
    git_says(&["rev-parse", "--show-toplevel"])
}

/// The name of that checkout's project as git describes it: its directory's name, or
/// `repo@worktree` in a linked worktree (whose git directory is not the common one).
pub fn own_project_name() -> String {
    let name = |path: &str| {
        std::path::Path::new(path)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let top = own_checkout();
    let git_dir = git_says(&["rev-parse", "--absolute-git-dir"]);
    let common = git_says(&["rev-parse", "--path-format=absolute", "--git-common-dir"]);
    if git_dir.is_empty() || git_dir == common {
        return name(&top);
    }
    let repo = std::path::Path::new(&common)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{}@{}", name(&repo), name(&git_dir))
}

fn git_says(args: &[&str]) -> String {
    std::process::Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// `python3 -m http.server PORT --bind 127.0.0.1`, as a developer starts one; killed when
/// dropped.
pub struct HttpServer(Child);

impl HttpServer {
    #[track_caller]
    pub fn start(port: u16) -> HttpServer {
        HttpServer(
            Command::new("python3")
                .args([
                    "-m",
                    "http.server",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("cannot run python3 (install it: apt-get install python3)"),
        )
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
