//! Compiles the kernel probes (`src/os/kernel/portscope.bpf.c`) with clang for the BPF target,
//! on Linux only. Without clang or the libbpf headers the agent still builds: it is then built
//! without kernel events (`cfg(portscope_bpf)` unset) and polls, saying at start how to get
//! them.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(portscope_bpf)");
    let source = "src/os/kernel/portscope.bpf.c";
    println!("cargo::rerun-if-changed={source}");
    println!("cargo::rerun-if-env-changed=PORTSCOPE_CLANG");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out.join("portscope.bpf.o");
    let clang = std::env::var("PORTSCOPE_CLANG").unwrap_or_else(|_| "clang".into());
    let arch = match std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86_64-linux-gnu",
        Ok("aarch64") => "aarch64-linux-gnu",
        _ => "",
    };
    let mut command = Command::new(&clang);
    command.args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"]);
    if !arch.is_empty() {
        // <asm/types.h>, which <linux/types.h> includes, lives under the multiarch directory.
        command.arg(format!("-I/usr/include/{arch}"));
    }
    command.arg("-c").arg(source).arg("-o").arg(&object);
    match command.output() {
        Ok(done) if done.status.success() => {
            println!("cargo::rustc-cfg=portscope_bpf");
        }
        Ok(done) => {
            rerun_when_installed();
            let why = String::from_utf8_lossy(&done.stderr);
            let first = why.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            println!(
                "cargo::warning=portscope is built without kernel events (it will poll): \
                 {clang} could not compile the probes: {first} — install clang and libbpf-dev \
                 (apt-get install clang libbpf-dev) and build again"
            );
        }
        Err(e) => {
            rerun_when_installed();
            println!(
                "cargo::warning=portscope is built without kernel events (it will poll): \
                 no {clang} ({e}) — install clang and libbpf-dev (apt-get install clang \
                 libbpf-dev) and build again"
            );
        }
    }
}

/// Built without the probes: build again once clang or the headers are installed (either
/// changes `/usr/bin`), not on every build.
fn rerun_when_installed() {
    for dir in ["/usr/bin", "/usr/include/bpf"] {
        if std::path::Path::new(dir).exists() {
            println!("cargo::rerun-if-changed={dir}");
        }
    }
}
