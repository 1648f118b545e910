//! The port doctor over HTTP: `GET /api/v1/who|why|bind|free` answer as the CLI's `--json` does;
//! `POST /api/v1/kill` stops a process of the agent's user that holds a socket. Bad input is a
//! JSON error (`bad_request`), never a plain-text rejection.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use portscope_shared::{ApiErrorCode, FreePorts, KillRequest};
use tokio::sync::OwnedSemaphorePermit;

use super::AppState;
use portscope_core::collector::Collector;
use portscope_core::os;
use portscope_doctor::{Source, bind, free, probe, target, why};
use portscope_doctor::{kill, who};

/// Doctor requests that may run at once; more get 429 (each scans /proc, and `why` may wait
/// seconds on connects and the HTTP probe).
pub const MAX_RUNNING: usize = 4;

pub(super) fn bad_request(message: impl std::fmt::Display) -> Response {
    super::errors::answer(ApiErrorCode::BadRequest, message.to_string())
}

/// A query parameter a route cannot take: answered 400 `bad_request` with this text.
#[derive(Debug, thiserror::Error)]
pub(super) enum BadQuery {
    #[error("missing ?port=N (1-65535)")]
    MissingPort,
    /// `?port=` is not a port (what `why` accepts: `5173`, `host:5173`, a URL).
    #[error(transparent)]
    Port(#[from] target::TargetError),
    #[error("?{key}=: {source}")]
    Moment {
        key: String,
        #[source]
        source: portscope_history::MomentError,
    },
    #[error("?{0}= must be a number")]
    NotANumber(String),
}

pub(super) fn internal(e: impl std::fmt::Display) -> Response {
    super::errors::answer(ApiErrorCode::Internal, e.to_string())
}

/// Where the doctor reads sockets: the live model when kernel events keep it current or the
/// agent rescans at least every [`portscope_doctor::LIVE_ENOUGH`] (it is then at most that old, and `why` checks
/// it against its connects), else a fresh scan.
fn source(app: &AppState) -> Source {
    if portscope_doctor::live_enough(&app.hello) {
        tracing::debug!("the doctor reads the live model");
        Source::Live(app.watcher.borrow().clone(), Some(app.metrics.clone()))
    } else {
        Source::Scan(Some(app.metrics.clone()))
    }
}

/// A slot among the [`MAX_RUNNING`] doctor requests; `None` when all are taken.
pub(super) fn permit(app: &AppState) -> Option<OwnedSemaphorePermit> {
    app.doctor_permits.clone().try_acquire_owned().ok()
}

/// The 429 answer when every slot is taken.
pub(super) fn busy() -> Response {
    super::errors::answer(
        ApiErrorCode::Busy,
        format!("{MAX_RUNNING} diagnoses are already running; try again in a moment"),
    )
}

/// The query string's parameters (the last value wins).
pub(super) fn query(uri: &Uri) -> HashMap<String, String> {
    form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// The port of `?port=`, which takes what `why` takes (`5173`, `localhost:5173`, a URL), so the
/// dashboard's one input serves every question.
pub(super) fn port_of(q: &HashMap<String, String>) -> Result<u16, BadQuery> {
    let text = q.get("port").ok_or(BadQuery::MissingPort)?;
    Ok(target::parse(text)?.port)
}

pub async fn who(State(app): State<AppState>, uri: Uri) -> Response {
    let port = match port_of(&query(&uri)) {
        Ok(port) => port,
        Err(e) => return bad_request(e),
    };
    let Some(_permit) = permit(&app) else {
        return busy();
    };
    let source = source(&app);
    let report = tokio::task::spawn_blocking(move || {
        let mut collector = Collector::this_machine();
        let report = source.with(|state| who::report(&mut collector, state, port));
        // A socket opened since the last tick is not in the live model yet.
        if report.sockets.is_empty() && matches!(source, Source::Live(..)) {
            return source
                .rescan()
                .with(|state| who::report(&mut collector, state, port));
        }
        report
    })
    .await;
    match report {
        Ok(report) => Json(report).into_response(),
        Err(e) => internal(e),
    }
}

pub async fn why(State(app): State<AppState>, uri: Uri) -> Response {
    let q = query(&uri);
    let Some(text) = q.get("target") else {
        return bad_request("missing ?target= (a port, host:port, [v6]:port or a URL)");
    };
    let target = match target::parse(text) {
        Ok(t) => t,
        Err(e) => return bad_request(e.0),
    };
    let Some(_permit) = permit(&app) else {
        return busy();
    };
    // The dashboard diagnoses this machine only: it must not become a way to probe other hosts.
    // The addresses checked here are the ones probed (no second lookup a rebinding DNS could
    // answer differently).
    let addrs = match probe::resolve(&target.host, target.port).await {
        Ok(addrs) => addrs,
        Err(e) => return bad_request(e.to_string()),
    };
    let interfaces = os::local_addresses();
    if let Some(foreign) = addrs.iter().find(|a| !probe::is_local(**a, &interfaces)) {
        return bad_request(format!(
            "{} ({foreign}) is not an address of this machine; the dashboard diagnoses local ports \
             only (run `portscope why {}` in a terminal for other hosts)",
            target.host, target.input
        ));
    }
    let opts = why::Options {
        timeout: Duration::from_secs(1),
        http_probe: !app.guard.is_shared(),
    };
    match why::gather(&target, addrs, source(&app), opts).await {
        Ok(mut facts) => {
            let (history, port, sockets) =
                (app.history.clone(), target.port, facts.sockets.clone());
            facts.previous = tokio::task::spawn_blocking(move || {
                portscope_doctor::Previous::unless_listening(history.as_deref(), port, &sockets)
            })
            .await
            .ok()
            .flatten();
            app.learned.record(&facts);
            Json(why::analyze(&facts)).into_response()
        }
        Err(e) => internal(e),
    }
}

pub async fn bind(State(app): State<AppState>, uri: Uri) -> Response {
    let port = match port_of(&query(&uri)) {
        Ok(port) => port,
        Err(e) => return bad_request(e),
    };
    let Some(_permit) = permit(&app) else {
        return busy();
    };
    let source = source(&app);
    let history = app.history.clone();
    let facts = tokio::task::spawn_blocking(move || {
        let mut facts = source.with(|state| bind::gather(state, port));
        // A failed bind with no holder in the live model: the holder came since the last tick.
        let unexplained =
            facts.sockets.is_empty() && facts.attempts.iter().any(|(_, r)| bind::failed(r));
        if unexplained && matches!(source, Source::Live(..)) {
            facts = source.rescan().with(|state| bind::gather(state, port));
        }
        facts.previous =
            portscope_doctor::Previous::unless_listening(history.as_deref(), port, &facts.sockets);
        facts
    });
    match facts.await {
        Ok(facts) => Json(bind::analyze(&facts)).into_response(),
        Err(e) => internal(e),
    }
}

pub async fn free(State(app): State<AppState>, uri: Uri) -> Response {
    let q = query(&uri);
    let number = |key: &str, default: u16, range: std::ops::RangeInclusive<u16>| match q.get(key) {
        None => Ok(default),
        Some(text) => text
            .parse::<u16>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                format!(
                    "?{key}= must be a number from {} to {}",
                    range.start(),
                    range.end()
                )
            }),
    };
    let (near, count) = match (
        number("near", free::DEFAULT_NEAR, 1..=65535),
        number("count", 5, 1..=100),
    ) {
        (Ok(near), Ok(count)) => (near, usize::from(count)),
        (Err(e), _) | (_, Err(e)) => return bad_request(e),
    };
    let Some(_permit) = permit(&app) else {
        return busy();
    };
    let source = source(&app);
    let ports = tokio::task::spawn_blocking(move || {
        source.with(|state| {
            free::find(
                near,
                count,
                state,
                &os::port_settings(),
                portscope_core::ports::Services::system(),
            )
        })
    })
    .await;
    match ports {
        Ok(ports) => Json(FreePorts { ports }).into_response(),
        Err(e) => internal(e),
    }
}

