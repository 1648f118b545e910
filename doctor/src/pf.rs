//! macOS's firewalls on a connection to a local port: pf's rules (`pfctl -si` for whether it is
//! on, `pfctl -sr` for the loaded rules; both need root) and the application firewall's state
//! (`socketfilterfw --getglobalstate`), which filters only connections from other machines.
//!
//! Each pf rule is judged against the probe's packet (TCP, in and out through `lo0`): a rule on
//! another interface or for another protocol is not blamed; one whose addresses or port
//! operator portscope does not evaluate is *conditional*, with the condition shown. Compiled
//! on every system so that the parsers are tested on Linux against recorded output.

use super::firewall::{Firewall, Packet, Rule, RunError, Runner};

/// The application firewall's command-line tool.
const SOCKETFILTERFW: &str = "/usr/libexec/ApplicationFirewall/socketfilterfw";

/// Reads pf and the application firewall with the tools at hand.
pub fn read(packet: &Packet, run: Runner<'_>) -> Firewall {
    let app = run(SOCKETFILTERFW, &["--getglobalstate"])
        .ok()
        .and_then(|text| app_firewall(&text));
    let app_note = match app {
        Some(true) => "; the application firewall is on, for connections from other machines only",
        Some(false) => "; the application firewall is off",
        None => "",
    };
    let denied = |why: String| {
        Firewall::Unreadable(format!(
            "could not check: reading pf's rules needs root ({why}); run `sudo pfctl -sr | grep {}`{app_note}",
            packet.port
        ))
    };
    match run("pfctl", &["-si"]) {
        Ok(info) if pf_enabled(&info) == Some(false) => {
            return Firewall::Read {
                tool: format!("pf (disabled){app_note}"),
                rules: Vec::new(),
                loopback_accepted: false,
            };
        }
        Ok(_) => {}
        Err(RunError::Denied(why)) => return denied(why),
        Err(RunError::Missing) => {
            return Firewall::Unreadable(format!(
                "could not check: pfctl is not there to read pf's rules{app_note}"
            ));
        }
        Err(RunError::Failed(why)) => {
            return Firewall::Unreadable(format!(
                "could not check: pf's state could not be read: {why}{app_note}"
            ));
        }
    }
    match run("pfctl", &["-sr"]) {
        Ok(text) => {
            let (rules, loopback_accepted) = pf_rules(&text, packet.port);
            Firewall::Read {
                tool: format!("pf{app_note}"),
                rules,
                loopback_accepted,
            }
        }
        Err(RunError::Denied(why)) => denied(why),
        Err(RunError::Missing | RunError::Failed(_)) => Firewall::Unreadable(format!(
            "could not check: pf's rules could not be read{app_note}"
        )),
    }
}

/// `Some(true)` for "Firewall is enabled. (State = 1)", `Some(false)` for a state of 0.
pub fn app_firewall(text: &str) -> Option<bool> {
    let state = text.split("State = ").nth(1)?;
    let digit = state.trim_start().chars().next()?.to_digit(10)?;
    Some(digit != 0)
}

/// Whether pf is on, from `pfctl -si`'s `Status: Enabled for …` line.
pub fn pf_enabled(text: &str) -> Option<bool> {
    let status = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Status:"))?
        .trim();
    if status.starts_with("Enabled") {
        Some(true)
    } else if status.starts_with("Disabled") {
        Some(false)
    } else {
        None
    }
}

