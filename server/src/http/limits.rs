//! Bounds on what clients can make the agent hold: WebSocket connections (overall and per client
//! address) and failed token attempts per client (loopback as one, IPv6 per /64, at most 4 096).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
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

/// How many client buckets the failed-token map tracks; past that, new ones share one bucket.
pub const MAX_TRACKED: usize = 4096;

/// Whom a failed token is counted against: one address, except that every loopback address is
/// one client (the machine itself), and an IPv6 client is its /64 (one host or network usually
/// holds a whole /64, so counting single addresses would give it 2^64 tries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bucket {
    Loopback,
    V4(Ipv4Addr),
    V6Net(u64),
    /// Everyone who arrived while [`MAX_TRACKED`] buckets were in use.
    Overflow,
}

impl Bucket {
    pub fn of(addr: IpAddr) -> Self {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        match addr {
            a if a.is_loopback() => Self::Loopback,
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => Self::V6Net((u128::from(v6) >> 64) as u64),
        }
    }
}

/// Failed token attempts per [`Bucket`]: past [`MAX_FAILED_AUTH`] within
/// [`FAILED_AUTH_WINDOW`], the bucket waits out the window, whatever token it offers (guessing
/// stops being useful). At most [`MAX_TRACKED`] buckets; windows that are over are pruned only
/// when the map is full. A failure costs one map lookup while the map has room or its bucket is
/// tracked; a new bucket's failure on a full map costs a pass over its [`MAX_TRACKED`] entries
/// (then, if no window is over, it counts in the shared overflow bucket), which is what a flood
/// of fresh addresses pays.
#[derive(Clone, Debug, Default)]
pub struct AuthFailures {
    by_bucket: Arc<Mutex<HashMap<Bucket, (Instant, u32)>>>,
}

impl AuthFailures {
    /// How long `addr` must still wait, if it is locked out.
    pub fn locked(&self, addr: IpAddr, now: Instant) -> Option<Duration> {
        let map = self
            .by_bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let bucket = Bucket::of(addr);
        let (since, count) = map.get(&bucket).or_else(|| {
            map.get(&Bucket::Overflow)
                .filter(|_| map.len() >= MAX_TRACKED)
        })?;
        let left = FAILED_AUTH_WINDOW.checked_sub(now.duration_since(*since))?;
        (*count >= MAX_FAILED_AUTH && !left.is_zero()).then_some(left)
    }

    /// Counts one failed attempt.
    pub fn record(&self, addr: IpAddr, now: Instant) {
        let mut map = self
            .by_bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut bucket = Bucket::of(addr);
        if !map.contains_key(&bucket) && map.len() >= MAX_TRACKED - 1 {
            map.retain(|_, (since, _)| now.duration_since(*since) < FAILED_AUTH_WINDOW);
            if map.len() >= MAX_TRACKED - 1 {
                bucket = Bucket::Overflow;
            }
        }
        let entry = map.entry(bucket).or_insert((now, 0));
        if now.duration_since(entry.0) >= FAILED_AUTH_WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// How many buckets are tracked.
    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.by_bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn loopback_is_one_client_ipv6_counts_per_64_and_ipv4_per_address() {
        let failures = AuthFailures::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILED_AUTH {
            // 127.0.0.1, 127.0.0.2, …, ::1: all the machine itself.
            let addr = if i % 3 == 0 {
                IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
            } else {
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, i as u8))
            };
            failures.record(addr, t0);
        }
        assert!(
            failures
                .locked(IpAddr::V4(Ipv4Addr::LOCALHOST), t0)
                .is_some()
        );

        let net =
            |host: u16| IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 7, 0, 0, 0, host));
        for host in 0..MAX_FAILED_AUTH {
            failures.record(net(host as u16), t0);
        }
        assert!(
            failures.locked(net(60000), t0).is_some(),
            "the whole /64 is locked"
        );
        let other_net = IpAddr::V6("2001:db8:0:8::1".parse().unwrap());
        assert_eq!(failures.locked(other_net, t0), None);
        let mapped = IpAddr::V6("::ffff:10.0.0.1".parse().unwrap());
        for _ in 0..MAX_FAILED_AUTH {
            failures.record(mapped, t0);
        }
        assert!(
            failures.locked(A, t0).is_some(),
            "an IPv4-mapped address is its IPv4 address"
        );
        assert_eq!(failures.locked(B, t0), None);
    }

    #[test]
    fn at_most_max_tracked_buckets_and_the_rest_share_one() {
        let failures = AuthFailures::default();
        let t0 = Instant::now();
        let addr = |i: u32| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
        for i in 0..(MAX_TRACKED as u32 + 500) {
            failures.record(addr(i), t0);
        }
        assert_eq!(failures.tracked(), MAX_TRACKED);
        // The newcomers share the overflow bucket: 500 failures there lock it.
        let newcomer = addr(MAX_TRACKED as u32 + 1000);
        assert!(failures.locked(newcomer, t0).is_some());
        assert_eq!(
            failures.locked(addr(0), t0),
            None,
            "a tracked address keeps its own count"
        );
        // Once the windows are over, room is made again.
        let later = t0 + FAILED_AUTH_WINDOW;
        failures.record(newcomer, later);
        assert_eq!(failures.tracked(), 1, "expired windows pruned when full");
        assert_eq!(failures.locked(newcomer, later), None);
    }
}
