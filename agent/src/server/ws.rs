//! One WebSocket client: `Hello`, one `Snapshot`, then a `Delta` whenever the model changes.
//!
//! Written over any `Sink`/`Stream` of messages so that it does not depend on a live socket.
//! A slow client never queues: it always receives the difference between what it last got and
//! the newest state, however many states went by.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use portscope_shared::{ClientMessage, ErrorMessage, Hello, ServerMessage};
use tokio::time::{Instant, MissedTickBehavior};

use crate::model::{Published, Watcher};

/// How often the agent pings; a client that answered none of the last two pings is dropped.
const PING_EVERY: Duration = Duration::from_secs(20);

/// Serves one client until it leaves, the connection fails, or the agent stops.
pub async fn serve<S, E>(socket: S, hello: Hello, mut watcher: Watcher)
where
    S: Sink<Message, Error = E> + Stream<Item = Result<Message, E>> + Unpin,
    E: std::fmt::Display,
{
    let (mut tx, mut rx) = socket.split();
    let mut sent: Arc<Published> = watcher.borrow_and_update().clone();
    let opening = [
        ServerMessage::Hello(hello),
        ServerMessage::Snapshot(sent.state.snapshot()),
    ];
    for msg in opening {
        if send(&mut tx, &msg).await.is_err() {
            return;
        }
    }
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_pong = Instant::now();

    loop {
        let outgoing = tokio::select! {
            changed = watcher.changed() => {
                if changed.is_err() {
                    break; // The agent is shutting down.
                }
                let now = watcher.borrow_and_update().clone();
                if now.state.seq == sent.state.seq {
                    continue; // Already sent, e.g. by a Resync.
                }
                let delta = match &now.delta {
                    Some(delta) if delta.from_seq == sent.state.seq => delta.clone(),
                    _ => sent.state.diff(&now.state),
                };
                sent = now;
                ServerMessage::Delta(delta)
            }
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<ClientMessage>(&text) {
                    Ok(ClientMessage::Resync) => {
                        sent = watcher.borrow_and_update().clone();
                        ServerMessage::Snapshot(sent.state.snapshot())
                    }
                    Ok(ClientMessage::Unknown) => error(
                        "unknown_message",
                        "this agent does not know that message type; it understands {\"type\":\"Resync\"}",
                    ),
                    Err(e) => error(
                        "bad_message",
                        &format!("could not decode the message ({e}); expected JSON such as {{\"type\":\"Resync\"}}"),
                    ),
                },
                Some(Ok(Message::Binary(_))) => error(
                    "bad_message",
                    "binary messages are not part of the protocol; send JSON text",
                ),
                Some(Ok(Message::Pong(_))) => {
                    last_pong = Instant::now();
                    continue;
                }
                // Pings are answered by the WebSocket layer on the next write or flush.
                Some(Ok(Message::Ping(_))) => {
                    if tx.flush().await.is_err() {
                        break;
                    }
                    continue;
                }
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(e)) => {
                    tracing::debug!(%e, "websocket read failed");
                    break;
                }
            },
            _ = ping.tick() => {
                if last_pong.elapsed() > 2 * PING_EVERY {
                    let _ = tx.send(Message::Close(Some(CloseFrame {
                        code: 1001,
                        reason: "no pong received within 40 s".into(),
                    }))).await;
                    break;
                }
                if tx.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
                continue;
            }
        };
        if send(&mut tx, &outgoing).await.is_err() {
            break;
        }
    }
}

fn error(code: &str, message: &str) -> ServerMessage {
    ServerMessage::Error(ErrorMessage {
        code: code.into(),
        message: message.into(),
    })
}

async fn send<S, E>(tx: &mut S, msg: &ServerMessage) -> Result<(), E>
where
    S: Sink<Message, Error = E> + Unpin,
{
    let json = serde_json::to_string(msg).expect("protocol types always serialize");
    tx.send(Message::Text(json.into())).await
}