/// Why this agent refuses a request to stop a process before reading it, if it does: it does
/// not stop processes, or the request does not come from its own page. A hub asks it before
/// sending a `kill` on to a peer too (whose own rules then apply as well).
pub(super) fn refuse_kill(app: &AppState, headers: &HeaderMap) -> Option<Response> {
    if !app.hello.can_kill {
        return Some(super::errors::answer(
            ApiErrorCode::ReadOnly,
            "this agent does not stop processes (it was started with --no-kill, or shares read-only)",
        ));
    }
    // A state-changing request must come from our own page (or a non-browser client).
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() != b"same-origin"
    {
        return Some(super::errors::answer(
            ApiErrorCode::CrossSite,
            "stopping a process is allowed only from the dashboard itself (Sec-Fetch-Site: same-origin)",
        ));
    }
    None
}

pub async fn kill(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = refuse_kill(&app, &headers) {
        return refused;
    }
    let req: KillRequest = match serde_json::from_slice(&body) {
        Ok(req) => req,
        Err(e) => {
            return bad_request(format!(
                "the body must be JSON like {{\"pid\": 4242, \"start_time\": 1764400000}} (optional: \"signal\": \"TERM\", \"force_after_ms\": 5000): {e}"
            ));
        }
    };
    let signal = req.signal.as_deref().map(str::to_ascii_uppercase);
    if let Some(signal) = &signal
        && os::signal_by_name(signal).is_none()
    {
        return bad_request(format!(
            "unknown signal `{signal}`: expected {}",
            os::SIGNAL_NAMES
        ));
    }
    let force_after = req.force_after_ms.map(Duration::from_millis);
    if force_after.is_some_and(|d| d > kill::MAX_FORCE_AFTER) {
        return bad_request("force_after_ms may be at most 30000");
    }
    let Some(_permit) = permit(&app) else {
        return busy();
    };
    let outcome = tokio::task::spawn_blocking(move || {
        let scope = app
            .hello
            .kill_scope
            .unwrap_or_else(|| kill::scope_of_this_agent(None, false));
        // Its clients, if it is still running after the wait, from the model as it is then.
        kill::stop_requested(&req, &scope, signal.as_deref(), force_after, &|| {
            source(&app)
        })
    })
    .await;
    match outcome {
        Ok(Ok(report)) => Json(report).into_response(),
        Ok(Err(refusal)) => super::errors::answer(refusal.code(), refusal.to_string()),
        Err(e) => internal(e),
    }
}
