//! The dashboard in a real headless Chromium: it shows another process's listener with its
//! owner and where that owner runs, filters by port, and highlights a listener that opens while
//! it watches; it is usable from the keyboard, passes axe-core's checks in both colour schemes,
//! and fits a 420 px window. A hub's dashboard switches between its hosts.

use std::time::Duration;

use fantoccini::Locator;
use fantoccini::elements::Element;
use fantoccini::key::Key;

use crate::support::browser::Browser;
use crate::support::machine::{Machine, peers_file};
use crate::support::{Agent, Holder, Situation, free_port};

const WAIT: Duration = Duration::from_secs(15);

/// The dashboard's pause before it filters (`FILTER_PAUSE_MS` in web/src/app.rs), for the
/// printed figures.
const FILTER_PAUSE_MS: u64 = 150;

/// Text of every visible table row.
async fn row_texts(browser: &Browser) -> Vec<String> {
    let rows = browser
        .client
        .find_all(Locator::Css("#sockets tbody tr.row"))
        .await
        .unwrap();
    let mut texts = Vec::new();
    for row in rows {
        // Rows can be replaced between the query and the read; skip those.
        if let Ok(text) = row.text().await {
            texts.push(text);
        }
    }
    texts
}

/// The row whose local address ends in `:port`, once it is there.
async fn wait_for_row(browser: &Browser, port: u16) -> Element {
    // The listener, not a connection on the same port: its id has `-` for the remote end.
    let css = format!("#sockets tbody tr[data-id^='tcp 127.0.0.1:{port} - ']");
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&css))
        .await
        .unwrap_or_else(|e| panic!("no row for 127.0.0.1:{port} within {WAIT:?}: {e}"))
}

/// Opens the page filtered to `pid` and selects its listener on `port`: the detail shows it.
async fn open_listener(
    browser: &Browser,
    agent: &Agent,
    pid: u32,
    port: u16,
) -> Result<(), String> {
    browser
        .client
        .goto(&format!("{}&tab=sockets&q={pid}", agent.url))
        .await
        .map_err(|e| e.to_string())?;
    wait_for_row(browser, port).await;
    click(
        browser,
        &format!("#sockets tbody tr[data-id^='tcp 127.0.0.1:{port} - ']"),
    )
    .await
}

