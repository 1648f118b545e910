use std::net::IpAddr;

use portscope_shared::{
    Exposure, Family, Health, OwnerStatus, Process, Project, ProjectSource, Proto, Snapshot,
    Socket, SocketState,
};

use super::*;
use crate::table::Table;

fn process(pid: u32, name: &str, project: Option<&str>) -> Process {
    Process {
        pid,
        ppid: None,
        name: name.to_owned(),
        exe: None,
        cmdline: Vec::new(),
        user: Some("ana".to_owned()),
        uid: Some(1000),
        start_time: Some(1_000),
        start_ms: None,
        stopped: false,
        cwd: None,
        host: None,
        project: project.map(|name| Project {
            name: name.to_owned(),
            root: format!("/home/ana/{name}"),
            source: ProjectSource::Git,
        }),
    }
}

fn listener(id: &str, addr: &str, port: u16, pids: &[u32]) -> Socket {
    let local_addr: IpAddr = addr.parse().unwrap();
    Socket {
        id: id.to_owned(),
        proto: Proto::Tcp,
        family: if local_addr.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        },
        local_addr,
        local_port: port,
        remote_addr: None,
        remote_port: None,
        state: SocketState::Listen,
        pids: pids.to_vec(),
        uid: Some(1000),
        owner: if pids.is_empty() {
            OwnerStatus::Hidden
        } else {
            OwnerStatus::Known
        },
        exposure: Some(Exposure::of(local_addr)),
        service: None,
        app: None,
        risk: None,
        http: false,
        host: None,
        health: None,
    }
}

fn connection(id: &str, local: u16, remote: u16, pids: &[u32]) -> Socket {
    Socket {
        remote_addr: Some("127.0.0.1".parse().unwrap()),
        remote_port: Some(remote),
        state: SocketState::Established,
        exposure: None,
        ..listener(id, "127.0.0.1", local, pids)
    }
}

fn table(sockets: Vec<Socket>, processes: Vec<Process>) -> Table {
    let mut t = Table::default();
    t.apply_snapshot(
        None,
        Snapshot {
            seq: 1,
            sockets,
            processes,
            ..Snapshot::default()
        },
        0.0,
    );
    t
}

/// A project's app (v4 and v6 on one port, one process), its database, a client connected to
/// the app, and a system daemon.
fn machine() -> Table {
    let mut vite = listener("a", "127.0.0.1", 5173, &[10]);
    vite.app = Some("Vite dev server".to_owned());
    vite.http = true;
    vite.health = Some(Health {
        up: true,
        status: Some(200),
        latency_ms: 3,
        detail: None,
    });
    let vite6 = Socket {
        app: Some("Vite dev server".to_owned()),
        http: true,
        ..listener("b", "::1", 5173, &[10])
    };
    table(
        vec![
            vite,
            vite6,
            listener("c", "0.0.0.0", 5432, &[20]),
            connection("d", 5173, 40000, &[10]),
            connection("e", 40000, 5173, &[30]),
            listener("f", "0.0.0.0", 22, &[1]),
            listener("g", "127.0.0.1", 631, &[]),
        ],
        vec![
            process(10, "node", Some("shop")),
            process(20, "postgres", Some("shop")),
            process(30, "curl", Some("shop")),
            process(1, "sshd", None),
        ],
    )
}

#[test]
fn listeners_are_grouped_by_their_owners_project() {
    let p = group(&machine(), None, "");
    assert_eq!(p.cards.len(), 1);
    let card = &p.cards[0];
    assert_eq!(
        (card.name.as_str(), card.root.as_str()),
        ("shop", "/home/ana/shop")
    );
    let ports: Vec<u16> = card.services.iter().map(|s| s.port).collect();
    assert_eq!(
        ports,
        [5173, 5432],
        "one service per port, the client's end is none"
    );
    let vite = &card.services[0];
    assert_eq!(vite.program, "Vite dev server");
    assert_eq!(vite.addresses, ["127.0.0.1", "[::1]"]);
    assert_eq!(vite.exposure, Some(Exposure::Loopback));
    assert_eq!(vite.connections, 1, "the server end of curl's connection");
    assert_eq!(vite.open_url().as_deref(), Some("http://localhost:5173/"));
    assert_eq!(vite.owners, "node (pid 10)");
    let pg = &card.services[1];
    assert_eq!((pg.program.as_str(), pg.connections), ("postgres", 0));
    assert_eq!(pg.exposure, Some(Exposure::All));
    assert_eq!(pg.open_url(), None, "not known to speak HTTP");
    let other: Vec<(u16, &str)> = p
        .other
        .iter()
        .map(|s| (s.port, s.program.as_str()))
        .collect();
    assert_eq!(other, [(22, "sshd"), (631, "a hidden process")]);
    assert!(p.any());
}

