//! `portscope-history`: what happened to sockets over time (#11).
//!
//! The store of events and connection counts (SQLite), the recorder that writes each published
//! change to it, retention, and the claim that keeps one agent writing a file. It stores and
//! answers: the events themselves are derived in `portscope-core` ([`portscope_core::events`])
//! from the model's diff. It depends on the core and the protocol only, never on the doctor,
//! the server or the command line. (`history` and `watch`, the commands, are the binary's.)

mod claim;
mod recorder;
pub mod store;

pub use claim::{Claim, ClaimError, announce, claim, running_agents_file};
pub use recorder::{Progress, Recorder, Retention};
pub use store::{HistoryError, Query, Store, default_path, millis};

use std::time::SystemTime;

/// Why a text is not a moment.
#[derive(Debug, thiserror::Error)]
pub enum MomentError {
    #[error("`{0}` ago is before the epoch")]
    BeforeEpoch(String),
    #[error("`{0}`: {1}")]
    OutOfRange(String, String),
    #[error(
        "`{0}` is not a moment; expected a duration ago (`10m`), an RFC 3339 time (`2026-11-29T14:02:00Z`), a local date and time (`2026-11-29 14:02`) or a local time of day (`14:02`)"
    )]
    Unreadable(String),
}

/// A moment: a duration ago (`10m`), an RFC 3339 time (`2026-11-29T14:02:00Z`, any offset),
/// a local date and time (`2026-11-29 14:02`), or a local time of day (`14:02`, `14:02:30`: the
/// latest such moment, today or else yesterday). Local means this machine's time zone.
pub fn moment(s: &str) -> Result<SystemTime, MomentError> {
    moment_in(s, &jiff::Zoned::now())
}

/// [`moment`] as seen at `now`, in `now`'s time zone.
pub fn moment_in(s: &str, now: &jiff::Zoned) -> Result<SystemTime, MomentError> {
    let s = s.trim();
    let range = |e: jiff::Error| MomentError::OutOfRange(s.to_owned(), e.to_string());
    let at = if let Ok(ago) = humantime::parse_duration(s) {
        let ago = jiff::SignedDuration::try_from(ago).map_err(range)?;
        now.timestamp()
            .checked_sub(ago)
            .map_err(|_| MomentError::BeforeEpoch(s.to_owned()))?
    } else if let Ok(t) = s.parse::<jiff::Timestamp>() {
        t
    } else if let Ok(civil) = s.parse::<jiff::civil::DateTime>() {
        civil
            .to_zoned(now.time_zone().clone())
            .map_err(range)?
            .timestamp()
    } else if s.contains(':')
        && let Ok(time) = s.parse::<jiff::civil::Time>()
    {
        let today = now
            .date()
            .to_datetime(time)
            .to_zoned(now.time_zone().clone())
            .map_err(range)?;
        if today.timestamp() <= now.timestamp() {
            today.timestamp()
        } else {
            today
                .checked_sub(jiff::Span::new().days(1))
                .map_err(range)?
                .timestamp()
        }
    } else {
        return Err(MomentError::Unreadable(s.to_owned()));
    };
    Ok(SystemTime::from(at))
}

/// An RFC 3339 UTC time (as events carry) in this machine's time zone, for people:
/// `2026-11-29 15:02:03 CET`; the text as it was when it does not parse.
pub fn local_time(rfc3339: &str) -> String {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S %Z")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_owned())
}

/// What a health check got, for people: `is up (200, 3 ms)`, `answers 500`, `is down (timed
/// out after 1 s)`.
pub fn health_text(h: &portscope_shared::Health) -> String {
    let why = h.detail.as_deref().map(portscope_core::text::one_line);
    match (h.up, h.status, why) {
        (true, Some(status), _) => format!("is up ({status}, {} ms)", h.latency_ms),
        (true, None, Some(why)) => format!("is up ({why}, {} ms)", h.latency_ms),
        (true, None, None) => format!("is up ({} ms)", h.latency_ms),
        (false, Some(status), _) => format!("answers {status}"),
        (false, None, Some(why)) => format!("is down ({why})"),
        (false, None, None) => "is down".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_are_read_in_the_local_time_zone() {
        let now: jiff::Zoned = "2026-11-29T10:30:00+01:00[Europe/Paris]".parse().unwrap();
        let utc = |s: &str| -> String {
            let t = moment_in(s, &now).unwrap();
            humantime::format_rfc3339_seconds(t).to_string()
        };
        assert_eq!(utc("10m"), "2026-11-29T09:20:00Z");
        assert_eq!(utc("2026-11-29T14:02:00Z"), "2026-11-29T14:02:00Z");
        assert_eq!(utc("2026-11-29T14:02:00+05:00"), "2026-11-29T09:02:00Z");
        assert_eq!(
            utc("2026-11-29 14:02"),
            "2026-11-29T13:02:00Z",
            "Paris is UTC+1"
        );
        assert_eq!(utc("09:15"), "2026-11-29T08:15:00Z", "earlier today");
        assert_eq!(
            utc("14:02:30"),
            "2026-11-28T13:02:30Z",
            "later today: yesterday's"
        );
        for bad in ["soon", "25:00", "", "14"] {
            let e = moment_in(bad, &now).unwrap_err();
            assert!(matches!(e, MomentError::Unreadable(_)), "{bad}: {e}");
            assert!(e.to_string().contains("is not a moment"), "{bad}: {e}");
        }
    }
}
