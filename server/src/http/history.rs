//! The port history over HTTP: `GET /api/v1/history` (what `portscope history --json`
//! prints), `/api/v1/history/spans` (each listener's life in a window, for the dashboard's
//! timeline) and `/api/v1/history/connections` (a port's connections per minute). Each reads
//! the agent's own file read-only, on a blocking thread.

use std::collections::HashMap;
use std::path::PathBuf;

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use portscope_shared::{ApiErrorCode, ConnectionHistory};

use super::AppState;
use super::doctor::{BadQuery, bad_request, busy, internal, permit, port_of, query};
use portscope_history::{HistoryError, Store};

/// Spans a timeline request gets by default, and at most.
const SPANS: usize = 5_000;
const MAX_SPANS: usize = 20_000;
/// The window a request without `since` looks at.
const DEFAULT_SINCE: &str = "1h";

/// The history file, or the 404 that says the agent keeps none.
#[allow(clippy::result_large_err)]
fn file(app: &AppState) -> Result<PathBuf, Response> {
    app.history.clone().ok_or_else(|| {
        super::errors::answer(
            ApiErrorCode::NoHistory,
            "this agent keeps no port history (it was started with --no-history)",
        )
    })
}

/// `?key=` as a moment (ms): a duration ago, RFC 3339 or `HH:MM`.
fn moment(q: &HashMap<String, String>, key: &str) -> Result<Option<i64>, BadQuery> {
    q.get(key)
        .map(|v| {
            portscope_history::moment(v)
                .map(portscope_history::millis)
                .map_err(|source| BadQuery::Moment {
                    key: key.into(),
                    source,
                })
        })
        .transpose()
}

/// `?since=`, by default [`DEFAULT_SINCE`] ago.
fn since(q: &HashMap<String, String>) -> Result<i64, BadQuery> {
    Ok(moment(q, "since")?.unwrap_or_else(|| {
        portscope_history::millis(
            portscope_history::moment(DEFAULT_SINCE).expect("a valid duration"),
        )
    }))
}

/// Runs `read` on the file on a blocking thread and answers its result as JSON. It takes one of
/// the doctor's slots (at most four reads and diagnoses at once; 429 beyond).
/// The longest a history route waits for the writer to catch up with what was published.
const HISTORY_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(2);

async fn answer<T: serde::Serialize + Send + 'static>(
    app: &AppState,
    path: PathBuf,
    read: impl FnOnce(&Store) -> Result<T, HistoryError> + Send + 'static,
) -> Response {
    let Some(permit) = permit(app) else {
        return busy();
    };
    let progress = app.history_progress.clone();
    let read = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        // What was published before this request is read too (a page reloaded right after a
        // change), unless the writer is more than a moment behind.
        if let Some(progress) = progress {
            progress.wait_written(HISTORY_CATCH_UP);
        }
        read(&Store::open_read_only(&path)?)
    })
    .await;
    match read {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(e)) => super::errors::answer(ApiErrorCode::HistoryUnavailable, e.to_string()),
        Err(e) => internal(e),
    }
}

/// `GET /api/v1/history?port=&since=&until=&at=&pid=&limit=`: what `history --json` prints,
/// read from the agent's own file.
pub async fn history(State(app): State<AppState>, uri: Uri) -> Response {
    let path = match file(&app) {
        Ok(path) => path,
        Err(answer) => return answer,
    };
    let q = query(&uri);
    let moment = |key: &str| moment(&q, key);
    let number = |key: &str| -> Result<Option<u32>, BadQuery> {
        q.get(key)
            .map(|v| {
                v.parse::<u32>()
                    .map_err(|_| BadQuery::NotANumber(key.into()))
            })
            .transpose()
    };
    let port = match q.get("port").map(|_| port_of(&q)).transpose() {
        Ok(port) => port,
        Err(e) => return bad_request(e),
    };
    let (since, until, at, pid, limit) = match (
        moment("since"),
        moment("until"),
        moment("at"),
        number("pid"),
        number("limit"),
    ) {
        (Ok(s), Ok(u), Ok(a), Ok(p), Ok(l)) => (s, u, a, p, l.unwrap_or(50).min(10_000)),
        (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), ..) | (.., Err(e), _) | (.., Err(e)) => {
            return bad_request(e);
        }
    };
    if at.is_some() && port.is_none() {
        return bad_request("?at= needs ?port=");
    }
    answer(&app, path, move |store| {
        let events = match (at, port) {
            (Some(at), Some(port)) => store.holders_at(port, at),
            _ => store.query(&portscope_history::Query {
                port,
                since,
                until,
                pid,
                limit: i64::from(limit),
            }),
        }?;
        Ok(serde_json::json!({ "events": events }))
    })
    .await
}

/// `GET /api/v1/history/spans?since=&until=&port=&limit=`: [`portscope_shared::Spans`].
pub async fn spans(State(app): State<AppState>, uri: Uri) -> Response {
    let path = match file(&app) {
        Ok(path) => path,
        Err(answer) => return answer,
    };
    let q = query(&uri);
    let now = portscope_history::millis(std::time::SystemTime::now());
    let since = match since(&q) {
        Ok(since) => since,
        Err(e) => return bad_request(e),
    };
    let until = match moment(&q, "until") {
        Ok(until) => until.unwrap_or(now),
        Err(e) => return bad_request(e),
    };
    if until < since {
        return bad_request("?until= is before ?since=");
    }
    let port = match q.get("port").map(|_| port_of(&q)).transpose() {
        Ok(port) => port,
        Err(e) => return bad_request(e),
    };
    let limit = match q.get("limit").map(|v| v.parse::<usize>()).transpose() {
        Ok(limit) => limit.unwrap_or(SPANS).min(MAX_SPANS),
        Err(_) => return bad_request("?limit= must be a number"),
    };
    answer(&app, path, move |store| {
        store.spans(since, until, port, limit)
    })
    .await
}

/// `GET /api/v1/history/connections?port=N&since=`: [`ConnectionHistory`].
pub async fn connections(State(app): State<AppState>, uri: Uri) -> Response {
    let path = match file(&app) {
        Ok(path) => path,
        Err(answer) => return answer,
    };
    let q = query(&uri);
    let port = match port_of(&q) {
        Ok(port) => port,
        Err(e) => return bad_request(e),
    };
    let since = match since(&q) {
        Ok(since) => since,
        Err(e) => return bad_request(e),
    };
    answer(&app, path, move |store| {
        Ok(ConnectionHistory {
            port,
            minutes: store.connections(port, since)?,
        })
    })
    .await
}
