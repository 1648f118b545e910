//! `portscope bind <port>`: try binding the port the way servers do, and explain each failure
//! (the holder, TIME_WAIT and `SO_REUSEADDR`, privileged ports, the ephemeral range).

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use portscope_shared::{
    Check, Diagnosis, OwnerStatus, Process, Proto, Question, Socket, SocketState, Verdict,
};
use socket2::{Domain, Protocol, Socket as RawSock, Type};

use super::{check, finish, fix};
use portscope_core::model::State;
use portscope_core::os;
use portscope_core::ports::{IANA_DYNAMIC, PortSettings, Services};

/// One way a server binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Way {
    pub proto: Proto,
    pub addr: IpAddr,
    /// For IPv6: `IPV6_V6ONLY`.
    pub v6only: Option<bool>,
    pub reuse_addr: bool,
}

impl Way {
    fn label(&self, port: u16) -> String {
        let proto = match self.proto {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        };
        let mode = match self.v6only {
            Some(true) => " (IPv6 only)",
            Some(false) => " (dual-stack)",
            None => "",
        };
        format!("{proto} {}{mode}", SocketAddr::new(self.addr, port))
    }
}

/// The ways `bind` tries, as servers do: with `SO_REUSEADDR` for TCP (Node, Go, Python's
/// socketserver and nginx all set it).
pub fn ways() -> Vec<Way> {
    let tcp = |addr: IpAddr, v6only| Way {
        proto: Proto::Tcp,
        addr,
        v6only,
        reuse_addr: true,
    };
    let udp = |addr: IpAddr, v6only| Way {
        proto: Proto::Udp,
        addr,
        v6only,
        reuse_addr: false,
    };
    vec![
        tcp(IpAddr::V4(Ipv4Addr::LOCALHOST), None),
        tcp(IpAddr::V4(Ipv4Addr::UNSPECIFIED), None),
        tcp(IpAddr::V6(Ipv6Addr::LOCALHOST), Some(true)),
        tcp(IpAddr::V6(Ipv6Addr::UNSPECIFIED), Some(true)),
        tcp(IpAddr::V6(Ipv6Addr::UNSPECIFIED), Some(false)),
        udp(IpAddr::V4(Ipv4Addr::UNSPECIFIED), None),
        udp(IpAddr::V6(Ipv6Addr::UNSPECIFIED), Some(true)),
    ]
}

/// Binds (and at once closes) a socket the given way. Nothing listens: no connection can
/// reach it in between.
pub fn try_bind(way: Way, port: u16) -> BindResult {
    let domain = if way.addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let (ty, proto) = match way.proto {
        Proto::Tcp => (Type::STREAM, Protocol::TCP),
        Proto::Udp => (Type::DGRAM, Protocol::UDP),
    };
    let run = || -> std::io::Result<()> {
        let socket = RawSock::new(domain, ty, Some(proto))?;
        socket.set_reuse_address(way.reuse_addr)?;
        if let Some(only) = way.v6only {
            socket.set_only_v6(only)?;
        }
        socket.bind(&SocketAddr::new(way.addr, port).into())
    };
    run().map_err(|e| (e.kind(), e.to_string()))
}

/// The outcome of one bind: the error's kind and text on failure.
pub type BindResult = Result<(), (ErrorKind, String)>;

/// Everything `analyze` needs.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub port: u16,
    pub attempts: Vec<(Way, BindResult)>,
    /// The TCP 0.0.0.0 attempt again without `SO_REUSEADDR`, when TIME_WAIT sockets exist.
    pub without_reuse: Option<BindResult>,
    pub sockets: Vec<Socket>,
    pub processes: HashMap<u32, Process>,
    pub settings: PortSettings,
    pub privileged_ok: bool,
    pub service: Option<String>,
    pub free: Vec<u16>,
    /// What the history says last listened here, when nothing listens now.
    pub previous: Option<super::Previous>,
    /// Whether portscope runs as root: the fixes that need root then get no `sudo`.
    pub root: bool,
}

