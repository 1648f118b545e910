//! Containers behind ports: which container publishes a host port, asked from the container
//! engine's API (Docker's, or Podman's Docker-compatible one) over its Unix socket, so that a
//! `docker-proxy` listener — or, for a user who may not see root's processes, any listener on
//! a published address — is named after its container and image.
//!
//! Owns the engine's discovery (`DOCKER_HOST`, Docker's and Podman's default sockets), the
//! small HTTP/1.0 exchange over the socket, the parsing of `GET /containers/json` and
//! `/containers/{id}/json`, and a cache so a scan asks at most every [`REFRESH`]. It must not
//! touch sockets or processes: the collector hands it the listeners to label, and the OS seam
//! (`os::listening_ports_in`) reads what listens inside a container.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use portscope_shared::Proto;

/// How often the container list is asked for again.
pub const REFRESH: Duration = Duration::from_secs(5);

/// A host port a container publishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub proto: Proto,
    /// `None` when published on every address (`0.0.0.0` / `::`).
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    /// The port inside the container.
    pub port: u16,
    pub name: String,
    pub image: String,
    pub id: String,
    /// The Compose project it belongs to (`com.docker.compose.project`) and where it was
    /// brought up (`com.docker.compose.project.working_dir`).
    pub compose: Option<(String, Option<String>)>,
}

impl Published {
    /// Whether a listener on `addr:port` is this publication.
    pub fn is(&self, proto: Proto, addr: IpAddr, port: u16) -> bool {
        self.proto == proto
            && self.host_port == port
            && match self.host_ip {
                Some(ip) => ip == addr,
                None => addr.is_unspecified(),
            }
    }

    /// How `ls`, `who` and the dashboard name it.
    pub fn label(&self) -> String {
        format!(
            "container {} ({}), port {} inside",
            self.name, self.image, self.port
        )
    }
}

/// A container engine's API socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Engine {
    pub socket: PathBuf,
}

/// Why the container engine could not be asked (each says what to do where it can).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error(
        "no container engine socket was found (Docker's /var/run/docker.sock, Podman's, or DOCKER_HOST)"
    )]
    NotFound,
    #[cfg(not(unix))]
    #[error(
        "could not check containers: portscope asks the container engine over a Unix socket ({0}), which it cannot open on this system"
    )]
    NoUnixSockets(String),
    #[cfg(unix)]
    #[error("the container engine's socket {socket} is not readable: {error}{hint}")]
    Unreadable {
        socket: String,
        error: String,
        hint: &'static str,
    },
    #[cfg(unix)]
    #[error("the container engine did not take the request: {0}")]
    NotTaken(String),
    #[cfg(unix)]
    #[error("the container engine did not answer: {0}")]
    NoAnswer(String),
    #[cfg(unix)]
    #[error("the container engine answered `{0}`")]
    Status(String),
    #[cfg(unix)]
    #[error("the container engine answered no JSON: {0}")]
    NotJson(String),
}

