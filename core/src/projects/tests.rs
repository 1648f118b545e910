use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::*;

/// A made-up file system: the directories that hold a `.git`, and what it is. Under
/// `/mnt/hung` (a mount of its own) every read blocks while `blocked` is set, as on a hung
/// FUSE or NFS mount.
#[derive(Default)]
struct Fake {
    gits: Mutex<HashMap<PathBuf, Git>>,
    reads: AtomicUsize,
    blocked: Mutex<bool>,
    unblocked: Condvar,
}

impl Tree for Fake {
    fn git(&self, dir: &Path) -> Option<Git> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if dir.starts_with("/mnt/hung") {
            let mut blocked = self.blocked.lock().unwrap();
            while *blocked {
                blocked = self.unblocked.wait(blocked).unwrap();
            }
        }
        self.gits.lock().unwrap().get(dir).cloned()
    }

    fn mount_of(&self, dir: &Path) -> Option<PathBuf> {
        Some(
            if dir.starts_with("/mnt/hung") {
                "/mnt/hung"
            } else {
                "/"
            }
            .into(),
        )
    }
}

fn fake(entries: &[(&str, Git)]) -> Arc<Fake> {
    Arc::new(Fake {
        gits: Mutex::new(
            entries
                .iter()
                .map(|(d, g)| (PathBuf::from(d), g.clone()))
                .collect(),
        ),
        ..Fake::default()
    })
}

/// The answer for `dir`, waiting as long as a lookup on a working disk could take.
fn of_dir(finder: &Finder, dir: &str) -> Option<Project> {
    match finder.lookup(dir, Instant::now() + Duration::from_secs(10)) {
        Lookup::Known(project) => project,
        Lookup::Pending => panic!("no answer for {dir} in 10 s"),
    }
}

#[test]
fn a_working_directory_belongs_to_the_repository_above_it() {
    let tree = fake(&[
        ("/home/dev/my-app", Git::Dir),
        (
            "/home/dev/my-app-feature",
            Git::File("gitdir: /home/dev/my-app/.git/worktrees/feature-x\n".into()),
        ),
        (
            "/home/dev/my-app/vendor/lib",
            Git::File("gitdir: ../../.git/modules/vendor/lib\n".into()),
        ),
        // A worktree of a bare repository.
        (
            "/home/dev/tool-main",
            Git::File("gitdir: /srv/git/tool.git/worktrees/tool-main\n".into()),
        ),
        // A worktree inside its repository, with a relative gitdir (worktree.useRelativePaths).
        (
            "/home/dev/my-app/wt/hotfix",
            Git::File("gitdir: ../../.git/worktrees/hotfix\n".into()),
        ),
    ]);
    let p = &Finder::new(tree);
    let git = of_dir(p, "/home/dev/my-app/web/src").unwrap();
    assert_eq!(
        (git.name.as_str(), git.root.as_str(), git.source),
        ("my-app", "/home/dev/my-app", ProjectSource::Git)
    );
    let wt = of_dir(p, "/home/dev/my-app-feature/api").unwrap();
    assert_eq!(
        (wt.name.as_str(), wt.root.as_str(), wt.source),
        (
            "my-app@feature-x",
            "/home/dev/my-app-feature",
            ProjectSource::Worktree
        )
    );
    let sub = of_dir(p, "/home/dev/my-app/vendor/lib/x").unwrap();
    assert_eq!(
        (sub.name.as_str(), sub.source),
        ("lib", ProjectSource::Git),
        "a submodule is a repository of its own"
    );
    let bare = of_dir(p, "/home/dev/tool-main/src").unwrap();
    assert_eq!(
        (bare.name.as_str(), bare.source),
        ("tool@tool-main", ProjectSource::Worktree)
    );
    let rel = of_dir(p, "/home/dev/my-app/wt/hotfix").unwrap();
    assert_eq!(
        (rel.name.as_str(), rel.source),
        ("my-app@hotfix", ProjectSource::Worktree)
    );
    assert_eq!(of_dir(p, "/srv/www"), None);
    assert_eq!(of_dir(p, "/"), None, "the root is no one's project");
    assert_eq!(of_dir(p, "relative/dir"), None);
}

#[test]
fn each_directory_is_walked_once() {
    let tree = fake(&[("/home/dev/app", Git::Dir)]);
    let p = &Finder::new(tree.clone());
    of_dir(p, "/home/dev/app/a/b").unwrap();
    let walked = tree.reads.load(Ordering::SeqCst);
    assert_eq!(walked, 3, "app/a/b, app/a, app: {walked}");
    of_dir(p, "/home/dev/app/a/b").unwrap();
    assert_eq!(
        tree.reads.load(Ordering::SeqCst),
        walked,
        "the second answer is remembered"
    );
}

