//! The checks of `why`: [`analyze`] draws the verdicts from the facts [`super::gather`]
//! read, one function per check (listening, family and interface, exposure, a stopped owner
//! and the accept queue, containers, the firewall, the answer), each a pure function of the
//! facts, tested with made-up facts.

use std::net::{IpAddr, SocketAddr};

use portscope_shared::{
    Check, Diagnosis, Exposure, Fix, OwnerStatus, Proto, Question, Socket, SocketState, Verdict,
};

use super::speaks::logs_connect;
use super::{CONTAINER_PROXIES, Facts};
use crate::firewall::{self, Firewall};
use crate::probe::{self, Answer, Connect, Http};
use crate::target::{Target, shell_quote};
use crate::{check, finish, fix};

/// Draws the checks from the facts, in the order a person would look.
pub fn analyze(facts: &Facts) -> Diagnosis {
    let target = facts.target.clone().unwrap_or_else(|| Target {
        input: String::new(),
        host: "localhost".into(),
        port: 0,
        scheme: None,
        path: "/".into(),
    });
    let port = target.port;
    let mut checks = Vec::new();
    let any_connected = facts.probes.iter().any(|(_, c)| c.is_connected());
    let addrs: Vec<String> = facts.probes.iter().map(|(ip, _)| ip.to_string()).collect();

    // 1. Resolution.
    if target.literal().is_none() {
        checks.push(check(
            "resolve",
            Verdict::Info,
            format!("{} resolves to {} (in this order)", target.host, addrs.join(", ")),
            vec!["clients try the addresses in this order; some (Node 17+, Docker, Java) use only the first".into()],
            vec![],
        ));
    }

    // 2. Connect to each address.
    checks.extend(connect_checks(facts, port, any_connected));

    if !facts.local {
        checks.push(check(
            "local",
            Verdict::Info,
            format!(
                "{} is not this machine, so only the connection could be tested",
                target.host
            ),
            vec![],
            vec![fix(
                "run portscope on that machine to see who listens there and why",
                Some(format!("portscope why {port}")),
            )],
        ));
        return finish(
            Question::Why,
            target.input.clone(),
            port,
            checks,
            Vec::new(),
        );
    }

    let listeners: Vec<&Socket> = facts
        .sockets
        .iter()
        .filter(|s| s.proto == Proto::Tcp && s.state == SocketState::Listen)
        .collect();

    // 3. Is anything listening?
    checks.push(listening_check(facts, &listeners, port, any_connected));

    // 4. Does each failing address match a listener? (families, interfaces, V6ONLY)
    if !listeners.is_empty() {
        for (ip, outcome) in &facts.probes {
            if matches!(outcome, Connect::Refused | Connect::Failed(_))
                && let Some(c) = mismatch(&target, *ip, &listeners, facts, any_connected)
            {
                checks.push(c);
            }
        }
        checks.push(exposure_check(&listeners, &target));
    }

    // 5. Stopped owners (one check per process) and full accept queues.
    checks.extend(stopped_and_queued(facts, &listeners));

    // 6. Containers.
    if let Some(c) = container_check(facts, &listeners) {
        checks.push(c);
    }

    // 7. Firewall.
    if let Some(fw) = &facts.firewall {
        let loopback = facts.probes.iter().all(|(ip, _)| ip.is_loopback());
        checks.extend(forward_check(fw, port));
        checks.extend(firewall_check(
            fw,
            port,
            any_connected,
            loopback,
            facts.root,
        ));
    }

    // 8. What answers.
    if let Some((addr, answer)) = &facts.answer {
        checks.push(answer_check(*addr, answer, &target, &listeners, facts));
    } else if any_connected
        && target
            .scheme
            .as_deref()
            .is_some_and(|s| s == "https" || s == "wss")
    {
        checks.push(check(
            "http",
            Verdict::Unchecked,
            "the TCP connection works; the TLS handshake and HTTPS answer were not probed".into(),
            vec![],
            vec![fix(
                "see the answer",
                Some(format!(
                    "curl -kI {}",
                    shell_quote(&format!(
                        "{}://{}{}",
                        target.scheme.as_deref().unwrap_or("https"),
                        target.authority(),
                        target.path
                    ))
                )),
            )],
        ));
    }
    finish(
        Question::Why,
        target.input.clone(),
        port,
        checks,
        Vec::new(),
    )
}

