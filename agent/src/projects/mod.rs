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
    fn git(&self, dir: &Path) -> Option<Git> {
        let dot = dir.join(".git");
        let meta = std::fs::metadata(&dot).ok()?;
        if meta.is_dir() {
            Some(Git::Dir)
        } else if meta.is_file() && meta.len() < 4096 {
            std::fs::read_to_string(&dot).ok().map(Git::File)
        } else {
            None
        }
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
        .map(|p| top.join(p.trim()));
    let worktree = gitdir.as_deref().and_then(|gitdir| {
        let name = gitdir.file_name()?.to_str()?;
        let worktrees = gitdir.parent()?;
        let dot_git = worktrees.parent()?;
        (worktrees.file_name()? == "worktrees" && dot_git.file_name()? == ".git")
            .then(|| (dot_git.parent().map(name_of), name.to_owned()))
    });
    match worktree {
        Some((Some(repo), name)) => project(top, format!("{repo}@{name}"), ProjectSource::Worktree),
        _ => project(top, name_of(top), ProjectSource::Git),
    }
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
