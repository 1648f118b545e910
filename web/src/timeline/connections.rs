//! The connections chart of a listener's detail: the history's per-minute counts of its port
//! (`ConnectionHistory`, which leaves out minutes without connections) as one slot per minute
//! of the last hour, zeros filled in, with the text summary screen readers get.

use portscope_shared::ConnectionHistory;

use super::time::{self, MINUTE_MS};

/// One minute of the chart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    pub accepted: u32,
    pub open: u32,
}

/// The last `minutes` minutes up to the current one, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub slots: Vec<Slot>,
    /// Start of the first slot's minute (ms since the epoch).
    pub first: f64,
    pub peak_open: u32,
    pub accepted: u32,
    /// The most distinct peers in one minute.
    pub peers: u32,
}

impl Chart {
    /// The chart of `history` for the `minutes` minutes ending with the one `now` is in.
    pub fn new(history: &ConnectionHistory, now: f64, minutes: usize) -> Self {
        let current = (now / MINUTE_MS).floor() * MINUTE_MS;
        let first = current - (minutes.saturating_sub(1)) as f64 * MINUTE_MS;
        let mut slots = vec![Slot::default(); minutes];
        let mut peers = 0;
        for m in &history.minutes {
            let Some(at) = time::parse(&m.time) else {
                continue;
            };
            let index = ((at - first) / MINUTE_MS).floor();
            if index < 0.0 || index >= minutes as f64 {
                continue;
            }
            let slot = &mut slots[index as usize];
            slot.accepted += m.accepted;
            slot.open = slot.open.max(m.open);
            peers = peers.max(m.peers);
        }
        Self {
            peak_open: slots.iter().map(|s| s.open).max().unwrap_or(0),
            accepted: slots.iter().map(|s| s.accepted).sum(),
            slots,
            first,
            peers,
        }
    }

    /// The tallest value the chart must hold (at least 1).
    pub fn top(&self) -> u32 {
        self.slots
            .iter()
            .map(|s| s.open.max(s.accepted))
            .max()
            .unwrap_or(0)
            .max(1)
    }

    /// `peak 6 open, 15 accepted in the last hour`, or that there were none.
    pub fn summary(&self) -> String {
        let span = if self.slots.len() == 60 {
            "the last hour".to_owned()
        } else {
            format!("the last {} minutes", self.slots.len())
        };
        if self.peak_open == 0 && self.accepted == 0 {
            return format!("no connections in {span}");
        }
        let peers = match self.peers {
            0 => String::new(),
            1 => ", from 1 address".to_owned(),
            n => format!(", from up to {n} addresses a minute"),
        };
        format!(
            "peak {} open, {} accepted in {span}{peers}",
            self.peak_open, self.accepted
        )
    }
}