/// One check per address tried: connected, refused, timed out. A failed address is only a
/// warning when another one works (clients that fall back).
pub(super) fn connect_checks(facts: &Facts, port: u16, any_connected: bool) -> Vec<Check> {
    let mut checks = Vec::new();
    for (ip, outcome) in &facts.probes {
        let addr = SocketAddr::new(*ip, port);
        let (verdict, title) = match outcome {
            Connect::Connected(t) => (
                Verdict::Ok,
                format!("connected to {addr} in {:.1} ms", t.as_secs_f64() * 1e3),
            ),
            Connect::Refused => (
                Verdict::Problem,
                format!("connection to {addr} refused: nothing accepts connections there"),
            ),
            Connect::TimedOut(t) => (
                Verdict::Problem,
                format!(
                    "connection to {addr} timed out after {} ms: nothing answered",
                    t.as_millis()
                ),
            ),
            Connect::Failed(e) => (Verdict::Problem, format!("cannot connect to {addr}: {e}")),
        };
        // A failed address is only a warning when another one works (clients that fall back).
        let verdict = if verdict == Verdict::Problem && any_connected {
            Verdict::Warning
        } else {
            verdict
        };
        checks.push(check("connect", verdict, title, vec![], vec![]));
    }
    checks
}

/// Stopped owners of the listeners (one check per process) and full accept queues.
pub(super) fn stopped_and_queued(facts: &Facts, listeners: &[&Socket]) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut owners: Vec<u32> = listeners
        .iter()
        .flat_map(|s| s.pids.iter().copied())
        .collect();
    owners.sort_unstable();
    owners.dedup();
    for pid in owners
        .iter()
        .copied()
        .filter(|p| facts.states.get(p) == Some(&'T'))
    {
        let name = name_of(facts, pid);
        // Workers that hold the same listener (nginx, gunicorn) keep answering for a stopped
        // master.
        let running: Vec<String> = listeners
            .iter()
            .filter(|s| s.pids.contains(&pid))
            .flat_map(|s| s.pids.iter().copied())
            .filter(|p| *p != pid && facts.states.get(p) != Some(&'T'))
            .map(|p| format!("{} (pid {p})", name_of(facts, p)))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let fixes = vec![
            fix("resume it", Some(format!("kill -CONT {pid}"))),
            fix(
                "or bring it back in the terminal that stopped it",
                Some("fg".into()),
            ),
        ];
        if running.is_empty() {
            checks.push(check(
                "stopped",
                Verdict::Problem,
                format!("{name} (pid {pid}) is stopped (state T): it holds the port but answers nothing"),
                vec!["stopped by SIGSTOP or Ctrl-Z; the kernel still completes handshakes until its accept queue is full".into()],
                fixes,
            ));
        } else {
            checks.push(check(
                "stopped",
                Verdict::Warning,
                format!(
                    "{name} (pid {pid}) is stopped (state T), but {} on the same socket still {} connections",
                    running.join(", "),
                    if running.len() == 1 { "accepts" } else { "accept" }
                ),
                vec!["a stopped master does not replace workers that exit, nor reload or shut down".into()],
                fixes,
            ));
        }
    }
    for socket in listeners {
        if let Some(&waiting) = facts.queues.get(&socket.id)
            && waiting > 0
        {
            let timed_out = facts
                .probes
                .iter()
                .any(|(_, c)| matches!(c, Connect::TimedOut(_)));
            checks.push(check(
                "backlog",
                if timed_out { Verdict::Problem } else { Verdict::Warning },
                format!(
                    "{waiting} connection{} wait in the accept queue of {}: the program is not accepting them",
                    plural(waiting as usize),
                    socket.local_endpoint()
                ),
                vec!["when the queue reaches the listen() backlog the kernel drops new connection attempts, and clients time out".into()],
                vec![fix("see what the program is doing (is it stuck, or single-threaded and busy?)", socket.pids.first().map(|p| format!("cat /proc/{p}/stack; top -p {p}")))],
            ));
        }
    }
    checks
}

