//! One WebSocket client: `Hello`, one `Snapshot`, then a `Delta` whenever the model changes.
//!
//! Written over any `Sink`/`Stream` of messages so that it does not depend on a live socket.
//! A slow client never queues: it always receives the difference between what it last got and
//! the newest state, however many states went by.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use portscope_shared::{
    ApiErrorCode, ClientMessage, ErrorMessage, Events, Hello, MAX_MESSAGE_BYTES, Process,
    ServerMessage, Snapshot, SnapshotMore, Socket,
};
use tokio::time::{Instant, MissedTickBehavior};

use portscope_core::model::{Published, Watcher};

/// How often the agent pings; a client that has not answered a ping by the next one (20 s) is
/// closed with 1008.
const PING_EVERY: Duration = Duration::from_secs(20);
/// A client that takes longer than this to take one message (it stopped reading, and the
/// socket's buffers are full) is closed: it would otherwise pin its connection forever.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Resync messages a client may send per second (each one costs a full snapshot).
const MAX_RESYNCS: u32 = 10;

/// Serves one client until it leaves, the connection fails, or the agent stops.
pub async fn serve<S, E>(
    socket: S,
    hello: Hello,
    mut watcher: Watcher,
    alive: fn(&portscope_shared::Process) -> bool,
) where
    S: Sink<Message, Error = E> + Stream<Item = Result<Message, E>> + Unpin,
    E: std::fmt::Display,
{
    let (mut tx, mut rx) = socket.split();
    let mut sent: Arc<Published> = watcher.borrow_and_update().clone();
    let opening = [Out::Message(ServerMessage::Hello(hello)), Out::Snapshot];
    for out in opening {
        for text in encode(out, &sent).await {
            if !matches!(
                tokio::time::timeout(SEND_TIMEOUT, send(&mut tx, text)).await,
                Ok(Ok(()))
            ) {
                return; // Dropping the socket closes it; a client that does not read gets no Close.
            }
        }
    }
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut awaiting_pong = false;
    let mut resyncs = (Instant::now(), 0u32);

    loop {
        // A second message to send after `outgoing`: a delta's events.
        let mut then = None;
        let outgoing = tokio::select! {
            changed = watcher.changed() => {
                if changed.is_err() {
                    break; // The agent is shutting down.
                }
                let now = watcher.borrow_and_update().clone();
                if now.state.seq == sent.state.seq {
                    continue; // Already sent, e.g. by a Resync.
                }
                let (delta, events) = match &now.delta {
                    Some(delta) if delta.from_seq == sent.state.seq => {
                        (delta.clone(), now.events.clone())
                    }
                    // It missed states: the change (and the events) since the last one it got.
                    _ => {
                        let delta = sent.state.diff(&now.state);
                        let mut events = portscope_core::events::events_of(
                            &sent.state,
                            &now.state,
                            &delta,
                            std::time::SystemTime::now(),
                            Socket::is_listening,
                            alive,
                        );
                        // What came and went in the states it missed.
                        events.extend(portscope_core::events::missed_between(
                            &sent.state,
                            &now.state,
                            &now.recent,
                        ));
                        (delta, events)
                    }
                };
                if !events.is_empty() {
                    then = Some(Out::Message(ServerMessage::Events(Events {
                        seq: now.state.seq,
                        events: events.into_iter().map(|(_, e)| e).collect(),
                    })));
                }
                sent = now;
                Out::Message(ServerMessage::Delta(delta))
            }
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<ClientMessage>(&text) {
                    Ok(ClientMessage::Resync) => {
                        // Each Resync costs a full snapshot: at most MAX_RESYNCS a second.
                        if resyncs.0.elapsed() >= Duration::from_secs(1) {
                            resyncs = (Instant::now(), 0);
                        }
                        resyncs.1 += 1;
                        if resyncs.1 > MAX_RESYNCS {
                            Out::Message(error(ApiErrorCode::TooManyResyncs, "at most 10 Resync messages a second; wait, then ask again"))
                        } else {
                            sent = watcher.borrow_and_update().clone();
                            Out::Snapshot
                        }
                    }
                    Ok(ClientMessage::Unknown) => Out::Message(error(
                        ApiErrorCode::UnknownMessage,
                        "this agent does not know that message type; it understands {\"type\":\"Resync\"}",
                    )),
                    Err(e) => Out::Message(error(
                        ApiErrorCode::BadMessage,
                        &format!("could not decode the message ({e}); expected JSON such as {{\"type\":\"Resync\"}}"),
                    )),
                },
                Some(Ok(Message::Binary(_))) => Out::Message(error(
                    ApiErrorCode::BadMessage,
                    "binary messages are not part of the protocol; send JSON text",
                )),
                Some(Ok(Message::Pong(_))) => {
                    awaiting_pong = false;
                    continue;
                }
                // Pings are answered by the WebSocket layer on the next write or flush.
                Some(Ok(Message::Ping(_))) => {
                    if !matches!(tokio::time::timeout(SEND_TIMEOUT, tx.flush()).await, Ok(Ok(()))) {
                        break;
                    }
                    continue;
                }
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(e)) => {
                    tracing::debug!(%e, "websocket read failed");
                    // A message or frame over the limits: say so with 1009 before closing.
                    let text = e.to_string();
                    if text.contains("Space limit exceeded") || text.contains("too long") || text.contains("too big") {
                        close(&mut tx, 1009, "message too big: at most 64 KiB (frames 16 KiB)").await;
                        linger(&mut rx).await;
                    }
                    break;
                }
            },
            _ = ping.tick() => {
                if awaiting_pong {
                    close(&mut tx, 1008, "no pong within 20 s").await;
                    break;
                }
                awaiting_pong = true;
                match tokio::time::timeout(SEND_TIMEOUT, tx.send(Message::Ping(Default::default()))).await {
                    Ok(Ok(())) => continue,
                    _ => break,
                }
            }
        };
        let mut failed = false;
        let mut texts = encode(outgoing, &sent).await;
        if let Some(then) = then {
            texts.extend(encode(then, &sent).await);
        }
        for text in texts {
            match tokio::time::timeout(SEND_TIMEOUT, send(&mut tx, text)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => failed = true,
                Err(_) => {
                    tracing::info!("closed a WebSocket client that stopped reading");
                    close(&mut tx, 1008, "too slow: took no message for 10 s").await;
                    failed = true;
                }
            }
            if failed {
                break;
            }
        }
        if failed {
            break;
        }
    }
    // Sends the reply to a client's Close (queued by the WebSocket layer), or our own — within a
    // second: a client that does not read must not keep its slot by never taking the Close.
    let _ = tokio::time::timeout(Duration::from_secs(1), tx.close()).await;
}

