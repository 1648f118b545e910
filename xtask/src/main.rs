//! portscope's development tasks, run as `cargo xtask <task>`.
//!
//! `test` is the one command that checks everything on a fresh machine: it installs what is
//! missing (the wasm32 target; Chromium, chromedriver, ss and python3 from Debian's packages;
//! axe-core from npm), then runs rustfmt, clippy (host and wasm32), the dependency check of the
//! protocol crate and every test. It stops at the first failure with the command that failed.
//!
//! `cross` (`cross.rs`) builds the agent for Windows and runs it under Wine, and checks it for
//! macOS.

mod bench;
mod cross;
mod developer;
mod dist;
mod hub;
mod kernel;
mod rig;

use std::path::Path;
use std::process::{Command, ExitCode};

const WASM: &str = "wasm32-unknown-unknown";

/// Debian packages the tests need, with a file each one provides.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("chromium", "/usr/bin/chromium"),
    ("chromium-driver", "/usr/bin/chromedriver"),
    ("iproute2", "/usr/bin/ss"),
    ("python3", "/usr/bin/python3"),
    // IANA service names, read by the agent and checked by the tests.
    ("netbase", "/etc/services"),
    // setpriv (a privileged port as an ordinary user) and unshare (a network namespace).
    ("util-linux", "/usr/bin/setpriv"),
    // ps: the history test checks a start time against what ps says.
    ("procps", "/usr/bin/ps"),
    // nft: the firewall check reads the ruleset; a test sets a rule in its own namespace.
    ("nftables", "/usr/sbin/nft"),
    // Real servers the doctor is tested against (tests/servers.rs): it must never harm them.
    ("postgresql", "/usr/lib/postgresql/15/bin/initdb"),
    ("redis-server", "/usr/bin/redis-server"),
    ("nginx", "/usr/sbin/nginx"),
    // sshd logs even a bare connect: `why` says so (tests/servers.rs).
    ("openssh-server", "/usr/sbin/sshd"),
    // nginx's `stream` proxy in front of Redis: a proxy's listener gets no HTTP request.
    (
        "libnginx-mod-stream",
        "/usr/lib/nginx/modules/ngx_stream_module.so",
    ),
    // git: the projects test makes a repository and a worktree.
    ("git", "/usr/bin/git"),
    // A FUSE mount whose lookups hang (tests/support/hung_fs.py): projects must not stall.
    ("python3-fusepy", "/usr/lib/python3/dist-packages/fusepy.py"),
    // dot: `portscope graph --dot` must be Graphviz input Graphviz takes.
    ("graphviz", "/usr/bin/dot"),
    // Prometheus scrapes an agent's /metrics in tests/fleet.rs.
    ("prometheus", "/usr/bin/prometheus"),
    // Containers behind ports (tests/servers.rs): the tests start dockerd themselves and run a
    // busybox image made from busybox-static with `docker import`, without a registry.
    ("docker.io", "/usr/sbin/dockerd"),
    ("busybox-static", "/bin/busybox"),
    // man: `portscope man` pages must render with man-db (tests/shell.rs).
    ("man-db", "/usr/bin/man"),
    // The Debian package (dist.rs): dpkg-shlibdeps finds its dependencies, strip trims the
    // binary, systemd-analyze verifies the user unit.
    ("dpkg-dev", "/usr/bin/dpkg-shlibdeps"),
    ("binutils", "/usr/bin/strip"),
    ("systemd", "/usr/bin/systemd-analyze"),
    // Kernel events (#22): core/build.rs compiles the BPF probes with clang against libbpf's
    // headers; without them the agent is built polling and the kernel tests fail.
    ("clang", "/usr/bin/clang"),
    ("libbpf-dev", "/usr/include/bpf/bpf_helpers.h"),
    // npm fetches axe-core, the accessibility checker the browser tests inject into the page.
    ("npm", "/usr/bin/npm"),
];

/// The accessibility engine of the browser tests, from the npm registry, and where it goes
/// (under the workspace's `target/`, where `tests/browser.rs` reads it).
const AXE_CORE: &str = "axe-core@4.14.1";
const AXE_DIR: &str = "target/axe-core";

