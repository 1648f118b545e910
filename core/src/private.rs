//! Files that hold secrets (tokens) or other people's data: read only when they are regular files
//! of this user's that nobody else may read. Used for the peers file, its token files and
//! `--metrics-token-file`.
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