/// How long a connection closed for an oversized message stays open for the client to read
/// the Close.
const LINGER: Duration = Duration::from_secs(1);

/// After a Close sent while the client was still sending (the rest of an oversized message):
/// the connection stays open until the client ends it or [`LINGER`] passes, what it sends read
/// and dropped. Closed at once, the unread bytes would make the kernel answer with a reset,
/// which can reach the client before it read the Close.
async fn linger<R, E>(rx: &mut R)
where
    R: Stream<Item = Result<Message, E>> + Unpin,
{
    let deadline = Instant::now() + LINGER;
    loop {
        match tokio::time::timeout_at(deadline, rx.next()).await {
            // The client answered the Close: it has read ours.
            Ok(Some(Ok(Message::Close(_)))) => break,
            Ok(Some(Ok(_))) => {}
            // The stream cannot be read past the oversized frame: the client's answer cannot
            // be seen, so the connection is held for the whole while.
            Ok(Some(Err(_)) | None) => {
                tokio::time::sleep_until(deadline).await;
                break;
            }
            Err(_) => break,
        }
    }
}

/// Sends a Close frame, giving up quickly when the client does not take it.
async fn close<T>(tx: &mut T, code: u16, reason: &str)
where
    T: Sink<Message> + Unpin,
{
    let frame = Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }));
    let _ = tokio::time::timeout(Duration::from_secs(1), tx.send(frame)).await;
}

fn error(code: ApiErrorCode, message: &str) -> ServerMessage {
    ServerMessage::Error(ErrorMessage {
        code,
        message: message.into(),
    })
}

