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
        .find_all(Locator::Css("#sockets tbody tr"))
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
    if result.is_err()
        && let Ok(png) = browser.client.screenshot().await
    {
        let path = std::env::temp_dir().join("portscope-browser-failure.png");
        let _ = std::fs::write(&path, png);
        eprintln!("screenshot of the failing page: {}", path.display());
    }
    let _ = browser.client.clone().close().await;
    result.unwrap();
}

async fn run(
    browser: &Browser,
    agent: &Agent,
    holder: &mut Holder,
    port: u16,
) -> Result<(), String> {
    let c = &browser.client;
    c.goto(&agent.url).await.map_err(|e| e.to_string())?;

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
    set_filter(browser, "python3 LISTEN").await;
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
        c.goto(&agent.url).await.map_err(|e| e.to_string())?;
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
    let _ = browser.client.clone().close().await;
    result.unwrap();
}