pub(super) fn listening_check(
    facts: &Facts,
    listeners: &[&Socket],
    port: u16,
    connected: bool,
) -> Check {
    if !listeners.is_empty() {
        let evidence = listeners.iter().map(|s| describe(s, facts)).collect();
        let who = listeners
            .iter()
            .find_map(|s| {
                s.pids
                    .first()
                    .map(|p| format!("{} (pid {p})", name_of(facts, *p)))
            })
            .unwrap_or_else(|| "a process".into());
        return check(
            "listening",
            Verdict::Ok,
            format!("{who} listens on TCP port {port}"),
            evidence,
            vec![fix(
                "see the whole process tree",
                Some(format!("portscope who {port}")),
            )],
        );
    }
    if connected {
        // Something answered although nothing here listens: not a problem, but worth knowing.
        return check(
            "listening",
            Verdict::Info,
            format!(
                "no socket in this network namespace listens on TCP port {port}, yet the connection works: it is forwarded elsewhere"
            ),
            vec![
                "a DNAT rule (Docker without its userland proxy, kube-proxy, a port forward) or a listener in another network namespace answers for this port".into(),
            ],
            vec![fix(
                "see where the port is forwarded",
                Some(format!(
                    "{}nft list ruleset | grep -n 'dport {port}'",
                    crate::sudo_prefix(facts.root)
                )),
            )],
        );
    }
    let time_wait = facts
        .sockets
        .iter()
        .filter(|s| s.state == SocketState::TimeWait)
        .count();
    let udp: Vec<&Socket> = facts
        .sockets
        .iter()
        .filter(|s| s.proto == Proto::Udp)
        .collect();
    let mut evidence = Vec::new();
    if let Some(gone) = &facts.previous {
        evidence.push(gone.sentence());
    }
    if time_wait > 0 {
        evidence.push(format!(
            "{time_wait} connection{} on port {port} {} in TIME_WAIT: a server accepted connections here until recently, then stopped",
            plural(time_wait),
            if time_wait == 1 { "is" } else { "are" }
        ));
    }
    for s in &udp {
        evidence.push(format!(
            "a UDP socket is bound to {}: that program speaks UDP, not TCP",
            s.local_endpoint()
        ));
    }
    let mut fixes = vec![fix(
        "start the server, and check the port it prints when it starts",
        None,
    )];
    if time_wait > 0 {
        fixes.push(fix(
            "it stopped recently: look at its terminal or logs for why it exited",
            None,
        ));
    }
    fixes.push(fix(
        "find the ports that do listen",
        Some("portscope ls --listening".into()),
    ));
    // A container still publishes the port, but nothing forwards it here: its forwarder was
    // stopped or killed (`kill` on a docker-proxy), and restarting the server is not the fix.
    if let Some(Ok(Some(inside))) = &facts.container {
        let p = &inside.published;
        return check(
            "listening",
            Verdict::Problem,
            format!(
                "nothing listens on TCP port {port}, yet container {} (image {}) publishes it: its port forwarder (docker-proxy) is gone, stopped or killed",
                p.name, p.image
            ),
            evidence,
            vec![fix(
                "restart the container, which starts its forwarder again",
                Some(format!("docker restart {}", shell_quote(&p.name))),
            )],
        );
    }
    check(
        "listening",
        Verdict::Problem,
        format!(
            "nothing listens on TCP port {port}{}",
            if time_wait > 0 {
                " (the port is only in TIME_WAIT)"
            } else {
                ""
            }
        ),
        evidence,
        fixes,
    )
}

