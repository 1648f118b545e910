//! Whether the dashboard offers to stop a process, and why not: the agent's own rule
//! ([`KillScope`], from its `Hello`) applied before asking, so that a disabled "Stop process"
//! says why instead of failing after a confirmation.

use portscope_shared::{ApiErrorCode, KillBar, KillScope};

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

/// What the dashboard says when the agent did not stop pid `pid`, from the agent's error
/// `code` (matched, never the text) and `message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotStopped {
    /// The process is not there to stop any more: it exited, or its pid is another program's
    /// now. Nothing was sent; this is news, not a failure.
    Gone(String),
    /// The agent refused, or could not: its message says why and what to do.
    Refused(String),
}

pub fn not_stopped(code: Option<ApiErrorCode>, message: &str, pid: u32) -> NotStopped {
    match code {
        Some(ApiErrorCode::NotASocketOwner) => NotStopped::Gone(format!(
            "pid {pid} no longer holds the socket (it exited, or closed it): nothing was sent. \
             The table shows what runs now."
        )),
        Some(ApiErrorCode::NoSuchProcess) => NotStopped::Gone(format!(
            "pid {pid} has already exited: nothing was sent. The table shows what runs now."
        )),
        Some(ApiErrorCode::ProcessChanged) => NotStopped::Gone(format!(
            "pid {pid} is another program now (the one shown exited): nothing was sent. The \
             table shows what runs now."
        )),
        _ => NotStopped::Refused(message.to_owned()),
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

    #[test]
    fn a_process_gone_before_the_stop_is_news_and_a_refusal_keeps_the_agents_words() {
        assert_eq!(
            not_stopped(Some(ApiErrorCode::ProcessChanged), "pid 812 changed", 812),
            NotStopped::Gone(
                "pid 812 is another program now (the one shown exited): nothing was sent. The \
                 table shows what runs now."
                    .into()
            )
        );
        assert!(matches!(
            not_stopped(Some(ApiErrorCode::NoSuchProcess), "no such process", 812),
            NotStopped::Gone(m) if m.starts_with("pid 812 has already exited")
        ));
        assert!(matches!(
            not_stopped(Some(ApiErrorCode::NotASocketOwner), "holds no socket", 812),
            NotStopped::Gone(m) if m.starts_with("pid 812 no longer holds the socket")
        ));
        for code in [
            Some(ApiErrorCode::SystemProcess),
            Some(ApiErrorCode::Unknown),
            None,
        ] {
            assert_eq!(
                not_stopped(code, "the agent's words", 812),
                NotStopped::Refused("the agent's words".into())
            );
        }
    }
}
