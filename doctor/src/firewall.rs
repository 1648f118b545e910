//! The firewall's say on a connection to a local port: which rules the probe's packet can meet,
//! read from `nft -j list ruleset`, else from `iptables -S` (and `iptables-legacy`, whose rules
//! nft cannot see). Each rule is judged against the packet `why` sends — from this machine to
//! one of its own addresses, so in and out through `lo`, source address = destination address —
//! in the chains that packet passes (input, output, and NAT's prerouting and output hooks) and
//! the chains they jump to. A rule whose condition cannot hold for that packet is not blamed; one
//! whose condition portscope cannot evaluate is *conditional*, with the condition shown; a DNAT
//! rule says where the port is forwarded.
//!
//! # Platform-specific behavior
//!
//! nftables and iptables are Linux's; on other systems only the types are used (macOS's pf is
//! read by `pf.rs`), and the parsers stay compiled and tested everywhere.
#![cfg_attr(
    not(target_os = "linux"),
    allow(dead_code, reason = "nft and iptables are read on Linux only")
)]

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

/// The packet `why` sends: TCP to `port` on one of `dst` (this machine's addresses).
#[derive(Clone, Debug)]
pub struct Packet {
    pub dst: Vec<IpAddr>,
    pub port: u16,
}

/// A rule the packet can meet, or a base chain's default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Where it sits and what it says, e.g. `inet filter input: tcp dport 5173 reject`.
    pub text: String,
    /// `accept`, `drop`, `reject`, `dnat`, or another verdict.
    pub verdict: String,
    /// A chain's default policy rather than a rule about this port.
    pub policy: bool,
    /// What must also hold for the rule to apply, when portscope cannot tell (`ct mark 0x1`).
    pub condition: Option<String>,
    /// For DNAT: where the port goes, e.g. `172.17.0.2:8080`.
    pub forward: Option<String>,
}

impl Rule {
    /// A rule about this port that drops or rejects it (perhaps only under its condition).
    pub fn blocks(&self) -> bool {
        !self.policy && (self.verdict == "drop" || self.verdict == "reject")
    }
}

/// What the firewall says about a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Firewall {
    /// Read with the named tool(s): the rules the packet can meet that name the port, and
    /// dropping policies of the chains it passes.
    Read {
        tool: String,
        rules: Vec<Rule>,
        /// A rule accepts everything arriving on the loopback interface (`iif lo accept`).
        loopback_accepted: bool,
    },
    /// Could not be read: why not, and how to.
    Unreadable(String),
}

/// Whether a rule's match holds for the packet.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Holds {
    Yes,
    No,
    /// Cannot be told; the text of the condition.
    Maybe(String),
}

/// Runs a read-only tool with arguments and returns its output (the OS side, or a fake).
pub type Runner<'a> = &'a dyn Fn(&str, &[&str]) -> Result<String, RunError>;

/// Reads the rules with the tools at hand.
pub fn read(packet: &Packet, run: Runner<'_>) -> Firewall {
    let mut rules = Vec::new();
    let mut loopback_accepted = false;
    let mut tools = Vec::new();
    match run("nft", &["-j", "list", "ruleset"]) {
        Ok(json) => match serde_json::from_str::<serde_json::Value>(&json) {
            Ok(value) => {
                let (found, lo) = nft_rules(&value, packet);
                rules.extend(found);
                loopback_accepted |= lo;
                tools.push("nft");
            }
            Err(e) => {
                return Firewall::Unreadable(format!(
                    "`nft -j list ruleset` printed no JSON ({e})"
                ));
            }
        },
        Err(RunError::Denied(why)) => {
            return Firewall::Unreadable(format!(
                "reading the nftables ruleset needs root ({why}); run `sudo nft list ruleset | grep {}`",
                packet.port
            ));
        }
        Err(RunError::Failed(why)) => {
            return Firewall::Unreadable(format!("the nftables ruleset could not be read: {why}"));
        }
        Err(RunError::Missing) => {}
    }
    // With nft, `iptables` is usually nft's own front end (already read above); the legacy
    // x_tables rules are another table nft never shows, so they are read separately.
    let iptables: &[&str] = if tools.is_empty() {
        &["iptables", "ip6tables"]
    } else {
        &["iptables-legacy", "ip6tables-legacy"]
    };
    for tool in iptables {
        let mut text = String::new();
        for table in ["filter", "nat"] {
            match run(tool, &["-t", table, "-S"]) {
                Ok(out) => {
                    text.push_str(&format!("*{table}\n"));
                    text.push_str(&out);
                }
                Err(RunError::Denied(why)) => {
                    return Firewall::Unreadable(format!(
                        "reading iptables rules needs root ({why}); run `sudo {tool} -S | grep {}`",
                        packet.port
                    ));
                }
                Err(RunError::Failed(_) | RunError::Missing) => {}
            }
        }
        if text.is_empty() {
            continue;
        }
        let v6 = tool.starts_with("ip6");
        let (found, lo) = iptables_rules(tool, &text, packet, v6);
        // A legacy table with nothing in it is not worth naming.
        if !tools.is_empty() && found.is_empty() && !lo {
            continue;
        }
        rules.extend(found);
        loopback_accepted |= lo;
        tools.push(tool);
    }
    if tools.is_empty() {
        return Firewall::Unreadable(
            "neither nft nor iptables is installed, so no rules could be read (most likely there is \
             no firewall); install nftables to let portscope check"
                .into(),
        );
    }
    Firewall::Read {
        tool: tools.join(" + "),
        rules,
        loopback_accepted,
    }
}

