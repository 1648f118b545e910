//! The baseline guards, against the real agent: token on every `/api` route and the WebSocket,
//! loopback-only Host, same-origin WebSocket upgrades, and the token moving into a cookie.

use crate::support::{Agent, http};

const WS_HEADERS: [(&str, &str); 4] = [
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

/// A WebSocket upgrade request with these extra headers; returns the status code.
fn upgrade(agent: &Agent, path: &str, extra: &[(&str, &str)]) -> u16 {
    let mut headers: Vec<(&str, &str)> = WS_HEADERS.to_vec();
    headers.extend_from_slice(extra);
    http(agent.port, "GET", path, &headers).status
}

#[test]
fn api_routes_require_the_token() {
    let agent = Agent::start();
    let host = agent.host();
    let wrong = format!("Bearer {}", "0".repeat(agent.token.len()));
    let longer = format!("Bearer {}0", agent.token);
    let right = format!("Bearer {}", agent.token);
    let lower = format!("bearer {}", agent.token);
    let basic = format!("Basic {}", agent.token);
    for (auth, expected) in [
        (None, 401),
        (Some("Bearer "), 401),
        (Some(wrong.as_str()), 401),
        (Some(longer.as_str()), 401),
        (Some(basic.as_str()), 401),
        (Some(right.as_str()), 200),
        (Some(lower.as_str()), 200),
    ] {
        let mut headers = vec![("Host", host.as_str())];
        headers.extend(auth.map(|a| ("Authorization", a)));
        let res = http(agent.port, "GET", "/api/v1/snapshot", &headers);
        assert_eq!(res.status, expected, "Authorization {auth:?}: {}", res.body);
        if expected == 401 {
            assert!(
                !res.body.contains(&agent.token),
                "a refusal leaked the token"
            );
            assert!(
                res.body.contains("token"),
                "the refusal should say what is missing"
            );
        }
    }
    let path = format!("/api/v1/snapshot?token={}", agent.token);
    assert_eq!(
        http(agent.port, "GET", &path, &[("Host", &host)]).status,
        200
    );
}

#[test]
fn foreign_hosts_are_refused_even_with_the_token() {
    let agent = Agent::start();
    let auth = format!("Bearer {}", agent.token);
    let port = agent.port;
    for host in [
        "evil.com".to_owned(),
        format!("evil.com:{port}"),
        format!("localhost.evil.com:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        format!("192.168.1.10:{port}"),
        format!("localhost:{}", port.wrapping_add(1)),
        String::new(),
    ] {
        for path in ["/api/v1/snapshot", "/", "/portscope_web_bg.wasm"] {
            let res = http(
                port,
                "GET",
                path,
                &[("Host", &host), ("Authorization", &auth)],
            );
            assert_eq!(res.status, 403, "Host {host:?} on {path}");
        }
        let status = upgrade(
            &agent,
            "/api/v1/ws",
            &[("Host", &host), ("Authorization", &auth)],
        );
        assert_eq!(status, 403, "Host {host:?} on the WebSocket");
    }
    // No Host at all, and two of them.
    let res = http(port, "GET", "/api/v1/snapshot", &[("Authorization", &auth)]);
    assert_eq!(res.status, 403);
    let host = agent.host();
    let res = http(
        port,
        "GET",
        "/api/v1/snapshot",
        &[
            ("Host", &host),
            ("Host", "evil.com"),
            ("Authorization", &auth),
        ],
    );
    assert_eq!(res.status, 403);
    // Loopback names pass.
    for ok in [
        agent.host(),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
    ] {
        let res = http(
            port,
            "GET",
            "/api/v1/snapshot",
            &[("Host", &ok), ("Authorization", &auth)],
        );
        assert_eq!(res.status, 200, "Host {ok:?}");
    }
}

#[test]
fn websocket_upgrades_need_the_token_and_our_own_origin() {
    let agent = Agent::start();
    let host = agent.host();
    let auth = format!("Bearer {}", agent.token);
    let own = format!("http://{host}");
    let query = format!("/api/v1/ws?token={}", agent.token);

    assert_eq!(
        upgrade(&agent, "/api/v1/ws", &[("Host", &host)]),
        401,
        "no token"
    );
    assert_eq!(
        upgrade(&agent, "/api/v1/ws?token=nope", &[("Host", &host)]),
        401,
        "wrong token"
    );
    assert_eq!(
        upgrade(
            &agent,
            "/api/v1/ws",
            &[("Host", &host), ("Authorization", &auth)]
        ),
        101,
        "token, no Origin (non-browser client)"
    );
    assert_eq!(
        upgrade(&agent, &query, &[("Host", &host), ("Origin", &own)]),
        101,
        "token in the query, own Origin"
    );
    let cookie = format!("portscope_token_{}={}", agent.port, agent.token);
    assert_eq!(
        upgrade(
            &agent,
            "/api/v1/ws",
            &[("Host", &host), ("Origin", &own), ("Cookie", &cookie)]
        ),
        401,
        "cookies are not a way in"
    );
    let other_port = format!("http://127.0.0.1:{}", agent.port.wrapping_add(1));
    for origin in [
        "http://evil.com",
        "null",
        "https://127.0.0.1",
        other_port.as_str(),
        "http://localhost",
    ] {
        let status = upgrade(&agent, &query, &[("Host", &host), ("Origin", origin)]);
        assert_eq!(status, 403, "Origin {origin:?} must not upgrade");
    }
}

#[test]
fn the_page_holds_no_data_needs_no_token_and_sets_no_cookie() {
    let agent = Agent::start();
    let host = agent.host();
    for path in [
        format!("/?token={}&q=5173", agent.token),
        "/?token=stale".into(),
        "/".into(),
    ] {
        let page = http(agent.port, "GET", &path, &[("Host", &host)]);
        assert_eq!(page.status, 200, "{path}");
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(page.body.contains("/boot.js"));
        // A cookie would travel to every other server on localhost: cookies ignore ports.
        assert!(page.header("set-cookie").is_none(), "{path}");
        assert!(!page.body.contains(&agent.token));
        let csp = page.header("content-security-policy").unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("'wasm-unsafe-eval'"),
            "{csp}"
        );
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
        assert!(page.header("access-control-allow-origin").is_none());
    }
}

#[test]
fn dashboard_assets_are_served_from_the_binary_with_their_types() {
    let agent = Agent::start();
    let host = agent.host();
    for (path, kind) in [
        ("/portscope_web_bg.wasm", "application/wasm"),
        ("/portscope_web.js", "text/javascript; charset=utf-8"),
        ("/boot.js", "text/javascript; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
    ] {
        let res = http(agent.port, "GET", path, &[("Host", &host)]);
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(res.header("content-type"), Some(kind), "{path}");
    }
    // The bundle goes gzip-compressed to a browser that accepts it, as it is to one that does not.
    let plain = http(
        agent.port,
        "GET",
        "/portscope_web_bg.wasm",
        &[("Host", &host)],
    );
    assert!(plain.header("content-encoding").is_none());
    let gzip = http(
        agent.port,
        "GET",
        "/portscope_web_bg.wasm",
        &[("Host", &host), ("Accept-Encoding", "gzip, deflate, br")],
    );
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
    assert_eq!(gzip.header("vary"), Some("accept-encoding"));
    let length = |r: &crate::support::HttpResponse| {
        r.header("content-length")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0)
    };
    assert!(
        length(&gzip) > 0 && length(&gzip) * 2 < length(&plain),
        "gzip {} B, plain {} B",
        length(&gzip),
        length(&plain)
    );
    let res = http(agent.port, "GET", "/../../etc/passwd", &[("Host", &host)]);
    assert!(matches!(res.status, 400 | 404), "{}", res.status);
    let res = http(agent.port, "GET", "/Cargo.toml", &[("Host", &host)]);
    assert_eq!(res.status, 404);
}

/// The corpora in `tests/corpus/`, with `PORT` and `OTHER` filled in for this agent.
fn corpus(text: &str, agent: &Agent) -> Vec<String> {
    let (port, other) = (
        agent.port.to_string(),
        agent.port.wrapping_add(1).to_string(),
    );
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.replace("PORT", &port).replace("OTHER", &other))
        .collect()
}

