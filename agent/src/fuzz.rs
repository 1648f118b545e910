//! Property tests (proptest) of everything that parses input from outside: the Host and Origin
//! guards, the `why` target parser, the kernel's port-range files, `/etc/services`, and the
//! client-message decoder. Each property says what must hold for *any* input, not just the
//! examples in the modules' own tests. A failure found here becomes a regression example there.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use portscope_shared::{ClientMessage, PortRange, Proto};
use proptest::prelude::*;
use serde_json::{Map, Value};

use portscope_core::ports::{self, Services};
use portscope_doctor::target;
use portscope_server::http::Guard;

const PORT: u16 = 7678;

fn guard() -> Guard {
    Guard::new(IpAddr::V4(Ipv4Addr::LOCALHOST), PORT, "t".repeat(32))
}

/// Host-like text: mostly the characters hosts, ports and tricks are made of.
fn hostish() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9.:\\[\\]@%#/_-]{0,40}").expect("valid regex")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// An accepted Host is a loopback name or address with our port, and nothing else.
    #[test]
    fn accepted_hosts_are_loopback_with_our_port(value in prop_oneof![hostish(), any::<String>()]) {
        if let Ok(accepted) = guard().check_host(std::iter::once(value.as_bytes())) {
            let (host, port) = accepted.rsplit_once(':').expect("a port is required here");
            prop_assert_eq!(port, PORT.to_string());
            let name = host.trim_end_matches('.');
            let loopback = host == "[::1]"
                || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
                || name == "localhost"
                || name.ends_with(".localhost");
            prop_assert!(loopback, "accepted {:?}", value);
        }
    }

    /// An accepted Origin is exactly the dashboard's own origin.
    #[test]
    fn accepted_origins_are_our_own(origin in prop_oneof![hostish(), any::<String>()]) {
        let host = format!("localhost:{PORT}");
        if guard().check_origin(Some(origin.as_bytes()), &host).is_ok() {
            prop_assert!(origin.eq_ignore_ascii_case(&format!("http://{host}")), "accepted {:?}", origin);
        }
    }

    /// Any token but ours is refused.
    #[test]
    fn only_our_token_passes(token in any::<String>()) {
        let ok = guard().check_token([token.as_str()]).is_ok();
        prop_assert_eq!(ok, token == "t".repeat(32));
    }

    /// `why` targets: never a panic; what parses has a port and a path safe for a request line.
    #[test]
    fn targets_parse_safely(text in prop_oneof![
        proptest::string::string_regex("(https?://)?[a-z0-9.\\[\\]:]{0,20}(/[ -~]{0,20})?").expect("valid regex"),
        any::<String>(),
    ]) {
        if let Ok(t) = target::parse(&text) {
            prop_assert!(t.port >= 1);
            prop_assert!(!t.host.is_empty());
            prop_assert!(t.path.starts_with('/'));
            prop_assert!(t.path.chars().all(|c| c.is_ascii_graphic()), "{:?}", t.path);
        }
    }

    /// `why` targets written the ways it documents (a port, `host:port`, `[v6]:port`, a URL
    /// with or without port and path) read as what was written: the host (lower-case, without
    /// brackets; `localhost` for a bare port), the port (else the scheme's), the path (else `/`).
    #[test]
    fn targets_read_as_written(
        host in prop_oneof![
            proptest::string::string_regex("[A-Za-z0-9][A-Za-z0-9_-]{0,5}(\\.[a-z0-9][a-z0-9-]{0,5}){0,2}")
                .expect("valid regex"),
            any::<Ipv4Addr>().prop_map(|ip| ip.to_string()),
            any::<std::net::Ipv6Addr>().prop_map(|ip| format!("[{ip}]")),
        ],
        port in proptest::option::of(1..=65535u16),
        scheme in proptest::option::of(prop_oneof![Just("http"), Just("HTTPS"), Just("ws"), Just("wss")]),
        path in proptest::option::of(proptest::string::string_regex("/[A-Za-z0-9._~/?=&%-]{0,10}").expect("valid regex")),
        bare in any::<bool>(),
    ) {
        let (text, expected) = match (scheme, port) {
            (None, Some(port)) if bare => (port.to_string(), ("localhost".to_owned(), port, "/".to_owned())),
            (None, Some(port)) => (format!("{host}:{port}"), (host.clone(), port, "/".to_owned())),
            (None, None) => return Ok(()),
            (Some(scheme), port) => {
                let default = if scheme.eq_ignore_ascii_case("http") || scheme == "ws" { 80 } else { 443 };
                let path = path.unwrap_or_default();
                let authority = match port {
                    Some(port) => format!("{host}:{port}"),
                    None => host.clone(),
                };
                let wanted = if path.is_empty() { "/".to_owned() } else { path.clone() };
                (format!("{scheme}://{authority}{path}"), (host.clone(), port.unwrap_or(default), wanted))
            }
        };
        let expected = (
            expected.0.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase(),
            expected.1,
            expected.2,
        );
        let t = target::parse(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!((t.host, t.port, t.path), expected, "{:?}", text);
    }
}

