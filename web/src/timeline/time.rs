//! Moments as the protocol writes them (RFC 3339, UTC) and as people read them (local clock
//! times, durations). Pure arithmetic on milliseconds since the Unix epoch, so that the model
//! and its tests need no browser; the browser only supplies the local UTC offset.

/// Milliseconds in a minute, an hour and a day.
pub const MINUTE_MS: f64 = 60_000.0;
pub const HOUR_MS: f64 = 60.0 * MINUTE_MS;
pub const DAY_MS: f64 = 24.0 * HOUR_MS;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian; Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day number since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Parses an RFC 3339 moment (`2026-11-29T14:02:03Z`, with optional fraction and a `Z` or
/// `±HH:MM` offset) into milliseconds since the epoch. `None` for anything else.
pub fn parse(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = text.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut at = 19;
    let mut fraction = 0.0;
    if b.get(at) == Some(&b'.') {
        let digits = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        fraction = format!("0.{}", &text[at + 1..at + 1 + digits])
            .parse()
            .ok()?;
        at += 1 + digits;
    }
    let offset_min = match b.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let minutes = num(at + 1, 2)? * 60 + num(at + 4, 2)?;
            if *sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Some((secs as f64 + fraction) * 1000.0)
}

/// The moment as RFC 3339 in UTC, to the second (`2026-11-29T14:02:03Z`): what the history
/// routes take as `since` and `until`.
pub fn format_utc(ms: f64) -> String {
    let (date, (h, m, s)) = split(ms, 0);
    format!("{date}T{h:02}:{m:02}:{s:02}Z")
}

/// The date and the time of day of `ms` at `offset_min` minutes east of UTC.
fn split(ms: f64, offset_min: i32) -> (String, (i64, i64, i64)) {
    let secs = (ms / 1000.0).floor() as i64 + i64::from(offset_min) * 60;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, mo, d) = civil_from_days(days);
    (
        format!("{y:04}-{mo:02}-{d:02}"),
        (rest / 3600, rest % 3600 / 60, rest % 60),
    )
}

/// `14:02` at `offset_min` minutes east of UTC (the browser's local time).
pub fn clock(ms: f64, offset_min: i32) -> String {
    let (_, (h, m, _)) = split(ms, offset_min);
    format!("{h:02}:{m:02}")
}

/// `2026-11-29 14:02:03` at `offset_min` minutes east of UTC.
pub fn date_time(ms: f64, offset_min: i32) -> String {
    let (date, (h, m, s)) = split(ms, offset_min);
    format!("{date} {h:02}:{m:02}:{s:02}")
}

/// `11-29` (month and day) at `offset_min` minutes east of UTC.
pub fn month_day(ms: f64, offset_min: i32) -> String {
    let (date, _) = split(ms, offset_min);
    date[5..].to_owned()
}

/// A length of time for people: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub fn duration(ms: f64) -> String {
    let secs = (ms.max(0.0) / 1000.0).round() as u64;
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => match secs % 3600 / 60 {
            0 => format!("{} h", secs / 3600),
            m => format!("{} h {m} min", secs / 3600),
        },
        _ => match secs % 86_400 / 3600 {
            0 => format!("{} d", secs / 86_400),
            h => format!("{} d {h} h", secs / 86_400),
        },
    }
}
