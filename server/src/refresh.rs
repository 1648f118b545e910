//! The refresher task: rescans on every tick, off the async runtime, and publishes changes.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use portscope_core::collector::Collector;
use portscope_core::events::Brief;
use portscope_core::live::Model;
use portscope_core::model::State;
use portscope_core::os::Platform;
use portscope_core::os::kernel::{Change, ChangeKind};
use portscope_doctor::live::{self, Failures};
use portscope_shared::Proto;

/// Start of the warning that replaces a scan that panicked.
const SCAN_FAILED: &str = "the last scan failed";

/// A scan that panicked inside the platform code; it shows as the panic's message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ScanPanicked(String);

/// Runs one scan on a blocking thread. A panic inside the platform code is caught and returned
/// as `Err(what)`, so one bad read never takes the agent down. `None` when the runtime is
/// shutting down.
pub async fn scan_blocking<P: Platform>(
    collector: Collector<P>,
) -> Option<(Collector<P>, Result<State, ScanPanicked>)> {
    on_blocking(collector, Collector::scan).await
}

/// Runs `work` with the collector on a blocking thread; a panic is caught as in
/// [`scan_blocking`].
async fn on_blocking<P: Platform, T: Send + 'static>(
    mut collector: Collector<P>,
    work: impl FnOnce(&mut Collector<P>) -> T + Send + 'static,
) -> Option<(Collector<P>, Result<T, ScanPanicked>)> {
    let joined = tokio::task::spawn_blocking(move || {
        let state = std::panic::catch_unwind(AssertUnwindSafe(|| work(&mut collector)));
        (collector, state)
    })
    .await
    .ok()?;
    let (collector, state) = joined;
    let state = state.map_err(|panic| {
        ScanPanicked(
            panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into()),
        )
    });
    Some((collector, state))
}

/// How long a first kernel change waits for the rest of its burst (a server opening its IPv4
/// and IPv6 listeners) before the scan it wakes.
const SETTLE: Duration = Duration::from_millis(2);

/// The shortest time between two scans that kernel changes wake (and between two reads of
/// changed connections); one that took longer keeps twice its own time from the next, so a
/// machine with churning connections costs the agent a third of a core at most.
const MIN_GAP: Duration = Duration::from_millis(10);

/// Kernel changes for the refresher (#22): the feed, and how often a full scan reconciles
/// the model with the machine.
#[derive(Debug)]
pub struct Kernel {
    pub feed: portscope_core::os::kernel::Feed,
    pub reconcile: Duration,
}

/// What woke the refresher.
enum Wake {
    Tick,
    Change(Option<Box<Change>>),
    Due,
    /// Changes taken during the last scan call for another.
    Again,
    /// Connections changed: read them again alone.
    Read,
    /// Time to read again the accepted connections no process held yet.
    Retry,
    /// Time to look for the projects asked without waiting.
    Projects,
    /// Time to see whether a connect still waits for its answer.
    Connecting,
}

/// How soon after a listener followed or a connection read alone its owner's project, asked
/// without waiting, is looked for again, and then how often while some lookup has not
/// answered (a hung mount's never does; each look costs a few map lookups).
const PROJECTS_FIRST: Duration = Duration::from_millis(100);
const PROJECTS_AGAIN: Duration = Duration::from_secs(1);

/// How often, and how long after the first read, an accepted connection that no process holds
/// yet is read again (10, 40, 160 and 640 ms), for its owner: then the reconcile finds it.
const UNACCEPTED_TRIES: u32 = 4;
const UNACCEPTED_FIRST: Duration = Duration::from_millis(10);

/// Waits until `at` (at least [`SETTLE`] from now) for a burst of changes to settle, taking
/// the changes that come meanwhile (listeners and failures published as they come).
async fn settle<P: Platform>(
    live: &mut Live,
    kernel: &mut Option<Kernel>,
    collector: &mut Collector<P>,
    at: tokio::time::Instant,
) {
    let at = at.max(tokio::time::Instant::now() + SETTLE);
    loop {
        tokio::select! {
            change = next_change(kernel) => match change {
                Some(change) => {
                    live.take(change);
                    live.take_waiting(kernel);
                    live.follow(collector);
                    live.tell_failures();
                }
                None => return,
            },
            () = tokio::time::sleep_until(at) => return,
        }
    }
}

