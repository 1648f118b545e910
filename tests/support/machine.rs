//! "Other machines" for the hub's tests: each a network namespace of its own (its own sockets,
//! its own loopback), joined to the test's namespace by a veth pair with test addresses
//! (10.231.N.1 here, 10.231.N.2 there), with an agent inside sharing on its address
//! (`--share 10.231.N.2`, port 7678, a fixed token and its own self-signed certificate, kept
//! across restarts). Needs root (`ip netns`); fails saying so otherwise. Everything is removed
//! on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::{Situation, run};

/// The port every machine's agent listens on (each namespace has its own ports).
pub const PORT: u16 = 7678;

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct Machine {
    /// The namespace's name.
    pub netns: String,
    /// Its address, where its agent shares.
    pub addr: String,
    pub token: String,
    pub fingerprint: String,
    dir: tempfile::TempDir,
    agent: Option<Child>,
    /// Options its agent starts with, besides the sharing ones.
    options: Vec<String>,
}

#[track_caller]
fn ip(args: &[&str]) {
    let mut command = Command::new("ip");
    command.args(args);
    let (code, _, err) = run(command);
    assert_eq!(
        code, 0,
        "ip {args:?}: {err} (the hub's tests make network namespaces: run them as root, with iproute2)"
    );
}

impl Machine {
    /// A new namespace with its agent started and sharing.
    #[track_caller]
    pub fn start() -> Machine {
        Self::start_with(&[])
    }

    /// The same, its agent started with these options too (e.g. `--allow-kill`).
    #[track_caller]
    pub fn start_with(options: &[&str]) -> Machine {
        // The veth name claims N (and its subnet) on this machine: a name another run holds
        // (or a crashed one left) makes the kernel refuse, and the next N is tried. Nothing of
        // another run's is ever removed.
        let pid = std::process::id();
        let (n, here, there) = (0..250)
            .map(|i| {
                (pid as usize * 7 + NEXT.fetch_add(1, Ordering::Relaxed) as usize + i) % 250 + 1
            })
            .find_map(|n| {
                let (here, there) = (format!("psh{n}"), format!("psp{n}"));
                let made = Command::new("ip")
                    .args(["link", "add", &here, "type", "veth", "peer", "name", &there])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                made.then_some((n, here, there))
            })
            .expect("no free 10.231.N test subnet (ip link add failed 250 times; run as root)");
        let netns = format!("portscope-{pid}-{n}");
        ip(&["netns", "add", &netns]);
        let mut machine = Machine {
            addr: format!("10.231.{n}.2"),
            token: format!("{:0>40}", format!("machine{n}token")),
            fingerprint: String::new(),
            dir: tempfile::tempdir().unwrap(),
            agent: None,
            options: options.iter().map(|o| (*o).to_owned()).collect(),
            netns: netns.clone(),
        };
        ip(&["link", "set", &there, "netns", &netns]);
        ip(&["addr", "add", &format!("10.231.{n}.1/24"), "dev", &here]);
        ip(&["link", "set", &here, "up"]);
        ip(&[
            "-n",
            &netns,
            "addr",
            "add",
            &format!("{}/24", machine.addr),
            "dev",
            &there,
        ]);
        ip(&["-n", &netns, "link", "set", &there, "up"]);
        ip(&["-n", &netns, "link", "set", "lo", "up"]);
        machine.start_agent();
        machine
    }

    /// Starts its agent (again, after [`Machine::stop_agent`]: same token, same certificate).
    #[track_caller]
    pub fn start_agent(&mut self) {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.netns,
                env!("CARGO_BIN_EXE_portscope"),
            ])
            .args(["serve", "--share", &self.addr, "--port", &PORT.to_string()])
            // Its history in its own directory: the hub relays it.
            .args(["--interval", "250ms"])
            .args(&self.options)
            .env("XDG_CONFIG_HOME", self.dir.path())
            .env("XDG_STATE_HOME", self.dir.path())
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .env("PORTSCOPE_TOKEN", &self.token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start portscope in the namespace");
        // Its first two lines (URL, fingerprint); the rest is drained.
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = || rx.recv_timeout(Duration::from_secs(30)).ok();
        let url = line().unwrap_or_else(|| panic!("the agent in {} printed no URL", self.netns));
        assert!(
            url.starts_with(&format!("https://{}:{PORT}/", self.addr)),
            "{url}"
        );
        let print = line().unwrap_or_default();
        self.fingerprint = print
            .trim()
            .strip_prefix("TLS certificate SHA-256 fingerprint: ")
            .unwrap_or_else(|| panic!("no fingerprint line: {print}"))
            .to_owned();
        self.agent = Some(child);
    }

    /// Stops its agent (SIGKILL) and waits until it is gone.
    pub fn stop_agent(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            let _ = agent.kill();
            let _ = agent.wait();
        }
    }

    /// Its agent's pid (to stop and continue it, as a paused VM).
    pub fn agent_pid(&self) -> u32 {
        self.agent.as_ref().expect("its agent runs").id()
    }

    /// Its base URL, as `peer add` takes it.
    pub fn url(&self) -> String {
        format!("https://{}:{PORT}/", self.addr)
    }

    /// Its `[[peer]]` entry, named `name`.
    pub fn peer_entry(&self, name: &str) -> String {
        format!(
            "[[peer]]\nname = \"{name}\"\nurl = \"{}\"\ntoken = \"{}\"\nfingerprint = \"{}\"\n",
            self.url(),
            self.token,
            self.fingerprint
        )
    }

    /// A situation (`support/situation.py`) run inside the namespace.
    #[track_caller]
    pub fn situation(&self, args: &[&str]) -> Situation {
        Situation::start_wrapped("ip", &["netns", "exec", &self.netns, "python3"], args)
    }
}

/// A peers file (0600, as the hub demands) in `dir` with these entries; its path.
pub fn peers_file(dir: &std::path::Path, entries: &[String]) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("peers.toml");
    std::fs::write(&path, entries.concat()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_str().unwrap().to_owned()
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.stop_agent();
        // Deleting the namespace deletes its end of the veth pair, and so the pair.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}
