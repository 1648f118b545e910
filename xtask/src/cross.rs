//! `cargo xtask cross`: the agent on Windows and macOS, checked from this Linux machine.
//!
//! Installs what is missing (the Rust targets; Debian's mingw-w64, Wine and libclang; `ziglang`
//! from PyPI), then
//!
//! 1. builds `portscope.exe` for `x86_64-pc-windows-gnu` with mingw, and runs it under Wine:
//!    `portscope.exe --port 0` must print its URL first; from Linux the dashboard and
//!    `GET /api/v1/snapshot` are fetched with the token, and the Host, Origin and token rules
//!    are tried; `portscope.exe ls --json` must list the agent's own listener and
//!    `portscope.exe who PORT` must name `portscope.exe`;
//! 2. checks the agent for `aarch64-apple-darwin` and `x86_64-apple-darwin` (`cargo clippy
//!    -D warnings`: type-checked and linted, not linked), with zig as the C compiler of the
//!    build scripts (ring, SQLite) and zig's Darwin headers for netstat2's libproc bindings
//!    (bindgen, through Debian's libclang). zig has no macOS SDK frameworks (sysinfo links
//!    IOKit and CoreFoundation), so no Mach-O binary is linked.
//!
//! Wine 8 (Debian 12's) lacks two DLLs that Rust's standard library imports on Windows;
//! `wine/` holds a shim for each, built here with mingw and put beside the test's exe only.
//! They are test scaffolding for an old Wine, never shipped.
//!
//! The builds share the workspace's target directory (`target/`, or `$CARGO_TARGET_DIR`): Cargo
//! keeps each target's artifacts apart (`target/x86_64-pc-windows-gnu/`, …), so the host's are
//! never rebuilt because of them, while the dashboard's WebAssembly (`target/web/`) and the
//! build scripts and proc-macros that the host build made are reused — a target directory of
//! its own would build all of those again. zig, the Wine prefix and the agent's log under Wine
//! go to `target/cross/`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{cargo, command, install_debian, step};

const WINDOWS: &str = "x86_64-pc-windows-gnu";
const MACOS: &[&str] = &["aarch64-apple-darwin", "x86_64-apple-darwin"];

/// Debian packages the cross checks need, with a file each one provides.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    // The C compiler and linker of x86_64-pc-windows-gnu (ring, SQLite, the Wine shims).
    ("gcc-mingw-w64-x86-64", "/usr/bin/x86_64-w64-mingw32-gcc"),
    ("wine64", "/usr/lib/wine/wine64"),
    // bindgen (netstat2's build script for macOS) loads libclang.
    ("libclang-dev", "/usr/lib/llvm-14/lib/libclang.so"),
];

const WINE: &str = "/usr/lib/wine/wine64";
const WINESERVER: &str = "/usr/lib/wine/wineserver64";

/// zig from PyPI: the C compiler for the macOS targets' build scripts.
const ZIGLANG: &str = "ziglang==0.17.1";

/// How long the first start under Wine may take (it makes the Wine prefix first).
const FIRST_START: Duration = Duration::from_secs(240);

pub fn cross() -> Result<(), String> {
    let started = Instant::now();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("xtask/ has no parent")?
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| root.join("target"), PathBuf::from);
    let dir = target.join("cross");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    install(&dir)?;
    let installed = started.elapsed();

    let exe = build_windows(&target)?;
    shims(&root, &exe)?;
    let built = started.elapsed();
    smoke(&dir, &exe)?;
    let smoked = started.elapsed();

    let zig = zig_dir(&dir);
    for triple in MACOS {
        check_macos(&dir, &zig, triple)?;
    }
    let total = started.elapsed();
    eprintln!(
        "xtask: cross: installs {:.0} s, Windows build {:.0} s, Wine smoke test {:.0} s, macOS checks {:.0} s; {:.0} s in all",
        installed.as_secs_f64(),
        (built - installed).as_secs_f64(),
        (smoked - built).as_secs_f64(),
        (total - smoked).as_secs_f64(),
        total.as_secs_f64()
    );
    // Counted like the tests' closing line; `.ci/run` adds it to theirs.
    println!("cross: {} passed, 0 failed", PASSED.load(Ordering::Relaxed));
    Ok(())
}