/// The next kernel change; never, without a feed.
async fn next_change(feed: &mut Option<Kernel>) -> Option<Change> {
    match feed {
        Some(kernel) => kernel.feed.changes.recv().await,
        None => std::future::pending().await,
    }
}

async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A connection's own end and other end.
type Ends = (std::net::SocketAddr, std::net::SocketAddr);

/// At most this many unaccepted connections and unanswered connects are remembered; past it,
/// the reconcile finds the rest.
const MAX_REMEMBERED: usize = 1024;

/// How long a connect may wait for its answer before a scan shows it (in `SYN_SENT`: the
/// kernel tells a connect before its port is chosen, so it cannot be read alone).
const CONNECT_WAIT: Duration = Duration::from_secs(1);

/// The refresher's side of kernel changes: failures told at once, listeners followed until a
/// scan accounts for them.
struct Live {
    model: Model,
    history: Option<portscope_history::Recorder>,
    failures: Failures,
    brief: Brief,
    /// Listen and listen-closed changes waiting for [`Live::follow`].
    listens: Vec<Change>,
    /// Failures waiting to be judged.
    failed: Vec<Change>,
    /// Changes taken call for a scan.
    rescan: bool,
    /// The ends (own, other) of connections that changed, to read again alone
    /// ([`Collector::connections_now`]) instead of scanning.
    ends: Vec<Ends>,
    /// Accepted connections that no process held when read: how often each was read so, and
    /// when to read it again (the earliest: `retry_at`).
    unaccepted: HashMap<Ends, (u32, tokio::time::Instant)>,
    retry_at: Option<tokio::time::Instant>,
    /// Connects whose port was not chosen yet when the kernel told them (by kernel socket),
    /// and when; one still unanswered after [`CONNECT_WAIT`] wakes a scan (`connect_at`).
    connecting: HashMap<u64, tokio::time::Instant>,
    connect_at: Option<tokio::time::Instant>,
    /// When to look for the projects asked without waiting ([`Live::projects`]).
    projects_at: Option<tokio::time::Instant>,
    local: Vec<std::net::IpAddr>,
    lost: u64,
}

impl Live {
    fn new(
        model: Model,
        history: Option<portscope_history::Recorder>,
        local: Vec<std::net::IpAddr>,
    ) -> Self {
        Live {
            model,
            history,
            failures: Failures::default(),
            brief: Brief::default(),
            listens: Vec::new(),
            failed: Vec::new(),
            rescan: false,
            ends: Vec::new(),
            unaccepted: HashMap::new(),
            retry_at: None,
            connecting: HashMap::new(),
            connect_at: None,
            projects_at: None,
            local,
            lost: 0,
        }
    }

    /// Takes one change. Failures wait in `failed` for [`Live::tell_failures`], listeners in
    /// `listens` for [`Live::follow`] and connections in `ends` for [`read_alone`], which apply
    /// them without a scan; a bind that is not TCP's (UDP, which no TCP tracepoint follows), or
    /// more connections at once than are read alone, calls for a scan (`rescan`).
    fn take(&mut self, change: Change) {
        // A later change of a connect says its ends (or that it was refused).
        self.connecting.remove(&change.socket);
        match change.kind {
            ChangeKind::BindFailed | ChangeKind::Refused => {
                // The agent's own (the doctor's connects and binds) are answers, not news.
                let ours = change
                    .owner
                    .as_ref()
                    .is_some_and(|o| o.pid == std::process::id());
                if !ours && self.failed.len() < live::MAX_COUNTING {
                    self.failed.push(change);
                }
            }
            ChangeKind::Listen | ChangeKind::ListenClosed => {
                if self.listens.len() < portscope_core::events::MAX_FOLLOWED {
                    self.listens.push(change);
                } else {
                    self.brief.see(&change);
                    self.rescan = true;
                }
            }
            ChangeKind::Bound => self.rescan |= change.proto != Some(Proto::Tcp),
            ChangeKind::Changed => match change.remote {
                // A connect's first change comes before its port is chosen: its next says all,
                // or a scan shows it if none comes soon.
                _ if change.local.port() == 0 => {
                    if self.connecting.len() < MAX_REMEMBERED {
                        let now = tokio::time::Instant::now();
                        self.connecting.insert(change.socket, now);
                        self.connect_at.get_or_insert(now + CONNECT_WAIT);
                    }
                }
                Some(remote) if self.ends.len() < portscope_core::collector::MAX_READ_ALONE => {
                    let ends = (change.local, remote);
                    if !self.ends.contains(&ends) {
                        self.ends.push(ends);
                    }
                }
                _ => self.rescan = true,
            },
        }
    }