async fn send<S, E>(tx: &mut S, text: String) -> Result<(), E>
where
    S: Sink<Message, Error = E> + Unpin,
{
    if text.len() > MAX_MESSAGE_BYTES {
        // `encode` keeps every part under the limit; should an item ever be larger, say so
        // instead of overflowing the client's write buffer.
        tracing::error!(
            bytes = text.len(),
            "a message over the protocol's size limit was not sent"
        );
        let msg = error(
            ApiErrorCode::TooLarge,
            "the agent could not send a part of its state: it is too large",
        );
        let json = serde_json::to_string(&msg).expect("protocol types always serialize");
        return tx.send(Message::Text(json.into())).await;
    }
    tx.send(Message::Text(text.into())).await
}

/// What to send a client: a message, or the snapshot of the state it was last sent.
enum Out {
    Message(ServerMessage),
    Snapshot,
}

/// What to send as the texts to write, none over [`MAX_MESSAGE_BYTES`]: a large snapshot in
/// parts (`Snapshot` with `more`, then `SnapshotMore`s); a delta too large for one message
/// becomes a snapshot of `sent`, the state it leads to. A snapshot's texts are made once per
/// state, off the async threads, and shared by every client that is sent it.
async fn encode(out: Out, sent: &Arc<Published>) -> Vec<String> {
    let json =
        |m: &ServerMessage| serde_json::to_string(m).expect("protocol types always serialize");
    let msg = match out {
        Out::Snapshot => return snapshot_texts(sent).await.to_vec(),
        Out::Message(msg) => msg,
    };
    match msg {
        ServerMessage::Delta(delta) => {
            let text = json(&ServerMessage::Delta(delta));
            if text.len() > MAX_MESSAGE_BYTES {
                snapshot_texts(sent).await.to_vec()
            } else {
                vec![text]
            }
        }
        ServerMessage::Events(events) => events_parts(events, MAX_MESSAGE_BYTES),
        other => vec![json(&other)],
    }
}

/// The snapshot of `published` as texts, made on first use (on a blocking thread: tens of
/// milliseconds of JSON for a busy machine) and shared while any client holds them.
async fn snapshot_texts(published: &Arc<Published>) -> Arc<Vec<String>> {
    if let Some(texts) = shared_texts(published) {
        return texts;
    }
    let made = Arc::clone(published);
    match tokio::task::spawn_blocking(move || encoded(&made)).await {
        Ok(texts) => texts,
        // The blocking pool is gone (the runtime is shutting down): made here instead.
        Err(_) => encoded(published),
    }
}

/// The texts another client made of this state and still holds.
fn shared_texts(published: &Published) -> Option<Arc<Vec<String>>> {
    published
        .snapshot_texts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .upgrade()
}

/// The state's snapshot texts: another client's while it holds them, else made now (the lock
/// held meanwhile, so that clients arriving together wait for one encoding).
fn encoded(published: &Published) -> Arc<Vec<String>> {
    let mut held = published
        .snapshot_texts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(texts) = held.upgrade() {
        return texts;
    }
    let texts = Arc::new(snapshot_parts(
        published.state.snapshot(),
        MAX_MESSAGE_BYTES,
    ));
    *held = Arc::downgrade(&texts);
    texts
}

/// Splits a delta's events into `Events` messages of at most `limit` bytes each (every event
/// carries its owner's command line, up to 32 KiB).
fn events_parts(events: Events, limit: usize) -> Vec<String> {
    let json =
        |m: &ServerMessage| serde_json::to_string(m).expect("protocol types always serialize");
    let budget = limit.saturating_sub(128).max(1);
    let seq = events.seq;
    let mut parts: Vec<Vec<portscope_shared::Event>> = vec![Vec::new()];
    let mut used = 0;
    for event in events.events {
        let n = json_len(&event) + 1;
        if used + n > budget && used > 0 {
            parts.push(Vec::new());
            used = 0;
        }
        used += n;
        parts.last_mut().expect("never empty").push(event);
    }
    parts
        .into_iter()
        .map(|events| json(&ServerMessage::Events(Events { seq, events })))
        .collect()
}

