//! The doctor on real servers (#10): PostgreSQL, Redis, nginx and sshd from Debian's packages, each
//! started by the test on a loopback port of its own. What is checked is what the servers
//! themselves say: their logs (no "SECURITY ATTACK", no bad startup packet, no crash recovery),
//! how they stopped, and whether they still answer. Docker's containers are named in the CLI
//! and the dashboard, and a Compose project's container gets its project's card.

use std::time::Duration;

use portscope_shared::{Diagnosis, KillOutcome, KillReport, Verdict};

use crate::support::run_cli;
use crate::support::servers::{Docker, IMAGE, Nginx, Postgres, Redis, Sshd, accepts, signal};

#[track_caller]
fn why(target: &str) -> (i32, Diagnosis) {
    let (code, out, err) = run_cli(&["why", target, "--json"]);
    let d = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("why {target} printed no Diagnosis ({e}):\n{out}\n{err}"));
    (code, d)
}

#[track_caller]
fn kill(args: &[&str]) -> (i32, Vec<KillReport>, String) {
    let mut all = vec!["kill"];
    all.extend_from_slice(args);
    all.push("--json");
    let (code, out, err) = run_cli(&all);
    let reports = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("kill {args:?} printed no reports ({e}):\n{out}\n{err}"));
    (code, reports, err)
}

fn commands(d: &Diagnosis) -> Vec<String> {
    d.checks
        .iter()
        .flat_map(|c| c.fixes.iter().filter_map(|f| f.command.clone()))
        .collect()
}

/// Sends what a careless doctor would: an HTTP request. Used to show that each log check below
/// can fail, i.e. that the server does log such a request.
fn send_http(addr: &str) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
}

#[track_caller]
fn wait_log(what: &str, log: impl Fn() -> String, needle: &str) {
    crate::support::wait_for(what, Duration::from_secs(10), || {
        log().contains(needle).then_some(())
    });
}

#[test]
fn why_sends_nothing_to_redis_or_postgresql_and_suggests_their_clients() {
    let redis = Redis::start("::1");
    let pg = Postgres::start();

    // Redis on ::1 only, asked on [::1] (connects) and on 127.0.0.1 (refused).
    let (code, d) = why(&format!("[::1]:{}", redis.port));
    assert_eq!(code, 0, "{d:#?}");
    let answer = d
        .checks
        .iter()
        .find(|c| c.id == "answer")
        .expect("an answer check");
    assert!(
        answer.title.contains("sent nothing") && answer.title.contains("Redis"),
        "{}",
        answer.title
    );
    let (code, d) = why(&format!("127.0.0.1:{}", redis.port));
    assert_eq!(code, 1);
    let cmds = commands(&d);
    assert!(
        cmds.contains(&format!("redis-cli -h ::1 -p {} ping", redis.port)),
        "{cmds:?}"
    );
    assert!(!cmds.iter().any(|c| c.contains("curl")), "{cmds:?}");

    // PostgreSQL, also when asked with an http:// URL.
    for target in [
        format!("127.0.0.1:{}", pg.port),
        format!("http://127.0.0.1:{}/", pg.port),
        format!("localhost:{}", pg.port),
    ] {
        let (code, d) = why(&target);
        assert_eq!(code, 0, "{target}: {d:#?}");
        let answer = d
            .checks
            .iter()
            .find(|c| c.id == "answer")
            .expect("an answer check");
        assert!(answer.title.contains("PostgreSQL"), "{}", answer.title);
        assert!(
            commands(&d).contains(&format!("psql -h 127.0.0.1 -p {}", pg.port)),
            "{:?}",
            commands(&d)
        );
    }

    // Each server logs a marker of the test's own after `why`'s visits: anything they logged of
    // those visits is in the logs by then.
    redis_log_marker(&format!("[::1]:{}", redis.port), &redis);
    let marker = format!("portscope-marker-{}", std::process::id());
    let mut psql = pg.session(&format!("DO $$BEGIN RAISE LOG '{marker}'; END$$"));
    let _ = psql.wait();
    wait_log("PostgreSQL to log the marker", || pg.log(), &marker);
    let (redis_log, pg_log) = (redis.log(), pg.log());
    assert!(!redis_log.contains("SECURITY ATTACK"), "{redis_log}");
    for complaint in [
        "invalid length of startup packet",
        "incomplete startup packet",
        "FATAL",
    ] {
        assert!(!pg_log.contains(complaint), "{complaint}:\n{pg_log}");
    }

    // The checks above can fail: an HTTP request is logged by both.
    send_http(&format!("[::1]:{}", redis.port));
    wait_log(
        "Redis to log the HTTP request",
        || redis.log(),
        "SECURITY ATTACK",
    );
    send_http(&format!("127.0.0.1:{}", pg.port));
    wait_log(
        "PostgreSQL to log the HTTP request",
        || pg.log(),
        "invalid length of startup packet",
    );
}