    /// Looks for the projects to come soon, when some were asked without waiting.
    fn projects_asked<P: Platform>(&mut self, collector: &Collector<P>) {
        if self.projects_at.is_none() && collector.projects_pending() {
            self.projects_at = Some(tokio::time::Instant::now() + PROJECTS_FIRST);
        }
    }

    /// Publishes the projects that answered since they were asked, and looks again later
    /// while some have not.
    fn projects<P: Platform>(&mut self, collector: &mut Collector<P>) {
        self.projects_at = None;
        let current = self.model.current();
        if let Some(state) = collector.projects_now(&current.state)
            && let Some(published) = self.model.update_with(state, Vec::new())
        {
            tracing::debug!(seq = published.state.seq, "projects answered");
            if let Some(history) = &mut self.history {
                history.tick(&published, true);
            }
        }
        if collector.projects_pending() {
            self.projects_at = Some(tokio::time::Instant::now() + PROJECTS_AGAIN);
        }
    }

    /// Moves the unaccepted connections that are due into those to read again.
    fn retry(&mut self) {
        let now = tokio::time::Instant::now();
        for (ends, &(_, due)) in &self.unaccepted {
            if due <= now && !self.ends.contains(ends) {
                self.ends.push(*ends);
            }
        }
        self.retry_at = self
            .unaccepted
            .values()
            .map(|&(_, due)| due)
            .filter(|&due| due > now)
            .min();
    }

    /// After reading `read` alone: each of them accepted now (or gone) is forgotten, each
    /// still unaccepted read again later, up to [`UNACCEPTED_TRIES`] times.
    fn unaccepted_after(&mut self, read: &[Ends], unaccepted: Vec<Ends>) {
        let now = tokio::time::Instant::now();
        for ends in read {
            if !unaccepted.contains(ends) {
                self.unaccepted.remove(ends);
            }
        }
        for ends in unaccepted {
            let (tries, due) = self.unaccepted.entry(ends).or_insert((0, now));
            if *tries >= UNACCEPTED_TRIES {
                self.unaccepted.remove(&ends);
                continue;
            }
            *due = now + UNACCEPTED_FIRST * 4u32.pow(*tries);
            *tries += 1;
        }
        while self.unaccepted.len() > MAX_REMEMBERED {
            let Some(&any) = self.unaccepted.keys().next() else {
                break;
            };
            self.unaccepted.remove(&any);
        }
        self.retry_at = self.unaccepted.values().map(|&(_, due)| due).min();
    }

    /// Calls for a scan when a connect has waited [`CONNECT_WAIT`] for its answer.
    fn connects_waiting(&mut self) {
        let now = tokio::time::Instant::now();
        let before = self.connecting.len();
        self.connecting.retain(|_, &mut at| at + CONNECT_WAIT > now);
        self.rescan |= self.connecting.len() < before;
        self.connect_at = self.connecting.values().min().map(|&at| at + CONNECT_WAIT);
    }

