//! The layers ARCHITECTURE.md draws, checked. The compiler keeps a crate from naming one that
//! is not among its dependencies; these tests keep the dependencies themselves in order: each
//! library crate depends only on the crates below it (the core on the protocol alone, the
//! history on the core, the doctor on both, the server on all three), and none of them on
//! clap or anyhow, which stay in this binary: the libraries take plain types and return
//! error types of their own (thiserror), and the command line turns both into words.

use std::path::Path;

/// Each library crate (its folder beside `agent/`) and the crates of ours it may depend on.
const LAYERS: &[(&str, &[&str])] = &[
    ("core", &["portscope-shared"]),
    ("history", &["portscope-shared", "portscope-core"]),
    (
        "doctor",
        &["portscope-shared", "portscope-core", "portscope-history"],
    ),
    (
        "server",
        &[
            "portscope-shared",
            "portscope-core",
            "portscope-history",
            "portscope-doctor",
        ],
    ),
];

/// The names in one dependency table of a manifest: `[dependencies]`, and the same table of
/// each `[target.'cfg(…)']`.
fn dependencies(manifest: &toml::Table, table: &str) -> Vec<String> {
    let mut names: Vec<String> = manifest
        .get(table)
        .and_then(toml::Value::as_table)
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(targets) = manifest.get("target").and_then(toml::Value::as_table) {
        for target in targets.values() {
            if let Some(t) = target.get(table).and_then(toml::Value::as_table) {
                names.extend(t.keys().cloned());
            }
        }
    }
    names
}

fn manifest(dir: &str) -> toml::Table {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let path = root.join(dir).join("Cargo.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn each_library_crate_depends_only_on_the_layers_below_it() {
    let mut wrong = Vec::new();
    for (dir, allowed) in LAYERS {
        let manifest = manifest(dir);
        for table in ["dependencies", "build-dependencies"] {
            for name in dependencies(&manifest, table) {
                if name.starts_with("portscope") && !allowed.contains(&name.as_str()) {
                    wrong.push(format!("{dir}/Cargo.toml [{table}]: {name}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "a crate depends on a layer above or beside it:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn clap_and_anyhow_stay_in_the_binary() {
    let mut wrong = Vec::new();
    for (dir, _) in LAYERS {
        let manifest = manifest(dir);
        for table in ["dependencies", "dev-dependencies", "build-dependencies"] {
            if dependencies(&manifest, table).iter().any(|n| n == "clap") {
                wrong.push(format!("{dir}/Cargo.toml [{table}]"));
            }
        }
    }
    assert!(wrong.is_empty(), "clap outside the binary: {wrong:?}");
    for (dir, _) in LAYERS {
        if dependencies(&manifest(dir), "dependencies")
            .iter()
            .any(|n| n == "anyhow")
        {
            wrong.push(format!("{dir}/Cargo.toml [dependencies]"));
        }
    }
    assert!(
        wrong.is_empty(),
        "anyhow in a library (its errors are types of its own): {wrong:?}"
    );
    assert!(
        dependencies(&manifest("agent"), "dependencies").contains(&"clap".to_owned()),
        "the binary's manifest was not read right"
    );
}
