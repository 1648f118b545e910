//! The peers file (`--peers FILE`, `portscope peer add`): TOML, one `[[peer]]` table per agent
//! this hub shows, each with its URL, its token (or a file holding it) and how to trust its
//! certificate (the SHA-256 fingerprint its `--share` printed, or a CA). The file holds tokens:
//! it is refused unless only its owner can read it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A peers file as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeersFile {
    #[serde(default, rename = "peer")]
    pub peers: Vec<Entry>,
}

/// One `[[peer]]` table as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
}

/// A peer ready to connect to (always over TLS).
#[derive(Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    /// `host:port` as in the URL (`[::1]:7678` for IPv6).
    pub authority: String,
    /// The host alone, brackets removed (the TLS server name).
    pub host: String,
    pub token: String,
    pub trust: Trust,
}

impl std::fmt::Debug for Peer {
    /// Without the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("name", &self.name)
            .field("url", &self.url())
            .field("trust", &self.trust)
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// The peer's base URL.
    pub fn url(&self) -> String {
        format!("https://{}/", self.authority)
    }
}

/// How the hub trusts a peer's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Exactly the certificate with this SHA-256 (upper-case hex pairs joined by `:`).
    Fingerprint(String),
    /// Any certificate for the peer's host name that this CA (PEM) signed.
    Ca(PathBuf),
}

/// Why a peers file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PeersError {
    #[error(transparent)]
    Private(#[from] portscope_core::private::PrivateError),
    #[error("the peers file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("peer `{name}` in {path}: {reason}")]
    Invalid {
        path: PathBuf,
        name: String,
        reason: String,
    },
    #[error("{} already has a peer named `{name}`; edit the file to change it", path.display())]
    Taken { path: PathBuf, name: String },
    #[error("{} has no peer named `{name}`", path.display())]
    Unknown { path: PathBuf, name: String },
    #[error("cannot write {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Reads and checks the peers file at `path`.
pub fn load(path: &Path) -> Result<Vec<Peer>, PeersError> {
    let file = read(path)?;
    file.peers
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            if file.peers[..i].iter().any(|e| e.name == entry.name) {
                return Err(PeersError::Invalid {
                    path: path.to_owned(),
                    name: entry.name.clone(),
                    reason: "the name is used twice".into(),
                });
            }
            check(entry, path)
        })
        .collect()
}

/// The file as written, after checking who may read it.
pub fn read(path: &Path) -> Result<PeersFile, PeersError> {
    let text = portscope_core::private::read(path)?;
    toml::from_str(&text).map_err(|e| PeersError::Syntax {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// An entry made ready: a name people can type, a URL the hub may use, one token, one trust.
pub fn check(entry: &Entry, path: &Path) -> Result<Peer, PeersError> {
    let invalid = |reason: String| PeersError::Invalid {
        path: path.to_owned(),
        name: entry.name.clone(),
        reason,
    };
    let name_ok = !entry.name.is_empty()
        && entry.name.len() <= 64
        && entry
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !name_ok {
        return Err(invalid(
            "a name is 1 to 64 letters, digits, `-`, `_` or `.`".into(),
        ));
    }
    let (authority, host) = parse_url(&entry.url).map_err(|e| invalid(e.to_string()))?;
    let token = match (&entry.token, &entry.token_file) {
        (Some(token), None) => token.clone(),
        (None, Some(file)) => portscope_core::private::read(file)
            .map_err(|e| invalid(format!("token_file: {e}")))?
            .trim()
            .to_owned(),
        _ => return Err(invalid("give `token` or `token_file` (one of them)".into())),
    };
    if token.is_empty() {
        return Err(invalid("the token is empty".into()));
    }
    let trust = match (&entry.fingerprint, &entry.ca) {
        (Some(fp), None) => {
            Trust::Fingerprint(normalize_fingerprint(fp).map_err(|e| invalid(e.to_string()))?)
        }
        (None, Some(ca)) => Trust::Ca(ca.clone()),
        _ => {
            return Err(invalid(
                "give `fingerprint` (what the peer's --share printed) or `ca` (one of them)".into(),
            ));
        }
    };
    Ok(Peer {
        name: entry.name.clone(),
        authority,
        host,
        token,
        trust,
    })
}

/// Why a peer's URL or fingerprint is refused (each says what to give instead).
#[derive(Debug, thiserror::Error)]
pub enum FieldError {
    #[error("`{0}` is not a URL: {1}")]
    NotAUrl(String, String),
    #[error(
        "`{0}`: plain http:// would send the peer's token in clear (across a network, or to whoever holds the port on this machine while the peer is down); use the https:// URL its --share printed"
    )]
    PlainHttp(String),
    #[error("`{0}`: the URL must start with https://")]
    NotHttps(String),
    #[error("`{0}`: give the agent's base URL (`https://host:port/`), without a path or token")]
    HasPath(String),
    #[error("`{0}` names no host")]
    NoHost(String),
    #[error("`{0}`: no user name in the URL; use `token`")]
    UserInfo(String),
    #[error("`{0}`: give the port (`https://host:7678/`)")]
    NoPort(String),
    #[error("`{0}` is not a SHA-256 fingerprint (32 hex pairs, as the peer's --share printed)")]
    Fingerprint(String),
}

/// Whether `url` is one a peer may have (see [`parse_url`]), saying why not.
pub fn check_url(url: &str) -> Result<(), FieldError> {
    parse_url(url).map(|_| ())
}

/// `https://host:port/` → (`host:port`, host). Never plain `http://`: a token must not cross
/// a network in clear, and on this machine whoever holds the port while the peer is down
/// would receive it (TLS with a pinned certificate tells them apart).
fn parse_url(url: &str) -> Result<(String, String), FieldError> {
    let uri: axum::http::Uri = url
        .parse()
        .map_err(|e: axum::http::uri::InvalidUri| FieldError::NotAUrl(url.into(), e.to_string()))?;
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") => return Err(FieldError::PlainHttp(url.into())),
        _ => return Err(FieldError::NotHttps(url.into())),
    }
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return Err(FieldError::HasPath(url.into()));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| FieldError::NoHost(url.into()))?;
    if authority.as_str().contains('@') {
        return Err(FieldError::UserInfo(url.into()));
    }
    let port = authority
        .port_u16()
        .ok_or_else(|| FieldError::NoPort(url.into()))?;
    let host = authority.host().trim_matches(['[', ']']).to_owned();
    let authority = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(_)) => format!("[{host}]:{port}"),
        _ => format!("{host}:{port}"),
    };
    Ok((authority, host))
}