#[test]
fn the_disk_is_read_as_git_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let run = |args: &[&str], cwd: &Path| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(cwd)
            .output()
            .expect("git is needed for this test (apt-get install git)");
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    std::fs::create_dir(&repo).unwrap();
    run(&["init", "-q"], &repo);
    run(
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "first",
        ],
        &repo,
    );
    let tree = dir.path().join("repo-wt");
    run(&["worktree", "add", "-q", tree.to_str().unwrap()], &repo);
    std::fs::create_dir(tree.join("src")).unwrap();
    let p = &Finder::new(Arc::new(Disk));
    let main = of_dir(p, repo.to_str().unwrap()).unwrap();
    // A FIFO where a `.git` file would be is no project, and does not hang the walk.
    let fifo = dir.path().join("fifo");
    std::fs::create_dir(&fifo).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        fifo.join(".git"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    assert_eq!(Disk.git(&fifo), None);
    assert_eq!(
        (main.name.as_str(), main.source),
        ("repo", ProjectSource::Git)
    );
    let wt = of_dir(p, tree.join("src").to_str().unwrap()).unwrap();
    assert_eq!(
        (wt.name.as_str(), wt.root.as_str(), wt.source),
        (
            "repo@repo-wt",
            tree.to_str().unwrap(),
            ProjectSource::Worktree
        )
    );
}

#[test]
fn a_hung_mount_costs_its_own_directories_their_project_and_nothing_else() {
    let tree = fake(&[("/mnt/hung/app", Git::Dir), ("/home/dev/app", Git::Dir)]);
    *tree.blocked.lock().unwrap() = true;
    let p = &Finder::new(tree.clone());
    let soon = || Instant::now() + Duration::from_millis(50);
    assert_eq!(p.lookup("/mnt/hung/app", soon()), Lookup::Pending);
    // Another directory does not wait for it: another worker takes it.
    let t0 = Instant::now();
    let home = of_dir(p, "/home/dev/app").map(|p| p.name);
    assert_eq!(home.as_deref(), Some("app"));
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    // The hung lookup is given up in time, and its mount marked.
    while p.hung_mounts().is_empty() && t0.elapsed() < HUNG_AFTER + Duration::from_secs(5) {
        p.generation();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(p.hung_mounts(), [PathBuf::from("/mnt/hung")]);
    assert!(t0.elapsed() < HUNG_AFTER + Duration::from_secs(1));
    let reads = tree.reads.load(Ordering::SeqCst);
    assert_eq!(
        p.lookup("/mnt/hung/other", soon()),
        Lookup::Known(None),
        "a directory on the hung mount is not read"
    );
    assert_eq!(p.lookup("/mnt/hung/app", soon()), Lookup::Known(None));
    assert_eq!(tree.reads.load(Ordering::SeqCst), reads);
    // The mount answers again: its lookup's answer is kept, and the generation says so.
    let generation = p.generation();
    *tree.blocked.lock().unwrap() = false;
    tree.unblocked.notify_all();
    let t0 = Instant::now();
    while p.generation() == generation && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(p.hung_mounts().is_empty());
    assert_eq!(
        of_dir(p, "/mnt/hung/app").map(|p| p.name).as_deref(),
        Some("app")
    );
}

#[test]
fn a_git_that_appears_or_goes_is_seen_at_the_next_refresh() {
    let tree = fake(&[("/home/dev/app", Git::Dir)]);
    let p = &Finder::refreshing_every(tree.clone(), Duration::from_millis(50));
    assert_eq!(
        of_dir(p, "/home/dev/app/src").map(|p| p.name).as_deref(),
        Some("app")
    );
    assert_eq!(of_dir(p, "/srv/new"), None);
    let generation = p.generation();
    {
        let mut gits = tree.gits.lock().unwrap();
        gits.remove(Path::new("/home/dev/app"));
        gits.insert("/srv/new".into(), Git::Dir);
    }
    let t0 = Instant::now();
    while p.generation() == generation && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_ne!(
        p.generation(),
        generation,
        "a changed answer moves the generation"
    );
    // Both refreshes may land a moment apart.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(of_dir(p, "/home/dev/app/src"), None, "its .git went");
    assert_eq!(
        of_dir(p, "/srv/new").map(|p| p.name).as_deref(),
        Some("new")
    );
}

#[test]
fn no_link_is_followed_on_the_way_to_a_git() {
    // A directory swapped for a link to another user's tree: its `.git` is not read.
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(elsewhere.join("repo/.git")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.path().join("link")).unwrap();
    assert_eq!(Disk.git(&elsewhere.join("repo")), Some(Git::Dir));
    assert_eq!(Disk.git(&dir.path().join("link/repo")), None);
    assert!(crate::os::open_without_links(Path::new("relative/.git")).is_err());
    assert!(crate::os::open_without_links(&elsewhere.join("repo/../repo/.git")).is_err());
}

#[cfg(target_os = "linux")]
#[test]
fn without_a_helper_the_lookup_is_made_in_this_process() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("app/.git")).unwrap();
    let helped = helper::Helped::new(dir.path().join("no-such-binary"));
    let found = helped.find(&dir.path().join("app/src"));
    assert_eq!(found.map(|p| p.name).as_deref(), Some("app"));
}
