//! Share mode's TLS: the user's certificate, or a self-signed one made once (rcgen) and kept in
//! the config directory, and its SHA-256 fingerprint for clients to pin. rustls with the ring
//! provider; no OpenSSL.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why share mode has no certificate to serve with; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "--tls-cert and --tls-key go together: give both, or neither for a self-signed certificate"
    )]
    HalfAPair,
    #[error("cannot read the certificate {}: {error}", path.display())]
    ReadCertificate { path: PathBuf, error: pem::Error },
    #[error("{} is not a PEM certificate: {error}", path.display())]
    NotPem { path: PathBuf, error: pem::Error },
    #[error("{} holds no certificate", .0.display())]
    NoCertificate(PathBuf),
    #[error("cannot read a PEM private key from {}: {error}", path.display())]
    ReadKey { path: PathBuf, error: pem::Error },
    #[error("TLS protocol versions: {0}")]
    Versions(rustls::Error),
    #[error("the certificate and key do not fit together: {0}")]
    Config(rustls::Error),
    #[error("neither XDG_CONFIG_HOME nor HOME is set: give --tls-cert and --tls-key")]
    NoConfigDir,
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(rcgen::Error),
    #[error("cannot create {}: {error}", path.display())]
    CreateDir {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot write {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// A certificate chain and key ready for rustls, and how to recognise the certificate.
#[derive(Debug)]
pub struct Identity {
    pub config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the leaf certificate (DER), as `AB:CD:…`.
    pub fingerprint: String,
    /// Where the certificate came from, for the log.
    pub source: String,
}

/// Loads `--tls-cert`/`--tls-key`, or the self-signed pair in the config directory (made on
/// first use for `names`).
pub fn identity(
    cert: Option<&Path>,
    key: Option<&Path>,
    names: &[String],
) -> Result<Identity, TlsError> {
    match (cert, key) {
        (None, None) => identity_in(&config_dir()?, None, None, names),
        _ => identity_in(Path::new(""), cert, key, names),
    }
}

/// [`identity`] with the config directory given (`config`/tls holds the self-signed pair).
fn identity_in(
    config: &Path,
    cert: Option<&Path>,
    key: Option<&Path>,
    names: &[String],
) -> Result<Identity, TlsError> {
    let (cert_path, key_path, source) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_owned(), k.to_owned(), format!("{}", c.display())),
        (None, None) => {
            let dir = config.join("tls");
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !c.exists() || !k.exists() {
                self_signed(&dir, &c, &k, names)?;
            }
            let source = format!("self-signed, {}", c.display());
            (c, k, source)
        }
        _ => return Err(TlsError::HalfAPair),
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|error| TlsError::ReadCertificate {
            path: cert_path.clone(),
            error,
        })?
        .collect::<Result<_, _>>()
        .map_err(|error| TlsError::NotPem {
            path: cert_path.clone(),
            error,
        })?;
    let leaf = chain
        .first()
        .ok_or_else(|| TlsError::NoCertificate(cert_path.clone()))?;
    let fingerprint = fingerprint(leaf);
    warn_if_readable_by_others(&key_path);
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|error| TlsError::ReadKey {
        path: key_path.clone(),
        error,
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Versions)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Identity {
        config: Arc::new(config),
        fingerprint,
        source,
    })
}

/// A private key others can read is a leaked key: say so (and how to fix it) at start.
fn warn_if_readable_by_others(key: &Path) {
    if let Ok(meta) = std::fs::metadata(key)
        && portscope_core::os::open_to_others(&meta).is_some()
    {
        tracing::warn!(
            key = %key.display(),
            "the TLS private key is readable by other users; run `chmod 600` on it"
        );
    }
}