/// Why an address got no connection although something listens on the port.
pub(super) fn mismatch(
    target: &Target,
    ip: IpAddr,
    listeners: &[&Socket],
    facts: &Facts,
    others_work: bool,
) -> Option<Check> {
    let verdict = if others_work {
        Verdict::Warning
    } else {
        Verdict::Problem
    };
    let bound: Vec<String> = listeners
        .iter()
        .map(|s| s.local_endpoint().to_string())
        .collect();
    let bound = bound.join(", ");
    let port = target.port;
    let first = facts.probes.first().map(|(a, _)| *a) == Some(ip);
    let only_first = match (target.literal(), facts.probes.len()) {
        (None, 1) => format!(
            "; {} resolves to {ip} alone, so every client of {} fails",
            target.host, target.host
        ),
        (None, _) if first => format!(
            "; {} resolves to {ip} first, and clients that do not fall back (Node 17+, Java, Docker) fail",
            target.host
        ),
        _ => String::new(),
    };
    if ip.is_ipv6() && listeners.iter().all(|s| s.local_addr.is_ipv4()) {
        return Some(check(
            "family",
            verdict,
            format!("the server listens on IPv4 only ({bound}), but {ip} is IPv6{only_first}"),
            vec![],
            family_fixes(
                facts,
                target,
                listeners,
                IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            ),
        ));
    }
    if ip.is_ipv4() && listeners.iter().all(|s| s.local_addr.is_ipv6()) {
        let wildcard = listeners.iter().any(|s| s.local_addr.is_unspecified());
        let title = if wildcard {
            format!(
                "the server listens on [::] with IPV6_V6ONLY{}, so IPv4 clients like {ip} are refused",
                if facts.settings.bindv6only {
                    " (net.ipv6.bindv6only=1 makes it the default)"
                } else {
                    ""
                }
            )
        } else {
            format!("the server listens on IPv6 only ({bound}), but {ip} is IPv4{only_first}")
        };
        return Some(check(
            "family",
            verdict,
            title,
            vec![],
            family_fixes(
                facts,
                target,
                listeners,
                IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            ),
        ));
    }
    let same_family: Vec<&&Socket> = listeners
        .iter()
        .filter(|s| s.local_addr.is_ipv4() == ip.is_ipv4())
        .collect();
    if same_family
        .iter()
        .all(|s| Exposure::of(s.local_addr) == Exposure::Interface)
        && ip.is_loopback()
    {
        let addr = same_family.first().map(|s| s.local_addr)?;
        return Some(check(
            "interface",
            verdict,
            format!(
                "the server listens only on {bound}, an interface address, not on loopback ({ip})"
            ),
            vec![],
            vec![
                fix(
                    "connect to the address it listens on",
                    Some(client_command(facts, port, addr)),
                ),
                fix(
                    "or bind the server to 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)",
                    None,
                ),
            ],
        ));
    }
    if !ip.is_loopback()
        && same_family
            .iter()
            .all(|s| Exposure::of(s.local_addr) == Exposure::Loopback)
    {
        return Some(check(
            "interface",
            verdict,
            format!("the server listens on loopback only ({bound}), so {ip} does not reach it"),
            vec!["other machines, containers and VMs cannot reach a loopback listener".into()],
            vec![
                fix(
                    "connect through loopback from this machine",
                    Some(client_command(
                        facts,
                        port,
                        IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                    )),
                ),
                fix(
                    "or bind the server to 0.0.0.0 (or this address) if others must reach it",
                    None,
                ),
            ],
        ));
    }
    if !listeners.iter().any(|l| accepts(l, ip)) {
        return Some(check(
            "address",
            verdict,
            format!("the server listens on {bound}, not on {ip}"),
            vec![],
            vec![fix(
                "connect to the address it listens on, or bind the server to the one you use",
                listeners
                    .first()
                    .map(|l| client_command(facts, port, l.local_addr)),
            )],
        ));
    }
    Some(check(
        "refused",
        verdict,
        format!("something listens on a matching address ({bound}) but {ip} was still refused"),
        vec!["a firewall REJECT rule, or a listener in another network namespace (a container) can do this".into()],
        vec![fix("look at the firewall rules below and at `ip netns`", None)],
    ))
}

/// The fixes for a client and a server of different address families: connect to the family
/// the server has (`other`: its loopback address), or make the server listen on both, in the
/// words of the program at hand.
pub(super) fn family_fixes(
    facts: &Facts,
    target: &Target,
    listeners: &[&Socket],
    other: IpAddr,
) -> Vec<Fix> {
    let port = target.port;
    let family = if other.is_ipv4() { "IPv4" } else { "IPv6" };
    let mut fixes = vec![fix(
        &format!("connect to the {family} address"),
        Some(client_command(facts, port, other)),
    )];
    let app = program(facts, port);
    match app.map(|a| a.name) {
        Some("PostgreSQL") => fixes.push(fix(
            "or make PostgreSQL listen on both: `listen_addresses = 'localhost'` (or '127.0.0.1,::1') in postgresql.conf, then restart it",
            None,
        )),
        Some("Redis") => fixes.push(fix(
            "or make Redis listen on both: `bind 127.0.0.1 ::1` in redis.conf, then restart it",
            None,
        )),
        _ if other.is_ipv4() => fixes.push(fix(
            "or make the server listen on both families: bind `::` (dual-stack) or `localhost` on every address it resolves to",
            None,
        )),
        _ => fixes.push(fix(
            "or let the server also listen on IPv4: bind 0.0.0.0 or 127.0.0.1 too, or clear IPV6_V6ONLY",
            None,
        )),
    }
    let node = listeners.iter().flat_map(|s| s.pids.iter()).any(|p| {
        facts.processes.get(p).is_some_and(|p| {
            p.name == "node" || p.cmdline.first().is_some_and(|c| c.ends_with("/node"))
        })
    });
    if node && other.is_ipv4() {
        fixes.push(fix(
            "Node 17+: give `--host 127.0.0.1` to the dev server, or `dns.setDefaultResultOrder('ipv4first')`",
            None,
        ));
    }
    // `localhost` without an IPv6 entry cannot reach a server on ::1 only.
    let v6_resolved = facts.probes.iter().any(|(ip, _)| ip.is_ipv6());
    if target.host == "localhost" && other.is_ipv6() && !v6_resolved {
        fixes.push(fix(
            "or let `localhost` resolve to ::1 too: add `::1 localhost` to /etc/hosts",
            Some(format!(
                "{}sh -c 'echo \"::1 localhost\" >> /etc/hosts'",
                crate::sudo_prefix(facts.root)
            )),
        ));
    }
    fixes
}

