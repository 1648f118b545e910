//! Bounds on what clients can make the agent hold: WebSocket connections (overall and per client
//! address) and failed token attempts per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// WebSocket clients at once, overall.
pub const MAX_CLIENTS: usize = 200;
/// WebSocket clients at once from one address (a dashboard tab is one).
pub const MAX_CLIENTS_PER_ADDRESS: usize = 50;
/// Failed token attempts from one address before it must wait.
pub const MAX_FAILED_AUTH: u32 = 20;
/// How long those attempts are remembered, and how long the address then waits.
pub const FAILED_AUTH_WINDOW: Duration = Duration::from_secs(10);

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Full {
    #[error("the agent already serves {0} WebSocket clients; close a dashboard tab and retry")]
    Total(usize),
    #[error(
        "{0} WebSocket clients from {1} are already connected; close a dashboard tab and retry"
    )]
    Address(usize, IpAddr),
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// Counts WebSocket clients; a [`Slot`] is one admitted client until it is dropped.
#[derive(Clone, Debug)]
pub struct Limits {
    counts: Arc<Mutex<Counts>>,
    max_total: usize,
    max_per_address: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self::new(MAX_CLIENTS, MAX_CLIENTS_PER_ADDRESS)
    }
}

impl Limits {
    pub fn new(max_total: usize, max_per_address: usize) -> Self {
        Self {
            counts: Arc::default(),
            max_total,
            max_per_address,
        }
    }

    /// Admits one more client from `addr`, or says which cap it hit.
    pub fn admit(&self, addr: IpAddr) -> Result<Slot, Full> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.total >= self.max_total {
            return Err(Full::Total(self.max_total));
        }
        let here = counts.per_address.entry(addr).or_default();
        if *here >= self.max_per_address {
            return Err(Full::Address(self.max_per_address, addr));
        }
        *here += 1;
        counts.total += 1;
        Ok(Slot {
            counts: self.counts.clone(),
            addr,
        })
    }

    /// Clients connected now.
    #[cfg(test)]
    pub fn connected(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

/// One admitted client; its place is given back when it is dropped.
#[derive(Debug)]
pub struct Slot {
    counts: Arc<Mutex<Counts>>,
    addr: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(here) = counts.per_address.get_mut(&self.addr) {
            *here = here.saturating_sub(1);
            if *here == 0 {
                counts.per_address.remove(&self.addr);
            }
        }
    }
}

/// Failed token attempts per address: past [`MAX_FAILED_AUTH`] within [`FAILED_AUTH_WINDOW`],
/// the address waits out the window, whatever token it offers (guessing stops being useful).
#[derive(Clone, Debug, Default)]
pub struct AuthFailures {
    by_address: Arc<Mutex<HashMap<IpAddr, (Instant, u32)>>>,
}

impl AuthFailures {
    /// How long `addr` must still wait, if it is locked out.
    pub fn locked(&self, addr: IpAddr, now: Instant) -> Option<Duration> {
        let map = self
            .by_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (since, count) = map.get(&addr)?;
        let left = FAILED_AUTH_WINDOW.checked_sub(now.duration_since(*since))?;
        (*count >= MAX_FAILED_AUTH && !left.is_zero()).then_some(left)
    }

    /// Counts one failed attempt.
    pub fn record(&self, addr: IpAddr, now: Instant) {
        let mut map = self
            .by_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Forget windows that are over, so the map cannot grow without bound.
        map.retain(|_, (since, _)| now.duration_since(*since) < FAILED_AUTH_WINDOW);
        let entry = map.entry(addr).or_insert((now, 0));
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn clients_are_capped_overall_and_per_address() {
        let limits = Limits::new(3, 2);
        let a1 = limits.admit(A).unwrap();
        let _a2 = limits.admit(A).unwrap();
        assert_eq!(limits.admit(A).unwrap_err(), Full::Address(2, A));
        let _b1 = limits.admit(B).unwrap();
        assert_eq!(limits.admit(B).unwrap_err(), Full::Total(3));
        drop(a1);
        assert_eq!(limits.connected(), 2);
        let _a3 = limits.admit(A).expect("a freed place is reused");
    }

    #[test]
    fn repeated_failures_lock_an_address_out_for_the_window() {
        let failures = AuthFailures::default();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILED_AUTH - 1 {
            failures.record(A, t0);
        }
        assert_eq!(failures.locked(A, t0), None);
        failures.record(A, t0);
        assert!(failures.locked(A, t0).is_some());
        assert_eq!(
            failures.locked(B, t0),
            None,
            "other addresses are not affected"
        );
        assert_eq!(
            failures.locked(A, t0 + FAILED_AUTH_WINDOW),
            None,
            "the window ends"
        );
    }
}