/// Crates the protocol crate must never depend on (it compiles for the browser too).
const FORBIDDEN_IN_SHARED: &[&str] = &["tokio", "axum", "hyper", "web-sys", "js-sys", "leptos"];

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "test" => test(),
        "install-deps" => install_deps(),
        "cross" => cross::cross(),
        "bench" => bench::bench(&std::env::args().skip(2).collect::<Vec<_>>()),
        "dist" => dist::dist().and_then(|deb| {
            if std::env::args().nth(2).as_deref() == Some("--check") {
                let passed = dist::check(&deb)?;
                eprintln!("xtask: the package passed {passed} checks");
            }
            Ok(())
        }),
        "man" => dist::man(&std::env::args().skip(2).collect::<Vec<_>>()),
        _ => Err(format!(
            "unknown task {task:?}. Tasks:\n  test          install what is missing, then run every check and test\n  install-deps  only install what the tests need\n  cross         build the agent for Windows and run it under Wine; check it for macOS\n  dist          build the Debian package target/dist/portscope_<version>_<arch>.deb (--check: install it, check it, remove it)\n  man DIR       write every man page into DIR\n  bench         measure portscope against ss, netstat and lsof on a load it makes (--sockets N --procs P --json PATH --history-only --hub-only --timeline-only --developer-only)"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn test() -> Result<(), String> {
    install_deps()?;
    step("rustfmt", cargo(&["fmt", "--all", "--", "--check"]))?;
    step(
        "clippy (host)",
        // The web crate too: on the host it is its pure model (`table`) and that model's tests.
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    step(
        "clippy (wasm32: web and shared)",
        cargo(&[
            "clippy",
            "--package",
            "portscope-web",
            "--package",
            "portscope-shared",
            "--target",
            WASM,
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    check_shared_dependencies()?;
    let mut doc = cargo(&[
        "doc",
        "--no-deps",
        "--package",
        "portscope-shared",
        "--locked",
    ]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    step("rustdoc (protocol crate)", doc)?;
    let (mut passed, failed) = run_tests()?;
    // The Debian package, installed as a user would and checked (dist.rs).
    let deb = dist::dist()?;
    passed += dist::check(&deb)?;
    eprintln!("xtask: every check and test passed");
    // One closing line for the whole suite (cargo prints one per test binary, the last of
    // which may be an empty doc-test run).
    println!("tests: {passed} passed, {failed} failed");
    Ok(())
}

/// Runs every test, echoing cargo's output, and adds up its `test result:` lines.
fn run_tests() -> Result<(u64, u64), String> {
    use std::io::{BufRead, BufReader, Write};
    eprintln!("xtask: == tests");
    // The web crate's host build is its client-side model, whose tests run here.
    // `--show-output` prints what passing tests printed too, so a test that reports a skip
    // (a line starting with `SKIPPED`) and passes is seen.
    let mut child = cargo(&[
        "test",
        "--workspace",
        "--exclude",
        "xtask",
        "--locked",
        "--",
        "--show-output",
    ])
    .stdout(std::process::Stdio::piped())
    .spawn()
    .map_err(|e| format!("tests: cannot start cargo: {e}"))?;
    let (mut passed, mut failed, mut ignored) = (0, 0, 0);
    let mut skips = Vec::new();
    let stdout = child.stdout.take().expect("piped");
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("tests: reading cargo's output: {e}"))?;
        let _ = writeln!(out, "{line}");
        if reports_a_skip(&line) {
            skips.push(line.trim().to_owned());
        }
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count_before(rest, " passed");
            failed += count_before(rest, " failed");
            ignored += count_before(rest, " ignored");
        }
    }
    let status = child.wait().map_err(|e| format!("tests: {e}"))?;
    if !status.success() {
        let _ = writeln!(out, "tests: {passed} passed, {failed} failed");
        return Err(format!("tests failed ({status})"));
    }
    // A skipped test is a test that did not run: install what it needs instead.
    if ignored > 0 {
        let _ = writeln!(
            out,
            "tests: {passed} passed, {failed} failed, {ignored} skipped"
        );
        return Err(format!(
            "{ignored} tests were skipped (#[ignore]); every test must run: remove the #[ignore] and install what the test needs"
        ));
    }
    // A test that says it skipped did not test what it is named for, though it passed.
    if !skips.is_empty() {
        let _ = writeln!(
            out,
            "tests: {passed} passed, {failed} failed, {} reported a skip",
            skips.len()
        );
        return Err(format!(
            "{} tests reported a skip, and every test must run (install what it needs, or make it fail with how to fix it):\n  {}",
            skips.len(),
            skips.join("\n  ")
        ));
    }
    Ok((passed, failed))
}

/// Whether a line of test output reports a skip: it starts with `SKIPPED` (the way a test that
/// returns early says so), wherever the test harness indents it.
fn reports_a_skip(line: &str) -> bool {
    line.trim_start().starts_with("SKIPPED")
}

/// The number just before `label` in `ok. 13 passed; 0 failed; …`.
fn count_before(text: &str, label: &str) -> u64 {
    text.find(label)
        .and_then(|end| text[..end].rsplit([' ', '.']).next()?.parse().ok())
        .unwrap_or(0)
}

/// Installs the wasm32 target and the Debian packages the tests use, where missing.
fn install_deps() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("cannot run rustup ({e}); install Rust with rustup"))?;
    if !String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == WASM)
    {
        eprintln!("xtask: adding the {WASM} target (the dashboard is built for it)");
        step(
            "rustup target add",
            command("rustup", &["target", "add", WASM]),
        )?;
    }
    install_debian("the tests", DEBIAN_PACKAGES)?;
    install_axe()?;
    install_mcp_sdk()
}

/// The MCP client of `tests/mcp.rs`, from PyPI, and where it goes (the tests put it on
/// PYTHONPATH).
const MCP_SDK: &str = "mcp==1.30.0";
const MCP_DIR: &str = "target/python-mcp";

/// Installs the Python MCP SDK into `target/python-mcp` with pip when it is missing there.
fn install_mcp_sdk() -> Result<(), String> {
    let dir = root()?.join(MCP_DIR);
    if dir.join("mcp/__init__.py").exists() {
        return Ok(());
    }
    eprintln!("xtask: installing {MCP_SDK} into {}", dir.display());
    pip_install(&dir, MCP_SDK)
}

/// `python3 -m pip install PACKAGE` into `dir` alone (nothing of the system's Python changes).
fn pip_install(dir: &Path, package: &str) -> Result<(), String> {
    let mut pip = command(
        "python3",
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--root-user-action=ignore",
            "--target",
        ],
    );
    pip.arg(dir).arg(package);
    step(
        &format!("pip install {package} (python3 -m pip; Debian: apt-get install python3-pip)"),
        pip,
    )
}

