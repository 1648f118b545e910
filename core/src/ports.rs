//! What a port number means: its IANA service name (from the system's services table), a best
//! guess of the program behind a listener, whether it is exposed to the network, and the kernel's
//! port ranges (ephemeral, reserved, privileged).

use std::collections::HashMap;
use std::sync::OnceLock;

use portscope_shared::{Exposure, PortRange, Process, Proto, Socket};

/// IANA's dynamic range: macOS, Windows and the BSDs pick outgoing ports from it.
pub const IANA_DYNAMIC: PortRange = PortRange {
    first: 49152,
    last: 65535,
};

/// The kernel's port settings. Read by `os::port_settings()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSettings {
    /// Where outgoing connections get their local port (`net.ipv4.ip_local_port_range`).
    pub ephemeral: Option<PortRange>,
    /// Ports the kernel never hands out as ephemeral (`net.ipv4.ip_local_reserved_ports`).
    pub reserved: Vec<PortRange>,
    /// Ports below this need root or `CAP_NET_BIND_SERVICE` (`net.ipv4.ip_unprivileged_port_start`).
    pub unprivileged_start: u16,
    /// Whether an IPv6 socket is IPv6-only unless told otherwise (`net.ipv6.bindv6only`).
    pub bindv6only: bool,
}

impl Default for PortSettings {
    fn default() -> Self {
        Self {
            ephemeral: None,
            reserved: Vec::new(),
            unprivileged_start: 1024,
            bindv6only: false,
        }
    }
}

impl PortSettings {
    pub fn is_reserved(&self, port: u16) -> bool {
        self.reserved.iter().any(|r| r.contains(port))
    }
}

/// Parses `ip_local_port_range` ("32768\t60999").
#[cfg_attr(not(target_os = "linux"), allow(dead_code, reason = "a Linux file"))]
pub fn parse_range(text: &str) -> Option<PortRange> {
    let mut parts = text.split_whitespace().map(str::parse::<u16>);
    let (first, last) = (parts.next()?.ok()?, parts.next()?.ok()?);
    (first <= last).then_some(PortRange { first, last })
}

/// Parses `ip_local_reserved_ports` ("8080,9000-9010", or empty).
#[cfg_attr(not(target_os = "linux"), allow(dead_code, reason = "a Linux file"))]
pub fn parse_reserved(text: &str) -> Vec<PortRange> {
    text.trim()
        .split(',')
        .filter_map(|item| {
            let item = item.trim();
            let (first, last) = item.split_once('-').unwrap_or((item, item));
            let range = PortRange {
                first: first.parse().ok()?,
                last: last.parse().ok()?,
            };
            (range.first <= range.last).then_some(range)
        })
        .collect()
}

/// Parses `netsh int ipv4 show dynamicport tcp` (Windows): the first two numbers after a colon
/// are the start port and the number of ports, whatever the language of their labels.
#[cfg(any(test, windows))]
pub fn parse_netsh_dynamic_port(text: &str) -> Option<PortRange> {
    let mut numbers = text
        .lines()
        .filter_map(|line| line.split_once(':')?.1.trim().parse::<u32>().ok());
    let (start, count) = (numbers.next()?, numbers.next()?);
    let last = start.checked_add(count)?.checked_sub(1)?;
    Some(PortRange {
        first: u16::try_from(start).ok()?,
        last: u16::try_from(last).ok()?,
    })
}

/// The port settings in `sysctl NAME...` output (macOS: `net.inet.ip.portrange.first: 49152`
/// lines). macOS 10.14 and later let any user bind a port below 1024, so nothing is privileged;
/// an IPv6 socket is IPv6-only by default only when `net.inet6.ip6.v6only` is 1.
#[cfg(any(test, target_os = "macos"))]
pub fn macos_port_settings(sysctl: &str) -> PortSettings {
    let values: HashMap<&str, u32> = sysctl
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim(), value.trim().parse().ok()?))
        })
        .collect();
    let port = |name| values.get(name).and_then(|&v| u16::try_from(v).ok());
    let ephemeral = match (
        port("net.inet.ip.portrange.first"),
        port("net.inet.ip.portrange.last"),
    ) {
        (Some(first), Some(last)) if first <= last => Some(PortRange { first, last }),
        _ => None,
    };
    PortSettings {
        ephemeral,
        reserved: Vec::new(),
        unprivileged_start: 0,
        bindv6only: values.get("net.inet6.ip6.v6only") == Some(&1),
    }
}