/// The program behind the listeners on `port`: recognised by its process, else the port's
/// usual program (for choosing a client command, never stated as fact).
pub(super) fn program(facts: &Facts, port: u16) -> Option<&'static portscope_core::ports::App> {
    use portscope_core::ports::{Identity, identify};
    let owners = facts
        .sockets
        .iter()
        .filter(|s| s.local_port == port && s.state == SocketState::Listen)
        .flat_map(|s| s.pids.iter().filter_map(|p| facts.processes.get(p)));
    let mut unknown_known = false;
    for owner in owners {
        match identify(Some(owner), port) {
            Identity::Program(app) => return Some(app),
            Identity::Unknown => unknown_known = true,
            Identity::PortGuess(_) => {}
        }
    }
    match identify(None, port) {
        Identity::PortGuess(app) if !unknown_known => Some(app),
        _ => None,
    }
}

/// The command that tests a connection to `ip:port` with the listener's own client: `psql`,
/// `redis-cli`, `curl` for an HTTP server, `nc -vz` for plain TCP.
pub(super) fn client_command(facts: &Facts, port: u16, ip: IpAddr) -> String {
    let app = program(facts, port);
    if let Some(client) = app.and_then(|a| a.client) {
        return client
            .replace("{host}", &shell_quote(&ip.to_string()))
            .replace("{port}", &port.to_string());
    }
    let answered_http = matches!(
        facts.answer.as_ref().and_then(|(_, a)| a.reply()),
        Some(Http::Response { .. })
    );
    let http = app.is_some_and(|a| a.http)
        || answered_http
        || facts
            .target
            .as_ref()
            .and_then(|t| t.scheme.as_deref())
            .is_some_and(|s| s == "http" || s == "ws");
    if http {
        let path = facts.target.as_ref().map_or("/", |t| t.path.as_str());
        format!(
            "curl -i {}",
            shell_quote(&format!("http://{}{path}", SocketAddr::new(ip, port)))
        )
    } else {
        format!("nc -vz {} {port}", shell_quote(&ip.to_string()))
    }
}

pub(super) fn port_of(target: &Target) -> u16 {
    target.port
}

/// Whether a listener bound where it is takes connections to `ip`: the same address, the
/// wildcard of its family, or a dual-stack `[::]` for IPv4.
pub(super) fn accepts(listener: &Socket, ip: IpAddr) -> bool {
    let bound = listener.local_addr;
    bound == ip
        || (bound.is_unspecified() && bound.is_ipv4() == ip.is_ipv4())
        || (bound.is_unspecified() && bound.is_ipv6() && ip.is_ipv4())
}

