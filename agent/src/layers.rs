//! The layers ARCHITECTURE.md draws, checked: the core (the OS seam, the collector, the model
//! and its events, owners, projects, containers, ports' names) imports nothing above it, and
//! clap and its argument structs stay in the command line (`cli.rs`, `main.rs`, `commands/`,
//! and `serve.rs` for the daemon's).

use std::path::{Path, PathBuf};

/// The core's modules, as paths under `src/`.
const CORE: &[&str] = &[
    "os",
    "collector.rs",
    "model.rs",
    "live.rs",
    "events",
    "owners.rs",
    "projects",
    "containers",
    "ports.rs",
];

/// What the core may import of this crate (besides itself): small helpers with no layer.
const CORE_MAY_USE: &[&str] = &["text"];

fn files(path: &Path) -> Vec<PathBuf> {
    if path.is_dir() {
        let mut all: Vec<PathBuf> = std::fs::read_dir(path)
            .unwrap()
            .flat_map(|e| files(&e.unwrap().path()))
            .collect();
        all.sort();
        all
    } else if path.extension().is_some_and(|e| e == "rs") {
        vec![path.to_owned()]
    } else {
        Vec::new()
    }
}

/// Every `crate::NAME` a file names, with its line.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for (i, _) in line.match_indices("crate::") {
            let name: String = line[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push((n + 1, name));
        }
    }
    found
}

#[test]
fn the_core_imports_nothing_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let core: Vec<String> = CORE
        .iter()
        .map(|m| m.trim_end_matches(".rs").to_owned())
        .collect();
    let mut wrong = Vec::new();
    for module in CORE {
        for file in files(&src.join(module)) {
            let text = std::fs::read_to_string(&file).unwrap();
            for (line, name) in crate_paths(&text) {
                if !core.contains(&name) && !CORE_MAY_USE.contains(&name.as_str()) {
                    wrong.push(format!("{}:{line}: crate::{name}", file.display()));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the core imports layers above it:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn clap_stays_in_the_command_line() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong = Vec::new();
    for file in files(&src) {
        let rel = file.strip_prefix(&src).unwrap();
        let allowed = rel == Path::new("cli.rs")
            || rel == Path::new("main.rs")
            || rel == Path::new("layers.rs")
            || rel.starts_with("commands");
        // The binary's own modules take the argument structs too: `serve` is the daemon's.
        let takes_args = allowed || rel == Path::new("serve.rs");
        let text = std::fs::read_to_string(&file).unwrap();
        if !allowed && (text.contains("clap::") || text.contains("use clap")) {
            wrong.push(format!("{}: clap", rel.display()));
        }
        if !takes_args && crate_paths(&text).iter().any(|(_, name)| name == "cli") {
            wrong.push(format!("{}: crate::cli", rel.display()));
        }
    }
    assert!(wrong.is_empty(), "clap outside the command line: {wrong:?}");
}