/// IANA service names by port and protocol, from `/etc/services` (Debian's `netbase`, derived
/// from IANA's registry and kept up to date by the distribution).
#[derive(Debug, Default)]
pub struct Services {
    names: HashMap<(u16, Proto), String>,
}

impl Services {
    /// The system's table, read once; empty when the file is missing.
    pub fn system() -> &'static Services {
        static SERVICES: OnceLock<Services> = OnceLock::new();
        SERVICES.get_or_init(|| {
            std::fs::read_to_string("/etc/services")
                .map(|text| Services::parse(&text))
                .unwrap_or_default()
        })
    }

    /// Parses the `services(5)` format: `name port/proto [aliases…] [# comment]`. The first
    /// name given for a port wins, as with `getservbyport(3)`.
    pub fn parse(text: &str) -> Self {
        let mut names = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let mut fields = line.split_whitespace();
            let (Some(name), Some(port_proto)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Some((port, proto)) = port_proto.split_once('/') else {
                continue;
            };
            let proto = match proto {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                _ => continue,
            };
            if let Ok(port) = port.parse::<u16>() {
                names
                    .entry((port, proto))
                    .or_insert_with(|| name.to_owned());
            }
        }
        Self { names }
    }

    pub fn name(&self, port: u16, proto: Proto) -> Option<&str> {
        self.names.get(&(port, proto)).map(String::as_str)
    }
}

/// A program we recognise by its process, and the port it uses by default.
#[derive(Debug)]
pub struct App {
    pub name: &'static str,
    /// Matches the process name (`comm`) or the file name of any command-line word.
    programs: &'static [&'static str],
    /// Matches any command-line word that contains it (e.g. `vite` in `node_modules/.bin/vite`).
    args: &'static [&'static str],
    /// Its usual port: names a listener on that port whose program is unknown (hidden).
    default_port: Option<u16>,
    /// It serves HTTP (the dashboard offers "open in browser").
    pub http: bool,
    /// It can relay any protocol (a TCP stream proxy): a listener of it is HTTP only once it
    /// answered HTTP, or when the user asked with an `http://` URL — an nginx `stream` block in
    /// front of Redis must not get a `GET`.
    pub proxy: bool,
    /// The protocol it speaks when that is known not to be HTTP: the doctor sends it nothing
    /// (Redis logs an HTTP request as an attack, PostgreSQL as a bad startup packet).
    pub protocol: Option<&'static str>,
    /// Why it must not listen on all interfaces, if it must not.
    risk: Option<&'static str>,
    /// How it is stopped cleanly.
    pub shutdown: Shutdown,
    /// Its own client, to test a connection with: `{host}` and `{port}` are filled in.
    pub client: Option<&'static str>,
    /// What it logs of a connection that is opened and closed without a word (what `why`
    /// does to it), when it logs one.
    pub logs_connect: Option<&'static str>,
}

/// How a program is stopped cleanly: the signal its documentation names, and whether it holds
/// data that a forced stop (`KILL`) can lose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shutdown {
    pub signal: &'static str,
    /// What that signal does to it, for the report.
    pub means: &'static str,
    /// A database: never forced with `KILL` unless the user asks for it.
    pub database: bool,
}

impl Shutdown {
    /// What portscope does for a program it does not know.
    pub const PLAIN: Shutdown = Shutdown {
        signal: "TERM",
        means: "",
        database: false,
    };
}

/// The fields most rows leave alone.
const BASE: App = App {
    name: "",
    programs: &[],
    args: &[],
    default_port: None,
    http: false,
    proxy: false,
    protocol: None,
    risk: None,
    shutdown: Shutdown::PLAIN,
    client: None,
    logs_connect: None,
};

