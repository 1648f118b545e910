//! The HTTP side: the embedded dashboard, `GET /api/v1/snapshot`, the `GET /api/v1/ws`
//! WebSocket, the port doctor's routes (`doctor.rs`), the history's (`history.rs`),
//! `GET /metrics` (rendered by `portscope_core::metrics`), and the guards in front of them. Only this module knows HTTP and WebSocket
//! framing.

mod assets;
mod doctor;
mod errors;
mod guard;
mod history;
mod limits;
pub mod local;
mod open;
mod peers;
mod ws;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use portscope_shared::{ApiErrorCode, Hello, PROTOCOL_VERSION};

pub use guard::{Access, Guard, Refusal, new_token};
pub use open::OpenLink;

use portscope_core::model::Watcher;

/// Largest message a client may send; the protocol's client messages are tiny.
pub(crate) const MAX_CLIENT_MESSAGE: usize = 64 << 10;
pub(crate) const MAX_CLIENT_FRAME: usize = 16 << 10;
/// Past this much unsent data a client's connection fails instead of growing memory. tungstenite
/// refuses any message larger than this, so `ws.rs` writes none over
/// [`portscope_shared::MAX_MESSAGE_BYTES`] (512 KiB; large snapshots go in parts) and one at a
/// time, never queueing (a slow client gets one coalesced delta).
pub(crate) const MAX_WRITE_BUFFER: usize = 1 << 20;

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
    /// Bounds the doctor's requests running at once (each scans, connects and may wait seconds).
    pub doctor_permits: std::sync::Arc<tokio::sync::Semaphore>,
    /// Caps on WebSocket clients.
    pub limits: limits::Limits,
    /// Failed token attempts per client address.
    pub auth_failures: limits::AuthFailures,
    /// `--open`'s one-time link.
    pub open: OpenLink,
    /// What `why` heard from listeners, shared with the collector.
    pub learned: portscope_doctor::Learned,
    /// The port history's file, when the agent keeps one.
    pub history: Option<std::path::PathBuf>,
    /// How far the history's writer has come: the history routes wait (a moment at most) for
    /// what was published before their request.
    pub history_progress: Option<std::sync::Arc<portscope_history::Progress>>,
    /// What `GET /metrics` reports of the agent itself.
    pub metrics: portscope_core::metrics::Metrics,
    /// A hub's peers (`--peers`); none otherwise.
    pub peers: crate::peers::Peers,
}

impl AppState {
    /// `can_kill`: whether `POST /api/v1/kill` may stop processes (`serve --no-kill` says no).
    pub fn new(
        guard: Guard,
        hostname: String,
        tick_ms: u64,
        watcher: Watcher,
        can_kill: bool,
    ) -> Self {
        Self {
            guard,
            hello: Hello {
                protocol_version: PROTOCOL_VERSION,
                agent_version: env!("CARGO_PKG_VERSION").into(),
                hostname,
                os: std::env::consts::OS.into(),
                tick_ms,
                changes: portscope_shared::Changes::Poll,
                ephemeral_ports: portscope_core::os::port_settings().ephemeral,
                can_kill,
                history: false,
                kill_scope: None,
            },
            watcher,
            doctor_permits: std::sync::Arc::new(tokio::sync::Semaphore::new(doctor::MAX_RUNNING)),
            limits: limits::Limits::default(),
            auth_failures: limits::AuthFailures::default(),
            open: OpenLink::default(),
            learned: portscope_doctor::Learned::default(),
            history: None,
            history_progress: None,
            metrics: portscope_core::metrics::Metrics::default(),
            peers: crate::peers::Peers::default(),
        }
    }
}

/// The whole application, ready for `axum::serve`. The page and its files need no token: they
/// hold no data. The page takes the token from its URL, keeps it in the tab's sessionStorage
/// (scoped to this exact origin) and drops it from the address bar.
pub fn app(state: AppState) -> Router {
    // `?host=NAME` sends them to that peer of a hub.
    let doctor = Router::new()
        .route("/api/v1/who", get(doctor::who))
        .route("/api/v1/why", get(doctor::why))
        .route("/api/v1/bind", get(doctor::bind))
        .route("/api/v1/free", get(doctor::free))
        .route("/api/v1/kill", post(doctor::kill))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            peers::on_peer,
        ));
    // A peer's history is the peer's to answer: relayed like the doctor's routes.
    let history = Router::new()
        .route("/api/v1/history", get(history::history))
        .route("/api/v1/history/spans", get(history::spans))
        .route("/api/v1/history/connections", get(history::connections))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            peers::on_peer,
        ));
    let api = Router::new()
        .route("/api/v1/snapshot", get(snapshot))
        .route("/api/v1/ws", get(websocket))
        .route("/api/v1/hosts", get(peers::hosts))
        .route("/api/v1/graph", get(graph))
        .merge(doctor)
        .merge(history)
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .merge(api)
        // Needs no token: the nonce is the secret, and it works once.
        .route("/open/{nonce}", get(open::redeem))
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
    let peer = peer_ip(&req);
    let now = std::time::Instant::now();
    // Only in share mode: locally every client is 127.0.0.1, and another local user could keep
    // the owner locked out; the 128-bit token makes guessing hopeless anyway.
    let shared = app.guard.is_shared();
    if shared && let Some(wait) = app.auth_failures.locked(peer, now) {
        let secs = wait.as_secs().max(1);
        let mut res = errors::answer(
            ApiErrorCode::TooManyFailures,
            format!(
                "too many wrong tokens from {peer}; wait {secs} s, then open the URL portscope printed"
            ),
        );
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return res;
    }
    let origin = req.headers().get(header::ORIGIN).map(|v| v.as_bytes());
    let site = req.headers().get("sec-fetch-site").map(|v| v.as_bytes());
    // An origin given with --allow-origin is another site by definition: its requests are
    // marked same-site or cross-site, and that is expected.
    let site = if app.guard.is_listed_origin(origin) {
        None
    } else {
        site
    };
    let checked = app
        .guard
        .check_fetch_site(site)
        .and_then(|()| app.guard.check_origin(origin, &host))
        .and_then(|()| {
            let offered = offered_tokens(req.headers(), req.uri());
            app.guard.check_token(offered.iter().map(String::as_str))
        })
        .and_then(|access| match access {
            Access::Full => Ok(()),
            // A scraper's token reads the metrics and nothing else (the WebSocket included).
            Access::MetricsOnly if req.uri().path() == "/metrics" => Ok(()),
            Access::MetricsOnly => Err(Refusal::MetricsOnly),
        });
    match checked {
        Ok(()) => next.run(req).await,
        Err(refusal) => {
            // A missing token is what any web page's request looks like: not a guess.
            if shared && refusal == Refusal::WrongToken {
                app.auth_failures.record(peer, now);
            }
            refuse(&refusal, &req)
        }
    }
}

