//! Windows: sockets and their owning pids from the IP Helper tables and process details from
//! sysinfo (both through `portable.rs`), the dynamic port range from `netsh`, stopping a process
//! through `taskkill` (a close request) or `TerminateProcess`.
//!
//! # Platform-specific behavior
//!
//! Windows has no signals, no process groups and no privileged ports. `TERM`, `INT` and `QUIT`
//! ask the program to close (`taskkill /PID n`, which posts `WM_CLOSE` to its windows: a console
//! program without a window has no such way, and Windows says it can only be stopped by
//! force); `KILL` is `TerminateProcess`. The other signals do not exist here. Users are
//! security identifiers, not numbers: sockets and processes carry no uid, the user is a name.
//! The private files (history, TLS key, peers file) rely on the user profile's access rules;
//! their ACLs are not read.

use std::collections::HashMap;
use std::fs::{DirBuilder, File, Metadata, OpenOptions};
use std::path::{Path, PathBuf};

pub use super::portable::{System, hostname, is_running, local_addresses};
use crate::ports::{self, PortSettings};

/// Nothing to do: the one-arena setting is glibc's malloc's.
pub fn use_one_malloc_arena() {}

/// The ports Windows hands out to outgoing connections (`netsh int ipv4 show dynamicport
/// tcp`); the rest as Windows has them: no privileged ports, no reserved list read.
pub fn port_settings() -> PortSettings {
    let ephemeral = std::process::Command::new("netsh")
        .args(["int", "ipv4", "show", "dynamicport", "tcp"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| ports::parse_netsh_dynamic_port(&String::from_utf8_lossy(&o.stdout)));
    PortSettings {
        ephemeral,
        reserved: Vec::new(),
        // Any user may bind any port on Windows.
        unprivileged_start: 0,
        // Windows makes IPv6 sockets IPv6-only unless the program says otherwise.
        bindv6only: true,
    }
}

/// Any user may bind any port on Windows.
pub fn can_bind_privileged() -> bool {
    true
}

/// Containers run in a virtual machine (WSL 2 or Hyper-V) whose sockets this agent cannot read.
pub fn listening_ports_in(pid: u32) -> Result<Vec<u16>, super::InsideError> {
    Err(super::InsideError::InAVirtualMachine {
        pid,
        system: "Windows",
    })
}

/// Windows users have no numeric id (`System::euid` says `None`).
/// Windows users have no numeric uid: nothing is a system account by number (the dashboard
/// stops no process there: it cannot compare users).
pub fn first_user_uid() -> u32 {
    0
}

/// Windows users have no numeric uid.
pub fn uid_of_user(_name: &str) -> Option<u32> {
    None
}

pub fn effective_uid() -> Option<u32> {
    None
}

/// Windows has no process groups.
pub fn process_group(_pid: u32) -> Option<u32> {
    None
}

/// Whether this process runs elevated (as an administrator): `net session` answers only then.
pub fn is_root() -> bool {
    std::process::Command::new("net")
        .arg("session")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Windows's TCP tables carry no accept queue.
pub fn accept_queues() -> HashMap<u64, u32> {
    HashMap::new()
}

/// Windows has no process groups: no members.
pub fn group_members(_pgrp: u32) -> Vec<u32> {
    Vec::new()
}

/// What `kill` can do to a process on Windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WinSignal {
    /// Ask it to close (`taskkill /PID n`: `WM_CLOSE` to its windows).
    Close,
    /// `TerminateProcess`.
    Terminate,
}

/// A signal; `None` only checks that it could be sent (the process exists).
pub type Signal = Option<WinSignal>;

/// Who receives a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalTarget {
    Process(u32),
    /// Never made on Windows (no process groups); refused when asked for.
    Group(u32),
}

/// The signals [`signal_by_name`] knows, as a user-facing list.
pub const SIGNAL_NAMES: &str = "TERM, INT or QUIT (a close request) or KILL (on Windows)";

/// A signal by its name, with or without `SIG`: `TERM`, `INT` and `QUIT` ask the program to
/// close, `KILL` terminates it; the others do not exist on Windows.
pub fn signal_by_name(name: &str) -> Option<WinSignal> {
    let name = name.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    match name {
        "TERM" | "INT" | "QUIT" => Some(WinSignal::Close),
        "KILL" => Some(WinSignal::Terminate),
        _ => None,
    }
}