/// What a POSIX shell makes of `quoted` as one word: `sh -c 'printf %s <quoted>'`.
fn shell_reads(quoted: &str) -> Vec<u8> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("printf %s {quoted}"))
        .env("LC_ALL", "C")
        .output()
        .expect("sh runs (it is POSIX's shell; every Debian has dash as /bin/sh)");
    assert!(out.status.success(), "sh failed on {quoted:?}: {out:?}");
    out.stdout
}

/// Words made mostly of what the shell gives meaning to, and plain words with one such
/// character in them.
fn shellish() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex(
            "[a-z0-9 \\t\\n'\"\\\\$`*?~!#&;|<>(){}\\[\\]%=@:,+./-]{0,12}"
        )
        .expect("valid regex"),
        proptest::string::string_regex(
            "[a-z0-9._/:@%+=,-]{0,3}[ \\t\\n'\"\\\\$`*?~!#&;|<>(){}\\[\\]^][a-z0-9._/:@%+=,-]{0,3}"
        )
        .expect("valid regex"),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A shell-quoted word reads back as itself in a real POSIX shell (any text without NUL,
    /// which no shell word can hold).
    #[test]
    fn shell_quoting_round_trips(word in prop_oneof![shellish(), any::<String>()]) {
        let word = word.replace('\0', "");
        prop_assert_eq!(shell_reads(&target::shell_quote(&word)), word.as_bytes());
    }
}

/// One number as the kernel writes it, or something that is not one.
#[derive(Clone, Debug)]
enum Num {
    /// Decimal, possibly above `u16::MAX`, possibly with leading zeros.
    Dec(u32, usize),
    /// Not a number at all.
    Junk(&'static str),
}

impl Num {
    fn text(&self) -> String {
        match *self {
            Num::Dec(n, zeros) => format!("{}{n}", "0".repeat(zeros)),
            Num::Junk(s) => s.to_owned(),
        }
    }
    fn value(&self) -> Option<u16> {
        match *self {
            Num::Dec(n, _) => u16::try_from(n).ok(),
            Num::Junk(_) => None,
        }
    }
}

fn num() -> impl Strategy<Value = Num> {
    prop_oneof![
        4 => (0..=65535u32, prop_oneof![3 => Just(0usize), 1 => 1..3usize]).prop_map(|(n, z)| Num::Dec(n, z)),
        1 => (65536..=200_000u32).prop_map(|n| Num::Dec(n, 0)),
        1 => prop_oneof![
            Just(""), Just("-1"), Just("x"), Just("80a"), Just("0x50"), Just("1.5"), Just("١"),
        ]
        .prop_map(Num::Junk),
    ]
}

fn blank() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[ \\t]{0,2}").expect("valid regex")
}

/// An item of `ip_local_reserved_ports`: a port, a range, or something else.
#[derive(Clone, Debug)]
enum Item {
    Port(Num),
    Range(Num, Num),
    Junk(&'static str),
}

impl Item {
    fn text(&self) -> String {
        match self {
            Item::Port(n) => n.text(),
            Item::Range(a, b) => format!("{}-{}", a.text(), b.text()),
            Item::Junk(s) => (*s).to_owned(),
        }
    }
    /// What the item means: a range, `first <= last`, or nothing.
    fn range(&self) -> Option<PortRange> {
        let (first, last) = match self {
            Item::Port(n) => (n.value()?, n.value()?),
            Item::Range(a, b) => (a.value()?, b.value()?),
            Item::Junk(_) => return None,
        };
        (first <= last).then_some(PortRange { first, last })
    }
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        2 => num().prop_map(Item::Port),
        3 => (num(), num()).prop_map(|(a, b)| Item::Range(a, b)),
        1 => (0..=65535u32).prop_map(|n| Item::Range(Num::Dec(n, 0), Num::Dec(n, 0))),
        1 => prop_oneof![Just(""), Just("-"), Just("1-2-3"), Just("a-b")]
            .prop_map(Item::Junk),
    ]
}

/// A line of `/etc/services`.
#[derive(Clone, Debug)]
enum Line {
    Entry {
        name: String,
        port: Num,
        proto: &'static str,
        aliases: Vec<String>,
        comment: Option<String>,
        blank: String,
    },
    /// A comment line (which may look like an entry after its `#`).
    Comment(String),
    /// A line that is not an entry.
    Junk(String),
}

