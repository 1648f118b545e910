//! The network reads of `why`: name resolution, TCP connects, the HTTP probe, the firewall
//! ruleset and the container engine. Each returns what it saw or why it could not look; the
//! verdicts are drawn in `why.rs` from these facts.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a TCP connect did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connect {
    Connected(Duration),
    /// RST: nothing accepts connections at that address (or a firewall rejects).
    Refused,
    /// No answer within the timeout: SYN dropped (firewall, full accept queue) or host away.
    TimedOut(Duration),
    /// Any other error, e.g. `network unreachable` for `::1` on a host without IPv6.
    Failed(String),
}

impl Connect {
    pub fn is_connected(&self) -> bool {
        matches!(self, Self::Connected(_))
    }
}

/// How long name resolution may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Resolves a host in the order the system returns (getaddrinfo, so `/etc/hosts` and
/// `/etc/gai.conf` apply), without duplicates. The error says what to do.
pub async fn resolve(host: &str, port: u16) -> Result<Vec<IpAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| {
            format!(
                "cannot resolve `{host}`: no answer within {} s",
                RESOLVE_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| {
            format!("cannot resolve `{host}`: {e}; check the name, or give an IP address")
        })?;
    let mut out: Vec<IpAddr> = Vec::new();
    for addr in found {
        if !out.contains(&addr.ip()) {
            out.push(addr.ip());
        }
    }
    if out.is_empty() {
        return Err(format!("`{host}` resolves to no address"));
    }
    Ok(out)
}

pub async fn connect(addr: SocketAddr, timeout: Duration) -> Connect {
    let start = Instant::now();
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(_stream)) => Connect::Connected(start.elapsed()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Connect::Refused,
        Ok(Err(e)) => Connect::Failed(e.to_string()),
        Err(_) => Connect::TimedOut(timeout),
    }
}

/// Whether an address belongs to this machine: loopback, the unspecified address, or one of
/// its interfaces' addresses (`local`, from `os::local_addresses`).
pub fn is_local(addr: IpAddr, local: &[IpAddr]) -> bool {
    addr.is_loopback() || addr.is_unspecified() || local.contains(&addr)
}

/// What an HTTP request got back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Http {
    Response {
        status: String,
        server: Option<String>,
        title: Option<String>,
    },
    /// The first bytes were a TLS record: the server wants `https://`.
    Tls,
    /// Bytes came back, but not HTTP (e.g. a database's greeting).
    Other(String),
    /// Nothing came back in time: not HTTP, or the process is not answering.
    Silent(Duration),
    Failed(String),
}

/// What the doctor learnt from talking to a port that accepts connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Nothing was sent: the program there speaks `protocol`, not HTTP, and an HTTP request
    /// would be logged as an error or an attack (Redis, PostgreSQL).
    NotSent(String),
    /// The server spoke first (SSH, SMTP, FTP, MySQL greet their clients); nothing was sent.
    Greeting(String),
    /// An HTTP `GET` was sent (to a known HTTP server, or after an unknown one stayed silent
    /// for [`LISTEN_FIRST`]).
    Http(Http),
}

/// How long an unknown server may take to greet before the doctor sends an HTTP request.
pub const LISTEN_FIRST: Duration = Duration::from_millis(400);

