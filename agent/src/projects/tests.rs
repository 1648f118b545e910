use std::collections::HashMap;

use super::*;

/// A made-up file system: the directories that hold a `.git`, and what it is.
#[derive(Default)]
struct Fake(HashMap<PathBuf, Git>, std::cell::Cell<usize>);

impl Tree for Fake {
    fn git(&self, dir: &Path) -> Option<Git> {
        self.1.set(self.1.get() + 1);
        self.0.get(dir).cloned()
    }
}

fn fake(entries: &[(&str, Git)]) -> Fake {
    Fake(
        entries
            .iter()
            .map(|(d, g)| (PathBuf::from(d), g.clone()))
            .collect(),
        Default::default(),
    )
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
    let mut p = Projects::default();
    let git = p.of_dir(&tree, "/home/dev/my-app/web/src").unwrap();
    assert_eq!(
        (git.name.as_str(), git.root.as_str(), git.source),
        ("my-app", "/home/dev/my-app", ProjectSource::Git)
    );
    let wt = p.of_dir(&tree, "/home/dev/my-app-feature/api").unwrap();
    assert_eq!(
        (wt.name.as_str(), wt.root.as_str(), wt.source),
        (
            "my-app@feature-x",
            "/home/dev/my-app-feature",
            ProjectSource::Worktree
        )
    );
    let sub = p.of_dir(&tree, "/home/dev/my-app/vendor/lib/x").unwrap();
    assert_eq!(
        (sub.name.as_str(), sub.source),
        ("lib", ProjectSource::Git),
        "a submodule is a repository of its own"
    );
    let bare = p.of_dir(&tree, "/home/dev/tool-main/src").unwrap();
    assert_eq!(
        (bare.name.as_str(), bare.source),
        ("tool@tool-main", ProjectSource::Worktree)
    );
    let rel = p.of_dir(&tree, "/home/dev/my-app/wt/hotfix").unwrap();
    assert_eq!(
        (rel.name.as_str(), rel.source),
        ("my-app@hotfix", ProjectSource::Worktree)
    );
    assert_eq!(p.of_dir(&tree, "/srv/www"), None);
    assert_eq!(p.of_dir(&tree, "/"), None, "the root is no one's project");
    assert_eq!(p.of_dir(&tree, "relative/dir"), None);
}

#[test]
fn each_directory_is_walked_once() {
    let tree = fake(&[("/home/dev/app", Git::Dir)]);
    let mut p = Projects::default();
    p.of_dir(&tree, "/home/dev/app/a/b").unwrap();
    let walked = tree.1.get();
    assert_eq!(walked, 3, "app/a/b, app/a, app: {walked}");
    p.of_dir(&tree, "/home/dev/app/a/b").unwrap();
    assert_eq!(tree.1.get(), walked, "the second answer is remembered");
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
    let mut p = Projects::default();
    let main = p.of_dir(&Disk, repo.to_str().unwrap()).unwrap();
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
    let wt = p.of_dir(&Disk, tree.join("src").to_str().unwrap()).unwrap();
    assert_eq!(
        (wt.name.as_str(), wt.root.as_str(), wt.source),
        (
            "repo@repo-wt",
            tree.to_str().unwrap(),
            ProjectSource::Worktree
        )
    );
}