/// nginx's `stream` block in front of a real Redis: the proxy's listener is no HTTP server to
/// portscope until it answers HTTP. `why` on it listens for a greeting and sends nothing, and the
/// health checks of an agent with a dashboard open leave it alone, so Redis logs no "SECURITY
/// ATTACK" — read after a health round is known to have run (another listener's check came back)
/// and after a marker the test itself sends. The check can fail: an HTTP request sent through the
/// proxy is logged.
#[tokio::test(flavor = "multi_thread")]
async fn a_proxys_stream_to_redis_gets_no_http_request() {
    let redis = Redis::start("127.0.0.1");
    let stream_port = crate::support::free_port();
    let nginx = Nginx::start_streaming(stream_port, redis.port);
    let stream = format!("127.0.0.1:{stream_port}");
    crate::support::wait_for("the stream proxy", Duration::from_secs(20), || {
        accepts(&stream).then_some(())
    });

    let (code, d) = tokio::task::spawn_blocking({
        let stream = stream.clone();
        move || why(&stream)
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{d:#?}");
    let answer = d
        .checks
        .iter()
        .find(|c| c.id == "answer")
        .expect("an answer");
    assert!(
        answer.title.contains("sent nothing") && answer.title.contains("nginx"),
        "{}",
        answer.title
    );

    // An agent with a dashboard open, and an HTTP server whose check tells that rounds ran.
    let agent = crate::support::Agent::start();
    let _dashboard = agent.connect().await;
    let web_port = crate::support::free_port();
    let _web = crate::support::HttpServer::start(web_port);
    let res = agent.get(&format!("/api/v1/why?target={stream}"));
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body.contains("sent nothing"), "{}", res.body);
    crate::support::wait_for(
        "a health round (the HTTP server's check)",
        Duration::from_secs(30),
        || {
            let snapshot: portscope_shared::Snapshot =
                serde_json::from_str(&agent.get("/api/v1/snapshot").body).ok()?;
            let health = |port: u16| {
                snapshot
                    .sockets
                    .iter()
                    .find(|s| s.local_port == port && s.is_listening())
                    .map(|s| (s.http, s.health.is_some()))
            };
            assert_eq!(
                health(stream_port),
                Some((false, false)),
                "the proxy's listener is not taken for HTTP"
            );
            (health(web_port) == Some((true, true))).then_some(())
        },
    );
    // A marker through the proxy: once Redis logged it, anything before it is in the log.
    redis_log_marker(&stream, &redis);
    let log = redis.log();
    assert!(!log.contains("SECURITY ATTACK"), "{log}");

    // The check can fail: an HTTP request through the proxy is logged as an attack.
    send_http(&stream);
    wait_log(
        "Redis to log the HTTP request",
        || redis.log(),
        "SECURITY ATTACK",
    );
    drop(nginx);
}

/// Sends Redis, through `addr`, a command it logs (a client that sets its name, then asks
/// Redis to log through `DEBUG LOG`), and waits for the line in its log.
fn redis_log_marker(addr: &str, redis: &Redis) {
    use std::io::{Read, Write};
    let marker = format!("portscope-marker-{}", std::process::id());
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let command = format!(
        "*3\r\n$5\r\nDEBUG\r\n$3\r\nLOG\r\n${}\r\n{marker}\r\n",
        marker.len()
    );
    s.write_all(command.as_bytes()).unwrap();
    let mut buf = [0u8; 64];
    let _ = s.read(&mut buf);
    crate::support::wait_for("the marker in Redis's log", Duration::from_secs(10), || {
        redis.log().contains(&marker).then_some(())
    });
}

#[test]
fn kill_stops_postgresql_its_own_way_and_never_forces_it() {
    let mut pg = Postgres::start();
    let port = pg.port.to_string();
    let mut psql = pg.session("select pg_sleep(120)");
    let addr = format!("127.0.0.1:{port}");
    crate::support::wait_for("psql to connect", Duration::from_secs(20), || {
        let (_, out, _) = run_cli(&["ls", "--port", &port, "--json"]);
        out.contains("\"ESTABLISHED\"").then_some(())
    });

    // `who` shows both ends: the postmaster and the backend serving psql (which names the
    // postmaster as its parent although it leads a session of its own), and psql as a client.
    let (code, out, err) = run_cli(&["who", &port, "--json"]);
    assert_eq!(code, 0, "{err}");
    let who: portscope_shared::WhoReport = serde_json::from_str(&out).unwrap();
    let backend = who
        .owners
        .iter()
        .find(|o| o.process.pid != pg.pid())
        .unwrap_or_else(|| panic!("no backend among the owners: {out}"));
    assert_eq!(
        backend.ancestors.first().map(|a| a.pid),
        Some(pg.pid()),
        "the backend was started by the postmaster: {out}"
    );
    assert!(
        who.clients.iter().any(|c| c
            .process
            .as_ref()
            .is_some_and(|p| p.pid == psql.id() && p.name == "psql")),
        "psql is listed as a client: {out}"
    );
    let (_, text, _) = run_cli(&["who", &port]);
    assert!(text.contains("Clients on this machine:"), "{text}");
    assert!(
        text.contains(&format!("psql (pid {})", psql.id())),
        "{text}"
    );

    // TERM is PostgreSQL's smart shutdown: it waits for psql. portscope waits, names psql,
    // and does not force a database.
    let (code, reports, err) = kill(&[&port, "--signal", "TERM"]);
    assert_eq!(code, 1, "{reports:?}\n{err}");
    assert_eq!(reports.len(), 1, "the postmaster only: {reports:?}");
    let r = &reports[0];
    assert_eq!(
        (r.pid, r.outcome),
        (pg.pid(), KillOutcome::StillRunning),
        "{r:?}"
    );
    assert!(
        r.message.contains(&format!("psql (pid {})", psql.id())),
        "names the client: {}",
        r.message
    );
    assert!(r.message.contains("database"), "{}", r.message);
    assert!(pg.log().contains("received smart shutdown request"));
    assert!(
        psql.try_wait().unwrap().is_none(),
        "psql's session is untouched"
    );

    // Without --signal: SIGINT, PostgreSQL's fast shutdown.
    let (code, reports, err) = kill(&[&port]);
    assert_eq!(code, 0, "{reports:?}\n{err}");
    assert_eq!(reports[0].signal, "INT");
    assert_eq!(reports[0].outcome, KillOutcome::Exited, "{:?}", reports[0]);
    assert!(pg.wait_exit(Duration::from_secs(10)));
    assert!(!accepts(&addr));
    let _ = psql.wait();
    let log = pg.log();
    assert!(log.contains("received fast shutdown request"), "{log}");
    assert!(log.contains("database system is shut down"), "{log}");
    assert!(!log.contains("terminated by signal 9"), "{log}");

    // It starts again without crash recovery.
    pg.run();
    let log = pg.log();
    let restart = &log[log.rfind("starting PostgreSQL").unwrap()..];
    assert!(!restart.contains("not properly shut down"), "{restart}");
    assert!(!restart.contains("automatic recovery"), "{restart}");
}

#[test]
fn kill_stops_redis_with_term_and_nginx_gracefully_through_its_master() {
    let mut redis = Redis::start("127.0.0.1");
    let port = redis.port.to_string();
    // `who` lists redis-cli, connected, as a client on this machine (#10 item 11).
    let mut cli = std::process::Command::new("redis-cli")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "subscribe",
            "portscope-test",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-cli (redis-tools) is installed with redis-server");
    let who = crate::support::wait_for("redis-cli to connect", Duration::from_secs(20), || {
        let (_, out, _) = run_cli(&["who", &port, "--json"]);
        let who: portscope_shared::WhoReport = serde_json::from_str(&out).ok()?;
        who.clients
            .iter()
            .any(|c| {
                c.process
                    .as_ref()
                    .is_some_and(|p| p.pid == cli.id() && p.name == "redis-cli")
            })
            .then_some(out)
    });
    assert!(who.contains("redis-cli"), "{who}");
    let (_, text, _) = run_cli(&["who", &port]);
    assert!(
        text.contains(&format!("redis-cli (pid {})", cli.id())),
        "{text}"
    );
    let (code, reports, err) = kill(&[&port]);
    assert_eq!(code, 0, "{reports:?}\n{err}");
    assert_eq!(
        (reports[0].signal.as_str(), reports[0].outcome),
        ("TERM", KillOutcome::Exited)
    );
    assert!(redis.wait_exit(Duration::from_secs(5)));
    let log = redis.log();
    assert!(
        log.contains("Received SIGTERM scheduling shutdown"),
        "{log}"
    );
    assert!(log.contains("ready to exit, bye bye"), "{log}");
    let _ = cli.kill();
    let _ = cli.wait();

    let mut nginx = Nginx::start();
    let (code, reports, err) = kill(&[&nginx.port.to_string()]);
    assert_eq!(code, 0, "{reports:?}\n{err}");
    assert_eq!(
        reports.len(),
        1,
        "the master only, its workers go with it: {reports:?}"
    );
    assert_eq!(reports[0].pid, nginx.pid());
    assert_eq!(
        (reports[0].signal.as_str(), reports[0].outcome),
        ("QUIT", KillOutcome::Exited),
        "{:?}",
        reports[0]
    );
    assert!(nginx.wait_exit(Duration::from_secs(5)));
    let log = nginx.log();
    assert!(log.contains("gracefully shutting down"), "{log}");
}

#[test]
fn a_stopped_nginx_master_whose_workers_answer_is_not_a_problem() {
    let nginx = Nginx::start();
    signal(nginx.pid(), rustix::process::Signal::STOP);
    // nginx may relay any protocol: asked with http://, it gets its GET.
    let (code, d) = why(&format!("http://127.0.0.1:{}/", nginx.port));
    signal(nginx.pid(), rustix::process::Signal::CONT);
    assert_eq!(code, 0, "{d:#?}");
    assert_ne!(d.verdict, Verdict::Problem, "{d:#?}");
    let stopped: Vec<_> = d.checks.iter().filter(|c| c.id == "stopped").collect();
    assert_eq!(stopped.len(), 1, "one check for the master: {stopped:#?}");
    assert_eq!(stopped[0].verdict, Verdict::Warning);
    let http = d
        .checks
        .iter()
        .find(|c| c.id == "http")
        .expect("an http check");
    assert!(http.title.contains("200"), "{}", http.title);
    assert!(
        !d.checks.iter().any(|c| c.id == "backlog"),
        "our own probes are not counted as waiting connections: {d:#?}"
    );
}

/// A port published by a container is named after the container and its image in `ls`,
/// `ls --json` and `who`, also for an ordinary user in the `docker` group (who cannot see
/// root's `docker-proxy`); `why` looks inside the container: nothing listening on the
/// published port is a problem although the connection is accepted.
#[test]
fn containers_are_named_and_looked_inside() {
    let docker = Docker::start();
    let (empty_port, web_port) = (crate::support::free_port(), crate::support::free_port());
    let tag = std::process::id();
    let empty = docker.run(
        &format!("ps-empty-{tag}"),
        empty_port,
        9999,
        &["sleep", "120"],
    );
    let web = docker.run_labelled(
        &format!("ps-web-{tag}"),
        &[
            "com.docker.compose.project=shop",
            "com.docker.compose.project.working_dir=/srv/shop",
        ],
        web_port,
        8080,
        &["httpd", "-f", "-p", "8080"],
    );
    let label = format!("container {} ({IMAGE}), port 9999 inside", empty.name);

    crate::support::wait_for("the containers' ports", Duration::from_secs(30), || {
        (accepts(&format!("127.0.0.1:{empty_port}")) && accepts(&format!("127.0.0.1:{web_port}")))
            .then_some(())
    });
    let port = empty_port.to_string();
    let (code, out, err) = run_cli(&["ls", "--port", &port, "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&label), "ls --json names the container: {out}");
    let (_, table, _) = run_cli(&["ls", "--port", &port]);
    assert!(
        table.contains(&format!("container {}", empty.name)),
        "{table}"
    );
    let (_, who, _) = run_cli(&["who", &port, "--json"]);
    assert!(who.contains(&label), "{who}");
    let (_, who, _) = run_cli(&["who", &port]);
    assert!(
        who.contains(&label),
        "who names the container in text too: {who}"
    );
    // The forwarder of a Compose project's container is that project's.
    let (_, out, _) = run_cli(&["ls", "--port", &web_port.to_string(), "--json"]);
    let snapshot: portscope_shared::Snapshot = serde_json::from_str(&out).unwrap();
    let forwarder = snapshot
        .sockets
        .iter()
        .find(|s| s.is_listening() && s.local_port == web_port)
        .and_then(|s| s.pids.first())
        .and_then(|pid| snapshot.processes.iter().find(|p| p.pid == *pid))
        .unwrap_or_else(|| panic!("the forwarder of {web_port}: {out}"));
    let project = forwarder
        .project
        .clone()
        .expect("the container's Compose project");
    assert_eq!(
        (project.name.as_str(), project.root.as_str(), project.source),
        (
            "shop",
            "/srv/shop",
            portscope_shared::ProjectSource::Compose
        ),
        "{forwarder:?}"
    );

    // Nothing listens on 9999 inside: the forward accepts, then closes.
    let (_, d) = why(&format!("127.0.0.1:{empty_port}"));
    let container = d
        .checks
        .iter()
        .find(|c| c.id == "container")
        .expect("a container check");
    assert_eq!(container.verdict, Verdict::Problem, "{container:#?}");
    assert!(
        container
            .title
            .contains("nothing listens on port 9999 inside"),
        "{}",
        container.title
    );
    assert_eq!(d.verdict, Verdict::Problem);
    // busybox httpd listens on 8080 inside: fine.
    let (_, d) = why(&format!("127.0.0.1:{web_port}"));
    let container = d
        .checks
        .iter()
        .find(|c| c.id == "container")
        .expect("a container check");
    assert_eq!(container.verdict, Verdict::Ok, "{container:#?}");
    assert!(container.title.contains(&web.name), "{}", container.title);

    // An ordinary user in the docker group: docker-proxy is root's (hidden), the label is not.
    let gid = std::fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("docker:x:")?
                .split(':')
                .next()
                .map(str::to_owned)
        })
        .expect("a docker group (docker.io makes it)");
    let mut c = std::process::Command::new("setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        &format!("--groups={gid}"),
        env!("CARGO_BIN_EXE_portscope"),
    ])
    .args(["ls", "--port", &port, "--json"]);
    let (code, out, err) = crate::support::run(c);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\"hidden\""),
        "the owner is hidden from nobody: {out}"
    );
    assert!(
        out.contains(&label),
        "and the container is still named: {out}"
    );

    // The dashboard (real Chromium) names the container in its row, and shows the Compose
    // project's card with the port its container publishes.
    let agent = crate::support::Agent::start();
    let url = agent.url.clone();
    let shown = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let browser = crate::support::browser::Browser::start().await;
        let result = dashboard_names_containers(&browser, &url, empty_port, web_port, &label).await;
        browser.finish(result).await
    });
    assert!(
        shown.contains("/srv/shop"),
        "the card shows where the project lives: {shown}"
    );

    // Its forwarder is never stopped: `kill` names the container and what to run instead;
    // nor does the dashboard stop it. The container goes on publishing and answering.
    let (code, _, err) = run_cli(&["kill", &port]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("container {} (image {IMAGE})", empty.name))
            && err.contains(&format!("docker stop {}", empty.name)),
        "{err}"
    );
    let proxy = who_pid(&port);
    let start_time =
        crate::support::wait_for("the proxy in the agent", Duration::from_secs(10), || {
            let snapshot: portscope_shared::Snapshot =
                serde_json::from_str(&agent.get("/api/v1/snapshot").body).ok()?;
            snapshot
                .processes
                .iter()
                .find(|p| p.pid == proxy)
                .and_then(|p| p.start_time)
        });
    let res = agent.post(
        "/api/v1/kill",
        &format!("{{\"pid\":{proxy},\"start_time\":{start_time}}}"),
        &[("Sec-Fetch-Site", "same-origin")],
    );
    assert_eq!(res.status, 403, "{}", res.body);
    assert!(res.body.contains("container_port"), "{}", res.body);
    assert!(
        accepts(&format!("127.0.0.1:{empty_port}")),
        "still forwarded"
    );

    // Were its forwarder killed anyway (by hand), `why` says the container still publishes it.
    signal(proxy, rustix::process::Signal::KILL);
    crate::support::wait_for("the forwarder gone", Duration::from_secs(10), || {
        (!accepts(&format!("127.0.0.1:{empty_port}"))).then_some(())
    });
    let (_, d) = why(&format!("127.0.0.1:{empty_port}"));
    let listening = d
        .checks
        .iter()
        .find(|c| c.id == "listening")
        .expect("a listening check");
    assert!(
        listening.title.contains(&format!(
            "yet container {} (image {IMAGE}) publishes it",
            empty.name
        )),
        "{}",
        listening.title
    );
    assert!(
        commands(&d).contains(&format!("docker restart {}", empty.name)),
        "{:?}",
        commands(&d)
    );
    drop((empty, web, docker));
}