/// Splits a snapshot so that each message stays under `limit` bytes (one socket or process is
/// never split; a process's command line is capped by the collector, so each fits).
fn snapshot_parts(snapshot: Snapshot, limit: usize) -> Vec<String> {
    let json =
        |m: &ServerMessage| serde_json::to_string(m).expect("protocol types always serialize");
    // Room for the envelope and the warnings, then items until a part is full: each item's
    // length is measured once, and a snapshot that fits is serialized once, whole.
    let overhead = 256 + snapshot.warnings.iter().map(|w| w.len() + 4).sum::<usize>();
    let socket_lens: Vec<usize> = snapshot.sockets.iter().map(|s| json_len(s) + 1).collect();
    let process_lens: Vec<usize> = snapshot.processes.iter().map(|p| json_len(p) + 1).collect();
    let total = overhead + socket_lens.iter().sum::<usize>() + process_lens.iter().sum::<usize>();
    if total <= limit {
        return vec![json(&ServerMessage::Snapshot(snapshot))];
    }
    let budget = limit.saturating_sub(overhead).max(1);
    let mut parts: Vec<(Vec<Socket>, Vec<Process>)> = vec![(Vec::new(), Vec::new())];
    let mut used = 0;
    for (socket, n) in snapshot.sockets.into_iter().zip(socket_lens) {
        if used + n > budget && used > 0 {
            parts.push((Vec::new(), Vec::new()));
            used = 0;
        }
        used += n;
        parts.last_mut().expect("never empty").0.push(socket);
    }
    for (process, n) in snapshot.processes.into_iter().zip(process_lens) {
        if used + n > budget && used > 0 {
            parts.push((Vec::new(), Vec::new()));
            used = 0;
        }
        used += n;
        parts.last_mut().expect("never empty").1.push(process);
    }
    let last = parts.len() - 1;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, (sockets, processes))| {
            let more = i < last;
            let msg = if i == 0 {
                ServerMessage::Snapshot(Snapshot {
                    seq: snapshot.seq,
                    sockets,
                    processes,
                    warnings: snapshot.warnings.clone(),
                    more,
                })
            } else {
                ServerMessage::SnapshotMore(SnapshotMore {
                    seq: snapshot.seq,
                    sockets,
                    processes,
                    more,
                })
            };
            json(&msg)
        })
        .collect()
}