/// Why a tool gave no rules.
#[derive(Debug)]
pub enum RunError {
    Missing,
    /// Needs root (or CAP_NET_ADMIN).
    Denied(String),
    /// Timed out or failed for another reason.
    Failed(String),
}

/// The hooks a locally delivered packet passes.
const HOOKS: &[&str] = &["input", "output", "prerouting"];

/// The rules of an `nft -j list ruleset` the packet can meet that name its port, dropping
/// policies of the chains it passes, and whether a rule accepts all loopback traffic.
pub fn nft_rules(value: &serde_json::Value, packet: &Packet) -> (Vec<Rule>, bool) {
    let mut rules = Vec::new();
    let mut loopback_accepted = false;
    let Some(items) = value.get("nftables").and_then(|v| v.as_array()) else {
        return (rules, loopback_accepted);
    };
    let key = |v: &serde_json::Value, name: &str| {
        (
            str_of(v, "family").to_owned(),
            str_of(v, "table").to_owned(),
            str_of(v, name).to_owned(),
        )
    };
    let mut by_chain: HashMap<(String, String, String), Vec<&serde_json::Value>> = HashMap::new();
    let mut bases = Vec::new();
    for item in items {
        if let Some(chain) = item.get("chain") {
            let family = str_of(chain, "family");
            let hook = chain.get("hook").and_then(|v| v.as_str());
            if hook.is_some_and(|h| HOOKS.contains(&h)) && family_fits(family, &packet.dst) {
                bases.push(chain);
            }
        }
        if let Some(rule) = item.get("rule") {
            by_chain.entry(key(rule, "chain")).or_default().push(rule);
        }
    }
    for chain in bases {
        let hook = str_of(chain, "hook");
        if hook == "input" && chain.get("policy").and_then(|v| v.as_str()) == Some("drop") {
            rules.push(Rule {
                text: format!(
                    "{} chain {}: policy drop (anything not accepted is dropped)",
                    where_(chain),
                    str_of(chain, "name")
                ),
                verdict: "drop".into(),
                policy: true,
                condition: None,
                forward: None,
            });
        }
        let mut seen = HashSet::new();
        walk_nft(
            &key(chain, "name"),
            &by_chain,
            packet,
            &[],
            &mut seen,
            &mut rules,
            &mut loopback_accepted,
        );
    }
    (rules, loopback_accepted)
}

