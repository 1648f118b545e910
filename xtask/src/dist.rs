//! `cargo xtask dist`: the Debian package `target/dist/portscope_<version>_<arch>.deb`, with the
//! release binary, its man pages (`portscope man --out`), its completions for bash, zsh and fish
//! in the directories those shells read, and the systemd user unit (`packaging/`). Built with
//! Debian's own `dpkg-deb`, its dependencies found by `dpkg-shlibdeps`: cargo-deb would do the
//! same after compiling itself (minutes on every fresh machine) for a layout this small.
//!
//! `check` installs the package on this machine as a user would (`dpkg -i`), checks what it put
//! in place, and removes it again. `man DIR` writes the man pages alone.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cargo, command, root, step};

/// An I/O error said with the path it concerns.
fn io(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

/// What `program args` printed, trimmed; an error saying what failed otherwise.
fn output(mut cmd: Command) -> Result<String, String> {
    let what = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Writes what `bin args` prints to `file`.
fn write_output(bin: &Path, args: &[&str], file: &Path) -> Result<(), String> {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    let text = output(cmd)?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(file, format!("{text}\n")).map_err(|e| format!("{}: {e}", file.display()))
}

/// `cargo xtask man DIR`: every page, for packagers.
pub fn man(args: &[String]) -> Result<(), String> {
    let [dir] = args else {
        return Err("usage: cargo xtask man DIR".into());
    };
    let mut run = cargo(&[
        "run",
        "--quiet",
        "--locked",
        "-p",
        "portscope",
        "--",
        "man",
        "--out",
    ]);
    run.arg(dir);
    step("portscope man --out", run)
}

/// Builds the package and returns its path.
pub fn dist() -> Result<PathBuf, String> {
    let root = root()?;
    step(
        "cargo build --release",
        cargo(&["build", "--release", "--locked", "-p", "portscope"]),
    )?;
    let bin = root.join("target/release/portscope");
    let mut ask = Command::new(&bin);
    ask.arg("--version");
    let version = output(ask)?.trim_start_matches("portscope ").to_owned();
    let arch = output(command("dpkg", &["--print-architecture"]))?;
    let name = format!("portscope_{version}_{arch}");
    let stage = root.join("target/dist").join(&name);
    let _ = std::fs::remove_dir_all(&stage);

    let usr_bin = stage.join("usr/bin");
    std::fs::create_dir_all(&usr_bin).map_err(io(&usr_bin))?;
    let installed = usr_bin.join("portscope");
    std::fs::copy(&bin, &installed).map_err(io(&installed))?;
    let mut strip = command("strip", &["--strip-unneeded"]);
    strip.arg(&installed);
    step("strip", strip)?;

    let man = stage.join("usr/share/man/man1");
    let mut pages = Command::new(&installed);
    pages.args(["man", "--out"]).arg(&man);
    step("portscope man --out", pages)?;
    let mut gzip = command("gzip", &["-9n"]);
    for page in std::fs::read_dir(&man).map_err(io(&man))? {
        gzip.arg(page.map_err(io(&man))?.path());
    }
    step("gzip the man pages", gzip)?;

    for (shell, file) in [
        ("bash", "usr/share/bash-completion/completions/portscope"),
        ("zsh", "usr/share/zsh/vendor-completions/_portscope"),
        ("fish", "usr/share/fish/vendor_completions.d/portscope.fish"),
    ] {
        write_output(&installed, &["completions", shell], &stage.join(file))?;
    }

    let unit = stage.join("usr/lib/systemd/user/portscope.service");
    std::fs::create_dir_all(unit.parent().unwrap_or(&stage)).map_err(io(&unit))?;
    std::fs::copy(root.join("packaging/portscope.service"), &unit).map_err(io(&unit))?;

    let doc = stage.join("usr/share/doc/portscope/copyright");
    std::fs::create_dir_all(doc.parent().unwrap_or(&stage)).map_err(io(&doc))?;
    std::fs::write(&doc, COPYRIGHT).map_err(io(&doc))?;

    control(&stage, &installed, &version, &arch)?;
    let deb = root.join("target/dist").join(format!("{name}.deb"));
    let mut build = command("dpkg-deb", &["--root-owner-group", "--build"]);
    build.arg(&stage).arg(&deb);
    step("dpkg-deb --build", build)?;
    eprintln!("xtask: built {}", deb.display());
    Ok(deb)
}

const COPYRIGHT: &str = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: portscope

Files: *
Copyright: the portscope developers
License: MIT or Apache-2.0
 On Debian systems the Apache License 2.0 is in /usr/share/common-licenses/Apache-2.0.
";

/// Writes `DEBIAN/control`: the binary's shared-library dependencies as `dpkg-shlibdeps`
/// finds them, and the installed size.
fn control(stage: &Path, binary: &Path, version: &str, arch: &str) -> Result<(), String> {
    // dpkg-shlibdeps reads a source package's debian/control: give it an empty one.
    let scratch = stage.with_extension("shlibdeps");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(scratch.join("debian")).map_err(|e| e.to_string())?;
    std::fs::write(scratch.join("debian/control"), "").map_err(|e| e.to_string())?;
    let mut shlibdeps = command("dpkg-shlibdeps", &["-O"]);
    shlibdeps.arg(binary).current_dir(&scratch);
    let said = output(shlibdeps)?;
    let _ = std::fs::remove_dir_all(&scratch);
    let depends = said
        .lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .ok_or_else(|| format!("dpkg-shlibdeps said no dependencies: {said}"))?;
    let size_kib = output({
        let mut du = command("du", &["-sk", "--exclude=DEBIAN"]);
        du.arg(stage);
        du
    })?
    .split_whitespace()
    .next()
    .unwrap_or("0")
    .to_owned();
    let control = format!(
        "Package: portscope
Version: {version}
Architecture: {arch}
Maintainer: portscope developers <portscope@localhost>
Installed-Size: {size_kib}
Depends: {depends}
Section: net
Priority: optional
Description: who holds a port, and why a connection fails
 A local socket agent with a live dashboard: every TCP and UDP socket and its
 process, the doctor (who, why, bind, free, kill, wait), port history, an MCP
 server for coding assistants, and shell completions that know your ports.
"
    );
    let dir = stage.join("DEBIAN");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(dir.join("control"), control).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Installs `deb` with dpkg, checks what a user relies on, and removes it. Returns how many
/// checks passed (each failure is an error).
pub fn check(deb: &Path) -> Result<u64, String> {
    // Never replace (and then remove) a portscope someone installed on this machine.
    if let Ok(status) = output(command(
        "dpkg-query",
        &["--show", "--showformat=${Status} ${Version}", "portscope"],
    )) && status.contains("install ok installed")
    {
        return Err(format!(
            "the package check installs portscope and removes it again, but a portscope package is installed here ({status}): `sudo dpkg -r portscope` first, or check {} by hand",
            deb.display()
        ));
    }
    let mut install = command("dpkg", &["-i"]);
    install.arg(deb);
    // Removed again whatever happened, a half-done install included.
    let result = step("dpkg -i", install).and_then(|()| installed_checks());
    step("dpkg -r", command("dpkg", &["-r", "portscope"]))?;
    result
}

fn installed_checks() -> Result<u64, String> {
    let mut passed = 0;
    // The package's binary, not another `portscope` earlier on the PATH.
    let version = output(command("/usr/bin/portscope", &["--version"]))?;
    if !version.starts_with("portscope ") {
        return Err(format!("`portscope --version` said {version:?}"));
    }
    passed += 1;
    let mut man = command("man", &["-P", "cat", "portscope-why"]);
    man.env("MANWIDTH", "100");
    let page = output(man)?;
    if !page.contains("connection") {
        return Err(format!("`man portscope-why` said: {page}"));
    }
    passed += 1;
    for file in [
        "/usr/share/bash-completion/completions/portscope",
        "/usr/share/zsh/vendor-completions/_portscope",
        "/usr/share/fish/vendor_completions.d/portscope.fish",
    ] {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
        if !text.contains("COMPLETE") {
            return Err(format!("{file} is not portscope's completion script"));
        }
        passed += 1;
    }
    // As the user manager reads it (it needs a runtime directory of its own): the unit's
    // syntax, its binary and the man page its Documentation= names.
    let unit = "/usr/lib/systemd/user/portscope.service";
    let runtime = std::env::temp_dir().join(format!("portscope-verify-{}", std::process::id()));
    std::fs::create_dir_all(&runtime).map_err(io(&runtime))?;
    let mut verify = command("systemd-analyze", &["verify", "--user", unit]);
    verify.env("XDG_RUNTIME_DIR", &runtime);
    let verified = output(verify);
    let _ = std::fs::remove_dir_all(&runtime);
    verified?;
    passed += 1;
    Ok(passed)
}
