//! Share mode's TLS: the user's certificate, or a self-signed one made once (rcgen) and kept in
//! the config directory, and its SHA-256 fingerprint for clients to pin. rustls with the ring
//! provider; no OpenSSL.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate chain and key ready for rustls, and how to recognise the certificate.
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
) -> anyhow::Result<Identity> {
    let (cert_path, key_path, source) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_owned(), k.to_owned(), format!("{}", c.display())),
        (None, None) => {
            let dir = config_dir()?.join("tls");
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !c.exists() || !k.exists() {
                self_signed(&dir, &c, &k, names)?;
            }
            let source = format!("self-signed, {}", c.display());
            (c, k, source)
        }
        _ => bail!(
            "--tls-cert and --tls-key go together: give both, or neither for a self-signed certificate"
        ),
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .with_context(|| format!("cannot read the certificate {}", cert_path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} is not a PEM certificate", cert_path.display()))?;
    let leaf = chain
        .first()
        .with_context(|| format!("{} holds no certificate", cert_path.display()))?;
    let fingerprint = fingerprint(leaf);
    warn_if_readable_by_others(&key_path);
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .with_context(|| format!("cannot read a PEM private key from {}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and key do not fit together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Identity {
        config: Arc::new(config),
        fingerprint,
        source,
    })
}

/// A private key others can read is a leaked key: say so (and how to fix it) at start.
fn warn_if_readable_by_others(key: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(key)
        && meta.permissions().mode() & 0o077 != 0
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
fn config_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .context("neither XDG_CONFIG_HOME nor HOME is set: give --tls-cert and --tls-key")?;
    Ok(base.join("portscope"))
}

/// Makes a self-signed certificate for `names` (and localhost), key readable by the user only.
fn self_signed(dir: &Path, cert: &Path, key: &Path, names: &[String]) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let mut sans: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    sans.extend(names.iter().cloned());
    sans.dedup();
    let certified = rcgen::generate_simple_self_signed(sans)
        .context("cannot generate a self-signed certificate")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
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
    let write_new = |path: &Path, bytes: &[u8]| -> anyhow::Result<PathBuf> {
        let tmp = path.with_extension(format!("tmp-{unique}"));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(tmp)
    };
    let key_tmp = write_new(key, certified.signing_key.serialize_pem().as_bytes())?;
    let cert_tmp = write_new(cert, certified.cert.pem().as_bytes())?;
    std::fs::rename(&key_tmp, key).with_context(|| format!("cannot write {}", key.display()))?;
    std::fs::rename(&cert_tmp, cert).with_context(|| format!("cannot write {}", cert.display()))?;
    tracing::info!(cert = %cert.display(), "made a self-signed certificate for share mode");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_identity_is_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("portscope-tls-test-{}", std::process::id()));
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        self_signed(&dir, &cert, &key, &["devbox".into()]).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the key is private");
        let a = identity(Some(&cert), Some(&key), &[]).unwrap();
        let b = identity(Some(&cert), Some(&key), &[]).unwrap();
        assert_eq!(
            a.fingerprint, b.fingerprint,
            "the same files, the same fingerprint"
        );
        assert_eq!(a.fingerprint.len(), 32 * 3 - 1);
        assert!(identity(Some(&cert), None, &[]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