/// Dev servers, databases and debuggers developers meet most. A hand list by necessity: no
/// registry maps programs to what they serve. Order matters: the first match wins.
#[rustfmt::skip]
#[allow(clippy::needless_update, reason = "every row ends with `..BASE`, so a new field edits no row")]
const APPS: &[App] = &[
    App { name: "portscope dashboard", programs: &["portscope"], args: &[], default_port: Some(7678), http: true, risk: None, ..BASE },
    App { name: "Node.js inspector", programs: &[], args: &["--inspect"], default_port: Some(9229), http: false, risk: Some("the Node.js inspector runs any code it is sent"), ..BASE },
    App { name: "Java debugger (JDWP)", programs: &[], args: &["jdwp"], default_port: Some(5005), http: false, risk: Some("JDWP runs any code it is sent"), protocol: Some("JDWP"), ..BASE },
    App { name: "Chrome DevTools protocol", programs: &[], args: &["--remote-debugging-port"], default_port: Some(9222), http: true, risk: Some("the DevTools protocol controls the browser and reads its pages"), ..BASE },
    App { name: "Vite dev server", programs: &[], args: &["vite"], default_port: Some(5173), http: true, risk: None, ..BASE },
    App { name: "Next.js dev server", programs: &["next-server", "next-router-worker"], args: &["next"], default_port: None, http: true, risk: None, ..BASE },
    App { name: "webpack-dev-server", programs: &[], args: &["webpack-dev-server", "webpack"], default_port: None, http: true, risk: None, ..BASE },
    App { name: "Create React App dev server", programs: &[], args: &["react-scripts"], default_port: None, http: true, risk: None, ..BASE },
    App { name: "Angular dev server", programs: &[], args: &["ng serve", "@angular"], default_port: Some(4200), http: true, risk: None, ..BASE },
    App { name: "Jupyter", programs: &[], args: &["jupyter"], default_port: Some(8888), http: true, risk: Some("Jupyter runs any code its users send"), ..BASE },
    App { name: "Django dev server", programs: &[], args: &["runserver"], default_port: None, http: true, risk: None, ..BASE },
    App { name: "Flask dev server", programs: &["flask"], args: &[], default_port: None, http: true, risk: None, ..BASE },
    App { name: "Uvicorn", programs: &["uvicorn"], args: &["uvicorn"], default_port: None, http: true, risk: None, ..BASE },
    App { name: "Gunicorn", programs: &["gunicorn"], args: &["gunicorn"], default_port: None, http: true, risk: None, ..BASE },
    App { name: "Python http.server", programs: &[], args: &["http.server", "SimpleHTTPServer"], default_port: None, http: true, risk: None, ..BASE },
    App { name: "Rails (Puma)", programs: &["puma"], args: &["puma", "rails"], default_port: None, http: true, risk: None, ..BASE },
    App { name: "PostgreSQL", programs: &["postgres", "postmaster"], args: &[], default_port: Some(5432), http: false, risk: Some("PostgreSQL holds data; keep it off the network unless it is meant to be a server"), protocol: Some("the PostgreSQL protocol"), shutdown: Shutdown { signal: "INT", means: "PostgreSQL's fast shutdown: ends open sessions, writes a checkpoint, exits; TERM would wait for every client", database: true }, client: Some("psql -h {host} -p {port}"), ..BASE },
    App { name: "MySQL", programs: &["mysqld", "mariadbd"], args: &[], default_port: Some(3306), http: false, risk: Some("MySQL holds data; keep it off the network unless it is meant to be a server"), protocol: Some("the MySQL protocol"), shutdown: Shutdown { signal: "TERM", means: "MySQL's clean shutdown", database: true }, client: Some("mysql -h {host} -P {port}"), ..BASE },
    App { name: "Redis", programs: &["redis-server", "valkey-server", "keydb-server"], args: &[], default_port: Some(6379), http: false, risk: Some("Redis has no password by default and runs commands from anyone who reaches it"), protocol: Some("the Redis protocol (RESP)"), shutdown: Shutdown { signal: "TERM", means: "Redis saves its data, when persistence is on, and exits", database: true }, client: Some("redis-cli -h {host} -p {port} ping"), ..BASE },
    App { name: "MongoDB", programs: &["mongod"], args: &[], default_port: Some(27017), http: false, risk: Some("MongoDB holds data; many instances have been wiped by bots for listening publicly"), protocol: Some("the MongoDB wire protocol"), shutdown: Shutdown { signal: "TERM", means: "MongoDB's clean shutdown", database: true }, client: Some("mongosh --host {host} --port {port}"), ..BASE },
    App { name: "Elasticsearch", programs: &[], args: &["elasticsearch"], default_port: Some(9200), http: true, risk: Some("Elasticsearch without security answers anyone who reaches it"), shutdown: Shutdown { signal: "TERM", means: "Elasticsearch's clean shutdown", database: true }, ..BASE },
    App { name: "Memcached", programs: &["memcached"], args: &[], default_port: Some(11211), http: false, risk: Some("Memcached has no authentication"), protocol: Some("the memcached protocol"), ..BASE },
    App { name: "Docker API (unencrypted)", programs: &["dockerd"], args: &[], default_port: Some(2375), http: true, risk: Some("the Docker API gives root on this machine to anyone who reaches it"), ..BASE },
    App { name: "Docker port forward", programs: &["docker-proxy"], args: &[], default_port: None, http: false, risk: None, ..BASE },
    App { name: "rootless container port", programs: &["rootlessport", "rootlesskit", "slirp4netns", "pasta", "conmon"], args: &[], default_port: None, http: false, risk: None, ..BASE },
    App { name: "SSH server", programs: &["sshd"], args: &[], default_port: Some(22), http: false, risk: None, protocol: Some("SSH"), client: Some("ssh -p {port} {host}"), logs_connect: Some("“kex_exchange_identification: Connection closed by remote host”, or “Connection closed by … [preauth]”, at its INFO log level"), ..BASE },
    App { name: "nginx", programs: &["nginx"], args: &[], default_port: None, http: false, proxy: true, risk: None, shutdown: Shutdown { signal: "QUIT", means: "nginx's graceful shutdown: stops accepting, finishes the requests in flight", database: false }, ..BASE },
    App { name: "HAProxy", programs: &["haproxy"], args: &[], default_port: None, http: false, proxy: true, risk: None, ..BASE },
    App { name: "Envoy", programs: &["envoy"], args: &[], default_port: None, http: false, proxy: true, risk: None, ..BASE },
    App { name: "Caddy", programs: &["caddy"], args: &[], default_port: None, http: false, proxy: true, risk: None, ..BASE },
    App { name: "Traefik", programs: &["traefik"], args: &[], default_port: None, http: false, proxy: true, risk: None, ..BASE },
    App { name: "Apache httpd", programs: &["httpd", "apache2"], args: &[], default_port: None, http: true, risk: None, ..BASE },
    App { name: "Caddy", programs: &["caddy"], args: &[], default_port: None, http: true, risk: None, ..BASE },
    App { name: "Hugo server", programs: &["hugo"], args: &[], default_port: Some(1313), http: true, risk: None, ..BASE },
];