impl Engine {
    /// The engine to ask: `DOCKER_HOST` when it names a Unix socket, else the first of
    /// Docker's, rootful Podman's and the user's Podman socket that exists.
    pub fn detect() -> Option<Engine> {
        if let Ok(host) = std::env::var("DOCKER_HOST") {
            return Self::from_docker_host(&host);
        }
        let mut candidates = vec![
            PathBuf::from("/var/run/docker.sock"),
            PathBuf::from("/run/podman/podman.sock"),
        ];
        if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
            candidates.push(PathBuf::from(runtime).join("podman/podman.sock"));
        }
        candidates
            .into_iter()
            .find(|p| p.exists())
            .map(|socket| Engine { socket })
    }

    /// The engine a `DOCKER_HOST` names: a Unix socket only (a TCP or SSH one is another
    /// machine's, or needs TLS: not asked).
    pub fn from_docker_host(host: &str) -> Option<Engine> {
        host.strip_prefix("unix://")
            .filter(|path| path.starts_with('/'))
            .map(|path| Engine {
                socket: PathBuf::from(path),
            })
    }

    /// `GET path` on the API; the JSON body.
    ///
    /// # Platform-specific behavior
    ///
    /// Windows has no Unix socket in the standard library and Docker Desktop listens on a named
    /// pipe there: the engine is not asked, and the error says so.
    #[cfg(not(unix))]
    fn get(&self, _path: &str) -> Result<serde_json::Value, EngineError> {
        Err(EngineError::NoUnixSockets(
            self.socket.display().to_string(),
        ))
    }

    /// `GET path` on the API; the JSON body.
    #[cfg(unix)]
    fn get(&self, path: &str) -> Result<serde_json::Value, EngineError> {
        use std::io::{Read, Write};
        let mut stream = std::os::unix::net::UnixStream::connect(&self.socket).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                " (join the `docker` group, or run portscope with sudo)"
            } else {
                ""
            };
            EngineError::Unreadable {
                socket: self.socket.display().to_string(),
                error: e.to_string(),
                hint,
            }
        })?;
        let timeout = Some(Duration::from_secs(2));
        let _ = stream.set_read_timeout(timeout);
        let _ = stream.set_write_timeout(timeout);
        // HTTP/1.0: the answer comes whole, without chunked encoding, and the engine closes.
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: engine\r\n\r\n").as_bytes())
            .map_err(|e| EngineError::NotTaken(e.to_string()))?;
        let mut body = Vec::new();
        stream
            .take(8 << 20)
            .read_to_end(&mut body)
            .map_err(|e| EngineError::NoAnswer(e.to_string()))?;
        let text = String::from_utf8_lossy(&body);
        let (head, json) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        if !head.starts_with("HTTP/1.") || head.split(' ').nth(1).is_none_or(|c| c != "200") {
            return Err(EngineError::Status(
                head.lines().next().unwrap_or_default().to_owned(),
            ));
        }
        serde_json::from_str(json).map_err(|e| EngineError::NotJson(e.to_string()))
    }

    /// Every published port of every running container.
    pub fn published(&self) -> Result<Vec<Published>, EngineError> {
        Ok(parse_list(&self.get("/containers/json")?))
    }

    /// The pid of a container's first process on this machine (to look inside its network
    /// namespace); `None` when it is not running.
    pub fn pid(&self, id: &str) -> Result<Option<u32>, EngineError> {
        // Ids are hex; anything else is not sent.
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Ok(None);
        }
        let inspect = self.get(&format!("/containers/{id}/json"))?;
        Ok(inspect
            .pointer("/State/Pid")
            .and_then(serde_json::Value::as_u64)
            .and_then(|p| u32::try_from(p).ok())
            .filter(|&p| p > 0))
    }
}

/// `GET /containers/json` → the ports its containers publish on the host.
pub fn parse_list(containers: &serde_json::Value) -> Vec<Published> {
    let mut out = Vec::new();
    for c in containers.as_array().into_iter().flatten() {
        let name = c
            .pointer("/Names/0")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .trim_start_matches('/')
            .to_owned();
        let image = c
            .get("Image")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_owned();
        let id = c
            .get("Id")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let label = |key: &str| {
            c.pointer("/Labels")
                .and_then(|l| l.get(key))
                .and_then(|v| v.as_str())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let compose = label("com.docker.compose.project")
            .map(|project| (project, label("com.docker.compose.project.working_dir")));
        for p in c
            .get("Ports")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let (Some(public), Some(private)) = (
                p.get("PublicPort").and_then(|v| v.as_u64()),
                p.get("PrivatePort").and_then(|v| v.as_u64()),
            ) else {
                continue;
            };
            let proto = match p.get("Type").and_then(|v| v.as_str()) {
                Some("udp") => Proto::Udp,
                _ => Proto::Tcp,
            };
            let host_ip = p
                .get("IP")
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse::<IpAddr>().ok())
                .filter(|ip| !ip.is_unspecified());
            let (Ok(host_port), Ok(port)) = (u16::try_from(public), u16::try_from(private)) else {
                continue;
            };
            out.push(Published {
                proto,
                host_ip,
                host_port,
                port,
                name: name.clone(),
                image: image.clone(),
                id: id.clone(),
                compose: compose.clone(),
            });
        }
    }
    out
}

