//! Share mode: HTTPS with a self-signed certificate whose fingerprint is printed, the token still
//! required, read-only unless --allow-kill. The client here pins the printed fingerprint, as a
//! careful user would; it connects over loopback only.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use portscope_shared::ServerMessage;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

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
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest = ring::digest::digest(&ring::digest::SHA256, end_entity);
        let seen: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        if seen.join(":") == self.expected {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "certificate fingerprint mismatch".into(),
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
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
        dss: &DigitallySignedStruct,
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

/// A shared agent with its own config directory; its URL, token and fingerprint.
struct Shared {
    child: std::process::Child,
    port: u16,
    token: String,
    fingerprint: String,
    _config: tempdir::Dir,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_shared(extra: &[&str]) -> Shared {
    let config = std::env::temp_dir().join(format!(
        "portscope-share-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_portscope"))
        .args([
            "serve",
            "--share",
            "0.0.0.0",
            "--port",
            "0",
            "--interval",
            "250ms",
        ])
        .args(extra)
        .env("XDG_CONFIG_HOME", &config)
        .env("XDG_STATE_HOME", &config)
        .env_remove("PORTSCOPE_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot start portscope");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines.next().expect("a URL line").unwrap();
    let print = lines.next().expect("a fingerprint line").unwrap();
    std::thread::spawn(move || lines.for_each(drop));
    let rest = url
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("not an https URL: {url}"));
    let (authority, token) = rest.split_once("/?token=").unwrap();
    let port = authority.rsplit_once(':').unwrap().1.parse().unwrap();
    let fingerprint = print
        .strip_prefix("TLS certificate SHA-256 fingerprint: ")
        .unwrap_or_else(|| panic!("no fingerprint line: {print}"))
        .to_owned();
    Shared {
        child,
        port,
        token: token.to_owned(),
        fingerprint,
        _config: tempdir::Dir(config),
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        .into()
}

/// TLS to 127.0.0.1:port pinning `fingerprint`, then a WebSocket with or without the token.
async fn wss(port: u16, fingerprint: &str, token: Option<&str>) -> Result<ServerMessage, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned {
            expected: fingerprint.to_owned(),
            provider,
        }))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| format!("TLS: {e}"))?;
    let mut request = format!("wss://127.0.0.1:{port}/api/v1/ws")
        .into_client_request()
        .unwrap();
    if let Some(token) = token {
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
    }
    let (mut ws, _) = tokio_tungstenite::client_async(request, tls)
        .await
        .map_err(|e| format!("WebSocket: {e}"))?;
    match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str(&text).map_err(|e| e.to_string()),
        other => Err(format!("no Hello: {other:?}")),
    }
}

#[tokio::test]
async fn a_client_pinning_the_fingerprint_connects_over_wss_and_one_without_the_token_does_not() {
    let agent = start_shared(&[]);
    let hello = wss(agent.port, &agent.fingerprint, Some(&agent.token))
        .await
        .unwrap();
    let ServerMessage::Hello(hello) = hello else {
        panic!("Hello expected, got {hello:?}")
    };
    assert!(
        !hello.can_kill,
        "share mode is read-only without --allow-kill"
    );

    let refused = wss(agent.port, &agent.fingerprint, None).await.unwrap_err();
    assert!(refused.contains("401"), "{refused}");
    let wrong = "00:".repeat(31) + "00";
    let refused = wss(agent.port, &wrong, Some(&agent.token))
        .await
        .unwrap_err();
    assert!(refused.starts_with("TLS:"), "{refused}");
    // Plain HTTP on the shared port gets nothing.
    let plain = tokio::net::TcpStream::connect(("127.0.0.1", agent.port))
        .await
        .unwrap();
    let (mut r, mut w) = plain.into_split();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = w
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), r.read(&mut buf))
        .await
        .map(|r| r.unwrap_or(0))
        .unwrap_or(0);
    assert!(
        !buf[..n].starts_with(b"HTTP/1.1 200"),
        "plain HTTP was served"
    );

    // With --allow-kill the dashboard may stop processes.
    let agent = start_shared(&["--allow-kill"]);
    let ServerMessage::Hello(hello) = wss(agent.port, &agent.fingerprint, Some(&agent.token))
        .await
        .unwrap()
    else {
        panic!("Hello expected")
    };
    assert!(hello.can_kill);
}

#[test]
fn share_mode_refuses_to_start_half_configured_and_bind_refuses_open_addresses() {
    for (args, says) in [
        (&["serve", "--bind", "0.0.0.0"][..], "--share"),
        (
            &[
                "serve",
                "--share",
                "0.0.0.0",
                "--tls-cert",
                "/nonexistent.pem",
            ][..],
            "--tls-cert and --tls-key go together",
        ),
        (
            &["serve", "--tls-cert", "/x.pem", "--tls-key", "/y.pem"][..],
            "--share",
        ),
        (
            &[
                "serve",
                "--share",
                "0.0.0.0",
                "--tls-cert",
                "/nonexistent.pem",
                "--tls-key",
                "/nonexistent.key",
            ][..],
            "cannot read the certificate",
        ),
    ] {
        let (code, _, err) = crate::support::run_cli(args);
        assert_ne!(code, 0, "{args:?} started");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn repeated_wrong_tokens_lock_an_address_out_in_share_mode() {
    let agent = start_shared(&[]);
    let mut refusals = Vec::new();
    for _ in 0..22 {
        let err = wss(agent.port, &agent.fingerprint, Some("wrong"))
            .await
            .unwrap_err();
        refusals.push(if err.contains("429") {
            429
        } else if err.contains("401") {
            401
        } else {
            0
        });
    }
    assert!(refusals[..20].iter().all(|s| *s == 401), "{refusals:?}");
    assert!(refusals[20..].iter().all(|s| *s == 429), "{refusals:?}");
    // While locked out, even the right token waits: guessing stops being useful.
    let err = wss(agent.port, &agent.fingerprint, Some(&agent.token))
        .await
        .unwrap_err();
    assert!(err.contains("429"), "{err}");
}
