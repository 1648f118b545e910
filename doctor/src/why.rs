//! `portscope why <target>`: why a connection is refused, times out, or reaches the wrong
//! server. [`gather`] reads the facts (resolution, connects, sockets, processes, firewall,
//! HTTP); [`analyze`] draws the verdicts from them and is tested with made-up facts.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use portscope_shared::{
    Check, Diagnosis, Exposure, Fix, OwnerStatus, Process, Proto, Question, Socket, SocketState,
    Verdict,
};

use super::firewall::{self, Firewall};
use super::probe::{self, Answer, Connect, Http};
use super::target::{Target, shell_quote};
use super::{Source, check, finish, fix};
use portscope_core::model::State;
use portscope_core::os;
use portscope_core::os::Platform;
use portscope_core::ports::PortSettings;

/// Programs that forward a port into a container.
pub const CONTAINER_PROXIES: &[&str] = &[
    "docker-proxy",
    "rootlessport",
    "rootlesskit",
    "conmon",
    "slirp4netns",
    "pasta",
    "pasta.avx2",
];

/// Everything `analyze` needs.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub target: Option<Target>,
    /// Addresses in the order the system resolved them, each with its connect outcome.
    pub probes: Vec<(IpAddr, Connect)>,
    /// Whether the target is this machine (all local checks apply).
    pub local: bool,
    /// Every socket on the port.
    pub sockets: Vec<Socket>,
    pub processes: HashMap<u32, Process>,
    /// Scheduler state of the owners (`T` = stopped).
    pub states: HashMap<u32, char>,
    /// Listener socket id → connections waiting in its accept queue.
    pub queues: HashMap<String, u32>,
    pub settings: PortSettings,
    pub firewall: Option<Firewall>,
    /// What the port said, or why nothing was sent to it.
    pub answer: Option<(SocketAddr, Answer)>,
    /// The port's last listener in the history, when nothing listens now.
    pub previous: Option<super::Previous>,
    /// For a port a container may publish: the container and what listens inside it, or why
    /// the engine could not be asked.
    pub container: Option<
        Result<Option<portscope_core::containers::Inside>, portscope_core::containers::EngineError>,
    >,
    /// Whether portscope runs as root: the fixes that need root then get no `sudo`.
    pub root: bool,
}

/// Options of a diagnosis.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub timeout: Duration,
    /// Send the HTTP probe (`GET path`) when a connect works. Off for a shared dashboard: it
    /// would let anyone with the token make the agent request this machine's local services.
    pub http_probe: bool,
}

/// The blocking scan behind [`gather`] panicked or was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("the scan failed: {0}")]
pub struct ScanFailed(#[from] tokio::task::JoinError);

/// Reads every fact about a target, given the addresses it resolved to (resolved once by the
/// caller, so that what was checked is what is probed).
pub async fn gather(
    target: &Target,
    addrs: Vec<IpAddr>,
    source: Source,
    opts: Options,
) -> Result<Facts, ScanFailed> {
    // The local facts first: the accept queues must not count our own probe connections, and
    // what listens decides how it may be probed.
    let port = target.port;
    let interfaces = os::local_addresses();
    let local = addrs.iter().all(|&ip| probe::is_local(ip, &interfaces));
    let live = matches!(source, Source::Live(..));
    let again = source.rescan();
    let dst = addrs.clone();
    let mut facts =
        tokio::task::spawn_blocking(move || local_facts(&source, port, local, dst)).await?;

    let connects = addrs
        .iter()
        .map(|&ip| probe::connect(SocketAddr::new(ip, target.port), opts.timeout));
    let outcomes = futures_util::future::join_all(connects).await;
    let probes: Vec<(IpAddr, Connect)> = addrs.iter().copied().zip(outcomes).collect();
    // The live model is up to a tick old: when the connects disagree with it (a server that
    // started or stopped since), the sockets are read again, fresh. The accept queues stay as
    // read before the connects.
    if live && local && disagrees(&facts.sockets, &probes) {
        let fresh =
            tokio::task::spawn_blocking(move || again.with(|state| socket_facts(state, port)))
                .await?;
        (facts.sockets, facts.processes, facts.states) = fresh;
    }

    let tls = target
        .scheme
        .as_deref()
        .is_some_and(|s| s == "https" || s == "wss");
    // An `http://` URL is the user's word that the listener serves HTTP.
    let asked_http = target.scheme.as_deref() == Some("http");
    let answer = match probes.iter().find(|(_, c)| c.is_connected()) {
        Some(&(ip, _)) if opts.http_probe && !tls => {
            let addr = SocketAddr::new(ip, target.port);
            let timeout = opts.timeout.max(Duration::from_secs(2));
            Some((
                addr,
                match speaks(&facts, port) {
                    Speaks::Other(why) => Answer::NotSent(why),
                    Speaks::Proxy(why) if !asked_http => {
                        probe::listen_only(addr, probe::LISTEN_FIRST, timeout, why).await
                    }
                    Speaks::Http | Speaks::Proxy(_) => {
                        probe::converse(
                            addr,
                            &target.authority(),
                            &target.path,
                            Duration::ZERO,
                            timeout,
                        )
                        .await
                    }
                    Speaks::Unknown => {
                        probe::converse(
                            addr,
                            &target.authority(),
                            &target.path,
                            probe::LISTEN_FIRST,
                            timeout,
                        )
                        .await
                    }
                },
            ))
        }
        _ => None,
    };
    facts.target = Some(target.clone());
    facts.root = os::is_root();
    facts.probes = probes;
    facts.local = local;
    facts.answer = answer;
    Ok(facts)
}

/// What the listener on a port speaks, as far as portscope may tell without sending anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Speaks {
    /// A program known to serve HTTP, or a listener that answered HTTP before.
    Http,
    /// A proxy that can relay any protocol (nginx's `stream`, HAProxy, Envoy, …) that has not
    /// answered HTTP yet: it is listened to for a greeting and sent nothing, unless asked with
    /// an `http://` URL. Why, for the answer.
    Proxy(String),
    /// A program (or, when its program is unknown, a port) known for a protocol that is not
    /// HTTP: why nothing will be sent.
    Other(String),
    Unknown,
}

