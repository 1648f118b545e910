//! Where a link to an agent stands, and how long it waits before trying again: the state
//! machine `conn.rs` drives in the browser, kept here so that it is tested on the host.

/// Where the link stands; shown in the header.
#[derive(Clone, Debug, PartialEq)]
pub enum Link {
    Connecting,
    Live,
    /// Lost; the next attempt starts after `delay_ms`. `attempt` counts failures in a row.
    Reconnecting {
        attempt: u32,
        delay_ms: u32,
    },
    /// The agent speaks another protocol version; no more attempts.
    Mismatch {
        agent: u32,
    },
}

/// First and largest wait between attempts.
const BACKOFF_START_MS: f64 = 500.0;
const BACKOFF_MAX_MS: f64 = 10_000.0;

/// The backoff after `attempt` failures in a row: doubling from 0.5 s up to 10 s, with ±20 %
/// jitter so that many tabs do not reconnect in step after an agent restart.
pub fn backoff_ms(attempt: u32, jitter: f64) -> u32 {
    let base = (BACKOFF_START_MS * 2f64.powi(attempt.min(16) as i32)).min(BACKOFF_MAX_MS);
    (base * (0.8 + 0.4 * jitter.clamp(0.0, 1.0))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_half_a_second_to_ten_with_a_fifth_of_jitter() {
        let middle: Vec<u32> = (0..7).map(|a| backoff_ms(a, 0.5)).collect();
        assert_eq!(middle, [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
        assert_eq!(backoff_ms(0, 0.0), 400);
        assert_eq!(backoff_ms(0, 1.0), 600);
        assert_eq!(
            backoff_ms(u32::MAX, 1.0),
            12_000,
            "never past 10 s and its jitter"
        );
        assert_eq!(backoff_ms(3, 7.0), backoff_ms(3, 1.0), "jitter is clamped");
    }
}
