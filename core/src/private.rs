//! Files that hold secrets (tokens) or other people's data: read only when they are regular files
//! of this user's that nobody else may read, and written only as new files of the user's alone.
//! Used for the peers file, its token files, `--metrics-token-file` and `--token-file`.
//!
//! Owns no policy of its own beyond that check; it knows nothing of peers, metrics or the server.

use std::path::{Path, PathBuf};

/// The most a secret file may hold.
const MAX_FILE: u64 = 1 << 20;

/// Why a private file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PrivateError {
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds tokens and others can read it (mode {mode:03o}): run `chmod 600 {path}`")]
    OpenToOthers { path: PathBuf, mode: u32 },
    #[error("{path} holds tokens and belongs to another user: it must be yours")]
    NotYours { path: PathBuf },
}

/// Whether [`write`] may replace a file already at its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Renamed over it (the peers file, rewritten whole).
    Replace,
    /// Refused with [`std::io::ErrorKind::AlreadyExists`] (a token made once).
    Keep,
}

/// Writes `bytes` as the file at `path`: to a new file of its own beside it (0600, made by us:
/// never an existing file or a link) in a directory made 0700 when missing, synced, then renamed
/// into place, so that a crash leaves the old file or the new, never half.
pub fn write(path: &Path, bytes: &[u8], existing: Existing) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::os::private_dir_builder().create(dir)?;
    let mut out = tempfile::NamedTempFile::new_in(dir)?;
    out.write_all(bytes)?;
    out.as_file().sync_all()?;
    match existing {
        Existing::Replace => out.persist(path).map_err(|e| e.error)?,
        Existing::Keep => out.persist_noclobber(path).map_err(|e| e.error)?,
    };
    Ok(())
}

/// A file that holds secrets, read once it is known to be a regular file of the user's that
/// only the user can read: opened once without following a symlink (and without blocking on a
/// FIFO), checked through the open descriptor, then read from it — so that nothing can be
/// swapped in between the check and the read.
pub fn read(path: &Path) -> Result<String, PrivateError> {
    use std::io::Read;
    let unreadable = |source| PrivateError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let file = crate::os::open_no_follow(path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(unreadable(std::io::Error::other("not a regular file")));
    }
    if let Some(mode) = crate::os::open_to_others(&meta) {
        return Err(PrivateError::OpenToOthers {
            path: path.to_owned(),
            mode,
        });
    }
    if !crate::os::is_ours(&meta) {
        return Err(PrivateError::NotYours {
            path: path.to_owned(),
        });
    }
    let mut text = String::new();
    file.take(MAX_FILE)
        .read_to_string(&mut text)
        .map_err(unreadable)?;
    Ok(text)
}
