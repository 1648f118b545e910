//! The HTTP side: the embedded dashboard, `GET /api/v1/snapshot`, the `GET /api/v1/ws`
//! WebSocket, and the guards in front of them. Only this module knows HTTP and WebSocket
//! framing.

mod assets;
mod guard;
mod ws;

use std::net::SocketAddr;

use axum::extract::{Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use portscope_shared::{Hello, PROTOCOL_VERSION};

pub use guard::{Guard, Refusal, new_token};

use crate::model::Watcher;

/// Largest message a client may send; the protocol's client messages are tiny.
const MAX_CLIENT_MESSAGE: usize = 64 << 10;
const MAX_CLIENT_FRAME: usize = 16 << 10;
/// Past this much unsent data a client's connection fails instead of growing memory.
const MAX_WRITE_BUFFER: usize = 1 << 20;

/// Content-Security-Policy of every response: only our own files, WebAssembly allowed.
const CSP: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    pub guard: Guard,
    pub hello: Hello,
    pub watcher: Watcher,
}

impl AppState {
    pub fn new(guard: Guard, hostname: String, tick_ms: u64, watcher: Watcher) -> Self {
        Self {
            guard,
            hello: Hello {
                protocol_version: PROTOCOL_VERSION,
                agent_version: env!("CARGO_PKG_VERSION").into(),
                hostname,
                os: std::env::consts::OS.into(),
                tick_ms,
            },
            watcher,
        }
    }
}

/// The whole application, ready for `axum::serve`.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/v1/snapshot", get(snapshot))
        .route("/api/v1/ws", get(websocket))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .merge(api)
        .route("/", get(index))
        .fallback(get(asset))
        .layer(middleware::from_fn_with_state(state.clone(), require_host))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

/// The Host the request was accepted for, stored by [`require_host`].
#[derive(Clone, Debug)]
struct AcceptedHost(String);

async fn require_host(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let values = req
        .headers()
        .get_all(header::HOST)
        .iter()
        .map(|v| v.as_bytes());
    match app.guard.check_host(values) {
        Ok(host) => {
            req.extensions_mut().insert(AcceptedHost(host));
            next.run(req).await
        }
        Err(refusal) => refuse(&refusal, &req),
    }
}

async fn require_token(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let host = req
        .extensions()
        .get::<AcceptedHost>()
        .map(|h| h.0.clone())
        .unwrap_or_default();
    let origin = req.headers().get(header::ORIGIN).map(|v| v.as_bytes());
    let checked = app.guard.check_origin(origin, &host).and_then(|()| {
        let cookie_name = app.guard.cookie_name();
        let offered = offered_tokens(req.headers(), req.uri(), &cookie_name);
        app.guard.check_token(offered.iter().map(String::as_str))
    });
    match checked {
        Ok(()) => next.run(req).await,
        Err(refusal) => refuse(&refusal, &req),
    }
}

/// Every token a request offers: `Authorization: Bearer`, our cookie, and `?token=`.
fn offered_tokens(headers: &HeaderMap, uri: &Uri, cookie_name: &str) -> Vec<String> {
    let mut offered = Vec::new();
    for value in headers.get_all(header::AUTHORIZATION) {
        if let Some(token) = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) {
            offered.push(token.trim().to_owned());
        }
    }
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for cookie in cookie::Cookie::split_parse(value).flatten() {
            if cookie.name() == cookie_name {
                offered.push(cookie.value().to_owned());
            }
        }
    }
    offered.extend(query_tokens(uri));
    offered
}

fn query_tokens(uri: &Uri) -> impl Iterator<Item = String> + '_ {
    form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

fn refuse(refusal: &Refusal, req: &Request) -> Response {
    tracing::info!(path = %req.uri().path(), reason = %refusal, "refused a request");
    let status = if refusal.is_auth() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::FORBIDDEN
    };
    let body =
        serde_json::json!({ "error": { "code": refusal.code(), "message": refusal.to_string() } });
    (status, Json(body)).into_response()
}

async fn security_headers(mut res: Response) -> Response {
    let headers = res.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    res
}

/// The dashboard page. When the URL carries the right `?token=`, the token moves into an
/// HttpOnly, SameSite=Strict cookie and the browser is sent to the same URL without it, so
/// the token never stays in the address bar, the history or a shared link.
async fn index(State(app): State<AppState>, uri: Uri) -> Response {
    let offered: Vec<String> = query_tokens(&uri).collect();
    if offered.is_empty() {
        return asset(uri).await;
    }
    if app
        .guard
        .check_token(offered.iter().map(String::as_str))
        .is_err()
    {
        // A stale link: serve the page, which will say how to get a fresh one.
        return asset(uri).await;
    }
    let rest: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
                .filter(|(k, _)| k != "token"),
        )
        .finish();
    let location = if rest.is_empty() {
        "/".to_owned()
    } else {
        format!("/?{rest}")
    };
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/",
        app.guard.cookie_name(),
        app.guard.token()
    );
    let mut res = StatusCode::SEE_OTHER.into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).expect("re-encoded query is valid"),
    );
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("hex token is a valid header value"),
    );
    res
}

async fn asset(uri: Uri) -> Response {
    match assets::find(uri.path()) {
        Some(asset) => ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

async fn snapshot(State(app): State<AppState>) -> Response {
    let published = app.watcher.borrow().clone();
    Json(published.state.snapshot()).into_response()
}

async fn websocket(State(app): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_FRAME)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .on_upgrade(move |socket| ws::serve(socket, app.hello, app.watcher))
}

/// The URL printed at start: the dashboard, carrying the token.
pub fn dashboard_url(addr: SocketAddr, token: &str) -> String {
    format!("http://{addr}/?token={token}")
}