/// The container list, asked again at most every [`REFRESH`], the engine looked for again each
/// time too (an agent started before `dockerd`, or a Podman socket that appears later, labels
/// containers within [`REFRESH`]). Errors are kept (said once in the scan's warnings) and the
/// last good list is used meanwhile.
#[derive(Debug, Default)]
pub struct Cache {
    asked: Option<Instant>,
    list: Vec<Published>,
    error: Option<EngineError>,
}

impl Cache {
    /// The published ports, refreshed when stale; empty where no engine runs.
    pub fn published(&mut self) -> &[Published] {
        self.refresh(Engine::detect, Instant::now())
    }

    /// [`Cache::published`] at `now`, with `detect` to find the engine (tests give their own).
    pub fn refresh(
        &mut self,
        detect: impl FnOnce() -> Option<Engine>,
        now: Instant,
    ) -> &[Published] {
        if self
            .asked
            .is_some_and(|t| now.saturating_duration_since(t) < REFRESH)
        {
            return &self.list;
        }
        self.asked = Some(now);
        match detect() {
            None => {
                self.list.clear();
                self.error = None;
            }
            Some(engine) => match engine.published() {
                Ok(list) => {
                    self.list = list;
                    self.error = None;
                }
                Err(e) => self.error = Some(e),
            },
        }
        &self.list
    }

    /// Why the engine could not be asked, if it could not.
    pub fn error(&self) -> Option<&EngineError> {
        self.error.as_ref()
    }
}

/// Why what listens inside a container is not known.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ListeningError {
    /// The container is not running (its name).
    #[error("container {0} is not running")]
    NotRunning(String),
    /// Its sockets could not be read.
    #[error(transparent)]
    Inside(#[from] crate::os::InsideError),
}

/// What a container publishing a port has listening inside, on the published port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inside {
    pub published: Published,
    /// Whether something listens on [`Published::port`] inside; `Err` when it cannot be read.
    pub listening: Result<bool, ListeningError>,
}

/// Asks the engine which container publishes `port` on one of `addrs` (TCP), and looks inside
/// it. `Ok(None)` when no container publishes it; `Err` when the engine cannot be asked.
pub fn inside(port: u16, addrs: &[IpAddr]) -> Result<Option<Inside>, EngineError> {
    let Some(engine) = Engine::detect() else {
        return Err(EngineError::NotFound);
    };
    let published = engine.published()?;
    let Some(p) = addrs
        .iter()
        .find_map(|&a| find(&published, Proto::Tcp, a, port))
        .cloned()
    else {
        return Ok(None);
    };
    let listening = match engine.pid(&p.id)? {
        Some(pid) => crate::os::listening_ports_in(pid)
            .map(|ports| ports.contains(&p.port))
            .map_err(ListeningError::Inside),
        None => Err(ListeningError::NotRunning(p.name.clone())),
    };
    Ok(Some(Inside {
        published: p,
        listening,
    }))
}