/// Decides from the listeners' programs: a recognised program's protocol first; when no owner
/// is recognised (another user's process, a port forwarder such as `docker-proxy`), the
/// protocol of the port's usual program, since an HTTP request to Redis or PostgreSQL is logged
/// as an attack or an error.
pub fn speaks(facts: &Facts, port: u16) -> Speaks {
    use portscope_core::ports::{Identity, identify};
    let owners = facts
        .sockets
        .iter()
        .filter(|s| s.local_port == port && s.state == SocketState::Listen)
        .flat_map(|s| s.pids.iter().filter_map(|p| facts.processes.get(p)));
    // What a listener of the port answered before (`why` heard it answer HTTP).
    let answered_http = facts
        .sockets
        .iter()
        .any(|s| s.local_port == port && s.state == SocketState::Listen && s.http);
    let mut proxy = None;
    for owner in owners {
        match identify(Some(owner), port) {
            Identity::Program(app) if app.protocol.is_some() => {
                return Speaks::Other(format!(
                    "{} (pid {}) speaks {}, not HTTP",
                    app.name,
                    owner.pid,
                    app.protocol.unwrap_or_default()
                ));
            }
            Identity::Program(app) if app.http => return Speaks::Http,
            Identity::Program(app) if app.proxy => {
                proxy = proxy.or(Some((app.name, owner.pid)));
            }
            _ => {}
        }
    }
    if answered_http {
        return Speaks::Http;
    }
    if let Some((name, pid)) = proxy {
        return Speaks::Proxy(format!(
            "{name} (pid {pid}) can relay any protocol here (a `stream` block in front of Redis, \
             say), so it was sent no HTTP request; ask with http://HOST:{port}/ to check HTTP"
        ));
    }
    match identify(None, port) {
        Identity::PortGuess(app) if app.protocol.is_some() => Speaks::Other(format!(
            "its program is not recognised, and port {port} is usually {}, which speaks {}, not HTTP",
            app.name,
            app.protocol.unwrap_or_default()
        )),
        _ => Speaks::Unknown,
    }
}

/// What a listener's program logs of a bare connect and close, when it logs one (sshd's
/// "kex_exchange_identification: Connection closed by remote host"), as evidence.
fn logs_connect(facts: &Facts, port: u16) -> Option<String> {
    facts
        .sockets
        .iter()
        .filter(|s| s.local_port == port && s.state == SocketState::Listen)
        .flat_map(|s| s.pids.iter().filter_map(|p| facts.processes.get(p)))
        .find_map(|owner| {
            let app = portscope_core::ports::identify(Some(owner), port).program()?;
            app.logs_connect
                .map(|what| format!("{} logs even this connect and close: {what}", app.name))
        })
}

/// Whether what the connects saw contradicts the sockets read before them: a connection worked
/// with no TCP listener, or none worked while one listens.
pub fn disagrees(sockets: &[Socket], probes: &[(IpAddr, Connect)]) -> bool {
    let listening = sockets
        .iter()
        .any(|s| s.proto == Proto::Tcp && s.state == SocketState::Listen);
    let connected = probes.iter().any(|(_, c)| c.is_connected());
    connected != listening
}

/// The sockets on `port`, their owners, and the owners' scheduler states (read now).
fn socket_facts(
    state: &State,
    port: u16,
) -> (Vec<Socket>, HashMap<u32, Process>, HashMap<u32, char>) {
    let sockets: Vec<Socket> = state
        .sockets
        .values()
        .filter(|s| s.local_port == port)
        .cloned()
        .collect();
    let mut processes = HashMap::new();
    let mut states = HashMap::new();
    let mut system = os::System::new();
    for socket in &sockets {
        for pid in &socket.pids {
            if let Some(p) = state.processes.get(pid) {
                processes.insert(*pid, p.clone());
            }
            if let Some(st) = Platform::stat(&mut system, *pid).and_then(|s| s.state) {
                states.insert(*pid, st);
            }
        }
    }
    (sockets, processes, states)
}

