//! The network reads of `why`: name resolution, TCP connects, the HTTP probe, the firewall
//! ruleset and the container engine. Each returns what it saw or why it could not look; the
//! verdicts are drawn in `why/checks.rs` from these facts.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::firewall::{Firewall, Packet, RunError};

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

/// Why a host has no address to probe; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("cannot resolve `{host}`: no answer within {} s", RESOLVE_TIMEOUT.as_secs())]
    TimedOut { host: String },
    #[error("cannot resolve `{host}`: {source}; check the name, or give an IP address")]
    Failed {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{host}` resolves to no address")]
    NoAddress { host: String },
}

/// Resolves a host in the order the system returns (getaddrinfo, so `/etc/hosts` and
/// `/etc/gai.conf` apply), without duplicates.
pub async fn resolve(host: &str, port: u16) -> Result<Vec<IpAddr>, ResolveError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| ResolveError::TimedOut { host: host.into() })?
        .map_err(|source| ResolveError::Failed {
            host: host.into(),
            source,
        })?;
    let mut out: Vec<IpAddr> = Vec::new();
    for addr in found {
        if !out.contains(&addr.ip()) {
            out.push(addr.ip());
        }
    }
    if out.is_empty() {
        return Err(ResolveError::NoAddress { host: host.into() });
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

/// What the doctor learnt from talking to a port that accepts connections, and what it sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Nothing was sent: the program there speaks `protocol`, not HTTP, and an HTTP request
    /// would be logged as an error or an attack (Redis, PostgreSQL).
    NotSent(String),
    /// The server spoke first (SSH, SMTP, FTP, MySQL greet their clients); nothing was sent.
    Greeting(String),
    /// Nothing was sent: the connection failed, or the server closed it before a word.
    Unreached(String),
    /// `GET path` was sent — at once to a known HTTP server, or after an unknown one stayed
    /// silent for `listened` ([`LISTEN_FIRST`]) — and this came back.
    Http {
        /// The request line sent (`GET / HTTP/1.1`).
        request: String,
        /// How long the doctor listened for a greeting before sending it (zero: not at all).
        listened: Duration,
        reply: Http,
    },
}

impl Answer {
    /// What came back from a `GET`, if one was sent.
    pub fn reply(&self) -> Option<&Http> {
        match self {
            Self::Http { reply, .. } => Some(reply),
            _ => None,
        }
    }
}

/// How long an unknown server may take to greet before the doctor sends an HTTP request.
pub const LISTEN_FIRST: Duration = Duration::from_millis(400);

/// Connects to `addr` and listens for `listen_first` (servers that speak first send a
/// banner): the stream when nothing came, else what came (a greeting, a closed connection).
async fn listen(
    addr: SocketAddr,
    listen_first: Duration,
    timeout: Duration,
) -> Result<TcpStream, Answer> {
    let mut stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(Answer::Unreached(format!("the connection failed: {e}"))),
        Err(_) => {
            return Err(Answer::Unreached(format!(
                "the connection was not accepted within {} ms",
                timeout.as_millis()
            )));
        }
    };
    if listen_first.is_zero() {
        return Ok(stream);
    }
    let mut chunk = [0u8; 8192];
    match tokio::time::timeout(listen_first, stream.read(&mut chunk)).await {
        Ok(Ok(n)) if n > 0 => Err(match parse_http(&chunk[..n]) {
            // A TLS alert or record unasked is still "speaks TLS" (nothing was sent).
            Http::Tls => Answer::Greeting("a TLS record (it speaks TLS)".into()),
            _ => Answer::Greeting(printable(first_line(&chunk[..n]), 80)),
        }),
        Ok(Ok(_)) => Err(Answer::Unreached(
            "the server closed the connection without a word".into(),
        )),
        Ok(Err(e)) => Err(Answer::Unreached(format!("the connection failed: {e}"))),
        Err(_) => Ok(stream),
    }
}

/// Listens for a greeting like [`converse`], and sends nothing when none comes: for a listener
/// that may relay another protocol (a proxy's stream), where a request could reach a server
/// that logs it as an attack. `why` says why nothing was sent then.
pub async fn listen_only(
    addr: SocketAddr,
    listen_first: Duration,
    timeout: Duration,
    why: String,
) -> Answer {
    match listen(addr, listen_first, timeout).await {
        Ok(_silent) => Answer::NotSent(why),
        Err(answer) => answer,
    }
}

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
    let mut stream = match listen(addr, listen_first, timeout).await {
        Ok(stream) => stream,
        Err(answer) => return answer,
    };
    let mut chunk = [0u8; 8192];
    let request_line = format!("GET {path} HTTP/1.1");
    let request = format!(
        "{request_line}\r\nHost: {host_header}\r\nUser-Agent: portscope-why\r\n\
         Accept: text/html,*/*\r\nConnection: close\r\n\r\n"
    );
    let sent = |reply: Http| Answer::Http {
        request: request_line.clone(),
        listened: listen_first,
        reply,
    };
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return sent(Http::Failed(e.to_string()));
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
            Ok(Err(e)) if buf.is_empty() => return sent(Http::Failed(e.to_string())),
            Ok(Err(_)) => break,
        }
    }
    if buf.is_empty() {
        return sent(if tokio::time::Instant::now() >= deadline {
            Http::Silent(timeout)
        } else {
            Http::Failed("the connection closed without an answer".into())
        });
    }
    sent(parse_http(&buf))
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

/// Reads the firewall rules the probe's packet can meet: nftables, else iptables, on Linux
/// (see [`super::firewall`]); pf's rules (`pfctl`, root only) and the application firewall's
/// state on macOS ([`super::pf`]). Windows Defender Firewall is not read.
pub fn firewall(packet: &Packet) -> Firewall {
    #[cfg(target_os = "macos")]
    return super::pf::read(packet, &run);
    #[cfg(windows)]
    return windows_firewall(packet, &run);
    #[cfg(not(any(target_os = "macos", windows)))]
    super::firewall::read(packet, &run)
}

/// Windows Defender Firewall is not read: says how to look.
#[cfg(windows)]
fn windows_firewall(packet: &Packet, _run: super::firewall::Runner<'_>) -> Firewall {
    Firewall::Unreadable(format!(
        "could not check: portscope does not read Windows Defender Firewall's rules; run \
         `netsh advfirewall firewall show rule name=all` and look for port {}",
        packet.port
    ))
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
    fn a_greeting_is_one_line_and_no_escape_is_cut() {
        let banner = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n";
        assert_eq!(
            printable(first_line(banner), 80),
            "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10"
        );
        // A control character at the cut stays whole: `\r`, never a lone backslash.
        assert_eq!(printable(b"abc\r", 4), r"abc\r");
        assert_eq!(printable(b"abc\rdef", 4), r"abc\r…");
    }

    /// A server on loopback port 0 that runs `serve` on its first connection, in a thread, and
    /// hands back what it received after `serve`, read by read.
    fn server(
        serve: impl FnOnce(&mut std::net::TcpStream) + Send + 'static,
    ) -> (SocketAddr, std::thread::JoinHandle<Vec<Vec<u8>>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            serve(&mut stream);
            // Everything the client sends until it closes (or 3 s).
            stream
                .set_read_timeout(Some(Duration::from_secs(3)))
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got.push(buf[..n].to_vec()),
                    // Not restarted after a signal when a timeout is set: read again.
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            got
        });
        (addr, handle)
    }

    #[tokio::test]
    async fn a_server_that_greets_first_is_sent_nothing_and_a_silent_one_gets_a_get() {
        // SSH-like: the banner at once, then it waits for the client. (Listening 2 s here, not
        // LISTEN_FIRST: the server thread may be scheduled late on a busy machine.)
        let (addr, received) = server(|s| {
            std::io::Write::write_all(s, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n").unwrap();
        });
        let answer = converse(
            addr,
            &addr.to_string(),
            "/",
            Duration::from_secs(2),
            Duration::from_secs(3),
        )
        .await;
        assert_eq!(
            answer,
            Answer::Greeting("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3".into())
        );
        let got = received.join().unwrap();
        assert!(
            got.is_empty(),
            "nothing is sent to a server that greets: {got:?}"
        );

        // Silent until asked: a `GET` after LISTEN_FIRST, and its answer read.
        let (addr, received) = server(|s| {
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap();
            assert!(
                buf[..n].starts_with(b"GET /app HTTP/1.1\r\n"),
                "{:?}",
                &buf[..n]
            );
            std::io::Write::write_all(
                s,
                b"HTTP/1.0 200 OK\r\nServer: test\r\n\r\n<title>Silent</title>",
            )
            .unwrap();
        });
        let started = Instant::now();
        let answer = converse(
            addr,
            &addr.to_string(),
            "/app",
            LISTEN_FIRST,
            Duration::from_secs(2),
        )
        .await;
        assert!(started.elapsed() >= LISTEN_FIRST, "it listened first");
        assert_eq!(
            answer,
            Answer::Http {
                request: "GET /app HTTP/1.1".into(),
                listened: LISTEN_FIRST,
                reply: Http::Response {
                    status: "HTTP/1.0 200 OK".into(),
                    server: Some("test".into()),
                    title: Some("Silent".into()),
                },
            }
        );
        received.join().unwrap();

        // A server that never answers: the GET was still sent, and the answer says so.
        let (addr, received) = server(|_| {});
        let answer = converse(
            addr,
            &addr.to_string(),
            "/",
            LISTEN_FIRST,
            Duration::from_secs(1),
        )
        .await;
        assert!(
            matches!(
                &answer,
                Answer::Http { request, listened, reply: Http::Silent(_) }
                    if request == "GET / HTTP/1.1" && *listened == LISTEN_FIRST
            ),
            "{answer:?}"
        );
        let got = received.join().unwrap();
        let first = got.first().expect("the GET arrived");
        assert!(first.starts_with(b"GET / HTTP/1.1\r\n"), "{first:?}");

        // One that closes before a word: nothing was sent.
        let (addr, received) = server(|s| s.shutdown(std::net::Shutdown::Both).unwrap());
        let answer = converse(
            addr,
            &addr.to_string(),
            "/",
            LISTEN_FIRST,
            Duration::from_secs(2),
        )
        .await;
        assert!(matches!(answer, Answer::Unreached(_)), "{answer:?}");
        received.join().unwrap();
    }

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
    fn containers_are_named_from_docker() {
        let cmd: Vec<String> = "/usr/bin/docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 8080 -container-ip 172.17.0.2 -container-port 80"
            .split(' ')
            .map(String::from)
            .collect();
        assert_eq!(docker_proxy_target(&cmd).as_deref(), Some("172.17.0.2:80"));
    }
}