/// Follows one chain's rules, and the chains its `jump`/`goto` rules reach when the packet can
/// meet them; `conditions` are the undecidable matches on the way there.
fn walk_nft(
    chain: &(String, String, String),
    by_chain: &HashMap<(String, String, String), Vec<&serde_json::Value>>,
    packet: &Packet,
    conditions: &[String],
    seen: &mut HashSet<(String, String, String)>,
    rules: &mut Vec<Rule>,
    loopback_accepted: &mut bool,
) {
    if !seen.insert(chain.clone()) {
        return;
    }
    for rule in by_chain.get(chain).into_iter().flatten() {
        let Some(exprs) = rule.get("expr").and_then(|v| v.as_array()) else {
            continue;
        };
        let mut names_port = None;
        let mut cannot = false;
        let mut maybe: Vec<String> = conditions.to_vec();
        // Every match as written, for the rule's text.
        let mut shown: Vec<String> = Vec::new();
        let mut from_loopback = false;
        let mut only_iif = true;
        let mut verdict = None;
        let mut target = None;
        let mut forward = None;
        for expr in exprs {
            if let Some(m) = expr.get("match") {
                let op = m.get("op").and_then(|v| v.as_str()).unwrap_or("==");
                let left = m.get("left").unwrap_or(&serde_json::Value::Null);
                let right = m.get("right").unwrap_or(&serde_json::Value::Null);
                let field = left.pointer("/payload/field").and_then(|v| v.as_str());
                let proto = left.pointer("/payload/protocol").and_then(|v| v.as_str());
                let meta = left.pointer("/meta/key").and_then(|v| v.as_str());
                if matches!(meta, Some("iif" | "iifname"))
                    && op == "=="
                    && right.as_str() == Some("lo")
                {
                    from_loopback = true;
                } else {
                    only_iif = false;
                }
                if field == Some("dport")
                    && matches!(proto, Some("tcp" | "th"))
                    && op == "=="
                    && port_matches(right, packet.port)
                {
                    let text = format!("{} dport {}", proto.unwrap_or("tcp"), compact(right));
                    shown.push(text.clone());
                    names_port = Some(text);
                    continue;
                }
                shown.push(if op == "==" {
                    format!("{} {}", describe_left(left), compact(right))
                } else {
                    format!("{} {op} {}", describe_left(left), compact(right))
                });
                match nft_match(op, left, right, packet) {
                    Holds::Yes => {}
                    Holds::No => cannot = true,
                    Holds::Maybe(text) => maybe.push(text),
                }
            }
            for v in ["accept", "drop", "reject", "return", "queue"] {
                if expr.get(v).is_some() {
                    verdict = Some(v.to_owned());
                }
            }
            for v in ["jump", "goto"] {
                if let Some(t) = expr
                    .pointer(&format!("/{v}/target"))
                    .and_then(|t| t.as_str())
                {
                    verdict = Some(format!("{v} {t}"));
                    target = Some(t.to_owned());
                }
            }
            if let Some(d) = expr.get("dnat").or_else(|| expr.get("redirect")) {
                let addr = d.get("addr").map(compact);
                let port = d.get("port").map(compact);
                let to = match (addr, port) {
                    (Some(a), Some(p)) => format!("{a}:{p}"),
                    (Some(a), None) => a,
                    (None, Some(p)) => format!("port {p}"),
                    (None, None) => "elsewhere".into(),
                };
                verdict = Some(format!("dnat to {to}"));
                forward = Some(to);
            }
        }
        if cannot {
            continue;
        }
        if from_loopback && only_iif && verdict.as_deref() == Some("accept") {
            *loopback_accepted = true;
        }
        if let Some(t) = target {
            // Rules that name the port may sit in the chain it jumps to.
            let key = (chain.0.clone(), chain.1.clone(), t);
            let mut on_the_way = maybe.clone();
            if let Some(p) = &names_port {
                on_the_way.retain(|c| c != p);
            }
            walk_nft(
                &key,
                by_chain,
                packet,
                &on_the_way,
                seen,
                rules,
                loopback_accepted,
            );
            continue;
        }
        if names_port.is_some() {
            let verdict = verdict.unwrap_or_else(|| "continue".into());
            rules.push(Rule {
                text: format!(
                    "{} chain {}: {} {verdict}",
                    where_(rule),
                    chain.2,
                    shown.join(" ")
                ),
                verdict: if forward.is_some() {
                    "dnat".into()
                } else {
                    verdict
                },
                policy: false,
                condition: (!maybe.is_empty()).then(|| maybe.join(" and ")),
                forward,
            });
        }
    }
}

