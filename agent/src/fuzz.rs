//! Property tests (proptest) of everything that parses input from outside: the Host and Origin
//! guards, the `why` target parser, the kernel's port-range files, `/etc/services`, and the
//! client-message decoder. Each property says what must hold for *any* input, not just the
//! examples in the modules' own tests. A failure found here becomes a regression example there.

use std::net::{IpAddr, Ipv4Addr};

use portscope_shared::ClientMessage;
use proptest::prelude::*;

use crate::doctor::target;
use crate::ports::{self, Services};
use crate::server::Guard;

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
            let quoted = target::shell_quote(&t.path);
            prop_assert!(!quoted.contains('\n'));
        }
    }

    /// A shell-quoted word reads back as itself in a POSIX shell's single-quote rules.
    #[test]
    fn shell_quoting_round_trips(word in any::<String>()) {
        let quoted = target::shell_quote(&word);
        let unquoted = if quoted.starts_with('\'') {
            // '…' pieces joined by \' : undo exactly what shell_quote does.
            quoted[1..quoted.len() - 1].replace("'\\''", "'")
        } else {
            quoted.clone()
        };
        prop_assert_eq!(unquoted, word);
    }

    /// The kernel's range files: never a panic; ranges come out ordered.
    #[test]
    fn kernel_port_files_parse_safely(text in any::<String>()) {
        if let Some(r) = ports::parse_range(&text) {
            prop_assert!(r.first <= r.last);
        }
        for r in ports::parse_reserved(&text) {
            prop_assert!(r.first <= r.last);
        }
    }

    /// `/etc/services` lines: never a panic; names come from the line that gave them.
    #[test]
    fn services_parse_safely(lines in proptest::collection::vec(any::<String>(), 0..20)) {
        let text = lines.join("\n");
        let services = Services::parse(&text);
        for port in [0u16, 22, 80, 65535] {
            if let Some(name) = services.name(port, portscope_shared::Proto::Tcp) {
                prop_assert!(text.contains(name));
            }
        }
    }

    /// Client messages: never a panic, whatever arrives.
    #[test]
    fn client_messages_decode_safely(text in prop_oneof![
        any::<String>(),
        proptest::string::string_regex("\\{\"type\":\"[A-Za-z]{0,10}\"[ -~]{0,20}\\}").expect("valid regex"),
    ]) {
        let _ = serde_json::from_str::<ClientMessage>(&text);
    }
}
