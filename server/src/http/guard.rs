//! The request guards: Host allowlist (against DNS rebinding), same-origin check (against
//! cross-site WebSocket hijacking) and the access token. Pure functions over header values, so
//! that they are tested without a server; the middleware in `server/mod.rs` applies them.

use std::net::IpAddr;

use portscope_shared::ApiErrorCode;
use subtle::ConstantTimeEq;

/// Why a request was refused. The text is sent to the client; it never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("missing or repeated Host header")]
    NoHost,
    #[error("Host {0:?} is not this agent: only loopback names and addresses are served")]
    ForeignHost(String),
    #[error("Origin {0:?} is not this dashboard's origin")]
    ForeignOrigin(String),
    #[error("missing access token: open the URL that portscope printed (it carries ?token=)")]
    NoToken,
    #[error("wrong access token: open the URL that portscope printed at its latest start")]
    WrongToken,
    #[error(
        "the browser marked this request {0:?} (Sec-Fetch-Site): only the dashboard itself may call the API"
    )]
    CrossSite(String),
    #[error(
        "this token (--metrics-token-file) reads GET /metrics and nothing else: use the token portscope printed"
    )]
    MetricsOnly,
}

impl Refusal {
    /// Stable machine-readable code for JSON error bodies.
    pub fn code(&self) -> ApiErrorCode {
        match self {
            Self::NoHost | Self::ForeignHost(_) => ApiErrorCode::ForbiddenHost,
            Self::ForeignOrigin(_) => ApiErrorCode::ForbiddenOrigin,
            Self::NoToken => ApiErrorCode::MissingToken,
            Self::WrongToken => ApiErrorCode::WrongToken,
            Self::CrossSite(_) => ApiErrorCode::CrossSite,
            Self::MetricsOnly => ApiErrorCode::MetricsOnly,
        }
    }
}

/// What a request's token lets it do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The agent's token: everything.
    Full,
    /// The scrape-only token (`--metrics-token-file`): `GET /metrics` alone.
    MetricsOnly,
}

/// What a request must match to be served.
#[derive(Clone)]
pub struct Guard {
    bind: IpAddr,
    port: u16,
    token: String,
    /// `--metrics-token-file`'s token, which reads `GET /metrics` alone.
    metrics_token: Option<String>,
    /// Share mode: this machine's addresses clients may name in `Host`.
    addresses: Vec<IpAddr>,
    /// Share mode: host names clients may use (the machine's name, `--allow-host`), lowercase.
    names: Vec<String>,
    /// `https` in share mode, else `http`: part of the one accepted `Origin`.
    scheme: &'static str,
    /// Other page origins allowed with `--allow-origin`, lowercase, exact.
    origins: Vec<String>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never in logs.
        f.debug_struct("Guard")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Guard {
    pub fn new(bind: IpAddr, port: u16, token: String) -> Self {
        Self {
            bind,
            port,
            token,
            metrics_token: None,
            addresses: Vec::new(),
            names: Vec::new(),
            scheme: "http",
            origins: Vec::new(),
        }
    }

    /// Extra host names (`--allow-host`) and page origins (`--allow-origin`), matched exactly.
    pub fn allowing(mut self, names: Vec<String>, origins: Vec<String>) -> Self {
        self.names
            .extend(names.into_iter().map(|n| n.to_ascii_lowercase()));
        self.origins.extend(
            origins
                .into_iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase()),
        );
        self
    }

    /// A second token that reads `GET /metrics` and nothing else (a scraper's).
    pub fn with_metrics_token(mut self, token: String) -> Self {
        self.metrics_token = Some(token);
        self
    }

    /// Share mode: served over TLS (`https` origins), and reachable under these addresses and
    /// names besides loopback. Names are matched exactly (case-insensitively), never by suffix.
    pub fn shared(mut self, addresses: Vec<IpAddr>, names: Vec<String>) -> Self {
        self.addresses = addresses;
        self.names
            .extend(names.into_iter().map(|n| n.to_ascii_lowercase()));
        self.scheme = "https";
        self
    }