/// Checks passed so far.
static PASSED: AtomicU32 = AtomicU32::new(0);

/// Says that a check passed, and counts it.
fn ok(what: &str) {
    PASSED.fetch_add(1, Ordering::Relaxed);
    eprintln!("xtask: ok: {what}");
}

/// The Rust targets, the Debian packages and zig, where missing.
fn install(dir: &Path) -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("cannot run rustup ({e}); install Rust with rustup"))?;
    let installed = String::from_utf8_lossy(&installed.stdout).into_owned();
    let missing: Vec<&str> = std::iter::once(WINDOWS)
        .chain(MACOS.iter().copied())
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if !missing.is_empty() {
        let mut add = command("rustup", &["target", "add"]);
        add.args(&missing);
        step("rustup target add", add)?;
    }
    install_debian("the cross checks", DEBIAN_PACKAGES)?;
    let zig = zig_dir(dir);
    if !zig.join("ziglang/zig").exists() {
        crate::pip_install(&zig, ZIGLANG)?;
    }
    Ok(())
}

fn zig_dir(dir: &Path) -> PathBuf {
    dir.join("ziglang")
}

/// `cargo build` of the agent for Windows into the target directory `dir`; the exe's path.
fn build_windows(dir: &Path) -> Result<PathBuf, String> {
    let mut build = cargo(&[
        "build",
        "--package",
        "portscope",
        "--bin",
        "portscope",
        "--target",
        WINDOWS,
        "--locked",
    ]);
    build.env("CARGO_TARGET_DIR", dir);
    step("build the Windows agent (mingw-w64)", build)?;
    Ok(dir.join(WINDOWS).join("debug/portscope.exe"))
}

/// Builds the two Wine 8 shims beside the exe.
fn shims(root: &Path, exe: &Path) -> Result<(), String> {
    let src = root.join("xtask/wine");
    let out = exe.parent().ok_or("the exe has no directory")?;
    let gcc = "x86_64-w64-mingw32-gcc";
    let mut prng = command(gcc, &["-shared", "-O2", "-o"]);
    prng.arg(out.join("bcryptprimitives.dll"))
        .arg(src.join("bcryptprimitives.c"))
        .arg(src.join("bcryptprimitives.def"))
        .arg("-ladvapi32");
    step("Wine shim bcryptprimitives.dll (ProcessPrng)", prng)?;
    let mut synch = command(gcc, &["-shared", "-nostdlib", "-Wl,--entry=DllMain", "-o"]);
    synch
        .arg(out.join("api-ms-win-core-synch-l1-2-0.dll"))
        .arg(src.join("forwarders.c"))
        .arg(src.join("api-ms-win-core-synch-l1-2-0.def"));
    step(
        "Wine shim api-ms-win-core-synch-l1-2-0.dll (WaitOnAddress)",
        synch,
    )
}

/// A command run under our own Wine prefix, quietly and without Wine's Mono and Gecko
/// installers (which would try to download).
fn wine(dir: &Path, exe: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(WINE);
    cmd.arg(exe).args(args);
    wine_env(&mut cmd, dir);
    cmd
}

fn wine_env(cmd: &mut Command, dir: &Path) {
    let home = dir.join("wine-home");
    cmd.env("WINEPREFIX", dir.join("wine-prefix"))
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        // The agent's history and other files go to a directory of this run's own.
        .env("HOME", &home)
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
}

/// The Wine server of our prefix, and every process in it, ended.
struct Prefix<'a> {
    dir: &'a Path,
    agent: Option<Child>,
}

impl Drop for Prefix<'_> {
    fn drop(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            let _ = agent.kill();
            let _ = agent.wait();
        }
        let mut kill = Command::new(WINESERVER);
        kill.arg("-k");
        wine_env(&mut kill, self.dir);
        let _ = kill.status();
    }
}