/// Sends a "signal" to a process.
pub fn send_signal(target: SignalTarget, signal: Signal) -> std::io::Result<()> {
    let SignalTarget::Process(pid) = target else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "Windows has no process groups",
        ));
    };
    match signal {
        None if is_running(pid) => Ok(()),
        None => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
        Some(WinSignal::Terminate) => terminate(pid),
        Some(WinSignal::Close) => {
            let out = std::process::Command::new("taskkill")
                .args(["/PID", &pid.to_string()])
                .output()?;
            if out.status.success() {
                Ok(())
            } else {
                let said = format!(
                    "{} {}",
                    String::from_utf8_lossy(&out.stderr).trim(),
                    String::from_utf8_lossy(&out.stdout).trim()
                );
                let said = said.trim();
                Err(std::io::Error::other(format!(
                    "the close request failed (taskkill: {}): a console program without a \
                     window has no graceful stop on Windows; use --signal KILL",
                    if said.is_empty() { "failed" } else { said }
                )))
            }
        }
    }
}

/// Stops a process at once (`TerminateProcess`, through sysinfo).
fn terminate(pid: u32) -> std::io::Result<()> {
    let mut system = sysinfo::System::new();
    let id = sysinfo::Pid::from_u32(pid);
    system.refresh_processes_specifics(
        sysinfo::ProcessesToUpdate::Some(&[id]),
        true,
        sysinfo::ProcessRefreshKind::nothing(),
    );
    let process = system
        .process(id)
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
    if process.kill() {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("the system refused to stop pid {pid}"),
        ))
    }
}

/// A `DirBuilder` that makes missing directories (private through the user profile's access
/// rules, not through modes, which Windows has not).
pub fn private_dir_builder() -> DirBuilder {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    builder
}

/// `OpenOptions` that make a new file (never an existing one).
pub fn new_private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    options
}

/// Opens a file for reading without following a symbolic link (or other reparse point) at its
/// path.
pub fn open_no_follow(path: &Path) -> std::io::Result<File> {
    use std::os::windows::fs::OpenOptionsExt;
    /// `FILE_FLAG_OPEN_REPARSE_POINT`: open the link itself, never its target.
    const OPEN_REPARSE_POINT: u32 = 0x0020_0000;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(OPEN_REPARSE_POINT)
        .open(path)?;
    if file.metadata()?.file_type().is_symlink() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a symbolic link",
        ));
    }
    Ok(file)
}

/// Opens `path` for reading without following a link at its last level. Windows keeps no
/// per-level walk here: a reparse point higher up is followed (README's platform limits).
pub fn open_without_links(path: &Path) -> std::io::Result<File> {
    open_no_follow(path)
}

/// The mount point of `path`'s file system: not told on Windows (a hung lookup marks its own
/// directory only).
pub fn mount_point_of(_path: &Path) -> Option<PathBuf> {
    None
}

/// A fresh directory under the system's temporary one (in the user's profile), kept.
pub fn private_temp_dir(prefix: &str) -> std::io::Result<PathBuf> {
    Ok(tempfile::Builder::new().prefix(prefix).tempdir()?.keep())
}

/// Where per-user files go when neither the XDG variables nor `HOME` say: `%LOCALAPPDATA%`.
pub fn app_data_dir() -> Option<PathBuf> {
    std::env::var_os("LOCALAPPDATA")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The names this machine gives addresses without asking DNS.
pub fn hosts_file() -> PathBuf {
    let root = std::env::var_os("SystemRoot").unwrap_or_else(|| r"C:\Windows".into());
    PathBuf::from(root).join(r"System32\drivers\etc\hosts")
}

/// Windows has no permission bits: access rules (ACLs) are not read.
pub fn open_to_others(_meta: &Metadata) -> Option<u32> {
    None
}

/// Windows has no permission bits: access rules (ACLs) are not read.
pub fn writable_by_others(_meta: &Metadata) -> Option<u32> {
    None
}

/// Windows has no permission bits: the profile directory's access rules keep files private.
pub fn make_private(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// `OpenOptions` for a lock file: read and write, made when missing, never truncated on open.
pub fn private_file_to_lock() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    options
}

/// There is no `sudo -E` to see through on Windows: `None` (the environment is used).
pub fn own_home() -> Option<PathBuf> {
    None
}

/// Windows files have no numeric owner here: access rules (ACLs) are not read.
pub fn is_ours(_meta: &Metadata) -> bool {
    true
}
