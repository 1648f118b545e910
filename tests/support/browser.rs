//! A real headless Chromium driven through chromedriver (WebDriver), both from Debian's
//! packages. The whole process group is killed on drop, so a failing test leaves no browser.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: TempDir,
}

impl Browser {
    /// Ends a browser test: on failure keeps a screenshot of the page (path printed), then
    /// closes the session and fails with the test's message.
    pub async fn finish<T>(self, result: Result<T, String>) -> T {
        if result.is_err()
            && let Ok(png) = self.client.screenshot().await
        {
            let path = std::env::temp_dir().join("portscope-browser-failure.png");
            let _ = std::fs::write(&path, png);
            eprintln!("screenshot of the failing page: {}", path.display());
        }
        let _ = self.client.clone().close().await;
        result.unwrap()
    }

    /// Starts chromedriver and a headless Chromium session.
    pub async fn start() -> Browser {
        Browser::start_with(&[]).await
    }

    /// The same with more Chromium flags, e.g. `--blink-settings=preferredColorScheme=0` (the
    /// dark scheme) or `--force-prefers-reduced-motion`.
    pub async fn start_with(flags: &[&str]) -> Browser {
        Browser::start_with_prefs(flags, serde_json::Value::Null).await
    }

    /// The same with Chromium preferences, e.g. notifications allowed
    /// (`profile.default_content_setting_values.notifications: 1`, as a person who clicked
    /// "Allow").
    pub async fn start_with_prefs(flags: &[&str], prefs: serde_json::Value) -> Browser {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: install Debian's browser for the tests with \
                 `apt-get install chromium chromium-driver` (the README's test command does this)"
            );
        }
        let profile = TempDir::new();
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,900",
        ]
        .into_iter()
        .chain(flags.iter().copied())
        .map(str::to_owned)
        .collect();
        args.push(format!("--user-data-dir={}", profile.0.display()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            if prefs.is_null() {
                serde_json::json!({ "binary": CHROMIUM, "args": args })
            } else {
                serde_json::json!({ "binary": CHROMIUM, "args": args, "prefs": prefs })
            },
        );
        // A chromedriver that cannot take its port (another test took it between our look and
        // its bind) or does not answer on a loaded machine is replaced, three times at most.
        let mut failures = Vec::new();
        let (client, driver) = loop {
            let (mut driver, port) = spawn_driver();
            let webdriver = format!("http://127.0.0.1:{port}");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            let outcome = loop {
                if let Ok(Some(status)) = driver.try_wait() {
                    break Err(format!("chromedriver on port {port} exited ({status})"));
                }
                let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                match ClientBuilder::new(connector)
                    .capabilities(caps.clone())
                    .connect(&webdriver)
                    .await
                {
                    Ok(client) => break Ok(client),
                    Err(e) if tokio::time::Instant::now() > deadline => {
                        break Err(format!("no session on port {port} within 30 s: {e}"));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            };
            match outcome {
                Ok(client) => break (client, driver),
                Err(e) => {
                    kill_group(&mut driver);
                    failures.push(e);
                    assert!(
                        failures.len() < 3,
                        "could not open a Chromium session through chromedriver: {failures:?}"
                    );
                }
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }
}

/// Starts chromedriver on a free port, in a process group of its own (so that drop can kill it
/// and every browser process it started).
fn spawn_driver() -> (Child, u16) {
    use std::os::unix::process::CommandExt;
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("cannot start chromedriver");
    (driver, port)
}

/// Kills chromedriver's whole process group and reaps it.
fn kill_group(driver: &mut Child) {
    // Never shell out to kill(1) here: procps' `kill -KILL -PGID` can mean "every process".
    if let Some(pgid) = i32::try_from(driver.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    }
    let _ = driver.wait();
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}

/// A directory removed on drop (the browser profile).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("portscope-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