/// Runs the agent under Wine and checks it from Linux; see the module documentation.
fn smoke(dir: &Path, exe: &Path) -> Result<(), String> {
    eprintln!("xtask: == the Windows agent under Wine");
    let (mut prefix, addr, token) = start_agent(dir, exe)?;
    // 1. The dashboard and the snapshot, with the rules.
    check_http(addr, &token)?;
    // 2. `ls --json` sees the agent's own listener.
    let owner = check_ls(dir, exe, addr)?;
    // 3. `who PORT` names it.
    check_who(dir, exe, addr, &owner)?;
    // 4. `kill --pid` names it (its details through sysinfo) and stops it: first the polite
    // way (`taskkill /PID`, which a console program without a window cannot honour), then
    // TerminateProcess. Its Windows pid comes from Wine's own process list.
    check_kill(dir, exe, &mut prefix)?;
    drop(prefix);
    Ok(())
}

/// Starts `portscope.exe --port 0` in our Wine prefix and reads its URL: the prefix (which
/// stops the agent and Wine when dropped), the agent's address and its token.
fn start_agent<'a>(dir: &'a Path, exe: &Path) -> Result<(Prefix<'a>, SocketAddr, String), String> {
    let home = dir.join("wine-home");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
    let log_path = dir.join("wine-agent.log");
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let mut agent = wine(dir, exe, &["--port", "0"]);
    agent.stdout(Stdio::piped()).stderr(log);
    let mut child = agent
        .spawn()
        .map_err(|e| format!("cannot start {WINE}: {e}"))?;
    let stdout = child.stdout.take().expect("piped");
    let prefix = Prefix {
        dir,
        agent: Some(child),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        // Keep reading so that the agent never blocks on a full pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    let first = rx.recv_timeout(FIRST_START).map_err(|_| {
        format!(
            "portscope.exe printed no URL within {} s; its log: {}",
            FIRST_START.as_secs(),
            tail(&log_path)
        )
    })?;
    let url = first.trim();
    let (addr, token) = parse_url(url).ok_or_else(|| {
        format!(
            "the first line of portscope.exe is not its URL: {url:?}; its log: {}",
            tail(&log_path)
        )
    })?;
    ok(&format!("portscope.exe --port 0 printed {url}"));
    Ok((prefix, addr, token))
}

