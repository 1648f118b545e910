//! The agent's claim on its history file, made once at start before anything is written: the
//! path is checked as the peers file is (a file of this user's, never through a symbolic link,
//! in a directory nobody else may write), an existing file others could read is made private,
//! a file that is not SQLite is refused, and a lock beside it makes it one agent's at a time.
//!
//! A refusal stops the start with the reason (the user gave the path, or it is the default
//! one): it never falls back to writing somewhere else.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Why the agent will not write a history file.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "the history file {0} is a symbolic link; give the real path with --history, or --no-history"
    )]
    Link(PathBuf),
    #[error("the history file {0} is not a regular file; give another --history, or --no-history")]
    NotAFile(PathBuf),
    #[error(
        "the history file {0} belongs to another user; give a path of yours with --history, or --no-history"
    )]
    NotYours(PathBuf),
    #[error(
        "the history directory {path} can be written by others (mode {mode:03o}), who could replace the file: give a private directory with --history (`chmod go-w {path}`)"
    )]
    OpenDirectory { path: PathBuf, mode: u32 },
    #[error(
        "{0} is not a portscope history (not an SQLite file); move it away, or give another --history"
    )]
    NotSqlite(PathBuf),
    #[error(
        "another portscope{} writes the history file {path}; stop it, or give this one another --history (or --no-history)",
        .pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Taken { path: PathBuf, pid: Option<u32> },
    #[error("the history directory {path} cannot be made: {source}")]
    Directory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the history file {path} cannot be used: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ClaimError {
    /// Whether it is the path the user gave that is wrong (a usage error, exit status 2), rather
    /// than another agent holding it.
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            Self::Taken { .. } | Self::Directory { .. } | Self::Io { .. }
        )
    }
}

/// The lock on a history file, held while the agent runs (released when dropped), and what the
/// check changed, for the log.
#[derive(Debug)]
pub struct Claim {
    _lock: std::fs::File,
    /// Said once at start: the file was readable by others and was made private.
    pub tightened: Option<String>,
}

/// The lock file's path: beside the history, `NAME.lock`.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// Checks `path` and takes its lock. The directory is made (private) when missing.
pub fn claim(path: &Path) -> Result<Claim, ClaimError> {
    let io = |source| ClaimError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let made = |source| ClaimError::Directory {
            path: dir.to_owned(),
            source,
        };
        portscope_core::os::private_dir_builder()
            .create(dir)
            .map_err(made)?;
        let meta = std::fs::metadata(dir).map_err(made)?;
        if let Some(mode) = portscope_core::os::writable_by_others(&meta) {
            return Err(ClaimError::OpenDirectory {
                path: dir.to_owned(),
                mode,
            });
        }
    }
    let mut tightened = None;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
        Ok(meta) if meta.file_type().is_symlink() => return Err(ClaimError::Link(path.to_owned())),
        Ok(meta) if !meta.is_file() => return Err(ClaimError::NotAFile(path.to_owned())),
        Ok(meta) if !portscope_core::os::is_ours(&meta) => {
            return Err(ClaimError::NotYours(path.to_owned()));
        }
        Ok(meta) => {
            if let Some(mode) = portscope_core::os::open_to_others(&meta) {
                portscope_core::os::make_private(path).map_err(io)?;
                tightened = Some(format!(
                    "the history file {} could be read by others (mode {mode:03o}): it holds other processes' command lines, so it is now 0600",
                    path.display()
                ));
            }
            if !is_sqlite(path).map_err(io)? {
                return Err(ClaimError::NotSqlite(path.to_owned()));
            }
        }
    }
    let lock = take_lock(path)?;
    Ok(Claim {
        _lock: lock,
        tightened,
    })
}

/// Where an agent writing another file than the default one says which (beside the default
/// history): so that `portscope history` reads the running agent's file without `--history`.
fn pointer() -> Option<PathBuf> {
    Some(super::default_path()?.with_file_name("running-history"))
}