    /// Checks the Host header values of a request (all of them: a repeated Host is refused).
    /// Returns the accepted value, lowercased.
    pub fn check_host<'a>(
        &self,
        mut values: impl Iterator<Item = &'a [u8]>,
    ) -> Result<String, Refusal> {
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(Refusal::NoHost);
        };
        let value = std::str::from_utf8(value)
            .map_err(|_| Refusal::ForeignHost(String::from_utf8_lossy(value).into_owned()))?;
        let refused = || Refusal::ForeignHost(value.to_owned());
        let lower = value.to_ascii_lowercase();
        let (host, port) = split_host_port(&lower).ok_or_else(refused)?;
        let default_port = if self.scheme == "https" { 443 } else { 80 };
        let port_ok = match port {
            Some(port) => port == self.port,
            None => self.port == default_port,
        };
        if port_ok && self.is_allowed_host(host) {
            Ok(lower)
        } else {
            Err(refused())
        }
    }

    fn is_allowed_host(&self, host: &str) -> bool {
        if let Some(literal) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            return literal
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_ipv6() && (ip.is_loopback() || self.is_ours(ip)));
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return ip.is_ipv4() && (ip.is_loopback() || self.is_ours(ip));
        }
        let bare = host.strip_suffix('.').unwrap_or(host);
        if self.names.iter().any(|n| n == bare) {
            return true;
        }
        // RFC 6761: `localhost` and every name under it resolve to loopback (browsers enforce it).
        let name = host.strip_suffix('.').unwrap_or(host);
        (name == "localhost" || name.ends_with(".localhost"))
            && name.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.bytes().all(is_label_byte)
            })
    }

    fn is_ours(&self, ip: IpAddr) -> bool {
        (ip == self.bind && !ip.is_unspecified()) || self.addresses.contains(&ip)
    }

    /// Checks an `Origin` header against the accepted Host: a browser page may talk to the API
    /// only from the dashboard's own origin. Absent Origin (non-browser clients) passes; the
    /// token still applies.
    pub fn check_origin(&self, origin: Option<&[u8]>, host: &str) -> Result<(), Refusal> {
        let Some(origin) = origin else { return Ok(()) };
        let expected = format!("{}://{host}", self.scheme);
        let listed = std::str::from_utf8(origin).is_ok_and(|o| {
            self.origins
                .iter()
                .any(|allowed| o.eq_ignore_ascii_case(allowed))
        });
        if origin.eq_ignore_ascii_case(expected.as_bytes()) || listed {
            Ok(())
        } else {
            Err(Refusal::ForeignOrigin(
                String::from_utf8_lossy(origin).into_owned(),
            ))
        }
    }

    /// Checks `Sec-Fetch-Site`, which browsers set on every request and pages cannot forge: only
    /// `same-origin` (the dashboard) and `none` (typed in the address bar) pass; an absent header
    /// (non-browser clients, old browsers) passes too, the token still applies. Stops no-cors
    /// requests (`<script src>`, `<img>`) that carry no `Origin`.
    pub fn check_fetch_site(&self, site: Option<&[u8]>) -> Result<(), Refusal> {
        match site {
            None | Some(b"same-origin" | b"none") => Ok(()),
            Some(other) => Err(Refusal::CrossSite(
                String::from_utf8_lossy(other).into_owned(),
            )),
        }
    }

    /// Checks the offered tokens (from the Authorization header and the query);
    /// one must equal ours. Compared in constant time.
    /// Both tokens are compared, each in constant time, whatever the first gave.
    pub fn check_token<'a>(
        &self,
        offered: impl IntoIterator<Item = &'a str>,
    ) -> Result<Access, Refusal> {
        let offered: Vec<&str> = offered.into_iter().collect();
        let [one] = offered.as_slice() else {
            // None, or several: one request is one guess (a client sends its token once).
            return Err(if offered.is_empty() {
                Refusal::NoToken
            } else {
                Refusal::WrongToken
            });
        };
        let full = one.as_bytes().ct_eq(self.token.as_bytes());
        let metrics = self
            .metrics_token
            .as_ref()
            .map_or(subtle::Choice::from(0), |t| {
                one.as_bytes().ct_eq(t.as_bytes())
            });
        if bool::from(full) {
            Ok(Access::Full)
        } else if bool::from(metrics) {
            Ok(Access::MetricsOnly)
        } else {
            Err(Refusal::WrongToken)
        }
    }

    /// Share mode (HTTPS, reachable from other machines).
    pub fn is_shared(&self) -> bool {
        self.scheme == "https"
    }

    /// Whether an `Origin` was given with `--allow-origin` (then the browser marks its requests
    /// `same-site` or `cross-site`, and that is expected).
    pub fn is_listed_origin(&self, origin: Option<&[u8]>) -> bool {
        origin
            .and_then(|o| std::str::from_utf8(o).ok())
            .is_some_and(|o| {
                self.origins
                    .iter()
                    .any(|allowed| o.eq_ignore_ascii_case(allowed))
            })
    }
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// Splits `host[:port]` or `[v6][:port]`. `None` when malformed (empty host, bad port, junk).
fn split_host_port(value: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if value.starts_with('[') {
        let end = value.find(']')?;
        let (host, rest) = value.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match value.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (value, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
        None => None,
    };
    Some((host, port))
}

/// A fresh 128-bit token from the OS's random source, as 32 hex digits.
pub fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn guard() -> Guard {
        Guard::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7678, "a".repeat(32))
    }

    fn host(value: &str) -> Result<String, Refusal> {
        guard().check_host(std::iter::once(value.as_bytes()))
    }

    #[test]
    fn allowed_names_and_origins_match_exactly() {
        let g = guard().allowing(
            vec!["MyApp.test".into()],
            vec!["http://localhost:3000/".into()],
        );
        let host = |v: &str| g.check_host(std::iter::once(v.as_bytes()));
        assert!(host("myapp.test:7678").is_ok());
        assert!(host("evil.myapp.test:7678").is_err());
        assert!(host("myapp.test.evil:7678").is_err());
        let origin = |o: &[u8]| g.check_origin(Some(o), "localhost:7678");
        assert!(origin(b"http://localhost:3000").is_ok());
        assert!(origin(b"http://LOCALHOST:3000").is_ok());
        assert!(origin(b"http://localhost:30000").is_err());
        assert!(origin(b"http://localhost:3000.evil.com").is_err());
        assert!(origin(b"https://localhost:3000").is_err());
    }

    #[test]
    fn share_mode_accepts_its_addresses_and_names_and_https_origins_only() {
        let lan: IpAddr = "192.168.1.20".parse().unwrap();
        let g = Guard::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 7678, "a".repeat(32))
            .shared(vec![lan], vec!["DevBox".into()]);
        let host = |v: &str| g.check_host(std::iter::once(v.as_bytes()));
        assert!(host("192.168.1.20:7678").is_ok());
        assert!(host("devbox:7678").is_ok());
        assert!(host("devbox.:7678").is_ok());
        assert!(host("localhost:7678").is_ok());
        for bad in [
            "0.0.0.0:7678",
            "192.168.1.21:7678",
            "devbox.evil.com:7678",
            "evil-devbox:7678",
            "192.168.1.20:7679",
        ] {
            assert!(host(bad).is_err(), "{bad}");
        }
        assert!(
            g.check_origin(Some(b"https://devbox:7678"), "devbox:7678")
                .is_ok()
        );
        assert!(
            g.check_origin(Some(b"http://devbox:7678"), "devbox:7678")
                .is_err(),
            "plain http origin"
        );
    }

    #[test]
    fn loopback_hosts_pass() {
        for ok in [
            "127.0.0.1:7678",
            "localhost:7678",
            "LOCALHOST:7678",
            "app.localhost:7678",
            "localhost.:7678",
            "[::1]:7678",
            "127.1.2.3:7678",
        ] {
            assert!(host(ok).is_ok(), "{ok} should pass");
        }
    }

    #[test]
    fn foreign_and_malformed_hosts_fail() {
        for bad in [
            "evil.com:7678",
            "localhost.evil.com:7678",
            "127.0.0.1.nip.io:7678",
            "localhost:7679",
            "localhost",
            "a@localhost:7678",
            "localhost:7678:7678",
            "[::1:7678",
            "[::ffff:127.0.0.1]:7678",
            "0.0.0.0:7678",
            "10.0.0.1:7678",
            "localhost:",
            ":7678",
            "local host:7678",
            "evil..localhost:7678",
            "localhost:+7678",
        ] {
            assert!(host(bad).is_err(), "{bad} should fail");
        }
        let g = guard();
        assert_eq!(g.check_host(std::iter::empty()), Err(Refusal::NoHost));
        let twice = [b"localhost:7678".as_slice(), b"localhost:7678".as_slice()];
        assert_eq!(g.check_host(twice.into_iter()), Err(Refusal::NoHost));
    }

    /// The shared corpora in `tests/corpus/`, with `PORT` and `OTHER` filled in.
    fn corpus(text: &str) -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| l.replace("PORT", "7678").replace("OTHER", "7679"))
            .collect()
    }

    #[test]
    fn the_hostile_host_corpus_is_refused() {
        let hosts = corpus(include_str!("../../../tests/corpus/hostile_hosts.txt"));
        assert!(hosts.len() >= 60, "the corpus shrank to {}", hosts.len());
        let accepted: Vec<&String> = hosts.iter().filter(|h| host(h).is_ok()).collect();
        assert!(accepted.is_empty(), "accepted hostile Hosts: {accepted:?}");
    }

    #[test]
    fn the_hostile_origin_corpus_is_refused() {
        let g = guard();
        let origins = corpus(include_str!("../../../tests/corpus/hostile_origins.txt"));
        assert!(
            origins.len() >= 30,
            "the corpus shrank to {}",
            origins.len()
        );
        let accepted: Vec<&String> = origins
            .iter()
            .filter(|o| g.check_origin(Some(o.as_bytes()), "127.0.0.1:7678").is_ok())
            .collect();
        assert!(
            accepted.is_empty(),
            "accepted hostile Origins: {accepted:?}"
        );
        assert!(
            g.check_origin(Some(b"http://127.0.0.1:7678"), "127.0.0.1:7678")
                .is_ok()
        );
    }

    #[test]
    fn only_same_origin_and_typed_requests_pass_sec_fetch_site() {
        let g = guard();
        for ok in [None, Some(&b"same-origin"[..]), Some(b"none")] {
            assert!(g.check_fetch_site(ok).is_ok(), "{ok:?}");
        }
        for bad in [&b"cross-site"[..], b"same-site", b"", b"Same-Origin"] {
            assert_eq!(
                g.check_fetch_site(Some(bad)).unwrap_err().code(),
                ApiErrorCode::CrossSite,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn only_the_same_origin_passes() {
        let g = guard();
        assert!(g.check_origin(None, "localhost:7678").is_ok());
        assert!(
            g.check_origin(Some(b"http://localhost:7678"), "localhost:7678")
                .is_ok()
        );
        for bad in [
            "http://localhost:7679",
            "https://localhost:7678",
            "http://127.0.0.1:7678",
            "null",
            "http://localhost:7678.evil.com",
            "",
        ] {
            assert!(
                g.check_origin(Some(bad.as_bytes()), "localhost:7678")
                    .is_err(),
                "{bad} should fail"
            );
        }
    }

    #[test]
    fn tokens_must_match_exactly() {
        let g = guard();
        assert_eq!(g.check_token([&*"a".repeat(32)]), Ok(Access::Full));
        assert_eq!(g.check_token([]), Err(Refusal::NoToken));
        assert_eq!(g.check_token([""]), Err(Refusal::WrongToken));
        assert_eq!(g.check_token([&*"b".repeat(32)]), Err(Refusal::WrongToken));
        assert_eq!(g.check_token([&*"a".repeat(33)]), Err(Refusal::WrongToken));
        // Several tokens in one request are one wrong guess, even if one of them is right.
        assert!(g.check_token(["wrong", &*"a".repeat(32)]).is_err());
    }

    #[test]
    fn the_metrics_token_is_told_apart_and_never_the_agents() {
        let scrape = "m".repeat(32);
        let g = guard().with_metrics_token(scrape.clone());
        assert_eq!(g.check_token([&*"a".repeat(32)]), Ok(Access::Full));
        assert_eq!(g.check_token([scrape.as_str()]), Ok(Access::MetricsOnly));
        assert_eq!(g.check_token([&*"m".repeat(31)]), Err(Refusal::WrongToken));
        assert!(g.check_token([scrape.as_str(), &*"a".repeat(32)]).is_err());
        assert_eq!(
            guard().check_token([scrape.as_str()]),
            Err(Refusal::WrongToken),
            "without --metrics-token-file there is no second token"
        );
    }

    #[test]
    fn tokens_are_fresh_and_long() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
