//! What a hub keeps of a peer, bounded by bytes: every string a peer sends is capped as the
//! hub's own scans cap them (command lines at [`MAX_CMDLINE_BYTES`], other text at
//! [`MAX_TEXT`], warnings as the collector's), and the state it keeps of one peer is weighed,
//! so that a peer past the budget (`--peer-max-size`, 64 MB by default) is refused with a
//! status that says so, whatever it sends.

use portscope_shared::{Process, ServerMessage, Socket};

use portscope_core::collector::{cap_cmdline, cap_warnings};
use portscope_core::model::State;

/// Longest other text kept of a peer's socket or process (a name, a path, a label).
pub const MAX_TEXT: usize = 4 << 10;

/// Caps every string of a message from a peer, in place.
pub fn cap(message: &mut ServerMessage) {
    match message {
        ServerMessage::Snapshot(s) => {
            s.sockets.iter_mut().for_each(cap_socket);
            s.processes.iter_mut().for_each(cap_process);
            cap_warnings(&mut s.warnings);
        }
        ServerMessage::SnapshotMore(part) => {
            part.sockets.iter_mut().for_each(cap_socket);
            part.processes.iter_mut().for_each(cap_process);
        }
        ServerMessage::Delta(d) => {
            d.added.iter_mut().for_each(cap_socket);
            d.changed.iter_mut().for_each(cap_socket);
            d.processes.iter_mut().for_each(cap_process);
            cap_warnings(&mut d.warnings);
        }
        _ => {}
    }
}

fn cap_text(text: &mut String) {
    portscope_core::text::cap(text, MAX_TEXT);
}

fn cap_socket(s: &mut Socket) {
    cap_text(&mut s.id);
    for text in [&mut s.app, &mut s.service, &mut s.risk]
        .into_iter()
        .flatten()
    {
        cap_text(text);
    }
    if let Some(detail) = s.health.as_mut().and_then(|h| h.detail.as_mut()) {
        cap_text(detail);
    }
    s.pids.truncate(MAX_TEXT);
}

fn cap_process(p: &mut Process) {
    p.cmdline = cap_cmdline(std::mem::take(&mut p.cmdline));
    cap_text(&mut p.name);
    for text in [&mut p.exe, &mut p.user, &mut p.cwd].into_iter().flatten() {
        cap_text(text);
    }
    if let Some(project) = p.project.as_mut() {
        cap_text(&mut project.name);
        cap_text(&mut project.root);
    }
}

/// About how many bytes a state takes in memory: each socket and process, its strings and
/// lists. An estimate (allocators round up), made to be compared with a budget of megabytes.
pub fn weight(state: &State) -> u64 {
    let warnings: usize = state.warnings.iter().map(String::len).sum();
    sockets_weight(state.sockets())
        + processes_weight(state.processes.values())
        + u64::try_from(warnings).unwrap_or(u64::MAX)
}

/// The weight of some sockets (a part of a snapshot, or a state's).
pub fn sockets_weight<'a>(sockets: impl Iterator<Item = &'a Socket>) -> u64 {
    let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let bytes: usize = sockets
        .map(|s| {
            std::mem::size_of::<Socket>()
                + s.id.len() * 2
                + text(&s.app)
                + text(&s.service)
                + text(&s.risk)
                + s.pids.len() * 4
                + s.health.as_ref().map_or(0, |h| text(&h.detail) + 64)
        })
        .sum();
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

/// The weight of some processes.
pub fn processes_weight<'a>(processes: impl Iterator<Item = &'a Process>) -> u64 {
    let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let bytes: usize = processes
        .map(|p| {
            std::mem::size_of::<Process>()
                + p.cmdline.iter().map(|a| a.len() + 24).sum::<usize>()
                + p.name.len()
                + text(&p.exe)
                + text(&p.user)
                + text(&p.cwd)
                + p.project
                    .as_ref()
                    .map_or(0, |p| p.name.len() + p.root.len())
        })
        .sum();
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

/// The weight of what a message brings, before it is applied: the parts of a snapshot add up
/// until it is whole.
pub fn message_weight(message: &ServerMessage) -> u64 {
    match message {
        ServerMessage::Snapshot(s) => {
            sockets_weight(s.sockets.iter()) + processes_weight(s.processes.iter())
        }
        ServerMessage::SnapshotMore(p) => {
            sockets_weight(p.sockets.iter()) + processes_weight(p.processes.iter())
        }
        ServerMessage::Delta(d) => {
            sockets_weight(d.added.iter().chain(&d.changed)) + processes_weight(d.processes.iter())
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use portscope_shared::{Delta, Snapshot};

    use super::*;
    use portscope_core::collector::MAX_CMDLINE_BYTES;
    use portscope_core::testing::{listener, process};

    #[test]
    fn every_string_from_a_peer_is_capped_as_our_own_scans_cap_them() {
        let mut p = process("x".repeat(10 << 10).as_str(), &[]);
        p.cmdline = vec!["y".repeat(1 << 20), "z".repeat(1 << 20)];
        p.cwd = Some("/".repeat(1 << 20));
        let mut s = listener("127.0.0.1".parse().unwrap(), 80, p.pid);
        s.app = Some("a".repeat(1 << 20));
        let mut message = ServerMessage::Snapshot(Snapshot {
            seq: 1,
            sockets: vec![s.clone()],
            processes: vec![p.clone()],
            warnings: vec!["w".repeat(1 << 20); 1000],
            more: false,
        });
        cap(&mut message);
        let ServerMessage::Snapshot(snapshot) = &message else {
            unreachable!()
        };
        let p = &snapshot.processes[0];
        let cmdline: usize = p.cmdline.iter().map(String::len).sum();
        assert!(cmdline <= MAX_CMDLINE_BYTES + 64, "{cmdline}");
        assert!(
            p.cmdline.last().unwrap().starts_with("…("),
            "{:?}",
            p.cmdline.last()
        );
        assert!(p.name.len() <= MAX_TEXT + 4 && p.cwd.as_ref().unwrap().len() <= MAX_TEXT + 4);
        assert!(snapshot.sockets[0].app.as_ref().unwrap().len() <= MAX_TEXT + 4);
        assert!(snapshot.warnings.len() <= 21);
        assert!(snapshot.warnings.iter().all(|w| w.len() <= 1100));
        // A delta's too.
        let mut delta = ServerMessage::Delta(Delta {
            from_seq: 1,
            seq: 2,
            added: vec![s],
            ..Delta::default()
        });
        cap(&mut delta);
        let ServerMessage::Delta(d) = &delta else {
            unreachable!()
        };
        assert!(d.added[0].app.as_ref().unwrap().len() <= MAX_TEXT + 4);
    }

    #[test]
    fn a_state_weighs_about_what_it_holds() {
        let small =
            portscope_core::testing::state(&[listener("127.0.0.1".parse().unwrap(), 80, 1)]);
        let mut big = small.clone();
        let mut p = process("python3", &[]);
        p.cmdline = vec!["x".repeat(30 << 10)];
        for pid in 0..100 {
            big.processes.insert(pid, Process { pid, ..p.clone() });
        }
        let (light, heavy) = (weight(&small), weight(&big));
        assert!(light < 4 << 10, "{light}");
        assert!(
            (3_000_000..4_000_000).contains(&heavy),
            "100 command lines of 30 KiB: {heavy}"
        );
    }
}