/// `c4:5f:…` or `C45F…` → `C4:5F:…` (32 bytes of SHA-256).
pub fn normalize_fingerprint(fp: &str) -> Result<String, FieldError> {
    let hex: String = fp.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(FieldError::Fingerprint(fp.into()));
    }
    let upper = hex.to_ascii_uppercase();
    Ok(upper
        .as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(":"))
}

/// Adds `entry` to the file at `path` (made 0600 in a 0700 directory when missing), refusing
/// a name already there or an entry [`check`] refuses.
pub fn add(path: &Path, entry: Entry) -> Result<(), PeersError> {
    check(&entry, path)?;
    let mut file = if path.exists() {
        read(path)?
    } else {
        PeersFile::default()
    };
    if file.peers.iter().any(|e| e.name == entry.name) {
        return Err(PeersError::Taken {
            path: path.to_owned(),
            name: entry.name,
        });
    }
    file.peers.push(entry);
    write(path, &file)
}

/// Removes the peer named `name` from the file at `path`.
pub fn remove(path: &Path, name: &str) -> Result<(), PeersError> {
    let mut file = read(path)?;
    let before = file.peers.len();
    file.peers.retain(|e| e.name != name);
    if file.peers.len() == before {
        return Err(PeersError::Unknown {
            path: path.to_owned(),
            name: name.to_owned(),
        });
    }
    write(path, &file)
}

/// The peers' names in the file at `path`, as written (for the shell's completions: nothing
/// is checked beyond who may read the file).
pub fn names(path: &Path) -> Result<Vec<String>, PeersError> {
    Ok(read(path)?.peers.into_iter().map(|e| e.name).collect())
}

/// Writes `file` to `path` (0600 in a 0700 directory when missing).
fn write(path: &Path, file: &PeersFile) -> Result<(), PeersError> {
    let cannot_write = |error| PeersError::Write {
        path: path.to_owned(),
        error,
    };
    let text = toml::to_string_pretty(file)
        .map_err(std::io::Error::other)
        .map_err(cannot_write)?;
    portscope_core::private::write(
        path,
        text.as_bytes(),
        portscope_core::private::Existing::Replace,
    )
    .map_err(cannot_write)
}