/// The pid `who --json` names for the port's first socket.
fn who_pid(port: &str) -> u32 {
    let (_, out, _) = run_cli(&["who", port, "--json"]);
    let report: portscope_shared::WhoReport = serde_json::from_str(&out).unwrap();
    report
        .sockets
        .iter()
        .find_map(|s| s.pids.first().copied())
        .unwrap_or_else(|| panic!("no owner of {port}: {out}"))
}

/// The row of `empty_port` in the table, then the Projects view's card of the Compose project
/// `shop` with `web_port`: what the page shows of containers.
async fn dashboard_names_containers(
    browser: &crate::support::browser::Browser,
    url: &str,
    empty_port: u16,
    web_port: u16,
    label: &str,
) -> Result<String, String> {
    use fantoccini::Locator;
    let c = &browser.client;
    c.goto(&format!("{url}&tab=sockets&q={empty_port}"))
        .await
        .map_err(|e| e.to_string())?;
    let row = format!("#sockets tbody tr.row[data-id*=':{empty_port} - ']");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = match c.find(Locator::Css(&row)).await {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains(label) {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "the row of {empty_port} reads {text:?}, not {label:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.goto(&format!("{url}&tab=projects"))
        .await
        .map_err(|e| e.to_string())?;
    let service = format!("article.card[data-project='shop'] li.service[data-port='{web_port}']");
    let el = c
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(&service))
        .await
        .map_err(|e| format!("no card of the Compose project with port {web_port}: {e}"))?;
    let line = el.text().await.map_err(|e| e.to_string())?;
    if !line.contains(&format!(":{web_port}")) {
        return Err(format!("the card's line reads {line:?}"));
    }
    let card = c
        .find(Locator::Css("article.card[data-project='shop']"))
        .await
        .map_err(|e| e.to_string())?;
    card.text().await.map_err(|e| e.to_string())
}

/// sshd logs even a bare connect and close: `why` says so in its answer (docs/doctor.md says
/// the same), and sends it nothing but the connect — what it logs is the closed connection,
/// never a bad protocol identification.
#[test]
fn why_on_sshd_says_it_logs_the_connect_and_sends_it_nothing() {
    use std::io::{Read, Write};
    let sshd = Sshd::start();
    let addr = format!("127.0.0.1:{}", sshd.port);
    let (_, d) = why(&addr);
    let said: Vec<&String> = d.checks.iter().flat_map(|c| &c.evidence).collect();
    assert!(
        said.iter()
            .any(|e| e.contains("SSH server logs even this connect and close")),
        "{said:#?}"
    );
    // A marker of the test's own, after `why`'s visits: an identification sshd refuses and
    // logs with its text.
    let marker = format!("portscope-marker-{}", std::process::id());
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(format!("{marker}\r\n").as_bytes());
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    wait_log("sshd to log the marker", || sshd.log(), &marker);
    let log = sshd.log();
    // What it logged before the marker's line: `why`'s visits. (The marker's own line shows the
    // complaints below are what sshd logs of a client that sends something.)
    let at = log.find(&marker).unwrap();
    let before = &log[..log[..at].rfind('\n').map_or(0, |i| i + 1)];
    assert!(
        before.contains("kex_exchange_identification") || before.contains("[preauth]"),
        "sshd logged why's connect as docs/doctor.md says:\n{log}"
    );
    for complaint in ["Bad protocol version", "invalid protocol identifier"] {
        let lines: Vec<&str> = before.lines().filter(|l| l.contains(complaint)).collect();
        assert!(
            lines.is_empty(),
            "why sent sshd something: {lines:?}\n{log}"
        );
    }
}
