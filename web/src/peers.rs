//! A hub's peers as the header shows them: each peer's status pill says what the hub knows
//! of its link (`GET /api/v1/hosts`), not how this page's own stream is doing — a page whose
//! relay is reconnecting must not show a peer the hub reaches as "connecting", nor a peer the
//! hub cannot reach as anything but "unreachable".

use portscope_shared::{Host, HostStatus};

/// A peer's pill: (class, text, explanation on hover). `relay_live` is whether this page's own
/// stream of the peer is live (`None`: the page has none); `last_live` the time the hub last
/// had it live, as the browser writes times.
pub fn pill(
    host: &Host,
    relay_live: Option<bool>,
    last_live: Option<String>,
) -> (&'static str, String, String) {
    let (class, text) = match host.status {
        HostStatus::Live => ("status live", "live".to_owned()),
        HostStatus::Connecting | HostStatus::Unknown => {
            ("status connecting", "connecting…".to_owned())
        }
        HostStatus::Unreachable => ("status down", "unreachable".to_owned()),
        HostStatus::Refused => (
            "status error",
            host.detail.clone().unwrap_or_else(|| "refused".into()),
        ),
        HostStatus::VersionMismatch => ("status error", "version mismatch".to_owned()),
    };
    let mut why: Vec<String> = Vec::new();
    if let Some(detail) = &host.detail {
        why.push(detail.clone());
    }
    if host.status != HostStatus::Live {
        why.push(match last_live {
            Some(at) => format!("its rows are as of {at}, when it was last live"),
            None => "never live since the hub started".to_owned(),
        });
    }
    if host.status == HostStatus::Live && relay_live == Some(false) {
        why.push("the hub reaches it; this page's stream of it is reconnecting".to_owned());
    }
    if let Some(url) = &host.url {
        why.push(url.clone());
    }
    if let (Some(name), Some(version)) = (&host.hostname, &host.agent_version) {
        why.push(format!("{name}, portscope {version}"));
    }
    (class, text, why.join(" · "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(status: HostStatus) -> Host {
        Host {
            name: "build-box".into(),
            local: false,
            url: Some("https://192.0.2.10:7678/".into()),
            status,
            detail: None,
            hostname: Some("buildbox".into()),
            agent_version: Some("0.1.0".into()),
            last_live: None,
            sockets: 0,
            can_kill: false,
        }
    }

    #[test]
    fn the_pill_says_what_the_hub_knows_whatever_this_pages_stream_does() {
        // The hub cannot reach it: unreachable, also while this page's relay is down.
        for relay in [None, Some(false), Some(true)] {
            let (class, text, _) = pill(&host(HostStatus::Unreachable), relay, None);
            assert_eq!(
                (class, text.as_str()),
                ("status down", "unreachable"),
                "{relay:?}"
            );
        }
        // The hub reaches it: live, with this page's reconnecting stream said on hover.
        let (class, text, title) = pill(&host(HostStatus::Live), Some(false), None);
        assert_eq!((class, text.as_str()), ("status live", "live"));
        assert!(
            title.contains("this page's stream of it is reconnecting"),
            "{title}"
        );
        let (_, _, title) = pill(&host(HostStatus::Live), Some(true), None);
        assert!(!title.contains("reconnecting"), "{title}");
        // Refused, with the hub's reason as its text; when it was last live on hover.
        let mut refused = host(HostStatus::Refused);
        refused.detail = Some("refused: token".into());
        let (class, text, title) = pill(&refused, Some(true), Some("12:00:00".into()));
        assert_eq!((class, text.as_str()), ("status error", "refused: token"));
        assert!(title.contains("its rows are as of 12:00:00"), "{title}");
    }
}