impl Line {
    fn text(&self) -> String {
        match self {
            Line::Entry {
                name,
                port,
                proto,
                aliases,
                comment,
                blank,
            } => {
                let mut line = format!("{blank}{name}{blank}\t{}/{proto}", port.text());
                for alias in aliases {
                    line.push_str(&format!(" {alias}"));
                }
                if let Some(c) = comment {
                    line.push_str(&format!("{blank}#{c}"));
                }
                line
            }
            Line::Comment(c) => format!("#{c}"),
            Line::Junk(j) => j.clone(),
        }
    }
    /// The (port, protocol) → name this line gives, if any.
    fn entry(&self) -> Option<((u16, Proto), &str)> {
        let Line::Entry {
            name, port, proto, ..
        } = self
        else {
            return None;
        };
        let proto = match *proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            _ => return None,
        };
        Some(((port.value()?, proto), name.as_str()))
    }
}

fn service_name() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-z][a-z0-9-]{0,8}").expect("valid regex")
}

fn line() -> impl Strategy<Value = Line> {
    let port = prop_oneof![
        3 => (0..8u32).prop_map(|n| Num::Dec(n, 0)),
        1 => num(),
    ];
    prop_oneof![
        6 => (
            service_name(),
            port,
            prop_oneof![4 => Just("tcp"), 4 => Just("udp"), 1 => Just("sctp"), 1 => Just("ddp"), 1 => Just("")],
            proptest::collection::vec(service_name(), 0..3),
            proptest::option::of(proptest::string::string_regex("[ -~]{0,20}").expect("valid regex")),
            blank(),
        )
            .prop_map(|(name, port, proto, aliases, comment, blank)| Line::Entry {
                name, port, proto, aliases, comment, blank,
            }),
        1 => proptest::string::string_regex("( ?[a-z]{1,5} [0-7]/(tcp|udp))?[ -~]{0,10}")
            .expect("valid regex")
            .prop_map(Line::Comment),
        1 => prop_oneof![
            Just(String::new()),
            Just("  \t".to_owned()),
            Just("lonely".to_owned()),
            Just("http 80".to_owned()),
            Just("http /tcp".to_owned()),
            Just("http port/tcp".to_owned()),
            Just("http -1/tcp".to_owned()),
            Just("http 80/tcp/udp".to_owned()),
            Just("80/tcp http".to_owned()),
        ]
        .prop_map(Line::Junk),
    ]
}

/// A JSON value for a message's other fields.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[ -~]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(("[a-z]{1,6}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// What a client message is: `Resync`, a type this agent does not know, or not a message.
#[derive(Debug, PartialEq)]
enum Kind {
    Resync,
    Unknown,
    Invalid,
}

/// The protocol's reading of a client message, from the JSON alone: an object whose `type` is
/// a string; `"Resync"` is the one type a client sends today, any other name is a newer
/// client's; other fields are ignored.
///
/// One more form is read, not by design: serde reads an internally tagged enum from a sequence
/// too, so `["Resync"]` (the type name alone in an array) is a `Resync` and `["x"]` is
/// `Unknown`. Harmless (it means what the object means); spelled out here so that a change to
/// it shows.
fn kind_of(text: &str) -> Kind {
    let ty = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(fields)) => fields.get("type").cloned(),
        Ok(Value::Array(items)) if items.len() == 1 => items.into_iter().next(),
        _ => None,
    };
    match ty {
        Some(Value::String(t)) if t == "Resync" => Kind::Resync,
        Some(Value::String(_)) => Kind::Unknown,
        _ => Kind::Invalid,
    }
}

fn kind_decoded(text: &str) -> Kind {
    match serde_json::from_str::<ClientMessage>(text) {
        Ok(ClientMessage::Resync) => Kind::Resync,
        Ok(ClientMessage::Unknown) => Kind::Unknown,
        Err(_) => Kind::Invalid,
    }
}

