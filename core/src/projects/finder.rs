//! Project lookups off the scan thread, with a time limit (#20 item 9).
//!
//! Reading `.git` in a process's working directory touches that directory's file system: on a
//! hung NFS, sshfs or FUSE mount the read never returns, and a scan that made it would stop the
//! live view and the history with it. So lookups run on a worker thread; the caller waits for
//! an answer only until a deadline it chooses (a scan gives all its lookups a fraction of a
//! tick) and otherwise hears [`Lookup::Pending`] and asks again on its next scan.
//!
//! A lookup still running after [`HUNG_AFTER`] is given up: its directory's mount is marked
//! hung (no lookup under it is started while it is), it answers "no project" for now, and a new
//! worker takes the queue. Up to [`MAX_LIVE`] workers share a queue, so a lookup that has not
//! been given up yet holds one worker and not the others' lookups. At most [`MAX_STUCK`]
//! workers may hang at once; past that, lookups wait. When a hung lookup returns after all, its mount is cleared and its answer kept.
//!
//! Answers are cached per directory and looked up again every [`REFRESH`], so a `.git` that
//! appears (`git init` under a running server) or goes is seen within that time; a changed
//! answer bumps [`Finder::generation`], which tells the collector to look its processes' projects
//! up again. (A file-system watch would be quicker but says nothing on NFS, and one per
//! ancestor of every working directory is more state than a periodic re-read of a few dozen
//! directories costs.)

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use portscope_shared::Project;

use super::Tree;

/// How long a lookup may run before it is given up and its mount marked hung.
pub const HUNG_AFTER: Duration = Duration::from_secs(2);
/// Workers that may be stuck in a hung lookup at once; past that, lookups wait.
pub const MAX_STUCK: usize = 4;
/// Workers taking lookups at once: more start only while lookups wait and all are busy (one
/// lookup that hangs before it is given up holds one worker, not the others' lookups).
pub const MAX_LIVE: usize = 4;
/// How often every remembered answer is looked up again.
pub const REFRESH: Duration = Duration::from_secs(10);
/// Most working directories remembered; past it the cache starts again.
const MAX_CACHED: usize = 4096;

/// What a lookup answered by its deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The directory's project (`None`: no project, or its mount is hung).
    Known(Option<Project>),
    /// Not answered yet: ask again later.
    Pending,
}

/// Finds working directories' projects on worker threads. Clones share the cache and workers;
/// when the last clone goes, the workers stop (a hung one when its lookup returns).
#[derive(Clone)]
pub struct Finder(Arc<Handle>);

impl std::fmt::Debug for Finder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finder").finish_non_exhaustive()
    }
}

/// Closes the workers when dropped.
struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.work.notify_all();
    }
}

struct Shared {
    tree: Arc<dyn Tree>,
    refresh: Duration,
    inner: Mutex<Inner>,
    /// Signalled when work is queued (or the finder closes).
    work: Condvar,
    /// Signalled when an answer is stored.
    answered: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A worker that panicked left consistent data (every change is one insert or remove).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
struct Inner {
    answers: HashMap<PathBuf, Answer>,
    queue: VecDeque<PathBuf>,
    queued: HashSet<PathBuf>,
    /// Lookups running now, by job number.
    running: HashMap<u64, Running>,
    next_job: u64,
    /// Workers taking jobs (not stuck).
    live: usize,
    /// Workers stuck in a lookup given up.
    stuck: usize,
    /// Mounts where a lookup hung, with the job that hung there.
    hung: Vec<(PathBuf, u64)>,
    generation: u64,
    refreshed: Option<Instant>,
    closed: bool,
}

struct Answer {
    project: Option<Project>,
    /// False while the answer is a stand-in for a lookup that hung.
    settled: bool,
}

struct Running {
    dir: PathBuf,
    since: Instant,
    given_up: bool,
}

impl Inner {
    fn under_hung_mount(&self, dir: &Path) -> bool {
        self.hung.iter().any(|(mount, _)| dir.starts_with(mount))
    }

    fn enqueue(&mut self, dir: PathBuf) {
        if self.queued.insert(dir.clone()) {
            self.queue.push_back(dir);
        }
    }

    /// Stores an answer; a change to one given before bumps the generation.
    fn store(&mut self, dir: PathBuf, project: Option<Project>, settled: bool) {
        if self.answers.len() >= MAX_CACHED && !self.answers.contains_key(&dir) {
            self.answers.clear();
        }
        let changed = self
            .answers
            .get(&dir)
            .is_some_and(|old| old.project != project || old.settled != settled);
        if changed {
            self.generation += 1;
        }
        self.answers.insert(dir, Answer { project, settled });
    }
}

impl Finder {
    /// A finder reading `tree`. Workers start with the first lookup.
    pub fn new(tree: Arc<dyn Tree>) -> Self {
        Self::refreshing_every(tree, REFRESH)
    }

    /// A finder that looks its answers up again every `every`.
    pub fn refreshing_every(tree: Arc<dyn Tree>, every: Duration) -> Self {
        Self(Arc::new(Handle(Arc::new(Shared {
            tree,
            refresh: every,
            inner: Mutex::new(Inner::default()),
            work: Condvar::new(),
            answered: Condvar::new(),
        }))))
    }

