//! Windowing of long lists: which rows of a scrolled list to render, so that the DOM holds the
//! rows in view and a margin, not every row. The table's sockets (fixed-height rows) and the
//! timeline's lanes and group headings (rows of two heights) both ask here.
//!
//! Pure arithmetic over row positions in pixels; it must not touch the browser (tested on the
//! host, below).

use std::ops::Range;

/// The rows of a list of `len` to render while the view shows `height` pixels from `top`:
/// every row that reaches into the view, and `overscan` rows beyond each edge, so that fast
/// scrolling shows no blank band. `bottom(i)` is where row `i` ends, in the same pixels as
/// `top` (e.g. from the top of the scrolled content); it must not decrease with `i`.
///
/// Two binary searches: the cost does not grow with the list.
pub fn rows_in_view(
    len: usize,
    bottom: impl Fn(usize) -> f64,
    top: f64,
    height: f64,
    overscan: usize,
) -> Range<usize> {
    let top = top.max(0.0);
    let end = top + height.max(0.0);
    // Rows that end at or above the view's top are above it; a row is below the view when the
    // one before it ends at or after the view's bottom.
    let above = first_not(len, |i| bottom(i) <= top);
    let reaching = (first_not(len, |i| bottom(i) < end) + 1).min(len);
    let first = above.saturating_sub(overscan);
    let last = reaching.saturating_add(overscan).min(len);
    first.min(last)..last
}

/// Where a key moves the keyboard's row of a list of `len` rows from row `at`, with `page` rows
/// to a screen: the arrows one row, Page Up and Page Down a screen, Home and End the ends (never
/// past them); `None` for any other key, or a move before the first row.
pub fn cursor_step(at: usize, len: usize, page: usize, key: &str) -> Option<usize> {
    let last = len.checked_sub(1)?;
    let to = match key {
        "ArrowDown" => at + 1,
        "ArrowUp" => at.checked_sub(1)?,
        "PageDown" => at + page,
        "PageUp" => at.saturating_sub(page),
        "Home" => 0,
        "End" => last,
        _ => return None,
    };
    Some(to.min(last))
}

/// The first index in `0..len` where `before` no longer holds (`len` when it always does);
/// `before` must hold on a prefix of the indices.
fn first_not(len: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The rows that reach into the view, found by looking at each, widened by `overscan`.
    fn naive(heights: &[f64], top: f64, height: f64, overscan: usize) -> Range<usize> {
        let top = top.max(0.0);
        let end = top + height.max(0.0);
        let mut y = 0.0;
        let mut above = 0;
        let mut reaching = 0;
        for (i, h) in heights.iter().enumerate() {
            let (row_top, row_bottom) = (y, y + h);
            if row_bottom <= top {
                above = i + 1;
            }
            // The first row, and every row that starts above the view's bottom.
            if i == 0 || row_top < end {
                reaching = i + 1;
            }
            y = row_bottom;
        }
        let first = above.saturating_sub(overscan);
        let last = (reaching + overscan).min(heights.len());
        first.min(last)..last
    }

    fn bottoms(heights: &[f64]) -> Vec<f64> {
        heights
            .iter()
            .scan(0.0, |y, h| {
                *y += h;
                Some(*y)
            })
            .collect()
    }

    proptest! {
        /// Rows of any heights (zero too), any scroll position, in or past the content.
        #[test]
        fn picks_the_rows_a_look_at_each_row_picks(
            heights in proptest::collection::vec(prop_oneof![Just(0.0), Just(22.0), Just(24.0), 1.0f64..100.0], 0..200),
            top in -50.0f64..6000.0,
            edge in proptest::option::of(0usize..200),
            height in 0.0f64..1500.0,
            overscan in 0usize..12,
        ) {
            let b = bottoms(&heights);
            // Sometimes exactly where a row ends.
            let top = edge.and_then(|k| b.get(k).copied()).unwrap_or(top);
            let got = rows_in_view(heights.len(), |i| b[i], top, height, overscan);
            prop_assert_eq!(got.clone(), naive(&heights, top, height, overscan));
            // And every row with a pixel in the view is among them.
            let mut y = 0.0;
            for (i, h) in heights.iter().enumerate() {
                if y < top.max(0.0) + height && y + h > top.max(0.0) {
                    prop_assert!(got.contains(&i), "row {} at {}..{} is in view", i, y, y + h);
                }
                y += h;
            }
        }
    }

    #[test]
    fn the_cursor_keys_move_within_the_list() {
        assert_eq!(cursor_step(0, 10, 3, "ArrowDown"), Some(1));
        assert_eq!(cursor_step(9, 10, 3, "ArrowDown"), Some(9));
        assert_eq!(cursor_step(0, 10, 3, "ArrowUp"), None);
        assert_eq!(cursor_step(5, 10, 3, "ArrowUp"), Some(4));
        assert_eq!(cursor_step(5, 10, 3, "PageDown"), Some(8));
        assert_eq!(cursor_step(8, 10, 3, "PageDown"), Some(9));
        assert_eq!(cursor_step(2, 10, 3, "PageUp"), Some(0));
        assert_eq!(cursor_step(5, 10, 3, "Home"), Some(0));
        assert_eq!(cursor_step(5, 10, 3, "End"), Some(9));
        assert_eq!(cursor_step(5, 10, 3, "x"), None);
        assert_eq!(cursor_step(0, 0, 3, "End"), None);
    }

    #[test]
    fn fixed_rows_keep_the_table_s_arithmetic() {
        // What the table computed before it asked here: first = ⌊top / px⌋ − overscan,
        // last = ⌈(top + height) / px⌉ + overscan, both within the rows.
        let px: f64 = 29.0;
        for (top, height, len) in [
            (0.0f64, 1000.0f64, 21_000usize),
            (290.0, 600.0, 21_000),
            (300.5, 600.0, 21_000),
            (608_700.0, 700.0, 21_000),
            (50.0, 700.0, 10),
            (0.0, 0.0, 0),
        ] {
            let first = ((top / px) as usize).saturating_sub(20);
            let last = ((top + height) / px).ceil() as usize + 20;
            assert_eq!(
                rows_in_view(len, |i| (i + 1) as f64 * px, top, height, 20),
                first.min(len)..last.min(len),
                "top {top}, height {height}, {len} rows"
            );
        }
    }
}
