//! Where `portscope mcp` reads the machine: the running agent's live model, followed through
//! its local socket as `portscope watch` follows it (it keeps the health checks' results, and
//! nothing scans twice), else a scan per call. An agent that starts after the MCP server is
//! found at the next call; one that stops is left at the next call too; one that rescans less
//! often than the doctor's [`portscope_doctor::LIVE_ENOUGH`] is not answered from (its model may be a tick old).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use portscope_core::model::{Mirror, Published, State, Step};
use portscope_doctor::Source;
use portscope_server::http::local;
use portscope_shared::PROTOCOL_VERSION;

/// How long a call waits for a newly found agent (its handshake and first snapshot) before
/// scanning by itself: a stopped agent (Ctrl-Z) holds no call longer.
const FIRST_STATE: Duration = Duration::from_secs(3);

/// Where an answer was read, said in each answer's `_meta` (`portscope/source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The running agent's live model (at most one tick old).
    Agent,
    /// A scan made for this call.
    Scan,
    /// Connects made for this call (`wait`).
    Connects,
    /// The history file.
    History,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Agent => "agent",
            Origin::Scan => "scan",
            Origin::Connects => "connects",
            Origin::History => "history",
        }
    }
}

/// The link to the running agent, when one answers.
#[derive(Default)]
pub struct Agent {
    followed: tokio::sync::Mutex<Option<Followed>>,
}

/// A running agent's stream, read into a mirror by a task of its own.
struct Followed {
    mirror: Arc<Mutex<Mirror>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Followed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Agent {
    /// The source to answer one call from: the agent's model as it is now, or a scan.
    pub async fn source(&self) -> (Source, Origin) {
        match self.state().await {
            Some(state) => {
                let published = Published {
                    state,
                    delta: None,
                    events: Vec::new(),
                    snapshot_texts: Default::default(),
                    recent: Default::default(),
                };
                (Source::Live(Arc::new(published), None), Origin::Agent)
            }
            None => (Source::scan(), Origin::Scan),
        }
    }

    /// A copy of the agent's current state, following it first if need be.
    async fn state(&self) -> Option<State> {
        let mut followed = self.followed.lock().await;
        if followed.as_ref().is_some_and(|f| f.task.is_finished()) {
            tracing::info!("lost the running agent; scanning for each call");
            *followed = None;
        }
        if followed.is_none() {
            *followed = tokio::time::timeout(FIRST_STATE, Followed::start())
                .await
                .ok()
                .flatten();
        }
        let mirror = followed.as_ref()?.mirror.lock().ok()?;
        mirror.state().cloned()
    }
}

impl Followed {
    /// Connects to the agent's local socket and reads until its first whole state; `None`
    /// when no agent answers, it speaks another protocol or rescans too seldom (the caller
    /// bounds how long this may take).
    async fn start() -> Option<Followed> {
        let path = local::path()?;
        let mut agent = local::Follower::connect(&path).await?;
        let mut mirror = Mirror::in_place();
        while mirror.state().is_none() {
            let message = agent.next().await.ok()??;
            if !follows(&mut mirror, &mut agent, message).await {
                return None;
            }
        }
        tracing::info!(path = %path.display(), "answering from the running agent's live model");
        let mirror = Arc::new(Mutex::new(mirror));
        let shared = mirror.clone();
        let task = tokio::spawn(async move {
            while let Ok(Some(message)) = agent.next().await {
                // The lock is not held across the resync's await.
                let resync = match shared.lock() {
                    Ok(mut mirror) => matches!(mirror.feed(message), Step::Resync),
                    Err(_) => return,
                };
                if resync && agent.resync().await.is_err() {
                    return;
                }
            }
        });
        Some(Followed { mirror, task })
    }
}

/// Feeds one message of the first snapshot; `false` when the agent cannot be followed.
async fn follows(
    mirror: &mut Mirror,
    agent: &mut local::Follower,
    message: portscope_shared::ServerMessage,
) -> bool {
    match mirror.feed(message) {
        Step::Hello(hello) if hello.protocol_version != PROTOCOL_VERSION => {
            tracing::warn!(
                theirs = hello.protocol_version,
                ours = PROTOCOL_VERSION,
                "the running agent speaks another protocol: scanning by myself"
            );
            false
        }
        Step::Hello(hello) if !portscope_doctor::live_enough(&hello) => {
            tracing::info!(
                tick_ms = hello.tick_ms,
                "the running agent rescans too seldom to answer from: scanning for each call"
            );
            false
        }
        Step::Resync => agent.resync().await.is_ok(),
        _ => true,
    }
}
