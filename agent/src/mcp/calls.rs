//! Each MCP tool's call: its arguments checked (a bad one is a tool error that says what was
//! expected), the question asked of the same code the CLI asks, and the answer bounded.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use rmcp::model::JsonObject;
use serde::de::DeserializeOwned;

use super::Server;
use super::live::Origin;
use super::tools::{
    DEFAULT_LIMIT, FreeParams, HistoryEvents, HistoryParams, KillParams, LsPage, LsParams,
    MAX_EDGES, MAX_LIMIT, MAX_WAIT_SECS, MAX_WHO, NoParams, PortParams, PortWait, WaitParams,
    WaitReport, WhyParams,
};
use crate::cli::{HistoryArgs, LsArgs, WaitArgs};
use crate::commands;
use portscope_core::model::State;
use portscope_doctor::{Source, kill};
use portscope_shared::{FreePorts, Graph, KillRequest, Process, SocketState};

/// Why a call was not answered.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No tool has this name (a protocol error, not the tool's).
    #[error("there is no tool `{0}`")]
    Unknown(String),
    /// `kill` without `--allow-kill` (a protocol error too: the tool is not listed).
    #[error(
        "there is no tool `kill`: it is offered only when the server runs as `portscope mcp --allow-kill`"
    )]
    NotOffered,
    /// The arguments are not what the tool takes.
    #[error("{0}")]
    Input(String),
    /// The question could not be answered (a name that does not resolve, no history, a
    /// refusal to stop a process).
    #[error("{0}")]
    Failed(String),
}

impl From<anyhow::Error> for CallError {
    fn from(e: anyhow::Error) -> Self {
        CallError::Failed(format!("{e:#}"))
    }
}

impl From<tokio::task::JoinError> for CallError {
    fn from(e: tokio::task::JoinError) -> Self {
        CallError::Failed(format!("the scan failed: {e}"))
    }
}