pub fn gather(state: &State, port: u16) -> Facts {
    let settings = os::port_settings();
    let sockets: Vec<Socket> = state
        .sockets()
        .filter(|s| s.local_port == port)
        .cloned()
        .collect();
    let attempts = ways().into_iter().map(|w| (w, try_bind(w, port))).collect();
    let without_reuse = sockets
        .iter()
        .any(|s| s.state == SocketState::TimeWait)
        .then(|| {
            try_bind(
                Way {
                    proto: Proto::Tcp,
                    addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    v6only: None,
                    reuse_addr: false,
                },
                port,
            )
        });
    let processes = sockets
        .iter()
        .flat_map(|s| s.pids.iter())
        .filter_map(|pid| state.processes.get(pid).map(|p| (*pid, p.clone())))
        .collect();
    let services = Services::system();
    let free = super::free::find(port, 3, state, &settings, services);
    Facts {
        port,
        attempts,
        without_reuse,
        sockets,
        processes,
        privileged_ok: os::can_bind_privileged(),
        service: services.name(port, Proto::Tcp).map(str::to_owned),
        settings,
        free,
        previous: None,
        root: os::is_root(),
    }
}

pub fn analyze(facts: &Facts) -> Diagnosis {
    let port = facts.port;
    let mut checks = Vec::new();
    let failed = facts.attempts.iter().filter(|(_, r)| failed(r)).count();
    for (way, result) in &facts.attempts {
        checks.push(attempt_check(facts, *way, result));
    }
    // The localhost trap: one family's bind fails, the other's works, so a second server starts
    // beside the first and `localhost` clients reach either, depending on the family they try.
    let tcp_family = |v4: bool| {
        facts
            .attempts
            .iter()
            .filter(|(w, _)| {
                w.proto == Proto::Tcp && w.addr.is_ipv4() == v4 && w.v6only != Some(false)
            })
            // A family switched off (no IPv6) is neither free nor held.
            .filter(|(_, r)| !matches!(r, Err((kind, message)) if is_unavailable(*kind, message)))
            .map(|(_, r)| !matches!(r, Err((ErrorKind::AddrInUse, _))))
            .collect::<Vec<_>>()
    };
    let (v4, v6) = (tcp_family(true), tcp_family(false));
    let split = |free: &[bool], held: &[bool]| {
        !free.is_empty() && free.iter().all(|ok| *ok) && held.iter().any(|ok| !ok)
    };
    if split(&v4, &v6) || split(&v6, &v4) {
        let (free, held) = if split(&v6, &v4) {
            ("IPv6", "IPv4")
        } else {
            ("IPv4", "IPv6")
        };
        checks.push(check(
            "split",
            Verdict::Warning,
            format!(
                "port {port} is taken on {held} but free on {free}: a server that binds only {free} starts anyway, and `localhost` clients then reach one server or the other depending on the address family they try first"
            ),
            vec![],
            vec![fix("stop the old server first, or give the new one another port", Some(format!("portscope who {port}")))],
        ));
    }
    let time_wait = facts
        .sockets
        .iter()
        .filter(|s| s.state == SocketState::TimeWait)
        .count();
    if time_wait > 0 {
        let reuse_blocked = facts.attempts.iter().any(|(w, r)| {
            w.proto == Proto::Tcp
                && matches!(r, Err((ErrorKind::AddrInUse, _)))
                && blocked_by_time_wait(facts, *w)
        });
        let (verdict, outcome) = match &facts.without_reuse {
            _ if reuse_blocked => (
                Verdict::Problem,
                "the server that left them did not set SO_REUSEADDR, so every bind fails until they expire (up to 60 s)".to_owned(),
            ),
            Some(Err((ErrorKind::AddrInUse, _))) => (
                Verdict::Warning,
                "a server that does not set SO_REUSEADDR gets `address already in use` until they expire (up to 60 s)".to_owned(),
            ),
            Some(Err((_, e))) => (Verdict::Warning, format!("binding without SO_REUSEADDR failed too: {e}")),
            _ => (Verdict::Info, "binding without SO_REUSEADDR works as well".to_owned()),
        };
        checks.push(check(
            "time_wait",
            verdict,
            format!("{time_wait} connection{} on port {port} {} in TIME_WAIT: {outcome}", if time_wait == 1 { "" } else { "s" }, if time_wait == 1 { "is" } else { "are" }),
            vec!["TIME_WAIT is the kernel remembering a closed connection; no process holds it".into()],
            vec![fix("set SO_REUSEADDR before bind() in the server (most frameworks do), or wait a minute", None)],
        ));
    }
    if let Some(gone) = &facts.previous {
        checks.push(check(
            "history",
            Verdict::Info,
            gone.sentence(),
            vec![],
            vec![],
        ));
    }
    let start = facts.settings.unprivileged_start;
    if port < start {
        checks.push(if facts.privileged_ok {
            check(
                "privileged",
                Verdict::Info,
                format!("port {port} is privileged (below {start}); you may bind it (root or CAP_NET_BIND_SERVICE), other users may not"),
                vec![],
                vec![],
            )
        } else {
            let held: Vec<String> = facts
                .attempts
                .iter()
                .flat_map(|(w, _)| held_anyway(facts, *w))
                .fold(Vec::new(), |mut all, who| {
                    if !all.contains(&who) {
                        all.push(who);
                    }
                    all
                });
            let mut fixes = vec![fix(
                "use a port of 1024 or more",
                facts.free.first().map(|p| format!("portscope bind {p}")),
            )];
            if held.is_empty() {
                fixes.push(fix(
                    "or give the server binary the capability",
                    Some(format!(
                        "{}setcap 'cap_net_bind_service=+ep' /path/to/server",
                        super::sudo_prefix(facts.root)
                    )),
                ));
            } else {
                fixes.push(fix(
                    "or stop what holds it first (a capability alone would not help)",
                    Some(format!(
                        "{}portscope who {port}",
                        super::sudo_prefix(facts.root)
                    )),
                ));
            }
            let mut evidence = vec![format!("net.ipv4.ip_unprivileged_port_start = {start}")];
            if !held.is_empty() {
                evidence.push(format!("the port is held by {}", held.join(", ")));
            }
            check(
                "privileged",
                Verdict::Problem,
                format!("port {port} is privileged: ports below {start} need root or CAP_NET_BIND_SERVICE"),
                evidence,
                fixes,
            )
        });
    }
    if let Some(range) = facts.settings.ephemeral.filter(|r| r.contains(port)) {
        let reserved = facts.settings.is_reserved(port);
        checks.push(check(
            "ephemeral",
            if reserved { Verdict::Ok } else { Verdict::Warning },
            if reserved {
                format!("port {port} lies in the ephemeral range {}–{} but is reserved (ip_local_reserved_ports), so outgoing connections never take it", range.first, range.last)
            } else {
                format!(
                    "port {port} lies in this machine's ephemeral range {}–{}: any outgoing connection may take it, and then the server's bind fails at random",
                    range.first, range.last
                )
            },
            vec![format!("net.ipv4.ip_local_port_range = {} {}", range.first, range.last)],
            if reserved {
                vec![]
            } else {
                vec![
                    fix(&format!("pick a port below {}", range.first), facts.free.first().map(|p| format!("portscope bind {p}"))),
                    fix("or reserve it", Some(format!("{}sysctl -w net.ipv4.ip_local_reserved_ports={port}", super::sudo_prefix(facts.root)))),
                ]
            },
        ));
    }
    if IANA_DYNAMIC.contains(port) {
        checks.push(check(
            "iana_dynamic",
            Verdict::Warning,
            format!("port {port} lies in IANA's dynamic range 49152–65535, which macOS, Windows and the BSDs use for outgoing connections"),
            vec![],
            vec![fix("for a server that also runs elsewhere, pick a port below 49152", None)],
        ));
    }
    if let Some(name) = &facts.service {
        checks.push(check(
            "service",
            Verdict::Info,
            format!("port {port} is registered with IANA as `{name}`"),
            vec![],
            vec![],
        ));
    }
    // Other ports are suggested only when a bind fails: a free port needs no alternative.
    let suggested = if failed > 0 {
        facts.free.clone()
    } else {
        Vec::new()
    };
    let mut d = finish(Question::Bind, port.to_string(), port, checks, suggested);
    if failed == 0 && d.verdict != Verdict::Problem {
        let extra = if d.verdict == Verdict::Warning {
            format!(" (but {})", d.summary)
        } else {
            String::new()
        };
        d.summary = format!("port {port} is free: TCP and UDP bind on every address{extra}");
    }
    d
}

