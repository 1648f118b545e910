//! The shell's side: `portscope completions` scripts that complete this machine's listening
//! ports and the peers' names (checked in a real bash), and `portscope man` pages that man-db
//! renders.

use std::process::Command;

use crate::support::{Situation, run, run_cli};

/// Runs `script` in bash with the binary's directory first on the PATH (the completion
/// script calls `portscope` there) and `env`; returns its stdout.
#[track_caller]
fn bash(script: &str, env: &[(&str, &std::path::Path)]) -> String {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_portscope"))
        .parent()
        .unwrap()
        .to_owned();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("bash");
    command
        .args(["--norc", "-c", script])
        .env("PATH", path)
        .envs(env.iter().map(|(k, v)| (k, v.as_os_str())));
    let (code, out, err) = run(command);
    assert_eq!(code, 0, "bash: {out}{err}");
    out
}

/// What bash's completion function offers for `words` (the last one being completed).
#[track_caller]
fn complete(words: &[&str], env: &[(&str, &std::path::Path)]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        r#"source <(portscope completions bash)
COMP_WORDS=({words})
COMP_CWORD={cword}
COMP_TYPE=9
_clap_complete_portscope portscope '{current}' '{previous}'
printf '%s\n' "${{COMPREPLY[@]}}""#,
        words = quoted.join(" "),
        cword = words.len() - 1,
        current = words[words.len() - 1],
        previous = words[words.len() - 2],
    );
    bash(&script, env)
        .lines()
        .map(|l| l.trim().to_owned())
        .collect()
}

/// After `who`, `why`, `kill`, `wait` and `history` bash offers the ports that listen on this
/// machine now (and a port that closes is no longer offered); after `peer remove`, the peers'
/// names from the peers file.
#[test]
fn bash_completes_listening_ports_and_peer_names() {
    let server = Situation::start(&["listen", "127.0.0.1"]);
    let port = server.port.to_string();
    for command in ["who", "why", "kill", "wait", "history", "bind"] {
        let offered = complete(&["portscope", command, ""], &[]);
        assert!(
            offered.contains(&port),
            "`portscope {command} <TAB>` offers {port}: {offered:?}"
        );
    }
    // Only the ports that start with what is typed.
    let prefix = &port[..port.len() - 1];
    let offered = complete(&["portscope", "who", prefix], &[]);
    assert!(offered.contains(&port), "{offered:?}");
    assert!(offered.iter().all(|o| o.starts_with(prefix)), "{offered:?}");
    drop(server);
    let offered = complete(&["portscope", "who", ""], &[]);
    assert!(!offered.contains(&port), "a closed port: {offered:?}");

    // Subcommands complete as usual.
    let offered = complete(&["portscope", "wh"], &[]);
    assert_eq!(offered, ["who", "why"]);

    // The peers' names.
    let config = tempfile::tempdir().unwrap();
    let mut add = Command::new(env!("CARGO_BIN_EXE_portscope"));
    add.args([
        "peer",
        "add",
        "build-box",
        "https://192.0.2.10:7678/",
        "--fingerprint",
        &["AB"; 32].join(":"),
    ])
    .env("XDG_CONFIG_HOME", config.path())
    .env("PORTSCOPE_PEER_TOKEN", "t".repeat(32));
    let (code, out, err) = run(add);
    assert_eq!(code, 0, "{out}{err}");
    let env = [("XDG_CONFIG_HOME", config.path())];
    let names = |offered: Vec<String>| -> Vec<String> {
        offered
            .into_iter()
            .filter(|o| !o.starts_with('-'))
            .collect()
    };
    let offered = names(complete(&["portscope", "peer", "remove", ""], &env));
    assert_eq!(offered, ["build-box"]);
    let mut remove = Command::new(env!("CARGO_BIN_EXE_portscope"));
    remove
        .args(["peer", "remove", "build-box"])
        .env("XDG_CONFIG_HOME", config.path());
    let (code, out, err) = run(remove);
    assert_eq!(code, 0, "{out}{err}");
    assert!(names(complete(&["portscope", "peer", "remove", ""], &env)).is_empty());

    // Every shell clap_complete knows gets a script that calls portscope back.
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let (code, out, err) = run_cli(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains("COMPLETE"), "{shell}: {out}");
    }
}

/// `portscope man why | man -l -` renders with man-db; `--out DIR` writes every page; an
/// unknown page is a usage error that lists the pages.
#[test]
fn man_pages_render_with_man_db() {
    let render = |page: &std::path::Path| {
        let mut man = Command::new("man");
        man.args(["-P", "cat", "-l"])
            .arg(page)
            .env("MANWIDTH", "100")
            .env("MAN_KEEP_FORMATTING", "0");
        let (code, out, err) = run(man);
        assert_eq!(
            code,
            0,
            "man -l {}: {err} (man-db comes with `cargo xtask test`)",
            page.display()
        );
        // man's bold and underline are overstrikes (`N\x08N`): the plain text is what remains.
        let mut plain = String::new();
        for c in out.chars() {
            if c == '\x08' {
                plain.pop();
            } else {
                plain.push(c);
            }
        }
        plain
    };
    let dir = tempfile::tempdir().unwrap();
    let (code, why, err) = run_cli(&["man", "why"]);
    assert_eq!(code, 0, "{err}");
    let file = dir.path().join("why.1");
    std::fs::write(&file, &why).unwrap();
    let page = render(&file);
    assert!(page.contains("portscope-why"), "{page}");
    assert!(page.contains("Why a connection fails"), "{page}");
    assert!(page.contains("--timeout"), "{page}");

    let out = dir.path().join("man1");
    let (code, _, err) = run_cli(&["man", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for name in [
        "portscope.1",
        "portscope-who.1",
        "portscope-mcp.1",
        "portscope-peer-add.1",
    ] {
        let page = render(&out.join(name));
        assert!(page.contains("portscope"), "{name}: {page}");
    }
    let top = render(&out.join("portscope.1"));
    assert!(top.contains("portscope-why(1)"), "{top}");

    let (code, _, err) = run_cli(&["man", "nope"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("there is no page `nope`"), "{err}");
    assert!(err.contains("peer-add"), "{err}");
}