/// SHA-256 of a certificate's DER bytes, as colon-separated upper-case hex (how browsers and
/// `openssl x509 -fingerprint -sha256` show it).
pub fn fingerprint(cert: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `$XDG_CONFIG_HOME/portscope`, or `~/.config/portscope`.
fn config_dir() -> Result<PathBuf, TlsError> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .or_else(portscope_core::os::app_data_dir)
        .ok_or(TlsError::NoConfigDir)?;
    Ok(base.join("portscope"))
}

/// Makes a self-signed certificate for `names` (and localhost), key readable by the user only.
fn self_signed(dir: &Path, cert: &Path, key: &Path, names: &[String]) -> Result<(), TlsError> {
    let mut sans: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    sans.extend(names.iter().cloned());
    sans.dedup();
    let certified = rcgen::generate_simple_self_signed(sans).map_err(TlsError::Generate)?;
    let cannot_write = |path: &Path| {
        let path = path.to_owned();
        move |error| TlsError::Write { path, error }
    };
    portscope_core::os::private_dir_builder()
        .create(dir)
        .map_err(|error| TlsError::CreateDir {
            path: dir.to_owned(),
            error,
        })?;
    // Both files are written under new private names, then renamed into place (key first): a
    // reader never sees a cert without its key, and the key is never readable by others, even
    // for a moment or when an old key.pem was left behind.
    let unique = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let write_new = |path: &Path, bytes: &[u8]| -> Result<PathBuf, TlsError> {
        let tmp = path.with_extension(format!("tmp-{unique}"));
        let mut file = portscope_core::os::new_private_file()
            .open(&tmp)
            .map_err(cannot_write(&tmp))?;
        file.write_all(bytes).map_err(cannot_write(&tmp))?;
        file.sync_all().map_err(cannot_write(&tmp))?;
        Ok(tmp)
    };
    let key_tmp = write_new(key, certified.signing_key.serialize_pem().as_bytes())?;
    let cert_tmp = write_new(cert, certified.cert.pem().as_bytes())?;
    std::fs::rename(&key_tmp, key).map_err(cannot_write(key))?;
    std::fs::rename(&cert_tmp, cert).map_err(cannot_write(cert))?;
    tracing::info!(cert = %cert.display(), "made a self-signed certificate for share mode");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::process::Command;

    use rustls::DigitallySignedStruct;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{ServerName, UnixTime};

    use super::*;

    /// A directory of its own under the temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("portscope-tls-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Runs `openssl`, the independent reader of the certificates here.
    #[track_caller]
    fn openssl(args: &[&str]) -> Vec<u8> {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "these tests check certificates against OpenSSL's reading of them: \
                 install it (`apt-get install openssl`): {e}"
                )
            });
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
        out.stdout
    }

    /// OpenSSL's SHA-256 fingerprint of a PEM certificate: `AB:CD:…`.
    fn openssl_fingerprint(cert: &Path) -> String {
        let cert = cert.to_str().unwrap();
        let out = openssl(&["x509", "-in", cert, "-noout", "-fingerprint", "-sha256"]);
        let out = String::from_utf8(out).unwrap();
        // "sha256 Fingerprint=AB:…" (OpenSSL 3), "SHA256 Fingerprint=AB:…" (1.1).
        let (_, hex) = out
            .trim()
            .split_once('=')
            .expect("openssl prints name=fingerprint");
        hex.to_owned()
    }

    /// `identity_in(config/portscope, None, None, …)`: the fingerprint and the source it
    /// reports (the config directory given, as `identity` derives it from XDG_CONFIG_HOME).
    fn self_signed_in(config: &Path) -> (String, String) {
        let made = identity_in(&config.join("portscope"), None, None, &["devbox".into()]).unwrap();
        (made.fingerprint, made.source)
    }

    /// What a file is now: its bytes, inode and modification time (a file written again, even
    /// with the same bytes, gets a new inode: it is renamed into place).
    fn file(path: &Path) -> (Vec<u8>, u64, i64, i64) {
        let meta = std::fs::metadata(path).unwrap();
        (
            std::fs::read(path).unwrap(),
            meta.ino(),
            meta.mtime(),
            meta.mtime_nsec(),
        )
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_self_signed_identity_is_made_once_and_reused() {
        let config = TempDir::new("self-signed");
        let dir = config.0.join("portscope/tls");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));

        let (first, source) = self_signed_in(&config.0);
        assert_eq!(source, format!("self-signed, {}", cert.display()));
        assert_eq!(
            first,
            openssl_fingerprint(&cert),
            "SHA-256 of the DER certificate"
        );
        assert_eq!(mode(&dir), 0o700, "the directory is private");
        assert_eq!(mode(&key), 0o600, "the key is private");
        let sans = openssl(&[
            "x509",
            "-in",
            cert.to_str().unwrap(),
            "-noout",
            "-ext",
            "subjectAltName",
        ]);
        let sans = String::from_utf8(sans).unwrap();
        for name in ["DNS:localhost", "DNS:devbox", "IP Address:127.0.0.1"] {
            assert!(sans.contains(name), "{name} in {sans}");
        }
        let (cert_before, key_before) = (file(&cert), file(&key));

        let (second, _) = self_signed_in(&config.0);
        assert_eq!(second, first, "the same certificate");
        assert!(
            file(&cert) == cert_before,
            "the certificate is not made again"
        );
        assert!(file(&key) == key_before, "the key is not made again");
        assert_eq!(mode(&key), 0o600, "the key is still private");

        // A certificate without its key is no identity: both are made again.
        std::fs::remove_file(&key).unwrap();
        let (third, _) = self_signed_in(&config.0);
        assert_ne!(third, first, "a new certificate for the new key");
        assert_eq!(third, openssl_fingerprint(&cert));
        assert_eq!(mode(&key), 0o600);
    }

    /// Accepts any certificate, but checks the handshake's signatures against it: the server
    /// must hold the key of the certificate it presents.
    #[derive(Debug)]
    struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algorithms = &self.0.signature_verification_algorithms;
            rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algorithms = &self.0.signature_verification_algorithms;
            rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    /// The certificate a server with `config` presents in a TLS handshake (in memory).
    fn presented(config: Arc<rustls::ServerConfig>) -> Vec<u8> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
        let mut server = rustls::ServerConnection::new(config).unwrap();
        for _ in 0..10 {
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
            let mut bytes = Vec::new();
            client.write_tls(&mut bytes).unwrap();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                server.read_tls(&mut rest).unwrap();
                server.process_new_packets().unwrap();
            }
            bytes.clear();
            server.write_tls(&mut bytes).unwrap();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                client.read_tls(&mut rest).unwrap();
                client.process_new_packets().unwrap();
            }
        }
        assert!(!client.is_handshaking(), "the handshake finishes");
        client.peer_certificates().unwrap()[0].to_vec()
    }

    #[test]
    fn a_given_certificate_and_key_are_used_as_given() {
        let dir = TempDir::new("given");
        let (cert, key) = (dir.0.join("given.crt"), dir.0.join("given.key"));
        let (c, k) = (cert.to_str().unwrap(), key.to_str().unwrap());
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            k,
            "-out",
            c,
            "-subj",
            "/CN=given.test",
            "-days",
            "2",
        ]);
        let der = openssl(&["x509", "-in", c, "-outform", "DER"]);

        let given = identity(Some(&cert), Some(&key), &["devbox".into()]).unwrap();
        assert_eq!(given.fingerprint, openssl_fingerprint(&cert));
        assert_eq!(given.source, c);
        assert_eq!(
            presented(given.config),
            der,
            "the server presents the given certificate"
        );
        assert_eq!(
            std::fs::read_dir(&dir.0).unwrap().count(),
            2,
            "nothing written beside them"
        );

        assert!(
            identity(Some(&cert), None, &[]).is_err(),
            "a certificate without its key"
        );
        assert!(
            identity(None, Some(&key), &[]).is_err(),
            "a key without its certificate"
        );
    }
}