/// Talks to `addr` as a careful client: first listens for `listen_first` (servers that speak
/// first send a banner), and only when nothing came sends `GET path` and reads the status line,
/// the `Server` header and the page `<title>`. What arrived before the deadline counts (a
/// streaming answer never ends).
pub async fn converse(
    addr: SocketAddr,
    host_header: &str,
    path: &str,
    listen_first: Duration,
    timeout: Duration,
) -> Answer {
    const MAX: usize = 64 << 10;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut stream = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Answer::Http(Http::Failed(e.to_string())),
        Err(_) => return Answer::Http(Http::Silent(timeout)),
    };
    let mut chunk = [0u8; 8192];
    if !listen_first.is_zero() {
        match tokio::time::timeout(listen_first, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                return match parse_http(&chunk[..n]) {
                    // A TLS alert or record unasked is still "speaks TLS".
                    Http::Tls => Answer::Http(Http::Tls),
                    _ => Answer::Greeting(printable(first_line(&chunk[..n]), 80)),
                };
            }
            Ok(Ok(_)) => {
                return Answer::Http(Http::Failed(
                    "the server closed the connection without a word".into(),
                ));
            }
            Ok(Err(e)) => return Answer::Http(Http::Failed(e.to_string())),
            Err(_) => {}
        }
    }
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: portscope-why\r\n\
         Accept: text/html,*/*\r\nConnection: close\r\n\r\n"
    );
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return Answer::Http(Http::Failed(e.to_string()));
    }
    let mut buf = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() >= MAX || title(&buf).is_some() {
                    break;
                }
            }
            Ok(Err(e)) if buf.is_empty() => return Answer::Http(Http::Failed(e.to_string())),
            Ok(Err(_)) => break,
        }
    }
    if buf.is_empty() {
        return Answer::Http(if tokio::time::Instant::now() >= deadline {
            Http::Silent(timeout)
        } else {
            Http::Failed("the connection closed without an answer".into())
        });
    }
    Answer::Http(parse_http(&buf))
}

/// A greeting's first line, without its line end (`SSH-2.0-OpenSSH_9.2p1`, `220 mail ESMTP`).
fn first_line(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(bytes.len());
    &bytes[..end]
}

fn parse_http(buf: &[u8]) -> Http {
    if matches!(buf.first(), Some(0x15 | 0x16)) && buf.get(1) == Some(&0x03) {
        return Http::Tls;
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(buf) {
        Ok(_) if response.code.is_some() => {
            let status = format!(
                "HTTP/1.{} {} {}",
                response.version.unwrap_or(1),
                response.code.unwrap_or_default(),
                response.reason.unwrap_or_default()
            );
            let server = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("server"))
                .map(|h| printable(h.value, 80));
            Http::Response {
                status: status.trim_end().to_owned(),
                server,
                title: title(buf),
            }
        }
        _ => Http::Other(printable(&buf[..buf.len().min(40)], 40)),
    }
}

/// The page's `<title>`, whitespace collapsed.
fn title(buf: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(buf);
    let lower = text.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    let words: Vec<&str> = text[start..end].split_whitespace().collect();
    Some(printable(words.join(" ").as_bytes(), 120))
}

/// Bytes as one safe line: control characters escaped, cut at `max` characters of the text
/// (an escape is never cut in half).
fn printable(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for c in text.chars().take(max) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

/// A firewall rule that names the port, or an input chain's drop policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Where it sits and what it says, e.g. `inet filter input: tcp dport 5173 reject`.
    pub text: String,
    /// `accept`, `drop`, `reject`, or another verdict.
    pub verdict: String,
    /// A chain's default policy rather than a rule about this port.
    pub policy: bool,
}

impl Rule {
    /// A rule about this port that drops or rejects it.
    pub fn blocks(&self) -> bool {
        !self.policy && (self.verdict == "drop" || self.verdict == "reject")
    }
}

/// What the firewall says about a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Firewall {
    /// Read with the named tool; the rules that name the port, and input chains whose policy drops.
    Read {
        tool: &'static str,
        rules: Vec<Rule>,
        /// A rule accepts everything arriving on the loopback interface (`iif lo accept`).
        loopback_accepted: bool,
    },
    /// Could not be read: why not, and how to.
    Unreadable(String),
}

/// Reads nftables (`nft -j list ruleset`), else iptables (`iptables -S`, `ip6tables -S`).
pub fn firewall(port: u16) -> Firewall {
    match run("nft", &["-j", "list", "ruleset"]) {
        Ok(json) => match serde_json::from_str::<serde_json::Value>(&json) {
            Ok(value) => {
                let (rules, loopback_accepted) = nft_rules(&value, port);
                return Firewall::Read {
                    tool: "nft",
                    rules,
                    loopback_accepted,
                };
            }
            Err(e) => {
                return Firewall::Unreadable(format!(
                    "`nft -j list ruleset` printed no JSON ({e})"
                ));
            }
        },
        Err(RunError::Denied(why)) => {
            return Firewall::Unreadable(format!(
                "reading the nftables ruleset needs root ({why}); run `sudo nft list ruleset | grep {port}`"
            ));
        }
        Err(RunError::Failed(why)) => {
            return Firewall::Unreadable(format!("the nftables ruleset could not be read: {why}"));
        }
        Err(RunError::Missing) => {}
    }
    let mut rules = Vec::new();
    let mut read_any = false;
    let mut loopback_accepted = false;
    for tool in ["iptables", "ip6tables"] {
        match run(tool, &["-S"]) {
            Ok(text) => {
                read_any = true;
                let (found, lo) = iptables_rules(tool, &text, port);
                rules.extend(found);
                loopback_accepted |= lo;
            }
            Err(RunError::Denied(why)) => {
                return Firewall::Unreadable(format!(
                    "reading iptables rules needs root ({why}); run `sudo iptables -S | grep {port}`"
                ));
            }
            Err(RunError::Failed(why)) => {
                return Firewall::Unreadable(format!(
                    "the iptables rules could not be read: {why}"
                ));
            }
            Err(RunError::Missing) => {}
        }
    }
    if read_any {
        Firewall::Read {
            tool: "iptables",
            rules,
            loopback_accepted,
        }
    } else {
        Firewall::Unreadable(
            "neither nft nor iptables is installed, so no rules could be read (most likely there is \
             no firewall); install nftables to let portscope check"
                .into(),
        )
    }
}

enum RunError {
    Missing,
    /// Needs root (or CAP_NET_ADMIN).
    Denied(String),
    /// Timed out or failed for another reason.
    Failed(String),
}

/// Runs a read-only tool with a deadline; its stdout on success. Its output is read while it
/// runs (a large ruleset fills the pipe before the tool exits).
fn run(tool: &str, args: &[&str]) -> Result<String, RunError> {
    const DEADLINE: Duration = Duration::from_secs(3);
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|_| RunError::Missing)?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(pipe) = pipe {
                let _ = pipe.take(16 << 20).read_to_string(&mut text);
            }
            text
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    match status {
        None => Err(RunError::Failed(format!(
            "`{tool}` did not answer within {} s",
            DEADLINE.as_secs()
        ))),
        Some(status) if status.success() => Ok(out),
        Some(_) => {
            let first = err.lines().next().unwrap_or("failed").trim().to_owned();
            if first.contains("Operation not permitted") || first.contains("Permission denied") {
                Err(RunError::Denied(format!("{tool}: {first}")))
            } else {
                Err(RunError::Failed(format!("{tool}: {first}")))
            }
        }
    }
}

/// Rules of an `nft -j list ruleset` that match TCP to the port (`tcp dport` or `th dport`,
/// `==`), input-hook chains whose policy drops, and whether a rule accepts all loopback traffic.
fn nft_rules(value: &serde_json::Value, port: u16) -> (Vec<Rule>, bool) {
    let mut rules = Vec::new();
    let mut loopback_accepted = false;
    let Some(items) = value.get("nftables").and_then(|v| v.as_array()) else {
        return (rules, loopback_accepted);
    };
    for item in items {
        if let Some(chain) = item.get("chain") {
            let hook = chain.get("hook").and_then(|v| v.as_str());
            let policy = chain.get("policy").and_then(|v| v.as_str());
            if hook == Some("input") && policy == Some("drop") {
                rules.push(Rule {
                    text: format!(
                        "{} chain {}: policy drop (anything not accepted is dropped)",
                        where_(chain),
                        str_of(chain, "name")
                    ),
                    verdict: "drop".into(),
                    policy: true,
                });
            }
        }
        let Some(rule) = item.get("rule") else {
            continue;
        };
        let Some(exprs) = rule.get("expr").and_then(|v| v.as_array()) else {
            continue;
        };
        let mut matched = None;
        let mut from_loopback = false;
        let mut verdict = None;
        for expr in exprs {
            if let Some(m) = expr.get("match") {
                let op = m.get("op").and_then(|v| v.as_str()).unwrap_or("==");
                let field = m.pointer("/left/payload/field").and_then(|v| v.as_str());
                let proto = m
                    .pointer("/left/payload/protocol")
                    .and_then(|v| v.as_str())
                    .unwrap_or("th");
                let meta = m.pointer("/left/meta/key").and_then(|v| v.as_str());
                let right = m.get("right");
                if op == "=="
                    && field == Some("dport")
                    && (proto == "tcp" || proto == "th")
                    && let Some(right) = right
                    && port_matches(right, port)
                {
                    matched = Some(format!("{proto} dport {right}"));
                }
                if op == "=="
                    && matches!(meta, Some("iif" | "iifname"))
                    && right.and_then(|r| r.as_str()) == Some("lo")
                {
                    from_loopback = true;
                }
            }
            for v in ["accept", "drop", "reject", "jump", "goto", "queue"] {
                if expr.get(v).is_some() {
                    verdict = Some(v);
                }
            }
        }
        if from_loopback && verdict == Some("accept") && matched.is_none() && exprs.len() == 2 {
            loopback_accepted = true;
        }
        if let Some(matched) = matched {
            let verdict = verdict.unwrap_or("continue");
            rules.push(Rule {
                text: format!(
                    "{} chain {}: {matched} {verdict}",
                    where_(rule),
                    str_of(rule, "chain")
                ),
                verdict: verdict.into(),
                policy: false,
            });
        }
    }
    (rules, loopback_accepted)
}

fn where_(v: &serde_json::Value) -> String {
    format!("{} {}", str_of(v, "family"), str_of(v, "table"))
}

fn str_of<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v.get(key).and_then(|v| v.as_str()).unwrap_or("?")
}

/// A port number, a `{"set": [...]}` of numbers and ranges, or a `{"range": [a, b]}`.
fn port_matches(right: &serde_json::Value, port: u16) -> bool {
    if let Some(n) = right.as_u64() {
        return n == u64::from(port);
    }
    if let Some(range) = right.get("range").and_then(|r| r.as_array()) {
        let (a, b) = (
            range.first().and_then(|v| v.as_u64()),
            range.get(1).and_then(|v| v.as_u64()),
        );
        return matches!((a, b), (Some(a), Some(b)) if (a..=b).contains(&u64::from(port)));
    }
    if let Some(set) = right.get("set").and_then(|s| s.as_array()) {
        return set.iter().any(|item| port_matches(item, port));
    }
    false
}

/// `-A INPUT -p tcp -m tcp --dport 5173 -j REJECT` lines that match TCP to the port, a
/// dropping INPUT policy, and whether `-A INPUT -i lo -j ACCEPT` is there.
fn iptables_rules(tool: &str, text: &str, port: u16) -> (Vec<Rule>, bool) {
    let mut rules = Vec::new();
    let mut loopback_accepted = false;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"-P")
            && words.get(1) == Some(&"INPUT")
            && words.get(2) == Some(&"DROP")
        {
            rules.push(Rule {
                text: format!("{tool}: {line} (anything not accepted is dropped)"),
                verdict: "drop".into(),
                policy: true,
            });
            continue;
        }
        let jump = words
            .windows(2)
            .find(|w| w[0] == "-j")
            .map_or("continue", |w| w[1]);
        if words == ["-A", "INPUT", "-i", "lo", "-j", "ACCEPT"] {
            loopback_accepted = true;
        }
        let proto = words.windows(2).find(|w| w[0] == "-p").map(|w| w[1]);
        if proto.is_some_and(|p| p != "tcp") {
            continue;
        }
        let names_port = words.windows(2).enumerate().any(|(i, w)| {
            (w[0] == "--dport" || w[0] == "--dports" || w[0] == "--destination-port")
                && (i == 0 || words[i - 1] != "!")
                && w[1].split(',').any(|item| {
                    let (a, b) = item.split_once(':').unwrap_or((item, item));
                    matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&port))
                })
        });
        if names_port {
            rules.push(Rule {
                text: format!("{tool}: {line}"),
                verdict: jump.to_ascii_lowercase(),
                policy: false,
            });
        }
    }
    (rules, loopback_accepted)
}

/// The container behind a port, asked from Docker's API socket (`GET /containers/json`).
/// `Ok(None)` when no container publishes the port.
pub fn docker_container(port: u16) -> Result<Option<String>, String> {
    use std::os::unix::net::UnixStream;
    const SOCKET: &str = "/var/run/docker.sock";
    let mut stream = UnixStream::connect(SOCKET).map_err(|e| {
        format!(
            "the Docker API socket {SOCKET} is not readable ({e}); `docker ps` names the container"
        )
    })?;
    let timeout = Some(Duration::from_secs(2));
    let _ = stream.set_read_timeout(timeout);
    let _ = stream.set_write_timeout(timeout);
    // HTTP/1.0: the answer comes whole, without chunked encoding.
    stream
        .write_all(b"GET /containers/json HTTP/1.0\r\nHost: docker\r\n\r\n")
        .map_err(|e| format!("the Docker API did not take the request: {e}"))?;
    let mut body = Vec::new();
    stream
        .take(8 << 20)
        .read_to_end(&mut body)
        .map_err(|e| format!("the Docker API did not answer: {e}"))?;
    let text = String::from_utf8_lossy(&body);
    let json = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let containers: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("the Docker API answered no JSON: {e}"))?;
    Ok(container_for_port(&containers, port))
}

fn container_for_port(containers: &serde_json::Value, port: u16) -> Option<String> {
    containers.as_array()?.iter().find_map(|c| {
        let publishes = c
            .get("Ports")?
            .as_array()?
            .iter()
            .any(|p| p.get("PublicPort").and_then(|v| v.as_u64()) == Some(u64::from(port)));
        if !publishes {
            return None;
        }
        let name = c
            .pointer("/Names/0")
            .and_then(|v| v.as_str())
            .unwrap_or("?");
        let image = c.get("Image").and_then(|v| v.as_str()).unwrap_or("?");
        Some(format!("{} (image {image})", name.trim_start_matches('/')))
    })
}

/// docker-proxy's target, from its command line (`-container-ip 172.17.0.2 -container-port 80`).
pub fn docker_proxy_target(cmdline: &[String]) -> Option<String> {
    let arg = |name: &str| {
        cmdline
            .windows(2)
            .find(|w| w[0] == name)
            .map(|w| w[1].clone())
    };
    Some(format!(
        "{}:{}",
        arg("-container-ip")?,
        arg("-container-port")?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_answers_are_read() {
        let page = b"HTTP/1.1 200 OK\r\nServer: SimpleHTTP/0.6\r\nContent-Type: text/html\r\n\r\n<html><head><TITLE>\n  My  app\x1b</title>";
        assert_eq!(
            parse_http(page),
            Http::Response {
                status: "HTTP/1.1 200 OK".into(),
                server: Some("SimpleHTTP/0.6".into()),
                title: Some(r"My app\u{1b}".into()),
            }
        );
        assert_eq!(parse_http(&[0x15, 0x03, 0x01, 0x00, 0x02]), Http::Tls);
        assert!(matches!(
            parse_http(b"\x4a\x00\x00\x00\x0a8.0.36"),
            Http::Other(_)
        ));
        assert!(matches!(
            parse_http(b"-ERR unknown command"),
            Http::Other(_)
        ));
    }

    #[test]
    fn nft_rules_that_name_the_port_are_found() {
        let ruleset = serde_json::json!({"nftables": [
            {"metainfo": {"json_schema_version": 1}},
            {"chain": {"family": "inet", "table": "filter", "name": "input", "hook": "input", "policy": "drop"}},
            {"rule": {"family": "inet", "table": "filter", "chain": "input", "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 5173}},
                {"reject": null}]}},
            {"rule": {"family": "inet", "table": "filter", "chain": "input", "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"set": [22, {"range": [8000, 8100]}]}}},
                {"accept": null}]}},
            {"rule": {"family": "inet", "table": "filter", "chain": "input", "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "sport"}}, "right": 5173}},
                {"drop": null}]}}
        ]});
        let (rules, lo) = nft_rules(&ruleset, 5173);
        let verdicts: Vec<(&str, bool)> = rules
            .iter()
            .map(|r| (r.verdict.as_str(), r.blocks()))
            .collect();
        assert_eq!(
            verdicts,
            [("drop", false), ("reject", true)],
            "the policy is not a rule about the port: {rules:?}"
        );
        assert!(
            rules[1].text.contains("tcp dport 5173 reject"),
            "{}",
            rules[1].text
        );
        assert!(!lo);
        assert_eq!(nft_rules(&ruleset, 8050).0[1].verdict, "accept");

        let negated = serde_json::json!({"nftables": [
            {"rule": {"family": "inet", "table": "f", "chain": "input", "expr": [
                {"match": {"op": "!=", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}},
                {"drop": null}]}},
            {"rule": {"family": "inet", "table": "f", "chain": "input", "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 22}},
                {"drop": null}]}},
            {"rule": {"family": "inet", "table": "f", "chain": "input", "expr": [
                {"match": {"op": "==", "left": {"meta": {"key": "iif"}}, "right": "lo"}},
                {"accept": null}]}}
        ]});
        let (rules, lo) = nft_rules(&negated, 22);
        assert!(
            rules.is_empty(),
            "`!=` and UDP rules do not drop TCP to 22: {rules:?}"
        );
        assert!(lo, "iif lo accept is seen");
    }

    #[test]
    fn iptables_rules_that_name_the_port_are_found() {
        let text = "-P INPUT ACCEPT\n-A INPUT -p tcp -m tcp --dport 5173 -j REJECT --reject-with icmp-port-unreachable\n\
                    -A INPUT -p tcp -m multiport --dports 80,8000:8100 -j DROP\n-A INPUT -p tcp --dport 51730 -j DROP\n";
        let (rules, lo) = iptables_rules("iptables", text, 5173);
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].verdict, "reject");
        assert!(!lo);
        assert_eq!(iptables_rules("iptables", text, 8080).0[0].verdict, "drop");
        let (policy, _) = iptables_rules("iptables", "-P INPUT DROP\n", 1);
        assert!(policy[0].text.contains("dropped") && !policy[0].blocks());
        let (rules, lo) = iptables_rules(
            "iptables",
            "-A INPUT -i lo -j ACCEPT\n-A INPUT -p tcp ! --dport 22 -j DROP\n-A INPUT -p udp --dport 22 -j DROP\n",
            22,
        );
        assert!(rules.is_empty(), "{rules:?}");
        assert!(lo);
    }

    #[test]
    fn containers_are_named_from_docker() {
        let cmd: Vec<String> = "/usr/bin/docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 8080 -container-ip 172.17.0.2 -container-port 80"
            .split(' ')
            .map(String::from)
            .collect();
        assert_eq!(docker_proxy_target(&cmd).as_deref(), Some("172.17.0.2:80"));
        let list = serde_json::json!([{"Names": ["/web"], "Image": "nginx", "Ports": [{"PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}]}]);
        assert_eq!(
            container_for_port(&list, 8080).as_deref(),
            Some("web (image nginx)")
        );
        assert_eq!(container_for_port(&list, 80), None);
    }
}
