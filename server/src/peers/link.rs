//! The hub's side of one connection to a peer: TCP, TLS that trusts exactly the pinned
//! certificate (or the given CA), and the WebSocket handshake with the peer's token — or one
//! HTTP request for the doctor's routes. Every failure is a [`LinkError`] the hosts list shows.

use std::sync::Arc;
use std::time::Duration;

use portscope_shared::{Hello, PROTOCOL_VERSION, ServerMessage};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite;

use super::config::{Peer, Trust};

/// How long a connection (TCP, TLS and the handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest message a peer may send: its agent sends none over 512 KiB
/// (`portscope_shared::MAX_MESSAGE_BYTES`), so twice that is a peer that misbehaves.
pub const MAX_PEER_MESSAGE: usize = 1 << 20;

/// A byte stream to a peer (TLS).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type PeerSocket = WebSocketStream<Box<dyn Io>>;

/// Why a peer could not be reached or was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("unreachable ({0})")]
    Unreachable(String),
    #[error("refused: certificate fingerprint mismatch")]
    Fingerprint,
    #[error("refused: certificate ({0})")]
    Certificate(String),
    #[error("refused: token")]
    Token,
    #[error("refused: {0}")]
    Refused(String),
    #[error("version mismatch (the peer speaks protocol {0}, this hub {PROTOCOL_VERSION})")]
    Version(u32),
    #[error("lost ({0})")]
    Lost(String),
}

impl LinkError {
    /// The status a hosts list shows for it.
    pub fn status(&self) -> portscope_shared::HostStatus {
        use portscope_shared::HostStatus;
        match self {
            LinkError::Fingerprint
            | LinkError::Certificate(_)
            | LinkError::Token
            | LinkError::Refused(_) => HostStatus::Refused,
            LinkError::Version(_) => HostStatus::VersionMismatch,
            LinkError::Unreachable(_) | LinkError::Lost(_) => HostStatus::Unreachable,
        }
    }
}

/// Connects to the peer's WebSocket and reads its `Hello`.
pub async fn open(peer: &Peer) -> Result<(PeerSocket, Hello), LinkError> {
    let connect = async {
        let stream = stream(peer).await?;
        let mut request = tungstenite::client::IntoClientRequest::into_client_request(format!(
            "wss://{}/api/v1/ws",
            peer.authority
        ))
        .map_err(|e| LinkError::Refused(e.to_string()))?;
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", peer.token)
                .parse()
                .map_err(|_| LinkError::Refused("the token is not a valid header value".into()))?,
        );
        let config = tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(MAX_PEER_MESSAGE))
            .max_frame_size(Some(MAX_PEER_MESSAGE));
        // The handshake follows no redirect: anything but 101 is an answer to report.
        let (mut ws, _) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                .await
                .map_err(handshake_error)?;
        let hello = match next(&mut ws).await? {
            Some(ServerMessage::Hello(hello)) => hello,
            other => {
                return Err(LinkError::Refused(format!(
                    "it did not say Hello first ({other:?})"
                )));
            }
        };
        if hello.protocol_version != PROTOCOL_VERSION {
            return Err(LinkError::Version(hello.protocol_version));
        }
        Ok((ws, hello))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .unwrap_or_else(|_| Err(LinkError::Unreachable("timed out".into())))
}

/// The next message the peer sends (undecodable ones skipped); `None` when it closed.
pub async fn next(ws: &mut PeerSocket) -> Result<Option<ServerMessage>, LinkError> {
    next_message(ws)
        .await
        .map_err(|e| LinkError::Lost(e.to_string()))
}

/// Asks the peer for a fresh snapshot.
pub async fn resync(ws: &mut PeerSocket) -> Result<(), LinkError> {
    use futures_util::SinkExt;
    let text = serde_json::to_string(&portscope_shared::ClientMessage::Resync)
        .expect("protocol types always serialize");
    ws.send(tungstenite::Message::Text(text.into()))
        .await
        .map_err(|e| LinkError::Lost(e.to_string()))
}

/// The most a forwarded doctor answer may hold.
pub const MAX_ANSWER: usize = 4 << 20;

/// How long a forwarded doctor request may take (`why` waits for connects and HTTP answers).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A peer's answer to a forwarded request: status, content type, body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: axum::body::Bytes,
}

/// The hub's one connection to a peer's API for relayed requests, kept between them (HTTP/1
/// keep-alive): requests to one peer take turns on it. A connection that failed, or whose
/// request was cut short (a timeout), is not reused: the next request opens another.
#[derive(Default)]
pub struct Relay(tokio::sync::Mutex<Option<Sender>>);

type Sender = hyper::client::conn::http1::SendRequest<http_body_util::Full<axum::body::Bytes>>;

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").finish_non_exhaustive()
    }
}