/// The socket table, owners, queues, firewall and container for one port.
fn local_facts(source: &Source, port: u16, local: bool, dst: Vec<IpAddr>) -> Facts {
    let mut facts = Facts::default();
    if !local {
        return facts;
    }
    (facts.sockets, facts.processes, facts.states) = source.with(|state| socket_facts(state, port));
    let queues = os::accept_queues();
    for socket in facts
        .sockets
        .iter()
        .filter(|s| s.state == SocketState::Listen)
    {
        if let Some(n) = socket
            .id
            .rsplit_once(" i")
            .and_then(|(_, inode)| inode.parse::<u64>().ok())
            .and_then(|inode| queues.get(&inode))
        {
            facts.queues.insert(socket.id.clone(), *n);
        }
    }
    facts.settings = os::port_settings();
    facts.firewall = Some(probe::firewall(&firewall::Packet {
        dst: dst.clone(),
        port,
    }));
    let proxied = facts
        .processes
        .values()
        .any(|p| CONTAINER_PROXIES.contains(&p.name.as_str()));
    let labelled = facts.sockets.iter().any(|s| {
        s.app
            .as_deref()
            .is_some_and(|a| a.starts_with("container "))
    });
    let listens = facts
        .sockets
        .iter()
        .any(|s| s.proto == Proto::Tcp && s.state == SocketState::Listen);
    if proxied || labelled {
        let bound: Vec<IpAddr> = facts
            .sockets
            .iter()
            .filter(|s| s.state == SocketState::Listen)
            .map(|s| s.local_addr)
            .collect();
        facts.container = Some(portscope_core::containers::inside(port, &bound));
    } else if !listens && portscope_core::containers::Engine::detect().is_some() {
        // Nothing listens: a container may still publish the port, its forwarder gone.
        let mut addrs = vec![
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        ];
        addrs.extend(dst.iter().copied());
        if let Ok(Some(inside)) = portscope_core::containers::inside(port, &addrs) {
            facts.container = Some(Ok(Some(inside)));
        }
    }
    facts
}

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
fn connect_checks(facts: &Facts, port: u16, any_connected: bool) -> Vec<Check> {
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
fn stopped_and_queued(facts: &Facts, listeners: &[&Socket]) -> Vec<Check> {
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

fn listening_check(facts: &Facts, listeners: &[&Socket], port: u16, connected: bool) -> Check {
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
                    super::sudo_prefix(facts.root)
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
fn mismatch(
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
fn family_fixes(facts: &Facts, target: &Target, listeners: &[&Socket], other: IpAddr) -> Vec<Fix> {
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
                super::sudo_prefix(facts.root)
            )),
        ));
    }
    fixes
}