fn attempt_check(facts: &Facts, way: Way, result: &BindResult) -> Check {
    let port = facts.port;
    let at = way.label(port);
    let Err((kind, message)) = result else {
        return check(
            "bind",
            Verdict::Ok,
            format!("{at} can be bound"),
            vec![],
            vec![],
        );
    };
    match kind {
        ErrorKind::AddrInUse => in_use_check(facts, way, at),
        ErrorKind::PermissionDenied => {
            let held = held_anyway(facts, way);
            let mut title = if port < facts.settings.unprivileged_start {
                format!(
                    "{at}: permission denied: ports below {} need root or CAP_NET_BIND_SERVICE",
                    facts.settings.unprivileged_start
                )
            } else {
                format!(
                    "{at}: permission denied ({message}); a security module (SELinux, AppArmor) may forbid it"
                )
            };
            let mut fixes = vec![];
            if !held.is_empty() {
                // The kernel checks permission first: it never got to say "in use".
                title.push_str(&format!(
                    ", and {} already holds it, so even root could not bind it",
                    held.join(", ")
                ));
                fixes.push(fix(
                    "see who holds it",
                    Some(format!(
                        "{}portscope who {port}",
                        super::sudo_prefix(facts.root)
                    )),
                ));
            }
            check("bind", Verdict::Problem, title, vec![], fixes)
        }
        _ if is_unavailable(*kind, message) => check(
            "bind",
            Verdict::Unchecked,
            format!(
                "{at}: this address family or address is not available here ({message}); is IPv6 disabled?"
            ),
            vec![],
            vec![],
        ),
        _ => check(
            "bind",
            Verdict::Problem,
            format!("{at}: {message}"),
            vec![],
            vec![],
        ),
    }
}

