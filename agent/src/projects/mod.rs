//! Projects (#12): which project a process works on — the git repository of its working
//! directory, `repo@worktree` for a linked worktree — so that the listeners of "my-app" read as
//! one group (`ls --by-project`, the snapshot's `Process.project`).
//!
//! A directory's project is found by walking up to the first directory holding `.git`: a
//! directory there is a repository; a file is a linked worktree (its `gitdir:` points into the
//! main repository's `.git/worktrees/NAME`) or a submodule. Answers are cached per working
//! directory, so a process costs the walk once. The file system is read through [`Tree`], which
//! the unit tests fake.
//!
//! The `.git` file is one line (`gitdir: PATH`, git's own format); reading it here is smaller
//! than linking a git library for it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use portscope_shared::{Project, ProjectSource};

/// What a directory's `.git` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Git {
    /// A `.git` directory: the top of a repository.
    Dir,
    /// A `.git` file, with its contents (`gitdir: PATH`).
    File(String),
}

/// The file system as the project finder reads it.
pub trait Tree {
    /// `dir/.git`, if there is one.
    fn git(&self, dir: &Path) -> Option<Git>;
}

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct Disk;

impl Tree for Disk {
    /// Opened once, without following a link and without blocking (a FIFO put there by
    /// someone else must not hang a root agent's scan), then judged by the open descriptor.
    fn git(&self, dir: &Path) -> Option<Git> {
        use std::io::Read;
        let file = crate::os::open_no_follow(&dir.join(".git")).ok()?;
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
}

/// Most working directories remembered; past it the cache starts again.
const MAX_CACHED: usize = 4096;

/// Finds projects, remembering each working directory's answer.
#[derive(Debug, Default)]
pub struct Projects {
    by_dir: HashMap<PathBuf, Option<Project>>,
}

impl Projects {
    /// The project of a process working in `dir` (an absolute path), reading `tree`.
    pub fn of_dir(&mut self, tree: &impl Tree, dir: &str) -> Option<Project> {
        let dir = Path::new(dir);
        if !dir.is_absolute() {
            return None;
        }
        if let Some(known) = self.by_dir.get(dir) {
            return known.clone();
        }
        if self.by_dir.len() >= MAX_CACHED {
            self.by_dir.clear();
        }
        let found = find(tree, dir);
        self.by_dir.insert(dir.to_owned(), found.clone());
        found
    }
}

fn find(tree: &impl Tree, dir: &Path) -> Option<Project> {
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