    /// The project of a process working in `dir`, waiting for a lookup until `deadline`.
    pub fn lookup(&self, dir: &str, deadline: Instant) -> Lookup {
        let dir = Path::new(dir);
        if !dir.is_absolute() {
            return Lookup::Known(None);
        }
        let shared = &self.0.0;
        let mut inner = shared.lock();
        give_up_hung(shared, &mut inner);
        loop {
            if let Some(answer) = inner.answers.get(dir) {
                return Lookup::Known(answer.project.clone());
            }
            if inner.under_hung_mount(dir) {
                return Lookup::Known(None);
            }
            if !inner.queued.contains(dir) {
                inner.enqueue(dir.to_owned());
                let busy = inner.running.values().filter(|r| !r.given_up).count();
                if inner.live < MAX_LIVE
                    && inner.queue.len() > inner.live - busy
                    && inner.stuck < MAX_STUCK
                {
                    spawn_worker(shared, &mut inner);
                }
                shared.work.notify_one();
            }
            let now = Instant::now();
            if now >= deadline {
                return Lookup::Pending;
            }
            // Wake when the answer comes, or when a running lookup is due to be given up.
            let give_up_at = inner
                .running
                .values()
                .filter(|r| !r.given_up)
                .map(|r| r.since + HUNG_AFTER)
                .min();
            let until = give_up_at.map_or(deadline, |t| t.min(deadline));
            inner = shared
                .answered
                .wait_timeout(inner, until.saturating_duration_since(now))
                .unwrap_or_else(|e| e.into_inner())
                .0;
            give_up_hung(shared, &mut inner);
        }
    }

    /// Goes up when an answer given before changed (a `.git` appeared or went, a hung lookup
    /// returned): the caller's projects are then worth looking up again. Also gives up the
    /// lookups that have run too long.
    pub fn generation(&self) -> u64 {
        let shared = &self.0.0;
        let mut inner = shared.lock();
        give_up_hung(shared, &mut inner);
        inner.generation
    }

    /// The mounts where a lookup hung and has not returned: their processes show no project.
    pub fn hung_mounts(&self) -> Vec<PathBuf> {
        self.0
            .0
            .lock()
            .hung
            .iter()
            .map(|(m, _)| m.clone())
            .collect()
    }
}

/// Gives up every lookup running longer than [`HUNG_AFTER`]: its mount is marked hung, its
/// directory answers "no project" for now, and a new worker takes the queue.
fn give_up_hung(shared: &Arc<Shared>, inner: &mut Inner) {
    let now = Instant::now();
    let hung: Vec<(u64, PathBuf)> = inner
        .running
        .iter_mut()
        .filter(|(_, r)| !r.given_up && now.duration_since(r.since) >= HUNG_AFTER)
        .map(|(&job, r)| {
            r.given_up = true;
            (job, r.dir.clone())
        })
        .collect();
    for (job, dir) in &hung {
        let (job, dir) = (*job, dir.clone());
        let mount = shared
            .tree
            .mount_of(&dir)
            .filter(|m| m.parent().is_some())
            .unwrap_or_else(|| dir.clone());
        tracing::warn!(
            dir = %dir.display(),
            mount = %mount.display(),
            "a project lookup has not returned for {HUNG_AFTER:?}: a hung mount? Its processes \
             show no project until it answers"
        );
        inner.hung.push((mount, job));
        inner.queued.remove(&dir);
        inner.store(dir, None, false);
        inner.live -= 1;
        inner.stuck += 1;
        if inner.live == 0 && inner.stuck < MAX_STUCK {
            spawn_worker(shared, inner);
        }
    }
    if !hung.is_empty() {
        shared.answered.notify_all();
    }
}

fn spawn_worker(shared: &Arc<Shared>, inner: &mut Inner) {
    let shared = Arc::clone(shared);
    let started = std::thread::Builder::new()
        .name("projects".into())
        .spawn(move || work(&shared));
    match started {
        Ok(_) => inner.live += 1,
        Err(e) => tracing::warn!("no thread for project lookups: {e}"),
    }
}

/// A worker: takes directories from the queue and looks them up, one at a time; re-queues every
/// remembered directory each [`REFRESH`].
fn work(shared: &Shared) {
    let mut inner = shared.lock();
    loop {
        if inner.closed {
            inner.live -= 1;
            return;
        }
        let Some(dir) = inner.queue.pop_front() else {
            // A worker started for a busy moment ends with it; one stays.
            if inner.live > 1 {
                inner.live -= 1;
                return;
            }
            let due = inner.refreshed.map_or(shared.refresh, |t| {
                shared.refresh.saturating_sub(t.elapsed())
            });
            if due.is_zero() {
                inner.refreshed = Some(Instant::now());
                let dirs: Vec<PathBuf> = inner.answers.keys().cloned().collect();
                for dir in dirs {
                    inner.enqueue(dir);
                }
                continue;
            }
            inner = shared
                .work
                .wait_timeout(inner, due)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            continue;
        };
        if inner.refreshed.is_none() {
            inner.refreshed = Some(Instant::now());
        }
        if inner.under_hung_mount(&dir) {
            inner.queued.remove(&dir);
            inner.store(dir, None, false);
            shared.answered.notify_all();
            continue;
        }
        let job = inner.next_job;
        inner.next_job += 1;
        inner.running.insert(
            job,
            Running {
                dir: dir.clone(),
                since: Instant::now(),
                given_up: false,
            },
        );
        drop(inner);
        let found = shared.tree.find(&dir);
        inner = shared.lock();
        let given_up = inner.running.remove(&job).is_some_and(|r| r.given_up);
        inner.queued.remove(&dir);
        inner.store(dir, found, true);
        shared.answered.notify_all();
        if given_up {
            // Back from a hung lookup: its mount answers again; this worker goes on only if
            // no other took its place.
            inner.hung.retain(|&(_, j)| j != job);
            inner.stuck -= 1;
            if inner.live > 0 {
                return;
            }
            inner.live += 1;
        }
    }
}