/// The dashboard's files, the snapshot with the token, and the Host, Origin and token rules.
fn check_http(addr: SocketAddr, token: &str) -> Result<(), String> {
    let host = addr.to_string();
    let page = http(addr, "/", &host, None, None)?;
    expect(
        page.status == 200 && page.body.contains("<title>portscope</title>"),
        "the dashboard is served",
        &page,
    )?;
    let boot = http(addr, "/boot.js", &host, None, None)?;
    expect(
        boot.status == 200 && boot.body.contains("portscope_web"),
        "the dashboard's script is served",
        &boot,
    )?;
    let wasm = http(addr, "/portscope_web_bg.wasm", &host, None, None)?;
    expect(
        wasm.status == 200 && wasm.body.starts_with("\0asm"),
        "the dashboard's WebAssembly is served",
        &wasm,
    )?;
    ok("GET /, /boot.js and /portscope_web_bg.wasm serve the dashboard");
    // The agent scans once before it binds, then every second: its own listener is in the
    // snapshot from the next tick on.
    let deadline = Instant::now() + Duration::from_secs(20);
    let owner = loop {
        let snapshot = http(addr, "/api/v1/snapshot", &host, Some(token), None)?;
        expect(
            snapshot.status == 200,
            "GET /api/v1/snapshot with the token",
            &snapshot,
        )?;
        let json: serde_json::Value = serde_json::from_str(&snapshot.body)
            .map_err(|e| format!("the snapshot is not JSON ({e}): {}", snapshot.body))?;
        match listener_owner(&json, addr.port()) {
            Ok(owner) => break owner,
            Err(e) if Instant::now() > deadline => {
                return Err(format!("GET /api/v1/snapshot: {e}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    ok(&format!(
        "GET /api/v1/snapshot with the token lists the agent's listener ({owner})"
    ));
    let refusals = [
        (
            "no token",
            http(addr, "/api/v1/snapshot", &host, None, None)?,
            401,
        ),
        (
            "a wrong token",
            http(
                addr,
                "/api/v1/snapshot",
                &host,
                Some("0123456789abcdef0123456789abcdef"),
                None,
            )?,
            401,
        ),
        (
            "another Host",
            http(
                addr,
                "/api/v1/snapshot",
                &format!("evil.example:{}", addr.port()),
                Some(token),
                None,
            )?,
            403,
        ),
        (
            "another Origin",
            http(
                addr,
                "/api/v1/snapshot",
                &host,
                Some(token),
                Some("http://evil.example"),
            )?,
            403,
        ),
        (
            "the dashboard for another Host",
            http(addr, "/", "evil.example", None, None)?,
            403,
        ),
    ];
    for (what, answer, status) in &refusals {
        let check = format!("{what} is refused with {status}");
        expect(answer.status == *status, &check, answer)?;
        ok(&check);
    }
    let same_origin = http(
        addr,
        "/api/v1/snapshot",
        &host,
        Some(token),
        Some(&format!("http://{host}")),
    )?;
    expect(
        same_origin.status == 200,
        "its own Origin is let in",
        &same_origin,
    )?;
    ok("the agent's own Origin is let in");
    Ok(())
}

/// `ls --json` lists the agent's own listener; what it says of the owner.
fn check_ls(dir: &Path, exe: &Path, addr: SocketAddr) -> Result<String, String> {
    let ls = wine(dir, exe, &["ls", "--json"])
        .output()
        .map_err(|e| format!("cannot run portscope.exe ls: {e}"))?;
    if !ls.status.success() {
        return Err(format!(
            "portscope.exe ls --json failed ({}): {}",
            ls.status,
            String::from_utf8_lossy(&ls.stderr)
        ));
    }
    let json: serde_json::Value = serde_json::from_slice(&ls.stdout)
        .map_err(|e| format!("portscope.exe ls --json printed no JSON ({e})"))?;
    let sockets = json["sockets"].as_array().map_or(0, Vec::len);
    let owner =
        listener_owner(&json, addr.port()).map_err(|e| format!("portscope.exe ls --json: {e}"))?;
    ok(&format!(
        "portscope.exe ls --json lists {sockets} sockets, among them the agent's listener on {} ({owner})",
        addr.port()
    ));
    Ok(owner)
}

/// `who PORT` lists the listener, naming the owner exactly where `ls` did.
fn check_who(dir: &Path, exe: &Path, addr: SocketAddr, owner: &str) -> Result<(), String> {
    let port = addr.port().to_string();
    let who = wine(dir, exe, &["who", &port])
        .output()
        .map_err(|e| format!("cannot run portscope.exe who: {e}"))?;
    let said = String::from_utf8_lossy(&who.stdout);
    let listed = said.lines().any(|l| l.contains("LISTEN"));
    let named = said.contains("portscope.exe");
    // Where the system names the owner, `who` must say it; where it names none (Wine), `who`
    // must not make one up.
    let owned = owner.starts_with("owned by portscope.exe");
    if !who.status.success() || !listed || named != owned {
        return Err(format!(
            "portscope.exe who {port} should list the listener {} ({}): {said}{}",
            if owned {
                "and name portscope.exe"
            } else {
                "without an owner, as ls did"
            },
            who.status,
            String::from_utf8_lossy(&who.stderr)
        ));
    }
    ok(&format!(
        "portscope.exe who {port} lists the listener {}",
        if owned {
            "and names portscope.exe"
        } else {
            "without an owner (none reported)"
        }
    ));
    Ok(())
}

/// `kill --pid`: the polite way is refused with a reason, then `--signal KILL` stops the agent.
fn check_kill(dir: &Path, exe: &Path, prefix: &mut Prefix<'_>) -> Result<(), String> {
    let pid = windows_pid(dir, "portscope.exe")?;
    let pid = pid.to_string();
    let polite = wine(dir, exe, &["kill", "--pid", &pid, "--force-after", "never"])
        .output()
        .map_err(|e| format!("cannot run portscope.exe kill: {e}"))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&polite.stdout),
        String::from_utf8_lossy(&polite.stderr)
    );
    if !said.contains("portscope.exe") || !said.contains("SIGTERM") {
        return Err(format!(
            "portscope.exe kill --pid {pid} should name portscope.exe and say what SIGTERM did ({}): {said}",
            polite.status
        ));
    }
    ok(&format!(
        "portscope.exe kill --pid {pid} (TERM: a close request): {}",
        said.lines()
            .find(|l| l.contains("portscope.exe"))
            .unwrap_or_default()
            .trim()
    ));
    let forced = wine(dir, exe, &["kill", "--pid", &pid, "--signal", "KILL"])
        .output()
        .map_err(|e| format!("cannot run portscope.exe kill: {e}"))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&forced.stdout),
        String::from_utf8_lossy(&forced.stderr)
    );
    let mut agent = prefix.agent.take().expect("started above");
    let deadline = Instant::now() + Duration::from_secs(20);
    let gone = loop {
        match agent.try_wait() {
            Ok(Some(_)) => break true,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            _ => break false,
        }
    };
    if !forced.status.success() || !gone {
        let _ = agent.kill();
        let _ = agent.wait();
        return Err(format!(
            "portscope.exe kill --pid {pid} --signal KILL should stop the agent ({}; gone: {gone}): {said}",
            forced.status
        ));
    }
    ok(&format!(
        "portscope.exe kill --pid {pid} --signal KILL (TerminateProcess) stopped the agent: {}",
        said.lines().next().unwrap_or_default().trim()
    ));
    Ok(())
}