/// The rules of `pfctl -sr` the packet can meet that name `port` (or block everything), and
/// whether a rule passes everything on `lo0`.
pub fn pf_rules(text: &str, port: u16) -> (Vec<Rule>, bool) {
    let mut rules = Vec::new();
    let mut loopback_accepted = false;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let verdict = match words.first() {
            Some(&"pass") => "accept",
            Some(&"block") if words.contains(&"return") || words.contains(&"return-rst") => {
                "reject"
            }
            Some(&"block") => "drop",
            // scrub, anchor, nat, rdr, …: no verdict on the packet here.
            _ => continue,
        };
        let after = |key: &str| {
            words
                .iter()
                .position(|w| *w == key)
                .and_then(|i| words.get(i + 1).copied())
        };
        if let Some(interface) = after("on")
            && interface != "lo0"
            && interface != "lo"
        {
            continue;
        }
        if let Some(proto) = after("proto")
            && proto != "tcp"
            && proto != "{"
        {
            continue;
        }
        let mut conditions = Vec::new();
        for key in ["from", "to"] {
            if let Some(addr) = after(key)
                && addr != "any"
                && addr != "port"
            {
                conditions.push(format!("{key} {addr}"));
            }
        }
        let to = words.iter().position(|w| *w == "to");
        let port_spec = to.and_then(|t| {
            let rest = &words[t..];
            let p = rest.iter().position(|w| *w == "port")?;
            Some(&rest[p + 1..])
        });
        let applies = match port_spec {
            None => {
                // No port named: the rule concerns every port.
                if verdict == "accept"
                    && words.contains(&"lo0")
                    && conditions.is_empty()
                    && after("proto").is_none()
                {
                    loopback_accepted = true;
                }
                if verdict == "accept" {
                    continue;
                }
                rules.push(Rule {
                    text: format!("pf: {line}"),
                    verdict: verdict.into(),
                    policy: true,
                    condition: (!conditions.is_empty()).then(|| conditions.join(" ")),
                    forward: None,
                });
                continue;
            }
            Some(spec) => port_matches(spec, port),
        };
        match applies {
            PortMatch::No => {}
            PortMatch::Yes => rules.push(Rule {
                text: format!("pf: {line}"),
                verdict: verdict.into(),
                policy: false,
                condition: (!conditions.is_empty()).then(|| conditions.join(" ")),
                forward: None,
            }),
            PortMatch::Maybe(op) => {
                conditions.push(format!("port {op}"));
                rules.push(Rule {
                    text: format!("pf: {line}"),
                    verdict: verdict.into(),
                    policy: false,
                    condition: Some(conditions.join(" ")),
                    forward: None,
                });
            }
        }
    }
    (rules, loopback_accepted)
}

/// Whether a pf port spec (the words after `port`) names `port`.
#[derive(Debug, PartialEq, Eq)]
enum PortMatch {
    Yes,
    No,
    /// An operator not evaluated here; its text.
    Maybe(String),
}

fn port_matches(spec: &[&str], port: u16) -> PortMatch {
    let number = |w: &str| w.parse::<u16>().ok();
    match spec {
        ["=", n, ..] => match number(n) {
            Some(n) => bool_match(n == port),
            None => PortMatch::Maybe(format!("= {n}")),
        },
        ["{", rest @ ..] => {
            let items: Vec<&str> = rest.iter().take_while(|w| **w != "}").copied().collect();
            let mut maybe = Vec::new();
            for item in &items {
                let item = item.trim_end_matches(',');
                match port_matches(&[item], port) {
                    PortMatch::Yes => return PortMatch::Yes,
                    PortMatch::No => {}
                    PortMatch::Maybe(m) => maybe.push(m),
                }
            }
            if maybe.is_empty() {
                PortMatch::No
            } else {
                PortMatch::Maybe(maybe.join(", "))
            }
        }
        [range, ..] if range.contains(':') => {
            let (a, b) = range.split_once(':').unwrap_or_default();
            match (number(a), number(b)) {
                (Some(a), Some(b)) => bool_match(a <= port && port <= b),
                _ => PortMatch::Maybe((*range).to_owned()),
            }
        }
        [a, "><", b, ..] => match (number(a), number(b)) {
            (Some(a), Some(b)) => bool_match(a < port && port < b),
            _ => PortMatch::Maybe(format!("{a} >< {b}")),
        },
        [a, "<>", b, ..] => match (number(a), number(b)) {
            (Some(a), Some(b)) => bool_match(port < a || port > b),
            _ => PortMatch::Maybe(format!("{a} <> {b}")),
        },
        [op @ ("<" | "<=" | ">" | ">=" | "!="), n, ..] => match number(n) {
            Some(n) => bool_match(match *op {
                "<" => port < n,
                "<=" => port <= n,
                ">" => port > n,
                ">=" => port >= n,
                _ => port != n,
            }),
            None => PortMatch::Maybe(format!("{op} {n}")),
        },
        [n, ..] => match number(n) {
            Some(n) => bool_match(n == port),
            // A service name (`port ssh`): not looked up.
            None => PortMatch::Maybe((*n).to_owned()),
        },
        [] => PortMatch::Maybe("(none)".into()),
    }
}

