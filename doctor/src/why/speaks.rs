//! What a listener speaks, as far as portscope may tell without sending anything: the
//! protocol knowledge `why` asks before it probes (an HTTP request to Redis or PostgreSQL is
//! logged as an attack or an error), and what a program logs of a bare connect.

use portscope_shared::SocketState;

use super::Facts;

/// What the listener on a port speaks, as far as portscope may tell without sending anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Speaks {
    /// A program known to serve HTTP, or a listener that answered HTTP before.
    Http,
    /// A proxy that can relay any protocol (nginx's `stream`, HAProxy, Envoy, …) that has not
    /// answered HTTP yet: it is listened to for a greeting and sent nothing, unless asked with
    /// an `http://` URL. Why, for the answer.
    Proxy(String),
    /// A program (or, when its program is unknown, a port) known for a protocol that is not
    /// HTTP: why nothing will be sent.
    Other(String),
    Unknown,
}

/// Decides from the listeners' programs: a recognised program's protocol first; when no owner
/// is recognised (another user's process, a port forwarder such as `docker-proxy`), the
/// protocol of the port's usual program, since an HTTP request to Redis or PostgreSQL is logged
/// as an attack or an error.
pub fn speaks(facts: &Facts, port: u16) -> Speaks {
    use portscope_core::ports::{Identity, identify};
    let owners = facts
        .sockets
        .iter()
        .filter(|s| s.local_port == port && s.state == SocketState::Listen)
        .flat_map(|s| s.pids.iter().filter_map(|p| facts.processes.get(p)));
    // What a listener of the port answered before (`why` heard it answer HTTP).
    let answered_http = facts
        .sockets
        .iter()
        .any(|s| s.local_port == port && s.state == SocketState::Listen && s.http);
    let mut proxy = None;
    for owner in owners {
        match identify(Some(owner), port) {
            Identity::Program(app) if app.protocol.is_some() => {
                return Speaks::Other(format!(
                    "{} (pid {}) speaks {}, not HTTP",
                    app.name,
                    owner.pid,
                    app.protocol.unwrap_or_default()
                ));
            }
            Identity::Program(app) if app.http => return Speaks::Http,
            Identity::Program(app) if app.proxy => {
                proxy = proxy.or(Some((app.name, owner.pid)));
            }
            _ => {}
        }
    }
    if answered_http {
        return Speaks::Http;
    }
    if let Some((name, pid)) = proxy {
        return Speaks::Proxy(format!(
            "{name} (pid {pid}) can relay any protocol here (a `stream` block in front of Redis, \
             say), so it was sent no HTTP request; ask with http://HOST:{port}/ to check HTTP"
        ));
    }
    match identify(None, port) {
        Identity::PortGuess(app) if app.protocol.is_some() => Speaks::Other(format!(
            "its program is not recognised, and port {port} is usually {}, which speaks {}, not HTTP",
            app.name,
            app.protocol.unwrap_or_default()
        )),
        _ => Speaks::Unknown,
    }
}

/// What a listener's program logs of a bare connect and close, when it logs one (sshd's
/// "kex_exchange_identification: Connection closed by remote host"), as evidence.
pub(super) fn logs_connect(facts: &Facts, port: u16) -> Option<String> {
    facts
        .sockets
        .iter()
        .filter(|s| s.local_port == port && s.state == SocketState::Listen)
        .flat_map(|s| s.pids.iter().filter_map(|p| facts.processes.get(p)))
        .find_map(|owner| {
            let app = portscope_core::ports::identify(Some(owner), port).program()?;
            app.logs_connect
                .map(|what| format!("{} logs even this connect and close: {what}", app.name))
        })
}