/// A tool's answer: its JSON and where it was read.
pub struct Answer {
    pub value: serde_json::Value,
    pub meta: Vec<(&'static str, String)>,
}

impl Answer {
    fn new(value: impl serde::Serialize, origin: Origin) -> Result<Answer, CallError> {
        let value = serde_json::to_value(value)
            .map_err(|e| CallError::Failed(format!("cannot encode the answer: {e}")))?;
        Ok(Answer {
            value,
            meta: vec![("portscope/source", origin.as_str().to_owned())],
        })
    }
}

/// Answers the call of tool `name` with `args`.
pub async fn call(server: &Server, name: &str, args: JsonObject) -> Result<Answer, CallError> {
    match name {
        "ls" => ls(server, parse(name, args)?).await,
        "who" => who(server, parse(name, args)?).await,
        "why" => why(server, parse(name, args)?).await,
        "bind" => bind(server, parse(name, args)?).await,
        "free" => free(server, parse(name, args)?).await,
        "wait" => wait(parse(name, args)?).await,
        "history" => history(parse(name, args)?).await,
        "graph" => graph(server, parse::<NoParams>(name, args)?).await,
        "kill" if server.allow_kill => stop(parse(name, args)?).await,
        "kill" => Err(CallError::NotOffered),
        _ => Err(CallError::Unknown(name.to_owned())),
    }
}

/// The arguments as the tool's type, or an error naming what it takes.
fn parse<P: DeserializeOwned>(tool: &str, args: JsonObject) -> Result<P, CallError> {
    serde_json::from_value(serde_json::Value::Object(args)).map_err(|e| {
        CallError::Input(format!(
            "bad arguments for `{tool}`: {e}; its input schema (tools/list) says what it takes"
        ))
    })
}

/// A port argument, 1-65535.
fn port(what: &str, n: u32) -> Result<u16, CallError> {
    u16::try_from(n).ok().filter(|&p| p != 0).ok_or_else(|| {
        CallError::Input(format!(
            "`{what}` is a port: a number from 1 to 65535, not {n}"
        ))
    })
}

/// A count within `1..=max`, `default` when not given.
fn within<T: Copy + PartialOrd + std::fmt::Display + From<u8>>(
    what: &str,
    n: Option<T>,
    default: T,
    max: T,
) -> Result<T, CallError> {
    let n = n.unwrap_or(default);
    if n < T::from(1) || n > max {
        return Err(CallError::Input(format!(
            "`{what}` must lie between 1 and {max}, not {n}"
        )));
    }
    Ok(n)
}

async fn ls(server: &Server, p: LsParams) -> Result<Answer, CallError> {
    let port = p.port.map(|n| port("port", n)).transpose()?;
    if p.state == Some(SocketState::Unknown) {
        return Err(CallError::Input(
            "`state` is one of LISTEN, ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT1, FIN_WAIT2, \
             TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK, CLOSING or UNCONN (UDP)"
                .into(),
        ));
    }
    let limit = within("limit", p.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let (source, origin) = server.agent.source().await;
    let page =
        tokio::task::spawn_blocking(move || source.with(|state| page(state, &p, port, limit)))
            .await?;
    Answer::new(page, origin)
}

/// The sockets `p` asks for, sorted by port, `limit` of them from `p.offset`.
fn page(state: &State, p: &LsParams, port: Option<u16>, limit: usize) -> LsPage {
    let mut snapshot = state.snapshot();
    let args = LsArgs {
        json: true,
        listening: p.listening,
        port,
        pid: p.pid,
        exposed: p.exposed,
        by_project: false,
    };
    commands::ls::filter(&mut snapshot, &args);
    let processes: HashMap<u32, &Process> = snapshot.processes.iter().map(|p| (p.pid, p)).collect();
    let held_by = |pids: &[u32], test: &dyn Fn(&Process) -> bool| {
        pids.iter()
            .filter_map(|pid| processes.get(pid))
            .any(|p| test(p))
    };
    let name = p.process.as_deref().map(str::to_lowercase);
    let mut sockets: Vec<_> = snapshot
        .sockets
        .iter()
        .filter(|s| p.state.is_none_or(|state| s.state == state))
        .filter(|s| {
            name.as_deref()
                .is_none_or(|name| held_by(&s.pids, &|p| p.name.to_lowercase().contains(name)))
        })
        .filter(|s| {
            p.project.as_deref().is_none_or(|project| {
                held_by(&s.pids, &|p| {
                    p.project
                        .as_ref()
                        .is_some_and(|j| j.name.eq_ignore_ascii_case(project))
                })
            })
        })
        .cloned()
        .collect();
    sockets.sort_by(|a, b| (a.local_port, &a.id).cmp(&(b.local_port, &b.id)));
    let total = sockets.len();
    let sockets: Vec<_> = sockets.into_iter().skip(p.offset).take(limit).collect();
    let pids: BTreeSet<u32> = sockets
        .iter()
        .flat_map(|s| s.pids.iter().copied())
        .collect();
    let end = p.offset.saturating_add(sockets.len());
    LsPage {
        processes: pids
            .iter()
            .filter_map(|pid| processes.get(pid).map(|p| (*p).clone()))
            .collect(),
        sockets,
        total,
        offset: p.offset,
        next_offset: (end < total).then_some(end),
        warnings: snapshot.warnings,
        seq: state.seq,
    }
}

async fn who(server: &Server, p: PortParams) -> Result<Answer, CallError> {
    let port = port("port", p.port)?;
    let (source, origin) = server.agent.source().await;
    let mut report = commands::who::answer(port, source).await?;
    let (sockets, clients) = (report.sockets.len(), report.clients.len());
    if sockets > MAX_WHO {
        report.sockets.truncate(MAX_WHO);
        report.hints.push(format!(
            "only {MAX_WHO} of its {sockets} sockets are listed here: `ls` with port {port} pages through all"
        ));
    }
    if clients > MAX_WHO {
        report.clients.truncate(MAX_WHO);
        report.hints.push(format!(
            "only {MAX_WHO} of its {clients} local clients are listed here: `ls` with port {port} pages through all"
        ));
    }
    Answer::new(report, origin)
}

async fn why(server: &Server, p: WhyParams) -> Result<Answer, CallError> {
    let target = portscope_doctor::target::parse(&p.target).map_err(|e| CallError::Input(e.0))?;
    let ms = p.timeout_ms.unwrap_or(1000);
    if !(10..=60_000).contains(&ms) {
        return Err(CallError::Input(format!(
            "`timeout_ms` must lie between 10 and 60000, not {ms}"
        )));
    }
    let (source, origin) = server.agent.source().await;
    let (diagnosis, _) =
        commands::why::diagnose(&target, Duration::from_millis(ms), source).await?;
    Answer::new(diagnosis, origin)
}

async fn bind(server: &Server, p: PortParams) -> Result<Answer, CallError> {
    let port = port("port", p.port)?;
    let (source, origin) = server.agent.source().await;
    let (diagnosis, _) = commands::why::bind_diagnosis(port, source).await?;
    Answer::new(diagnosis, origin)
}

async fn free(server: &Server, p: FreeParams) -> Result<Answer, CallError> {
    let near = match p.near {
        Some(n) => port("near", n)?,
        None => portscope_doctor::free::DEFAULT_NEAR,
    };
    let count = within("count", p.count, 5, 100)?;
    let count = u16::try_from(count).unwrap_or(100);
    let (source, origin) = server.agent.source().await;
    let ports = commands::why::free_ports(near, count, p.consecutive, source).await?;
    Answer::new(FreePorts { ports }, origin)
}

async fn wait(p: WaitParams) -> Result<Answer, CallError> {
    if p.ports.is_empty() {
        return Err(CallError::Input(
            "`ports` must name at least one port".into(),
        ));
    }
    let ports = p
        .ports
        .iter()
        .map(|&n| port("ports", n))
        .collect::<Result<Vec<u16>, _>>()?;
    let secs = within("timeout_secs", p.timeout_secs, 30, MAX_WAIT_SECS)?;
    let args = WaitArgs {
        ports,
        timeout: Duration::from_secs(secs),
        http: p.http,
        host: p.host.unwrap_or_else(|| "localhost".into()),
    };
    let mut ready = Vec::new();
    let outcome = commands::wait::until_ready(&args, |port, addr, after| {
        ready.push(PortWait {
            port,
            ready: true,
            address: Some(addr.to_string()),
            after_ms: Some(u64::try_from(after.as_millis()).unwrap_or(u64::MAX)),
            seen: None,
            summary: None,
        });
    })
    .await?;
    let all = outcome.late.is_empty();
    ready.extend(outcome.late.into_iter().map(|late| PortWait {
        port: late.port,
        ready: false,
        address: None,
        after_ms: None,
        seen: Some(late.seen),
        summary: Some(late.summary),
    }));
    Answer::new(
        WaitReport {
            ready: all,
            ports: ready,
        },
        Origin::Connects,
    )
}

async fn history(p: HistoryParams) -> Result<Answer, CallError> {
    let moment = |what: &str, s: Option<String>| {
        s.map(|s| {
            portscope_history::moment(&s).map_err(|e| CallError::Input(format!("`{what}`: {e}")))
        })
        .transpose()
    };
    let port = p.port.map(|n| port("port", n)).transpose()?;
    let at = moment("at", p.at)?;
    if at.is_some() && port.is_none() {
        return Err(CallError::Input(
            "`at` asks who held a port at a moment: give `port` too".into(),
        ));
    }
    let args = HistoryArgs {
        port,
        since: moment("since", p.since)?,
        until: moment("until", p.until)?,
        at,
        pid: p.pid,
        limit: within("limit", p.limit, 50, 1000)?,
        json: true,
        history: None,
    };
    let found = tokio::task::spawn_blocking(move || commands::history::read(&args)).await??;
    let mut answer = Answer::new(
        HistoryEvents {
            events: found.events,
        },
        Origin::History,
    )?;
    answer
        .meta
        .push(("portscope/history_file", found.path.display().to_string()));
    if let Some(elsewhere) = found.elsewhere {
        answer.meta.push(("portscope/note", elsewhere));
    }
    Ok(answer)
}

async fn graph(server: &Server, _: NoParams) -> Result<Answer, CallError> {
    let (source, origin) = server.agent.source().await;
    let graph = tokio::task::spawn_blocking(move || source.with(commands::graph::named)).await?;
    let (graph, cut) = busiest(graph, MAX_EDGES);
    let mut answer = Answer::new(graph, origin)?;
    if let Some(note) = cut {
        answer.meta.push(("portscope/note", note));
    }
    Ok(answer)
}

/// The `max` edges with the most connections and the nodes they join, and what was left out.
fn busiest(mut graph: Graph, max: usize) -> (Graph, Option<String>) {
    let total = graph.edges.len();
    if total <= max {
        return (graph, None);
    }
    graph.edges.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| (&a.from, &a.to).cmp(&(&b.from, &b.to)))
    });
    graph.edges.truncate(max);
    let joined: BTreeSet<&str> = graph
        .edges
        .iter()
        .flat_map(|e| [e.from.as_str(), e.to.as_str()])
        .collect();
    let nodes = graph
        .nodes
        .iter()
        .filter(|n| joined.contains(n.id.as_str()))
        .cloned()
        .collect();
    graph.nodes = nodes;
    let note = format!(
        "the {max} edges with the most connections of {total}; `ls` with a port or pid shows the rest"
    );
    (graph, Some(note))
}