/// The publication a listener is, if any.
pub fn find(published: &[Published], proto: Proto, addr: IpAddr, port: u16) -> Option<&Published> {
    published.iter().find(|p| p.is(proto, addr, port))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    #[test]
    fn published_ports_are_read_from_the_container_list() {
        let list = serde_json::json!([
            {"Id": "abc123", "Names": ["/web"], "Image": "nginx:1.25",
             "Labels": {"com.docker.compose.project": "shop",
                        "com.docker.compose.project.working_dir": "/srv/shop"}, "Ports": [
                {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
                {"IP": "0.0.0.0", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"},
                {"IP": "::", "PrivatePort": 53, "PublicPort": 5353, "Type": "udp"},
                {"PrivatePort": 9000, "Type": "tcp"}
            ]},
            {"Id": "def", "Names": ["/db"], "Image": "postgres", "Labels": {}, "Ports": [
                {"IP": "127.0.0.1", "PrivatePort": 5432, "PublicPort": 5433, "Type": "tcp"}
            ]}
        ]);
        let published = parse_list(&list);
        assert_eq!(
            published.len(),
            4,
            "an unpublished port is not a host port: {published:?}"
        );
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let web = find(&published, Proto::Tcp, lo, 8080).unwrap();
        assert_eq!(web.label(), "container web (nginx:1.25), port 80 inside");
        assert_eq!(
            web.compose,
            Some(("shop".into(), Some("/srv/shop".into()))),
            "its Compose project"
        );
        assert_eq!(
            find(&published, Proto::Tcp, lo, 5433).unwrap().compose,
            None
        );
        assert_eq!(
            find(&published, Proto::Tcp, any, 8080),
            None,
            "published on 127.0.0.1 only"
        );
        assert_eq!(find(&published, Proto::Udp, lo, 8080), None);
        assert_eq!(find(&published, Proto::Udp, any, 5353).unwrap().port, 53);
        assert_eq!(
            find(&published, Proto::Udp, "::".parse().unwrap(), 5353)
                .unwrap()
                .name,
            "web"
        );
    }

    /// An engine that answers every `GET` with `list`, on a Unix socket in a temporary directory.
    fn fake_engine(list: serde_json::Value) -> (Engine, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().map_while(Result::ok) {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request);
                let body = list.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{body}"
                );
            }
        });
        (Engine { socket }, dir)
    }

    #[test]
    fn an_engine_started_after_the_agent_is_found_at_the_next_refresh() {
        let (engine, dir) = fake_engine(serde_json::json!([
            {"Id": "abc", "Names": ["/web"], "Image": "busybox", "Labels": {}, "Ports": [
                {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 18081, "Type": "tcp"}
            ]}
        ]));
        let mut cache = Cache::default();
        let start = Instant::now();
        let looked = std::cell::Cell::new(0);
        let none = || {
            looked.set(looked.get() + 1);
            None
        };
        assert!(cache.refresh(none, start).is_empty(), "no engine yet");
        // Within REFRESH: neither looked for again nor asked.
        let found = || {
            looked.set(looked.get() + 1);
            Some(engine.clone())
        };
        assert!(cache.refresh(found, start + REFRESH / 2).is_empty());
        assert_eq!(looked.get(), 1, "looked for once per REFRESH");
        // dockerd started meanwhile: found at the next refresh, and its containers labelled.
        let published = cache.refresh(found, start + REFRESH).to_vec();
        assert_eq!(looked.get(), 2);
        assert_eq!(
            published.iter().map(Published::label).collect::<Vec<_>>(),
            ["container web (busybox), port 80 inside"]
        );
        assert_eq!(cache.error(), None);
        // And when it goes away, its containers go with it.
        assert!(cache.refresh(|| None, start + REFRESH * 2).is_empty());
        drop(dir);
    }

    #[test]
    fn docker_host_names_a_unix_socket_or_nothing() {
        assert_eq!(
            Engine::from_docker_host("unix:///run/user/1000/podman/podman.sock"),
            Some(Engine {
                socket: PathBuf::from("/run/user/1000/podman/podman.sock")
            })
        );
        assert_eq!(Engine::from_docker_host("tcp://192.0.2.1:2376"), None);
        assert_eq!(Engine::from_docker_host("ssh://me@host"), None);
        assert_eq!(Engine::from_docker_host("unix://relative.sock"), None);
    }
}
