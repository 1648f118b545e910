//! Projects (#12): which project a process works on — the git repository of its working
//! directory, `repo@worktree` for a linked worktree — so that the listeners of "my-app" read as
//! one group (`ls --by-project`, the snapshot's `Process.project`).
//!
//! A directory's project is found by walking up to the first directory holding `.git`: a
//! directory there is a repository; a file is a linked worktree (its `gitdir:` points into the
//! main repository's `.git/worktrees/NAME`) or a submodule. Answers are cached per working
//! directory and run off the scan thread with a time limit ([`Finder`]): a working directory on a
//! hung mount costs its process its project, never the scan. The file system is read through
//! [`Tree`], which the unit tests fake.
//!
//! The `.git` file is one line (`gitdir: PATH`, git's own format); reading it here is smaller
//! than linking a git library for it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use portscope_shared::{Project, ProjectSource};

/// What a directory's `.git` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Git {
    /// A `.git` directory: the top of a repository.
    Dir,
    /// A `.git` file, with its contents (`gitdir: PATH`).
    File(String),
}

mod finder;
pub use finder::{Finder, HUNG_AFTER, Lookup};
#[cfg(target_os = "linux")]
mod helper;
#[cfg(target_os = "linux")]
pub use helper::{HELPER_ARG, serve as serve_helper};

/// The file system as the project finder reads it (from its worker threads).
pub trait Tree: Send + Sync {
    /// `dir/.git`, if there is one.
    fn git(&self, dir: &Path) -> Option<Git>;
    /// The mount point of the file system `dir` is on, where the platform tells it without
    /// touching that file system (a hung lookup marks the whole mount).
    fn mount_of(&self, _dir: &Path) -> Option<PathBuf> {
        None
    }
    /// The project of a process working in `dir`: the walk up to the first `.git`.
    fn find(&self, dir: &Path) -> Option<Project> {
        walk(self, dir)
    }
}

/// No file system: every directory is in no project (fakes of the platform without one).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFiles;

impl Tree for NoFiles {
    fn git(&self, _dir: &Path) -> Option<Git> {
        None
    }
}

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct Disk;

impl Disk {
    /// The one finder of this process's disk, shared by every collector in it (the agent's
    /// scans and each doctor request's), so a hung mount holds at most a few of its threads.
    /// On Linux the walks run in helper processes (`helper.rs`: a thread stuck in a hung FUSE
    /// mount could never exit); elsewhere in the finder's threads.
    pub fn finder() -> Finder {
        static FINDER: OnceLock<Finder> = OnceLock::new();
        FINDER
            .get_or_init(|| {
                #[cfg(target_os = "linux")]
                if let Ok(exe) = std::env::current_exe() {
                    return Finder::new(Arc::new(helper::Helped::new(exe)));
                }
                Finder::new(Arc::new(Disk))
            })
            .clone()
    }
}

impl Tree for Disk {
    /// Opened once, without following a link at any level of its path (a directory its owner
    /// swapped for a link cannot send a root agent elsewhere) and without blocking (a FIFO put
    /// there by someone else must not hang the lookup), then judged by the open descriptor.
    fn git(&self, dir: &Path) -> Option<Git> {
        use std::io::Read;
        let file = crate::os::open_without_links(&dir.join(".git")).ok()?;
        let meta = file.metadata().ok()?;
        if meta.is_dir() {
            return Some(Git::Dir);
        }
        if !meta.is_file() {
            return None;
        }
        let mut text = String::new();
        file.take(4096).read_to_string(&mut text).ok()?;
        Some(Git::File(text))
    }

    fn mount_of(&self, dir: &Path) -> Option<PathBuf> {
        crate::os::mount_point_of(dir)
    }
}

/// The walk up from `dir` to the first directory holding a `.git`.
fn walk<T: Tree + ?Sized>(tree: &T, dir: &Path) -> Option<Project> {
    for top in dir.ancestors() {
        // `/` is no one's project (a daemon's working directory).
        top.parent()?;
        match tree.git(top) {
            Some(Git::Dir) => return Some(project(top, name_of(top), ProjectSource::Git)),
            Some(Git::File(text)) => return Some(linked(top, &text)),
            None => {}
        }
    }
    None
}

/// A directory whose `.git` is a file: a worktree (`gitdir: …/.git/worktrees/NAME`) is
/// `repo@NAME`; anything else (a submodule's `…/.git/modules/sub`) is a repository of its own.
fn linked(top: &Path, text: &str) -> Project {
    let gitdir = text
        .lines()
        .find_map(|l| l.strip_prefix("gitdir:"))
        .map(|p| normal(&top.join(p.trim())));
    let worktree = gitdir.as_deref().and_then(|gitdir| {
        let name = gitdir.file_name()?.to_str()?;
        let worktrees = gitdir.parent()?;
        if worktrees.file_name()? != "worktrees" {
            return None;
        }
        // `repo/.git/worktrees/NAME`, or a bare repository's `repo.git/worktrees/NAME`.
        let git = worktrees.parent()?;
        let repo = if git.file_name()? == ".git" {
            git.parent().map(name_of)
        } else {
            let bare = git.file_name()?.to_str()?;
            Some(bare.strip_suffix(".git").unwrap_or(bare).to_owned())
        };
        Some((repo, name.to_owned()))
    });
    match worktree {
        Some((Some(repo), name)) => project(top, format!("{repo}@{name}"), ProjectSource::Worktree),
        _ => project(top, name_of(top), ProjectSource::Git),
    }
}

/// `a/b/../c` → `a/c`, by the path's text (a relative `gitdir:` of a worktree inside its
/// repository climbs out of it).
fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn name_of(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

fn project(root: &Path, name: String, source: ProjectSource) -> Project {
    Project {
        name,
        root: root.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests;
