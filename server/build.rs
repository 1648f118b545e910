//! Builds the dashboard: compiles `web/` for wasm32 with its own Cargo invocation and target
//! directory, then runs wasm-bindgen on it into `OUT_DIR/web`, where `http/assets.rs` embeds it.
//!
//! The nested Cargo must not share the outer target directory (it would wait forever on the
//! build lock) nor inherit flags meant for the host build.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

type BoxError = Box<dyn std::error::Error>;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Variables of the outer build that would break or slow the nested one.
const SCRUBBED_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "CARGO_BUILD_TARGET",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
];

fn main() -> Result<(), BoxError> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .parent()
        .ok_or("server/ has no parent")?
        .to_path_buf();
    for path in [
        "web/src",
        "web/Cargo.toml",
        "shared/src",
        "shared/Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    ensure_wasm_target()?;
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("web");
    build_wasm(&root, &target_dir)?;

    let wasm = target_dir.join(format!("{WASM_TARGET}/wasm-release/portscope_web.wasm"));
    let out = PathBuf::from(env::var("OUT_DIR")?).join("web");
    std::fs::create_dir_all(&out)?;
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .web(true)?
        // The library defaults this to true, unlike the CLI; the browser then cannot init().
        .omit_default_module_path(false)
        .typescript(false)
        .generate(&out)
        .map_err(|e| format!("wasm-bindgen failed on {}: {e:#}", wasm.display()))?;
    // Served to browsers that accept gzip: the module is about a third of its size compressed.
    for name in ["portscope_web_bg.wasm", "portscope_web.js"] {
        gzip(&out.join(name))?;
    }
    Ok(())
}

/// Writes `path.gz` beside `path`, at the best compression.
fn gzip(path: &Path) -> Result<(), BoxError> {
    use std::io::Write;
    let data = std::fs::read(path)?;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&data)?;
    let mut gz = path.as_os_str().to_owned();
    gz.push(".gz");
    std::fs::write(gz, encoder.finish()?)?;
    Ok(())
}

/// Adds the wasm32 target with rustup when the toolchain lacks it (rustup does not do it on its
/// own when `RUSTUP_AUTO_INSTALL=0`).
fn ensure_wasm_target() -> Result<(), BoxError> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc).args(["--print", "sysroot"]).output()?;
    let sysroot = PathBuf::from(String::from_utf8(sysroot.stdout)?.trim());
    if sysroot.join("lib/rustlib").join(WASM_TARGET).exists() {
        return Ok(());
    }
    println!(
        "cargo:warning=installing the {WASM_TARGET} target with rustup (needed for the dashboard)"
    );
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        _ => Err(format!(
            "the Rust target {WASM_TARGET} is missing and `rustup target add {WASM_TARGET}` failed; \
             run it by hand, then build again"
        )
        .into()),
    }
}

fn build_wasm(root: &Path, target_dir: &Path) -> Result<(), BoxError> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args([
        "build",
        "--package",
        "portscope-web",
        "--lib",
        "--target",
        WASM_TARGET,
        "--profile",
        "wasm-release",
        "--locked",
        "--target-dir",
    ]);
    cmd.arg(target_dir);
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    // stdout of a build script is read by Cargo as directives: send the nested output to stderr.
    cmd.stdout(std::io::stderr());
    let status = cmd.status()?;
    if !status.success() {
        return Err(
            format!("building the dashboard (web/) for {WASM_TARGET} failed: {status}").into(),
        );
    }
    Ok(())
}