#[test]
fn no_hostile_host_or_origin_gets_through() {
    let agent = Agent::start();
    let auth = format!("Bearer {}", agent.token);
    let hosts = corpus(include_str!("corpus/hostile_hosts.txt"), &agent);
    let mut accepted = Vec::new();
    for host in &hosts {
        let api = http(
            agent.port,
            "GET",
            "/api/v1/snapshot",
            &[("Host", host), ("Authorization", &auth)],
        );
        let ws = upgrade(
            &agent,
            "/api/v1/ws",
            &[("Host", host), ("Authorization", &auth)],
        );
        // 403 from the guard, or 400 where the HTTP parser already rejects the request.
        for (route, status) in [("snapshot", api.status), ("ws", ws)] {
            if !matches!(status, 400 | 403) {
                accepted.push(format!("{route} Host {host:?} -> {status}"));
            }
        }
    }
    let origins = corpus(include_str!("corpus/hostile_origins.txt"), &agent);
    let own_host = agent.host();
    for origin in &origins {
        let ws = upgrade(
            &agent,
            "/api/v1/ws",
            &[
                ("Host", &own_host),
                ("Origin", origin),
                ("Authorization", &auth),
            ],
        );
        // The Origin guard's own 403, exactly: not a 400 of the parser, not a 101.
        if ws != 403 {
            accepted.push(format!("ws Origin {origin:?} -> {ws} (not 403)"));
        }
    }
    // The same request with the dashboard's own Origin is upgraded: the refusals above are the
    // Origin's doing.
    let own_origin = format!("http://{own_host}");
    let own = upgrade(
        &agent,
        "/api/v1/ws",
        &[
            ("Host", &own_host),
            ("Origin", &own_origin),
            ("Authorization", &auth),
        ],
    );
    assert_eq!(own, 101, "the dashboard's own Origin is upgraded");
    eprintln!(
        "hostile inputs tried: {} Hosts x 2 routes, {} Origins; accepted: {}",
        hosts.len(),
        origins.len(),
        accepted.len()
    );
    assert!(hosts.len() >= 60 && origins.len() >= 30);
    assert!(accepted.is_empty(), "accepted:\n{}", accepted.join("\n"));
    // And the agent still serves its own.
    assert_eq!(agent.get("/api/v1/snapshot").status, 200);
}

