//! The agent's local socket: a Unix socket in a directory only its user can enter, through
//! which `portscope watch` follows the live model without the token. The directory's
//! permissions are the authentication (as for ssh-agent's or Docker's socket); the token never
//! lies on disk. It serves one route, the WebSocket stream (`GET /api/v1/ws`), exactly as the
//! TCP listener does.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::Response;
use axum::routing::get;
use portscope_shared::Hello;

use super::{MAX_CLIENT_FRAME, MAX_CLIENT_MESSAGE, MAX_WRITE_BUFFER, ws};
use crate::model::Watcher;

/// The socket's name in its directory.
const NAME: &str = "agent.sock";

/// Why the local socket is not served; the agent goes on without it.
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
/// made for sockets), else beside the history in `$XDG_STATE_HOME/portscope/`.
pub fn path() -> Option<PathBuf> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute());
    let dir = match runtime {
        Some(dir) => dir.join("portscope"),
        None => crate::history::default_path()?.parent()?.to_owned(),
    };
    Some(dir.join(NAME))
}

/// The socket's file, removed when dropped (when the agent stops).
#[derive(Debug)]
pub struct Unbind(pub PathBuf);

impl Drop for Unbind {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Binds the socket at `path`, in a 0700 directory, the socket itself 0600. A file left by an
/// agent that died is replaced; a live agent's is left alone ([`LocalError::Taken`]).
pub async fn bind(path: &Path) -> Result<(tokio::net::UnixListener, Unbind), LocalError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let io = |source| LocalError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().ok_or(LocalError::NoDirectory)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    // The directory is the lock: it must be ours and closed to others, even if it existed.
    let meta = std::fs::metadata(dir).map_err(io)?;
    if meta.uid() != crate::os::euid() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "the directory belongs to another user",
        )));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(LocalError::Taken(path.to_owned()));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(io)?;
    let unbind = Unbind(path.to_owned());
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok((listener, unbind))
}

#[derive(Clone, Debug)]
struct Local {
    hello: Hello,
    watcher: Watcher,
}

/// The local socket's application: the WebSocket stream only.
pub fn app(hello: Hello, watcher: Watcher) -> Router {
    Router::new()
        .route("/api/v1/ws", get(websocket))
        .with_state(Local { hello, watcher })
}

async fn websocket(State(local): State<Local>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_FRAME)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .on_upgrade(move |socket| ws::serve(socket, local.hello, local.watcher))
}

/// Connects to a running agent's local socket, if one answers at `path`.
pub async fn connect(path: &Path) -> Option<tokio::net::UnixStream> {
    tokio::net::UnixStream::connect(path).await.ok()
}