/// `$XDG_CONFIG_HOME/portscope/peers.toml`, or `~/.config/portscope/peers.toml`.
pub fn default_path() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .or_else(portscope_core::os::app_data_dir)
        .map(|base| base.join("portscope").join("peers.toml"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use portscope_core::private::PrivateError;

    const FP: &str = "c4:5f:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:78";

    fn write(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let path = dir.join("peers.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn entry(name: &str, url: &str) -> Entry {
        Entry {
            name: name.into(),
            url: url.into(),
            token: Some("t".repeat(32)),
            token_file: None,
            fingerprint: Some(FP.into()),
            ca: None,
        }
    }

    #[test]
    fn a_peers_file_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "secret-from-a-file\n").unwrap();
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let path = write(
            dir.path(),
            &format!(
                r#"
[[peer]]
name = "build-box"
url = "https://192.0.2.10:7678/"
token = "abc"
fingerprint = "{FP}"

[[peer]]
name = "v6"
url = "https://[2001:db8::1]:7678"
token_file = "{}"
ca = "/etc/ca.pem"
"#,
                token_file.display()
            ),
            0o600,
        );
        let peers = load(&path).unwrap();
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[0].authority, "192.0.2.10:7678");
        assert_eq!(peers[0].url(), "https://192.0.2.10:7678/");
        let Trust::Fingerprint(fp) = &peers[0].trust else {
            panic!("{:?}", peers[0].trust)
        };
        assert_eq!(fp, &FP.to_ascii_uppercase());
        assert_eq!(peers[1].authority, "[2001:db8::1]:7678");
        assert_eq!(peers[1].host, "2001:db8::1");
        assert_eq!(peers[1].token, "secret-from-a-file");
        assert_eq!(peers[1].trust, Trust::Ca("/etc/ca.pem".into()));
        let shown = format!("{:?}", peers[0]);
        assert!(!shown.contains("abc"), "the token is not in Debug: {shown}");
    }

    #[test]
    fn a_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "", 0o644);
        let e = load(&path).unwrap_err();
        assert!(
            matches!(
                e,
                PeersError::Private(PrivateError::OpenToOthers { mode: 0o644, .. })
            ),
            "{e}"
        );
        assert!(e.to_string().contains("chmod 600"), "{e}");
        // Nor through a link to a private file, nor a token file others can read.
        let private = dir.path().join("private.toml");
        std::fs::write(&private, "").unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&private, &link).unwrap();
        assert!(matches!(
            load(&link),
            Err(PeersError::Private(PrivateError::Unreadable { .. }))
        ));
        assert!(load(&private).unwrap().is_empty());
        let token = dir.path().join("token");
        std::fs::write(&token, "secret").unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = check(
            &Entry {
                token: None,
                token_file: Some(token),
                ..entry("b", "https://x:1/")
            },
            &private,
        )
        .unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
    }

    #[test]
    fn bad_entries_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.toml");
        let refused = |e: Entry| check(&e, &path).unwrap_err().to_string();
        assert!(refused(entry("b", "http://192.0.2.10:7678/")).contains("in clear"));
        assert!(
            refused(entry("b", "http://127.0.0.1:7678/")).contains("in clear"),
            "not on this machine either: whoever holds the port would get the token"
        );
        assert!(refused(entry("b", "ftp://x:1/")).contains("https://"));
        assert!(refused(entry("b", "https://x/")).contains("give the port"));
        assert!(refused(entry("b", "https://x:1/api/v1/ws?token=1")).contains("base URL"));
        assert!(refused(entry("b", "https://u:p@x:1/")).contains("no user name"));
        assert!(refused(entry("no spaces", "https://x:1/")).contains("letters"));
        assert!(
            refused(Entry {
                fingerprint: None,
                ..entry("b", "https://x:1/")
            })
            .contains("fingerprint")
        );
        assert!(
            refused(Entry {
                fingerprint: Some("AB:CD".into()),
                ..entry("b", "https://x:1/")
            })
            .contains("not a SHA-256")
        );
        assert!(
            refused(Entry {
                token: None,
                ..entry("b", "https://x:1/")
            })
            .contains("token")
        );
        let twice = write(
            dir.path(),
            &format!(
                "[[peer]]\nname='a'\nurl='https://[::1]:1/'\ntoken='t'\nfingerprint='{FP}'\n\
                 [[peer]]\nname='a'\nurl='https://localhost:2/'\ntoken='t'\nfingerprint='{FP}'\n"
            ),
            0o600,
        );
        assert!(load(&twice).unwrap_err().to_string().contains("twice"));
        let unknown = write(dir.path(), "[[peer]]\nname='a'\npassword='x'\n", 0o600);
        assert!(matches!(
            load(&unknown).unwrap_err(),
            PeersError::Syntax { .. }
        ));
    }

    #[test]
    fn add_writes_a_private_file_and_refuses_a_name_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conf/portscope/peers.toml");
        add(&path, entry("build-box", "https://192.0.2.10:7678/")).unwrap();
        add(&path, entry("vm", "https://192.0.2.11:7678/")).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        let names: Vec<String> = load(&path).unwrap().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["build-box", "vm"]);
        let again = add(&path, entry("vm", "https://192.0.2.12:7678/")).unwrap_err();
        assert!(again.to_string().contains("already"), "{again}");
        assert!(add(&path, entry("x", "http://192.0.2.1:1/")).is_err());
        assert_eq!(
            load(&path).unwrap().len(),
            2,
            "nothing written on a refusal"
        );
    }

    #[test]
    fn remove_takes_one_peer_out_and_names_an_unknown_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.toml");
        add(&path, entry("build-box", "https://192.0.2.10:7678/")).unwrap();
        add(&path, entry("vm", "https://192.0.2.11:7678/")).unwrap();
        remove(&path, "build-box").unwrap();
        assert_eq!(names(&path).unwrap(), ["vm"]);
        let unknown = remove(&path, "build-box").unwrap_err();
        assert!(matches!(unknown, PeersError::Unknown { .. }), "{unknown}");
        assert_eq!(
            names(&path).unwrap(),
            ["vm"],
            "nothing written on a refusal"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
