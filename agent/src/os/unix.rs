//! Unix (Linux and macOS): private files by permission bits and the owner's uid, and who this
//! process runs as.
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

/// Whether the file belongs to this process's effective user.
pub fn is_ours(meta: &Metadata) -> bool {
    meta.uid() == euid()
}

/// Where per-user files go when neither the XDG variables nor `HOME` say: nowhere else on Unix.
pub fn app_data_dir() -> Option<PathBuf> {
    None
}

/// This process's effective uid.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}