/// Judges one nft match against the packet.
fn nft_match(
    op: &str,
    left: &serde_json::Value,
    right: &serde_json::Value,
    packet: &Packet,
) -> Holds {
    let text = || format!("{} {op} {}", describe_left(left), compact(right));
    let holds = |yes: Option<bool>| match (yes, op) {
        (Some(y), "==") => {
            if y {
                Holds::Yes
            } else {
                Holds::No
            }
        }
        (Some(y), "!=") => {
            if y {
                Holds::No
            } else {
                Holds::Yes
            }
        }
        _ => Holds::Maybe(text()),
    };
    let field = left.pointer("/payload/field").and_then(|v| v.as_str());
    let proto = left.pointer("/payload/protocol").and_then(|v| v.as_str());
    if let (Some("saddr" | "daddr"), Some(p @ ("ip" | "ip6"))) = (field, proto) {
        // Local delivery: the source address is the destination address.
        let family_v4 = p == "ip";
        let dst: Vec<&IpAddr> = packet
            .dst
            .iter()
            .filter(|a| a.is_ipv4() == family_v4)
            .collect();
        if dst.is_empty() {
            return Holds::No;
        }
        return holds(Some(dst.iter().any(|a| addr_matches(right, **a))));
    }
    if field == Some("dport") && matches!(proto, Some("tcp" | "th")) {
        return holds(Some(port_matches(right, packet.port)));
    }
    if matches!(proto, Some("udp" | "icmp" | "icmpv6" | "sctp")) {
        return if op == "==" {
            Holds::No
        } else {
            Holds::Maybe(text())
        };
    }
    if let Some(meta) = left.pointer("/meta/key").and_then(|v| v.as_str()) {
        return match meta {
            "iif" | "iifname" | "oif" | "oifname" => {
                let names = strings(right);
                holds((!names.is_empty()).then(|| names.iter().any(|n| iface_matches(n, "lo"))))
            }
            "l4proto" => holds(Some(strings(right).iter().any(|p| p == "tcp" || p == "6"))),
            "nfproto" => holds(Some(strings(right).iter().any(|f| {
                (f == "ipv4" && packet.dst.iter().any(IpAddr::is_ipv4))
                    || (f == "ipv6" && packet.dst.iter().any(IpAddr::is_ipv6))
            }))),
            _ => Holds::Maybe(text()),
        };
    }
    if left.pointer("/ct/key").and_then(|v| v.as_str()) == Some("state") {
        // The probe opens a new connection.
        return holds(Some(strings(right).iter().any(|s| s == "new")));
    }
    if left.get("fib").is_some() && strings(right).iter().any(|s| s == "local") {
        // The packet goes to an address of this machine.
        return holds(Some(true));
    }
    Holds::Maybe(text())
}

fn describe_left(left: &serde_json::Value) -> String {
    if let (Some(p), Some(f)) = (
        left.pointer("/payload/protocol").and_then(|v| v.as_str()),
        left.pointer("/payload/field").and_then(|v| v.as_str()),
    ) {
        return format!("{p} {f}");
    }
    if let Some(k) = left.pointer("/meta/key").and_then(|v| v.as_str()) {
        return k.to_owned();
    }
    if let Some(k) = left.pointer("/ct/key").and_then(|v| v.as_str()) {
        return format!("ct {k}");
    }
    compact(left)
}

/// The strings of a match's right side: one, or a set.
fn strings(right: &serde_json::Value) -> Vec<String> {
    if let Some(s) = right.as_str() {
        return vec![s.to_owned()];
    }
    if let Some(n) = right.as_u64() {
        return vec![n.to_string()];
    }
    right
        .get("set")
        .and_then(|s| s.as_array())
        .map(|items| items.iter().flat_map(strings).collect())
        .unwrap_or_default()
}

/// `eth*` style interface names.
fn iface_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// An address, a `{"prefix": {"addr", "len"}}`, a `{"range": [a, b]}` or a set of them.
fn addr_matches(right: &serde_json::Value, addr: IpAddr) -> bool {
    if let Some(a) = right.as_str().and_then(|s| s.parse::<IpAddr>().ok()) {
        return a == addr;
    }
    if let Some(p) = right.get("prefix") {
        let base = p
            .get("addr")
            .and_then(|a| a.as_str())
            .and_then(|a| a.parse::<IpAddr>().ok());
        let len = p.get("len").and_then(|l| l.as_u64());
        if let (Some(base), Some(len)) = (base, len) {
            return in_prefix(addr, base, len as u32);
        }
        return false;
    }
    if let Some(range) = right.get("range").and_then(|r| r.as_array()) {
        let ends: Vec<IpAddr> = range
            .iter()
            .filter_map(|v| v.as_str()?.parse().ok())
            .collect();
        return matches!(ends.as_slice(), [a, b] if a.is_ipv4() == addr.is_ipv4() && *a <= addr && addr <= *b);
    }
    if let Some(set) = right.get("set").and_then(|s| s.as_array()) {
        return set.iter().any(|item| addr_matches(item, addr));
    }
    false
}

fn in_prefix(addr: IpAddr, base: IpAddr, len: u32) -> bool {
    match (addr, base) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - len.min(32)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - len.min(128)).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