async fn set_filter(browser: &Browser, text: &str) {
    let filter = browser.client.find(Locator::Id("filter")).await.unwrap();
    filter.clear().await.unwrap();
    // `clear` does not fire `input`; typing does.
    filter.send_keys(&format!("{text} ")).await.unwrap();
    filter.send_keys(&Key::Backspace.to_string()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_filters_and_highlights_live_sockets() {
    let mut holder = Holder::start();
    let port = holder.ports.tcp4;
    let agent = Agent::start();
    let browser = Browser::start().await;
    let result = run(&browser, &agent, &mut holder, port).await;
    browser.finish(result).await;
}

async fn run(
    browser: &Browser,
    agent: &Agent,
    holder: &mut Holder,
    port: u16,
) -> Result<(), String> {
    let c = &browser.client;
    // The table renders only the rows in view; on a busy machine the holder's may be far down,
    // so the page opens filtered to its pid (a link with `q=` does what typing does).
    c.goto(&format!("{}&tab=sockets&q={}", agent.url, holder.pid()))
        .await
        .map_err(|e| e.to_string())?;

    // The token leaves the address bar. The page's script does that once the wasm has started,
    // which can be after `goto` returns (the load event does not wait for it): wait for it.
    let deadline = tokio::time::Instant::now() + WAIT;
    let url = loop {
        let url = c.current_url().await.map_err(|e| e.to_string())?;
        if !url.as_str().contains("token") {
            break url;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "the token is still in the address bar after {WAIT:?}: {url}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // The holder's listener is there, with its owner.
    let row = wait_for_row(browser, port).await;
    let text = row.text().await.map_err(|e| e.to_string())?;
    if !(text.contains("python3")
        && text.contains("LISTEN")
        && text.contains(&holder.pid().to_string()))
    {
        return Err(format!("listener row lacks its owner: {text:?}"));
    }
    let status = c
        .find(Locator::Id("status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    if status != "live" {
        return Err(format!("status shows {status:?}, expected live"));
    }
    // A lone agent: no host switcher, no Host column.
    let extra = c
        .execute(
            "return [!!document.getElementById('host-select'), \
                     !!document.querySelector('#sockets th[data-column=host]')];",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    if extra != serde_json::json!([false, false]) {
        return Err(format!(
            "a lone agent's page shows a host switcher or Host column: {extra}"
        ));
    }

    // Clicking the row opens its process's details: full command line and all its sockets.
    row.click().await.map_err(|e| e.to_string())?;
    let detail = c
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("detail"))
        .await
        .map_err(|e| format!("no detail panel after a click: {e}"))?;
    let detail = detail.text().await.map_err(|e| e.to_string())?;
    if !(detail.contains("holder.py") && detail.contains(&format!("[::1]:{}", holder.ports.tcp6))) {
        return Err(format!(
            "detail panel lacks the command line or a sibling socket: {detail:?}"
        ));
    }

    // The detail says what `portscope who` says: where the owner runs and who started it — here
    // this test, the holder's parent, by name and pid.
    let me = std::process::id();
    let comm = std::fs::read_to_string("/proc/self/comm").map_err(|e| e.to_string())?;
    let parent = format!("{} (pid {me})", comm.trim());
    wait_for_text(browser, "#detail .parent", |t| t == parent)
        .await
        .map_err(|e| format!("the detail does not name the parent {parent:?}: {e}"))?;
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let shown = wait_for_text(browser, "#detail .cwd", |t| t != "…").await?;
    if shown != cwd.display().to_string() {
        return Err(format!(
            "the detail shows the working directory {shown:?}, not {cwd:?}"
        ));
    }
    let started = wait_for_text(browser, "#detail .started-by", |_| true).await?;
    let nearest = started.split(" ← ").next().unwrap_or_default();
    if !nearest.ends_with(&format!("(pid {me})")) {
        return Err(format!(
            "\"started by\" does not begin with this test: {started:?}"
        ));
    }

    // For the docs: `PORTSCOPE_SCREENSHOT=path.png cargo test browser` keeps a picture of this view.
    if let Ok(path) = std::env::var("PORTSCOPE_SCREENSHOT") {
        let png = c.screenshot().await.map_err(|e| e.to_string())?;
        std::fs::write(&path, png).map_err(|e| format!("{path}: {e}"))?;
    }

    // `/` focuses the filter.
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("/")
        .await
        .map_err(|e| e.to_string())?;
    let focused = c
        .execute(
            "return document.activeElement && document.activeElement.id",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    if focused != serde_json::json!("filter") {
        return Err(format!("`/` focused {focused:?}, not the filter"));
    }

    // Filtering by the port leaves only matching rows (the listener and both ends of the connection).
    set_filter(browser, &port.to_string()).await;
    c.wait()
        .at_most(WAIT)
        .for_url(&{
            let mut u = url.clone();
            u.set_query(Some(&format!("tab=sockets&q={port}")));
            u
        })
        .await
        .map_err(|e| format!("the filter is not mirrored in the URL: {e}"))?;
    let texts = row_texts(browser).await;
    if texts.len() != 3 || !texts.iter().all(|t| t.contains(&format!(":{port}"))) {
        return Err(format!("filter {port} shows {texts:?}"));
    }
    let count = c
        .find(Locator::Id("count"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    if !count.starts_with("3 of ") {
        return Err(format!("row count shows {count:?}"));
    }

    // A listener that opens now appears, highlighted.
    set_filter(browser, &format!("{} LISTEN", holder.pid())).await;
    let new_port: u16 = holder
        .command("listen")
        .parse()
        .map_err(|e| format!("holder: {e}"))?;
    let row = wait_for_row(browser, new_port).await;
    let class = row.attr("class").await.unwrap().unwrap_or_default();
    if !class.split_whitespace().any(|c| c == "new") {
        return Err(format!(
            "the new listener's row is not highlighted: class={class:?}"
        ));
    }
    Ok(())
}

async fn status_text(browser: &Browser) -> String {
    match browser.client.find(Locator::Id("status")).await {
        Ok(el) => el.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until the status pill's text satisfies `want`.
async fn wait_for_status(
    browser: &Browser,
    what: &str,
    want: impl Fn(&str) -> bool,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = status_text(browser).await;
        if want(&text) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "status never showed {what} within {WAIT:?}; last: {text:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A process that exits while the stop dialog is open: confirming sends nothing, and the
/// dashboard says it is gone (from the agent's `not_a_socket_owner` code) as news, not as an
/// error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_gone_before_the_confirmation_is_news_not_an_error() {
    let mut situation = Situation::start(&["listen", "127.0.0.1"]);
    let agent = Agent::start();
    let browser = Browser::start().await;
    let result = async {
        let c = &browser.client;
        open_listener(&browser, &agent, situation.pid, situation.port).await?;
        click(&browser, "#action-stop").await?;
        wait_for_text(&browser, "#stop-dialog", |t| t.contains("python3")).await?;
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(situation.pid as i32).unwrap(),
            rustix::process::Signal::KILL,
        );
        situation.wait_exit(WAIT);
        click(&browser, "#stop-confirm").await?;
        let news = wait_for_text(&browser, "#answer #stop-gone", |t| !t.is_empty())
            .await
            .map_err(|e| format!("no word that the process was gone: {e}"))?;
        if !news.contains(&format!(
            "pid {} no longer holds the socket (it exited, or closed it): nothing was sent",
            situation.pid
        )) {
            return Err(format!("unexpected news: {news:?}"));
        }
        if c.find(Locator::Css("#answer .verdict-problem"))
            .await
            .is_ok()
        {
            return Err("a process gone before the stop is shown as an error".into());
        }
        Ok(())
    }
    .await;
    browser.finish(result).await;
}

/// A listener whose owner is stopped (SIGSTOP) gets a "stopped" badge, which goes when the
/// owner is continued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_owner_gets_a_badge_in_its_row() {
    let situation = Situation::start(&["listen", "127.0.0.1"]);
    let agent = Agent::start();
    let browser = Browser::start().await;
    let pid = rustix::process::Pid::from_raw(situation.pid as i32).unwrap();
    let result = async {
        let c = &browser.client;
        c.goto(&format!("{}&tab=sockets&q={}", agent.url, situation.pid))
            .await
            .map_err(|e| e.to_string())?;
        wait_for_row(&browser, situation.port).await;
        let badge = format!(
            "#sockets tbody tr[data-id^='tcp 127.0.0.1:{} - '] .tag.stopped",
            situation.port
        );
        if c.find(Locator::Css(&badge)).await.is_ok() {
            return Err("a running owner has a stopped badge".to_owned());
        }
        rustix::process::kill_process(pid, rustix::process::Signal::STOP)
            .map_err(|e| e.to_string())?;
        let title = on_element(&browser, &badge, |el| async move { el.attr("title").await })
            .await
            .map_err(|e| format!("no stopped badge after SIGSTOP: {e}"))?;
        if !title.is_some_and(|t| t.contains(&format!("kill -CONT {}", situation.pid))) {
            return Err("the badge does not say how to resume the process".into());
        }
        rustix::process::kill_process(pid, rustix::process::Signal::CONT)
            .map_err(|e| e.to_string())?;
        let deadline = std::time::Instant::now() + WAIT;
        while c.find(Locator::Css(&badge)).await.is_ok() {
            if std::time::Instant::now() > deadline {
                return Err("the badge stays after SIGCONT".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }
    .await;
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::CONT);
    browser.finish(result).await;
}

/// A root agent's dashboard (started without `--allow-kill-system`) does not offer to stop a
/// root process: the button is disabled, and the detail says why and what to run instead.
#[tokio::test(flavor = "multi_thread")]
async fn a_root_agents_dashboard_says_why_it_will_not_stop_a_daemon() {
    let situation = Situation::start(&["listen", "127.0.0.1"]);
    let agent = Agent::start_strict(&[], &[]);
    let browser = Browser::start().await;
    let result = async {
        open_listener(&browser, &agent, situation.pid, situation.port).await?;
        let why = wait_for_text(&browser, "#detail #stop-refused", |t| !t.is_empty()).await?;
        if !(why.contains("a system account") && why.contains("--allow-kill-system")) {
            return Err(format!("the detail says {why:?}"));
        }
        let disabled = on_element(&browser, "#action-stop", |el| async move {
            el.attr("disabled").await
        })
        .await?;
        if disabled.is_none() {
            return Err("Stop process is offered for a root process".into());
        }
        Ok(())
    }
    .await;
    browser.finish(result).await;
}

/// A listener that serves HTTP is checked while the page is open: its row says so.
#[tokio::test(flavor = "multi_thread")]
async fn an_http_listener_shows_its_health_while_the_page_is_open() {
    let port = crate::support::free_port();
    let server = crate::support::HttpServer::start(port);
    let agent = Agent::start();
    let browser = Browser::start().await;
    let result = async {
        let c = &browser.client;
        c.goto(&format!("{}&tab=sockets&q={port}", agent.url))
            .await
            .map_err(|e| e.to_string())?;
        wait_for_row(&browser, port).await;
        let tag = format!("#sockets tbody tr[data-id^='tcp 127.0.0.1:{port} - '] .tag.up");
        let text = on_element(&browser, &tag, |el| async move { el.text().await })
            .await
            .map_err(|e| format!("no health tag: {e}"))?;
        if !(text.starts_with("✓ 200 · ") && text.ends_with(" ms")) {
            return Err(format!("health tag reads {text:?}"));
        }
        Ok(())
    }
    .await;
    drop(server);
    browser.finish(result).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_reconnects_and_resyncs_after_the_agent_restarts() {
    let mut holder = Holder::start();
    let port = free_port();
    let token = "reconnect-test-token-0123456789abcdef";
    let agent = Agent::start_on(port, token);
    let browser = Browser::start().await;
    let result = async {
        let c = &browser.client;
        c.goto(&format!("{}&tab=sockets&q={}", agent.url, holder.pid()))
            .await
            .map_err(|e| e.to_string())?;
        wait_for_row(&browser, holder.ports.tcp4).await;
        wait_for_status(&browser, "live", |t| t == "live").await?;
        const LOOK: &str = "const row = document.querySelector('#sockets tr.row:not(.closed)'); \
            return [document.querySelector('.table-wrap').classList.contains('stale'), \
                    getComputedStyle(row.querySelector('td.process')).color];";
        let live = c.execute(LOOK, vec![]).await.map_err(|e| e.to_string())?;

        // The agent goes away: the page says so and keeps retrying with backoff.
        agent.stop();
        wait_for_status(&browser, "disconnected", |t| {
            t.starts_with("disconnected — retrying in")
        })
        .await?;
        // Its rows are the last ones received: dimmed, with a note saying so.
        let down = c.execute(LOOK, vec![]).await.map_err(|e| e.to_string())?;
        if down[0] != true || down[1] == live[1] {
            return Err(format!(
                "rows are not dimmed while the link is down: live {live:?}, down {down:?}"
            ));
        }

        // While it is down, the world changes: a listener closes and another opens.
        assert_eq!(holder.command("close-listener"), "closed");
        let new_port: u16 = holder
            .command("listen")
            .parse()
            .map_err(|e| format!("holder: {e}"))?;

        // Back on the same port with the same token: the page reconnects by itself and resyncs.
        let agent = Agent::start_on(port, token);
        wait_for_status(&browser, "live again", |t| t == "live").await?;
        let again = c.execute(LOOK, vec![]).await.map_err(|e| e.to_string())?;
        if again != live {
            return Err(format!("rows stay dimmed once live again: {again:?}"));
        }
        let row = wait_for_row(&browser, new_port).await;
        let class = row.attr("class").await.unwrap().unwrap_or_default();
        if !class.split_whitespace().any(|c| c == "new") {
            return Err(format!(
                "a listener opened during the outage is not highlighted: {class:?}"
            ));
        }
        let old = format!(
            "#sockets tbody tr[data-id^='tcp 127.0.0.1:{} - ']",
            holder.ports.tcp4
        );
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            // Shown as closed for a moment, then gone.
            match c.find(Locator::Css(&old)).await {
                Err(_) => break,
                Ok(_) if tokio::time::Instant::now() > deadline => {
                    return Err("the listener closed during the outage never left the table".into());
                }
                Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        drop(agent);
        Ok::<(), String>(())
    }
    .await;
    browser.finish(result).await;
}

/// Text of an element once it exists and its text satisfies `ok`.
async fn wait_for_text(
    browser: &Browser,
    css: &str,
    ok: impl Fn(&str) -> bool,
) -> Result<String, String> {
    wait_for_text_within(browser, css, WAIT, ok).await
}

/// The same with another deadline.
async fn wait_for_text_within(
    browser: &Browser,
    css: &str,
    limit: Duration,
    ok: impl Fn(&str) -> bool,
) -> Result<String, String> {
    let deadline = std::time::Instant::now() + limit;
    let mut last = String::new();
    while std::time::Instant::now() < deadline {
        if let Ok(el) = browser.client.find(Locator::Css(css)).await
            && let Ok(text) = el.text().await
        {
            if ok(&text) {
                return Ok(text);
            }
            last = text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "`{css}` did not show the expected text within {limit:?}; last: {last:?}"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_troubleshoots_a_port_and_stops_its_holder() {
    let mut situation = crate::support::Situation::start(&["listen", "::1"]);
    let agent = Agent::start();
    let browser = Browser::start().await;
    let result = troubleshoot(&browser, &agent, &mut situation).await;
    browser.finish(result).await;
}

async fn troubleshoot(
    browser: &Browser,
    agent: &Agent,
    situation: &mut crate::support::Situation,
) -> Result<(), String> {
    let c = &browser.client;
    let port = situation.port;
    c.goto(&format!("{}&tab=sockets&q={port}", agent.url))
        .await
        .map_err(|e| e.to_string())?;

    // A person types the port with the IPv4 address into the troubleshoot panel.
    let input = c
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("doctor-target"))
        .await
        .map_err(|e| format!("no troubleshoot input: {e}"))?;
    input
        .send_keys(&format!("127.0.0.1:{port}"))
        .await
        .map_err(|e| e.to_string())?;
    c.find(Locator::Id("ask-why"))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    // A diagnosis scans the machine; on a loaded CI machine (every test's agent scanning at
    // once) it can take seconds, so this waits longer than page updates do.
    let verdict = wait_for_text_within(browser, "#verdict", Duration::from_secs(60), |t| {
        t.contains("IPv6 only")
    })
    .await?;
    let data = on_element(browser, "#verdict", |el| async move {
        el.attr("data-verdict").await
    })
    .await?;
    if data.as_deref() != Some("problem") {
        return Err(format!(
            "verdict {data:?} for {verdict:?}, expected problem"
        ));
    }
    let family = on_element(
        browser,
        "#answer li.check[data-check='family']",
        |el| async move { el.text().await },
    )
    .await
    .map_err(|e| format!("no family check in the answer: {e}"))?;
    // A plain listener (not known to speak HTTP): a plain TCP test, in the listener's family.
    if !family.contains(&format!("nc -vz ::1 {port}")) || !family.contains("Copy") {
        return Err(format!(
            "the family check lacks its copyable fix: {family:?}"
        ));
    }
    // For the docs: `PORTSCOPE_SCREENSHOT_DOCTOR=path.png cargo test browser` keeps this view.
    if let Ok(path) = std::env::var("PORTSCOPE_SCREENSHOT_DOCTOR") {
        let png = c.screenshot().await.map_err(|e| e.to_string())?;
        std::fs::write(&path, png).map_err(|e| format!("{path}: {e}"))?;
    }

    // The listener's row carries its exposure tag; its detail offers to stop the process.
    let css = format!("#sockets tbody tr[data-id^='tcp [::1]:{port} - ']");
    let hover = on_element(browser, &format!("{css} .tag.loopback"), |el| async move {
        el.attr("title").await
    })
    .await
    .map_err(|e| format!("no loopback tag on the listener: {e}"))?;
    if !hover.is_some_and(|t| t.contains("this machine alone")) {
        return Err("the loopback tag does not explain itself on hover".into());
    }
    click(browser, &css).await?;
    // The detail panel is drawn again when its `who` answer arrives.
    click(browser, "#action-stop").await?;
    let dialog = wait_for_text(browser, "#stop-dialog", |t| t.contains("python3")).await?;
    if !(dialog.contains(&format!("pid {}", situation.pid))
        && dialog.contains("situation.py")
        && dialog.contains(&format!("[::1]:{port}")))
    {
        return Err(format!(
            "the confirm dialog does not say what it stops: {dialog:?}"
        ));
    }
    click(browser, "#stop-confirm").await?;
    let stopped = wait_for_text(browser, "#answer", |t| t.contains("exited")).await?;
    if !stopped.contains(&format!("sent SIGTERM to python3 (pid {})", situation.pid)) {
        return Err(format!("unexpected stop report: {stopped:?}"));
    }
    if situation.wait_exit(Duration::from_secs(5)).is_none() {
        return Err("the process still runs after the dashboard stopped it".into());
    }
    Ok(())
}

/// A page served from another origin (another port of 127.0.0.1), holding the token as if it had
/// leaked, tries `fetch` (header and query), a no-cors `fetch`, `<script src>`, an `<iframe>` and
/// `new WebSocket` against the agent: nothing is read, nothing opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_from_another_origin_reads_nothing() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/support/attacker");
    let attacker = crate::support::Situation::start(&["files", dir]);
    // The control: the same page from an origin the agent was told to allow (`localhost`, the
    // attack's is `127.0.0.1`) does open the stream — the agent is there, and answers a page.
    let allowed = format!("http://localhost:{}", attacker.port);
    let agent = Agent::start_with(&["--allow-origin", &allowed]);
    let browser = Browser::start().await;
    let page = |origin: &str| {
        format!(
            "{origin}/index.html?agent=127.0.0.1:{}&token={}",
            agent.port, agent.token
        )
    };
    let (attack, control) = (
        page(&format!("http://127.0.0.1:{}", attacker.port)),
        page(&allowed),
    );
    let result = async {
        let mut texts = Vec::new();
        for url in [&attack, &control] {
            browser.client.goto(url).await.map_err(|e| e.to_string())?;
            texts.push(
                wait_for_text(&browser, "#out", |t| {
                    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(t)
                        .is_ok_and(|m| m.len() == 6)
                })
                .await?,
            );
        }
        Ok::<_, String>(texts)
    }
    .await;
    let texts = browser.finish(result).await;
    let control: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&texts[1]).unwrap();
    eprintln!("the same page from an allowed origin: {}", texts[1]);
    assert!(
        matches!(control["websocket"].as_str(), Some("OPENED" | "MESSAGE")),
        "the control page could not open the agent's stream, so the refusals below prove nothing: {}",
        texts[1]
    );
    let text = texts[0].clone();
    let results: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    eprintln!("a page on another origin, with the token: {text}");
    for (attempt, outcome) in &results {
        let outcome = outcome.as_str().unwrap_or_default();
        assert!(
            ["blocked", "opaque", "unreadable", "no load"].contains(&outcome),
            "{attempt} got through: {outcome} (all: {text})"
        );
    }
    assert_eq!(results["websocket"], "blocked", "{text}");
    assert_eq!(results["fetch_query"], "blocked", "{text}");
}

/// A state too large for one message (2 500 more sockets) reaches the dashboard in parts and is
/// shown whole, through a window: only the rows in view are in the page, the spacers stand for
/// the rest, scrolling to the end shows the last rows, a delta of 100 rows is applied, and
/// typing a filter over every row filters once typing pauses. Costs (a delta's, a keystroke's,
/// a filter's) are printed, not asserted: `cargo xtask bench` reports them.
/// `PORTSCOPE_LARGE_SOCKETS=19000` makes it a measurement at the bench's scale (one process
/// holds them: mind `ulimit -n`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_large_state_through_a_window_of_rows() {
    let n: usize = std::env::var("PORTSCOPE_LARGE_SOCKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2500);
    let many = crate::support::Situation::start(&["many", &n.to_string()]);
    let agent = Agent::start_with(&["--no-kernel-events"]);
    let browser = Browser::start().await;
    let result = async {
        let c = &browser.client;
        // Only this test's sockets, so that other tests' sockets do not move them meanwhile.
        c.goto(&format!("{}&tab=sockets&q={}", agent.url, many.pid))
            .await
            .map_err(|e| e.to_string())?;
        let count = wait_for_text(&browser, "#count", |t| t.starts_with(&format!("{n} of "))).await?;
        let layout = |script: &'static str| async move {
            c.execute(script, vec![])
                .await
                .map_err(|e| e.to_string())
                .map(|v| v.as_array().cloned().unwrap_or_default())
        };
        const SHAPE: &str = "const rows = document.querySelectorAll('#sockets tr.row'); \
            const spacers = document.querySelectorAll('#sockets tr.spacer td'); \
            return [rows.length, rows[0].getBoundingClientRect().height, \
                    spacers[0].getBoundingClientRect().height, spacers[1].getBoundingClientRect().height, \
                    rows[rows.length - 1].dataset.id];";
        let top = layout(SHAPE).await?;
        let rendered = top[0].as_u64().unwrap_or(0);
        if !(10..=150).contains(&rendered) {
            return Err(format!("{rendered} rows in the page for {n} sockets: {top:?}"));
        }
        if (top[1].as_f64().unwrap_or(0.0) - 29.0).abs() > 0.5 {
            return Err(format!("rows are not 29 px high: {top:?}"));
        }
        let below = top[3].as_f64().unwrap_or(0.0);
        // An empty spacer is at most its collapsed border high.
        if top[2].as_f64().is_none_or(|h| h > 1.0) || below < 29.0 * 2000.0 {
            return Err(format!("the spacers do not stand for the other rows: {top:?}"));
        }
        c.execute(
            "const w = document.querySelector('.table-wrap'); w.scrollTop = w.scrollHeight;",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + WAIT;
        let bottom = loop {
            let bottom = layout(SHAPE).await?;
            if bottom[3].as_f64().is_some_and(|h| h <= 1.0)
                && bottom[2].as_f64().unwrap_or(0.0) > 29.0 * 2000.0
            {
                break bottom;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("scrolling to the end did not show the last rows: {bottom:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        if bottom[4] == top[4] {
            return Err(format!("the same rows at the top and the end: {bottom:?}"));
        }
        // Sorting the other way round puts the last row first.
        c.execute(
            "document.querySelector('.table-wrap').scrollTop = 0; \
             document.querySelector(\"th[data-column='local']\").click();",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
        let last = bottom[4].as_str().unwrap_or_default().to_owned();
        let css = format!("#sockets tr.spacer + tr.row[data-id='{last}']");
        c.wait()
            .at_most(WAIT)
            .for_element(Locator::Css(&css))
            .await
            .map_err(|e| format!("sorted descending, {last} is not the first row: {e}"))?;

        // End and Home move the keyboard through every row, not only the rendered ones: the
        // table scrolls to the row, renders it and focuses it.
        c.execute(
            "document.querySelector(\"#sockets tr.row[tabindex='0']\").focus();",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
        const AT: &str = "const a = document.activeElement; const rows = document.querySelectorAll('#sockets tr.row'); \
            return [a.dataset.id || null, a === rows[0], a === rows[rows.length - 1], \
                    document.querySelectorAll('#sockets tr.spacer td')[1].getBoundingClientRect().height];";
        press(&browser, &Key::End.to_string()).await?;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let at = c.execute(AT, vec![]).await.map_err(|e| e.to_string())?;
            if at[2] == true && at[3].as_f64().is_some_and(|h| h <= 1.0) {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("End did not focus the last of {n} rows: {at:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        press(&browser, &Key::Home.to_string()).await?;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let at = c.execute(AT, vec![]).await.map_err(|e| e.to_string())?;
            if at[0] == last.as_str() && at[1] == true {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("Home did not focus the first row {last}: {at:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // Hundreds more sockets arrive, 100 or more of them in one delta (a loaded machine may
        // deschedule the opener between two scans: 400 leave room for that). The agent polls
        // (`--no-kernel-events`): fed by the kernel, it would publish each listener as it opens.
        let _more = crate::support::Situation::start(&["many", "400"]);
        let rows = wait_for_attr(&browser, "#count", "data-apply-rows", |n| {
            n.parse::<usize>().is_ok_and(|n| n >= 100)
        })
        .await?;
        let ms = browser
            .client
            .find(Locator::Id("count"))
            .await
            .map_err(|e| e.to_string())?
            .attr("data-apply-ms")
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        // Typing the pid into an empty filter, letter by letter as fast as events come: each
        // keystroke costs only its handler; the rows are filtered once, after the pause.
        let typing = c
            .execute_async(
                "const text = arguments[0]; const done = arguments[arguments.length - 1]; \
                 const input = document.getElementById('filter'); \
                 const count = document.getElementById('count'); \
                 const type = value => { input.value = value; \
                   input.dispatchEvent(new Event('input', { bubbles: true })); }; \
                 const applied = (query, then) => { const t0 = performance.now(); \
                   const poll = () => count.dataset.viewQuery === query ? then(performance.now()) \
                     : performance.now() - t0 > 30000 ? done(['never filtered', query]) \
                     : setTimeout(poll, 5); poll(); }; \
                 type(''); \
                 applied('', () => { \
                   let worst = 0; const t0 = performance.now(); \
                   for (let i = 1; i <= text.length; i++) { const k = performance.now(); \
                     type(text.slice(0, i)); worst = Math.max(worst, performance.now() - k); } \
                   const last = performance.now(); \
                   const each = (last - t0) / text.length; \
                   applied(text, end => done([each, worst, Number(count.dataset.viewMs), \
                                              end - last, count.textContent])); });",
                vec![serde_json::json!(many.pid.to_string())],
            )
            .await
            .map_err(|e| e.to_string())?;
        let filtered = typing[4].as_str().unwrap_or_default();
        if !filtered.starts_with(&format!("{n} of ")) {
            return Err(format!("typing the filter did not filter: {typing:?}"));
        }
        let status = status_text(&browser).await;
        Ok::<_, String>((count, status, rendered, rows, ms, typing))
    }
    .await;
    let (count, status, rendered, rows, ms, typing) = browser.finish(result).await;
    assert_eq!(status, "live");
    eprintln!(
        "dashboard: {count}, {rendered} rows in the page; a delta of {rows} rows applied and \
         drawn in {ms} ms"
    );
    eprintln!(
        "dashboard filter over every row: {:.3} ms a keystroke (worst {:.3} ms), one filter \
         pass rebuilt and drawn in {} ms, filtered rows drawn {:.0} ms after the last keystroke \
         (of which {FILTER_PAUSE_MS} ms is the typing pause)",
        typing[0].as_f64().unwrap_or(f64::NAN),
        typing[1].as_f64().unwrap_or(f64::NAN),
        typing[2],
        typing[3].as_f64().unwrap_or(f64::NAN),
    );
}

/// Waits until an attribute of the element `css` satisfies `ok`, and returns it.
async fn wait_for_attr(
    browser: &Browser,
    css: &str,
    name: &str,
    ok: impl Fn(&str) -> bool,
) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last = None;
    loop {
        if let Ok(el) = browser.client.find(Locator::Css(css)).await
            && let Ok(Some(value)) = el.attr(name).await
        {
            if ok(&value) {
                return Ok(value);
            }
            last = Some(value);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "{css} [{name}] never satisfied the check; last: {last:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// axe-core's source, installed by `cargo xtask install-deps` (npm) under the workspace's target/.
fn axe_source() -> Result<String, String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/axe-core/node_modules/axe-core/axe.min.js"
    );
    std::fs::read_to_string(path).map_err(|e| {
        format!("{path}: {e}; install axe-core with `cargo xtask install-deps` (it uses npm)")
    })
}

/// Runs axe-core on the whole page (injected through WebDriver: the page's CSP refuses inline
/// scripts, not the driver's) and returns its serious and critical violations, one line each.
async fn axe(browser: &Browser, source: &str) -> Result<Vec<String>, String> {
    let c = &browser.client;
    let loaded = c
        .execute("return typeof window.axe !== 'undefined';", vec![])
        .await
        .map_err(|e| e.to_string())?;
    if loaded != true {
        c.execute(&format!("{source}\nreturn true;"), vec![])
            .await
            .map_err(|e| format!("injecting axe-core: {e}"))?;
    }
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             axe.run(document, { resultTypes: ['violations'] }) \
               .then(r => done(r.violations \
                 .filter(v => v.impact === 'serious' || v.impact === 'critical') \
                 .flatMap(v => v.nodes.map(n => v.impact + ' ' + v.id + ': ' + n.target.join(' ') \
                   + ' — ' + (n.failureSummary || '').replace(/\\s+/g, ' '))))) \
               .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(found
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// Clicks the element `css` once it is there, finding it again when it was redrawn meanwhile.
async fn click(browser: &Browser, css: &str) -> Result<(), String> {
    on_element(
        browser,
        css,
        |el| async move { el.click().await.map(|_| ()) },
    )
    .await
}

/// Finds `css` and does `action` on it, again while the element is missing or was redrawn in
/// between (rows and panels are drawn anew when their data changes): a person would simply look
/// again.
async fn on_element<T, F, Fut>(browser: &Browser, css: &str, action: F) -> Result<T, String>
where
    F: Fn(Element) -> Fut,
    Fut: std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
{
    let mut last = String::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        match browser.client.find(Locator::Css(css)).await {
            Ok(el) => match action(el).await {
                Ok(value) => return Ok(value),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("{css}: {last}"))
}

/// Presses keys on whatever has the focus, as a person would: keyboard actions, which go to
/// the focused element whatever it is (chromedriver refuses `send_keys` to an SVG bar it does
/// not judge interactable while the plot redraws).
async fn press(browser: &Browser, keys: &str) -> Result<(), String> {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    let mut actions = KeyActions::new("keyboard".into());
    for key in keys.chars() {
        actions = actions
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
    }
    browser
        .client
        .perform_actions(actions)
        .await
        .map_err(|e| e.to_string())
}

/// `document.activeElement` described: tag, id, data-id, and whether it is inside `#stop-dialog`.
async fn focused(browser: &Browser) -> Result<serde_json::Value, String> {
    browser
        .client
        .execute(
            "const a = document.activeElement; \
             return { tag: a.tagName, id: a.id, row: a.dataset ? a.dataset.id || null : null, \
                      in_dialog: !!a.closest('#stop-dialog') };",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())
}

/// The page in one colour scheme, through each view axe must pass: a row with the "exposed"
/// risk tag, the table, the detail panel, the doctor's answer, the stop dialog. Returns the
/// violations found, by view.
async fn axe_views(
    browser: &Browser,
    agent: &Agent,
    holder: &Holder,
    risky: &Situation,
    axe_js: &str,
) -> Result<Vec<String>, String> {
    let c = &browser.client;
    let mut found = Vec::new();
    let mut check = async |view: &str| -> Result<(), String> {
        for v in axe(browser, axe_js).await? {
            found.push(format!("{view}: {v}"));
        }
        Ok(())
    };
    // The timeline: tabs are tabs, bars are reached and opened from the keyboard.
    c.goto(&format!("{}&tab=timeline&q={}", agent.url, holder.pid()))
        .await
        .map_err(|e| e.to_string())?;
    let bar = bar_css(holder.ports.tcp4, false);
    on_element(browser, &bar, |el| async move { el.attr("data-at").await }).await?;
    let tabs = c
        .execute(
            "return [...document.querySelectorAll('[role=tablist] [role=tab]')]                .map(t => [t.tagName, t.id, t.getAttribute('aria-selected'), t.getAttribute('aria-controls')]);",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    if tabs
        != serde_json::json!([
            ["BUTTON", "tab-projects", "false", "panel-projects"],
            ["BUTTON", "tab-sockets", "false", "panel-sockets"],
            ["BUTTON", "tab-timeline", "true", "panel-timeline"],
            ["BUTTON", "tab-map", "false", "panel-map"],
            ["BUTTON", "tab-ports", "false", "panel-ports"]
        ])
    {
        return Err(format!("the view switch is not a set of tabs: {tabs}"));
    }
    check("timeline").await?;
    // One tab stop among the bars; arrows move it, Enter opens the bar's owner.
    let stops = c
        .execute(
            "const s = [...document.querySelectorAll('#timeline-svg .bar[tabindex=\"0\"]')];              if (s.length) s[0].focus(); return s.length;",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    if stops != 1 {
        return Err(format!("{stops} bars are tab stops, not one"));
    }
    // Bars are told apart by their lane (`data-key`): positions move when lanes come and go.
    let bar_focus = "const a = document.activeElement; \
        return a.closest && a.closest('#timeline-svg .bar') ? a.dataset.key : null;";
    // A redraw (the clock, another test's listener) may replace the bar just focused; the page
    // gives the focus back to it within a tick, which this waits for.
    until_js(
        browser,
        "the tab stop bar to take the focus",
        WAIT,
        bar_focus,
        serde_json::Value::is_string,
    )
    .await?;
    // From the holder's 127.0.0.1 bar, the arrows walk lane by lane to another of the holder's
    // own lanes (its ::1 listener or its UDP socket), and Enter opens it. The filter (the pid)
    // also matches other tests' listeners by a digit run; those come and go on a busy machine,
    // so the walk passes over them and only the holder's lanes, which stay, are opened.
    let own = [
        format!("tcp6 [::1]:{}", holder.ports.tcp6),
        format!("udp 127.0.0.1:{}", holder.ports.udp),
    ];
    c.execute(
        &format!("document.querySelector(\"{bar}\").focus();"),
        vec![],
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut at = c
        .execute(bar_focus, vec![])
        .await
        .map_err(|e| e.to_string())?;
    let mut walked = vec![at.to_string()];
    let mut moved = false;
    // Down first; at the last lane (the focus stays put) back up past the start.
    for key in [Key::Down, Key::Up] {
        for _ in 0..40 {
            if own.iter().any(|k| at == k.as_str()) {
                break;
            }
            press(browser, &key.to_string()).await?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            let now = loop {
                let now = c
                    .execute(bar_focus, vec![])
                    .await
                    .map_err(|e| e.to_string())?;
                if (now.is_string() && now != at) || tokio::time::Instant::now() > deadline {
                    break now;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            if now == at {
                break;
            }
            moved = true;
            walked.push(now.to_string());
            at = now;
        }
    }
    let key = at.as_str().unwrap_or_default().to_owned();
    if !moved || !own.contains(&key) {
        return Err(format!(
            "the arrow keys did not reach another of the holder's lanes ({own:?}); focus went {}",
            walked.join(" → ")
        ));
    }
    press(browser, &Key::Enter.to_string()).await?;
    let endpoint = key.split(' ').nth(1).unwrap_or_default().to_owned();
    wait_for_text(browser, "#detail h2", |t| t.ends_with(&endpoint))
        .await
        .map_err(|e| format!("Enter on the bar of {key} opened no detail of it: {e}"))?;
    press(browser, &Key::Escape.to_string()).await?;
    click(browser, &bar).await?;
    wait_for_text(browser, "#detail .parent", |t| t.contains("(pid")).await?;
    wait_for_text(browser, "#conn-summary", |t| !t.is_empty()).await?;
    check("timeline detail").await?;
    c.goto(&format!("{}&tab=sockets&q={}", agent.url, risky.port))
        .await
        .map_err(|e| e.to_string())?;
    wait_for_text(browser, "#sockets tr.row .tag.risk", |t| {
        t.contains("exposed")
    })
    .await?;
    check("risk tag").await?;

    let port = holder.ports.tcp4;
    c.goto(&format!("{}&tab=sockets&q={}", agent.url, holder.pid()))
        .await
        .map_err(|e| e.to_string())?;
    wait_for_row(browser, port).await;
    check("table").await?;
    click(
        browser,
        &format!("#sockets tbody tr[data-id^='tcp 127.0.0.1:{port} - ']"),
    )
    .await?;
    wait_for_text(browser, "#detail .parent", |t| t.contains("(pid")).await?;
    check("detail").await?;
    click(browser, "#action-bind").await?;
    wait_for_text_within(
        browser,
        "#answer-live #verdict",
        Duration::from_secs(60),
        |t| !t.is_empty(),
    )
    .await?;
    check("doctor").await?;
    click(browser, "#action-stop").await?;
    wait_for_text(browser, "#stop-dialog", |t| t.contains("python3")).await?;
    check("dialog").await?;
    press(browser, &Key::Escape.to_string()).await?;
    Ok(found)
}

/// Keyboard, screen readers, contrast, motion and a phone-sized window: rows are reached with
/// Tab, moved through with the arrows and opened with Enter; sort headers are buttons that say
/// their order (`aria-sort`); the stop dialog is a modal `<dialog>` that takes the focus and keeps
/// it; doctor answers arrive in a live region with verdicts in words; axe-core finds no serious
/// or critical violation on the table, the detail, the doctor's answer and the dialog, in the
/// light and the dark scheme; new rows do not fade with reduced motion; and at 420 px each socket
/// is a card that shows its port, process and state with nothing overflowing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_is_accessible_and_fits_a_narrow_window() {
    let mut holder = Holder::start();
    // A debugger on all interfaces: its row carries the red "exposed" tag, whose contrast the
    // dark scheme once failed.
    let debug_port = crate::support::free_port().to_string();
    let risky = Situation::start(&[
        "listen-at",
        "0.0.0.0",
        &debug_port,
        &format!("--inspect=0.0.0.0:{debug_port}"),
    ]);
    let agent = Agent::start();
    let axe_js = axe_source().unwrap();
    let light = Browser::start().await;
    let result = accessible(&light, &agent, &mut holder, &risky, &axe_js).await;
    let light_found = light.finish(result).await;
    let dark = Browser::start_with(&[
        "--blink-settings=preferredColorScheme=0",
        "--force-prefers-reduced-motion",
    ])
    .await;
    let result = async {
        let media = dark
            .client
            .execute(
                "return [matchMedia('(prefers-color-scheme: dark)').matches, \
                         matchMedia('(prefers-reduced-motion: reduce)').matches];",
                vec![],
            )
            .await
            .map_err(|e| e.to_string())?;
        if media != serde_json::json!([true, true]) {
            return Err(format!(
                "Chromium did not take the dark scheme and reduced motion: {media:?}"
            ));
        }
        let found = axe_views(&dark, &agent, &holder, &risky, &axe_js).await?;
        // A new row is marked at once and stays marked, without a fade.
        let port: u16 = holder
            .command("listen")
            .parse()
            .map_err(|e| format!("holder: {e}"))?;
        let row = wait_for_row(&dark, port).await;
        let timing = dark
            .client
            .execute(
                "return getComputedStyle(arguments[0]).animationTimingFunction;",
                vec![serde_json::to_value(&row).map_err(|e| e.to_string())?],
            )
            .await
            .map_err(|e| e.to_string())?;
        if timing != "steps(1)" && timing != "steps(1, end)" {
            return Err(format!(
                "with reduced motion a new row still animates: {timing}"
            ));
        }
        Ok::<_, String>(found)
    }
    .await;
    let dark_found = dark.finish(result).await;
    eprintln!(
        "axe-core: {} serious or critical violations in the light scheme, {} in the dark",
        light_found.len(),
        dark_found.len()
    );
    assert!(
        light_found.is_empty() && dark_found.is_empty(),
        "axe-core found serious or critical violations:\nlight:\n{}\ndark:\n{}",
        light_found.join("\n"),
        dark_found.join("\n")
    );
}

/// The light-scheme part: axe's views, then the keyboard, the live region, the dialog's focus,
/// motion and the narrow window. Returns axe's violations.
async fn accessible(
    browser: &Browser,
    agent: &Agent,
    holder: &mut Holder,
    risky: &Situation,
    axe_js: &str,
) -> Result<Vec<String>, String> {
    let c = &browser.client;
    let found = axe_views(browser, agent, holder, risky, axe_js).await?;

    // The doctor's answer is announced: it sits in a polite live region, each verdict in words.
    let words = c
        .execute(
            "const live = document.getElementById('answer-live'); \
             return [live.getAttribute('aria-live'), \
                     [...live.querySelectorAll('li.check, #verdict')].map(el => \
                        [el.dataset.verdict || [...el.classList].find(c => c.startsWith('verdict-')).slice(8), \
                         (el.querySelector('.verdict-word') || {}).textContent, \
                         (el.querySelector('.icon') || {}).ariaHidden])];",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    let expected = |verdict: &str| match verdict {
        "ok" => "OK",
        "info" => "Info",
        "unchecked" => "Not checked",
        "warning" => "Warning",
        "problem" => "Problem",
        _ => "Unknown",
    };
    let verdicts = words[1].as_array().cloned().unwrap_or_default();
    if words[0] != "polite"
        || verdicts.len() < 2
        || !verdicts.iter().all(|v| {
            v[1].as_str() == Some(expected(v[0].as_str().unwrap_or_default())) && v[2] == "true"
        })
    {
        return Err(format!(
            "the doctor's verdicts are not announced in words: {words:?}"
        ));
    }

    // Sort headers are buttons: focused and pressed with Enter, the order flips and is said.
    c.execute(
        "document.querySelector(\"th[data-column='local'] button\").focus();",
        vec![],
    )
    .await
    .map_err(|e| e.to_string())?;
    let sort =
        "return document.querySelector(\"th[data-column='local']\").getAttribute('aria-sort');";
    let before = c.execute(sort, vec![]).await.map_err(|e| e.to_string())?;
    press(browser, &Key::Enter.to_string()).await?;
    let after = c.execute(sort, vec![]).await.map_err(|e| e.to_string())?;
    let others = c
        .execute(
            "return document.querySelectorAll('th[aria-sort]').length;",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    if before != "ascending" || after != "descending" || others != 1 {
        return Err(format!(
            "Enter on the sort header: aria-sort {before:?} → {after:?}, {others} sorted headers"
        ));
    }
    press(browser, &Key::Enter.to_string()).await?;

    // Tab from the last header reaches the rows (one tab stop); arrows move; Enter opens.
    c.execute(
        "document.querySelector(\"th[data-column='user'] button\").focus();",
        vec![],
    )
    .await
    .map_err(|e| e.to_string())?;
    press(browser, &Key::Tab.to_string()).await?;
    let ids = c
        .execute(
            "return [...document.querySelectorAll('#sockets tr.row')].map(r => r.dataset.id);",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    let ids: Vec<String> = serde_json::from_value(ids).map_err(|e| e.to_string())?;
    if ids.len() < 3 {
        return Err(format!("too few rows for the keyboard test: {ids:?}"));
    }
    // The tab stop is the row last focused (the one clicked above), else the first.
    let first = focused(browser).await?;
    let Some(at) = ids.iter().position(|id| first["row"] == id.as_str()) else {
        return Err(format!("Tab after the headers focused {first}, not a row"));
    };
    // Down, down, up: one row further (or back up from the last rows).
    let last = ids.len() - 1;
    let want = [1isize, 1, -1]
        .into_iter()
        .fold(at, |i, step| i.saturating_add_signed(step).min(last));
    press(browser, &format!("{}{}", Key::Down, Key::Down)).await?;
    press(browser, &Key::Up.to_string()).await?;
    let now = focused(browser).await?;
    if now["row"] != ids[want].as_str() {
        return Err(format!(
            "from row {at}, down, down, up focused {now}, not row {want} {:?}",
            ids[want]
        ));
    }
    press(browser, &Key::Enter.to_string()).await?;
    let endpoint = ids[want].split(' ').nth(1).unwrap_or_default().to_owned();
    wait_for_text(browser, "#detail h2", |t| t.ends_with(&endpoint))
        .await
        .map_err(|e| format!("Enter on a row did not open its detail: {e}"))?;

    // The stop dialog is modal, takes the focus and keeps it; Escape closes it.
    click(browser, "#action-stop").await?;
    wait_for_text(browser, "#stop-dialog", |t| t.contains("python3")).await?;
    let modal = c
        .execute(
            "const d = document.getElementById('stop-dialog'); \
             return [d.tagName, d.open, d.matches(':modal')];",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    if modal != serde_json::json!(["DIALOG", true, true]) {
        return Err(format!(
            "the stop confirmation is not a modal dialog: {modal:?}"
        ));
    }
    let start = focused(browser).await?;
    if start["id"] != "stop-cancel" {
        return Err(format!(
            "the dialog opened with the focus on {start}, not Cancel"
        ));
    }
    for keys in [
        Key::Tab.to_string(),
        Key::Tab.to_string(),
        Key::Tab.to_string(),
        format!("{}{}", Key::Shift, Key::Tab),
    ] {
        press(browser, &keys).await?;
        let at = focused(browser).await?;
        if at["in_dialog"] != true {
            return Err(format!("Tab left the dialog for {at}"));
        }
    }
    press(browser, &Key::Escape.to_string()).await?;
    let open = c
        .execute(
            "return document.getElementById('stop-dialog').open;",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    if open != false {
        return Err("Escape did not close the dialog".into());
    }

    // Without reduced motion, new rows fade (the dark run checks that they do not with it).
    let port: u16 = holder
        .command("listen")
        .parse()
        .map_err(|e| format!("holder: {e}"))?;
    let row = wait_for_row(browser, port).await;
    let timing = c
        .execute(
            "return getComputedStyle(arguments[0]).animationTimingFunction;",
            vec![serde_json::to_value(&row).map_err(|e| e.to_string())?],
        )
        .await
        .map_err(|e| e.to_string())?;
    if timing != "ease-out" {
        return Err(format!("a new row does not fade in: {timing}"));
    }

    // A phone: 420 px wide. Each socket is a card; nothing sticks out or scrolls sideways.
    press(browser, &Key::Escape.to_string()).await?;
    c.set_window_size(420, 900)
        .await
        .map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + WAIT;
    let narrow = loop {
        let narrow = c
            .execute(
                "const width = window.innerWidth; \
                 const sticking = [...document.querySelectorAll('header, .toolbar, .troubleshoot, table, tr, td, #detail, .answer')] \
                   .filter(el => el.getBoundingClientRect().right > width + 0.5) \
                   .map(el => el.tagName + '.' + el.className); \
                 const scrolling = [...document.querySelectorAll('*')] \
                   .filter(el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX) \
                              && el.scrollWidth > el.clientWidth + 1) \
                   .map(el => el.tagName + '.' + el.className); \
                 const cards = [...document.querySelectorAll('#sockets tr.row')].map(r => { \
                   const cell = css => { const c = r.querySelector(css); const b = c.getBoundingClientRect(); \
                     return { text: c.textContent, cut: c.scrollWidth > c.clientWidth + 1, \
                              shown: b.width > 0 && b.right <= width + 0.5 }; }; \
                   return { id: r.dataset.id, height: r.getBoundingClientRect().height, \
                            local: cell('td.local'), process: cell('td.process'), state: cell('td.state') }; }); \
                 return { width, page: document.documentElement.scrollWidth, sticking, scrolling, cards };",
                vec![],
            )
            .await
            .map_err(|e| e.to_string())?;
        let settled = narrow["width"].as_u64().is_some_and(|w| w <= 420)
            && narrow["cards"][0]["height"]
                .as_f64()
                .is_some_and(|h| (h - 92.0).abs() < 0.5);
        if settled {
            break narrow;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("the page never laid out for 420 px: {narrow}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if narrow["page"].as_u64() > narrow["width"].as_u64()
        || narrow["sticking"].as_array().is_none_or(|a| !a.is_empty())
        || narrow["scrolling"].as_array().is_none_or(|a| !a.is_empty())
    {
        return Err(format!("at 420 px something overflows: {narrow}"));
    }
    for card in narrow["cards"].as_array().cloned().unwrap_or_default() {
        let id = card["id"].as_str().unwrap_or_default();
        let port = id
            .split(' ')
            .nth(1)
            .and_then(|e| e.rsplit(':').next())
            .unwrap_or_default();
        let ok = |cell: &str, want: &dyn Fn(&str) -> bool| {
            card[cell]["shown"] == true
                && card[cell]["cut"] == false
                && want(card[cell]["text"].as_str().unwrap_or_default())
        };
        if !(ok("local", &|t| t.contains(&format!(":{port}")))
            && ok("process", &|t| t.contains("python3"))
            && ok("state", &|t| !t.is_empty()))
        {
            return Err(format!(
                "a card at 420 px does not show port, process and state whole: {card}"
            ));
        }
    }
    if narrow["cards"].as_array().is_none_or(|c| c.len() < 3) {
        return Err(format!("too few cards at 420 px: {narrow}"));
    }

    // The timeline and Recent changes fit too: nothing sticks out, nothing scrolls sideways.
    click(browser, "#tab-timeline").await?;
    on_element(browser, "#timeline-svg .bar", |el| async move {
        el.attr("data-at").await
    })
    .await?;
    let fits = c
        .execute(
            "const width = window.innerWidth;              const sticking = [...document.querySelectorAll('header, .toolbar, .recent, .recent li, .timeline, .timeline-bar, .plot, #timeline-svg')]                .filter(el => el.getBoundingClientRect().right > width + 0.5)                .map(el => el.tagName + '.' + el.className.baseVal === undefined ? el.className : el.id);              const scrolling = [...document.querySelectorAll('*')]                .filter(el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX)                           && el.scrollWidth > el.clientWidth + 1)                .map(el => el.tagName + '.' + el.className);              const svg = document.getElementById('timeline-svg').getBoundingClientRect();              return { width, page: document.documentElement.scrollWidth, sticking, scrolling, svg: svg.width };",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    if fits["page"].as_u64() > fits["width"].as_u64()
        || fits["sticking"].as_array().is_none_or(|a| !a.is_empty())
        || fits["scrolling"].as_array().is_none_or(|a| !a.is_empty())
        || fits["svg"].as_f64().is_none_or(|w| w < 200.0)
    {
        return Err(format!("at 420 px the timeline does not fit: {fits}"));
    }
    Ok(found)
}

/// The timeline's bar for the listener on 127.0.0.1:`port` (`ended`: only once its bar ends).
fn bar_css(port: u16, ended: bool) -> String {
    let mut css = format!("#timeline-svg .bar[data-key='tcp 127.0.0.1:{port}']");
    if ended {
        css.push_str(".ended");
    }
    css
}

/// Whether a bar's classes say its listener still lasts (`open`) or ended (`ended`).
fn is_open(class: &str) -> bool {
    class.split_whitespace().any(|c| c == "open")
}

fn is_ended(class: &str) -> bool {
    class.split_whitespace().any(|c| c == "ended")
}

/// Whether "Recent changes" (`text`) lists the opening of 127.0.0.1:`port` by `pid`. The agent
/// may see a socket a tick before its owner: then the opening names no owner, and a second
/// line names it ("passed on … to python3").
fn lists_opening(text: &str, port: u16, pid: u32) -> bool {
    let named = format!("127.0.0.1:{port} python3 (pid {pid})");
    text.contains(&format!("opened {named}"))
        || (text.contains(&format!("opened 127.0.0.1:{port} (owner hidden)"))
            && text.contains(&format!(
                "passed on 127.0.0.1:{port} to python3 (pid {pid})"
            )))
}

/// What hovering an element shows: its SVG `<title>`.
async fn hover_title(browser: &Browser, css: &str) -> Result<String, String> {
    let script = format!(
        "const t = document.querySelector(\"{css}\"); \
         return t && t.querySelector('title') ? t.querySelector('title').textContent : null;"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let title = browser
            .client
            .execute(&script, vec![])
            .await
            .map_err(|e| e.to_string())?;
        if let Some(title) = title.as_str() {
            return Ok(title.to_owned());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("{css} has no title within {WAIT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the agent's history holds an event of one of `kinds` for the TCP listener on
/// 127.0.0.1:`port` owned by `pid` (the port number alone could be another test's UDP socket):
/// the page's first look then finds it in the history, not in the live events.
fn recorded(agent: &Agent, port: u16, pid: u32, kinds: &[&str]) {
    crate::support::wait_for(
        &format!("the history to record {kinds:?} of tcp 127.0.0.1:{port} by pid {pid}"),
        WAIT,
        || {
            let r = agent.get(&format!("/api/v1/history?port={port}&since=1h"));
            let body: serde_json::Value = serde_json::from_str(&r.body).ok()?;
            body["events"]
                .as_array()?
                .iter()
                .any(|e| {
                    e["proto"] == "tcp"
                        && e["local_addr"] == "127.0.0.1"
                        && e["pid"] == pid
                        && kinds.iter().any(|k| e["kind"] == *k)
                })
                .then_some(())
        },
    );
}

/// The picture of #11 in a real browser: a listener that lived and died before the page opened
/// is a bar from the history's spans, one that opens and closes while the page watches becomes
/// a bar from the live events and ends with its closing; hovering names the owner's pid,
/// clicking opens a detail of that owner (the span's facts once it is gone, the live socket's
/// detail while it lasts, with its connections of the last hour); "Recent changes" lists the
/// openings and closings and leads to the row or the bar.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_shows_listeners_lives_and_recent_changes() {
    let agent = Agent::start();
    // Before the page: a listener opens and closes (the history keeps it).
    let mut early = Situation::start(&["listen", "127.0.0.1"]);
    let (early_port, early_pid) = (early.port, early.pid);
    // Seen with its owner (an opening, or the owner named a tick later).
    recorded(&agent, early_port, early_pid, &["opened", "owner_changed"]);
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(early_pid as i32).unwrap(),
        rustix::process::Signal::KILL,
    );
    early.wait_exit(WAIT);
    recorded(&agent, early_port, early_pid, &["closed"]);
    // A listener that stays, with three clients that stay connected.
    let stay = Situation::start(&["keep", "127.0.0.1"]);
    let clients: Vec<std::net::TcpStream> = (0..3)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", stay.port)).unwrap())
        .collect();
    // (A wait of two WAITs: on a machine under heavy load the per-minute counts come late.)
    crate::support::wait_for("the history to count three connections", 2 * WAIT, || {
        let r = agent.get(&format!(
            "/api/v1/history/connections?port={}&since=1h",
            stay.port
        ));
        let body: serde_json::Value = serde_json::from_str(&r.body).ok()?;
        eprintln!("connections: {body}");
        let minutes = body["minutes"].as_array()?;
        let accepted: u64 = minutes.iter().filter_map(|m| m["accepted"].as_u64()).sum();
        let open = minutes.iter().filter_map(|m| m["open"].as_u64()).max()?;
        (accepted == 3 && open == 3).then_some(())
    });
    let browser = Browser::start().await;
    let result = async {
        let c = &browser.client;
        c.goto(&format!("{}&tab=timeline", agent.url))
            .await
            .map_err(|e| e.to_string())?;
        wait_for_attr(&browser, "#tab-timeline", "aria-selected", |v| v == "true").await?;
        // The filter narrows the timeline and Recent changes alike (other tests' sockets come
        // and go meanwhile; a port alone asks the history for that port's changes).
        set_filter(&browser, &early_port.to_string()).await;

        // The early listener: a bar from the history, ended, its title naming its owner.
        let early_bar = bar_css(early_port, true);
        on_element(&browser, &early_bar, |el| async move {
            el.attr("data-at").await
        })
        .await
        .map_err(|e| format!("no ended bar for the early listener: {e}"))?;
        let title = hover_title(&browser, &early_bar).await?;
        if !(title.contains(&format!("pid {early_pid}"))
            && title.contains("python3")
            && title.contains("situation.py listen 127.0.0.1"))
        {
            return Err(format!(
                "the early bar's title does not name its owner: {title:?}"
            ));
        }
        // Clicking it opens the detail of that owner, who is gone: the span's facts.
        click(&browser, &early_bar).await?;
        let detail = wait_for_text(&browser, "#detail", |t| {
            t.contains(&format!("pid {early_pid}"))
        })
        .await
        .map_err(|e| format!("clicking the early bar opened no detail of its owner: {e}"))?;
        if !(detail.contains(&format!("tcp 127.0.0.1:{early_port}"))
            && detail.contains("situation.py listen 127.0.0.1")
            && !detail.contains("not yet"))
        {
            return Err(format!(
                "the early owner's detail lacks its facts: {detail:?}"
            ));
        }
        // "Recent changes" has both of its events, from the history.
        wait_for_text(&browser, "#recent", |t| {
            lists_opening(t, early_port, early_pid)
        })
        .await
        .map_err(|e| format!("Recent changes lacks the early opening: {e}"))?;
        let want = format!("closed 127.0.0.1:{early_port} python3 (pid {early_pid})");
        wait_for_text(&browser, "#recent", |t| t.contains(&want))
            .await
            .map_err(|e| format!("Recent changes lacks {want:?}: {e}"))?;

        // A listener opens while the page watches: its bar appears without a reload, open.
        let mut live = Situation::start(&["listen", "127.0.0.1"]);
        let (live_port, live_pid) = (live.port, live.pid);
        set_filter(&browser, &live_port.to_string()).await;
        let open_bar = bar_css(live_port, false);
        wait_for_attr(&browser, &open_bar, "class", is_open)
            .await
            .map_err(|e| {
                format!("a listener opened while the page watched has no open bar: {e}")
            })?;
        wait_for_text(&browser, "#recent", |t| {
            lists_opening(t, live_port, live_pid)
        })
        .await?;
        // It closes: the live closing ends its bar, and Recent changes says so.
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(live_pid as i32).unwrap(),
            rustix::process::Signal::KILL,
        );
        live.wait_exit(WAIT);
        wait_for_attr(&browser, &open_bar, "class", is_ended)
            .await
            .map_err(|e| format!("the closing did not end the live bar: {e}"))?;
        let closed = format!("closed 127.0.0.1:{live_port} python3 (pid {live_pid})");
        wait_for_text(&browser, "#recent", |t| t.contains(&closed)).await?;
        let title = hover_title(&browser, &open_bar).await?;
        if !title.contains(&format!("pid {live_pid}")) {
            return Err(format!(
                "the live bar's title does not name pid {live_pid}: {title:?}"
            ));
        }
        // Its "closed" line leads to its bar: picked, with its owner's detail.
        click(
            &browser,
            &format!("#recent .event-link[data-kind='closed'][data-port='{live_port}']"),
        )
        .await?;
        wait_for_attr(&browser, &open_bar, "class", |c| c.contains("picked")).await?;
        wait_for_text(&browser, "#detail", |t| {
            t.contains(&format!("pid {live_pid}")) && t.contains(&format!("127.0.0.1:{live_port}"))
        })
        .await
        .map_err(|e| format!("the closed line did not open its owner's detail: {e}"))?;

        // The listener that stays: its bar opens the live socket's detail, with its connections.
        set_filter(&browser, &stay.port.to_string()).await;
        click(&browser, &bar_css(stay.port, false)).await?;
        wait_for_text(&browser, "#detail h2", |t| {
            t == format!("tcp 127.0.0.1:{}", stay.port)
        })
        .await
        .map_err(|e| format!("an open bar did not open its socket's detail: {e}"))?;
        wait_for_text(&browser, "#detail .parent", |t| t.contains("(pid"))
            .await
            .map_err(|e| format!("the open bar's detail is not the live one: {e}"))?;
        let summary = wait_for_text(&browser, "#conn-summary", |t| t.starts_with("peak"))
            .await
            .map_err(|e| format!("no connections summary: {e}"))?;
        if !summary.starts_with("peak 3 open, 3 accepted in the last hour") {
            return Err(format!(
                "three clients connected, the chart says {summary:?}"
            ));
        }
        let drawn = c
            .execute(
                "const s = document.querySelector('#connections svg.conn-chart'); \
                 return s ? [s.getAttribute('role'), s.querySelectorAll('rect.accepted').length, \
                             !!s.querySelector('polyline.open-line')] : null;",
                vec![],
            )
            .await
            .map_err(|e| e.to_string())?;
        if drawn[0] != "img" || drawn[1].as_u64().is_none_or(|n| n < 1) || drawn[2] != true {
            return Err(format!("the connections chart is not drawn: {drawn:?}"));
        }
        // Zooming in halves the window, which keeps ending at the present; the bars stay.
        click(&browser, "#tl-zoom-in").await?;
        wait_for_text(&browser, "#timeline-range", |t| {
            t.ends_with("– now (30 min)")
        })
        .await?;
        on_element(&browser, &bar_css(stay.port, false), |el| async move {
            el.attr("data-at").await
        })
        .await?;
        // For the record: `PORTSCOPE_SCREENSHOT_TIMELINE=path.png` keeps a picture of this view,
        // zoomed in to the last few minutes.
        if let Ok(path) = std::env::var("PORTSCOPE_SCREENSHOT_TIMELINE") {
            set_filter(&browser, "").await;
            for _ in 0..3 {
                click(&browser, "#tl-zoom-in").await?;
            }
            wait_for_text(&browser, "#timeline-range", |t| {
                t.ends_with("– now (3 min)")
            })
            .await?;
            let png = c.screenshot().await.map_err(|e| e.to_string())?;
            std::fs::write(&path, png).map_err(|e| format!("{path}: {e}"))?;
            set_filter(&browser, &stay.port.to_string()).await;
        }

        // Back on the Sockets tab, the stay listener's "opened" line filters the table to its
        // port and selects its row.
        press(&browser, &Key::Escape.to_string()).await?;
        click(&browser, "#tab-sockets").await?;
        set_filter(&browser, &format!("opened {}", stay.port)).await;
        click(
            &browser,
            &format!(
                "#recent .event-link[data-kind='opened'][data-port='{}']",
                stay.port
            ),
        )
        .await?;
        wait_for_text(&browser, "#detail h2", |t| {
            t == format!("tcp 127.0.0.1:{}", stay.port)
        })
        .await
        .map_err(|e| format!("an opened line did not select its row: {e}"))?;
        let url = c.current_url().await.map_err(|e| e.to_string())?;
        if url.query() != Some(format!("tab=sockets&q={}", stay.port).as_str()) {
            return Err(format!("the opened line did not filter to the port: {url}"));
        }
        Ok(())
    }
    .await;
    drop(clients);
    browser.finish(result).await;
}

/// An agent without a history: the timeline says so plainly and draws from the live events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_history_the_timeline_says_so_and_draws_live_changes() {
    let agent = Agent::start_with(&["--no-history"]);
    let browser = Browser::start().await;
    let result = async {
        // Filtered to the port the listener will take, as a developer watching for their server
        // would: on a busy machine the unfiltered lanes outnumber the rows drawn, and a new lane
        // can sort below them.
        let port = crate::support::free_port().to_string();
        browser
            .client
            .goto(&format!("{}&tab=timeline&q={port}", agent.url))
            .await
            .map_err(|e| e.to_string())?;
        wait_for_text(&browser, "#timeline-no-history", |t| {
            t.contains("keeps no history (started with --no-history): showing changes since this page opened")
        })
        .await?;
        let mut live = Situation::start(&["listen-at", "127.0.0.1", &port]);
        let bar = bar_css(live.port, false);
        wait_for_attr(&browser, &bar, "class", is_open).await?;
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(live.pid as i32).unwrap(),
            rustix::process::Signal::KILL,
        );
        live.wait_exit(WAIT);
        wait_for_attr(&browser, &bar, "class", is_ended).await?;
        let title = hover_title(&browser, &bar).await?;
        if !title.contains(&format!("pid {}", live.pid)) {
            return Err(format!("the bar's title does not name its pid: {title:?}"));
        }
        wait_for_text(&browser, "#recent", |t| {
            t.contains(&format!("closed 127.0.0.1:{} python3 (pid {})", live.port, live.pid))
        })
        .await?;
        Ok(())
    }
    .await;
    browser.finish(result).await;
}

/// Runs `script` (which returns a value) until `ok` accepts what it returns.
async fn until_js(
    browser: &Browser,
    what: &str,
    limit: Duration,
    script: &str,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> Result<serde_json::Value, String> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let value = browser
            .client
            .execute(script, vec![])
            .await
            .map_err(|e| e.to_string())?;
        if ok(&value) {
            return Ok(value);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("{what} within {limit:?}; last: {value}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The table's rows as `[host (null for the hub's own), key, Host cell]`.
const ROWS_JS: &str = "return [...document.querySelectorAll('#sockets tbody tr.row')].map(r => \
    [r.dataset.host || null, r.dataset.id, (r.querySelector('td.hostname') || {}).textContent || null]);";

/// Picks `value` in the header's host switcher, as a person would (a click on the option).
async fn pick_host(browser: &Browser, value: &str) -> Result<(), String> {
    on_element(browser, "#host-select", |el| async move {
        el.select_by_value(value).await
    })
    .await
}

/// A hub's dashboard (#13), with a peer in a network namespace of its own
/// (`support/machine.rs`): the header's switcher lists this machine and the peer, whose link
/// reads live; picking the peer shows its listener and none of the hub's own rows; "All hosts"
/// shows both, in a Host column; the filter finds a host by its name; the detail of the
/// peer's row and its "who" ask the peer (the hub sends them on); axe-core finds nothing
/// serious or critical with the new controls; and a peer that goes away reads "unreachable",
/// its rows kept but dimmed and said so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hubs_dashboard_switches_between_its_hosts() {
    let mut machine = Machine::start();
    let dir = tempfile::tempdir().unwrap();
    let file = peers_file(dir.path(), &[machine.peer_entry("build-box")]);
    let hub = Agent::start_with(&["--peers", &file]);
    let theirs = machine.situation(&["listen", "127.0.0.1"]);
    let mut mine = Situation::start(&["listen", "127.0.0.1"]);
    // Two namespaces have ports of their own: the two listeners may meet on one number.
    while mine.port == theirs.port {
        mine = Situation::start(&["listen", "127.0.0.1"]);
    }
    let hosts: portscope_shared::Hosts =
        serde_json::from_str(&hub.get("/api/v1/hosts").body).unwrap();
    let local = hosts.hosts[0].name.clone();
    assert!(hosts.hosts[0].local, "{hosts:?}");
    let axe_js = axe_source().unwrap();
    let browser = Browser::start().await;
    let result = hub_dashboard(
        &browser,
        &hub,
        &mut machine,
        &local,
        &theirs,
        &mine,
        &axe_js,
    )
    .await;
    browser.finish(result).await;
}

async fn hub_dashboard(
    browser: &Browser,
    hub: &Agent,
    machine: &mut Machine,
    local: &str,
    theirs: &Situation,
    mine: &Situation,
    axe_js: &str,
) -> Result<(), String> {
    let c = &browser.client;
    c.goto(&format!("{}&tab=sockets", hub.url))
        .await
        .map_err(|e| e.to_string())?;

    // The switcher: all hosts, this machine, the peer; a labelled control.
    let options = until_js(
        browser,
        "the host switcher with three choices",
        WAIT,
        "const s = document.getElementById('host-select'); \
         return s ? [document.querySelector('label[for=host-select]').textContent, \
                     [...s.options].map(o => [o.value, o.textContent])] : null;",
        |v| v[1].as_array().is_some_and(|o| o.len() == 3),
    )
    .await?;
    let want = serde_json::json!([
        "Host",
        [
            ["", "All hosts"],
            [local, format!("{local} (this machine)")],
            ["build-box", "build-box"]
        ]
    ]);
    if options != want {
        return Err(format!("the switcher offers {options}, not {want}"));
    }
    let pill = "#peers [data-host='build-box']";
    wait_for_text_within(browser, pill, Duration::from_secs(30), |t| {
        t == "build-box: live"
    })
    .await?;
    wait_for_status(browser, "live", |t| t == "live").await?;

    // The peer alone: its listener, none of the hub's own rows, each in the Host column.
    pick_host(browser, "build-box").await?;
    let peer_row = format!(
        "#sockets tbody tr.row[data-host='build-box'][data-id*='tcp 127.0.0.1:{} - ']",
        theirs.port
    );
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&peer_row))
        .await
        .map_err(|e| format!("no row of the peer's listener after picking it: {e}"))?;
    let rows = c
        .execute(ROWS_JS, vec![])
        .await
        .map_err(|e| e.to_string())?;
    let all_theirs = rows.as_array().is_some_and(|rows| {
        rows.iter()
            .all(|r| r[0] == "build-box" && r[2] == "build-box")
    });
    let mine_shown = rows
        .to_string()
        .contains(&format!("127.0.0.1:{} - ", mine.port));
    if !all_theirs || mine_shown {
        return Err(format!(
            "with build-box picked the table shows other hosts' rows: {rows}"
        ));
    }
    let url = c.current_url().await.map_err(|e| e.to_string())?;
    if !url.query().is_some_and(|q| q.contains("host=build-box")) {
        return Err(format!("the picked host is not in the URL: {url}"));
    }

    // The peer's map, asked of the peer through the hub: its agent (a portscope process
    // there) serving the hub, which reaches it from its own end of the link (10.231.N.1) — a
    // remote address to the peer; none of the hub's own processes.
    click(browser, "#tab-map").await?;
    let hub_end = machine
        .addr
        .rsplit_once('.')
        .map(|(net, _)| format!("{net}.1"));
    let hub_end = hub_end.ok_or("the test machine's address has no dot")?;
    let map = until_js(
        browser,
        "the peer's map: its agent and the hub's address",
        WAIT,
        "return [[...document.querySelectorAll('#map-svg .node')].map(n => n.getAttribute('aria-label')), \
                 performance.getEntriesByType('resource').map(e => e.name) \
                   .filter(n => n.includes('/api/v1/graph'))];",
        |v| {
            let nodes = v[0].as_array().cloned().unwrap_or_default();
            let has = |prefix: &str| nodes.iter().any(|n| n.as_str().is_some_and(|n| n.starts_with(prefix)));
            has("portscope pid ") && has(&format!("{hub_end} remote address"))
        },
    )
    .await?;
    let asked_peer = map[1].as_array().is_some_and(|urls| {
        !urls.is_empty()
            && urls
                .iter()
                .all(|u| u.as_str().is_some_and(|u| u.contains("host=build-box")))
    });
    if !asked_peer || map[0].to_string().contains(&format!("pid {}", mine.pid)) {
        return Err(format!(
            "with build-box picked the map is not the peer's: {map}"
        ));
    }

    // The peer's timeline, from its own history relayed by the hub: its listener's bar names
    // its pid; the hub's own listener has no bar there; Recent changes lists the peer's
    // opening, not the hub's.
    click(browser, "#tab-timeline").await?;
    let title = hover_title(browser, &bar_css(theirs.port, false)).await?;
    if !title.contains(&format!("pid {}", theirs.pid)) {
        return Err(format!("the peer's bar does not name its pid: {title:?}"));
    }
    let hub_bar = c
        .execute(
            &format!(
                "return document.querySelector(\"{}\") !== null;",
                bar_css(mine.port, false)
            ),
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    if hub_bar != serde_json::Value::Bool(false) && mine.port != theirs.port {
        return Err("with build-box picked the timeline shows the hub's own listener".into());
    }
    let recent = wait_for_text(browser, "#recent .events", |t| {
        lists_opening(t, theirs.port, theirs.pid)
    })
    .await
    .map_err(|e| format!("Recent changes do not list the peer's opening: {e}"))?;
    if lists_opening(&recent, mine.port, mine.pid) {
        return Err(format!(
            "with build-box picked, Recent changes list the hub's own opening: {recent}"
        ));
    }
    click(browser, "#tab-sockets").await?;

    // All hosts: the hub's listener and the peer's, each with its host.
    pick_host(browser, "").await?;
    set_filter(browser, &mine.port.to_string()).await;
    let own_row = format!(
        "#sockets tbody tr.row:not([data-host])[data-id^='tcp 127.0.0.1:{} - ']",
        mine.port
    );
    let own_host = wait_for_text(browser, &format!("{own_row} td.hostname"), |t| {
        !t.is_empty()
    })
    .await
    .map_err(|e| format!("with all hosts, no row of the hub's own listener: {e}"))?;
    if own_host != local {
        return Err(format!(
            "the hub's own row says host {own_host:?}, not {local:?}"
        ));
    }
    set_filter(browser, &theirs.port.to_string()).await;
    wait_for_text(browser, &format!("{peer_row} td.hostname"), |t| {
        t == "build-box"
    })
    .await
    .map_err(|e| format!("with all hosts, no row of the peer's listener: {e}"))?;
    let header = c
        .execute(
            "return [...document.querySelectorAll('#sockets thead th')].map(th => th.dataset.column);",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    if header[0] != "host" || header.as_array().map(Vec::len) != Some(9) {
        return Err(format!(
            "the table's columns are {header}, without Host first"
        ));
    }

    // All hosts on the Timeline: the peer's history merged in, on a lane named after it, its
    // bar naming its pid; the hub's own listener on a lane of its own; a note that says so.
    // (Each looked for with its port in the filter: on a busy machine a lane could lie outside
    // the rows drawn.)
    click(browser, "#tab-timeline").await?;
    let labels_js = "return [...document.querySelectorAll('#timeline-svg .lane-label')].map(l => l.firstChild.textContent);";
    for (port, pid, host, label) in [
        (
            theirs.port,
            theirs.pid,
            "[data-host='build-box']",
            format!("build-box · tcp {}", theirs.port),
        ),
        (
            mine.port,
            mine.pid,
            ":not([data-host])",
            format!("tcp {}", mine.port),
        ),
    ] {
        set_filter(browser, &port.to_string()).await;
        let bar = format!("{}{host}", bar_css(port, false));
        let title = hover_title(browser, &bar).await?;
        if !title.contains(&format!("pid {pid}")) {
            return Err(format!(
                "with all hosts, the bar {bar} does not name pid {pid}: {title:?}"
            ));
        }
        until_js(
            browser,
            &format!("the lane {label:?}"),
            WAIT,
            labels_js,
            |v| {
                v.as_array()
                    .is_some_and(|l| l.iter().any(|x| x.as_str() == Some(label.as_str())))
            },
        )
        .await?;
    }
    wait_for_text(browser, "#timeline-host-note", |t| {
        t.contains("lanes named after it")
    })
    .await
    .map_err(|e| format!("the timeline does not say how hosts are merged: {e}"))?;

    // All hosts in Recent changes: the peer's opening, from its history relayed by the hub,
    // named after it as its lane is; the hub's own opening names no host. The peer's line
    // leads to the peer's bar, picked.
    for (port, pid, host, prefix) in [
        (
            theirs.port,
            theirs.pid,
            "[data-host='build-box']",
            "build-box · ",
        ),
        (mine.port, mine.pid, ":not([data-host])", ""),
    ] {
        set_filter(browser, &port.to_string()).await;
        let link = format!("#recent .event-link[data-kind='opened'][data-port='{port}']{host}");
        let text = wait_for_text(browser, &link, |t| lists_opening(t, port, pid))
            .await
            .map_err(|e| format!("with all hosts, Recent changes lack {link}: {e}"))?;
        if !text.starts_with(prefix) || (prefix.is_empty() && text.contains(" · ")) {
            return Err(format!(
                "with all hosts, the line {text:?} does not start with {prefix:?}"
            ));
        }
    }
    set_filter(browser, &theirs.port.to_string()).await;
    click(
        browser,
        &format!(
            "#recent .event-link[data-kind='opened'][data-port='{}'][data-host='build-box']",
            theirs.port
        ),
    )
    .await?;
    let peer_bar = format!("{}[data-host='build-box']", bar_css(theirs.port, false));
    wait_for_attr(browser, &peer_bar, "class", |c| c.contains("picked"))
        .await
        .map_err(|e| format!("the peer's line in Recent changes did not pick its bar: {e}"))?;
    click(browser, "#tab-sockets").await?;

    // The filter finds a host by its name: the peer's rows, and only those.
    set_filter(browser, "build-box").await;
    let port = format!("127.0.0.1:{} - ", theirs.port);
    until_js(
        browser,
        "only build-box's rows, its listener among them, for the filter `build-box`",
        WAIT,
        ROWS_JS,
        |rows| {
            rows.as_array().is_some_and(|rows| {
                !rows.is_empty()
                    && rows.iter().all(|r| r[0] == "build-box")
                    && rows
                        .iter()
                        .any(|r| r[1].as_str().is_some_and(|id| id.contains(&port)))
            })
        },
    )
    .await?;

    // The peer's row: its detail says where it is, and asks the peer who holds the port.
    click(browser, &peer_row).await?;
    wait_for_text(browser, "#detail .detail-host", |t| t == "build-box").await?;
    let cwd = wait_for_text(browser, "#detail .cwd", |t| t != "…").await?;
    if cwd == "unknown" {
        return Err("the peer's `who` gave no working directory for its listener".into());
    }
    if c.find(Locator::Id("action-stop")).await.is_ok() {
        return Err("a read-only peer's process offers to be stopped".into());
    }
    click(browser, "#action-who").await?;
    wait_for_text(browser, "#answer-live #answer-host", |t| {
        t == "On build-box:"
    })
    .await?;
    let verdict = wait_for_text_within(
        browser,
        "#answer-live #verdict",
        Duration::from_secs(60),
        |t| !t.is_empty(),
    )
    .await?;
    if !verdict.starts_with(&format!("Port {}: ", theirs.port)) {
        return Err(format!(
            "`who` on the peer's port answered {verdict:?}: it did not run on build-box"
        ));
    }
    // The troubleshoot bar now asks the peer too, and says so.
    let machine_asked = c
        .execute(
            "const s = document.getElementById('doctor-host'); return s ? s.value : null;",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    if machine_asked != "build-box" {
        return Err(format!(
            "after the peer's row's question the bar's machine is {machine_asked}, not build-box"
        ));
    }

    // `PORTSCOPE_SCREENSHOT_HUB=path.png cargo test browser` keeps a picture of a hub's page.
    if let Ok(path) = std::env::var("PORTSCOPE_SCREENSHOT_HUB") {
        let png = c.screenshot().await.map_err(|e| e.to_string())?;
        std::fs::write(&path, png).map_err(|e| format!("{path}: {e}"))?;
    }

    // The switcher, the peers' links, the Host column and the answer pass axe-core.
    let found = axe(browser, axe_js).await?;
    if !found.is_empty() {
        return Err(format!(
            "axe-core found serious or critical violations on a hub's page:\n{}",
            found.join("\n")
        ));
    }

    // The peer goes away: unreachable, its rows kept but dimmed, and said so.
    machine.stop_agent();
    let text = wait_for_text_within(browser, pill, Duration::from_secs(45), |t| {
        t.contains("unreachable")
    })
    .await?;
    if text != "build-box: unreachable" {
        return Err(format!("the peer's link reads {text:?}"));
    }
    let title = wait_for_attr(browser, pill, "title", |_| true).await?;
    if !title.contains("its rows are as of") {
        return Err(format!(
            "the peer's link does not say since when: {title:?}"
        ));
    }
    until_js(
        browser,
        "the peer's rows dimmed",
        WAIT,
        "return [...document.querySelectorAll(\"#sockets tbody tr.row[data-host='build-box']\")] \
           .map(r => r.classList.contains('stale'));",
        |v| {
            v.as_array()
                .is_some_and(|v| !v.is_empty() && v.iter().all(|s| s == true))
        },
    )
    .await?;
    wait_for_text(browser, ".stale-note", |t| {
        t.contains("build-box is unreachable")
    })
    .await?;
    wait_for_status(browser, "live", |t| t == "live").await?;

    // A phone: the switcher and the peers' links wrap inside the header, and each card names
    // its host beside its address, whole.
    press(browser, &Key::Escape.to_string()).await?;
    c.set_window_size(420, 900)
        .await
        .map_err(|e| e.to_string())?;
    let narrow = until_js(
        browser,
        "the hub's page laid out for 420 px",
        WAIT,
        "const width = window.innerWidth; \
         const sticking = [...document.querySelectorAll('header, header *, .toolbar, .troubleshoot, .troubleshoot *, table, tr, td')] \
           .filter(el => el.getBoundingClientRect().right > width + 0.5) \
           .map(el => el.tagName + '#' + el.id + '.' + el.className); \
         const cards = [...document.querySelectorAll(\"#sockets tr.row[data-host='build-box']\")].map(r => { \
           const cell = css => { const c = r.querySelector(css); const b = c.getBoundingClientRect(); \
             return { text: c.textContent, cut: c.scrollWidth > c.clientWidth + 1, \
                      shown: b.width > 0 && b.right <= width + 0.5 }; }; \
           return { height: r.getBoundingClientRect().height, host: cell('td.hostname'), local: cell('td.local') }; }); \
         return { width, page: document.documentElement.scrollWidth, sticking, cards };",
        |v| {
            v["width"].as_u64().is_some_and(|w| w <= 420)
                && v["cards"][0]["height"]
                    .as_f64()
                    .is_some_and(|h| (h - 92.0).abs() < 0.5)
        },
    )
    .await?;
    let cards_whole = narrow["cards"].as_array().is_some_and(|cards| {
        !cards.is_empty()
            && cards.iter().all(|card| {
                ["host", "local"]
                    .iter()
                    .all(|cell| card[cell]["shown"] == true && card[cell]["cut"] == false)
                    && card["host"]["text"] == "build-box"
            })
    });
    if narrow["page"].as_u64() > narrow["width"].as_u64()
        || narrow["sticking"].as_array().is_none_or(|a| !a.is_empty())
        || !cards_whole
    {
        return Err(format!("a hub's page at 420 px: {narrow}"));
    }
    if let Ok(path) = std::env::var("PORTSCOPE_SCREENSHOT_HUB_GONE") {
        let png = c.screenshot().await.map_err(|e| e.to_string())?;
        std::fs::write(&path, png).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

/// Records each notification the page makes (the real `Notification` still shows it): a
/// subclass put in its place, which the wasm glue looks up at each call.
const RECORD_NOTIFICATIONS_JS: &str = "if (!window.__notified) { window.__notified = []; \
    const Real = window.Notification; \
    window.Notification = class extends Real { constructor(title, options) { \
      super(title, options); window.__notified.push(title); } }; } \
    return window.Notification.permission;";

/// The Projects view (#12): the page opens on it when a project has a listener; a server
/// started in a git checkout gets its project's card with its port, an Open link and its
/// health, which turns bad when the server answers 500; notifications turned on for the
/// project (permission granted to the browser) arrive when its health turns bad and when it
/// closes, and are listed on the page; the card leads to the table filtered to the project.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projects_view_shows_a_checkouts_server_its_health_and_notifies() {
    let dir = tempfile::tempdir().unwrap();
    let repo = crate::support::git_checkout(dir.path(), "shop-app");
    let status_file = dir.path().join("status");
    let server = Situation::start_in(
        &repo,
        &["http", "127.0.0.1", "Shop", status_file.to_str().unwrap()],
    );
    let port = server.port;
    let agent = Agent::start();
    // An unknown program: the agent checks its health once `why` heard it answer HTTP.
    let why = agent.get(&format!("/api/v1/why?target=127.0.0.1:{port}"));
    assert_eq!(why.status, 200, "{}", why.body);
    let browser = Browser::start_with_prefs(
        &[],
        serde_json::json!({ "profile.default_content_setting_values.notifications": 1 }),
    )
    .await;
    let mut server = Some(server);
    let result = async {
        let c = &browser.client;
        // No tab in the address: the page picks Projects, since projects have listeners.
        c.goto(&agent.url).await.map_err(|e| e.to_string())?;
        let card = "article.card[data-project='shop-app']";
        let service = format!("{card} li.service[data-port='{port}']");
        until_js(
            &browser,
            "the Projects tab chosen and the card shown",
            WAIT,
            &format!(
                "const tab = document.querySelector('#tab-projects'); \
                 return !!tab && tab.getAttribute('aria-selected') === 'true' \
                 && !!document.querySelector(\"{service}\");"
            ),
            |v| v == true,
        )
        .await?;
        let href = on_element(&browser, &format!("{service} a.open"), |el| async move {
            el.attr("href").await
        })
        .await?;
        if href.as_deref() != Some(&format!("http://localhost:{port}/")) {
            return Err(format!("Open links to {href:?}"));
        }
        let text = on_element(&browser, &service, |el| async move { el.text().await }).await?;
        for part in [format!(":{port}"), "python3".into(), "loopback".into()] {
            if !text.contains(&part) {
                return Err(format!("the service reads {text:?}, without {part:?}"));
            }
        }
        // Health: up first (checks every 10 s while a page is open).
        let up = format!("{service} .tag.up");
        until_js(
            &browser,
            "the service's health up",
            Duration::from_secs(30),
            &format!("const t = document.querySelector(\"{up}\"); return t ? t.textContent : null;"),
            |v| v.as_str().is_some_and(|t| t.starts_with("✓ 200 · ")),
        )
        .await?;
        let violations = axe(&browser, &axe_source()?).await?;
        if !violations.is_empty() {
            return Err(format!("axe on the Projects view: {violations:#?}"));
        }
        // Notifications for the project, the browser's permission granted.
        let permission = c
            .execute(RECORD_NOTIFICATIONS_JS, vec![])
            .await
            .map_err(|e| e.to_string())?;
        if permission != "granted" {
            return Err(format!("notification permission: {permission}"));
        }
        click(&browser, &format!("{card} .card-head button.watch")).await?;
        until_js(
            &browser,
            "the project watched",
            WAIT,
            &format!("const b = document.querySelector(\"{card} .card-head button.watch\"); return b && b.getAttribute('aria-pressed');"),
            |v| v == "true",
        )
        .await?;
        std::fs::write(&status_file, "500").unwrap();
        let bad = format!("python3 on :{port} answers 500");
        until_js(
            &browser,
            "a notification that it answers 500",
            Duration::from_secs(30),
            "return window.__notified;",
            |v| v.as_array().is_some_and(|a| a.iter().any(|t| t == bad.as_str())),
        )
        .await?;
        let down = on_element(&browser, &format!("{service} .tag.down"), |el| async move {
            el.text().await
        })
        .await?;
        if down != "✗ 500" {
            return Err(format!("the bad health tag reads {down:?}"));
        }
        // The card leads to the table, filtered to the project's sockets.
        click(&browser, &format!("{card} .show-sockets")).await?;
        until_js(
            &browser,
            "the table filtered to the project",
            WAIT,
            "return [(document.querySelector('#tab-sockets') || {getAttribute: () => null}).getAttribute('aria-selected'), \
                     document.querySelector('#filter').value, location.search];",
            |v| {
                v[0] == "true"
                    && v[1] == "project:shop-app"
                    && v[2].as_str().is_some_and(|s| s.contains("tab=sockets"))
            },
        )
        .await?;
        // One filter for all views: the Port space and the Timeline show the project's listener.
        for (tab, css) in [
            ("ports", format!("#ports-list tr[data-port='{port}']")),
            ("timeline", format!(".lane[data-port='{port}']")),
        ] {
            click(&browser, &format!("#tab-{tab}")).await?;
            until_js(
                &browser,
                &format!("the {tab} view showing the project's listener"),
                WAIT,
                &format!("return !!document.querySelector(\"{css}\");"),
                |v| v == true,
            )
            .await?;
        }
        click(&browser, "#tab-sockets").await?;
        // Closed while the table is on screen: notifications do not need the Projects view.
        drop(server.take());
        let closed = format!("python3 on :{port} closed");
        until_js(
            &browser,
            "a notification that it closed",
            WAIT,
            "return window.__notified;",
            |v| v.as_array().is_some_and(|a| a.iter().any(|t| t == closed.as_str())),
        )
        .await?;
        // The Projects view lists what happened to the watched services.
        click(&browser, "#tab-projects").await?;
        let listed = on_element(&browser, ".watched-changes", |el| async move { el.text().await })
            .await?;
        if !(listed.contains(&bad) && listed.contains(&closed)) {
            return Err(format!("the page lists {listed:?}"));
        }
        // Health is history too: "Recent changes" says when it turned bad, and the timeline
        // draws it under the listener's bar — from the live events, then, after a reload,
        // from the history file's spans.
        // (The filter is still the project's, as *show sockets* set it.)
        let turned = format!("health 127.0.0.1:{port} python3");
        until_js(
            &browser,
            "Recent changes saying the health turned bad",
            WAIT,
            "const l = document.querySelector('#recent .events'); return l ? l.textContent : null;",
            |v| {
                v.as_str()
                    .is_some_and(|t| t.contains(&turned) && t.contains("answers 500"))
            },
        )
        .await?;
        let lane = format!(
            "const lane = document.querySelector(\".lane[data-port='{port}']\"); \
             if (!lane) return null; \
             return [!!lane.querySelector('path.health-up'), \
                     !!lane.querySelector('path.health-down'), \
                     [...lane.querySelectorAll('.bar title')].map(t => t.textContent).join(' | ')];"
        );
        for source in ["the live events", "the history, after a reload"] {
            if source == "the live events" {
                click(&browser, "#tab-timeline").await?;
            } else {
                // Filtered to the port, as before: on a busy machine (other listeners) the lane
                // could otherwise lie outside the rows drawn.
                c.goto(&format!("{}&tab=timeline&q={port}", agent.url))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            until_js(
                &browser,
                &format!("the lane's health up then down, from {source}"),
                WAIT,
                &lane,
                |v| {
                    v[0] == true
                        && v[1] == true
                        && v[2].as_str().is_some_and(|t| {
                            t.contains("health: up (200, ") && t.contains("answers 500 at ")
                        })
                },
            )
            .await?;
        }
        // Zoomed in to a few minutes, the outage is a stretch of its own, still drawn.
        for _ in 0..4 {
            click(&browser, "#tl-zoom-in").await?;
        }
        until_js(
            &browser,
            "the health line drawn in a four-minute window",
            WAIT,
            &lane,
            |v| v[0] == true && v[1] == true,
        )
        .await?;
        screenshot_if_asked(&browser, "PORTSCOPE_SCREENSHOT_TIMELINE_HEALTH").await?;
        Ok(())
    }
    .await;
    drop(server);
    browser.finish(result).await;
}

/// At 420 px (a phone, or a narrow window beside the editor) the Projects view, the Map and
/// the Port space show their content and nothing sticks out or scrolls sideways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projects_map_and_port_space_fit_a_narrow_window() {
    let dir = tempfile::tempdir().unwrap();
    let repo = crate::support::git_checkout(dir.path(), "shop-app");
    let server = Situation::start_in(&repo, &["keep", "127.0.0.1"]);
    let client = Situation::start(&["dial", &server.port.to_string(), "3"]);
    // A pre-fork server beside it: a service line with a long list of owners.
    let _crowd = Situation::start_in(&repo, &["prefork", "127.0.0.1", "14"]);
    let port = server.port;
    let agent = Agent::start();
    let browser = Browser::start().await;
    let result = async {
        let c = &browser.client;
        c.set_window_size(420, 900)
            .await
            .map_err(|e| e.to_string())?;
        c.goto(&agent.url).await.map_err(|e| e.to_string())?;
        let views = [
            (
                "projects",
                format!("article.card[data-project='shop-app'] li.service[data-port='{port}']"),
            ),
            (
                "map",
                format!("#map-svg .node[aria-label^='python3 pid {}']", server.pid),
            ),
            ("ports", "#ports-svg .mark".to_owned()),
        ];
        for (tab, content) in views {
            click(&browser, &format!("#tab-{tab}")).await?;
            // Laid out for 420 px, with the view's content in it and in the window.
            let fits = until_js(
                &browser,
                &format!("the {tab} view laid out at 420 px"),
                WAIT,
                &format!(
                    "const width = window.innerWidth; \
                     const el = document.querySelector(\"{content}\"); \
                     if (!el || width > 420) return null; \
                     const box = el.getBoundingClientRect(); \
                     const panel = document.querySelector('#panel-{tab}'); \
                     const sticking = [...panel.querySelectorAll('*')] \
                       .filter(e => e.getBoundingClientRect().right > width + 0.5) \
                       .map(e => e.tagName + '.' + (e.getAttribute('class') || '')); \
                     const scrolling = [...document.querySelectorAll('*')] \
                       .filter(e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX) \
                                  && e.scrollWidth > e.clientWidth + 1) \
                       .map(e => e.tagName + '.' + (e.getAttribute('class') || '') + '#' + e.id); \
                     return {{ width, page: document.documentElement.scrollWidth, \
                              shown: box.width > 0 && box.left >= 0 && box.right <= width + 0.5, \
                              sticking, scrolling }};"
                ),
                |v| v.is_object(),
            )
            .await?;
            if fits["page"].as_u64() > fits["width"].as_u64()
                || fits["shown"] != true
                || fits["sticking"].as_array().is_none_or(|a| !a.is_empty())
                || fits["scrolling"].as_array().is_none_or(|a| !a.is_empty())
            {
                return Err(format!("at 420 px the {tab} view does not fit: {fits}"));
            }
        }
        Ok(())
    }
    .await;
    drop(client);
    drop(server);
    browser.finish(result).await;
}

/// This machine's ephemeral port range, as the kernel says it.
fn ephemeral_range() -> (u16, u16) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let mut parts = text.split_whitespace().map(|p| p.parse::<u16>().unwrap());
    (parts.next().unwrap(), parts.next().unwrap())
}

/// A port of `range` that is free on 127.0.0.1 now, looked for from a place that depends on
/// this process (parallel runs start apart).
fn free_port_in(range: std::ops::RangeInclusive<u16>) -> u16 {
    let (first, last) = (u32::from(*range.start()), u32::from(*range.end()));
    let span = last - first + 1;
    let start = std::process::id() * 7919 % span;
    (0..span)
        .map(|i| (first + (start + i) % span) as u16)
        .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        .expect("no free port in the range")
}

/// Whether a screenshot of the page was asked for (`PORTSCOPE_SCREENSHOT_<NAME>=path.png`);
/// takes it.
async fn screenshot_if_asked(browser: &Browser, variable: &str) -> Result<(), String> {
    if let Ok(path) = std::env::var(variable) {
        let png = browser
            .client
            .screenshot()
            .await
            .map_err(|e| e.to_string())?;
        std::fs::write(&path, png).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

/// The map (#12): a client process connected three times to a server process over loopback is
/// drawn as two process nodes and one link from the client to the server labelled with the
/// port and the count; a click on the link lists its three connections, a click on the server
/// opens it in the Sockets view (filtered to its pid, its listener's detail open); a second
/// client arriving while the page watches is drawn as a new link without moving the nodes
/// already there, and when it goes its link fades out and leaves; nodes and links are one tab
/// stop each with accessible names, and axe-core finds no serious or critical violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_map_shows_who_talks_to_whom() {
    let server = Situation::start(&["keep", "127.0.0.1"]);
    let client = Situation::start(&["dial", &server.port.to_string(), "3"]);
    let agent = Agent::start();
    let browser = Browser::start().await;
    let result = async {
        let c = &browser.client;
        let axe_js = axe_source()?;
        let port = server.port;
        c.goto(&format!("{}&tab=map&q={port}", agent.url))
            .await
            .map_err(|e| e.to_string())?;
        let link = format!(
            "#map-svg .link[data-key='p{}>p{}']",
            client.pid, server.pid
        );
        wait_for_text(&browser, &format!("{link} .link-label"), |t| {
            t == format!(":{port} ×3")
        })
        .await?;
        let name = on_element(&browser, &link, |el| async move { el.attr("aria-label").await })
            .await?
            .unwrap_or_default();
        let expected = format!(
            "python3 (pid {}) → python3 (pid {}) :{port} ×3: 3 connections",
            client.pid, server.pid
        );
        if name != expected {
            return Err(format!("the link is named {name:?}, not {expected:?}"));
        }
        for pid in [client.pid, server.pid] {
            let text = wait_for_text(
                &browser,
                &format!("#map-svg .node[data-id='p{pid}']"),
                |t| t.contains("python3") && t.contains(&format!("pid {pid}")),
            )
            .await?;
            println!("node: {text:?}");
        }
        // The URL keeps the view.
        let url = c.current_url().await.map_err(|e| e.to_string())?;
        if !url.as_str().contains("tab=map") {
            return Err(format!("the URL lost the view: {url}"));
        }
        // One tab stop among the nodes, one among the links.
        let stops = c
            .execute(
                "return [document.querySelectorAll('#map-svg .node[tabindex=\"0\"]').length, \
                         document.querySelectorAll('#map-svg .link[tabindex=\"0\"]').length, \
                         document.querySelectorAll('#map-svg [role=button]:not([aria-label])').length];",
                vec![],
            )
            .await
            .map_err(|e| e.to_string())?;
        if stops != serde_json::json!([1, 1, 0]) {
            return Err(format!("tab stops (nodes, links, unnamed): {stops}"));
        }
        let violations = axe(&browser, &axe_js).await?;
        if !violations.is_empty() {
            return Err(format!("axe on the map: {violations:#?}"));
        }
        screenshot_if_asked(&browser, "PORTSCOPE_SCREENSHOT_MAP").await?;

        // The link's connections: the client's three ends, to the server's port.
        click(&browser, &format!("{link} .link-label")).await?;
        until_js(
            &browser,
            "the link's three connections listed",
            WAIT,
            "return [...document.querySelectorAll('#link-detail .link-connections li')].map(l => l.textContent);",
            |v| {
                v.as_array().is_some_and(|items| {
                    items.len() == 3
                        && items.iter().all(|i| {
                            i.as_str().is_some_and(|t| {
                                t.contains(&format!("→ 127.0.0.1:{port} ESTABLISHED"))
                            })
                        })
                })
            },
        )
        .await?;
        let violations = axe(&browser, &axe_js).await?;
        if !violations.is_empty() {
            return Err(format!("axe on the link's connections: {violations:#?}"));
        }
        screenshot_if_asked(&browser, "PORTSCOPE_SCREENSHOT_MAP_LINK").await?;
        press(&browser, &Key::Escape.to_string()).await?;

        // A second client arrives: a new link; the nodes already drawn stay where they were.
        let places_js = "return Object.fromEntries([...document.querySelectorAll('#map-svg .node')] \
            .map(n => [n.dataset.id, n.getAttribute('transform')]));";
        let before = c
            .execute(places_js, vec![])
            .await
            .map_err(|e| e.to_string())?;
        let second = Situation::start(&["dial", &port.to_string(), "1"]);
        let second_link = format!(
            "#map-svg .link[data-key='p{}>p{}']",
            second.pid, server.pid
        );
        let class = wait_for_attr(&browser, &second_link, "class", |c| c.contains("new")).await?;
        println!("second link: {class}");
        let after = c
            .execute(places_js, vec![])
            .await
            .map_err(|e| e.to_string())?;
        for (id, place) in before.as_object().into_iter().flatten() {
            if after.get(id) != Some(place) {
                return Err(format!("{id} moved from {place} to {:?}", after.get(id)));
            }
        }
        // It goes: its link fades, then leaves with its node.
        drop(second);
        wait_for_attr(&browser, &second_link, "class", |c| c.contains("gone")).await?;
        until_js(
            &browser,
            "the closed link gone",
            Duration::from_secs(20),
            &format!(
                "return document.querySelector(\"{}\") === null;",
                second_link.replace('"', "\\\"")
            ),
            |v| v == true,
        )
        .await?;

        // A click on the server opens its process in the Sockets view.
        click(&browser, &format!("#map-svg .node[data-id='p{}'] rect", server.pid)).await?;
        wait_for_attr(&browser, "#tab-sockets", "aria-selected", |v| v == "true").await?;
        let filter = on_element(&browser, "#filter", |el| async move { el.prop("value").await })
            .await?
            .unwrap_or_default();
        if filter != server.pid.to_string() {
            return Err(format!("the filter reads {filter:?}, not the server's pid"));
        }
        wait_for_text(&browser, "#detail h2", |t| t.ends_with(&format!(":{port}"))).await?;
        wait_for_text(&browser, "#detail .proc h3", |t| {
            t.contains(&format!("pid {}", server.pid))
        })
        .await?;
        // Back to the map with the keyboard: Enter on the focused node opens it too.
        c.goto(&format!("{}&tab=map&q={port}", agent.url))
            .await
            .map_err(|e| e.to_string())?;
        on_element(&browser, &link, |el| async move { el.attr("data-key").await }).await?;
        c.execute(
            "document.querySelector('#map-svg .node[tabindex=\"0\"]').focus();",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
        let focused_id = c
            .execute("return document.activeElement.dataset.id;", vec![])
            .await
            .map_err(|e| e.to_string())?;
        press(&browser, &Key::Enter.to_string()).await?;
        wait_for_attr(&browser, "#tab-sockets", "aria-selected", |v| v == "true").await?;
        let pid = focused_id
            .as_str()
            .and_then(|id| id.strip_prefix('p'))
            .unwrap_or_default()
            .to_owned();
        wait_for_text(&browser, "#detail .proc h3", |t| t.contains(&format!("pid {pid}")))
            .await?;
        drop(client);
        Ok(())
    }
    .await;
    browser.finish(result).await;
}

/// The port space (#12): the strip shows this machine's ephemeral range as the kernel has it
/// (`/proc/sys/net/ipv4/ip_local_port_range`), a listener below it as a mark named by its
/// owner, and one started inside it flagged — in its mark, its row and a warning that says
/// why (an outgoing connection may take the port: "address already in use"); `free`'s
/// suggestions are marked outside the range; the filter applies; a listener's row opens it
/// in the Sockets view; axe-core finds no serious or critical violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_port_space_flags_a_listener_in_the_ephemeral_range() {
    let (first, last) = ephemeral_range();
    assert!(
        first > 11000,
        "this test wants room below the ephemeral range ({first}–{last})"
    );
    let outside_port = free_port_in(10000..=first - 1000);
    let inside_port = free_port_in(first + 100..=last - 100);
    let outside = Situation::start(&["listen-at", "127.0.0.1", &outside_port.to_string()]);
    let inside = Situation::start(&["listen-at", "127.0.0.1", &inside_port.to_string()]);
    let agent = Agent::start();
    let browser = Browser::start().await;
    let result = async {
        let c = &browser.client;
        let axe_js = axe_source()?;
        c.goto(&format!("{}&tab=ports", agent.url))
            .await
            .map_err(|e| e.to_string())?;
        wait_for_text(&browser, "#ports-summary", |t| {
            t.contains(&format!("ephemeral range {first}–{last} (from the kernel)"))
        })
        .await?;
        let row = |port: u16| format!("#ports-list tr[data-port='{port}']");
        let inside_row = wait_for_text(&browser, &row(inside_port), |t| {
            t.contains("⚠ in the ephemeral range")
        })
        .await?;
        if !inside_row.contains(&format!("python3 (pid {})", inside.pid)) {
            return Err(format!("the flagged row does not name its owner: {inside_row}"));
        }
        let outside_row = wait_for_text(&browser, &row(outside_port), |t| {
            t.contains(&format!("python3 (pid {})", outside.pid))
        })
        .await?;
        if outside_row.contains("ephemeral") {
            return Err(format!("the listener below the range is flagged: {outside_row}"));
        }
        // Each listener's mark: hovering names the owner, the one inside is flagged.
        let marks_js = format!(
            "return [{outside_port}, {inside_port}].map(p => {{ \
               const m = [...document.querySelectorAll('#ports-svg .mark')] \
                 .find(m => +m.dataset.first <= p && p <= +m.dataset.last); \
               return m ? [m.getAttribute('class'), m.querySelector('title').textContent] : null; }});"
        );
        let marks = until_js(&browser, "both listeners' marks", WAIT, &marks_js, |v| {
            v.as_array().is_some_and(|a| a.iter().all(|m| !m.is_null()))
        })
        .await?;
        let (out_mark, in_mark) = (&marks[0], &marks[1]);
        let text = |v: &serde_json::Value, i: usize| v[i].as_str().unwrap_or_default().to_owned();
        if !text(out_mark, 1).contains(&format!("127.0.0.1:{outside_port} tcp python3 (pid {})", outside.pid))
            || !text(in_mark, 1).contains(&format!("127.0.0.1:{inside_port} tcp python3 (pid {})", inside.pid))
        {
            return Err(format!("the marks' titles do not name the owners: {marks}"));
        }
        if !text(in_mark, 0).contains("flagged") || text(out_mark, 0).contains("flagged") {
            return Err(format!("the mark inside the range is not flagged, or the one below is: {marks}"));
        }
        // `free`'s suggestions: outside the ephemeral range, unprivileged.
        let suggested = until_js(
            &browser,
            "free's suggestions marked",
            WAIT,
            "return [...document.querySelectorAll('#ports-svg .suggestion')].map(s => +s.dataset.port);",
            |v| v.as_array().is_some_and(|a| !a.is_empty()),
        )
        .await?;
        for p in suggested.as_array().into_iter().flatten() {
            let p = p.as_u64().unwrap_or_default();
            if p < 1024 || (u64::from(first)..=u64::from(last)).contains(&p) {
                return Err(format!("free suggested {p}, inside the ranges it avoids"));
            }
        }
        // One tab stop among the marks.
        let stops = c
            .execute(
                "return document.querySelectorAll('#ports-svg .mark[tabindex=\"0\"]').length;",
                vec![],
            )
            .await
            .map_err(|e| e.to_string())?;
        if stops != 1 {
            return Err(format!("{stops} marks are tab stops, not one"));
        }
        let violations = axe(&browser, &axe_js).await?;
        if !violations.is_empty() {
            return Err(format!("axe on the port space: {violations:#?}"));
        }
        screenshot_if_asked(&browser, "PORTSCOPE_SCREENSHOT_PORTS").await?;

        // The filter applies: the inside port alone, and the warning names it (on a busy
        // machine it names the first few of many).
        set_filter(&browser, &inside_port.to_string()).await;
        wait_for_text(&browser, "#ports-summary", |t| t.starts_with("1 listener ·")).await?;
        let warning = wait_for_text(&browser, "#ephemeral-warning", |t| {
            t.contains(&format!("127.0.0.1:{inside_port}"))
        })
        .await?;
        for words in ["outgoing connection", "address already in use", &format!("({first}–{last})")] {
            if !warning.contains(words) {
                return Err(format!("the warning does not say {words:?}: {warning}"));
            }
        }
        if !warning.starts_with("⚠ 1 listener inside this machine's ephemeral range") {
            return Err(format!("the warning does not count the one listener shown: {warning}"));
        }
        let rows = c
            .execute(
                "return [...document.querySelectorAll('#ports-list tbody tr')].map(r => +r.dataset.port);",
                vec![],
            )
            .await
            .map_err(|e| e.to_string())?;
        if rows != serde_json::json!([inside_port]) {
            return Err(format!("filtered to {inside_port}, the list shows {rows}"));
        }
        set_filter(&browser, "").await;
        // A row opens its listener in the Sockets view.
        click(&browser, &format!("{} button", row(outside_port))).await?;
        wait_for_attr(&browser, "#tab-sockets", "aria-selected", |v| v == "true").await?;
        wait_for_text(&browser, "#detail h2", |t| {
            t.ends_with(&format!("127.0.0.1:{outside_port}"))
        })
        .await?;
        // So does a mark of one listener (filtered to its port, so that no neighbour merges
        // with it), from the keyboard too.
        c.goto(&format!("{}&tab=ports&q={inside_port}", agent.url))
            .await
            .map_err(|e| e.to_string())?;
        let mark = format!("#ports-svg .mark[data-first='{inside_port}'][data-last='{inside_port}']");
        on_element(&browser, &mark, |el| async move { el.attr("tabindex").await }).await?;
        c.execute(&format!("document.querySelector(\"{mark}\").focus();"), vec![])
            .await
            .map_err(|e| e.to_string())?;
        press(&browser, &Key::Enter.to_string()).await?;
        wait_for_attr(&browser, "#tab-sockets", "aria-selected", |v| v == "true").await?;
        wait_for_text(&browser, "#detail h2", |t| {
            t.ends_with(&format!("127.0.0.1:{inside_port}"))
        })
        .await?;
        Ok(())
    }
    .await;
    browser.finish(result).await;
}

/// The map at the size #12 asks it to stay readable and quick at: 50 processes (in five
/// projects, real git repositories) each holding a connection to ten others, 500 client →
/// server links. No two node boxes overlap on the page, and the time from the drawing to the
/// browser's layout (`data-render-ms`) is printed for the record and held under a second here
/// (the issue's target is 100 ms; a machine shared with other builds is slower).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_map_draws_fifty_processes_and_five_hundred_links() {
    let dir = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    for name in ["shop", "blog", "billing", "search", "auth"] {
        let repo = crate::support::git_checkout(dir.path(), name);
        dirs.push(repo.to_str().unwrap().to_owned());
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/support/mesh.py");
    let mut mesh = std::process::Command::new("python3")
        .arg(script)
        .args(["50", "10", "meshnode"])
        .args(&dirs)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let stdin = mesh.stdin.take();
    let line = crate::support::read_line_within(
        std::io::BufReader::new(mesh.stdout.take().unwrap()),
        Duration::from_secs(60),
    )
    .expect("the mesh did not come up");
    assert!(line.contains("\"pids\""), "{line}");
    let agent = Agent::start();
    let browser = Browser::start().await;
    let result = async {
        let c = &browser.client;
        c.goto(&format!("{}&tab=map&q=meshnode", agent.url))
            .await
            .map_err(|e| e.to_string())?;
        let figures = until_js(
            &browser,
            "500 links drawn",
            Duration::from_secs(30),
            "const p = document.getElementById('panel-map'); \
             if (!p) return null; \
             return [p.dataset.renderLinks || null, p.dataset.renderMs || null, p.dataset.fetchMs || null, \
                     document.querySelectorAll('#map-svg .node').length];",
            |v| v[0] == "500" && v[3] == 50,
        )
        .await?;
        println!(
            "map of 50 processes and 500 links: drawn and laid out in {} ms (graph fetched in {} ms)",
            figures[1].as_str().unwrap_or("?"),
            figures[2].as_str().unwrap_or("?")
        );
        // Drawn from scratch a few times: filtered away, then back (the filter's pause comes
        // before the measured time starts).
        let mut times = Vec::new();
        let figures_js = "const p = document.getElementById('panel-map'); \
             if (!p) return null; \
             return [p.dataset.renderLinks || null, +(p.dataset.renderN || 0), +(p.dataset.renderMs || NaN)];";
        for _ in 0..5 {
            set_filter(&browser, "no-such-process").await;
            until_js(&browser, "the map emptied", WAIT, figures_js, |v| v[0] == "0").await?;
            let n = c
                .execute(figures_js, vec![])
                .await
                .map_err(|e| e.to_string())?[1]
                .clone();
            set_filter(&browser, "meshnode").await;
            let drawn = until_js(&browser, "the map drawn again", WAIT, figures_js, |v| {
                v[0] == "500" && v[1] != n
            })
            .await?;
            times.push(drawn[2].as_f64().unwrap_or(f64::NAN));
        }
        times.sort_by(f64::total_cmp);
        println!("map of 500 links drawn from scratch, 5 times: {times:?} ms (median {} ms)", times[2]);
        if times[2].is_nan() || times[2] > 1000.0 {
            return Err(format!("the map took {} ms to draw", times[2]));
        }
        let overlaps = c
            .execute(
                "const r = [...document.querySelectorAll('#map-svg .node rect')].map(e => e.getBoundingClientRect()); \
                 let n = 0; for (let i = 0; i < r.length; i++) for (let j = i + 1; j < r.length; j++) \
                   if (r[i].left < r[j].right && r[j].left < r[i].right && r[i].top < r[j].bottom && r[j].top < r[i].bottom) n++; \
                 return [r.length, n, document.querySelectorAll('#map-svg .frame').length];",
                vec![],
            )
            .await
            .map_err(|e| e.to_string())?;
        if overlaps[0] != 50 || overlaps[1] != 0 {
            return Err(format!("nodes drawn, overlapping pairs: {overlaps}"));
        }
        if overlaps[2] != 5 {
            return Err(format!("{} project frames, not 5", overlaps[2]));
        }
        screenshot_if_asked(&browser, "PORTSCOPE_SCREENSHOT_MAP_BUSY").await?;
        Ok(())
    }
    .await;
    drop(stdin);
    let _ = mesh.kill();
    let _ = mesh.wait();
    browser.finish(result).await;
}

/// The map and the port space in the dark scheme and with reduced motion: axe-core finds no
/// serious or critical violation (contrast included) in either, nor in a link's connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_map_and_the_port_space_pass_axe_in_the_dark() {
    let server = Situation::start(&["keep", "127.0.0.1"]);
    let client = Situation::start(&["dial", &server.port.to_string(), "2"]);
    let agent = Agent::start();
    let browser = Browser::start_with(&[
        "--blink-settings=preferredColorScheme=0",
        "--force-prefers-reduced-motion",
    ])
    .await;
    let result = async {
        let c = &browser.client;
        let axe_js = axe_source()?;
        let port = server.port;
        c.goto(&format!("{}&tab=map&q={port}", agent.url))
            .await
            .map_err(|e| e.to_string())?;
        let link = format!("#map-svg .link[data-key='p{}>p{}']", client.pid, server.pid);
        wait_for_text(&browser, &format!("{link} .link-label"), |t| {
            t == format!(":{port} ×2")
        })
        .await?;
        let mut found = axe(&browser, &axe_js).await?;
        click(&browser, &format!("{link} .link-label")).await?;
        wait_for_text(&browser, "#link-detail .link-connections", |t| {
            t.contains(&format!("127.0.0.1:{port}"))
        })
        .await?;
        found.extend(axe(&browser, &axe_js).await?);
        screenshot_if_asked(&browser, "PORTSCOPE_SCREENSHOT_MAP_DARK").await?;
        c.goto(&format!("{}&tab=ports", agent.url))
            .await
            .map_err(|e| e.to_string())?;
        wait_for_text(
            &browser,
            &format!("#ports-list tr[data-port='{port}']"),
            |t| t.contains(&format!("pid {}", server.pid)),
        )
        .await?;
        found.extend(axe(&browser, &axe_js).await?);
        screenshot_if_asked(&browser, "PORTSCOPE_SCREENSHOT_PORTS_DARK").await?;
        if found.is_empty() {
            Ok(())
        } else {
            Err(format!("axe in the dark scheme: {found:#?}"))
        }
    }
    .await;
    browser.finish(result).await;
}

/// The live doctor (#22): with kernel events, a server that cannot bind its port shows at
/// once — the header says the agent is live, the Failures lane names the process that failed
/// and the one holding the port with the fix, one click asks the doctor's `bind`, the
/// project's card lists it, and watching the project brings it as a notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_bind_shows_with_its_holder_its_fix_and_a_notification() {
    let dir = tempfile::tempdir().unwrap();
    let repo = crate::support::git_checkout(dir.path(), "shop-api");
    let mut holder = std::process::Command::new("python3")
        .args([
            "-c",
            "import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\n\
             print(s.getsockname()[1],flush=True)\nsys.stdin.read()",
        ])
        .current_dir(&repo)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let port: u16 = crate::support::read_line_within(
        std::io::BufReader::new(holder.stdout.take().unwrap()),
        Duration::from_secs(10),
    )
    .expect("the holder prints its port")
    .trim()
    .parse()
    .unwrap();
    let holder_pid = holder.id();
    let agent = Agent::start_exactly(&["--interval", "1s", "--reconcile", "30s"]);
    let browser = Browser::start_with_prefs(
        &[],
        serde_json::json!({ "profile.default_content_setting_values.notifications": 1 }),
    )
    .await;
    let result = async {
        let c = &browser.client;
        c.goto(&agent.url).await.map_err(|e| e.to_string())?;
        let card = "article.card[data-project='shop-api']";
        until_js(
            &browser,
            "the project's card and a live header",
            WAIT,
            &format!(
                "const b = document.querySelector('.changes-mode'); \
                 return !!document.querySelector(\"{card}\") && !!b && b.dataset.changes + ' ' + b.textContent;"
            ),
            |v| v == "kernel live",
        )
        .await?;
        let permission = c
            .execute(RECORD_NOTIFICATIONS_JS, vec![])
            .await
            .map_err(|e| e.to_string())?;
        if permission != "granted" {
            return Err(format!("notification permission: {permission}"));
        }
        click(&browser, &format!("{card} .card-head button.watch")).await?;
        // Another program, elsewhere, wants the same port.
        let mut failing = std::process::Command::new("python3")
            .args([
                "-c",
                &format!(
                    "import socket,time\ns=socket.socket()\ntry:\n s.bind(('127.0.0.1',{port}))\nexcept OSError:\n pass\ntime.sleep(1)"
                ),
            ])
            .spawn()
            .expect("python3 runs");
        let failing_pid = failing.id();
        let _ = failing.wait();
        let said = format!("python3 (pid {failing_pid}) could not bind 127.0.0.1:{port}");
        let card_failure = wait_for_text(&browser, &format!("{card} li.card-failure"), |t| {
            t.contains(&said)
        })
        .await?;
        if !(card_failure.contains(&format!("python3 (pid {holder_pid}), started "))
            && card_failure.contains(" in shop-api")
            && card_failure.contains("Fix:"))
        {
            return Err(format!("the card's failure reads {card_failure:?}"));
        }
        until_js(
            &browser,
            "a notification of the failure",
            WAIT,
            "return window.__notified;",
            |v| {
                v.as_array()
                    .is_some_and(|a| a.iter().any(|t| t.as_str().is_some_and(|t| t.contains(&said))))
            },
        )
        .await?;
        // The Failures lane beside every view, and the doctor one click away.
        let lane = ".failures li.failure[data-kind='could-not-bind']";
        let text = wait_for_text(&browser, lane, |t| t.contains(&said)).await?;
        if !text.contains(&format!("stop it (portscope kill {port})")) {
            return Err(format!("the lane's failure has no fix: {text:?}"));
        }
        click(&browser, &format!("{lane} button.diagnose")).await?;
        let answer = wait_for_text_within(&browser, "#answer", Duration::from_secs(60), |t| {
            t.contains(&format!("pid {holder_pid}"))
        })
        .await?;
        let target = c
            .execute("return document.querySelector('#doctor-target').value;", vec![])
            .await
            .map_err(|e| e.to_string())?;
        if target != port.to_string().as_str() {
            return Err(format!("the doctor was asked about {target}; answer {answer:?}"));
        }
        let violations = axe(&browser, &axe_source()?).await?;
        if !violations.is_empty() {
            return Err(format!("axe with a failure shown: {violations:#?}"));
        }
        Ok(())
    }
    .await;
    let _ = holder.kill();
    let _ = holder.wait();
    browser.finish(result).await;
}