    /// Takes every change already waiting.
    fn take_waiting(&mut self, kernel: &mut Option<Kernel>) {
        while let Some(change) = kernel.as_mut().and_then(|k| k.feed.changes.try_recv().ok()) {
            self.take(change);
        }
    }

    /// Puts the listeners the kernel reported opening in the model, and takes the closed ones
    /// out, at once (no scan): each built as a scan builds it, by `collector`.
    fn follow<P: Platform>(&mut self, collector: &mut Collector<P>) {
        if self.listens.is_empty() {
            return;
        }
        let changes = std::mem::take(&mut self.listens);
        let current = self.model.current();
        let waiting = self.brief.waiting();
        let followed = self
            .brief
            .follow(&current.state, &changes, |change, inode, owner| {
                collector.listener_now(change.local, inode, owner.pid, owner.uid)
            });
        // A listener that could not be followed waits for a scan.
        self.rescan |= self.brief.waiting() > waiting;
        let Some((state, told)) = followed else {
            return;
        };
        if let Some(published) = self.model.update_with(state, told) {
            // `tests/kernel.rs` reads this line: the change was published without a scan.
            tracing::debug!(seq = published.state.seq, "followed the kernel's listeners");
            if let Some(history) = &mut self.history {
                history.tick(&published, true);
            }
        }
        self.projects_asked(collector);
    }

    /// Judges the failures taken against the model as it is now, and publishes them (the
    /// first of each at once, repeats counted).
    fn tell_failures(&mut self) {
        if self.failed.is_empty() {
            return;
        }
        let current = self.model.current();
        let now = std::time::Instant::now();
        let mut told = Vec::new();
        for change in std::mem::take(&mut self.failed) {
            if let Some(failure) = live::event_of(&change, &current.state, &self.local) {
                told.extend(self.failures.admit(failure, now));
            }
        }
        self.publish(told);
    }

    /// Publishes events that change no socket, and records them.
    fn publish(&mut self, events: Vec<(String, portscope_shared::Event)>) {
        if let Some(published) = self.model.publish_events(events)
            && let Some(history) = &mut self.history
        {
            history.tick(&published, true);
        }
    }

    /// Says once per increase that changes were lost and calls for a scan, which corrects the
    /// model; counts received and lost changes in the metrics.
    fn lost_more(&mut self, kernel: Option<&Kernel>, metrics: &portscope_core::metrics::Metrics) {
        let lost = kernel.map_or(0, |k| k.feed.counters.lost()) + self.brief.forgotten();
        let received = kernel.map_or(0, |k| {
            k.feed
                .counters
                .received
                .load(std::sync::atomic::Ordering::Relaxed)
        });
        metrics.kernel_events(received, lost);
        if lost > self.lost {
            tracing::warn!(
                lost,
                "kernel events were lost (the ring buffer or the queue was full, or too many \
                 listeners were followed at once); a full scan corrects the model"
            );
            self.lost = lost;
            self.rescan = true;
        }
    }
}

/// Reads the connections in `live.ends` again alone and publishes what changed; sets
/// `live.rescan` where they cannot be read alone. `None` when the runtime is shutting down.
async fn read_alone<P: Platform>(live: &mut Live, collector: Collector<P>) -> Option<Collector<P>> {
    let ends = std::mem::take(&mut live.ends);
    let current = live.model.current();
    let count = ends.len();
    let started = std::time::Instant::now();
    let asked = ends.clone();
    let (collector, read) = on_blocking(collector, move |c| {
        c.connections_now(&current.state, &asked)
    })
    .await?;
    let read = match read {
        Ok(Ok(read)) => read,
        Ok(Err(why)) => {
            tracing::debug!(%why, "connections are not read alone here; scanning");
            live.rescan = true;
            return Some(collector);
        }
        Err(what) => {
            tracing::error!(%what, "reading connections panicked; scanning");
            live.rescan = true;
            return Some(collector);
        }
    };
    live.unaccepted_after(&ends, read.unaccepted);
    let published = live.model.update_with(read.state, Vec::new());
    live.projects_asked(&collector);
    if let Some(published) = &published
        && let Some(history) = &mut live.history
    {
        history.tick(published, true);
    }
    // `tests/kernel.rs` reads this line: connections changed without a scan.
    tracing::debug!(
        count,
        micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        seq = published.as_ref().map(|p| p.state.seq),
        "read changed connections alone"
    );
    Some(collector)
}

