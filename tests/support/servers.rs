//! Real servers from Debian's packages, started as their users start them: PostgreSQL, Redis
//! and nginx, each on a loopback port of the test's choosing, with its data, configuration and
//! log in a temporary directory of its own, stopped cleanly on drop. A missing package fails
//! the test with the command that installs it (`cargo xtask test` installs them).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_for};

/// Fails with how to install what is missing.
#[track_caller]
fn need(path: &Path, package: &str) {
    assert!(
        path.exists(),
        "{} is missing: install it with `apt-get install {package}` (cargo xtask test does)",
        path.display()
    );
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether something accepts TCP connections on `127.0.0.1:port` (or `[::1]:port`).
pub fn accepts(addr: &str) -> bool {
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_millis(200)).is_ok()
}

/// Sends SIGINT, SIGQUIT, … to a pid (the test's own servers only).
pub fn signal(pid: u32, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    let _ = rustix::process::kill_process(pid, signal);
}

/// Reaps `child` within `limit`; whether it exited.
pub fn reap(child: &mut Child, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// A PostgreSQL cluster of its own (initdb in a temp dir), its postmaster a child of the test,
/// run as the `postgres` user when the test runs as root (PostgreSQL refuses root).
pub struct Postgres {
    pub dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
    child: Option<Child>,
}

impl Postgres {
    #[track_caller]
    pub fn start() -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .flatten()
                    .map(|v| v.path().join("bin"))
                    .find(|b| b.join("initdb").exists())
            })
            .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
        need(&bin.join("initdb"), "postgresql");
        let dir = tempfile::Builder::new()
            .prefix("portscope-pg-")
            .tempdir()
            .unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown to postgres failed");
        }
        let data = dir.path().join("data");
        let out = Self::as_owner(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .expect("cannot run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Postgres {
            dir,
            port: free_port(),
            bin,
            child: None,
        };
        pg.run();
        pg
    }

    /// A command run as the cluster's owner.
    fn as_owner(program: &Path) -> Command {
        if is_root() {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=postgres",
                "--regid=postgres",
                "--clear-groups",
                "--",
            ])
            .arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    /// Starts (or restarts) the postmaster on the cluster and waits until it accepts.
    #[track_caller]
    pub fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = Self::as_owner(&self.bin.join("postgres"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "log_connections=off",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start postgres");
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        wait_for(
            "PostgreSQL to accept connections",
            Duration::from_secs(30),
            || (accepts(&addr) && self.log().contains("ready to accept connections")).then_some(()),
        );
    }

    /// The postmaster's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A `psql` session that runs `sql` (e.g. `select pg_sleep(60)`), kept open while it runs.
    #[track_caller]
    pub fn session(&self, sql: &str) -> Child {
        need(Path::new("/usr/bin/psql"), "postgresql-client");
        Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-X", "-q", "-c", sql])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run psql")
    }

    /// Waits for the postmaster to exit (after a stop); whether it did within `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let Some(child) = self.child.as_mut() else {
            return true;
        };
        let gone = reap(child, limit);
        if gone {
            self.child = None;
        }
        gone
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // Fast shutdown, as portscope itself would.
            signal(child.id(), rustix::process::Signal::INT);
            if !reap(child, Duration::from_secs(20)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A Redis server without persistence, on `addr` (e.g. `::1`) and a free port.
pub struct Redis {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl Redis {
    #[track_caller]
    pub fn start(bind: &str) -> Redis {
        need(Path::new("/usr/bin/redis-server"), "redis-server");
        let dir = tempfile::Builder::new()
            .prefix("portscope-redis-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", bind, "--save", ""])
            // `DEBUG LOG` lets a test write a marker into the log (on loopback only).
            .args(["--enable-debug-command", "yes"])
            .args(["--appendonly", "no", "--daemonize", "no", "--dir"])
            .arg(dir.path())
            .arg("--logfile")
            .arg(dir.path().join("log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start redis-server");
        let addr = if bind.contains(':') {
            format!("[{bind}]:{port}")
        } else {
            format!("{bind}:{port}")
        };
        wait_for(
            "Redis to accept connections",
            Duration::from_secs(20),
            || accepts(&addr).then_some(()),
        );
        Redis { dir, port, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        reap(&mut self.child, limit)
    }
}

/// OpenSSH's server from Debian's `openssh-server`, on a loopback port of its own with a host
/// key made for the test, logging at INFO to a file in its directory.
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl Sshd {
    #[track_caller]
    pub fn start() -> Sshd {
        need(Path::new("/usr/sbin/sshd"), "openssh-server");
        assert!(is_root(), "sshd runs as root in these tests");
        // Its privilege separation directory, which the package's service would make.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::Builder::new()
            .prefix("portscope-sshd-")
            .tempdir()
            .unwrap();
        let key = dir.path().join("host_key");
        let made = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen comes with openssh-client");
        assert!(made.success());
        let port = free_port();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-f", "/dev/null", "-p", &port.to_string()])
            .arg("-h")
            .arg(&key)
            .args(["-o", "ListenAddress=127.0.0.1", "-o", "PidFile=none"])
            .args(["-o", "LogLevel=INFO", "-E"])
            .arg(dir.path().join("log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start sshd");
        let addr = format!("127.0.0.1:{port}");
        wait_for(
            "sshd to accept connections",
            Duration::from_secs(10),
            || accepts(&addr).then_some(()),
        );
        Sshd { dir, port, child }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        signal(self.child.id(), rustix::process::Signal::TERM);
        if !reap(&mut self.child, Duration::from_secs(10)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// nginx with a master and two workers on `127.0.0.1` and a free port, answering `ok`.
pub struct Nginx {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl Nginx {
    #[track_caller]
    pub fn start() -> Nginx {
        Self::start_with(None)
    }

    /// nginx as above, whose `stream` block also proxies raw TCP from `port` to `upstream`
    /// (a Redis, say), as a developer puts nginx in front of a database.
    #[track_caller]
    pub fn start_streaming(port: u16, upstream: u16) -> Nginx {
        need(
            Path::new("/usr/lib/nginx/modules/ngx_stream_module.so"),
            "libnginx-mod-stream",
        );
        Self::start_with(Some((port, upstream)))
    }

    #[track_caller]
    fn start_with(stream: Option<(u16, u16)>) -> Nginx {
        need(Path::new("/usr/sbin/nginx"), "nginx");
        let dir = tempfile::Builder::new()
            .prefix("portscope-nginx-")
            .tempdir()
            .unwrap();
        let port = free_port();
        let d = dir.path().display();
        let (module, stream) = match stream {
            Some((at, to)) => (
                "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n".to_owned(),
                format!(
                    "stream {{\n  server {{\n    listen 127.0.0.1:{at};\n    proxy_pass 127.0.0.1:{to};\n  }}\n}}\n"
                ),
            ),
            None => (String::new(), String::new()),
        };
        let conf = format!(
            "{module}daemon off;\nmaster_process on;\nworker_processes 2;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log notice;\nevents {{ worker_connections 64; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n\
               proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               server {{\n    listen 127.0.0.1:{port};\n\
                 location / {{ return 200 \"<title>nginx here</title>ok\\n\"; }}\n  }}\n}}\n{stream}"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new("/usr/sbin/nginx")
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start nginx");
        let addr = format!("127.0.0.1:{port}");
        wait_for(
            "nginx to accept connections",
            Duration::from_secs(20),
            || accepts(&addr).then_some(()),
        );
        Nginx { dir, port, child }
    }

    /// The master's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        reap(&mut self.child, limit)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        signal(self.child.id(), rustix::process::Signal::CONT);
        signal(self.child.id(), rustix::process::Signal::QUIT);
        if !reap(&mut self.child, Duration::from_secs(10)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A Docker daemon to run test containers: the one running already, or one started here (and
/// stopped on drop), with a registry-free busybox image imported from Debian's `busybox-static`.
pub struct Docker {
    daemon: Option<Child>,
}

/// The image the tests run (`docker import` of a busybox root filesystem).
pub const IMAGE: &str = "portscope-busybox:test";

impl Docker {
    #[track_caller]
    pub fn start() -> Docker {
        need(Path::new("/usr/sbin/dockerd"), "docker.io");
        need(Path::new("/bin/busybox"), "busybox-static");
        let answers = || {
            Command::new("docker")
                .args(["info", "--format", "{{.ServerVersion}}"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let mut docker = Docker { daemon: None };
        if !answers() {
            assert!(
                is_root(),
                "dockerd is not running and only root can start it: run the tests as root, or start dockerd"
            );
            let log =
                std::fs::File::create(std::env::temp_dir().join("portscope-test-dockerd.log"))
                    .unwrap();
            docker.daemon = Some(
                Command::new("/usr/sbin/dockerd")
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().unwrap())
                    .stderr(log)
                    .spawn()
                    .expect("cannot start dockerd"),
            );
            wait_for("dockerd to answer", Duration::from_secs(60), || {
                answers().then_some(())
            });
        }
        let has_image = Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !has_image {
            let root = tempfile::tempdir().unwrap();
            let bin = root.path().join("bin");
            std::fs::create_dir(&bin).unwrap();
            std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
            for tool in ["sh", "sleep", "httpd", "netstat"] {
                std::os::unix::fs::symlink("busybox", bin.join(tool)).unwrap();
            }
            let status = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "tar -C {} -c . | docker import - {IMAGE}",
                    root.path().display()
                ))
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "docker import failed");
        }
        docker
    }

    /// Runs a container publishing `127.0.0.1:host_port` to `port` inside, running `command`;
    /// removed on drop.
    #[track_caller]
    pub fn run(&self, name: &str, host_port: u16, port: u16, command: &[&str]) -> Container {
        self.run_labelled(name, &[], host_port, port, command)
    }

    /// The same with labels (`key=value`), as Compose sets them.
    #[track_caller]
    pub fn run_labelled(
        &self,
        name: &str,
        labels: &[&str],
        host_port: u16,
        port: u16,
        command: &[&str],
    ) -> Container {
        let _ = Command::new("docker").args(["rm", "-f", name]).output();
        let mut docker = Command::new("docker");
        docker.args(["run", "-d", "--name", name]);
        for label in labels {
            docker.args(["--label", label]);
        }
        let out = docker
            .arg("-p")
            .arg(format!("127.0.0.1:{host_port}:{port}"))
            .arg(IMAGE)
            .args(command)
            .output()
            .expect("cannot run docker");
        assert!(
            out.status.success(),
            "docker run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Container {
            name: name.to_owned(),
        }
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        if let Some(daemon) = self.daemon.as_mut() {
            signal(daemon.id(), rustix::process::Signal::TERM);
            if !reap(daemon, Duration::from_secs(20)) {
                let _ = daemon.kill();
                let _ = daemon.wait();
            }
        }
    }
}

/// A test container, removed on drop.
pub struct Container {
    pub name: String,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .output();
    }
}

/// Prometheus (Debian's package) scraping one agent every second with its token, from a
/// configuration, a token file and a database in a temporary directory; its API on a loopback
/// port of its own.
pub struct Prometheus {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl Prometheus {
    #[track_caller]
    pub fn scraping(agent_port: u16, token: &str) -> Prometheus {
        need(Path::new("/usr/bin/prometheus"), "prometheus");
        let dir = tempfile::Builder::new()
            .prefix("portscope-prometheus-")
            .tempdir()
            .unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, token).unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: portscope\n    \
                 authorization:\n      credentials_file: {}\n    \
                 static_configs:\n      - targets: ['127.0.0.1:{agent_port}']\n",
                token_file.display()
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(dir.path().join("log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .expect("cannot start prometheus");
        let addr = format!("127.0.0.1:{port}");
        let host = addr.clone();
        wait_for("Prometheus to be ready", Duration::from_secs(60), || {
            (accepts(&addr)
                && super::http(port, "GET", "/-/ready", &[("Host", &host)]).status == 200)
                .then_some(())
        });
        Prometheus { dir, port, child }
    }

    /// The result vector of an instant PromQL query through Prometheus' HTTP API.
    pub fn query(&self, promql: &str) -> Vec<serde_json::Value> {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", promql)
            .finish();
        let res = super::http(
            self.port,
            "GET",
            &format!("/api/v1/query?{query}"),
            &[("Host", &format!("127.0.0.1:{}", self.port))],
        );
        assert_eq!(res.status, 200, "{}", res.body);
        let body: serde_json::Value = serde_json::from_str(&res.body).unwrap();
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        signal(self.child.id(), rustix::process::Signal::TERM);
        if !reap(&mut self.child, Duration::from_secs(10)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
