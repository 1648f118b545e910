//! Text for people: text from other processes made safe for a terminal, and durations.

/// One line with control characters escaped (`\n`, `\u{1b}`, …): process names and command
/// lines are chosen by whoever started the process, and must not move the cursor, recolour the
/// terminal or break the layout of what portscope prints.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Cuts `text` to at most `max` bytes (on a character boundary), marking the cut with `…`; a
/// shorter text is left as it is.
pub fn cap(text: &mut String, max: usize) {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
}

/// A duration as people say it: `40 s`, `2 min`, `3 h`, `5 days`.
pub fn duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h", s / 3600),
        _ if s < 2 * 86_400 => "1 day".into(),
        _ => format!("{} days", s / 86_400),
    }
}

/// How long a process ran, for people: to a tenth of a second under 10 s (`2.1 s`), else as
/// [`duration`].
pub fn ran(d: std::time::Duration) -> String {
    if d < std::time::Duration::from_secs(10) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        duration(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_run_is_told_to_the_tenth_of_a_second() {
        assert_eq!(ran(std::time::Duration::from_millis(2049)), "2.0 s");
        assert_eq!(ran(std::time::Duration::from_millis(9940)), "9.9 s");
        assert_eq!(ran(std::time::Duration::from_secs(75)), "1 min");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(one_line("vite"), "vite");
        assert_eq!(one_line("a\nb\x1b[2J"), r"a\nb\u{1b}[2J");
    }
}
