//! The agent's local socket: a Unix socket in a directory only its user can enter, through
//! which `portscope watch` follows the live model without the token. The directory's
//! permissions are the authentication (as for ssh-agent's or Docker's socket); the token never
//! lies on disk. It serves one route, the WebSocket stream (`GET /api/v1/ws`), exactly as the
//! TCP listener does.
//!
//! # Platform-specific behavior
//!
//! Unix only. On Windows there is no local socket ([`path`] is `None`; a named pipe is no
//! listener axum serves), and `watch` scans by itself.

use std::path::{Path, PathBuf};

#[cfg(unix)]
use axum::{
    Router, extract::State, extract::ws::WebSocketUpgrade, response::Response, routing::get,
};
#[cfg(unix)]
use portscope_shared::Hello;
use portscope_shared::{ClientMessage, ServerMessage};

#[cfg(unix)]
use super::{MAX_CLIENT_FRAME, MAX_CLIENT_MESSAGE, MAX_WRITE_BUFFER, ws};
#[cfg(unix)]
use portscope_core::model::Watcher;

/// The socket's name in its directory.
#[cfg(unix)]
const NAME: &str = "agent.sock";

/// Why the local socket is not served; the agent goes on without it.
#[cfg(unix)]
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("neither XDG_RUNTIME_DIR, XDG_STATE_HOME nor HOME is set")]
    NoDirectory,
    #[error("another portscope already serves {0}")]
    Taken(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where the socket lives: `$XDG_RUNTIME_DIR/portscope/agent.sock` (the per-user directory
/// made for sockets), else beside the history in `$XDG_STATE_HOME/portscope/`. `None` on
/// Windows.
#[cfg(not(unix))]
pub fn path() -> Option<PathBuf> {
    None
}

/// Where the socket lives: `$XDG_RUNTIME_DIR/portscope/agent.sock` (the per-user directory
/// made for sockets), else beside the history in `$XDG_STATE_HOME/portscope/`.
#[cfg(unix)]
pub fn path() -> Option<PathBuf> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute());
    let dir = match runtime {
        Some(dir) => dir.join("portscope"),
        None => portscope_history::default_path()?.parent()?.to_owned(),
    };
    Some(dir.join(NAME))
}

/// The socket's file and the lock that makes it this agent's; the file is removed when dropped
/// (when the agent stops), the lock released.
#[cfg(unix)]
#[derive(Debug)]
pub struct Unbind {
    path: PathBuf,
    _lock: std::fs::File,
}

#[cfg(unix)]
impl Drop for Unbind {
    fn drop(&mut self) {
        // Still ours: another agent cannot have replaced it while we hold the lock.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the socket at `path`, the socket 0600 in a 0700 directory. The directory and its
/// parent must be real directories (not symbolic links) of this user: a root agent started with
/// another user's environment (`sudo -E`) must not act in that user's directories. A lock file
/// beside the socket makes it one agent's at a time ([`LocalError::Taken`] for the next); a
/// socket left by an agent that died is replaced, anything else at its path is refused.
#[cfg(unix)]
pub async fn bind(path: &Path) -> Result<(tokio::net::UnixListener, Unbind), LocalError> {
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
    let io = |source| LocalError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().ok_or(LocalError::NoDirectory)?;
    let parent = dir.parent().ok_or(LocalError::NoDirectory)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    owned_directory(parent).map_err(io)?;
    let mode = owned_directory(dir).map_err(io)?;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(dir.join(LOCK))
        .map_err(io)?;
    match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => return Err(LocalError::Taken(path.to_owned())),
        Err(e) => return Err(io(e.into())),
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path).map_err(io)?,
        Ok(_) => {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "something other than a socket is there",
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(io)?;
    let unbind = Unbind {
        path: path.to_owned(),
        _lock: lock,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok((listener, unbind))
}

/// The lock file's name beside the socket.
#[cfg(unix)]
const LOCK: &str = "agent.lock";

/// The permission bits of `dir`, when it is a directory (not a symbolic link) of this process's
/// user.
#[cfg(unix)]
fn owned_directory(dir: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.file_type().is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} is not a directory (a symbolic link?)", dir.display()),
        ));
    }
    if meta.uid() != portscope_core::os::euid() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} belongs to another user", dir.display()),
        ));
    }
    Ok(meta.permissions().mode())
}

#[cfg(unix)]
#[derive(Clone, Debug)]
struct Local {
    hello: Hello,
    watcher: Watcher,
}

/// The local socket's application: the WebSocket stream only.
#[cfg(unix)]
pub fn app(hello: Hello, watcher: Watcher) -> Router {
    Router::new()
        .route("/api/v1/ws", get(websocket))
        .with_state(Local { hello, watcher })
}

#[cfg(unix)]
async fn websocket(State(local): State<Local>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_FRAME)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .on_upgrade(move |socket| {
            ws::serve(
                socket,
                local.hello,
                local.watcher,
                portscope_core::events::process_runs,
            )
        })
}

/// A client of a running agent's local socket: its stream's messages, decoded. `watch` uses it
/// so that WebSocket framing stays in this module.
#[derive(Debug)]
#[cfg_attr(
    not(unix),
    allow(dead_code, reason = "there is no local socket to follow on Windows")
)]
pub struct Follower {
    ws: tokio_tungstenite::WebSocketStream<Stream>,
}

/// The local socket's stream; on Windows, where there is none, a stand-in never connected.
#[cfg(unix)]
type Stream = tokio::net::UnixStream;
#[cfg(not(unix))]
type Stream = tokio::io::DuplexStream;

/// The link to the agent failed or ended; the reader goes on without it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LinkLost(pub String);

impl Follower {
    /// Connects to the agent at `path`; `None` when no agent answers there.
    pub async fn connect(path: &Path) -> Option<Follower> {
        #[cfg(not(unix))]
        {
            let _ = path;
            None
        }
        #[cfg(unix)]
        {
            let stream = tokio::net::UnixStream::connect(path).await.ok()?;
            let (ws, _) = tokio_tungstenite::client_async("ws://localhost/api/v1/ws", stream)
                .await
                .ok()?;
            Some(Follower { ws })
        }
    }

    /// The next message the agent sends (ones this reader cannot decode are skipped); `Ok(None)`
    /// when the agent closed the stream.
    pub async fn next(&mut self) -> Result<Option<ServerMessage>, LinkLost> {
        crate::peers::link::next_message(&mut self.ws)
            .await
            .map_err(|e| LinkLost(e.to_string()))
    }

    /// Asks for a fresh snapshot.
    pub async fn resync(&mut self) -> Result<(), LinkLost> {
        use futures_util::SinkExt;
        let resync =
            serde_json::to_string(&ClientMessage::Resync).expect("protocol types always serialize");
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::Text(resync.into()))
            .await
            .map_err(|e| LinkLost(e.to_string()))
    }
}