/// The client's address, from the connection (`serve` provides it); loopback when unknown.
fn peer_ip(req: &Request) -> std::net::IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), |c| {
            c.0.ip()
        })
}

/// Every token a request offers: `Authorization: Bearer` (scheme case-insensitive, RFC 9110)
/// and `?token=` (browsers cannot set headers on a WebSocket).
///
/// No cookie: cookies ignore ports, so one set by the agent would travel to every other server
/// on localhost the user visits.
fn offered_tokens(headers: &HeaderMap, uri: &Uri) -> Vec<String> {
    let mut offered = Vec::new();
    for value in headers.get_all(header::AUTHORIZATION) {
        let Ok(value) = value.to_str() else { continue };
        if let Some((scheme, token)) = value.split_once(' ')
            && scheme.eq_ignore_ascii_case("bearer")
        {
            offered.push(token.trim().to_owned());
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
    errors::answer(refusal.code(), refusal.to_string())
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

async fn asset(uri: Uri, headers: HeaderMap) -> Response {
    let Some(asset) = assets::find(uri.path()) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let accepts_gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(assets::accepts_gzip);
    match asset.gzip {
        Some(gzip) if accepts_gzip => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CONTENT_ENCODING, "gzip"),
                (header::VARY, "accept-encoding"),
            ],
            gzip,
        )
            .into_response(),
        Some(_) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::VARY, "accept-encoding"),
            ],
            asset.body,
        )
            .into_response(),
        None => ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response(),
    }
}

/// `GET /api/v1/graph`: who talks to whom, from the live state (of `?host=`'s machine).
/// Remote addresses are named from this machine's hosts file, on its own graph only (a peer's
/// addresses may mean other machines there).
async fn graph(State(app): State<AppState>, uri: Uri) -> Response {
    let local = matches!(peers::which(&app, &uri), Ok(peers::Which::Local));
    match peers::published(&app, &uri) {
        Ok(published) => {
            let mut graph = portscope_core::graph::of(&published.state);
            if local {
                portscope_core::graph::name_remotes(
                    &mut graph,
                    &portscope_core::graph::HostsCache::system().get(),
                );
            }
            Json(graph).into_response()
        }
        Err(unknown) => unknown.into_response(),
    }
}

async fn snapshot(State(app): State<AppState>, uri: Uri) -> Response {
    match peers::published(&app, &uri) {
        Ok(published) => Json(published.state.snapshot()).into_response(),
        Err(unknown) => unknown.into_response(),
    }
}

async fn websocket(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    upgrade: WebSocketUpgrade,
) -> Response {
    // This machine's stream, or (on a hub) a peer's, relayed from the hub's model of it.
    let (hello, watcher, alive) = match peers::which(&app, &uri) {
        Ok(peers::Which::Local) => (
            app.hello.clone(),
            app.watcher.clone(),
            portscope_core::events::process_runs as fn(&portscope_shared::Process) -> bool,
        ),
        Ok(peers::Which::Peer(host)) => {
            let mut hello = host.hello();
            // Stopping a process there needs this agent's consent too.
            hello.can_kill &= app.hello.can_kill;
            (hello, host.watch(), host.alive())
        }
        Err(unknown) => return unknown.into_response(),
    };
    let slot = match app.limits.admit(peer.ip()) {
        Ok(slot) => slot,
        Err(full) => {
            tracing::info!(%peer, %full, "refused a WebSocket client");
            return errors::answer(ApiErrorCode::TooManyConnections, full.to_string());
        }
    };
    upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_FRAME)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .on_upgrade(move |socket| async move {
            let counted = app.metrics.client(peer.ip());
            ws::serve(socket, hello, watcher, alive).await;
            drop((slot, counted));
        })
}

/// `GET /metrics`: the OpenMetrics exposition Prometheus scrapes (with the token, sent as
/// `Authorization: Bearer` from its `credentials_file`).
async fn metrics(State(app): State<AppState>) -> Response {
    let published = app.watcher.borrow().clone();
    let body = app.metrics.render(&published.state, &app.peers.up());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(portscope_core::metrics::CONTENT_TYPE),
        )],
        body,
    )
        .into_response()
}

/// The URL printed at start: the dashboard, carrying the token.
pub fn dashboard_url(addr: SocketAddr, token: &str) -> String {
    format!("http://{addr}/?token={token}")
}