/// The JSON length of a socket or process.
fn json_len<T: serde::Serialize>(item: &T) -> usize {
    serde_json::to_string(item).map_or(0, |s| s.len())
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use portscope_shared::{Delta, EventKind, PROTOCOL_VERSION, SocketState};
    use tokio::sync::mpsc;

    use super::*;
    use portscope_core::live::Model;
    use portscope_core::testing::{socket, state};

    /// An in-memory WebSocket: what the test sends arrives as client messages; what the agent
    /// sends is read by the test.
    struct Duplex {
        from_client: mpsc::UnboundedReceiver<Message>,
        to_client: mpsc::UnboundedSender<Message>,
    }

    impl Stream for Duplex {
        type Item = Result<Message, Infallible>;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.from_client.poll_recv(cx).map(|m| m.map(Ok))
        }
    }

    impl Sink<Message> for Duplex {
        type Error = Infallible;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Infallible> {
            let _ = self.to_client.send(item); // The test may have stopped listening.
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
    }

    struct Client {
        tx: mpsc::UnboundedSender<Message>,
        rx: mpsc::UnboundedReceiver<Message>,
    }

    impl Client {
        async fn next(&mut self) -> ServerMessage {
            let msg = tokio::time::timeout(Duration::from_secs(5), self.rx.recv())
                .await
                .expect("no message within 5 s")
                .expect("the server loop ended");
            match msg {
                Message::Text(text) => serde_json::from_str(&text).unwrap(),
                other => panic!("unexpected frame {other:?}"),
            }
        }

        fn send(&self, text: &str) {
            self.tx.send(Message::Text(text.into())).unwrap();
        }
    }

    fn start(model: &Model) -> Client {
        let (client_tx, from_client) = mpsc::unbounded_channel();
        let (to_client, client_rx) = mpsc::unbounded_channel();
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION,
            agent_version: "test".into(),
            hostname: "test".into(),
            os: "linux".into(),
            tick_ms: 1000,
            changes: portscope_shared::Changes::Poll,
            ephemeral_ports: None,
            can_kill: false,
            history: false,
            kill_scope: None,
        };
        tokio::spawn(serve(
            Duplex {
                from_client,
                to_client,
            },
            hello,
            model.watch(),
            model.alive(),
        ));
        Client {
            tx: client_tx,
            rx: client_rx,
        }
    }

    async fn opening(client: &mut Client) -> u64 {
        assert!(matches!(client.next().await, ServerMessage::Hello(_)));
        let ServerMessage::Snapshot(snapshot) = client.next().await else {
            panic!("Snapshot expected after Hello");
        };
        snapshot.seq
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_gets_one_delta_for_everything_it_missed() {
        let model = Model::new(state(&[socket("a", SocketState::Listen)]));
        let mut client = start(&model);
        assert_eq!(opening(&mut client).await, 1);

        // Two changes before the client's task runs again (single-threaded runtime).
        model.update(state(&[socket("b", SocketState::Listen)]));
        model.update(state(&[socket("c", SocketState::Listen)]));
        let ServerMessage::Delta(Delta {
            from_seq,
            seq,
            added,
            removed,
            ..
        }) = client.next().await
        else {
            panic!("Delta expected");
        };
        assert_eq!((from_seq, seq), (1, 3));
        assert_eq!(
            added.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["c"]
        );
        assert_eq!(removed, ["a"]);
        // Its events span the same states: "a" closed, "c" opened, then "b", which came and
        // went in between (no diff shows it), from the published state's recent events.
        let ServerMessage::Events(events) = client.next().await else {
            panic!("Events expected after the delta");
        };
        assert_eq!(events.seq, 3);
        let seen: Vec<_> = events.events.iter().map(|e| e.kind).collect();
        assert_eq!(
            seen,
            [
                EventKind::Closed,
                EventKind::Opened,
                EventKind::Opened,
                EventKind::Closed
            ]
        );
    }

    #[test]
    fn many_long_events_are_split_into_messages_under_the_limit() {
        let event = |port: u16| portscope_shared::Event {
            error: None,
            holders: Vec::new(),
            count: None,
            fix: None,
            brief: false,
            time: "2026-11-29T14:02:03Z".into(),
            since: None,
            kind: EventKind::Opened,
            proto: portscope_shared::Proto::Tcp,
            family: portscope_shared::Family::Ipv4,
            local_addr: "127.0.0.1".parse().unwrap(),
            local_port: port,
            remote_addr: None,
            remote_port: None,
            pid: Some(7),
            process: Some("java".into()),
            cmdline: vec!["x".repeat(32 << 10)],
            user: None,
            cwd: None,
            exe: None,
            start_time: None,
            start_ms: None,
            app: None,
            health: None,
            project: None,
        };
        let events = Events {
            seq: 9,
            events: (1..=40).map(event).collect(),
        };
        let texts = events_parts(events, MAX_MESSAGE_BYTES);
        assert!(texts.len() > 2, "{} parts", texts.len());
        let mut ports = Vec::new();
        for text in &texts {
            assert!(text.len() <= MAX_MESSAGE_BYTES, "{} bytes", text.len());
            let ServerMessage::Events(part) = serde_json::from_str(text).unwrap() else {
                panic!("Events expected");
            };
            assert_eq!(part.seq, 9);
            ports.extend(part.events.iter().map(|e| e.local_port));
        }
        assert_eq!(ports, (1..=40).collect::<Vec<u16>>(), "all, in order");
    }

    #[tokio::test]
    async fn resync_sends_the_newest_state_and_no_stale_delta_follows() {
        let model = Model::new(state(&[socket("a", SocketState::Listen)]));
        let mut client = start(&model);
        opening(&mut client).await;

        model.update(state(&[socket("b", SocketState::Listen)]));
        client.send(r#"{"type":"Resync"}"#);
        // Either order is possible: the delta to 2 then the snapshot at 2, or only the snapshot.
        let mut got = client.next().await;
        if let ServerMessage::Delta(delta) = &got {
            assert_eq!((delta.from_seq, delta.seq), (1, 2));
            let events = client.next().await;
            assert!(matches!(events, ServerMessage::Events(_)), "{events:?}");
            got = client.next().await;
        }
        let ServerMessage::Snapshot(snapshot) = got else {
            panic!("Snapshot expected after Resync, got {got:?}");
        };
        assert_eq!(snapshot.seq, 2);

        // The next message is the next change, following on from the snapshot.
        model.update(state(&[]));
        let ServerMessage::Delta(delta) = client.next().await else {
            panic!("Delta expected");
        };
        assert_eq!((delta.from_seq, delta.seq), (2, 3));
    }

    #[tokio::test]
    async fn bad_messages_are_answered_and_the_stream_goes_on() {
        let model = Model::new(state(&[]));
        let mut client = start(&model);
        opening(&mut client).await;
        for (input, code) in [
            ("{", ApiErrorCode::BadMessage),
            (r#"{"type":"Frobnicate"}"#, ApiErrorCode::UnknownMessage),
        ] {
            client.send(input);
            let ServerMessage::Error(e) = client.next().await else {
                panic!("Error expected for {input:?}");
            };
            assert_eq!(e.code, code);
        }
        client
            .tx
            .send(Message::Binary(vec![1, 2, 3].into()))
            .unwrap();
        assert!(matches!(client.next().await, ServerMessage::Error(_)));
        model.update(state(&[socket("x", SocketState::Listen)]));
        assert!(matches!(client.next().await, ServerMessage::Delta(_)));
    }

    /// The next frame, whatever it is (pings and closes included), within `limit` of paused time.
    async fn frame(client: &mut Client, limit: Duration) -> Option<Message> {
        tokio::time::timeout(limit, client.rx.recv())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_answering_pings_is_closed_with_1008() {
        let model = Model::new(state(&[]));
        let mut client = start(&model);
        opening(&mut client).await;
        // First ping after 20 s; answer it.
        let ping = frame(&mut client, PING_EVERY + Duration::from_secs(1)).await;
        assert!(matches!(ping, Some(Message::Ping(_))), "{ping:?}");
        client.tx.send(Message::Pong(Default::default())).unwrap();
        // Second ping 20 s later; this time no answer.
        let ping = frame(&mut client, PING_EVERY + Duration::from_secs(1)).await;
        assert!(matches!(ping, Some(Message::Ping(_))), "{ping:?}");
        let close = frame(&mut client, PING_EVERY + Duration::from_secs(1)).await;
        let Some(Message::Close(Some(frame))) = close else {
            panic!("Close expected 20 s after an unanswered ping, got {close:?}");
        };
        assert_eq!(frame.code, 1008);
        assert!(frame.reason.contains("no pong"), "{}", frame.reason);
    }

    #[tokio::test]
    async fn a_states_snapshot_is_encoded_once_for_every_client() {
        let published = Arc::new(Published {
            state: state(&[socket("a", SocketState::Listen)]),
            ..Published::default()
        });
        let first = snapshot_texts(&published).await;
        let second = snapshot_texts(&published).await;
        assert!(Arc::ptr_eq(&first, &second), "made once, then shared");
        drop((first, second));
        assert!(
            shared_texts(&published).is_none(),
            "freed once no client holds them"
        );
        let first = snapshot_texts(&published).await;
        let ServerMessage::Snapshot(s) = serde_json::from_str(&first[0]).unwrap() else {
            panic!("a Snapshot");
        };
        assert_eq!(s.sockets.len(), 1);
    }

    #[test]
    fn a_large_snapshot_goes_in_parts_that_add_up_to_it() {
        let sockets: Vec<_> = (0..3000)
            .map(|i| socket(&format!("tcp 127.0.0.1:{i} - i{i}"), SocketState::Listen))
            .collect();
        let whole = state(&sockets).snapshot();
        let limit = 64 << 10;
        let parts = snapshot_parts(whole.clone(), limit);
        assert!(parts.len() > 3, "{} parts", parts.len());
        let mut rebuilt: Option<Snapshot> = None;
        for (i, text) in parts.iter().enumerate() {
            assert!(text.len() <= limit, "part {i} is {} bytes", text.len());
            let last = i == parts.len() - 1;
            match serde_json::from_str::<ServerMessage>(text).unwrap() {
                ServerMessage::Snapshot(s) => {
                    assert_eq!((i, s.more), (0, !last));
                    rebuilt = Some(s);
                }
                ServerMessage::SnapshotMore(m) => {
                    assert_eq!(m.more, !last);
                    let r = rebuilt.as_mut().unwrap();
                    assert_eq!(m.seq, r.seq);
                    r.sockets.extend(m.sockets);
                    r.processes.extend(m.processes);
                }
                other => panic!("{other:?}"),
            }
        }
        let mut rebuilt = rebuilt.unwrap();
        rebuilt.more = false;
        assert_eq!(rebuilt, whole);
        // A small one is one message.
        assert_eq!(
            snapshot_parts(state(&sockets[..3]).snapshot(), limit).len(),
            1
        );
    }
}