/// Why a bind found the address in use: the listeners that hold it, else the connections that
/// use the port (a client the kernel gave it to), else TIME_WAIT leftovers.
fn in_use_check(facts: &Facts, way: Way, at: String) -> Check {
    let port = facts.port;
    let holders = holders(facts, way);
    if !holders.is_empty() {
        let mut names: Vec<String> = Vec::new();
        for (_, who) in &holders {
            for name in who.split(", ") {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
        }
        let mut evidence: Vec<String> = Vec::new();
        for (s, who) in &holders {
            let line = format!(
                "{} {} {} — {who}",
                s.proto_label(),
                s.local_endpoint(),
                s.state.as_str()
            );
            if !evidence.contains(&line) {
                evidence.push(line);
            }
        }
        return check(
            "bind",
            Verdict::Problem,
            format!("{at}: address already in use by {}", names.join(", ")),
            evidence,
            vec![
                fix(
                    "see who holds it and what started it",
                    Some(format!("portscope who {port}")),
                ),
                fix(
                    "stop what listens there",
                    Some(format!("portscope kill {port}")),
                ),
            ],
        );
    }
    let connections: Vec<String> = facts
        .sockets
        .iter()
        .filter(|s| {
            s.proto == way.proto
                && !blocks(s)
                && s.state != SocketState::TimeWait
                && overlaps(s, way)
        })
        .map(|s| {
            format!(
                "{} {} → {} {} — {}",
                s.proto_label(),
                s.local_endpoint(),
                s.remote_text(),
                s.state.as_str(),
                owner_names(facts, s)
            )
        })
        .collect();
    if !connections.is_empty() {
        return check(
            "bind",
            Verdict::Problem,
            format!(
                "{at}: address already in use by a connection that took port {port} as its local port"
            ),
            connections,
            vec![
                fix(
                    "wait for the connection to close (stopping the client would break it)",
                    None,
                ),
                fix(
                    "use a port outside the ephemeral range, which clients never get",
                    facts.free.first().map(|p| format!("portscope bind {p}")),
                ),
            ],
        );
    }
    let time_wait = time_wait_blockers(facts, way);
    if time_wait > 0 {
        // Linux lets a SO_REUSEADDR bind pass a TIME_WAIT socket only when the server that left
        // it had set SO_REUSEADDR too.
        return check(
            "bind",
            Verdict::Problem,
            format!(
                "{at}: address already in use by {time_wait} connection{} in TIME_WAIT, left by a server that did not set SO_REUSEADDR",
                if time_wait == 1 { "" } else { "s" }
            ),
            vec![
                "no process holds the port; the kernel keeps closed connections for up to 60 s"
                    .into(),
            ],
            vec![
                fix("wait up to a minute and start the server again", None),
                fix(
                    "set SO_REUSEADDR in the server before bind(), so the next restart does not hit this",
                    None,
                ),
            ],
        );
    }
    check(
        "bind",
        Verdict::Problem,
        format!(
            "{at}: address already in use, by a socket this scan did not see (another network namespace, or a process hidden from this user)"
        ),
        vec![],
        vec![fix(
            "look as root",
            Some(format!(
                "{}portscope who {port}",
                super::sudo_prefix(facts.root)
            )),
        )],
    )
}

/// A failed bind only TIME_WAIT leftovers explain: no listener and no connection holds it.
fn blocked_by_time_wait(facts: &Facts, way: Way) -> bool {
    holders(facts, way).is_empty()
        && !facts.sockets.iter().any(|s| {
            s.proto == way.proto
                && !blocks(s)
                && s.state != SocketState::TimeWait
                && overlaps(s, way)
        })
        && time_wait_blockers(facts, way) > 0
}

fn time_wait_blockers(facts: &Facts, way: Way) -> usize {
    facts
        .sockets
        .iter()
        .filter(|s| s.state == SocketState::TimeWait && overlaps(s, way))
        .count()
}

/// Address not on this machine, or the family switched off (`disable_ipv6`, `ipv6.disable=1`).
fn is_unavailable(kind: ErrorKind, message: &str) -> bool {
    kind == ErrorKind::AddrNotAvailable
        || message.contains("Address family not supported")
        || message.contains("os error 97")
}

fn owner_names(facts: &Facts, s: &Socket) -> String {
    match s.owner {
        OwnerStatus::Known => s
            .pids
            .iter()
            .map(|p| match facts.processes.get(p) {
                Some(proc) => format!("{} (pid {p})", proc.name),
                None => format!("pid {p}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        OwnerStatus::Hidden => format!(
            "a process of uid {} (sudo portscope who {} shows it)",
            s.uid.map_or("?".into(), |u| u.to_string()),
            facts.port
        ),
        OwnerStatus::None => "no process".into(),
    }
}

/// Sockets that keep this way from binding: same protocol, overlapping address, and for TCP a
/// listener or a bound, unconnected socket (with `SO_REUSEADDR`, connections do not block).
///
/// A `[::]` socket blocks IPv4 only when it is dual-stack, which the socket list does not say.
/// When an IPv4 socket on the port explains an IPv4 failure, `[::]` is not blamed: it is then
/// most likely `IPV6_V6ONLY` (nginx's `listen [::]:80` beside `listen 80`), or the IPv4 bind
/// would have failed for it.
fn holders(facts: &Facts, way: Way) -> Vec<(&Socket, String)> {
    let blocking: Vec<&Socket> = facts
        .sockets
        .iter()
        .filter(|s| overlaps(s, way) && blocks(s))
        .collect();
    let v4_explains = way.addr.is_ipv4() && blocking.iter().any(|s| s.local_addr.is_ipv4());
    blocking
        .into_iter()
        .filter(|s| !(v4_explains && s.local_addr.is_ipv6()))
        .map(|s| (s, owner_names(facts, s)))
        .collect()
}

/// Listeners on the port that a bind would meet after the permission check: for a permission
/// refusal, what holds the port anyway.
fn held_anyway(facts: &Facts, way: Way) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (_, who) in holders(facts, way) {
        if !names.contains(&who) {
            names.push(who);
        }
    }
    names
}

/// A bind that failed for a reason other than "this address family is not available here".
pub fn failed(result: &BindResult) -> bool {
    matches!(result, Err((kind, message)) if !is_unavailable(*kind, message))
}

fn blocks(s: &Socket) -> bool {
    s.proto == Proto::Udp || matches!(s.state, SocketState::Listen | SocketState::Close)
}

fn overlaps(s: &Socket, way: Way) -> bool {
    if s.proto != way.proto {
        return false;
    }
    let (a, b) = (s.local_addr, way.addr);
    a == b
        || (a.is_ipv4() == b.is_ipv4() && (a.is_unspecified() || b.is_unspecified()))
        // A dual-stack [::] covers IPv4 too.
        || (a.is_ipv6() && a.is_unspecified())
        || (b.is_ipv6() && b.is_unspecified() && way.v6only == Some(false))
}

#[cfg(test)]
mod tests {
    use portscope_core::testing::listener;
    use portscope_shared::PortRange;

    use super::*;

    fn facts(port: u16, fail: &[usize], kind: ErrorKind) -> Facts {
        Facts {
            port,
            attempts: ways()
                .into_iter()
                .enumerate()
                .map(|(i, w)| {
                    (
                        w,
                        if fail.contains(&i) {
                            Err((kind, "os error".into()))
                        } else {
                            Ok(())
                        },
                    )
                })
                .collect(),
            settings: PortSettings {
                ephemeral: Some(PortRange {
                    first: 32768,
                    last: 60999,
                }),
                ..PortSettings::default()
            },
            privileged_ok: false,
            free: vec![8123],
            ..Facts::default()
        }
    }

    /// A process with only a pid and a name known.
    fn named(pid: u32, name: &str) -> Process {
        Process {
            pid,
            ..portscope_core::testing::process(name, &[])
        }
    }

    #[test]
    fn each_holder_is_named_once_and_a_v6only_wildcard_is_not_blamed_for_ipv4() {
        // nginx: `listen 80; listen [::]:80;` (ipv6only=on), master and two workers on both.
        let mut f = facts(8080, &[0, 1, 2, 3, 4], ErrorKind::AddrInUse);
        let mut v4 = listener(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080, 10);
        v4.pids = vec![10, 11, 12];
        let mut v6 = listener(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 8080, 13);
        v6.pids = vec![10, 11, 12];
        f.sockets = vec![v4, v6];
        for pid in [10, 11, 12] {
            f.processes.insert(pid, named(pid, "nginx"));
        }
        let d = analyze(&f);
        let first = &d.checks[0];
        assert_eq!(
            first.title,
            "TCP 127.0.0.1:8080: address already in use by nginx (pid 10), nginx (pid 11), nginx (pid 12)",
            "each holder once"
        );
        assert_eq!(first.evidence.len(), 1, "{:?}", first.evidence);
        assert!(
            first.evidence[0].contains("0.0.0.0:8080"),
            "{:?}",
            first.evidence
        );
        assert!(
            !first.evidence.iter().any(|e| e.contains("[::]")),
            "[::] is not what blocks 127.0.0.1: {:?}",
            first.evidence
        );
        // The IPv6 binds are blocked by the [::] socket.
        let v6_check = &d.checks[2];
        assert!(
            v6_check.evidence.iter().any(|e| e.contains("[::]:8080")),
            "{v6_check:?}"
        );
        // With only a [::] socket, it is what blocks IPv4 (dual-stack, then).
        let mut f = facts(8080, &[0, 1], ErrorKind::AddrInUse);
        f.sockets = vec![listener(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 8080, 10)];
        let d = analyze(&f);
        assert!(
            d.checks[0].evidence[0].contains("[::]:8080"),
            "{:?}",
            d.checks[0]
        );
    }

    #[test]
    fn a_privileged_port_held_by_root_says_so_not_only_permission_denied() {
        let mut f = facts(80, &[0, 1, 2, 3, 4, 5, 6], ErrorKind::PermissionDenied);
        let mut held = listener(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 80, 0);
        held.owner = OwnerStatus::Hidden;
        held.pids = vec![];
        held.uid = Some(0);
        f.sockets = vec![held];
        let d = analyze(&f);
        assert!(
            d.checks[0]
                .title
                .contains("already holds it, so even root could not bind it")
                && d.checks[0].title.contains("uid 0"),
            "{}",
            d.checks[0].title
        );
        let privileged = d.checks.iter().find(|c| c.id == "privileged").unwrap();
        assert!(
            !privileged
                .fixes
                .iter()
                .any(|f| f.command.as_deref().is_some_and(|c| c.contains("setcap"))),
            "a capability would not help: {privileged:?}"
        );
        // Free: the capability is the way.
        let f = facts(80, &[0, 1, 2, 3, 4, 5, 6], ErrorKind::PermissionDenied);
        let d = analyze(&f);
        let privileged = d.checks.iter().find(|c| c.id == "privileged").unwrap();
        assert!(
            privileged
                .fixes
                .iter()
                .any(|f| f.command.as_deref().is_some_and(|c| c.contains("setcap")))
        );
    }

    /// The commands of every fix, for root and for an ordinary user.
    fn commands_as(f: &mut Facts, root: bool) -> Vec<String> {
        f.root = root;
        analyze(f)
            .checks
            .iter()
            .flat_map(|c| c.fixes.iter().filter_map(|x| x.command.clone()))
            .collect()
    }

    #[test]
    fn sudo_is_in_front_only_for_a_user_who_is_not_root() {
        assert_eq!(super::super::sudo_prefix(false), "sudo ");
        assert_eq!(super::super::sudo_prefix(true), "");
        // A free privileged port: setcap needs root.
        let mut free = facts(80, &[0, 1, 2, 3, 4, 5, 6], ErrorKind::PermissionDenied);
        let user = commands_as(&mut free, false);
        assert!(
            user.iter().any(|c| c.starts_with("sudo setcap ")),
            "{user:?}"
        );
        let root = commands_as(&mut free, true);
        assert!(root.iter().any(|c| c.starts_with("setcap ")), "{root:?}");
        assert!(root.iter().all(|c| !c.contains("sudo")), "{root:?}");
        // Held by another user's process: only root sees it.
        let mut held = facts(80, &[0, 1, 2, 3, 4, 5, 6], ErrorKind::PermissionDenied);
        let mut socket = listener(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 80, 0);
        socket.owner = OwnerStatus::Hidden;
        socket.pids = vec![];
        socket.uid = Some(0);
        held.sockets = vec![socket];
        let user = commands_as(&mut held, false);
        assert!(
            user.contains(&"sudo portscope who 80".to_owned()),
            "{user:?}"
        );
        let root = commands_as(&mut held, true);
        assert!(root.contains(&"portscope who 80".to_owned()), "{root:?}");
        assert!(root.iter().all(|c| !c.contains("sudo")), "{root:?}");
        // In use by a socket this scan did not see.
        let mut unseen = facts(5173, &[0, 1, 4], ErrorKind::AddrInUse);
        assert!(commands_as(&mut unseen, false).contains(&"sudo portscope who 5173".to_owned()));
        assert!(commands_as(&mut unseen, true).contains(&"portscope who 5173".to_owned()));
    }

    #[test]
    fn a_held_port_names_its_holder_on_the_overlapping_binds() {
        let mut f = facts(5173, &[0, 1, 4], ErrorKind::AddrInUse);
        f.sockets
            .push(listener(IpAddr::V4(Ipv4Addr::LOCALHOST), 5173, 77));
        f.processes.insert(77, named(77, "node"));
        let d = analyze(&f);
        assert_eq!(d.verdict, Verdict::Problem);
        assert_eq!(
            d.summary,
            "TCP 127.0.0.1:5173: address already in use by node (pid 77)"
        );
        assert_eq!(
            d.checks[0].fixes[1].command.as_deref(),
            Some("portscope kill 5173")
        );
        assert_eq!(
            d.checks[2].verdict,
            Verdict::Ok,
            "[::1] does not overlap 127.0.0.1"
        );
        let split = d
            .checks
            .iter()
            .find(|c| c.id == "split")
            .expect("the localhost trap");
        assert!(
            split.title.contains("taken on IPv4 but free on IPv6"),
            "{}",
            split.title
        );
        assert_eq!(d.free_ports, [8123]);
    }

    #[test]
    fn privileged_ephemeral_and_dynamic_ports_are_explained() {
        let d = analyze(&facts(
            80,
            &[0, 1, 2, 3, 4, 5, 6],
            ErrorKind::PermissionDenied,
        ));
        let privileged = d.checks.iter().find(|c| c.id == "privileged").unwrap();
        assert_eq!(privileged.verdict, Verdict::Problem);
        assert!(
            privileged.fixes[1]
                .command
                .as_deref()
                .unwrap()
                .contains("cap_net_bind_service")
        );

        let d = analyze(&facts(40000, &[], ErrorKind::Other));
        assert_eq!(d.verdict, Verdict::Warning);
        assert!(
            d.free_ports.is_empty(),
            "every bind worked: no other port to suggest"
        );
        assert!(d.summary.starts_with("port 40000 is free"), "{}", d.summary);
        assert!(
            d.summary.contains("ephemeral range 32768–60999"),
            "{}",
            d.summary
        );

        let mut reserved = facts(40000, &[], ErrorKind::Other);
        reserved.settings.reserved = vec![PortRange {
            first: 40000,
            last: 40000,
        }];
        assert_eq!(analyze(&reserved).verdict, Verdict::Ok);

        let d = analyze(&facts(50000, &[], ErrorKind::Other));
        assert!(d.checks.iter().any(|c| c.id == "iana_dynamic"));
    }

    #[test]
    fn time_wait_says_what_so_reuseaddr_changes() {
        let mut f = facts(8080, &[], ErrorKind::Other);
        let mut tw = listener(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080, 0);
        tw.state = SocketState::TimeWait;
        tw.pids.clear();
        tw.owner = OwnerStatus::None;
        f.sockets.push(tw);
        f.without_reuse = Some(Err((ErrorKind::AddrInUse, "in use".into())));
        let d = analyze(&f);
        let c = d.checks.iter().find(|c| c.id == "time_wait").unwrap();
        assert_eq!(c.verdict, Verdict::Warning);
        assert!(c.title.contains("does not set SO_REUSEADDR"), "{}", c.title);
    }

    #[test]
    fn a_client_connection_on_the_port_is_named_not_killed() {
        let mut f = facts(40000, &[0, 1], ErrorKind::AddrInUse);
        let mut client = listener(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000, 9);
        client.state = SocketState::Established;
        client.remote_addr = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        client.remote_port = Some(443);
        f.sockets.push(client);
        let d = analyze(&f);
        assert!(
            d.summary.contains("by a connection that took port 40000"),
            "{}",
            d.summary
        );
        assert!(
            d.checks[0].fixes.iter().all(|f| !f
                .command
                .as_deref()
                .unwrap_or_default()
                .contains("kill"))
        );
    }

    #[test]
    fn time_wait_beside_a_live_listener_blames_the_listener() {
        let mut f = facts(8080, &[0, 1, 4], ErrorKind::AddrInUse);
        f.sockets
            .push(listener(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080, 5));
        let mut tw = listener(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080, 0);
        tw.state = SocketState::TimeWait;
        tw.pids.clear();
        tw.owner = OwnerStatus::None;
        f.sockets.push(tw);
        let d = analyze(&f);
        let c = d.checks.iter().find(|c| c.id == "time_wait").unwrap();
        assert_ne!(c.verdict, Verdict::Problem, "{}", c.title);
        assert!(d.summary.contains("in use by pid 5"), "{}", d.summary);
    }

    #[test]
    fn a_host_without_ipv6_is_not_a_failure() {
        let f = facts(8123, &[2, 3, 4, 6], ErrorKind::AddrNotAvailable);
        let d = analyze(&f);
        assert!(
            d.checks.iter().all(|c| c.verdict != Verdict::Problem),
            "{d:#?}"
        );
        assert!(d.checks.iter().all(|c| c.id != "split"), "{d:#?}");
        assert!(d.summary.starts_with("port 8123 is free"), "{}", d.summary);
    }

    #[test]
    fn binding_for_real_finds_a_taken_port() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let way = ways()[0];
        assert_eq!(try_bind(way, port).unwrap_err().0, ErrorKind::AddrInUse);
        drop(held);
        assert_eq!(try_bind(way, port), Ok(()));
    }
}
