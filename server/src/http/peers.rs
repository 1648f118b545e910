//! A hub's peers over HTTP (#13): `GET /api/v1/hosts`, which machine a `?host=` names, and the
//! doctor's and the history's routes sent on to the peer that `?host=` names — with the peer's
//! token, which the browser never sees; the peer's own rules answer (a read-only peer refuses
//! `kill`, its `why` probes its own addresses only).

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use portscope_shared::{ApiErrorCode, Host, HostStatus, Hosts};

use super::AppState;
use crate::peers::PeerHost;

/// The machine a request is about.
pub enum Which<'a> {
    /// This agent's (no `host`, or its own host name).
    Local,
    Peer(&'a PeerHost),
}

/// A `?host=` that is neither this agent nor one of its peers: a 404 `unknown_host`.
#[derive(Debug)]
pub struct UnknownHost(String);

impl IntoResponse for UnknownHost {
    fn into_response(self) -> Response {
        super::errors::answer(
            ApiErrorCode::UnknownHost,
            format!(
                "no host named `{}`: GET /api/v1/hosts lists them",
                portscope_core::text::one_line(&self.0)
            ),
        )
    }
}

/// The machine `?host=NAME` names.
pub fn which<'a>(app: &'a AppState, uri: &axum::http::Uri) -> Result<Which<'a>, UnknownHost> {
    let host = super::doctor::query(uri).remove("host");
    match host {
        None => Ok(Which::Local),
        Some(name) if name == app.hello.hostname => Ok(Which::Local),
        Some(name) => app
            .peers
            .get(&name)
            .map(Which::Peer)
            .ok_or(UnknownHost(name)),
    }
}

/// The state last published for the machine `?host=` names: this agent's, or a peer's copy.
pub fn published(
    app: &AppState,
    uri: &axum::http::Uri,
) -> Result<std::sync::Arc<portscope_core::model::Published>, UnknownHost> {
    Ok(match which(app, uri)? {
        Which::Local => app.watcher.borrow().clone(),
        Which::Peer(peer) => peer.watch().borrow().clone(),
    })
}

/// `GET /api/v1/hosts`: this agent, then its peers.
pub async fn hosts(State(app): State<AppState>) -> Response {
    let me = Host {
        name: app.hello.hostname.clone(),
        local: true,
        url: None,
        status: HostStatus::Live,
        detail: None,
        hostname: Some(app.hello.hostname.clone()),
        agent_version: Some(app.hello.agent_version.clone()),
        last_live: None,
        sockets: app.watcher.borrow().state.sockets.len(),
        can_kill: app.hello.can_kill,
    };
    let mut hosts = vec![me];
    // Stopping a process on a peer needs this agent's consent too.
    hosts.extend(app.peers.hosts().into_iter().map(|mut h| {
        h.can_kill &= app.hello.can_kill;
        h
    }));
    Json(Hosts { hosts }).into_response()
}

/// In front of the doctor's and the history's routes: a request with `?host=` naming a peer goes
/// to that peer (without `host`), and its answer comes back as it is (JSON only); others go on
/// here.
pub async fn on_peer(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let peer = match which(&app, req.uri()) {
        Ok(Which::Local) => return next.run(req).await,
        Ok(Which::Peer(peer)) => peer,
        Err(unknown) => return unknown.into_response(),
    };
    // Stopping a process on a peer needs this hub's consent too: a read-only hub stays so.
    if req.method() == axum::http::Method::POST
        && let Some(refused) = super::doctor::refuse_kill(&app, req.headers())
    {
        return refused;
    }
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            super::doctor::query(req.uri())
                .into_iter()
                .filter(|(k, _)| k != "host" && k != "token"),
        )
        .finish();
    let path = format!("{}?{query}", req.uri().path());
    let method = req.method().clone();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match axum::body::to_bytes(req.into_body(), super::MAX_CLIENT_MESSAGE).await {
        Ok(body) => body,
        Err(_) => return super::doctor::bad_request("the request body is too large"),
    };
    // A relayed call takes one of the same slots as a local diagnosis (429 beyond): a browser
    // cannot make the hub hold more connections to its peers than that.
    let Some(_permit) = super::doctor::permit(&app) else {
        return super::doctor::busy();
    };
    forward(peer, &method, &path, content_type.as_deref(), body).await
}

async fn forward(
    host: &crate::peers::PeerHost,
    method: &axum::http::Method,
    path: &str,
    content_type: Option<&str>,
    body: Bytes,
) -> Response {
    let peer = &host.peer;
    match crate::peers::request(peer, &host.relay, method, path, content_type, body).await {
        // The peer refused the hub's token: not the browser's token being wrong.
        Ok(answer) if answer.status == 401 => super::errors::answer(
            ApiErrorCode::PeerRefused,
            format!(
                "peer `{}` refused the hub's token for it (was it restarted with another?); \
                     update the peers file",
                peer.name
            ),
        ),
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut response = Response::new(Body::from(answer.body));
            *response.status_mut() = status;
            // Only JSON goes through: a peer cannot make the hub serve a page of its choosing.
            let json = answer
                .content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("application/json"));
            if json {
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            } else {
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
            }
            response
        }
        Err(e) => super::errors::answer(
            ApiErrorCode::PeerUnreachable,
            format!("peer `{}`: {e}", peer.name),
        ),
    }
}