fn family_fits(family: &str, dst: &[IpAddr]) -> bool {
    match family {
        "ip" => dst.iter().any(IpAddr::is_ipv4),
        "ip6" => dst.iter().any(IpAddr::is_ipv6),
        "inet" => true,
        _ => false,
    }
}

fn where_(v: &serde_json::Value) -> String {
    format!("{} {}", str_of(v, "family"), str_of(v, "table"))
}

fn str_of<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v.get(key).and_then(|v| v.as_str()).unwrap_or("?")
}

/// A JSON value the way nft would print it: `80`, `{8000-8100, 22}`, `10.0.0.0/8`.
fn compact(v: &serde_json::Value) -> String {
    if let Some(s) = v.as_str() {
        return s.to_owned();
    }
    if let Some(n) = v.as_u64() {
        return n.to_string();
    }
    if let Some(p) = v.get("prefix") {
        return format!(
            "{}/{}",
            str_of(p, "addr"),
            p.get("len").map(compact).unwrap_or_default()
        );
    }
    if let Some(r) = v.get("range").and_then(|r| r.as_array()) {
        return r.iter().map(compact).collect::<Vec<_>>().join("-");
    }
    if let Some(s) = v.get("set").and_then(|s| s.as_array()) {
        return format!(
            "{{{}}}",
            s.iter().map(compact).collect::<Vec<_>>().join(", ")
        );
    }
    v.to_string()
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

/// The rules of `iptables -t filter -S` and `-t nat -S` (each after a `*table` line) the packet
/// can meet that name its port (following `-j CHAIN` from INPUT, OUTPUT and PREROUTING), a
/// dropping INPUT policy, and whether `-A INPUT -i lo -j ACCEPT` is there.
pub fn iptables_rules(tool: &str, text: &str, packet: &Packet, v6: bool) -> (Vec<Rule>, bool) {
    let mut rules = Vec::new();
    let mut loopback_accepted = false;
    let family_dst: Vec<IpAddr> = packet
        .dst
        .iter()
        .copied()
        .filter(|a| a.is_ipv6() == v6)
        .collect();
    if family_dst.is_empty() {
        return (rules, false);
    }
    let mut table = "filter".to_owned();
    let mut by_chain: HashMap<(String, String), Vec<&str>> = HashMap::new();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim().to_owned();
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"-P")
            && words.get(1) == Some(&"INPUT")
            && words.get(2) == Some(&"DROP")
            && table == "filter"
        {
            rules.push(Rule {
                text: format!("{tool}: {line} (anything not accepted is dropped)"),
                verdict: "drop".into(),
                policy: true,
                condition: None,
                forward: None,
            });
        }
        if words.first() == Some(&"-A")
            && let Some(chain) = words.get(1)
        {
            by_chain
                .entry((table.clone(), (*chain).to_owned()))
                .or_default()
                .push(line);
        }
    }
    let packet = Packet {
        dst: family_dst,
        port: packet.port,
    };
    let mut seen = HashSet::new();
    for (t, base) in [
        ("filter", "INPUT"),
        ("filter", "OUTPUT"),
        ("nat", "PREROUTING"),
        ("nat", "OUTPUT"),
    ] {
        walk_iptables(
            tool,
            &(t.to_owned(), base.to_owned()),
            &by_chain,
            &packet,
            &[],
            &mut seen,
            &mut rules,
            &mut loopback_accepted,
        );
    }
    (rules, loopback_accepted)
}