fn bool_match(yes: bool) -> PortMatch {
    if yes { PortMatch::Yes } else { PortMatch::No }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sudo pfctl -sr` on macOS 14 with two rules of ours added to the default anchors.
    const PFCTL_SR: &str = "\
scrub-anchor \"com.apple/*\" all fragment reassemble
anchor \"com.apple/*\" all
pass quick on lo0 all flags S/SA keep state
block drop in quick on en0 proto tcp from any to any port = 5432
block return in proto tcp from any to any port = 8080
block drop in proto tcp from 10.0.0.0/8 to any port 3000:3010
pass in proto tcp from any to any port { 22 443 }
block drop in proto udp from any to any port = 8080
block drop in all
";

    #[test]
    fn pf_rules_name_the_port_and_skip_other_interfaces_and_protocols() {
        let (rules, lo) = pf_rules(PFCTL_SR, 8080);
        assert!(lo, "`pass quick on lo0 all` accepts loopback");
        let texts: Vec<(&str, &str, bool)> = rules
            .iter()
            .map(|r| (r.text.as_str(), r.verdict.as_str(), r.policy))
            .collect();
        assert_eq!(
            texts,
            vec![
                (
                    "pf: block return in proto tcp from any to any port = 8080",
                    "reject",
                    false
                ),
                ("pf: block drop in all", "drop", true),
            ]
        );
        assert!(rules[0].blocks() && rules[0].condition.is_none());
        // en0's rule cannot meet a packet on lo0; the UDP rule is not about TCP.
        let (rules, _) = pf_rules(PFCTL_SR, 5432);
        assert!(rules.iter().all(|r| r.policy), "{rules:?}");
    }

    #[test]
    fn ranges_lists_and_addresses_become_matches_or_conditions() {
        let (rules, _) = pf_rules(PFCTL_SR, 3005);
        let range = rules.iter().find(|r| !r.policy).unwrap();
        assert_eq!(range.condition.as_deref(), Some("from 10.0.0.0/8"));
        assert_eq!(range.verdict, "drop");
        assert!(pf_rules(PFCTL_SR, 3011).0.iter().all(|r| r.policy));
        let (rules, _) = pf_rules(PFCTL_SR, 443);
        assert_eq!(rules[0].verdict, "accept");
        assert!(!rules[0].blocks());
        assert_eq!(
            port_matches(&["ssh"], 22),
            PortMatch::Maybe("ssh".into()),
            "a service name is not guessed"
        );
        assert_eq!(port_matches(&["1024", "><", "2000"], 1500), PortMatch::Yes);
        assert_eq!(port_matches(&[">=", "1024"], 80), PortMatch::No);
    }

    #[test]
    fn pf_and_application_firewall_states() {
        // `sudo pfctl -si` (first lines) with pf off and on.
        let off = "Status: Disabled                              Debug: Urgent\n\nState Table                          Total             Rate\n";
        let on = "Status: Enabled for 0 days 00:12:09           Debug: Urgent\n";
        assert_eq!(pf_enabled(off), Some(false));
        assert_eq!(pf_enabled(on), Some(true));
        assert_eq!(pf_enabled("No ALTQ support in kernel\n"), None);
        assert_eq!(
            app_firewall("Firewall is enabled. (State = 1)\n"),
            Some(true)
        );
        assert_eq!(
            app_firewall("Firewall is disabled. (State = 0)\n"),
            Some(false)
        );
        assert_eq!(app_firewall("garbage"), None);
    }

    #[test]
    fn read_says_could_not_check_without_root_and_reads_rules_with_it() {
        let packet = Packet {
            dst: vec!["127.0.0.1".parse().unwrap()],
            port: 8080,
        };
        let no_root = |tool: &str, _: &[&str]| -> Result<String, RunError> {
            match tool {
                "pfctl" => Err(RunError::Denied("pfctl: /dev/pf: Permission denied".into())),
                _ => Ok("Firewall is enabled. (State = 1)\n".into()),
            }
        };
        let Firewall::Unreadable(why) = read(&packet, &no_root) else {
            panic!("pf needs root");
        };
        assert!(why.starts_with("could not check"), "{why}");
        assert!(why.contains("sudo pfctl -sr | grep 8080"), "{why}");
        assert!(why.contains("application firewall is on"), "{why}");
        let root = |_: &str, args: &[&str]| -> Result<String, RunError> {
            Ok(match args {
                ["-si"] => "Status: Enabled for 0 days 00:12:09\n".into(),
                ["-sr"] => PFCTL_SR.into(),
                _ => "Firewall is disabled. (State = 0)\n".into(),
            })
        };
        let Firewall::Read {
            tool,
            rules,
            loopback_accepted,
        } = read(&packet, &root)
        else {
            panic!("read as root");
        };
        assert_eq!(tool, "pf; the application firewall is off");
        assert!(loopback_accepted);
        assert_eq!(rules.iter().filter(|r| r.blocks()).count(), 1);
        let disabled = |_: &str, args: &[&str]| -> Result<String, RunError> {
            match args {
                ["-si"] => Ok("Status: Disabled\n".into()),
                ["-sr"] => panic!("no rules are read when pf is off"),
                _ => Err(RunError::Missing),
            }
        };
        assert_eq!(
            read(&packet, &disabled),
            Firewall::Read {
                tool: "pf (disabled)".into(),
                rules: Vec::new(),
                loopback_accepted: false,
            }
        );
    }
}