/// The workspace's root.
fn root() -> Result<&'static Path, String> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| "xtask/ has no parent".to_owned())
}

/// Installs axe-core into `target/axe-core` with npm when it is missing there.
fn install_axe() -> Result<(), String> {
    let dir = root()?.join(AXE_DIR);
    if dir.join("node_modules/axe-core/axe.min.js").exists() {
        return Ok(());
    }
    eprintln!("xtask: installing {AXE_CORE} into {}", dir.display());
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut npm = command(
        "npm",
        &["install", "--no-audit", "--no-fund", "--no-save", AXE_CORE],
    );
    npm.arg("--prefix").arg(&dir);
    step("npm install axe-core", npm)
}

/// Installs the Debian `packages` (package, a file it provides) whose file is missing; without
/// root, says which to install for `purpose`.
fn install_debian(purpose: &str, packages: &[(&str, &str)]) -> Result<(), String> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(_, file)| !Path::new(file).exists())
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        return Err(format!(
            "{purpose} need Debian packages that are missing: run `sudo apt-get update && sudo apt-get install -y {list}`, then run this again"
        ));
    }
    eprintln!("xtask: installing {list} from Debian's packages");
    step("apt-get update", command("apt-get", &["update", "-q"]))?;
    let mut install = command(
        "apt-get",
        &["install", "-y", "-q", "--no-install-recommends"],
    );
    install
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive");
    step("apt-get install", install)
}

fn check_shared_dependencies() -> Result<(), String> {
    let out = cargo(&[
        "tree",
        "--package",
        "portscope-shared",
        "--edges",
        "normal",
        "--prefix",
        "none",
        "--locked",
    ])
    .output()
    .map_err(|e| format!("cannot run cargo tree: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let tree = String::from_utf8_lossy(&out.stdout);
    let bad: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| FORBIDDEN_IN_SHARED.contains(name))
        .collect();
    if bad.is_empty() {
        eprintln!("xtask: ok: portscope-shared depends on none of {FORBIDDEN_IN_SHARED:?}");
        Ok(())
    } else {
        Err(format!(
            "portscope-shared must stay serde-only, but it pulls in {bad:?}"
        ))
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn cargo(args: &[&str]) -> Command {
    command(
        &std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
        args,
    )
}

fn command(program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd
}

fn step(name: &str, mut cmd: Command) -> Result<(), String> {
    eprintln!("xtask: == {name}");
    let status = cmd
        .status()
        .map_err(|e| format!("{name}: cannot start {:?}: {e}", cmd.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{name} failed ({status}): {cmd:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_reported_by_a_test_is_found_and_results_are_added_up() {
        assert!(reports_a_skip(
            "SKIPPED: no network namespace (unshare failed)"
        ));
        assert!(reports_a_skip("    SKIPPED nft is missing"));
        assert!(!reports_a_skip("test doctor::x ... ok"));
        assert!(!reports_a_skip("xtask: 0 tests SKIPPED"));
        let rest = "ok. 13 passed; 1 failed; 2 ignored; 0 measured; 0 filtered out";
        assert_eq!(count_before(rest, " passed"), 13);
        assert_eq!(count_before(rest, " failed"), 1);
        assert_eq!(count_before(rest, " ignored"), 2);
    }
}