/// The Windows pid of the process named `name` in our Wine prefix, from `winedbg`'s process
/// list (`info proc`: hexadecimal pids).
fn windows_pid(dir: &Path, name: &str) -> Result<u32, String> {
    let mut winedbg = Command::new(WINE);
    winedbg.args(["winedbg", "--command", "info proc"]);
    wine_env(&mut winedbg, dir);
    let out = winedbg
        .output()
        .map_err(|e| format!("cannot run winedbg: {e}"))?;
    let list = String::from_utf8_lossy(&out.stdout);
    list.lines()
        .find(|l| l.contains(&format!("'{name}'")))
        .and_then(|l| l.trim_start_matches([' ', '=']).split_whitespace().next())
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .ok_or_else(|| format!("{name} is not in Wine's process list: {list}"))
}

/// The address and token in `http://127.0.0.1:PORT/?token=TOKEN`.
fn parse_url(url: &str) -> Option<(SocketAddr, String)> {
    let rest = url.strip_prefix("http://")?;
    let (addr, query) = rest.split_once("/?token=")?;
    Some((addr.parse().ok()?, query.to_owned()))
}

/// Finds the TCP listener on `port` in `json` (a snapshot) and says who owns it: `owned by
/// portscope.exe`, or — where the system named no owner, as Wine does for the sockets its
/// server holds, and the scan's warnings say so — `no owner reported`. Any other owner, or
/// none without the warning, is an error.
fn listener_owner(json: &serde_json::Value, port: u16) -> Result<String, String> {
    let sockets = json["sockets"].as_array().ok_or("no sockets")?;
    let listener = sockets
        .iter()
        .find(|s| s["local_port"] == port && s["state"] == "LISTEN")
        .ok_or_else(|| format!("no listener on port {port} among {} sockets", sockets.len()))?;
    let pids: Vec<u64> = listener["pids"]
        .as_array()
        .map(|p| p.iter().filter_map(serde_json::Value::as_u64).collect())
        .unwrap_or_default();
    let processes = json["processes"].as_array().ok_or("no processes")?;
    let names: Vec<&str> = processes
        .iter()
        .filter(|p| p["pid"].as_u64().is_some_and(|pid| pids.contains(&pid)))
        .filter_map(|p| p["name"].as_str())
        .collect();
    if names == ["portscope.exe"] {
        return Ok(format!("owned by portscope.exe, pid {pids:?}"));
    }
    let warned = json["warnings"].as_array().is_some_and(|w| {
        w.iter()
            .filter_map(serde_json::Value::as_str)
            .any(|w| w.contains("named no owning process"))
    });
    if pids.is_empty() && warned {
        Ok("no owner reported by the system, and the warning says so".into())
    } else {
        Err(format!(
            "the listener on port {port} should be owned by portscope.exe, or have no owner with a warning; it has {names:?} (pids {pids:?}, warned: {warned}): {listener}"
        ))
    }
}

