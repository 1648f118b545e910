//! The port doctor over HTTP: `GET /api/v1/who|why|bind|free` answer as the CLI's `--json` does;
//! `POST /api/v1/kill` stops a process that holds a socket.

use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use portscope_shared::{FreePorts, KillRequest};
use serde::Deserialize;

use super::AppState;
use crate::collector::Collector;
use crate::doctor::{bind, free, probe, target, why};
use crate::{kill, os, who};

/// An error answer: `{"error": {"code", "message"}}`, like the guards'.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message.into() } });
    (status, Json(body)).into_response()
}

fn bad_request(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "bad_request", message)
}

fn internal(e: impl std::fmt::Display) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
}

#[derive(Debug, Deserialize)]
pub struct PortQuery {
    port: Option<String>,
}

/// The `?port=` of a request, or what is wrong with it.
fn port_of(q: &PortQuery) -> Result<u16, String> {
    let text = q.port.as_deref().ok_or("missing ?port=N (1-65535)")?;
    target::parse_port(text).map_err(|e| e.0)
}

pub async fn who(Query(q): Query<PortQuery>) -> Response {
    let port = match port_of(&q) {
        Ok(port) => port,
        Err(e) => return bad_request(e),
    };
    let report = tokio::task::spawn_blocking(move || {
        let mut collector = Collector::new(os::System::new());
        let state = collector.scan();
        who::report(&mut collector, &state, port)
    })
    .await;
    match report {
        Ok(report) => Json(report).into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct WhyQuery {
    target: Option<String>,
}

pub async fn why(Query(q): Query<WhyQuery>) -> Response {
    let Some(text) = q.target.as_deref() else {
        return bad_request("missing ?target= (a port, host:port, [v6]:port or a URL)");
    };
    let target = match target::parse(text) {
        Ok(t) => t,
        Err(e) => return bad_request(e.0),
    };
    // The dashboard diagnoses this machine only: it must not become a way to probe other hosts.
    match probe::resolve(&target.host, target.port).await {
        Ok(addrs) if !addrs.is_empty() && addrs.iter().all(|a| probe::is_local(*a)) => {}
        Ok(_) => {
            return bad_request(format!(
                "{} is not an address of this machine; the dashboard diagnoses local ports only \
                 (run `portscope why {}` in a terminal for other hosts)",
                target.host, target.input
            ));
        }
        Err(e) => return bad_request(format!("cannot resolve `{}`: {e}", target.host)),
    }
    let collector = Collector::new(os::System::new());
    let opts = why::Options {
        timeout: Duration::from_secs(1),
    };
    match why::gather(&target, collector, opts).await {
        Ok(facts) => Json(why::analyze(&facts)).into_response(),
        Err(e) => bad_request(e),
    }
}

pub async fn bind(Query(q): Query<PortQuery>) -> Response {
    let port = match port_of(&q) {
        Ok(port) => port,
        Err(e) => return bad_request(e),
    };
    match tokio::task::spawn_blocking(move || bind::gather(Collector::new(os::System::new()), port))
        .await
    {
        Ok(facts) => Json(bind::analyze(&facts)).into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct FreeQuery {
    near: Option<u16>,
    count: Option<u16>,
}

pub async fn free(Query(q): Query<FreeQuery>) -> Response {
    let near = q.near.filter(|&n| n > 0).unwrap_or(free::DEFAULT_NEAR);
    let count = usize::from(q.count.unwrap_or(5).clamp(1, 100));
    let ports = tokio::task::spawn_blocking(move || {
        let state = Collector::new(os::System::new()).scan();
        free::find(
            near,
            count,
            &state,
            &os::port_settings(),
            crate::ports::Services::system(),
        )
    })
    .await;
    match ports {
        Ok(ports) => Json(FreePorts { ports }).into_response(),
        Err(e) => internal(e),
    }
}

/// Longest `force_after_ms` a request may ask for.
const MAX_FORCE_AFTER: Duration = Duration::from_secs(30);

pub async fn kill(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Json<KillRequest>,
) -> Response {
    let Json(req) = body;
    if !app.hello.can_kill {
        return error(
            StatusCode::FORBIDDEN,
            "read_only",
            "this agent does not stop processes",
        );
    }
    // A state-changing request must come from our own page (or a non-browser client).
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() != b"same-origin"
    {
        return error(
            StatusCode::FORBIDDEN,
            "cross_site",
            "stopping a process is allowed only from the dashboard itself (Sec-Fetch-Site: same-origin)",
        );
    }
    let signal = req
        .signal
        .clone()
        .unwrap_or_else(|| "TERM".into())
        .to_ascii_uppercase();
    if os::signal_by_name(&signal).is_none() {
        return bad_request(format!(
            "unknown signal `{signal}`: expected TERM, INT, HUP, QUIT, KILL, USR1, USR2, STOP or CONT"
        ));
    }
    let force_after = req.force_after_ms.map(Duration::from_millis);
    if force_after.is_some_and(|d| d > MAX_FORCE_AFTER) {
        return bad_request("force_after_ms may be at most 30000");
    }
    // Only processes that hold a socket: the dashboard is not a general process killer.
    let holds_socket = app
        .watcher
        .borrow()
        .state
        .sockets
        .values()
        .any(|s| s.pids.contains(&req.pid));
    if !holds_socket {
        return error(
            StatusCode::FORBIDDEN,
            "not_a_socket_owner",
            format!(
                "pid {} holds no socket; the dashboard stops only processes that hold one",
                req.pid
            ),
        );
    }
    let pid = req.pid;
    let outcome = tokio::task::spawn_blocking(move || {
        let mut collector = Collector::new(os::System::new());
        let me = kill::Me::current(&mut collector);
        let process = collector.raw_process(pid);
        kill::check(pid, process.as_ref(), me, false)?;
        let process = process.expect("checked");
        tracing::info!(pid, name = %process.name, %signal, "stopping a process on the dashboard's request");
        Ok::<_, kill::Refusal>(kill::stop(&process, &signal, force_after, false))
    })
    .await;
    match outcome {
        Ok(Ok(report)) => Json(report).into_response(),
        Ok(Err(refusal)) => error(StatusCode::FORBIDDEN, "refused", refusal.to_string()),
        Err(e) => internal(e),
    }
}
