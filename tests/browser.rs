//! The dashboard in a real headless Chromium: it shows another process's listener with its
//! owner, filters by port, and highlights a listener that opens while it watches.

use std::time::Duration;

use fantoccini::Locator;
use fantoccini::elements::Element;
use fantoccini::key::Key;

use crate::support::browser::Browser;
use crate::support::{Agent, Holder, free_port};

const WAIT: Duration = Duration::from_secs(15);

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
    c.goto(&format!("{}&q={}", agent.url, holder.pid()))
        .await
        .map_err(|e| e.to_string())?;

    // The token left the address bar.
    let url = c.current_url().await.map_err(|e| e.to_string())?;
    if url.as_str().contains("token") {
        return Err(format!("the token is still in the address bar: {url}"));
    }

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
            u.set_query(Some(&format!("q={port}")));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_reconnects_and_resyncs_after_the_agent_restarts() {
    let mut holder = Holder::start();
    let port = free_port();
    let token = "reconnect-test-token-0123456789abcdef";
    let agent = Agent::start_on(port, token);
    let browser = Browser::start().await;
    let result = async {
        let c = &browser.client;
        c.goto(&format!("{}&q={}", agent.url, holder.pid()))
            .await
            .map_err(|e| e.to_string())?;
        wait_for_row(&browser, holder.ports.tcp4).await;
        wait_for_status(&browser, "live", |t| t == "live").await?;

        // The agent goes away: the page says so and keeps retrying with backoff.
        agent.stop();
        wait_for_status(&browser, "disconnected", |t| {
            t.starts_with("disconnected — retrying in")
        })
        .await?;

        // While it is down, the world changes: a listener closes and another opens.
        assert_eq!(holder.command("close-listener"), "closed");
        let new_port: u16 = holder
            .command("listen")
            .parse()
            .map_err(|e| format!("holder: {e}"))?;

        // Back on the same port with the same token: the page reconnects by itself and resyncs.
        let agent = Agent::start_on(port, token);
        wait_for_status(&browser, "live again", |t| t == "live").await?;
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
    c.goto(&format!("{}&q={port}", agent.url))
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
    let data = c
        .find(Locator::Id("verdict"))
        .await
        .map_err(|e| e.to_string())?
        .attr("data-verdict")
        .await
        .map_err(|e| e.to_string())?;
    if data.as_deref() != Some("problem") {
        return Err(format!(
            "verdict {data:?} for {verdict:?}, expected problem"
        ));
    }
    let family = c
        .find(Locator::Css("#answer li.check[data-check='family']"))
        .await
        .map_err(|e| format!("no family check in the answer: {e}"))?
        .text()
        .await
        .map_err(|e| e.to_string())?;
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
    let row = c
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&css))
        .await
        .map_err(|e| format!("no row for [::1]:{port}: {e}"))?;
    let tag = row
        .find(Locator::Css(".tag.loopback"))
        .await
        .map_err(|e| format!("no loopback tag on the listener: {e}"))?;
    let hover = tag.attr("title").await.map_err(|e| e.to_string())?;
    if !hover.is_some_and(|t| t.contains("this machine alone")) {
        return Err("the loopback tag does not explain itself on hover".into());
    }
    // A row is drawn anew when its socket changes (keyed by id and revision): find it again
    // right before clicking, and retry when it was redrawn in between.
    let mut clicked = Err(String::new());
    for _ in 0..5 {
        clicked = match c.find(Locator::Css(&css)).await {
            Ok(row) => row.click().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if clicked.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    clicked.map_err(|e| format!("cannot click the row for [::1]:{port}: {e}"))?;
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Id("action-stop"))
        .await
        .map_err(|e| format!("no stop action in the detail panel: {e}"))?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    let dialog = wait_for_text(browser, "#stop-dialog", |t| t.contains("python3")).await?;
    if !(dialog.contains(&format!("pid {}", situation.pid))
        && dialog.contains("situation.py")
        && dialog.contains(&format!("[::1]:{port}")))
    {
        return Err(format!(
            "the confirm dialog does not say what it stops: {dialog:?}"
        ));
    }
    c.find(Locator::Id("stop-confirm"))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
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
    let agent = Agent::start();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/support/attacker");
    let attacker = crate::support::Situation::start(&["files", dir]);
    let browser = Browser::start().await;
    let url = format!(
        "http://127.0.0.1:{}/index.html?agent=127.0.0.1:{}&token={}",
        attacker.port, agent.port, agent.token
    );
    let result = async {
        browser.client.goto(&url).await.map_err(|e| e.to_string())?;
        let text = wait_for_text(&browser, "#out", |t| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(t)
                .is_ok_and(|m| m.len() == 6)
        })
        .await?;
        Ok::<_, String>(text)
    }
    .await;
    let text = browser.finish(result).await;
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
/// the rest, scrolling to the end shows the last rows, and a delta of 100 rows is applied (its
/// cost, read from the row count, is printed, not asserted: `cargo xtask bench` reports it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_large_state_through_a_window_of_rows() {
    let many = crate::support::Situation::start(&["many", "2500"]);
    let agent = Agent::start();
    let browser = Browser::start().await;
    let result = async {
        let c = &browser.client;
        // Only this test's sockets, so that other tests' sockets do not move them meanwhile.
        c.goto(&format!("{}&q={}", agent.url, many.pid))
            .await
            .map_err(|e| e.to_string())?;
        let count = wait_for_text(&browser, "#count", |t| t.starts_with("2500 of ")).await?;
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
            return Err(format!("{rendered} rows in the page for 2 500 sockets: {top:?}"));
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

        // 100 more sockets arrive in one delta.
        let _more = crate::support::Situation::start(&["many", "100"]);
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
        let status = status_text(&browser).await;
        Ok::<_, String>((count, status, rendered, rows, ms))
    }
    .await;
    let (count, status, rendered, rows, ms) = browser.finish(result).await;
    assert_eq!(status, "live");
    eprintln!(
        "dashboard: {count}, {rendered} rows in the page; a delta of {rows} rows applied and \
         drawn in {ms} ms"
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