/// `kill`, by the dashboard's rules (see [`kill::stop_requested`]): the program's own signal,
/// the default patience, never a database forced. The assistant names no signal and no force.
async fn stop(p: KillParams) -> Result<Answer, CallError> {
    let req = KillRequest {
        pid: p.pid,
        start_time: p.start_time,
        signal: None,
        force_after_ms: None,
    };
    let report = tokio::task::spawn_blocking(move || {
        let euid = portscope_core::collector::Collector::this_machine().euid();
        let scope = kill::scope_of_this_agent(euid, false);
        kill::stop_requested(&req, &scope, None, None, &Source::scan)
    })
    .await?
    .map_err(|refusal| CallError::Failed(refused(&refusal)))?;
    Answer::new(report, Origin::Scan)
}

/// A refusal in an assistant's terms: the dashboard's own words name the dashboard.
fn refused(refusal: &kill::Refusal) -> String {
    match refusal {
        kill::Refusal::Changed(pid) => format!(
            "pid {pid} is no longer the process with that start_time (it exited and the pid was \
             reused): call `who` again for the port's current owner and its start_time"
        ),
        kill::Refusal::NotASocketOwner(pid) => format!(
            "pid {pid} holds no socket; `kill` stops only a process that holds one (as `who` \
             or `ls` shows it)"
        ),
        kill::Refusal::OtherUser { pid, name, user } => format!(
            "pid {pid} ({name}) belongs to {user}, not to the user this MCP server runs for; \
             the user can stop it from a terminal with `sudo portscope kill --pid {pid}`"
        ),
        kill::Refusal::SystemAccount { pid, name, user } => format!(
            "pid {pid} ({name}) runs as {user}, a system account: portscope stops no system \
             daemon for an assistant; the user can from a terminal with `sudo portscope kill \
             --pid {pid}`"
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portscope_shared::{GraphEdge, GraphNode, GraphNodeKind};

    fn node(id: &str) -> GraphNode {
        GraphNode {
            id: id.into(),
            kind: GraphNodeKind::Process,
            label: id.into(),
            pid: None,
            project: None,
            addr: None,
            name: None,
        }
    }

    fn edge(from: &str, to: &str, count: usize) -> GraphEdge {
        GraphEdge {
            from: from.into(),
            to: to.into(),
            port: 80,
            count,
        }
    }

    /// Twelve listeners on ports 8000..8012: even pids are node's (project `shop`), odd
    /// python3's; one more socket of node's is established.
    fn machine() -> State {
        use portscope_core::testing::{listener, process, socket, state};
        let localhost = std::net::IpAddr::from([127, 0, 0, 1]);
        let mut sockets: Vec<_> = (0..12u16)
            .map(|i| listener(localhost, 8000 + i, 100 + u32::from(i % 2)))
            .collect();
        sockets.push(portscope_shared::Socket {
            local_port: 40000,
            remote_port: Some(8000),
            pids: vec![100],
            ..socket("tcp 127.0.0.1:40000 conn", SocketState::Established)
        });
        let mut machine = state(&sockets);
        for (pid, name) in [(100, "node"), (101, "python3")] {
            let mut p = process(name, &[name]);
            p.pid = pid;
            p.project = (pid == 100).then(|| portscope_shared::Project {
                name: "shop".into(),
                root: "/src/shop".into(),
                source: portscope_shared::ProjectSource::Git,
            });
            machine.processes.insert(pid, p);
        }
        machine
    }

    fn ports(page: &LsPage) -> Vec<u16> {
        page.sockets.iter().map(|s| s.local_port).collect()
    }

    #[test]
    fn ls_pages_through_every_socket_once_in_port_order() {
        let machine = machine();
        let listening = LsParams {
            listening: true,
            ..LsParams::default()
        };
        let first = page(&machine, &listening, None, 5);
        assert_eq!(ports(&first), [8000, 8001, 8002, 8003, 8004]);
        assert_eq!((first.total, first.next_offset), (12, Some(5)));
        let next = LsParams {
            offset: 10,
            ..listening
        };
        let last = page(&machine, &next, None, 5);
        assert_eq!(ports(&last), [8010, 8011]);
        assert_eq!(last.next_offset, None, "the last page says so");
        let beyond = LsParams {
            offset: 50,
            listening: true,
            ..LsParams::default()
        };
        let empty = page(&machine, &beyond, None, 5);
        assert!(empty.sockets.is_empty() && empty.next_offset.is_none());
        assert_eq!(empty.total, 12);
        // Only the page's processes come with it.
        let one = page(&machine, &LsParams::default(), Some(8001), 5);
        let pids: Vec<u32> = one.processes.iter().map(|p| p.pid).collect();
        assert_eq!(pids, [101]);
    }

    #[test]
    fn ls_filters_by_process_state_and_project() {
        let machine = machine();
        let by = |p: LsParams| page(&machine, &p, None, 100);
        let python = by(LsParams {
            process: Some("PYTH".into()),
            ..LsParams::default()
        });
        assert_eq!(ports(&python), [8001, 8003, 8005, 8007, 8009, 8011]);
        let connected = by(LsParams {
            state: Some(SocketState::Established),
            ..LsParams::default()
        });
        assert_eq!(ports(&connected), [40000]);
        let shop = by(LsParams {
            project: Some("Shop".into()),
            listening: true,
            ..LsParams::default()
        });
        assert_eq!(ports(&shop), [8000, 8002, 8004, 8006, 8008, 8010]);
        let nobody = by(LsParams {
            project: Some("elsewhere".into()),
            ..LsParams::default()
        });
        assert_eq!(nobody.total, 0);
    }

    #[test]
    fn a_large_graph_keeps_its_busiest_edges_and_their_nodes() {
        let graph = Graph {
            nodes: ["a", "b", "c", "d"].map(node).to_vec(),
            edges: vec![edge("a", "b", 1), edge("c", "d", 9), edge("a", "d", 5)],
        };
        let (small, none) = busiest(graph.clone(), 3);
        assert_eq!((small, none), (graph.clone(), None));
        let (cut, note) = busiest(graph, 2);
        let counts: Vec<usize> = cut.edges.iter().map(|e| e.count).collect();
        assert_eq!(counts, [9, 5]);
        let ids: Vec<&str> = cut.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["a", "c", "d"], "b joins no kept edge");
        assert!(
            note.unwrap()
                .contains("2 edges with the most connections of 3")
        );
    }
}
