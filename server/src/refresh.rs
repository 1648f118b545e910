//! The refresher task: rescans on every tick, off the async runtime, and publishes changes.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use tokio::time::MissedTickBehavior;

use portscope_core::collector::Collector;
use portscope_core::live::Model;
use portscope_core::model::State;
use portscope_core::os::Platform;

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
    mut collector: Collector<P>,
) -> Option<(Collector<P>, Result<State, ScanPanicked>)> {
    let joined = tokio::task::spawn_blocking(move || {
        let state = std::panic::catch_unwind(AssertUnwindSafe(|| collector.scan()));
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

/// Rescans every `interval` and publishes each change, until the runtime stops.
pub async fn run<P: Platform>(
    mut collector: Collector<P>,
    model: Model,
    interval: Duration,
    mut history: Option<portscope_history::Recorder>,
    metrics: portscope_core::metrics::Metrics,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker.tick().await; // The first tick fires at once; the first scan was done by the caller.
    let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let (lookups, took) = collector.take_project_lookups();
    tracing::debug!(micros = micros(took), lookups, "first scan's projects took");
    loop {
        ticker.tick().await;
        let started = std::time::Instant::now();
        let Some((c, scanned)) = scan_blocking(collector).await else {
            return;
        };
        collector = c;
        let (lookups, looking) = collector.take_project_lookups();
        let state = scanned.unwrap_or_else(|what| {
            tracing::error!(%what, "the collector panicked; keeping the previous data");
            let mut kept = model.current().state.clone();
            kept.warnings.retain(|w| !w.starts_with(SCAN_FAILED));
            kept.warnings.push(format!(
                "{SCAN_FAILED} ({what}); the data shown is from the scan before"
            ));
            kept
        });
        let mut state = state;
        if let Some(problem) = history.as_ref().and_then(|h| h.problem()) {
            state.warnings.push(problem);
        }
        let published = model.update(state);
        let scanned = started.elapsed();
        metrics.scanned(scanned);
        if let Some(history) = &mut history {
            match &published {
                Some(published) => history.tick(published, true),
                None => history.tick(&model.current(), false),
            }
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