/// Dev-tool defaults that `free` avoids, beyond the table above: ports people's tools pick by
/// themselves, so a port suggested to them should not collide with the next `npm run dev`.
const DEV_TOOL_PORTS: &[u16] = &[
    3000, 3001, 4000, 4200, 5000, 5001, 5173, 5174, 6006, 8000, 8008, 8080, 8081, 8443, 8787, 8888,
    9000, 9090, 9229, 9292,
];

/// Command-line flags that open a debugger on a port of their own.
const DEBUG_FLAGS: &[&str] = &["--inspect", "jdwp", "--remote-debugging-port"];

/// The port in `--inspect=0.0.0.0:9230`, `address=*:5005`, `--remote-debugging-port=9222`.
fn debug_port(word: &str) -> Option<u16> {
    let tail = word.rsplit([':', '=']).next()?;
    let digits: String = tail.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// What is known of the program behind a listener.
#[derive(Clone, Copy, Debug)]
pub enum Identity {
    /// Recognised by its process (name or command line).
    Program(&'static App),
    /// The process is unknown (another user's, hidden), and the port is this program's usual
    /// one: a guess, and said as one.
    PortGuess(&'static App),
    /// Nothing is known.
    Unknown,
}

impl Identity {
    /// The program when recognised by its process; never a port guess.
    pub fn program(self) -> Option<&'static App> {
        match self {
            Self::Program(app) => Some(app),
            _ => None,
        }
    }

    /// How the dashboard and `ls` name it: a guess says so.
    pub fn label(self, port: u16) -> Option<String> {
        match self {
            Self::Program(app) => Some(app.name.to_owned()),
            Self::PortGuess(app) => Some(format!("port {port}: usually {}", app.name)),
            Self::Unknown => None,
        }
    }
}

/// Identifies a listener's program by its process first; by its port only when the process
/// is unknown.
pub fn identify(process: Option<&Process>, port: u16) -> Identity {
    if let Some(p) = process {
        if let Some(app) = by_process(p, port) {
            return Identity::Program(app);
        }
        if !p.cmdline.is_empty() {
            // A known program that is none of the above: do not guess from the port alone.
            return Identity::Unknown;
        }
    }
    APPS.iter()
        .find(|app| app.default_port == Some(port))
        .map_or(Identity::Unknown, Identity::PortGuess)
}

fn by_process(p: &Process, port: u16) -> Option<&'static App> {
    let words: Vec<&str> = p.cmdline.iter().map(String::as_str).collect();
    let file_name = |w: &str| w.rsplit('/').next().unwrap_or(w).to_owned();
    let programs: Vec<String> = std::iter::once(p.name.clone())
        .chain(words.iter().take(2).map(|w| file_name(w)))
        .collect();
    let joined = words.join(" ");
    APPS.iter().find(|app| {
        app.programs
            .iter()
            .any(|prog| programs.iter().any(|p| p == prog))
            || app.args.iter().any(|arg| {
                let with_arg = words.iter().skip(1).find(|w| file_name(w).contains(arg));
                match with_arg {
                    // A debugger flag names the debugger's own port, not the app's ports.
                    Some(word) if DEBUG_FLAGS.contains(arg) => {
                        debug_port(word).or(app.default_port) == Some(port)
                    }
                    Some(_) => true,
                    None => arg.contains(' ') && joined.contains(arg),
                }
            })
    })
}

/// Whether an app label names a program that forwards ports into containers.
pub fn is_container_forwarder(label: &str) -> bool {
    matches!(label, "Docker port forward" | "rootless container port")
}

/// Whether a port is a well-known service's or a common dev tool's default.
pub fn is_well_known(port: u16, services: &Services) -> bool {
    DEV_TOOL_PORTS.contains(&port)
        || APPS.iter().any(|app| app.default_port == Some(port))
        || services.name(port, Proto::Tcp).is_some()
}

/// Fills a socket's `exposure`, `service`, `app` and `risk` from its port and its first owner.
pub fn annotate(socket: &mut Socket, owner: Option<&Process>, services: &Services) {
    socket.service = services
        .name(socket.local_port, socket.proto)
        .map(str::to_owned);
    if !socket.is_listening() {
        return;
    }
    let exposure = Exposure::of(socket.local_addr);
    socket.exposure = Some(exposure);
    let identity = identify(owner, socket.local_port);
    socket.app = identity.label(socket.local_port);
    // "Speaks HTTP" only for a program recognised by its process, never for a port's usual one.
    socket.http = identity.program().is_some_and(|a| a.http);
    if exposure == Exposure::All {
        socket.risk = match identity {
            Identity::Program(app) => app.risk.map(|why| {
                format!(
                    "listens on all interfaces: {why}. Bind it to 127.0.0.1 unless other machines must reach it"
                )
            }),
            Identity::PortGuess(app) => app.risk.map(|why| {
                format!(
                    "listens on all interfaces, and port {} is usually {}: {why}. Bind it to 127.0.0.1 unless other machines must reach it",
                    socket.local_port, app.name
                )
            }),
            Identity::Unknown => None,
        };
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn windows_dynamic_port_range_from_netsh() {
        // `netsh int ipv4 show dynamicport tcp` on Windows 11 (English, then German).
        let english = "\r\nProtocol tcp Dynamic Port Range\r\n---------------------------------\r\nStart Port      : 49152\r\nNumber of Ports : 16384\r\n\r\n";
        let range = parse_netsh_dynamic_port(english).unwrap();
        assert_eq!((range.first, range.last), (49152, 65535));
        let german = "\r\nDynamischer Portbereich für tcp-Protokoll\r\n---------------------------------\r\nStartport       : 1025\r\nAnzahl der Ports: 3976\r\n";
        let range = parse_netsh_dynamic_port(german).unwrap();
        assert_eq!((range.first, range.last), (1025, 5000));
        assert_eq!(
            parse_netsh_dynamic_port("Start Port : 65000\nNumber of Ports : 16384\n"),
            None
        );
        assert_eq!(
            parse_netsh_dynamic_port("The following command was not found: int ipv4.\n"),
            None
        );
    }

    #[test]
    fn macos_port_settings_from_sysctl() {
        // `sysctl net.inet.ip.portrange.first net.inet.ip.portrange.last net.inet6.ip6.v6only`
        // on macOS 14.
        let text = "net.inet.ip.portrange.first: 49152\nnet.inet.ip.portrange.last: 65535\nnet.inet6.ip6.v6only: 0\n";
        let settings = macos_port_settings(text);
        let range = settings.ephemeral.unwrap();
        assert_eq!((range.first, range.last), (49152, 65535));
        assert!(!settings.bindv6only);
        assert_eq!(
            settings.unprivileged_start, 0,
            "nothing is privileged since 10.14"
        );
        let changed = macos_port_settings(
            "net.inet.ip.portrange.first: 10000\nnet.inet.ip.portrange.last: 20000\nnet.inet6.ip6.v6only: 1\n",
        );
        assert_eq!(
            changed.ephemeral.map(|r| (r.first, r.last)),
            Some((10000, 20000))
        );
        assert!(changed.bindv6only);
        // Unreadable (sysctl missing): no range, rather than a guessed one.
        assert_eq!(macos_port_settings("").ephemeral, None);
        assert_eq!(
            macos_port_settings(
                "net.inet.ip.portrange.first: 60000\nnet.inet.ip.portrange.last: 50000\n"
            )
            .ephemeral,
            None
        );
    }
    use crate::testing::process;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use portscope_shared::{Family, OwnerStatus, SocketState};

    use super::*;

    fn listener(addr: IpAddr, port: u16) -> Socket {
        Socket {
            id: "x".into(),
            proto: Proto::Tcp,
            family: Family::Ipv4,
            local_addr: addr,
            local_port: port,
            remote_addr: None,
            remote_port: None,
            state: SocketState::Listen,
            pids: vec![],
            uid: None,
            owner: OwnerStatus::Hidden,
            exposure: None,
            service: None,
            app: None,
            risk: None,
            http: false,
            host: None,
            health: None,
        }
    }

    const SERVICES: &str = "\
# comment
tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer
http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP
postgresql\t5432/tcp\t\t\t# PostgreSQL Database
redis\t\t6379/tcp
broken line
nope\t\t70000/tcp
";

    #[test]
    fn services_table_is_read_like_getservbyport() {
        let s = Services::parse(SERVICES);
        assert_eq!(s.name(80, Proto::Tcp), Some("http"));
        assert_eq!(s.name(5432, Proto::Tcp), Some("postgresql"));
        assert_eq!(s.name(80, Proto::Udp), None);
        assert_eq!(s.name(4444, Proto::Tcp), None);
    }

    #[test]
    fn kernel_ranges_parse() {
        assert_eq!(
            parse_range("32768\t60999\n"),
            Some(PortRange {
                first: 32768,
                last: 60999
            })
        );
        assert_eq!(parse_range("9 3"), None);
        assert_eq!(parse_range(""), None);
        let reserved = parse_reserved("8080,9000-9010\n");
        assert_eq!(reserved.len(), 2);
        assert!(reserved[1].contains(9005));
        assert!(parse_reserved("\n").is_empty());
    }

    #[test]
    fn listeners_get_exposure_names_and_risks() {
        let services = Services::parse(SERVICES);
        let redis = process("redis-server", &["/usr/bin/redis-server", "*:6379"]);
        let mut all = listener(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 6379);
        annotate(&mut all, Some(&redis), &services);
        assert_eq!(all.exposure, Some(Exposure::All));
        assert_eq!(all.service.as_deref(), Some("redis"));
        assert_eq!(all.app.as_deref(), Some("Redis"));
        assert!(all.risk.as_deref().unwrap().contains("no password"));

        let mut local = listener(IpAddr::V6(Ipv6Addr::LOCALHOST), 6379);
        annotate(&mut local, Some(&redis), &services);
        assert_eq!(local.exposure, Some(Exposure::Loopback));
        assert_eq!(local.risk, None, "loopback is not a risk");

        let vite = process(
            "node",
            &["node", "/app/node_modules/.bin/vite", "--port", "5173"],
        );
        let mut dev = listener("192.168.1.20".parse().unwrap(), 5173);
        annotate(&mut dev, Some(&vite), &services);
        assert_eq!(dev.exposure, Some(Exposure::Interface));
        assert_eq!(dev.app.as_deref(), Some("Vite dev server"));

        let inspector = process("node", &["node", "--inspect=0.0.0.0:9229", "server.js"]);
        let mut debug = listener(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 9229);
        annotate(&mut debug, Some(&inspector), &services);
        assert!(debug.risk.as_deref().unwrap().contains("inspector"));
        // The same process's app port is not the inspector.
        let mut app = listener(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 3000);
        annotate(&mut app, Some(&inspector), &services);
        assert_eq!((app.app.as_deref(), app.risk.as_deref()), (None, None));
        let java = process(
            "java",
            &[
                "java",
                "-agentlib:jdwp=transport=dt_socket,server=y,address=*:5006",
                "-jar",
                "app.jar",
            ],
        );
        let mut jdwp = listener(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5006);
        annotate(&mut jdwp, Some(&java), &services);
        assert_eq!(jdwp.app.as_deref(), Some("Java debugger (JDWP)"));
    }

    #[test]
    fn hidden_owners_are_guessed_from_the_port_known_programs_are_not() {
        let services = Services::default();
        let mut hidden = listener(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5432);
        annotate(&mut hidden, None, &services);
        assert_eq!(
            hidden.app.as_deref(),
            Some("port 5432: usually PostgreSQL"),
            "a guess from the port says so"
        );
        assert!(
            hidden
                .risk
                .as_deref()
                .unwrap()
                .contains("usually PostgreSQL")
        );
        let mut vite_port = listener(IpAddr::V6(Ipv6Addr::LOCALHOST), 5173);
        annotate(&mut vite_port, None, &services);
        assert_eq!(
            vite_port.app.as_deref(),
            Some("port 5173: usually Vite dev server"),
            "the issue's case: a hidden owner on 5173 is labelled as a guess"
        );
        assert!(
            !vite_port.http,
            "a port guess never claims HTTP: {vite_port:?}"
        );
        let http_server = process("node", &["node", "/usr/bin/http-server", "-p", "5173"]);
        let mut node = listener(IpAddr::V6(Ipv6Addr::LOCALHOST), 5173);
        annotate(&mut node, Some(&http_server), &services);
        assert_eq!(node.app, None, "node http-server on 5173 is not Vite");
        let python = process("python3", &["python3", "holder.py"]);
        let mut known = listener(IpAddr::V4(Ipv4Addr::LOCALHOST), 5432);
        annotate(&mut known, Some(&python), &services);
        assert_eq!(known.app, None, "python3 on 5432 is not PostgreSQL");
        let server = process("python3", &["python3", "-m", "http.server", "8000"]);
        let mut web = listener(IpAddr::V4(Ipv4Addr::LOCALHOST), 8000);
        annotate(&mut web, Some(&server), &services);
        assert!(web.http);
        assert!(!known.http);
    }

    #[test]
    fn well_known_ports_are_avoided() {
        let services = Services::parse(SERVICES);
        assert!(is_well_known(5173, &services));
        assert!(is_well_known(80, &services));
        assert!(!is_well_known(8123, &services));
    }
}
