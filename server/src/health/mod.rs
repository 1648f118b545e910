//! Health checks (#12): while a dashboard is open, every listener known to serve HTTP — by its
//! program or by what it answered the doctor, never by its port number alone, so never a
//! program known not to speak HTTP — is sent one `GET /` at most every [`EVERY`], over loopback
//! only, with a timeout of [`TIMEOUT`]. Its status and latency ride on its socket
//! (`Socket.health`) from the next scan on. `--no-probe` turns it off.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use portscope_shared::{Health, Proto, Socket, SocketState};

use portscope_core::model::Watcher;
use portscope_doctor::probe::{Answer, Http};

/// How often each listener is checked at most.
pub const EVERY: Duration = Duration::from_secs(10);
/// How long a check may take.
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// The last check of each listener, by socket id; shared with the collector.
#[derive(Clone, Debug, Default)]
pub struct Checks {
    last: Arc<Mutex<HashMap<String, Health>>>,
}

impl portscope_core::collector::Annotate for Checks {
    fn annotate(&self, sockets: &mut portscope_core::collector::Sockets) {
        self.apply(sockets);
    }
}

impl Checks {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Health>> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts each listener's last check on a fresh scan, and forgets closed listeners'.
    pub fn apply(&self, sockets: &mut portscope_core::collector::Sockets) {
        let mut map = self.map();
        if map.is_empty() {
            return;
        }
        map.retain(|id, _| sockets.contains_key(id));
        for (id, health) in map.iter() {
            if let Some(socket) = sockets.get_mut(id) {
                socket.health = Some(health.clone());
            }
        }
    }
}

/// Where a listener is asked over loopback: its own address when that is loopback, its
/// family's loopback when it listens on all addresses; `None` for one bound to an interface
/// address only (checks stay on this machine's loopback).
pub fn target(socket: &Socket) -> Option<SocketAddr> {
    if socket.proto != Proto::Tcp || socket.state != SocketState::Listen || !socket.http {
        return None;
    }
    let ip = match socket.local_addr {
        ip if ip.is_loopback() => ip,
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        _ => return None,
    };
    Some(SocketAddr::new(ip, socket.local_port))
}

/// What a check's answer means.
pub fn judge(answer: &Answer, took: Duration) -> Health {
    let latency_ms = u32::try_from(took.as_millis()).unwrap_or(u32::MAX);
    let down = |detail: String| Health {
        up: false,
        status: None,
        latency_ms,
        detail: Some(detail),
    };
    match answer {
        Answer::Http {
            reply: Http::Response { status, .. },
            ..
        } => {
            let code = status
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse::<u16>().ok());
            Health {
                up: code.is_some_and(|c| c < 500),
                status: code,
                latency_ms,
                detail: code.filter(|&c| c >= 500).map(|c| format!("HTTP {c}")),
            }
        }
        Answer::Http {
            reply: Http::Tls, ..
        } => Health {
            up: true,
            status: None,
            latency_ms,
            detail: Some("answers TLS (https)".into()),
        },
        Answer::Http {
            reply: Http::Silent(after),
            ..
        } => down(format!("no answer within {} ms", after.as_millis())),
        Answer::Http {
            reply: Http::Failed(why),
            ..
        } => down(why.clone()),
        Answer::Http {
            reply: Http::Other(what),
            ..
        } => down(format!("not HTTP: {what}")),
        Answer::Greeting(what) => down(format!("not HTTP: {what}")),
        Answer::NotSent(why) | Answer::Unreached(why) => down(why.clone()),
    }
}

/// Checks the HTTP listeners of the published state while `open()` says a dashboard is
/// connected: at once when one opens, then every [`EVERY`], until the runtime stops.
pub async fn run(watcher: Watcher, checks: Checks, open: impl Fn() -> bool) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<Instant> = None;
    loop {
        ticker.tick().await;
        if !open() {
            last = None;
            continue;
        }
        if last.is_some_and(|t| t.elapsed() < EVERY) {
            continue;
        }
        last = Some(Instant::now());
        let targets: Vec<(String, SocketAddr)> = watcher
            .borrow()
            .state
            .sockets()
            // Not the agent's own dashboard: the page that asks is its answer, and each check
            // of it would wake a scan (kernel events) for nothing.
            .filter(|s| !s.pids.contains(&std::process::id()))
            .filter_map(|s| Some((s.id.clone(), target(s)?)))
            .collect();
        let asked = targets.into_iter().map(|(id, addr)| async move {
            let started = Instant::now();
            let host = addr.to_string();
            let answer =
                portscope_doctor::probe::converse(addr, &host, "/", Duration::ZERO, TIMEOUT).await;
            (id, judge(&answer, started.elapsed()))
        });
        let results = futures_util::future::join_all(asked).await;
        checks.map().extend(results);
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use portscope_core::testing::listener;

    #[test]
    fn only_http_listeners_are_checked_and_over_loopback() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut web = listener(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5173, 10);
        web.http = true;
        assert_eq!(target(&web), Some("127.0.0.1:5173".parse().unwrap()));
        let mut v6 = listener(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 3000, 10);
        v6.http = true;
        assert_eq!(target(&v6), Some("[::1]:3000".parse().unwrap()));
        let db = listener(lo, 5432, 11);
        assert_eq!(target(&db), None, "not known to speak HTTP");
        let mut lan = listener("192.0.2.5".parse().unwrap(), 8080, 12);
        lan.http = true;
        assert_eq!(target(&lan), None, "loopback only");
    }

    #[test]
    fn answers_are_judged_up_or_down() {
        let sent = |reply| Answer::Http {
            request: "GET / HTTP/1.1".into(),
            listened: Duration::ZERO,
            reply,
        };
        let ms = Duration::from_millis(12);
        let ok = judge(
            &sent(Http::Response {
                status: "HTTP/1.1 200 OK".into(),
                server: None,
                title: None,
            }),
            ms,
        );
        assert_eq!((ok.up, ok.status, ok.latency_ms), (true, Some(200), 12));
        let broken = judge(
            &sent(Http::Response {
                status: "HTTP/1.0 502 Bad Gateway".into(),
                server: None,
                title: None,
            }),
            ms,
        );
        assert_eq!(
            (broken.up, broken.status, broken.detail.as_deref()),
            (false, Some(502), Some("HTTP 502"))
        );
        let silent = judge(&sent(Http::Silent(TIMEOUT)), TIMEOUT);
        assert!(!silent.up && silent.detail.unwrap().contains("1000 ms"));
    }
}