/// A message: an object with a `type` (known, unknown, or not a string) somewhere among other
/// fields, or some other JSON value; cut short one time in three.
fn message() -> impl Strategy<Value = String> {
    let ty = prop_oneof![
        3 => Just(Value::from("Resync")),
        1 => prop_oneof![Just("resync"), Just("RESYNC"), Just("Resync "), Just(""), Just("Snapshot")]
            .prop_map(Value::from),
        2 => "[A-Za-z]{1,10}".prop_map(Value::String),
        1 => json_value(),
    ];
    // Keys sort, so `type` comes before, between or after the others.
    let object = (
        proptest::option::of(ty),
        proptest::collection::vec(("[a-z_]{1,6}", json_value()), 0..4),
    )
        .prop_map(|(ty, others)| {
            let mut map: Map<String, Value> = others.into_iter().collect();
            match ty {
                Some(ty) => map.insert("type".to_owned(), ty),
                None => map.remove("type"),
            };
            Value::Object(map)
        });
    (
        prop_oneof![4 => object, 1 => json_value()],
        any::<prop::sample::Index>(),
        0..3usize,
    )
        .prop_map(|(value, at, cut)| {
            let text = value.to_string();
            if cut == 0 {
                return text;
            }
            // A strict prefix of an object or an array is never JSON (of a number it may be).
            let mut end = at.index(text.len().max(1));
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text[..end].to_owned()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// `ip_local_port_range`: two numbers separated by blanks (the kernel writes a tab and a
    /// newline), an ordered pair of ports; anything else, or a reversed pair, is no range.
    #[test]
    fn kernel_port_range_parses_as_written(
        (first, last) in prop_oneof![
            (num(), num()),
            // The same port, or two next to each other in either order.
            (0..=65535u32, 0..=1u32, any::<bool>()).prop_map(|(n, d, swap)| {
                let (a, b) = (Num::Dec(n, 0), Num::Dec(n + d, 0));
                if swap { (b, a) } else { (a, b) }
            }),
        ],
        lead in blank(), sep in "[ \t]{1,2}", end in "(\n|[ \t]{0,2})",
    ) {
        let text = format!("{lead}{}{sep}{}{end}", first.text(), last.text());
        let expected = match (first.value(), last.value()) {
            (Some(first), Some(last)) if first <= last => Some(PortRange { first, last }),
            _ => None,
        };
        prop_assert_eq!(ports::parse_range(&text), expected, "{:?}", text);
    }

    /// `ip_local_reserved_ports`: comma-separated ports and `first-last` ranges, each kept in
    /// order when it is one; anything else (reversed, out of range, junk) is dropped alone.
    #[test]
    fn kernel_reserved_ports_parse_as_written(
        items in proptest::collection::vec((blank(), item(), blank()), 0..6),
        newline in any::<bool>(),
    ) {
        let mut text = items
            .iter()
            .map(|(before, item, after)| format!("{before}{}{after}", item.text()))
            .collect::<Vec<_>>()
            .join(",");
        if newline {
            text.push('\n');
        }
        let expected: Vec<PortRange> = items.iter().filter_map(|(_, item, _)| item.range()).collect();
        prop_assert_eq!(ports::parse_reserved(&text), expected, "{:?}", text);
    }

    /// The kernel's files: never a panic, whatever they hold.
    #[test]
    fn kernel_port_files_never_panic(text in any::<String>()) {
        let _ = ports::parse_range(&text);
        let _ = ports::parse_reserved(&text);
    }

    /// `/etc/services`: each `name port/proto` line (with aliases and a comment) names its port
    /// for tcp or udp, the first one given for a port wins; comment lines, other protocols,
    /// ports out of range and lines that are not entries name nothing.
    #[test]
    fn services_parse_as_written(lines in proptest::collection::vec(line(), 0..20), crlf in any::<bool>()) {
        let text = lines.iter().map(Line::text).collect::<Vec<_>>().join(if crlf { "\r\n" } else { "\n" });
        let mut expected: HashMap<(u16, Proto), &str> = HashMap::new();
        for line in &lines {
            if let Some((key, name)) = line.entry() {
                expected.entry(key).or_insert(name);
            }
        }
        let services = Services::parse(&text);
        for port in (0..8).chain([80, 443, 65535]) {
            for proto in [Proto::Tcp, Proto::Udp] {
                prop_assert_eq!(
                    services.name(port, proto),
                    expected.get(&(port, proto)).copied(),
                    "{} {:?} in {:?}", port, proto, text
                );
            }
        }
        for ((port, proto), name) in expected {
            prop_assert_eq!(services.name(port, proto), Some(name));
        }
    }

    /// `/etc/services`: never a panic, whatever it holds.
    #[test]
    fn services_never_panic(lines in proptest::collection::vec(any::<String>(), 0..20)) {
        let _ = Services::parse(&lines.join("\n"));
    }

    /// Client messages decode as the protocol reads them: an object whose `type` is
    /// `"Resync"` is a `Resync` and one with any other string `type` is `Unknown`, whatever else
    /// it holds and wherever `type` is; everything else is an error, never a panic.
    #[test]
    fn client_messages_decode_as_the_protocol_reads_them(text in prop_oneof![
        4 => message(),
        1 => any::<String>(),
    ]) {
        prop_assert_eq!(kind_decoded(&text), kind_of(&text), "{:?}", text);
    }
}
