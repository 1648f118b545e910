//! Project lookups in helper processes (Linux).
//!
//! A thread that asked a hung FUSE mount (sshfs, …) for a `.git` waits in the kernel until the
//! mount answers, and nothing — not even SIGKILL — frees it: a process with such a thread
//! cannot exit. A stuck thread would leave `portscope ls` unable to return to the shell and a
//! stopped agent a zombie still holding its history's lock. So the disk is read by helper
//! processes (this same binary, started with [`HELPER_ARG`]): the agent's thread waits on a
//! pipe, which any signal interrupts; a helper stuck in a mount is left behind (it ends when
//! the mount answers or goes) and the next lookup starts another.
//!
//! The pipe carries one JSON line each way: the directory asked, then its project (or `null`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use portscope_shared::Project;

use super::{Disk, Git, Tree, walk};

/// The first argument that makes the binary a lookup helper ([`serve`]) instead of the CLI.
pub const HELPER_ARG: &str = "__project-helper";

/// The disk, read by helper processes (the lookups' walk) and by this process (a `.git` asked
/// alone).
pub struct Helped {
    exe: PathBuf,
    /// Helpers waiting for a lookup; one taken per lookup and put back after.
    idle: Mutex<Vec<Helper>>,
    /// Set once starting a helper failed: lookups are then made in this process.
    failed: std::sync::atomic::AtomicBool,
}

struct Helper {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Helper {
    /// Only a helper that answers (or ended) is ever dropped: one stuck in a mount stays with
    /// the thread waiting for it. So this wait is short.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Helped {
    /// Helpers started from `exe` (this binary).
    pub fn new(exe: PathBuf) -> Self {
        Self {
            exe,
            idle: Mutex::new(Vec::new()),
            failed: Default::default(),
        }
    }

    fn start(&self) -> std::io::Result<Helper> {
        let mut child = Command::new(&self.exe)
            .arg(HELPER_ARG)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err(std::io::Error::other("no pipes to the helper"));
        };
        Ok(Helper {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }

    fn ask(helper: &mut Helper, dir: &Path) -> std::io::Result<Option<Project>> {
        let mut line = serde_json::to_string(&dir.to_string_lossy())?;
        line.push('\n');
        helper.stdin.write_all(line.as_bytes())?;
        helper.stdin.flush()?;
        let mut answer = String::new();
        if helper.stdout.read_line(&mut answer)? == 0 {
            return Err(std::io::Error::other("the helper ended"));
        }
        Ok(serde_json::from_str(&answer)?)
    }
}

impl Tree for Helped {
    fn git(&self, dir: &Path) -> Option<Git> {
        Disk.git(dir)
    }

    fn mount_of(&self, dir: &Path) -> Option<PathBuf> {
        Disk.mount_of(dir)
    }

    fn find(&self, dir: &Path) -> Option<Project> {
        use std::sync::atomic::Ordering;
        if self.failed.load(Ordering::Relaxed) {
            return walk(&Disk, dir);
        }
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut helper = match idle.map_or_else(|| self.start(), Ok) {
            Ok(helper) => helper,
            Err(e) => {
                tracing::warn!(
                    "no helper process for project lookups ({}: {e}): looking them up in the \
                     agent's own threads",
                    self.exe.display()
                );
                self.failed.store(true, Ordering::Relaxed);
                return walk(&Disk, dir);
            }
        };
        match Self::ask(&mut helper, dir) {
            Ok(project) => {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                // One idle helper is enough; one that came back from a hung mount goes.
                if idle.is_empty() {
                    idle.push(helper);
                }
                project
            }
            Err(e) => {
                tracing::debug!("a project helper failed: {e}");
                None
            }
        }
    }
}

/// The helper's side: reads directories, one JSON string a line, and answers each with its
/// project as one JSON line, until its input closes.
pub fn serve() -> std::process::ExitCode {
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lines() {
        let Ok(line) = line else {
            break;
        };
        let project = serde_json::from_str::<String>(&line)
            .ok()
            .filter(|dir| Path::new(dir).is_absolute())
            .and_then(|dir| walk(&Disk, Path::new(&dir)));
        let answer = serde_json::to_string(&project).unwrap_or_else(|_| "null".into());
        if writeln!(stdout, "{answer}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            break;
        }
    }
    std::process::ExitCode::SUCCESS
}