#[test]
fn forwarded_hosts_and_cross_site_requests_are_refused() {
    let agent = Agent::start();
    let auth = format!("Bearer {}", agent.token);
    let host = agent.host();
    // X-Forwarded-Host never stands in for Host, in either direction.
    let res = http(
        agent.port,
        "GET",
        "/api/v1/snapshot",
        &[
            ("Host", "evil.com"),
            ("X-Forwarded-Host", &host),
            ("Authorization", &auth),
        ],
    );
    assert_eq!(res.status, 403, "{}", res.body);
    let res = http(
        agent.port,
        "GET",
        "/api/v1/snapshot",
        &[
            ("Host", &host),
            ("X-Forwarded-Host", "evil.com"),
            ("Authorization", &auth),
        ],
    );
    assert_eq!(res.status, 200, "{}", res.body);
    // A request a browser marks cross-site (e.g. <script src> with a leaked token) is refused,
    // typed-in (`none`) and same-origin ones pass.
    for (site, status) in [
        ("cross-site", 403),
        ("same-site", 403),
        ("none", 200),
        ("same-origin", 200),
    ] {
        let res = http(
            agent.port,
            "GET",
            "/api/v1/snapshot",
            &[
                ("Host", &host),
                ("Sec-Fetch-Site", site),
                ("Authorization", &auth),
            ],
        );
        assert_eq!(res.status, status, "Sec-Fetch-Site: {site}: {}", res.body);
    }
    let upgrade_status = upgrade(
        &agent,
        &format!("/api/v1/ws?token={}", agent.token),
        &[("Host", &host), ("Sec-Fetch-Site", "cross-site")],
    );
    assert_eq!(upgrade_status, 403);
}