/// Rescans every `interval` and publishes each change, until the runtime stops. With kernel
/// changes, each change wakes a scan (a burst settled, scans spaced by [`MIN_GAP`] or twice the
/// last scan's time), failures are published as they come, and the full scan every
/// `kernel.reconcile` (instead of `interval`) corrects what the kernel did not say.
pub async fn run<P: Platform>(
    mut collector: Collector<P>,
    model: Model,
    interval: Duration,
    history: Option<portscope_history::Recorder>,
    metrics: portscope_core::metrics::Metrics,
    mut kernel: Option<Kernel>,
) {
    let period = kernel.as_ref().map_or(interval, |k| k.reconcile);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker.tick().await; // The first tick fires at once; the first scan was done by the caller.
    let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let (lookups, took) = collector.take_project_lookups();
    tracing::debug!(micros = micros(took), lookups, "first scan's projects took");
    let mut live = Live::new(model, history, portscope_core::os::local_addresses());
    let mut next_scan = tokio::time::Instant::now();
    let mut next_read = next_scan;
    loop {
        let wake = if live.rescan {
            Wake::Again
        } else if !live.ends.is_empty() {
            Wake::Read
        } else {
            tokio::select! {
                _ = ticker.tick() => Wake::Tick,
                change = next_change(&mut kernel) => Wake::Change(change.map(Box::new)),
                () = until(live.failures.next_due().map(tokio::time::Instant::from_std)) => Wake::Due,
                () = until(live.retry_at) => Wake::Retry,
                () = until(live.connect_at) => Wake::Connecting,
                () = until(live.projects_at) => Wake::Projects,
            }
        };
        match wake {
            Wake::Tick => {}
            Wake::Due => {
                let due = live.failures.due(std::time::Instant::now());
                live.publish(due);
                continue;
            }
            Wake::Change(None) => {
                tracing::warn!("the kernel's events stopped coming; polling every {interval:?}");
                kernel = None;
                ticker = tokio::time::interval(interval);
                ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
                continue;
            }
            Wake::Change(Some(change)) => {
                live.take(*change);
                live.take_waiting(&mut kernel);
                live.follow(&mut collector);
                live.tell_failures();
                live.lost_more(kernel.as_ref(), &metrics);
                // What it calls for (a scan, a read) is the loop's next turn.
                continue;
            }
            Wake::Retry => {
                live.retry();
                continue;
            }
            Wake::Connecting => {
                live.connects_waiting();
                continue;
            }
            Wake::Projects => {
                live.projects(&mut collector);
                continue;
            }
            Wake::Read => {
                settle(&mut live, &mut kernel, &mut collector, next_read).await;
                live.lost_more(kernel.as_ref(), &metrics);
                if !live.rescan {
                    let started = tokio::time::Instant::now();
                    let Some(c) = read_alone(&mut live, collector).await else {
                        return;
                    };
                    collector = c;
                    next_read = tokio::time::Instant::now() + MIN_GAP.max(started.elapsed() * 2);
                    continue;
                }
                settle(&mut live, &mut kernel, &mut collector, next_scan).await;
            }
            Wake::Again => settle(&mut live, &mut kernel, &mut collector, next_scan).await,
        }
        live.lost_more(kernel.as_ref(), &metrics);
        live.rescan = false;
        // The scan reads them too.
        live.ends.clear();
        let started = std::time::Instant::now();
        let started_at = std::time::SystemTime::now();
        let before = live.model.current();
        let previous = before.clone();
        let Some((c, scanned)) =
            on_blocking(collector, move |c| c.scan_after(&previous.state)).await
        else {
            return;
        };
        collector = c;
        let (lookups, looking) = collector.take_project_lookups();
        let state = scanned.unwrap_or_else(|what| {
            tracing::error!(%what, "the collector panicked; keeping the previous data");
            let mut kept = before.state.clone();
            kept.warnings.retain(|w| !w.starts_with(SCAN_FAILED));
            kept.warnings.push(format!(
                "{SCAN_FAILED} ({what}); the data shown is from the scan before"
            ));
            kept
        });
        let mut state = state;
        if let Some(problem) = live.history.as_ref().and_then(|h| h.problem()) {
            state.warnings.push(problem);
        }
        // What the kernel told while the scan ran: a listener the scan saw may have been
        // reported only now (its owner), and failures are judged against this scan.
        live.take_waiting(&mut kernel);
        live.brief.note(&live.listens);
        live.brief.complete(&mut state);
        let missed = live.brief.missed(&before.state, &state, started_at);
        let published = live.model.update_with(state, missed);
        let scanned = started.elapsed();
        next_scan = tokio::time::Instant::now() + MIN_GAP.max(scanned * 2);
        metrics.scanned(scanned);
        if let Some(history) = &mut live.history {
            match &published {
                Some(published) => history.tick(published, true),
                None => history.tick(&live.model.current(), false),
            }
        }
        // What came during the scan and it did not show: published after it.
        live.follow(&mut collector);
        live.tell_failures();
        // Projects the scan's wait did not see answer: with kernel events, the next scan may
        // be the reconcile.
        if kernel.is_some() {
            live.projects_asked(&collector);
        }
        // `cargo xtask bench` reads these lines (RUST_LOG=portscope_server::refresh=debug): the whole
        // refresh (scan, diff and the history's share), the history's share alone, and the
        // scan's project lookups (new processes only).
        tracing::debug!(micros = micros(started.elapsed()), "refresh took");
        tracing::debug!(
            micros = micros(started.elapsed().saturating_sub(scanned)),
            "history tick took"
        );
        tracing::debug!(micros = micros(looking), lookups, "projects took");
        if let Some(published) = published
            && let Some(delta) = &published.delta
        {
            tracing::debug!(
                seq = delta.seq,
                added = delta.added.len(),
                changed = delta.changed.len(),
                removed = delta.removed.len(),
                events = published.events.len(),
                "published a change"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Live {
        Live::new(Model::new(State::default()), None, Vec::new())
    }

    fn ends(port: u16) -> Ends {
        (
            std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
    }

    #[test]
    fn each_unaccepted_connection_keeps_its_own_retries() {
        let mut live = live();
        live.unaccepted_after(&[ends(1)], vec![ends(1)]);
        let first = live.retry_at.unwrap();
        // Another read finds another: the first is still to be read again, when it was due.
        live.unaccepted_after(&[ends(2)], vec![ends(2)]);
        assert_eq!(live.unaccepted.len(), 2);
        assert_eq!(live.retry_at, Some(first));
        // Read again and still unaccepted: later, counted; accepted: forgotten.
        live.unaccepted_after(&[ends(1), ends(2)], vec![ends(1)]);
        assert_eq!(
            live.unaccepted.keys().copied().collect::<Vec<_>>(),
            [ends(1)]
        );
        assert_eq!(live.unaccepted[&ends(1)].0, 2);
        for _ in 2..=UNACCEPTED_TRIES {
            live.unaccepted_after(&[ends(1)], vec![ends(1)]);
        }
        assert!(live.unaccepted.is_empty(), "given up, for the reconcile");
        assert_eq!(live.retry_at, None);
    }

    #[test]
    fn due_retries_are_read_and_the_others_wait() {
        let mut live = live();
        let now = tokio::time::Instant::now();
        live.unaccepted.insert(ends(1), (1, now));
        live.unaccepted
            .insert(ends(2), (1, now + Duration::from_secs(60)));
        live.retry();
        assert_eq!(live.ends, [ends(1)]);
        assert_eq!(live.retry_at, Some(now + Duration::from_secs(60)));
    }
}