#[test]
fn the_filter_keeps_the_services_it_matches() {
    let t = machine();
    let only =
        |q: &str| -> Vec<u16> { group(&t, None, q).services().map(|(_, s)| s.port).collect() };
    assert_eq!(only("shop"), [5173, 5432]);
    assert_eq!(only("project:shop"), [5173, 5432]);
    assert_eq!(
        only("project:sho"),
        Vec::<u16>::new(),
        "a project term is a whole name"
    );
    assert_eq!(only("5432"), [5432], "a number is a port, exactly");
    assert_eq!(only("543"), Vec::<u16>::new());
    assert_eq!(only("vite loopback"), [5173]);
    assert_eq!(only("sshd"), [22]);
    assert_eq!(only("20"), [5432], "or a pid");
    assert!(!group(&t, None, "sshd").any(), "no project card left");
}

#[test]
fn a_project_term_matches_the_same_rows_in_the_table() {
    let mut t = machine();
    let card = group(&t, None, "").cards[0].clone();
    t.set_view(&crate::table::View {
        query: card.filter(),
        ..crate::table::View::default()
    });
    let (shown, _) = t.shown_counts();
    let mut ports: Vec<u16> = t
        .shown_rows(0, shown)
        .map(|r| r.socket.local_port)
        .collect();
    ports.sort_unstable();
    // The project's listeners (Vite on two addresses, PostgreSQL), Vite's end of curl's
    // connection and curl's end (curl is in the project too); not sshd's nor the hidden one.
    assert_eq!(ports, [5173, 5173, 5173, 5432, 40000]);
}

#[test]
fn a_failed_check_on_any_address_is_the_services_health() {
    let mut t = machine();
    let mut sockets: Vec<Socket> = t.rows.values().map(|r| r.socket.clone()).collect();
    for s in &mut sockets {
        if s.id == "b" {
            s.health = Some(Health {
                up: false,
                status: Some(500),
                latency_ms: 2,
                detail: None,
            });
        }
    }
    let procs = ["node", "postgres", "curl", "sshd"];
    t = table(
        sockets,
        [10, 20, 30, 1]
            .iter()
            .zip(procs)
            .map(|(pid, name)| process(*pid, name, (*pid != 1).then_some("shop")))
            .collect(),
    );
    let p = group(&t, None, "");
    let vite = &p.cards[0].services[0];
    assert_eq!(health_text(vite.health.as_ref()), "answers 500");
}

#[test]
fn watched_services_report_closing_coming_back_and_health() {
    let before = group(&machine(), None, "");
    let mut watch = Watch::default();
    watch.projects.insert("shop".to_owned());
    // The database closes; Vite starts answering 500.
    let mut t = machine();
    let mut sockets: Vec<Socket> = t
        .rows
        .values()
        .map(|r| r.socket.clone())
        .filter(|s| s.local_port != 5432)
        .collect();
    for s in &mut sockets {
        if s.id == "a" {
            s.health = Some(Health {
                up: false,
                status: Some(500),
                latency_ms: 2,
                detail: None,
            });
        }
    }
    t = table(
        sockets,
        vec![
            process(10, "node", Some("shop")),
            process(30, "curl", Some("shop")),
            process(1, "sshd", None),
        ],
    );
    let after = group(&t, None, "");
    let said: Vec<(String, bool)> = changes(&before, &after, &watch)
        .into_iter()
        .map(|c| (c.text, c.bad))
        .collect();
    assert_eq!(
        said,
        [
            ("postgres on :5432 closed".to_owned(), true),
            ("Vite dev server on :5173 answers 500".to_owned(), true),
        ],
    );
    // And back: the database returns, Vite answers again.
    let back: Vec<String> = changes(&after, &before, &watch)
        .into_iter()
        .map(|c| c.text)
        .collect();
    assert_eq!(
        back,
        [
            "Vite dev server on :5173 answers again",
            "postgres on :5432 is back"
        ]
    );
    // Nothing is said of what nobody watches, nor twice of what stays down.
    assert!(changes(&before, &after, &Watch::default()).is_empty());
    assert!(changes(&after, &after, &watch).is_empty());
    // A single port watched: only its changes.
    let one = Watch {
        services: [ServiceKey {
            host: None,
            proto: Proto::Tcp,
            port: 5432,
        }]
        .into(),
        ..Watch::default()
    };
    let said: Vec<String> = changes(&before, &after, &one)
        .into_iter()
        .map(|c| c.text)
        .collect();
    assert_eq!(said, ["postgres on :5432 closed"]);
}