/// Sends one request to the peer's API with its token (`path_and_query` from the root, e.g.
/// `/api/v1/who?port=5432`) over `relay`'s connection and reads its answer, following no
/// redirect.
pub async fn request(
    peer: &Peer,
    relay: &Relay,
    method: &axum::http::Method,
    path_and_query: &str,
    content_type: Option<&str>,
    body: axum::body::Bytes,
) -> Result<Answer, LinkError> {
    use http_body_util::BodyExt;
    let exchange = async {
        let mut kept = relay.0.lock().await;
        // Taken out while in use: put back only after a whole answer.
        let mut reused = kept.take();
        if let Some(sender) = reused.as_mut()
            && sender.ready().await.is_err()
        {
            reused = None;
        }
        let mut sender = match reused {
            Some(sender) => sender,
            None => {
                let io = hyper_util::rt::TokioIo::new(stream(peer).await?);
                let (sender, connection) = hyper::client::conn::http1::handshake(io)
                    .await
                    .map_err(|e| LinkError::Unreachable(e.to_string()))?;
                tokio::spawn(connection);
                sender
            }
        };
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(path_and_query)
            .header("host", &peer.authority)
            .header("authorization", format!("Bearer {}", peer.token));
        if let Some(kind) = content_type {
            request = request.header("content-type", kind);
        }
        let request = request
            .body(http_body_util::Full::new(body))
            .map_err(|e| LinkError::Refused(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| LinkError::Lost(e.to_string()))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| LinkError::Lost(format!("its answer: {e}")))?
            .to_bytes();
        *kept = Some(sender);
        Ok(Answer {
            status,
            content_type,
            body,
        })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(LinkError::Unreachable("timed out".into())))
}

/// TCP, then TLS as the peer's trust says.
async fn stream(peer: &Peer) -> Result<Box<dyn Io>, LinkError> {
    let tcp = tokio::net::TcpStream::connect(&peer.authority)
        .await
        .map_err(|e| LinkError::Unreachable(e.to_string()))?;
    let config = client_config(&peer.trust)?;
    let name = ServerName::try_from(peer.host.clone())
        .map_err(|e| LinkError::Refused(format!("`{}`: {e}", peer.host)))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(tls_error)?;
    Ok(Box::new(tls))
}

fn client_config(trust: &Trust) -> Result<rustls::ClientConfig, LinkError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| LinkError::Refused(e.to_string()))?;
    let config = match trust {
        Trust::Fingerprint(fp) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                expected: fp.clone(),
                provider,
            }))
            .with_no_client_auth(),
        Trust::Ca(path) => {
            use rustls::pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    LinkError::Certificate(format!("cannot read the CA {}: {e}", path.display()))
                })?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| LinkError::Certificate(e.to_string()))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(config)
}

fn tls_error(e: std::io::Error) -> LinkError {
    let inner = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::ApplicationVerificationFailure,
        )) => LinkError::Fingerprint,
        Some(rustls::Error::InvalidCertificate(why)) => LinkError::Certificate(format!("{why:?}")),
        Some(other) => LinkError::Unreachable(format!("TLS: {other}")),
        None => LinkError::Unreachable(e.to_string()),
    }
}

fn handshake_error(e: tungstenite::Error) -> LinkError {
    match e {
        tungstenite::Error::Http(response) => match response.status().as_u16() {
            401 => LinkError::Token,
            status => {
                let body = response
                    .body()
                    .as_deref()
                    .map(|b| String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned())
                    .unwrap_or_default();
                LinkError::Refused(format!(
                    "HTTP {status} {}",
                    portscope_core::text::one_line(&body)
                ))
            }
        },
        tungstenite::Error::Io(e) => tls_error(e),
        other => LinkError::Unreachable(other.to_string()),
    }
}

/// Accepts exactly the certificate whose SHA-256 is `expected`, and checks its signatures.
#[derive(Debug)]
struct Pinned {
    expected: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if crate::tls::fingerprint(end_entity) == self.expected {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
/// The next protocol message an agent sends on `ws` (ones this reader cannot decode are
/// skipped); `Ok(None)` once the agent closed the stream. A hub's peers and `watch`'s link to
/// the local agent (`server::local::Follower`) read agents through it.
pub async fn next_message<S>(
    ws: &mut tokio_tungstenite::WebSocketStream<S>,
) -> Result<Option<ServerMessage>, tokio_tungstenite::tungstenite::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    while let Some(message) = ws.next().await {
        match message? {
            Message::Text(text) => {
                if let Ok(message) = serde_json::from_str::<ServerMessage>(&text) {
                    return Ok(Some(message));
                }
            }
            Message::Close(_) => return Ok(None),
            _ => {}
        }
    }
    Ok(None)
}