#[allow(
    clippy::too_many_arguments,
    reason = "a recursive walk carrying its accumulators"
)]
fn walk_iptables(
    tool: &str,
    chain: &(String, String),
    by_chain: &HashMap<(String, String), Vec<&str>>,
    packet: &Packet,
    conditions: &[String],
    seen: &mut HashSet<(String, String)>,
    rules: &mut Vec<Rule>,
    loopback_accepted: &mut bool,
) {
    if !seen.insert(chain.clone()) {
        return;
    }
    for line in by_chain.get(chain).into_iter().flatten() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let value = |flag: &str| -> Option<(bool, &str)> {
            words
                .windows(2)
                .enumerate()
                .find(|(_, w)| w[0] == flag)
                .map(|(i, w)| (i > 0 && words[i - 1] == "!", w[1]))
        };
        let jump = value("-j").map_or("continue", |(_, j)| j);
        if chain.1 == "INPUT" && words[2..] == ["-i", "lo", "-j", "ACCEPT"] {
            *loopback_accepted = true;
        }
        let mut cannot = false;
        let mut maybe = conditions.to_vec();
        if let Some((neg, p)) = value("-p") {
            cannot |= (p == "tcp" || p == "6") == neg;
        }
        for flag in ["-s", "-d"] {
            if let Some((neg, net)) = value(flag) {
                let inside = packet.dst.iter().any(|a| cidr_contains(net, *a));
                cannot |= inside == neg;
            }
        }
        for flag in ["-i", "-o"] {
            if let Some((neg, name)) = value(flag) {
                let lo = name
                    .strip_suffix('+')
                    .map_or(name == "lo", |p| "lo".starts_with(p));
                cannot |= lo == neg;
            }
        }
        if let Some((neg, states)) = value("--ctstate").or_else(|| value("--state")) {
            let new = states.split(',').any(|s| s == "NEW");
            cannot |= new == neg;
        }
        let mut names_port = None;
        for flag in ["--dport", "--dports", "--destination-port"] {
            if let Some((neg, ports)) = value(flag) {
                let hit = ports.split(',').any(|item| {
                    let (a, b) = item.split_once(':').unwrap_or((item, item));
                    matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&packet.port))
                });
                if hit && !neg {
                    names_port = Some(format!("{flag} {ports}"));
                } else {
                    cannot |= hit == neg;
                }
            }
        }
        for flag in [
            "--sport",
            "--sports",
            "--mark",
            "--uid-owner",
            "--src-type",
            "--dst-type",
        ] {
            if let Some((neg, v)) = value(flag) {
                if flag == "--dst-type" && v == "LOCAL" {
                    cannot |= neg;
                    continue;
                }
                maybe.push(format!("{}{flag} {v}", if neg { "! " } else { "" }));
            }
        }
        if cannot {
            continue;
        }
        let target = (chain.0.clone(), jump.to_owned());
        if by_chain.contains_key(&target) {
            walk_iptables(
                tool,
                &target,
                by_chain,
                packet,
                &maybe,
                seen,
                rules,
                loopback_accepted,
            );
            continue;
        }
        if names_port.is_some() {
            let forward = (jump == "DNAT")
                .then(|| value("--to-destination").map(|(_, to)| to.to_owned()))
                .flatten();
            rules.push(Rule {
                text: format!("{tool}: {line}"),
                verdict: if forward.is_some() {
                    "dnat".into()
                } else {
                    jump.to_ascii_lowercase()
                },
                policy: false,
                condition: (!maybe.is_empty()).then(|| maybe.join(" and ")),
                forward,
            });
        }
    }
}