#[test]
fn an_origin_given_with_allow_origin_is_accepted_exactly() {
    let agent = Agent::start_with(&["--allow-origin", "http://localhost:3000"]);
    let host = agent.host();
    let path = format!("/api/v1/ws?token={}", agent.token);
    // A browser marks a request from another origin same-site or cross-site: expected here.
    assert_eq!(
        upgrade(
            &agent,
            &path,
            &[
                ("Host", &host),
                ("Origin", "http://localhost:3000"),
                ("Sec-Fetch-Site", "same-site")
            ]
        ),
        101
    );
    assert_eq!(
        upgrade(
            &agent,
            &path,
            &[
                ("Host", &host),
                ("Origin", "http://localhost:4000"),
                ("Sec-Fetch-Site", "same-site")
            ]
        ),
        403
    );
    for (origin, status) in [
        ("http://localhost:3000", 101),
        ("http://localhost:30000", 403),
        ("http://localhost:3000.evil.com", 403),
        ("https://localhost:3000", 403),
    ] {
        assert_eq!(
            upgrade(&agent, &path, &[("Host", &host), ("Origin", origin)]),
            status,
            "{origin}"
        );
    }
}

/// `--open` hands the browser a file readable only by the user, in `$XDG_RUNTIME_DIR` (else a
/// private directory) under a random name, carrying a one-time link instead of the token; the
/// file is gone once the browser has followed the link, which works once.
#[test]
fn open_hands_the_browser_a_private_one_time_link() {
    use std::io::{BufRead, BufReader};
    for runtime_dir in [true, false] {
        let tmp = tempfile::tempdir().unwrap();
        let record = tmp.path().join("browser.txt");
        let runtime = tmp.path().join("run");
        std::fs::create_dir(&runtime).unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_portscope"));
        cmd.args(["serve", "--port", "0", "--open"])
            .env(
                "BROWSER",
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../tests/support/fake_browser.sh"
                ),
            )
            .env("FAKE_BROWSER_OUT", &record)
            .env("TMPDIR", tmp.path())
            .env("XDG_STATE_HOME", tmp.path())
            .env_remove("PORTSCOPE_TOKEN")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        if runtime_dir {
            cmd.env("XDG_RUNTIME_DIR", &runtime);
        } else {
            cmd.env_remove("XDG_RUNTIME_DIR");
        }
        let mut child = cmd.spawn().unwrap();
        let url = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .next()
            .unwrap()
            .unwrap();
        let port: u16 = url
            .strip_prefix("http://127.0.0.1:")
            .and_then(|r| r.split('/').next())
            .unwrap()
            .parse()
            .unwrap();
        let token = url.split("token=").nth(1).unwrap().to_owned();
        let seen = crate::support::wait_for(
            "the browser to be opened",
            std::time::Duration::from_secs(20),
            || std::fs::read_to_string(&record).ok(),
        );
        let mut lines = seen.lines();
        let (path, mode, dir_mode) = (
            lines.next().unwrap(),
            lines.next().unwrap(),
            lines.next().unwrap(),
        );
        let page: String = lines.collect();
        assert_eq!(mode, "600", "the file is the user's alone");
        let name = std::path::Path::new(path)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with("portscope-open-") && name.len() > "portscope-open-.html".len() + 5,
            "a random name: {name}"
        );
        assert!(
            !name.contains(&port.to_string()),
            "not named after the port: {name}"
        );
        if runtime_dir {
            assert!(
                path.starts_with(runtime.to_str().unwrap()),
                "in XDG_RUNTIME_DIR: {path}"
            );
        } else {
            assert!(path.starts_with(tmp.path().to_str().unwrap()), "{path}");
            assert_eq!(dir_mode, "700", "in a private directory: {path}");
        }
        assert!(!page.contains(&token), "the file carries no token: {page}");
        let link = page
            .split("url=")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_else(|| panic!("no link in {page}"));
        let path_part = link
            .strip_prefix(&format!("http://127.0.0.1:{port}"))
            .unwrap();
        assert!(std::path::Path::new(path).exists());
        let host = format!("127.0.0.1:{port}");
        let res = crate::support::http(port, "GET", path_part, &[("Host", &host)]);
        assert_eq!(res.status, 303, "{}", res.body);
        assert_eq!(res.header("location"), Some(&*format!("/?token={token}")));
        assert!(!std::path::Path::new(path).exists(), "deleted once read");
        if !runtime_dir {
            assert!(
                !std::path::Path::new(path).parent().unwrap().exists(),
                "its directory too"
            );
        }
        let again = crate::support::http(port, "GET", path_part, &[("Host", &host)]);
        assert_eq!(again.status, 404, "once only: {}", again.body);
        let _ = child.kill();
        let _ = child.wait();
    }
}