pub(super) fn exposure_check(listeners: &[&Socket], target: &Target) -> Check {
    let all: Vec<&&Socket> = listeners
        .iter()
        .filter(|s| s.exposure == Some(Exposure::All))
        .collect();
    let risks: Vec<String> = listeners.iter().filter_map(|s| s.risk.clone()).collect();
    if all.is_empty() {
        let mut kinds: Vec<&str> = listeners
            .iter()
            .map(|s| Exposure::of(s.local_addr).explain())
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        return check(
            "exposure",
            Verdict::Ok,
            format!("exposure: {}", kinds.join("; ")),
            vec![],
            vec![],
        );
    }
    let loopback_target = target.literal().is_none_or(|ip| ip.is_loopback())
        && target.host == "localhost"
        || target.literal().is_some_and(|ip| ip.is_loopback());
    check(
        "exposure",
        if !risks.is_empty() {
            Verdict::Warning
        } else {
            Verdict::Info
        },
        format!(
            "listens on all interfaces ({}): reachable from other machines too",
            all.iter()
                .map(|s| s.local_endpoint().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        risks,
        if loopback_target {
            vec![fix(
                "if only this machine needs it, bind it to 127.0.0.1 instead of 0.0.0.0",
                None,
            )]
        } else {
            vec![]
        },
    )
}

pub(super) fn container_check(facts: &Facts, listeners: &[&Socket]) -> Option<Check> {
    let proxy = listeners.iter().find_map(|s| {
        s.pids.iter().find_map(|pid| {
            let p = facts.processes.get(pid)?;
            CONTAINER_PROXIES
                .contains(&p.name.as_str())
                .then_some((*s, *pid, p))
        })
    });
    let inside = match &facts.container {
        Some(Ok(Some(inside))) => Some(inside),
        _ => None,
    };
    if proxy.is_none() && inside.is_none() {
        return None;
    }
    let mut evidence = Vec::new();
    if let Some((socket, _, process)) = proxy
        && let Some(to) = probe::docker_proxy_target(&process.cmdline)
    {
        evidence.push(format!(
            "{} forwards {} to {to} inside the container",
            process.name,
            socket.local_endpoint()
        ));
    }
    let by = proxy.map_or_else(String::new, |(_, pid, p)| {
        format!(", forwarded by {} (pid {pid})", p.name)
    });
    let fixes = vec![fix(
        "list the containers and their ports",
        Some("docker ps --format '{{.Names}}\\t{{.Ports}}'".into()),
    )];
    let Some(inside) = inside else {
        let (verdict, title) = match &facts.container {
            Some(Ok(None)) => {
                evidence.push("no running container publishes this port".into());
                (
                    Verdict::Info,
                    format!("the port is forwarded into a container{by}"),
                )
            }
            Some(Err(why)) => {
                evidence.push(why.to_string());
                (
                    Verdict::Unchecked,
                    format!(
                        "the port is forwarded into a container{by}; which one could not be asked"
                    ),
                )
            }
            _ => (
                Verdict::Info,
                format!("the port is forwarded into a container{by}"),
            ),
        };
        return Some(check("container", verdict, title, evidence, fixes));
    };
    let p = &inside.published;
    let name = format!("container {} (image {})", p.name, p.image);
    Some(match &inside.listening {
        Ok(true) => check(
            "container",
            Verdict::Ok,
            format!(
                "the port belongs to {name}{by}; something listens on port {} inside",
                p.port
            ),
            evidence,
            fixes,
        ),
        Ok(false) => check(
            "container",
            Verdict::Problem,
            format!(
                "nothing listens on port {} inside {name}: the port is published, but the connection is accepted and then closed (curl: Empty reply from server)",
                p.port
            ),
            evidence,
            vec![
                fix(
                    "see what listens inside the container",
                    Some(format!("docker exec {} netstat -tln", shell_quote(&p.name))),
                ),
                fix(
                    &format!(
                        "start the server inside on port {}, listening on 0.0.0.0 (not 127.0.0.1, which the forward does not reach)",
                        p.port
                    ),
                    None,
                ),
                fix(
                    "check the container's logs for why it is not listening",
                    Some(format!("docker logs {}", shell_quote(&p.name))),
                ),
            ],
        ),
        Err(why) => check(
            "container",
            Verdict::Unchecked,
            format!("the port belongs to {name}{by}; what listens inside could not be read"),
            vec![why.to_string()],
            fixes,
        ),
    })
}

pub(super) fn firewall_check(
    fw: &Firewall,
    port: u16,
    connected: bool,
    loopback: bool,
    root: bool,
) -> Option<Check> {
    let (tool, rules, loopback_accepted) = match fw {
        Firewall::Unreadable(why) => {
            return Some(check(
                "firewall",
                Verdict::Unchecked,
                format!("firewall rules not read: {why}"),
                vec![],
                vec![],
            ));
        }
        Firewall::Read {
            tool,
            rules,
            loopback_accepted,
        } => (tool.as_str(), rules, *loopback_accepted),
    };
    let about_port: Vec<&firewall::Rule> = rules
        .iter()
        .filter(|r| !r.policy && r.forward.is_none())
        .collect();
    let describe = |r: &firewall::Rule| match &r.condition {
        Some(c) => format!("{} (only when {c})", r.text),
        None => r.text.clone(),
    };
    let evidence: Vec<String> = rules
        .iter()
        .filter(|r| r.forward.is_none())
        .map(describe)
        .collect();
    let definite = about_port
        .iter()
        .any(|r| r.blocks() && r.condition.is_none());
    let conditional: Vec<&&firewall::Rule> = about_port
        .iter()
        .filter(|r| r.blocks() && r.condition.is_some())
        .collect();
    if !definite && conditional.is_empty() {
        let title = if about_port.is_empty() {
            format!("no firewall rule drops or rejects TCP port {port} ({tool})")
        } else {
            format!(
                "{} firewall rule{} ({tool}) name{} port {port}, none drops or rejects it",
                about_port.len(),
                plural(about_port.len()),
                if about_port.len() == 1 { "s" } else { "" }
            )
        };
        // A default-drop policy matters only for traffic no rule accepts; shown, not blamed.
        let verdict = if evidence.is_empty() {
            Verdict::Ok
        } else {
            Verdict::Info
        };
        return Some(check("firewall", verdict, title, evidence, vec![]));
    }
    let sudo = crate::sudo_prefix(root);
    let handles = fix(
        "see the rules with their handles, then delete the rule or accept the port before it",
        Some(if tool.starts_with("nft") {
            format!("{sudo}nft -a list ruleset")
        } else {
            format!("{sudo}{} -S", tool.split(' ').next().unwrap_or("iptables"))
        }),
    );
    if !definite {
        let conditions: Vec<String> = conditional
            .iter()
            .filter_map(|r| r.condition.clone())
            .collect();
        return Some(check(
            "firewall",
            Verdict::Warning,
            format!(
                "a firewall rule ({tool}) drops or rejects TCP port {port} only when {}: portscope cannot tell whether that holds for this client",
                conditions.join("; or ")
            ),
            evidence,
            vec![handles],
        ));
    }
    // Loopback traffic usually meets `iif lo accept` first: then the drop rule may not apply.
    let verdict = match (connected, loopback && loopback_accepted) {
        (true, _) => Verdict::Warning,
        (false, true) => Verdict::Warning,
        (false, false) => Verdict::Problem,
    };
    let mut evidence = evidence;
    if loopback && loopback_accepted {
        evidence.push("a rule accepts all loopback traffic (iif lo accept); if it comes first, the drop does not apply to this target".into());
    }
    Some(check(
        "firewall",
        verdict,
        format!("a firewall rule ({tool}) drops or rejects TCP port {port}"),
        evidence,
        vec![handles],
    ))
}

/// DNAT rules the packet meets: the port is forwarded, and where.
pub(super) fn forward_check(fw: &Firewall, port: u16) -> Option<Check> {
    let Firewall::Read { rules, tool, .. } = fw else {
        return None;
    };
    let forwards: Vec<&firewall::Rule> = rules.iter().filter(|r| r.forward.is_some()).collect();
    let first = forwards.first()?;
    let to = first.forward.clone().unwrap_or_default();
    Some(check(
        "forward",
        Verdict::Info,
        match &first.condition {
            Some(c) => format!("TCP port {port} is forwarded to {to} (DNAT, {tool}) when {c}"),
            None => format!(
                "TCP port {port} is forwarded to {to} (DNAT, {tool}): connections go there, not to a listener on this machine"
            ),
        },
        forwards.iter().map(|r| r.text.clone()).collect(),
        vec![fix(
            "check what listens at the destination",
            Some(format!("nc -vz {}", shell_quote(&to.replacen(':', " ", 1)))),
        )],
    ))
}

pub(super) fn answer_check(
    addr: SocketAddr,
    answer: &Answer,
    target: &Target,
    listeners: &[&Socket],
    facts: &Facts,
) -> Check {
    // A server that logs even a bare connect and close (sshd) is said to, so nobody is
    // surprised by the line in its log.
    let logged = logs_connect(facts, port_of(target));
    let http = match answer {
        Answer::NotSent(why) => {
            let mut evidence = vec!["portscope only connected and closed; a request in the wrong protocol would be logged by the server as an error or an attack".to_owned()];
            evidence.extend(logged.clone());
            return check(
                "answer",
                Verdict::Info,
                format!("sent nothing to {addr}: {why}"),
                evidence,
                vec![fix(
                    "test it with its own client",
                    Some(client_command(facts, port_of(target), addr.ip())),
                )],
            );
        }
        Answer::Greeting(line) => {
            let mut evidence = vec![
                "a server that speaks first (SSH, SMTP, FTP, MySQL) is not an HTTP server"
                    .to_owned(),
            ];
            evidence.extend(logged);
            return check(
                "answer",
                Verdict::Info,
                format!("{addr} greets first: “{line}”; portscope sent nothing"),
                evidence,
                vec![fix(
                    "talk to it",
                    Some(client_command(facts, port_of(target), addr.ip())),
                )],
            );
        }
        Answer::Unreached(why) => {
            return check(
                "answer",
                Verdict::Info,
                format!("sent nothing to {addr}: {why}"),
                vec![],
                vec![fix(
                    "try it again with its own client",
                    Some(client_command(facts, port_of(target), addr.ip())),
                )],
            );
        }
        Answer::Http {
            request,
            listened,
            reply,
        } => (request, listened, reply),
    };
    let (request, listened, http) = http;
    // What portscope sent, in every title: "portscope sent `GET / HTTP/1.1` after 0.4 s of
    // silence".
    let sent = if listened.is_zero() {
        format!("portscope sent `{request}`")
    } else {
        format!(
            "portscope sent `{request}` after {} s of silence",
            listened.as_secs_f32()
        )
    };
    let url = format!("http://{}{}", target.authority(), target.path);
    let served_by = listeners
        .iter()
        .filter(|s| s.local_port == addr.port())
        .find_map(|s| {
            s.pids
                .first()
                .map(|p| format!("{} (pid {p})", name_of(facts, *p)))
        });
    match http {
        Http::Response {
            status,
            server,
            title,
        } => {
            let mut parts = vec![status.clone()];
            if let Some(server) = server {
                parts.push(format!("Server: {server}"));
            }
            if let Some(title) = title {
                parts.push(format!("title “{title}”"));
            }
            check(
                "http",
                Verdict::Ok,
                format!("{addr} answers HTTP: {} ({sent})", parts.join(", ")),
                served_by.map(|w| vec![format!("served by {w}; if that is not the server you expect, another program took the port first")]).unwrap_or_default(),
                vec![fix("see the full answer", Some(format!("curl -i {}", shell_quote(&url))))],
            )
        }
        Http::Tls => check(
            "http",
            Verdict::Warning,
            format!("{addr} speaks TLS, not plain HTTP: use https:// ({sent})"),
            vec![],
            vec![fix(
                "ask it over HTTPS",
                Some(format!(
                    "curl -kI {}",
                    shell_quote(&format!("https://{}{}", target.authority(), target.path))
                )),
            )],
        ),
        Http::Other(first) => check(
            "http",
            Verdict::Info,
            format!(
                "{addr} accepts connections but does not speak HTTP: {sent} and it answered “{first}”"
            ),
            vec![],
            vec![],
        ),
        Http::Silent(t) => check(
            "http",
            Verdict::Info,
            format!(
                "{addr} accepted the connection but sent nothing in {} s: {sent} and got no answer",
                t.as_secs_f32()
            ),
            vec!["not an HTTP server, or one that is stuck (stopped, deadlocked, or busy)".into()],
            vec![],
        ),
        Http::Failed(e) => check(
            "http",
            Verdict::Info,
            format!(
                "{addr} accepts connections but gave no HTTP answer: {sent}, then: {e}; not an HTTP server?"
            ),
            vec![],
            vec![],
        ),
    }
}

pub(super) fn describe(s: &Socket, facts: &Facts) -> String {
    let owner = match s.owner {
        OwnerStatus::Known => s
            .pids
            .iter()
            .map(|p| format!("{} (pid {p})", name_of(facts, *p)))
            .collect::<Vec<_>>()
            .join(", "),
        OwnerStatus::Hidden => format!(
            "a process of uid {} (run as root to see it)",
            s.uid.map_or("?".into(), |u| u.to_string())
        ),
        OwnerStatus::None => "no process".into(),
    };
    format!(
        "{} {} {} — {owner}",
        s.proto_label(),
        s.local_endpoint(),
        s.state.as_str()
    )
}

pub(super) fn name_of(facts: &Facts, pid: u32) -> String {
    facts
        .processes
        .get(&pid)
        .map_or_else(|| "process".into(), |p| p.name.clone())
}

pub(super) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