/// `10.0.0.0/8`, `127.0.0.1/32` or a bare address.
fn cidr_contains(net: &str, addr: IpAddr) -> bool {
    let (base, len) = net.split_once('/').unwrap_or((net, ""));
    let Ok(base) = base.parse::<IpAddr>() else {
        return false;
    };
    let len = len.parse().unwrap_or(if base.is_ipv4() { 32 } else { 128 });
    in_prefix(addr, base, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback(port: u16) -> Packet {
        Packet {
            dst: vec!["127.0.0.1".parse().unwrap()],
            port,
        }
    }

    fn tcp_dport(port: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": port}})
    }

    fn input_chain() -> serde_json::Value {
        serde_json::json!({"chain": {"family": "inet", "table": "filter", "name": "input", "hook": "input", "policy": "accept"}})
    }

    fn rule(chain: &str, expr: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"rule": {"family": "inet", "table": "filter", "chain": chain, "expr": expr}})
    }

    #[test]
    fn nft_rules_that_name_the_port_are_found() {
        let ruleset = serde_json::json!({"nftables": [
            {"metainfo": {"json_schema_version": 1}},
            {"chain": {"family": "inet", "table": "filter", "name": "input", "hook": "input", "policy": "drop"}},
            rule("input", serde_json::json!([tcp_dport(5173.into()), {"reject": null}])),
            rule("input", serde_json::json!([tcp_dport(serde_json::json!({"set": [22, {"range": [8000, 8100]}]})), {"accept": null}])),
            rule("input", serde_json::json!([{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "sport"}}, "right": 5173}}, {"drop": null}])),
        ]});
        let (rules, lo) = nft_rules(&ruleset, &loopback(5173));
        let verdicts: Vec<(&str, bool)> = rules
            .iter()
            .map(|r| (r.verdict.as_str(), r.blocks()))
            .collect();
        assert_eq!(verdicts, [("drop", false), ("reject", true)], "{rules:?}");
        assert!(
            rules[1].text.contains("tcp dport 5173 reject"),
            "{}",
            rules[1].text
        );
        assert_eq!(rules[1].condition, None);
        assert!(!lo);
        assert_eq!(nft_rules(&ruleset, &loopback(8050)).0[1].verdict, "accept");

        let negated = serde_json::json!({"nftables": [
            input_chain(),
            rule("input", serde_json::json!([{"match": {"op": "!=", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"drop": null}])),
            rule("input", serde_json::json!([{"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 22}}, {"drop": null}])),
            rule("input", serde_json::json!([{"match": {"op": "==", "left": {"meta": {"key": "iif"}}, "right": "lo"}}, {"accept": null}])),
        ]});
        let (rules, lo) = nft_rules(&negated, &loopback(22));
        assert!(
            rules.is_empty(),
            "`!=` and UDP rules do not drop TCP to 22: {rules:?}"
        );
        assert!(lo, "iif lo accept is seen");
    }

    #[test]
    fn a_rule_that_cannot_match_the_probe_is_not_blamed_and_one_that_may_is_conditional() {
        let saddr = |net: &str, len: u64| serde_json::json!({"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": net, "len": len}}}});
        let ruleset = serde_json::json!({"nftables": [
            input_chain(),
            // ip saddr 10.0.0.0/8 tcp dport 8080 drop: not from loopback.
            rule("input", serde_json::json!([saddr("10.0.0.0", 8), tcp_dport(8080.into()), {"drop": null}])),
            // iifname "eth0" tcp dport 8080 drop: not on lo.
            rule("input", serde_json::json!([{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}}, tcp_dport(8080.into()), {"drop": null}])),
            // ct mark 0x1 tcp dport 8080 reject: cannot be told.
            rule("input", serde_json::json!([{"match": {"op": "==", "left": {"ct": {"key": "mark"}}, "right": 1}}, tcp_dport(8080.into()), {"reject": null}])),
            // ip saddr 127.0.0.0/8 tcp dport 8080 drop: applies.
            rule("input", serde_json::json!([saddr("127.0.0.0", 8), tcp_dport(8080.into()), {"drop": null}])),
            // A chain with another hook (forward) never sees the packet.
            {"chain": {"family": "inet", "table": "filter", "name": "fwd", "hook": "forward", "policy": "accept"}},
            rule("fwd", serde_json::json!([tcp_dport(8080.into()), {"drop": null}])),
            // An ip6 table does not see IPv4.
            {"chain": {"family": "ip6", "table": "f6", "name": "input", "hook": "input", "policy": "accept"}},
            {"rule": {"family": "ip6", "table": "f6", "chain": "input", "expr": [tcp_dport(8080.into()), {"drop": null}]}},
        ]});
        let (rules, _) = nft_rules(&ruleset, &loopback(8080));
        assert_eq!(rules.len(), 2, "{rules:#?}");
        assert_eq!(rules[0].condition.as_deref(), Some("ct mark == 1"));
        assert!(rules[0].blocks());
        assert_eq!(rules[1].condition, None);
        assert!(
            rules[1].text.contains("ip saddr == 127.0.0.0/8")
                || rules[1].text.contains("tcp dport 8080 drop"),
            "{}",
            rules[1].text
        );
        // The same rules for a client on 10.1.2.3 (an interface address): the saddr rule applies.
        let lan = Packet {
            dst: vec!["10.1.2.3".parse().unwrap()],
            port: 8080,
        };
        let (rules, _) = nft_rules(&ruleset, &lan);
        assert!(
            rules.iter().any(|r| r.text.contains("10.0.0.0/8")),
            "{rules:#?}"
        );
    }

    #[test]
    fn jumps_are_followed_and_dnat_says_where_the_port_goes() {
        // Docker's shape: nat OUTPUT jumps to DOCKER for local destinations outside 127/8.
        let ruleset = serde_json::json!({"nftables": [
            {"chain": {"family": "ip", "table": "nat", "name": "OUTPUT", "hook": "output", "type": "nat", "policy": "accept"}},
            {"chain": {"family": "ip", "table": "nat", "name": "DOCKER"}},
            {"rule": {"family": "ip", "table": "nat", "chain": "OUTPUT", "expr": [
                {"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": {"prefix": {"addr": "127.0.0.0", "len": 8}}}},
                {"match": {"op": "==", "left": {"fib": {"flags": ["daddr"], "result": "type"}}, "right": "local"}},
                {"jump": {"target": "DOCKER"}}]}},
            {"rule": {"family": "ip", "table": "nat", "chain": "DOCKER", "expr": [
                {"match": {"op": "!=", "left": {"meta": {"key": "iifname"}}, "right": "docker0"}},
                tcp_dport(8080.into()),
                {"dnat": {"addr": "172.17.0.2", "port": 80}}]}},
            // A chain nothing jumps to is never reached.
            {"chain": {"family": "inet", "table": "filter", "name": "orphan"}},
            rule("orphan", serde_json::json!([tcp_dport(8080.into()), {"drop": null}])),
        ]});
        let lan = Packet {
            dst: vec!["192.0.2.7".parse().unwrap()],
            port: 8080,
        };
        let (rules, _) = nft_rules(&ruleset, &lan);
        assert_eq!(rules.len(), 1, "{rules:#?}");
        assert_eq!(rules[0].verdict, "dnat");
        assert_eq!(rules[0].forward.as_deref(), Some("172.17.0.2:80"));
        assert!(
            rules[0].text.contains("dnat to 172.17.0.2:80"),
            "{}",
            rules[0].text
        );
        // Loopback destinations do not take the jump (docker-proxy serves them).
        assert!(nft_rules(&ruleset, &loopback(8080)).0.is_empty());
    }

    #[test]
    fn iptables_rules_are_judged_the_same_way() {
        let text = "*filter\n-P INPUT ACCEPT\n-A INPUT -p tcp -m tcp --dport 5173 -j REJECT --reject-with icmp-port-unreachable\n\
                    -A INPUT -p tcp -m multiport --dports 80,8000:8100 -j DROP\n-A INPUT -p tcp --dport 51730 -j DROP\n\
                    -A INPUT -s 10.0.0.0/8 -p tcp --dport 5173 -j DROP\n-A INPUT -i eth0 -p tcp --dport 5173 -j DROP\n\
                    -A INPUT -j CUSTOM\n-A CUSTOM -p tcp --dport 5173 -m mark --mark 0x1 -j DROP\n\
                    *nat\n-A OUTPUT -p tcp --dport 5173 -j DNAT --to-destination 172.17.0.3:80\n";
        let (rules, lo) = iptables_rules("iptables", text, &loopback(5173), false);
        let summary: Vec<(&str, Option<&str>)> = rules
            .iter()
            .map(|r| (r.verdict.as_str(), r.condition.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                ("reject", None),
                ("drop", Some("--mark 0x1")),
                ("dnat", None)
            ],
            "{rules:#?}"
        );
        assert_eq!(rules[2].forward.as_deref(), Some("172.17.0.3:80"));
        assert!(!lo);
        let (policy, _) =
            iptables_rules("iptables", "*filter\n-P INPUT DROP\n", &loopback(1), false);
        assert!(policy[0].text.contains("dropped") && !policy[0].blocks());
        let (rules, lo) = iptables_rules(
            "iptables",
            "*filter\n-A INPUT -i lo -j ACCEPT\n-A INPUT -p tcp ! --dport 22 -j DROP\n-A INPUT -p udp --dport 22 -j DROP\n",
            &loopback(22),
            false,
        );
        assert!(rules.is_empty(), "{rules:?}");
        assert!(lo);
        assert!(
            iptables_rules("ip6tables", text, &loopback(5173), true)
                .0
                .is_empty(),
            "IPv6 rules do not see IPv4"
        );
    }

    #[test]
    fn legacy_iptables_is_read_beside_nft() {
        let run = |tool: &str, args: &[&str]| -> Result<String, RunError> {
            match (tool, args) {
                ("nft", _) => Ok(r#"{"nftables": []}"#.into()),
                ("iptables-legacy", [_, "filter", _]) => {
                    Ok("-P INPUT ACCEPT\n-A INPUT -p tcp --dport 9000 -j DROP\n".into())
                }
                ("iptables-legacy", _) => Ok(String::new()),
                _ => Err(RunError::Missing),
            }
        };
        let Firewall::Read { tool, rules, .. } = read(&loopback(9000), &run) else {
            panic!("read");
        };
        assert_eq!(tool, "nft + iptables-legacy");
        assert_eq!(rules.len(), 1);
        assert!(rules[0].blocks());
        // An empty legacy table is not named.
        let Firewall::Read { tool, .. } = read(&loopback(9001), &run) else {
            panic!("read");
        };
        assert_eq!(tool, "nft");
    }
}
