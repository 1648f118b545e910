//! Whether the dashboard offers to stop a process, and why not: the agent's own rule
//! ([`KillScope`], from its `Hello`) applied before asking, so that a disabled "Stop process"
//! says why instead of failing after a confirmation.

use portscope_shared::{KillBar, KillScope};

/// Why this agent will not stop the process of `uid` (`user` its name, `pid` for the command to
/// run instead), in a sentence; `None` when it will. An agent that sent no scope (an older one)
/// is asked, and answers for itself.
pub fn refusal(
    scope: Option<&KillScope>,
    uid: Option<u32>,
    user: Option<&str>,
    pid: u32,
) -> Option<String> {
    let who = match (user, uid) {
        (Some(user), _) => user.to_owned(),
        (None, Some(uid)) => format!("uid {uid}"),
        (None, None) => "a user this agent cannot name".to_owned(),
    };
    match scope?.refuses(uid)? {
        KillBar::SystemAccount => Some(format!(
            "It runs as {who}, a system account: this agent runs as root and does not stop \
             system daemons. Run `sudo portscope kill --pid {pid}` in a terminal, or start \
             portscope with --allow-kill-system."
        )),
        KillBar::OtherUser => Some(format!(
            "It belongs to {who}, not to the user who started portscope. Run `sudo portscope \
             kill --pid {pid}` in a terminal."
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT_BY_SUDO: KillScope = KillScope {
        uid: Some(1000),
        root: true,
        first_user_uid: 1000,
        allow_system: false,
    };

    #[test]
    fn a_daemon_or_another_users_process_is_refused_with_what_to_do_instead() {
        let nginx = refusal(Some(&ROOT_BY_SUDO), Some(33), Some("www-data"), 812).unwrap();
        assert!(
            nginx.starts_with("It runs as www-data, a system account"),
            "{nginx}"
        );
        assert!(nginx.contains("sudo portscope kill --pid 812"), "{nginx}");
        assert!(nginx.contains("--allow-kill-system"), "{nginx}");
        let other = refusal(Some(&ROOT_BY_SUDO), Some(1001), None, 7).unwrap();
        assert!(
            other.starts_with("It belongs to uid 1001, not to"),
            "{other}"
        );
        assert_eq!(
            refusal(Some(&ROOT_BY_SUDO), Some(1000), Some("dev"), 7),
            None
        );
        // An older agent says nothing of its rule: the page offers, the agent decides.
        assert_eq!(refusal(None, Some(0), Some("root"), 7), None);
        let told = KillScope {
            allow_system: true,
            ..ROOT_BY_SUDO
        };
        assert_eq!(refusal(Some(&told), Some(0), Some("root"), 7), None);
    }
}