/// The program behind the listeners on `port`: recognised by its process, else the port's
/// usual program (for choosing a client command, never stated as fact).
fn program(facts: &Facts, port: u16) -> Option<&'static portscope_core::ports::App> {
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
fn client_command(facts: &Facts, port: u16, ip: IpAddr) -> String {
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

fn port_of(target: &Target) -> u16 {
    target.port
}

/// Whether a listener bound where it is takes connections to `ip`: the same address, the
/// wildcard of its family, or a dual-stack `[::]` for IPv4.
fn accepts(listener: &Socket, ip: IpAddr) -> bool {
    let bound = listener.local_addr;
    bound == ip
        || (bound.is_unspecified() && bound.is_ipv4() == ip.is_ipv4())
        || (bound.is_unspecified() && bound.is_ipv6() && ip.is_ipv4())
}

fn exposure_check(listeners: &[&Socket], target: &Target) -> Check {
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

fn container_check(facts: &Facts, listeners: &[&Socket]) -> Option<Check> {
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

fn firewall_check(
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
    let sudo = super::sudo_prefix(root);
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
fn forward_check(fw: &Firewall, port: u16) -> Option<Check> {
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

fn answer_check(
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

fn describe(s: &Socket, facts: &Facts) -> String {
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

fn name_of(facts: &Facts, pid: u32) -> String {
    facts
        .processes
        .get(&pid)
        .map_or_else(|| "process".into(), |p| p.name.clone())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use portscope_core::testing::listener;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

    fn facts(target: &str, probes: Vec<(IpAddr, Connect)>, sockets: Vec<Socket>) -> Facts {
        Facts {
            target: Some(super::super::target::parse(target).unwrap()),
            probes,
            local: true,
            sockets,
            ..Facts::default()
        }
    }

    fn ids(d: &Diagnosis) -> Vec<(&str, Verdict)> {
        d.checks
            .iter()
            .map(|c| (c.id.as_str(), c.verdict))
            .collect()
    }

    #[test]
    fn nothing_listening_is_the_problem_and_time_wait_is_evidence() {
        let mut tw = listener(V4, 5173, 0);
        tw.state = SocketState::TimeWait;
        tw.pids.clear();
        let d = analyze(&facts(
            "127.0.0.1:5173",
            vec![(V4, Connect::Refused)],
            vec![tw],
        ));
        assert_eq!(d.verdict, Verdict::Problem);
        assert!(
            d.summary
                .contains("nothing listens on TCP port 5173 (the port is only in TIME_WAIT)"),
            "{}",
            d.summary
        );
        let listening = d.checks.iter().find(|c| c.id == "listening").unwrap();
        assert!(listening.evidence[0].contains("TIME_WAIT"));
    }

    #[test]
    fn localhost_to_an_ipv4_only_server_warns_about_the_ipv6_first_trap() {
        let f = facts(
            "localhost:5173",
            vec![
                (V6, Connect::Refused),
                (V4, Connect::Connected(Duration::from_millis(1))),
            ],
            vec![listener(V4, 5173, 7)],
        );
        let d = analyze(&f);
        let family = d
            .checks
            .iter()
            .find(|c| c.id == "family")
            .expect("family check");
        assert_eq!(family.verdict, Verdict::Warning);
        assert!(
            family.title.contains("IPv4 only (127.0.0.1:5173)"),
            "{}",
            family.title
        );
        assert!(
            family.title.contains("localhost resolves to ::1 first"),
            "{}",
            family.title
        );
        assert_eq!(d.verdict, Verdict::Warning);
    }

    #[test]
    fn a_name_that_resolves_to_one_address_fails_every_client_not_only_some() {
        // localhost → 127.0.0.1 alone (no ::1 line in the hosts file), an IPv6-only server.
        let d = analyze(&facts(
            "localhost:5173",
            vec![(V4, Connect::Refused)],
            vec![listener(V6, 5173, 7)],
        ));
        let family = d.checks.iter().find(|c| c.id == "family").expect("family");
        assert_eq!(family.verdict, Verdict::Problem);
        assert!(
            family.title.contains(
                "localhost resolves to 127.0.0.1 alone, so every client of localhost fails"
            ),
            "{}",
            family.title
        );
        assert!(!family.title.contains("fall back"), "{}", family.title);
    }

    #[test]
    fn ipv4_client_to_an_ipv6_only_server_is_a_problem() {
        let d = analyze(&facts(
            "127.0.0.1:3000",
            vec![(V4, Connect::Refused)],
            vec![listener(V6, 3000, 7)],
        ));
        assert_eq!(
            ids(&d)[..3],
            [
                ("connect", Verdict::Problem),
                ("listening", Verdict::Ok),
                ("family", Verdict::Problem)
            ]
        );
        let d = analyze(&facts(
            "127.0.0.1:3000",
            vec![(V4, Connect::Refused)],
            vec![listener(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 3000, 7)],
        ));
        assert!(d.summary.contains("IPV6_V6ONLY"), "{}", d.summary);
    }

    #[test]
    fn a_listener_on_an_interface_address_is_not_on_loopback() {
        let lan: IpAddr = "10.200.0.1".parse().unwrap();
        let d = analyze(&facts(
            "127.0.0.1:8080",
            vec![(V4, Connect::Refused)],
            vec![listener(lan, 8080, 7)],
        ));
        assert!(
            d.summary.contains("listens only on 10.200.0.1:8080"),
            "{}",
            d.summary
        );
        assert_eq!(
            d.checks.iter().find(|c| c.id == "interface").unwrap().fixes[0]
                .command
                .as_deref(),
            Some("nc -vz 10.200.0.1 8080"),
            "an unknown program gets a plain TCP test, not curl"
        );
    }

    /// Facts about one listener owned by a process (pid 9) with this command line.
    fn owned(target: &str, probe: Connect, addr: IpAddr, port: u16, cmd: &[&str]) -> Facts {
        let mut f = facts(
            target,
            vec![(target_ip(target), probe)],
            vec![listener(addr, port, 9)],
        );
        f.processes
            .insert(9, portscope_core::testing::process(cmd[0], cmd));
        f
    }

    /// A listener that took the connection.
    fn live(target: &str, addr: IpAddr, port: u16, cmd: &[&str]) -> Facts {
        owned(target, Connect::Connected(Duration::ZERO), addr, port, cmd)
    }

    fn target_ip(target: &str) -> IpAddr {
        super::super::target::parse(target)
            .unwrap()
            .literal()
            .unwrap_or(V4)
    }

    fn commands(d: &Diagnosis) -> Vec<String> {
        d.checks
            .iter()
            .flat_map(|c| c.fixes.iter().filter_map(|f| f.command.clone()))
            .collect()
    }

    #[test]
    fn an_answer_says_when_the_server_logs_even_a_bare_connect() {
        let mut sshd = live("127.0.0.1:2222", V4, 2222, &["sshd", "-D"]);
        let Speaks::Other(why) = speaks(&sshd, 2222) else {
            panic!("{:?}", speaks(&sshd, 2222))
        };
        sshd.answer = Some((SocketAddr::new(V4, 2222), Answer::NotSent(why)));
        let d = analyze(&sshd);
        let answer = d.checks.iter().find(|c| c.id == "answer").unwrap();
        assert!(
            answer.evidence.iter().any(|e| e
                .starts_with("SSH server logs even this connect and close")
                && e.contains("kex_exchange_identification")),
            "{answer:#?}"
        );
        // Redis logs no bare connect: nothing said.
        let mut redis = live("127.0.0.1:6379", V4, 6379, &["redis-server"]);
        redis.answer = Some((
            SocketAddr::new(V4, 6379),
            Answer::NotSent("Redis speaks RESP".into()),
        ));
        let d = analyze(&redis);
        let answer = d.checks.iter().find(|c| c.id == "answer").unwrap();
        assert_eq!(answer.evidence.len(), 1, "{answer:#?}");
    }

    #[test]
    fn nothing_is_sent_to_programs_known_not_to_speak_http() {
        let redis = live("[::1]:6380", V6, 6380, &["redis-server", "::1:6380"]);
        assert!(
            matches!(speaks(&redis, 6380), Speaks::Other(ref why) if why.contains("Redis (pid 9) speaks the Redis protocol")),
            "{:?}",
            speaks(&redis, 6380)
        );
        let pg = live("127.0.0.1:15432", V4, 15432, &["postgres", "-D", "/data"]);
        assert!(matches!(speaks(&pg, 15432), Speaks::Other(_)));
        // An unknown program on Redis's port: the port's protocol, said as a guess.
        let python = live("127.0.0.1:6379", V4, 6379, &["python3", "server.py"]);
        assert!(
            matches!(speaks(&python, 6379), Speaks::Other(ref why) if why.contains("usually Redis")),
            "{:?}",
            speaks(&python, 6379)
        );
        let apache = live("127.0.0.1:6379", V4, 6379, &["apache2", "-k", "start"]);
        assert_eq!(
            speaks(&apache, 6379),
            Speaks::Http,
            "a known HTTP server beats the port"
        );
        // nginx can relay Redis on its port (a `stream` block): no HTTP until it answered some.
        let mut nginx = live("127.0.0.1:6379", V4, 6379, &["nginx", "-g", "daemon off;"]);
        assert!(
            matches!(speaks(&nginx, 6379), Speaks::Proxy(ref why) if why.contains("nginx (pid 9) can relay any protocol")),
            "{:?}",
            speaks(&nginx, 6379)
        );
        for s in &mut nginx.sockets {
            s.http = true; // `why` heard it answer HTTP
        }
        assert_eq!(speaks(&nginx, 6379), Speaks::Http);
        let unknown = live("127.0.0.1:18080", V4, 18080, &["python3", "server.py"]);
        assert_eq!(speaks(&unknown, 18080), Speaks::Unknown);

        let mut f = redis;
        f.answer = Some((
            SocketAddr::new(V6, 6380),
            Answer::NotSent("Redis (pid 9) speaks RESP, not HTTP".into()),
        ));
        let d = analyze(&f);
        let answer = d.checks.iter().find(|c| c.id == "answer").unwrap();
        assert!(
            answer.title.starts_with("sent nothing to [::1]:6380"),
            "{}",
            answer.title
        );
        assert_eq!(
            answer.fixes[0].command.as_deref(),
            Some("redis-cli -h ::1 -p 6380 ping")
        );
    }

    #[test]
    fn each_answer_says_what_was_sent() {
        let mut f = live("127.0.0.1:18080", V4, 18080, &["python3", "server.py"]);
        let title = |f: &Facts, id: &str| {
            let d = analyze(f);
            d.checks
                .iter()
                .find(|c| c.id == id)
                .unwrap_or_else(|| panic!("no {id} check: {d:#?}"))
                .title
                .clone()
        };
        let addr = SocketAddr::new(V4, 18080);
        f.answer = Some((addr, Answer::Greeting("SSH-2.0-OpenSSH_9.2p1".into())));
        let t = title(&f, "answer");
        assert!(
            t.contains("“SSH-2.0-OpenSSH_9.2p1”") && t.contains("sent nothing"),
            "{t}"
        );
        let sent = |listened, reply| Answer::Http {
            request: "GET / HTTP/1.1".into(),
            listened,
            reply,
        };
        f.answer = Some((
            addr,
            sent(probe::LISTEN_FIRST, Http::Silent(Duration::from_secs(2))),
        ));
        let t = title(&f, "http");
        assert!(
            t.contains("portscope sent `GET / HTTP/1.1` after 0.4 s of silence")
                && t.contains("no answer"),
            "{t}"
        );
        f.answer = Some((addr, sent(probe::LISTEN_FIRST, Http::Other("-ERR".into()))));
        let t = title(&f, "http");
        assert!(
            t.contains("portscope sent `GET / HTTP/1.1`") && t.contains("“-ERR”"),
            "{t}"
        );
        let ok = Http::Response {
            status: "HTTP/1.0 200 OK".into(),
            server: None,
            title: None,
        };
        f.answer = Some((addr, sent(Duration::ZERO, ok)));
        let t = title(&f, "http");
        assert!(t.ends_with("(portscope sent `GET / HTTP/1.1`)"), "{t}");
        f.answer = Some((
            addr,
            Answer::Unreached("the server closed the connection without a word".into()),
        ));
        let t = title(&f, "answer");
        assert!(t.starts_with("sent nothing to 127.0.0.1:18080"), "{t}");
    }

    #[test]
    fn fixes_fit_the_program() {
        // Redis on ::1 only, asked on 127.0.0.1: redis-cli, not curl or Node.
        let d = analyze(&owned(
            "127.0.0.1:6380",
            Connect::Refused,
            V6,
            6380,
            &["redis-server", "::1:6380"],
        ));
        let cmds = commands(&d);
        assert!(
            cmds.contains(&"redis-cli -h ::1 -p 6380 ping".to_owned()),
            "{cmds:?}"
        );
        assert!(!cmds.iter().any(|c| c.contains("curl")), "{cmds:?}");
        let text: Vec<&str> = d
            .checks
            .iter()
            .flat_map(|c| c.fixes.iter().map(|f| f.text.as_str()))
            .collect();
        assert!(
            text.iter().any(|t| t.contains("bind 127.0.0.1 ::1")),
            "{text:?}"
        );
        assert!(!text.iter().any(|t| t.contains("Node")), "{text:?}");

        // PostgreSQL on 127.0.0.1 only, asked on ::1: psql and listen_addresses.
        let d = analyze(&owned(
            "[::1]:15432",
            Connect::Refused,
            V4,
            15432,
            &["postgres", "-D", "/data"],
        ));
        assert!(
            commands(&d).contains(&"psql -h 127.0.0.1 -p 15432".to_owned()),
            "{:?}",
            commands(&d)
        );
        assert!(
            d.checks
                .iter()
                .flat_map(|c| &c.fixes)
                .any(|f| f.text.contains("listen_addresses"))
        );

        // A Node dev server on 127.0.0.1 asked on ::1: curl and the Node hint.
        let d = analyze(&owned(
            "http://[::1]:5173/",
            Connect::Refused,
            V4,
            5173,
            &["node", "/app/node_modules/.bin/vite"],
        ));
        assert!(
            commands(&d).contains(&"curl -i http://127.0.0.1:5173/".to_owned()),
            "{:?}",
            commands(&d)
        );
        assert!(
            d.checks
                .iter()
                .flat_map(|c| &c.fixes)
                .any(|f| f.text.contains("Node 17+"))
        );

        // localhost resolving to 127.0.0.1 only, server on ::1 only: /etc/hosts.
        let mut f = owned(
            "localhost:8080",
            Connect::Refused,
            V6,
            8080,
            &["python3", "s.py"],
        );
        f.target = Some(super::super::target::parse("localhost:8080").unwrap());
        let d = analyze(&f);
        assert!(
            commands(&d)
                .iter()
                .any(|c| c.contains("::1 localhost") && c.contains("/etc/hosts")),
            "{:?}",
            commands(&d)
        );
        assert!(commands(&d).contains(&"nc -vz ::1 8080".to_owned()));
    }

    #[test]
    fn a_live_model_that_contradicts_the_connects_is_read_again() {
        let refused = vec![(V4, Connect::Refused)];
        let connected = vec![(V4, Connect::Connected(Duration::ZERO))];
        let listening = vec![listener(V4, 8080, 1)];
        assert!(disagrees(&[], &connected), "a server that started since");
        assert!(
            disagrees(&listening, &refused),
            "a server that stopped since"
        );
        assert!(!disagrees(&listening, &connected));
        assert!(!disagrees(&[], &refused));
        let mut udp = listener(V4, 8080, 1);
        udp.proto = Proto::Udp;
        assert!(
            disagrees(&[udp], &connected),
            "UDP does not take TCP connections"
        );
    }

    #[test]
    fn nothing_listening_names_what_the_history_saw_there_last() {
        let mut f = facts("127.0.0.1:8000", vec![(V4, Connect::Refused)], vec![]);
        let closed = portscope_shared::Event {
            time: "2026-11-29T14:02:03Z".into(),
            since: None,
            kind: portscope_shared::EventKind::Closed,
            proto: Proto::Tcp,
            family: portscope_shared::Family::Ipv4,
            local_addr: V4,
            local_port: 8000,
            remote_addr: None,
            remote_port: None,
            pid: Some(4242),
            process: Some("python3".into()),
            cmdline: vec![],
            user: None,
            cwd: None,
            exe: None,
            start_time: None,
            start_ms: None,
            app: None,
            health: None,
            project: None,
        };
        f.previous = Some(crate::Previous {
            closed,
            ago: std::time::Duration::from_secs(150),
            running: false,
        });
        let d = analyze(&f);
        let listening = d.checks.iter().find(|c| c.id == "listening").unwrap();
        assert_eq!(listening.verdict, Verdict::Problem);
        assert!(
            listening.evidence.contains(&"the history says port 8000 was held by python3 (pid 4242) on 127.0.0.1 until 2 min ago (2026-11-29T14:02:03Z); it has exited (`portscope history 8000`)".to_owned()),
            "{:?}",
            listening.evidence
        );
    }

    #[test]
    fn a_connection_that_works_without_a_listener_is_forwarded_not_a_problem() {
        let d = analyze(&facts(
            "127.0.0.1:8080",
            vec![(V4, Connect::Connected(Duration::ZERO))],
            vec![],
        ));
        assert_eq!(d.verdict, Verdict::Ok, "{d:#?}");
        let listening = d.checks.iter().find(|c| c.id == "listening").unwrap();
        assert_eq!(listening.verdict, Verdict::Info);
        assert!(listening.title.contains("forwarded"), "{}", listening.title);
    }

    #[test]
    fn a_stopped_master_with_running_workers_is_one_warning() {
        let mut socket = listener(V4, 8080, 10);
        socket.pids = vec![10, 11, 12];
        let mut f = facts(
            "127.0.0.1:8080",
            vec![(V4, Connect::Connected(Duration::ZERO))],
            vec![socket],
        );
        for pid in [10, 11, 12] {
            let mut p = portscope_core::testing::process("nginx", &["nginx"]);
            p.pid = pid;
            f.processes.insert(pid, p);
        }
        f.states = HashMap::from([(10, 'T'), (11, 'S'), (12, 'S')]);
        let d = analyze(&f);
        let stopped: Vec<&Check> = d.checks.iter().filter(|c| c.id == "stopped").collect();
        assert_eq!(stopped.len(), 1, "one check per process: {stopped:?}");
        assert_eq!(stopped[0].verdict, Verdict::Warning);
        assert!(
            stopped[0].title.contains("nginx (pid 11), nginx (pid 12)"),
            "{}",
            stopped[0].title
        );
        // All stopped: the problem.
        f.states = HashMap::from([(10, 'T'), (11, 'T'), (12, 'T')]);
        let d = analyze(&f);
        assert!(
            d.checks
                .iter()
                .filter(|c| c.id == "stopped")
                .all(|c| c.verdict == Verdict::Problem)
        );
        assert_eq!(d.checks.iter().filter(|c| c.id == "stopped").count(), 3);
    }

    #[test]
    fn another_loopback_address_is_named_not_blamed_on_a_firewall() {
        let other: IpAddr = "127.0.0.53".parse().unwrap();
        let d = analyze(&facts(
            "127.0.0.1:53",
            vec![(V4, Connect::Refused)],
            vec![listener(other, 53, 7)],
        ));
        assert_eq!(
            d.summary,
            "the server listens on 127.0.0.53:53, not on 127.0.0.1"
        );
    }

    #[test]
    fn a_stopped_owner_and_a_full_queue_are_named() {
        let mut f = facts(
            "127.0.0.1:9000",
            vec![(V4, Connect::TimedOut(Duration::from_secs(1)))],
            vec![listener(V4, 9000, 42)],
        );
        f.states.insert(42, 'T');
        f.queues.insert(f.sockets[0].id.clone(), 3);
        let d = analyze(&f);
        assert!(ids(&d).contains(&("stopped", Verdict::Problem)));
        assert!(ids(&d).contains(&("backlog", Verdict::Problem)));
        assert!(d.checks.iter().any(|c| {
            c.fixes
                .iter()
                .any(|f| f.command.as_deref() == Some("kill -CONT 42"))
        }));
    }

    #[test]
    fn all_interfaces_is_flagged_with_the_services_risk() {
        let mut redis = listener(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 6379, 5);
        redis.risk = Some("listens on all interfaces: Redis has no password".into());
        let d = analyze(&facts(
            "127.0.0.1:6379",
            vec![(V4, Connect::Connected(Duration::ZERO))],
            vec![redis],
        ));
        let exposure = d.checks.iter().find(|c| c.id == "exposure").unwrap();
        assert_eq!(exposure.verdict, Verdict::Warning);
        assert!(exposure.evidence[0].contains("no password"));
    }

    #[test]
    fn firewall_rules_and_http_answers_become_checks() {
        let mut f = facts(
            "127.0.0.1:8080",
            vec![(V4, Connect::TimedOut(Duration::from_secs(1)))],
            vec![listener(V4, 8080, 1)],
        );
        let rule = |text: &str, verdict: &str, policy: bool| firewall::Rule {
            text: text.into(),
            verdict: verdict.into(),
            policy,
            condition: None,
            forward: None,
        };
        f.firewall = Some(Firewall::Read {
            tool: "nft".into(),
            rules: vec![rule(
                "inet filter chain input: tcp dport 8080 drop",
                "drop",
                false,
            )],
            loopback_accepted: false,
        });
        assert!(ids(&analyze(&f)).contains(&("firewall", Verdict::Problem)));
        // Only under a condition portscope cannot evaluate: a warning that shows it.
        let mut conditional = rule(
            "inet filter chain input: ct mark == 1 tcp dport 8080 drop",
            "drop",
            false,
        );
        conditional.condition = Some("ct mark == 1".into());
        f.firewall = Some(Firewall::Read {
            tool: "nft".into(),
            rules: vec![conditional],
            loopback_accepted: false,
        });
        let d = analyze(&f);
        let fw = d.checks.iter().find(|c| c.id == "firewall").unwrap();
        assert_eq!(fw.verdict, Verdict::Warning);
        assert!(fw.title.contains("only when ct mark == 1"), "{}", fw.title);
        // A DNAT rule: where the port goes.
        let mut dnat = rule(
            "ip nat chain DOCKER: tcp dport 8080 dnat to 172.17.0.2:80",
            "dnat",
            false,
        );
        dnat.forward = Some("172.17.0.2:80".into());
        f.firewall = Some(Firewall::Read {
            tool: "nft".into(),
            rules: vec![dnat],
            loopback_accepted: false,
        });
        let d = analyze(&f);
        let fwd = d.checks.iter().find(|c| c.id == "forward").unwrap();
        assert!(
            fwd.title.contains("forwarded to 172.17.0.2:80"),
            "{}",
            fwd.title
        );
        assert_eq!(
            d.checks
                .iter()
                .find(|c| c.id == "firewall")
                .unwrap()
                .verdict,
            Verdict::Ok
        );
        f.firewall = Some(Firewall::Read {
            tool: "nft".into(),
            rules: vec![rule("inet filter chain input: policy drop", "drop", true)],
            loopback_accepted: true,
        });
        assert!(
            ids(&analyze(&f)).contains(&("firewall", Verdict::Info)),
            "a policy alone is not blamed"
        );
        f.firewall = Some(Firewall::Unreadable("nft needs root".into()));
        assert!(ids(&analyze(&f)).contains(&("firewall", Verdict::Unchecked)));

        let mut f = facts(
            "http://127.0.0.1:8080/",
            vec![(V4, Connect::Connected(Duration::ZERO))],
            vec![listener(V4, 8080, 1)],
        );
        f.answer = Some((
            SocketAddr::new(V4, 8080),
            Answer::Http {
                request: "GET / HTTP/1.1".into(),
                listened: Duration::ZERO,
                reply: Http::Response {
                    status: "HTTP/1.0 200 OK".into(),
                    server: Some("SimpleHTTP/0.6".into()),
                    title: Some("Hello".into()),
                },
            },
        ));
        let d = analyze(&f);
        assert_eq!(d.verdict, Verdict::Ok);
        assert!(d.summary.contains("title “Hello”"), "{}", d.summary);
    }

    #[test]
    fn firewall_and_forward_fixes_have_sudo_only_for_a_user_who_is_not_root() {
        let drop = firewall::Rule {
            text: "inet filter chain input: tcp dport 8080 drop".into(),
            verdict: "drop".into(),
            policy: false,
            condition: None,
            forward: None,
        };
        let commands_as = |tool: &str, root: bool| {
            let mut f = facts(
                "127.0.0.1:8080",
                vec![(V4, Connect::TimedOut(Duration::from_secs(1)))],
                vec![listener(V4, 8080, 1)],
            );
            f.firewall = Some(Firewall::Read {
                tool: tool.into(),
                rules: vec![drop.clone()],
                loopback_accepted: false,
            });
            f.root = root;
            commands(&analyze(&f))
        };
        assert!(commands_as("nft", false).contains(&"sudo nft -a list ruleset".to_owned()));
        assert!(commands_as("nft", true).contains(&"nft -a list ruleset".to_owned()));
        assert!(commands_as("iptables", false).contains(&"sudo iptables -S".to_owned()));
        assert!(commands_as("iptables", true).contains(&"iptables -S".to_owned()));
        // A connection that works with no listener: where the port is forwarded.
        let mut f = facts(
            "127.0.0.1:8080",
            vec![(V4, Connect::Connected(Duration::ZERO))],
            vec![],
        );
        f.root = false;
        let user = commands(&analyze(&f));
        assert!(
            user.iter().any(|c| c.starts_with("sudo nft list ruleset")),
            "{user:?}"
        );
        f.root = true;
        let root = commands(&analyze(&f));
        assert!(
            root.iter().any(|c| c.starts_with("nft list ruleset")),
            "{root:?}"
        );
        assert!(root.iter().all(|c| !c.contains("sudo")), "{root:?}");
    }

    #[test]
    fn a_remote_target_gets_only_the_connect() {
        let mut f = facts(
            "192.0.2.1:80",
            vec![(
                "192.0.2.1".parse().unwrap(),
                Connect::TimedOut(Duration::from_secs(1)),
            )],
            vec![],
        );
        f.local = false;
        let d = analyze(&f);
        assert_eq!(
            ids(&d),
            [("connect", Verdict::Problem), ("local", Verdict::Info)]
        );
    }
}
