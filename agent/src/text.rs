//! Text from other processes made safe for a terminal.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(one_line("vite"), "vite");
        assert_eq!(one_line("a\nb\x1b[2J"), r"a\nb\u{1b}[2J");
    }
}