struct Answer {
    status: u16,
    body: String,
}

/// One HTTP/1.1 GET with `Connection: close`.
fn http(
    addr: SocketAddr,
    path: &str,
    host: &str,
    token: Option<&str>,
    origin: Option<&str>,
) -> Result<Answer, String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| format!("cannot connect to the agent at {addr}: {e}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some(origin) = origin {
        request.push_str(&format!("Origin: {origin}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("GET {path}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("GET {path}: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("GET {path}: no HTTP answer: {head}"))?;
    // Chunked bodies are checked by their content only; the framing is left in.
    Ok(Answer {
        status,
        body: body.to_owned(),
    })
}

fn expect(ok: bool, what: &str, answer: &Answer) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        let body: String = answer.body.chars().take(400).collect();
        Err(format!("{what}: got status {}: {body}", answer.status))
    }
}

/// The last lines of a log, for an error.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// `cargo check` of the agent for a macOS target, with zig as the build scripts' C compiler.
fn check_macos(dir: &Path, zig: &Path, target: &str) -> Result<(), String> {
    let zig_bin = zig.join("ziglang/zig");
    let arch = target.split('-').next().unwrap_or_default();
    let zig_target = format!("{arch}-macos");
    // cc-rs passes `--target=<rust triple>`, which zig does not take: a wrapper sets its own.
    let wrapper = dir.join(format!("zigcc-{zig_target}"));
    let script = format!(
        "#!/bin/sh\n# zig cc for {zig_target}, made by `cargo xtask cross`.\nfor a in \"$@\"; do shift; case \"$a\" in --target=*|-arch|arm64|x86_64) ;; *) set -- \"$@\" \"$a\";; esac; done\nexec {} cc -target {zig_target} \"$@\"\n",
        zig_bin.display()
    );
    std::fs::write(&wrapper, script).map_err(|e| format!("{}: {e}", wrapper.display()))?;
    make_executable(&wrapper)?;
    let headers = zig.join("ziglang/lib/libc/include/any-darwin-any");
    let builtins = zig.join("ziglang/lib/include");
    let env_target = target.replace('-', "_");
    // Every crate of the agent: the OS seam lives in portscope-core, the rest builds on it.
    let mut check = cargo(&[
        "clippy",
        "--package",
        "portscope",
        "--package",
        "portscope-core",
        "--package",
        "portscope-history",
        "--package",
        "portscope-doctor",
        "--package",
        "portscope-server",
        "--target",
        target,
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    check
        .env(format!("CC_{env_target}"), &wrapper)
        .env(format!("AR_{env_target}"), "ar")
        // netstat2's build script makes its libproc bindings with bindgen from <libproc.h>.
        .env(
            format!("BINDGEN_EXTRA_CLANG_ARGS_{env_target}"),
            format!(
                "-isystem {} -I{} --target={target}",
                builtins.display(),
                headers.display()
            ),
        );
    step(&format!("cargo clippy for {target} (zig cc)"), check)?;
    ok(&format!(
        "the agent compiles for {target} (cargo clippy -D warnings: checked, not linked)"
    ));
    Ok(())
}

fn make_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", path.display()))
}
