//! `portscope who <port>`: every socket on a port and, for each owner, what it is, where it runs
//! and what started it.

use portscope_shared::{Client, OwnerStatus, WhoReport};

use portscope_core::collector::Collector;
use portscope_core::model::State;
use portscope_core::os::Platform;

/// Builds the report from one scan.
pub fn report<P: Platform>(collector: &mut Collector<P>, state: &State, port: u16) -> WhoReport {
    let sockets: Vec<_> = state
        .sockets()
        .filter(|s| s.local_port == port)
        .cloned()
        .collect();
    let mut pids: Vec<u32> = sockets
        .iter()
        .flat_map(|s| s.pids.iter().copied())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    let clients = state
        .local_clients(&[port], &pids)
        .map(|socket| Client {
            process: socket
                .pids
                .iter()
                .find(|p| !pids.contains(p))
                .and_then(|p| state.processes.get(p))
                .cloned(),
            socket: socket.clone(),
        })
        .collect();
    let owners = pids
        .into_iter()
        .filter_map(|pid| collector.owner(pid))
        .collect();
    let mut hints = Vec::new();
    let hidden: Vec<String> = sockets
        .iter()
        .filter(|s| s.owner == OwnerStatus::Hidden)
        .map(|s| {
            s.uid
                .map_or_else(|| "unknown uid".into(), |uid| format!("uid {uid}"))
        })
        .collect();
    hints.extend(hidden_hint(&hidden, port));
    WhoReport {
        port,
        sockets,
        owners,
        clients,
        hints,
    }
}

/// What to say about sockets whose owners are hidden (their uids given).
fn hidden_hint(hidden: &[String], port: u16) -> Option<String> {
    let (count, verb) = match hidden.len() {
        0 => return None,
        1 => ("1 of these sockets".to_owned(), "belongs"),
        n => (format!("{n} of these sockets"), "belong"),
    };
    Some(format!(
        "{count} {verb} to other users' processes ({}); run `sudo portscope who {port}` to see them",
        hidden.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_owners_are_counted_in_words() {
        assert_eq!(hidden_hint(&[], 80), None);
        assert_eq!(
            hidden_hint(&["uid 0".into()], 80).unwrap(),
            "1 of these sockets belongs to other users' processes (uid 0); run `sudo portscope who 80` to see them"
        );
        assert!(
            hidden_hint(&["uid 0".into(), "uid 7".into()], 80)
                .unwrap()
                .starts_with("2 of these sockets belong to")
        );
    }
}