#[test]
fn a_watched_server_that_exits_is_closed_once_though_its_listener_outlives_it_a_moment() {
    let mut watch = Watch::default();
    watch.projects.insert("shop".to_owned());
    let running = group(&machine(), None, "");
    // Its owner gone, the kernel still lists the listener for a tick.
    let sockets = |owned: bool| -> Vec<Socket> {
        let mut pg = listener("c", "0.0.0.0", 5432, &[20]);
        if !owned {
            pg.pids.clear();
            pg.owner = OwnerStatus::None;
        }
        vec![pg]
    };
    let procs = vec![process(20, "postgres", Some("shop"))];
    let exiting = group(&table(sockets(false), procs.clone()), None, "");
    let gone = group(&table(Vec::new(), procs.clone()), None, "");
    let said = |a: &Projects, b: &Projects| -> Vec<String> {
        changes(a, b, &watch).into_iter().map(|c| c.text).collect()
    };
    assert!(
        said(&running, &exiting).contains(&"postgres on :5432 closed".to_owned()),
        "{:?}",
        said(&running, &exiting)
    );
    assert!(said(&exiting, &gone).is_empty(), "said once");
    let back = group(&table(sockets(true), procs), None, "");
    assert_eq!(said(&gone, &back), ["postgres on :5432 is back"]);
}

#[test]
fn the_watch_list_survives_its_stored_form() {
    let watch = Watch {
        projects: ["shop".to_owned(), "web app@feature".to_owned()].into(),
        services: [
            ServiceKey {
                host: None,
                proto: Proto::Tcp,
                port: 5173,
            },
            ServiceKey {
                host: Some("build-box".to_owned()),
                proto: Proto::Udp,
                port: 53,
            },
        ]
        .into(),
    };
    assert_eq!(Watch::from_text(&watch.to_text()), watch);
    assert_eq!(
        Watch::from_text("port - sctp 1\nport x\nnonsense\nport - tcp 99999"),
        Watch::default(),
        "lines it does not understand are dropped"
    );
}

#[test]
fn uptimes_read_as_people_say_them() {
    assert_eq!(uptime(0.0, 42_000.0), "up 42 s");
    assert_eq!(uptime(0.0, 5.0 * 60_000.0), "up 5 min");
    assert_eq!(uptime(0.0, 3.5 * 3_600_000.0), "up 3 h 30 min");
    assert_eq!(uptime(0.0, 50.0 * 3_600_000.0), "up 2 d 2 h");
    assert_eq!(uptime(10.0, 0.0), "up 0 s", "a clock behind the agent's");
}

#[test]
fn many_owners_are_named_once_per_program_with_their_first_pids() {
    let procs: Vec<Process> = [
        (10, "nginx"),
        (11, "nginx"),
        (12, "nginx"),
        (13, "nginx"),
        (14, "nginx"),
        (20, "php-fpm"),
    ]
    .iter()
    .map(|&(pid, name)| process(pid, name, None))
    .collect();
    let refs: Vec<&Process> = procs.iter().collect();
    assert_eq!(
        owners_text(&refs),
        "nginx (pids 10, 11, 12 and 2 more), php-fpm (pid 20)"
    );
    assert_eq!(owners_text(&refs[..2]), "nginx (pids 10, 11)");
    assert_eq!(owners_text(&[]), "");
}

/// A failure belongs to the project of the process that failed and to the holders' projects;
/// it is news for a watched project, or a watched port, and for nobody else.
#[test]
fn a_failure_is_its_projects_and_news_when_they_are_watched() {
    let e = portscope_shared::Event {
        time: "2026-11-29T14:02:03Z".into(),
        since: None,
        kind: portscope_shared::EventKind::BindFailed,
        proto: Proto::Tcp,
        family: portscope_shared::Family::Ipv4,
        local_addr: "0.0.0.0".parse().unwrap(),
        local_port: 3000,
        remote_addr: None,
        remote_port: None,
        pid: Some(4300),
        process: Some("node".into()),
        cmdline: vec![],
        user: None,
        cwd: None,
        exe: None,
        start_time: None,
        start_ms: None,
        app: None,
        health: None,
        project: Some("shop-web".into()),
        error: Some("EADDRINUSE (address already in use)".into()),
        holders: vec![portscope_shared::Holder {
            proto: Proto::Tcp,
            local_addr: "127.0.0.1".parse().unwrap(),
            local_port: 3000,
            state: None,
            pids: vec![99],
            process: Some("python3".into()),
            start_time: None,
            project: Some("shop-api".into()),
        }],
        count: Some(1),
        fix: None,
        brief: false,
    };
    assert!(failure_in(&e, "shop-web") && failure_in(&e, "shop-api"));
    assert!(!failure_in(&e, "blog"));
    let mut watch = Watch::default();
    assert_eq!(failure_change(&e, &watch, 0), None);
    watch.projects.insert("shop-api".into());
    let change = failure_change(&e, &watch, 0).expect("news for a watched holder's project");
    assert!(change.bad && change.text.starts_with("node (pid 4300) could not bind"));
    assert_eq!(change.key.port, 3000);
    let mut by_port = Watch::default();
    by_port.services.insert(ServiceKey {
        host: None,
        proto: Proto::Tcp,
        port: 3000,
    });
    assert!(failure_change(&e, &by_port, 0).is_some());
    let mut opened = e.clone();
    opened.kind = portscope_shared::EventKind::Opened;
    assert!(!failure_in(&opened, "shop-web"));
    assert_eq!(failure_change(&opened, &watch, 0), None);
}
