//! `portscope wait PORT...`: block until every port accepts connections — or, with `--http`,
//! answers HTTP 200–399 on a path — for scripts (`docker compose up -d && portscope wait 5432
//! 3000 && npm test`). A port still not ready at the deadline is explained with `why`'s
//! one-line summary.
//!
//! The loop is a fixed-interval poll with a deadline, written here: a retry crate (`backoff`,
//! `tokio-retry`) would add backoff the caller does not want — a script waits for the moment a
//! port opens, not for a server under load to recover.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::probe::{self, Answer, Http};

/// How often each port is tried.
pub const EVERY: Duration = Duration::from_millis(200);
/// How long one try may take.
pub const TRY: Duration = Duration::from_secs(1);

/// Where a port is after one try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Ready(IpAddr),
    /// Not yet: what the last try saw.
    NotYet(String),
}

/// One try: a TCP connect to each address, then (with `http`) `GET path` on the first that
/// connects, which must answer 200–399.
pub async fn try_port(addrs: &[IpAddr], port: u16, host: &str, http: Option<&str>) -> State {
    let mut last = String::from("nothing tried");
    for &ip in addrs {
        let addr = SocketAddr::new(ip, port);
        match probe::connect(addr, TRY).await {
            probe::Connect::Connected(_) => {}
            probe::Connect::Refused => {
                last = format!("{addr} refused the connection");
                continue;
            }
            probe::Connect::TimedOut(_) => {
                last = format!("{addr} did not answer");
                continue;
            }
            probe::Connect::Failed(e) => {
                last = format!("{addr}: {e}");
                continue;
            }
        }
        let Some(path) = http else {
            return State::Ready(ip);
        };
        let authority = if ip.is_ipv6() && host.parse::<IpAddr>().is_ok() {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        match probe::converse(addr, &authority, path, Duration::ZERO, TRY).await {
            Answer::Http {
                reply: Http::Response { status, .. },
                ..
            } if ok_status(&status) => {
                return State::Ready(ip);
            }
            Answer::Http {
                reply: Http::Response { status, .. },
                ..
            } => {
                last = format!("{addr} answers {status} on {path}");
            }
            other => last = format!("{addr} gives no HTTP answer on {path} ({other:?})"),
        }
    }
    State::NotYet(last)
}

/// `HTTP/1.1 204 No Content` → ready; 4xx and 5xx are not.
fn ok_status(status: &str) -> bool {
    status
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .is_some_and(|code| (200..400).contains(&code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_2xx_and_3xx_are_ready() {
        assert!(ok_status("HTTP/1.1 200 OK"));
        assert!(ok_status("HTTP/1.0 302 Found"));
        assert!(!ok_status("HTTP/1.1 404 Not Found"));
        assert!(!ok_status("HTTP/1.1 503 Service Unavailable"));
        assert!(!ok_status("garbage"));
    }
}
