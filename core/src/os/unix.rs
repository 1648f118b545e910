//! Unix (Linux and macOS): private files by permission bits and the owner's uid, who this
//! process runs as, and signals for `kill`.
//!
//! The history, the TLS key, the peers file, the local socket's directory and `--open`'s link
//! hold secrets or other users' command lines: they are made 0600 in 0700 directories, and a
//! secrets file is refused when others may read it or it is not ours.

use std::fs::{DirBuilder, File, Metadata, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A `DirBuilder` that makes missing directories, new ones 0700.
pub fn private_dir_builder() -> DirBuilder {
    let mut builder = DirBuilder::new();
    builder.recursive(true).mode(0o700);
    builder
}

/// `OpenOptions` that make a new file (never an existing one), 0600.
pub fn new_private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    options
}

/// Opens a file for reading without following a symbolic link at its path and without
/// blocking on a FIFO someone put there.
pub fn open_no_follow(path: &Path) -> std::io::Result<File> {
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    OpenOptions::new()
        .read(true)
        .custom_flags(i32::try_from(flags.bits()).unwrap_or_default())
        .open(path)
}

/// Opens `path` (absolute, without `..`) for reading without following a symbolic link at any
/// level: each directory from the root down is opened relative to the one above it with
/// `O_NOFOLLOW`, so a directory its owner swapped for a link cannot send a root agent's read
/// elsewhere; the file itself is opened without blocking on a FIFO.
pub fn open_without_links(path: &Path) -> std::io::Result<File> {
    use rustix::fs::{CWD, Mode, OFlags, openat};
    use std::path::Component;
    let unfit = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not an absolute path without `..`",
        )
    };
    let mut parts = path.components();
    if parts.next() != Some(Component::RootDir) {
        return Err(unfit());
    }
    let names = parts
        .map(|part| match part {
            Component::Normal(name) => Ok(name),
            _ => Err(unfit()),
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let (last, dirs) = names.split_last().ok_or_else(unfit)?;
    // Linux opens the directories on the way as paths only (no read permission needed).
    #[cfg(target_os = "linux")]
    let walk = OFlags::PATH;
    #[cfg(not(target_os = "linux"))]
    let walk = OFlags::RDONLY;
    let through = walk | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir = openat(CWD, "/", through, Mode::empty())?;
    for name in dirs {
        dir = openat(&dir, *name, through, Mode::empty())?;
    }
    let file = openat(
        &dir,
        *last,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(File::from(file))
}

/// A fresh directory under the system's temporary one, 0700, kept (the caller removes it).
pub fn private_temp_dir(prefix: &str) -> std::io::Result<PathBuf> {
    Ok(tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()?
        .keep())
}

/// The permission bits of a file that users other than its owner may use (`mode & 0o077`
/// non-zero), else `None`.
pub fn open_to_others(meta: &Metadata) -> Option<u32> {
    let mode = meta.mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// The permission bits of a file or directory others than its owner may write (`mode & 0o022`
/// non-zero), else `None`.
pub fn writable_by_others(meta: &Metadata) -> Option<u32> {
    let mode = meta.mode() & 0o777;
    (mode & 0o022 != 0).then_some(mode)
}

/// Makes an existing file readable and writable by its owner alone (0600).
pub fn make_private(path: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// `OpenOptions` for a lock file: read and write, made 0600 when missing, never truncated on
/// open, never through a symbolic link.
pub fn private_file_to_lock() -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or_default());
    options
}

/// The home directory of this process's effective user, from the user database (not `HOME`,
/// which `sudo -E` keeps as the invoking user's).
#[cfg(target_os = "linux")]
pub fn own_home() -> Option<PathBuf> {
    use uzers::os::unix::UserExt;
    uzers::get_user_by_uid(euid()).map(|u| u.home_dir().to_owned())
}

/// The home directory of this process's effective user: root's is `/var/root` on macOS; another
/// user's is not looked up (`None`: `HOME` is used).
#[cfg(target_os = "macos")]
pub fn own_home() -> Option<PathBuf> {
    (euid() == 0).then(|| PathBuf::from("/var/root"))
}

/// Whether the file belongs to this process's effective user.
pub fn is_ours(meta: &Metadata) -> bool {
    meta.uid() == euid()
}

/// Where per-user files go when neither the XDG variables nor `HOME` say: nowhere else on Unix.
pub fn app_data_dir() -> Option<PathBuf> {
    None
}

/// The names this machine gives addresses without asking DNS.
pub fn hosts_file() -> PathBuf {
    PathBuf::from("/etc/hosts")
}

/// This process's effective uid.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Sends a signal to a process, or to a whole process group.
pub fn send_signal(target: SignalTarget, signal: Signal) -> std::io::Result<()> {
    let raw = match target {
        SignalTarget::Process(pid) | SignalTarget::Group(pid) => pid,
    };
    let pid = i32::try_from(raw)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let result = match (target, signal) {
        (SignalTarget::Process(_), None) => rustix::process::test_kill_process(pid),
        (SignalTarget::Group(_), None) => rustix::process::test_kill_process_group(pid),
        (SignalTarget::Process(_), Some(sig)) => rustix::process::kill_process(pid, sig),
        (SignalTarget::Group(_), Some(sig)) => rustix::process::kill_process_group(pid, sig),
    };
    result.map_err(std::io::Error::from)
}

/// Who receives a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalTarget {
    Process(u32),
    Group(u32),
}

/// A signal; `None` only checks that it could be sent (signal 0).
pub type Signal = Option<rustix::process::Signal>;

/// The signals [`signal_by_name`] knows, as a user-facing list.
pub const SIGNAL_NAMES: &str = "TERM, INT, HUP, QUIT, KILL, USR1, USR2, STOP or CONT";

/// A signal by its name, with or without `SIG` (`TERM`, `sigint`, …).
pub fn signal_by_name(name: &str) -> Option<rustix::process::Signal> {
    use rustix::process::Signal as S;
    let name = name.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    Some(match name {
        "TERM" => S::TERM,
        "INT" => S::INT,
        "HUP" => S::HUP,
        "KILL" => S::KILL,
        "QUIT" => S::QUIT,
        "USR1" => S::USR1,
        "USR2" => S::USR2,
        "STOP" => S::STOP,
        "CONT" => S::CONT,
        _ => return None,
    })
}