/// Says (for `portscope history`) that this agent writes `path`: a pointer beside the default
/// history when it is another file, none when it is the default. Best effort: without it,
/// `history` needs `--history`.
pub fn announce(path: &Path) {
    let Some(pointer) = pointer() else { return };
    let _ = std::fs::remove_file(&pointer);
    if super::default_path().as_deref() == Some(path) {
        return;
    }
    let Ok(path) = std::path::absolute(path) else {
        return;
    };
    if let Some(dir) = pointer.parent() {
        let _ = portscope_core::os::private_dir_builder().create(dir);
    }
    if let Ok(mut file) = portscope_core::os::new_private_file().open(&pointer) {
        let _ = file.write_all(path.as_os_str().as_encoded_bytes());
    }
}

/// The history file a running agent writes, when it announced one and still holds its lock,
/// with that agent's pid.
pub fn running_agents_file() -> Option<(PathBuf, Option<u32>)> {
    let text = portscope_core::private::read(&pointer()?).ok()?;
    let path = PathBuf::from(text.trim());
    let pid = holder(&path)?;
    Some((path, pid))
}

/// `Some(pid)` when an agent holds `path`'s lock (the pid it wrote, when readable).
fn holder(path: &Path) -> Option<Option<u32>> {
    let mut lock = portscope_core::os::open_no_follow(&lock_path(path)).ok()?;
    match lock.try_lock_shared() {
        Err(std::fs::TryLockError::WouldBlock) => Some(pid_in(&mut lock)),
        _ => None,
    }
}

/// The pid the agent holding a lock file wrote in it, when it can be read.
fn pid_in(lock: &mut std::fs::File) -> Option<u32> {
    let mut text = String::new();
    lock.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Whether a file is empty (SQLite makes it) or starts with SQLite's header.
fn is_sqlite(path: &Path) -> std::io::Result<bool> {
    let mut head = Vec::with_capacity(16);
    portscope_core::os::open_no_follow(path)?
        .take(16)
        .read_to_end(&mut head)?;
    Ok(head.is_empty() || head == b"SQLite format 3\0")
}

/// Locks `NAME.lock` beside the history and writes this agent's pid in it; the lock of an agent
/// that holds it already names that agent.
fn take_lock(path: &Path) -> Result<std::fs::File, ClaimError> {
    let at = lock_path(path);
    let io = |source| ClaimError::Io {
        path: at.clone(),
        source,
    };
    if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(ClaimError::Link(at.clone()));
    }
    let mut lock = portscope_core::os::private_file_to_lock()
        .open(&at)
        .map_err(io)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(ClaimError::Taken {
                path: path.to_owned(),
                pid: pid_in(&mut lock),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    lock.set_len(0).map_err(io)?;
    lock.rewind().map_err(io)?;
    writeln!(lock, "{}", std::process::id()).map_err(io)?;
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_second_claim_names_the_first_and_a_released_one_is_free_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let first = claim(&path).unwrap();
        // flock is per open file description: a second open in this process stands for another
        // agent.
        match claim(&path) {
            Err(ClaimError::Taken { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        drop(first);
        assert!(claim(&path).is_ok());
    }

    #[test]
    fn links_other_files_and_open_directories_are_refused_and_a_readable_file_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.db");
        std::fs::write(&real, "").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(claim(&link), Err(ClaimError::Link(_))));
        let dangling = dir.path().join("dangling.db");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(matches!(claim(&dangling), Err(ClaimError::Link(_))));
        let tightened = claim(&real).unwrap().tightened.unwrap();
        assert!(tightened.contains("mode 644"), "{tightened}");
        let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "my notes, not a database").unwrap();
        assert!(matches!(claim(&text), Err(ClaimError::NotSqlite(_))));
        assert_eq!(
            std::fs::read_to_string(&text).unwrap(),
            "my notes, not a database",
            "left as it was"
        );
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(matches!(claim(&sub), Err(ClaimError::NotAFile(_))));
        let blocker = dir.path().join("a-file");
        std::fs::write(&blocker, "").unwrap();
        match claim(&blocker.join("history.db")) {
            Err(e @ ClaimError::Directory { .. }) => {
                assert!(e.to_string().contains("a-file cannot be made"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            claim(&open.join("history.db")),
            Err(ClaimError::OpenDirectory { mode: 0o777, .. })
        ));
    }
}
