//! Tests of the timeline's model. The merge of spans and live events is checked against a
//! made-up history: random listener lives are the truth, the spans an agent would answer at
//! the moment the page fetched them and the events it would send after the page opened are
//! derived from that truth, and the merge must give the truth back. The layout is checked
//! against naive readings of the same tenures (which overlap the window, where each must be
//! drawn); the calendar arithmetic against moments `date -u +%s` gave.

use std::collections::BTreeMap;

use portscope_shared::{
    ConnectionHistory, ConnectionMinute, Event, EventKind, Family, Proto, Span,
};
use proptest::prelude::*;

use super::connections::Chart;
use super::recent::{Change, line, matches, port_of, recent};
use super::time::{self, DAY_MS, HOUR_MS, MINUTE_MS};
use super::*;

// ---------------------------------------------------------------------------------------------
// time

#[test]
fn parses_moments_as_date_does() {
    // `date -u -d MOMENT +%s.%N`
    let known = [
        ("2026-11-29T14:02:03Z", 1_795_960_923.0),
        ("1970-01-01T00:00:00Z", 0.0),
        ("2000-02-29T23:59:59Z", 951_868_799.0),
        ("2024-12-31T00:00:00Z", 1_735_603_200.0),
        ("2100-03-01T12:00:00Z", 4_107_585_600.0),
        ("1999-12-31T23:59:59.5Z", 946_684_799.5),
        ("2026-11-29T14:02:03+02:00", 1_795_953_723.0),
        ("2026-11-29T14:02:03.250-01:30", 1_795_966_323.25),
    ];
    for (text, secs) in known {
        assert_eq!(time::parse(text), Some(secs * 1000.0), "{text}");
    }
    for bad in [
        "",
        "2026-11-29",
        "2026-11-29T14:02:03",
        "2026-13-01T00:00:00Z",
        "2026-11-29T24:00:00Z",
        "2026-11-29T14:02:03.Z",
        "2026-11-29T14:02:03+0200",
        "2026-11-29T14:02:0xZ",
        "1h",
    ] {
        assert_eq!(time::parse(bad), None, "{bad:?}");
    }
}

/// Days since the epoch counted the long way: whole years, then whole months.
fn naive_days(year: i64, month: u32, day: u32) -> i64 {
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mut days = 0;
    for y in 1970..year {
        days += if leap(y) { 366 } else { 365 };
    }
    let lengths = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    days += lengths[..(month - 1) as usize].iter().sum::<i64>();
    days + i64::from(day) - 1
}

proptest! {
    #[test]
    fn formats_and_parses_every_second_alike(
        year in 1970i64..2200, month in 1u32..=12, day in 1u32..=28,
        h in 0u32..24, m in 0u32..60, s in 0u32..60, offset in -720i32..=840,
    ) {
        let ms = (naive_days(year, month, day) * 86_400 + i64::from(h * 3600 + m * 60 + s)) as f64 * 1000.0;
        let text = format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z");
        prop_assert_eq!(time::parse(&text), Some(ms));
        prop_assert_eq!(time::format_utc(ms), text);
        // Local readings are the UTC reading of the shifted moment.
        let shifted = ms + f64::from(offset) * MINUTE_MS;
        let utc = time::format_utc(shifted);
        prop_assert_eq!(time::clock(ms, offset), utc[11..16].to_owned());
        prop_assert_eq!(time::date_time(ms, offset), format!("{} {}", &utc[..10], &utc[11..19]));
    }
}

#[test]
fn durations_read_as_people_say_them() {
    assert_eq!(time::duration(45_000.0), "45 s");
    assert_eq!(time::duration(12.0 * MINUTE_MS), "12 min");
    assert_eq!(time::duration(HOUR_MS), "1 h");
    assert_eq!(time::duration(3.0 * HOUR_MS + 5.0 * MINUTE_MS), "3 h 5 min");
    assert_eq!(time::duration(2.0 * DAY_MS + 4.0 * HOUR_MS), "2 d 4 h");
}

// ---------------------------------------------------------------------------------------------
// merging spans and live events

const T0: f64 = 1_795_960_923_000.0;

fn key(port: u16, v6: bool) -> ListenerKey {
    ListenerKey {
        proto: Proto::Tcp,
        family: if v6 { Family::Ipv6 } else { Family::Ipv4 },
        addr: if v6 { "::1" } else { "127.0.0.1" }.parse().unwrap(),
        port,
        host: None,
    }
}

/// A listener's life in the made-up truth.
#[derive(Clone, Debug, PartialEq)]
struct Life {
    key: ListenerKey,
    pid: u32,
    start: f64,
    end: Option<f64>,
}

fn name_of(pid: u32) -> String {
    format!("prog{}", pid % 3)
}

fn event(kind: EventKind, key: &ListenerKey, pid: u32, at: f64) -> Event {
    Event {
        error: None,
        holders: Vec::new(),
        count: None,
        fix: None,
        brief: false,
        time: time::format_utc(at),
        since: None,
        kind,
        proto: key.proto,
        family: key.family,
        local_addr: key.addr,
        local_port: key.port,
        remote_addr: None,
        remote_port: None,
        pid: Some(pid),
        process: Some(name_of(pid)),
        cmdline: vec![name_of(pid), "--serve".into()],
        user: Some("dev".into()),
        cwd: None,
        exe: None,
        start_time: None,
        start_ms: None,
        app: None,
        health: None,
        project: None,
    }
}

fn span(life: &Life) -> Span {
    Span {
        proto: life.key.proto,
        family: life.key.family,
        local_addr: life.key.addr,
        local_port: life.key.port,
        pid: Some(life.pid),
        process: Some(name_of(life.pid)),
        cmdline: vec![name_of(life.pid), "--serve".into()],
        user: Some("dev".into()),
        app: None,
        start: time::format_utc(life.start),
        start_since: None,
        end: life.end.map(time::format_utc),
        health: Vec::new(),
        project: None,
    }
}

/// Per listener, a run of (gap before, length, handed over?) in seconds: listeners open, close,
/// reopen after a gap, or pass to another process with no gap at all.
fn lives() -> impl Strategy<Value = Vec<Life>> {
    let runs = proptest::collection::vec((2u32..600, 2u32..900, any::<bool>(), 1u32..50), 0..6);
    proptest::collection::vec(runs, 4).prop_map(|per_key| {
        let mut lives = Vec::new();
        for (k, runs) in per_key.into_iter().enumerate() {
            let key = key(8000 + (k / 2) as u16, k % 2 == 1);
            let mut at = T0;
            let mut previous_pid = 0;
            for (gap, len, hand_over, pid) in runs {
                // A hand-over starts the new owner where the old one's tenure ended.
                let pid = if pid == previous_pid { pid + 50 } else { pid };
                if !(hand_over && previous_pid != 0) {
                    at += f64::from(gap) * 1000.0;
                }
                lives.push(Life {
                    key: key.clone(),
                    pid,
                    start: at,
                    end: Some(at + f64::from(len) * 1000.0),
                });
                at += f64::from(len) * 1000.0;
                previous_pid = pid;
            }
            // The last one may still be open.
            if let Some(last) = lives.last_mut().filter(|l| l.key == key && l.pid % 2 == 0) {
                last.end = None;
            }
        }
        lives
    })
}

/// The events an agent sends for the truth, in time order: an opening (or a hand-over when
/// the previous owner's tenure ended at that very moment), a closing (unless handed over).
fn events_of(lives: &[Life]) -> Vec<Event> {
    let mut events: Vec<(f64, u8, Event)> = Vec::new();
    for life in lives {
        let handed = lives
            .iter()
            .any(|o| o.key == life.key && o.end == Some(life.start) && o.pid != life.pid);
        let kind = if handed {
            EventKind::OwnerChanged
        } else {
            EventKind::Opened
        };
        events.push((life.start, 1, event(kind, &life.key, life.pid, life.start)));
        if let Some(end) = life.end {
            let handed_on = lives
                .iter()
                .any(|o| o.key == life.key && o.start == end && o.pid != life.pid);
            if !handed_on {
                events.push((end, 0, event(EventKind::Closed, &life.key, life.pid, end)));
            }
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    events.into_iter().map(|(_, _, e)| e).collect()
}

/// What the history answers at `at`: every tenure begun by then, still open if it ended later.
fn spans_at(lives: &[Life], at: f64) -> Vec<Span> {
    lives
        .iter()
        .filter(|l| l.start <= at)
        .map(|l| {
            span(&Life {
                end: l.end.filter(|&e| e <= at),
                ..l.clone()
            })
        })
        .collect()
}

type Summary = Vec<(ListenerKey, Option<u32>, i64, Option<i64>)>;

fn summary(items: impl Iterator<Item = (ListenerKey, Option<u32>, f64, Option<f64>)>) -> Summary {
    let mut v: Summary = items
        .map(|(k, pid, start, end)| (k, pid, start as i64, end.map(|e| e as i64)))
        .collect();
    v.sort();
    v
}

fn truth(lives: &[Life]) -> Summary {
    summary(
        lives
            .iter()
            .map(|l| (l.key.clone(), Some(l.pid), l.start, l.end)),
    )
}

fn merged(spans: &[Span], events: &[Event]) -> Summary {
    let base = spans.iter().filter_map(Tenure::from_span).collect();
    summary(
        merge(base, events)
            .into_iter()
            .map(|t| (t.key, t.pid, t.start, t.end)),
    )
}

proptest! {
    /// The page opens at `page`, fetches the spans at `fetch` (later), and receives every event
    /// after `page`: whatever the moments, spans and events merge to the truth.
    #[test]
    fn spans_and_live_events_merge_to_the_truth(
        lives in lives(),
        page_s in 0u32..6000,
        fetch_after_s in 0u32..3000,
    ) {
        let page = T0 + f64::from(page_s) * 1000.0;
        let fetch = page + f64::from(fetch_after_s) * 1000.0;
        let events = events_of(&lives);
        let live: Vec<Event> = events
            .iter()
            .filter(|e| time::parse(&e.time).unwrap() > page)
            .cloned()
            .collect();
        let spans = spans_at(&lives, fetch);
        prop_assert_eq!(merged(&spans, &live), truth(&lives));
        // Events received twice (a resync) change nothing.
        let twice: Vec<Event> = live.iter().chain(&live).cloned().collect();
        prop_assert_eq!(merged(&spans, &twice), truth(&lives));
    }

    /// Without a history, the events alone give every tenure that began after the page opened.
    #[test]
    fn live_events_alone_give_what_began_since(lives in lives(), page_s in 0u32..6000) {
        let page = T0 + f64::from(page_s) * 1000.0;
        let live: Vec<Event> = events_of(&lives)
            .into_iter()
            .filter(|e| time::parse(&e.time).unwrap() > page)
            .collect();
        let began: Vec<Life> = lives.iter().filter(|l| l.start > page).cloned().collect();
        prop_assert_eq!(merged(&[], &live), truth(&began));
    }
}

#[test]
fn a_listener_open_when_the_page_opened_ends_with_its_closing() {
    // No history: the page starts from what was open, at the page's opening.
    let k = key(8000, false);
    let seed = Tenure {
        key: k.clone(),
        pid: Some(7),
        process: Some("python3".into()),
        cmdline: vec![],
        user: None,
        app: None,
        start: T0,
        start_since: None,
        end: None,
        before_page: true,
        health: Vec::new(),
        project: None,
    };
    let out = merge(
        vec![seed],
        &[
            event(EventKind::Closed, &k, 7, T0 + 60_000.0),
            event(EventKind::Opened, &k, 8, T0 + 65_000.0),
        ],
    );
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].end, Some(T0 + 60_000.0));
    assert!(out[0].period(T0, 0).starts_with("open before"));
    assert_eq!((out[1].pid, out[1].end), (Some(8), None));
}

#[test]
fn an_owner_change_that_keeps_the_first_pid_goes_on_as_one_tenure() {
    // The agent saw the listener before its owner (opened with no pid), then the owner; later
    // a child took a share of the socket and let go (an owner change with the same first pid).
    let k = key(8000, false);
    let mut hidden = event(EventKind::Opened, &k, 1, T0);
    hidden.pid = None;
    hidden.process = None;
    let out = merge(
        vec![],
        &[
            hidden,
            event(EventKind::OwnerChanged, &k, 7, T0 + 3000.0),
            event(EventKind::OwnerChanged, &k, 7, T0 + 60_000.0),
            event(EventKind::Closed, &k, 7, T0 + 90_000.0),
        ],
    );
    // One life, the owner's from the opening: the moment without a known owner is no tenure.
    let got: Vec<(Option<u32>, f64, Option<f64>)> =
        out.iter().map(|t| (t.pid, t.start, t.end)).collect();
    assert_eq!(got, [(Some(7), T0, Some(T0 + 90_000.0))]);
    // The same from the history's spans (two spans, the first without an owner).
    let spans = [
        Span {
            pid: None,
            process: None,
            end: Some(time::format_utc(T0 + 3000.0)),
            ..span(&Life {
                key: k.clone(),
                pid: 7,
                start: T0,
                end: None,
            })
        },
        span(&Life {
            key: k.clone(),
            pid: 7,
            start: T0 + 3000.0,
            end: None,
        }),
    ];
    let from_spans: Vec<(Option<u32>, f64, Option<f64>)> =
        merge(spans.iter().filter_map(Tenure::from_span).collect(), &[])
            .iter()
            .map(|t| (t.pid, t.start, t.end))
            .collect();
    assert_eq!(from_spans, [(Some(7), T0, None)]);
    // A hidden owner that held it longer is a tenure of its own.
    let mut hidden = event(EventKind::Opened, &k, 1, T0);
    hidden.pid = None;
    let long = merge(
        vec![],
        &[hidden, event(EventKind::OwnerChanged, &k, 7, T0 + 60_000.0)],
    );
    assert_eq!(long.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// window, lanes, layout

#[test]
fn zoom_keeps_the_moment_under_the_pointer_and_pan_stops_at_now() {
    let w = Window::last(HOUR_MS, T0);
    let anchor = w.start + 0.25 * w.len();
    let z = w.zoom(0.5, 0.25);
    assert_eq!(z.len(), HOUR_MS / 2.0);
    assert!((z.start + 0.25 * z.len() - anchor).abs() < 1e-3);
    assert_eq!(w.zoom(1e-9, 0.5).len(), MIN_WINDOW_MS);
    assert_eq!(w.zoom(1e9, 0.5).len(), MAX_WINDOW_MS);
    assert_eq!(w.pan(0.5, T0), w, "the future is not there yet");
    assert_eq!(w.pan(-0.5, T0).end, T0 - HOUR_MS / 2.0);
}

#[test]
fn ticks_fall_on_round_local_times() {
    // 13:00–14:00 UTC over 600 px: 10 minutes is the first step of at least 70 px.
    let start = time::parse("2026-11-29T13:00:00Z").unwrap();
    let scale = Scale {
        window: Window {
            start,
            end: start + HOUR_MS,
        },
        x0: 100.0,
        width: 600.0,
    };
    let labels: Vec<(i64, String)> = ticks(scale, 0)
        .into_iter()
        .map(|t| (t.x.round() as i64, t.label))
        .collect();
    let want: Vec<(i64, String)> = [
        "13:00", "13:10", "13:20", "13:30", "13:40", "13:50", "14:00",
    ]
    .iter()
    .enumerate()
    .map(|(i, l)| (100 + 100 * i as i64, (*l).to_owned()))
    .collect();
    assert_eq!(labels, want);
    // In UTC+05:30 the same window's ticks are on that zone's round ten minutes.
    let local: Vec<String> = ticks(scale, 330).into_iter().map(|t| t.label).collect();
    assert_eq!(local[0], "18:30");
    // A week over 700 px: one tick a day, dates at local midnight.
    let week = Scale {
        window: Window::last(7.0 * DAY_MS, start),
        x0: 0.0,
        width: 700.0,
    };
    let days: Vec<String> = ticks(week, 0).into_iter().map(|t| t.label).collect();
    assert_eq!(
        days,
        [
            "11-23", "11-24", "11-25", "11-26", "11-27", "11-28", "11-29"
        ]
    );
}

fn tenure(port: u16, v6: bool, pid: u32, start: f64, end: Option<f64>) -> Tenure {
    Tenure {
        key: key(port, v6),
        pid: Some(pid),
        process: Some(name_of(pid)),
        cmdline: vec![],
        user: None,
        app: None,
        start,
        start_since: None,
        end,
        before_page: false,
        health: Vec::new(),
        project: None,
    }
}

#[test]
fn lanes_group_ports_by_their_last_program_and_filter_by_words() {
    let t = |port, pid, start: f64, end: Option<f64>| {
        tenure(port, false, pid, T0 + start, end.map(|e| T0 + e))
    };
    let tenures = vec![
        t(9000, 1, 0.0, Some(100_000.0)),    // prog1
        t(8000, 2, 0.0, Some(50_000.0)),     // prog2, then prog0 holds 8000
        t(8000, 3, 60_000.0, None),          // prog0
        t(7000, 4, -DAY_MS, Some(-HOUR_MS)), // outside the window
        t(7500, 5, 10_000.0, None),          // prog2
    ];
    let window = Window::last(HOUR_MS, T0 + 120_000.0);
    let groups = lanes(&tenures, window, T0 + 120_000.0, "");
    let seen: Vec<(String, Vec<u16>)> = groups
        .iter()
        .map(|g| (g.name.clone(), g.lanes.iter().map(|l| l.port).collect()))
        .collect();
    assert_eq!(
        seen,
        [
            ("prog0".to_owned(), vec![8000]),
            ("prog1".to_owned(), vec![9000]),
            ("prog2".to_owned(), vec![7500]),
        ]
    );
    assert_eq!(groups[0].lanes[0].tenures, [1, 2]);
    let only: Vec<u16> = lanes(&tenures, window, T0 + 120_000.0, "PROG2")
        .iter()
        .flat_map(|g| g.lanes.iter().map(|l| l.port))
        .collect();
    assert_eq!(only, [8000, 7500], "a lane matches any of its tenures");
    assert!(lanes(&tenures, window, T0 + 120_000.0, "9000 prog2").is_empty());
    // A port served by an app is listed under the app, its heading in its program's colour.
    let mut vite = t(5173, 7, 0.0, None);
    vite.process = Some("node".into());
    vite.app = Some("Vite dev server".into());
    let groups = lanes(&[vite], window, T0 + 120_000.0, "vite");
    assert_eq!(groups.len(), 1);
    assert_eq!(
        (groups[0].name.as_str(), groups[0].colour),
        ("Vite dev server", colour("node"))
    );
}

#[test]
fn gaps_stay_empty_and_restarts_are_marked() {
    // 8000: closed at 10 min, reopened 5 s later (a restart); closed at 20 min, reopened at 40.
    let m = MINUTE_MS;
    let tenures = vec![
        tenure(8000, false, 1, T0, Some(T0 + 10.0 * m)),
        tenure(8000, false, 2, T0 + 10.0 * m + 5000.0, Some(T0 + 20.0 * m)),
        tenure(8000, false, 3, T0 + 40.0 * m, None),
    ];
    let scale = Scale {
        window: Window::last(HOUR_MS, T0 + 60.0 * m),
        x0: 0.0,
        width: 600.0,
    };
    let groups = lanes(&tenures, scale.window, T0 + 60.0 * m, "");
    let layout = layout(&tenures, &groups, scale, T0 + 60.0 * m, 0);
    let bars: Vec<Bar> = layout
        .rows
        .iter()
        .flat_map(|r| match r {
            Row::Lane { bars, .. } => bars.clone(),
            Row::Group { .. } => vec![],
        })
        .collect();
    let spans: Vec<(i64, i64, bool, bool)> = bars
        .iter()
        .map(|b| {
            (
                b.x.round() as i64,
                (b.x + b.width).round() as i64,
                b.restart,
                b.open,
            )
        })
        .collect();
    assert_eq!(
        spans,
        [
            (0, 100, false, false),
            (101, 200, true, false),
            (400, 600, false, true)
        ]
    );
    // Drawn as one path: a stroke at the restarted bar's left edge, nothing at the others.
    assert_eq!(
        restart_marks(&bars, 46.0).as_deref(),
        Some("M100.8 48.0V68.0"),
        "at x {}",
        bars[1].x
    );
    assert_eq!(restart_marks(&bars[..1], 46.0), None);
}

fn arbitrary_tenures() -> impl Strategy<Value = Vec<Tenure>> {
    proptest::collection::vec(
        (
            0u16..6,
            any::<bool>(),
            1u32..9,
            0u32..(7 * 86_400),
            proptest::option::of(0u32..86_400),
        ),
        0..300,
    )
    .prop_map(|items| {
        items
            .into_iter()
            .map(|(port, v6, pid, start, len)| {
                let start = T0 + f64::from(start) * 1000.0;
                tenure(
                    8000 + port,
                    v6,
                    pid,
                    start,
                    len.map(|l| start + f64::from(l) * 1000.0),
                )
            })
            .collect()
    })
}

proptest! {
    /// Every tenure that overlaps the window is drawn in exactly one bar of its port's lane,
    /// covering its clipped extent; none outside the window is; bars stay inside the plot; a
    /// lane holds at most one bar per MERGE_PX pixels; a bar has a colour when all its
    /// tenures' programs share it.
    #[test]
    fn layout_draws_each_visible_tenure_once_within_bounds(
        tenures in arbitrary_tenures(),
        start_s in 0u32..(8 * 86_400),
        len_s in 60u32..(8 * 86_400),
        width in 50.0f64..2000.0,
    ) {
        let now = T0 + 8.0 * DAY_MS;
        let window = Window { start: T0 + f64::from(start_s) * 1000.0, end: T0 + f64::from(start_s + len_s) * 1000.0 };
        let scale = Scale { window, x0: 120.0, width };
        let groups = lanes(&tenures, window, now, "");
        let drawn = layout(&tenures, &groups, scale, now, 0);
        let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
        let mut lane_ports = Vec::new();
        for row in &drawn.rows {
            let Row::Lane { label, bars, .. } = row else { continue };
            let port: u16 = label.rsplit(' ').next().unwrap().parse().unwrap();
            lane_ports.push(port);
            prop_assert!(bars.len() as f64 <= width / MERGE_PX + 1.0, "{} bars in {width} px", bars.len());
            for bar in bars {
                prop_assert!(bar.x >= scale.x0 - 1e-6 && bar.x + bar.width <= scale.x0 + width + MERGE_PX + 1e-6);
                let colours: Vec<usize> = bar.tenures.iter().map(|&i| colour(tenures[i].program())).collect();
                let shared = colours.iter().all(|&c| c == colours[0]).then_some(colours[0]);
                prop_assert_eq!(bar.colour, shared);
                for &i in &bar.tenures {
                    *seen.entry(i).or_default() += 1;
                    let t = &tenures[i];
                    prop_assert_eq!(t.key.port, port);
                    let left = scale.x(t.start.max(window.start));
                    let right = scale.x(t.end.unwrap_or(now).min(window.end));
                    prop_assert!(left >= bar.x - 1e-6 && right <= bar.x + bar.width + 1e-6);
                }
            }
        }
        let mut sorted = lane_ports.clone();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(sorted.len(), lane_ports.len(), "one lane per port");
        for (i, t) in tenures.iter().enumerate() {
            let overlaps = t.start < window.end && t.end.unwrap_or(now) > window.start;
            prop_assert_eq!(seen.get(&i).copied().unwrap_or(0), usize::from(overlaps), "tenure {}", i);
        }
    }
}

proptest! {
    /// The rows drawn for a scroll position: every row with a pixel in the plot's view (found
    /// by looking at each row's extent), one run of rows, and at most OVERSCAN_ROWS beyond
    /// each edge of the view.
    #[test]
    fn only_the_rows_in_view_and_a_margin_are_drawn(
        tenures in arbitrary_tenures(),
        top in -100.0f64..3000.0,
        height in 0.0f64..900.0,
    ) {
        let now = T0 + 8.0 * DAY_MS;
        let window = Window::last(8.0 * DAY_MS, now);
        let scale = Scale { window, x0: 120.0, width: 800.0 };
        let drawn = layout(&tenures, &lanes(&tenures, window, now, ""), scale, now, 0);
        let range = drawn.rows_in_view(top, height);
        prop_assert!(range.end <= drawn.rows.len());
        let (view_top, view_end) = (top.max(0.0), top.max(0.0) + height);
        let mut y = AXIS_PX;
        let mut in_view = Vec::new();
        for (r, row) in drawn.rows.iter().enumerate() {
            let h = if matches!(row, Row::Group { .. }) { GROUP_PX } else { LANE_PX };
            prop_assert_eq!((row.y(), row.bottom()), (y, y + h), "row {} starts where the one above ends", r);
            if y < view_end && y + h > view_top {
                in_view.push(r);
            }
            y += h;
        }
        prop_assert_eq!(y, drawn.height);
        for r in &in_view {
            prop_assert!(range.contains(r), "row {} is in view, not drawn ({:?})", r, range);
        }
        if let (Some(first), Some(last)) = (in_view.first(), in_view.last()) {
            prop_assert!(first - range.start <= OVERSCAN_ROWS && range.end - 1 - last <= OVERSCAN_ROWS);
        }
    }

    /// The keyboard's bar, named by a `BarId`, is found again after a pan or a zoom and after
    /// lanes appear above it (a filter removed): the bar found stands for the very tenure the
    /// id was taken from (looked up by index, not by the id's fields).
    #[test]
    fn a_bar_keeps_its_identity_when_the_drawing_moves(
        tenures in arbitrary_tenures(),
        pick in any::<prop::sample::Index>(),
        shift in -0.5f64..0.0,
        zoom in 0.25f64..4.0,
    ) {
        let now = T0 + 8.0 * DAY_MS;
        let window = Window::last(8.0 * DAY_MS, now);
        let scale = Scale { window, x0: 120.0, width: 800.0 };
        // Before: only port 8003's lane; after: every lane, the window moved.
        let before = layout(&tenures, &lanes(&tenures, window, now, "8003"), scale, now, 0);
        let bars: Vec<(usize, usize)> = before.rows.iter().enumerate()
            .flat_map(|(r, _)| (0..before.bars(r).len()).map(move |b| (r, b)))
            .collect();
        prop_assume!(!bars.is_empty());
        let (r, b) = bars[pick.index(bars.len())];
        let id = before.id(&tenures, r, b).unwrap();
        let shown = before.bars(r)[b].tenures[0];
        let moved = Scale { window: window.pan(shift, now).zoom(zoom, 0.5), ..scale };
        let after = layout(&tenures, &lanes(&tenures, moved.window, now, ""), moved, now, 0);
        let t = &tenures[shown];
        let visible = t.start < moved.window.end && t.end_or(now) > moved.window.start;
        match after.locate(&tenures, &id) {
            Some((r2, b2)) => {
                let Row::Lane { label, bars, .. } = &after.rows[r2] else { panic!("a heading") };
                prop_assert_eq!(label.as_str(), "tcp 8003");
                // Another tenure of the lane may start in the same ms: then either is right.
                prop_assert!(bars[b2].tenures.iter().any(|&i| tenures[i].start as i64 == t.start as i64));
                if visible {
                    prop_assert!(
                        bars[b2].tenures.contains(&shown)
                            || bars[b2].tenures.iter().any(|&i| tenures[i].start == t.start)
                    );
                }
            }
            None => prop_assert!(!visible, "tenure {} is drawn but its bar was not found", shown),
        }
    }
}

#[test]
fn the_tab_stop_is_the_keyboard_s_bar_while_it_is_drawn() {
    let bar = |x: f64| Bar {
        x,
        width: 10.0,
        colour: Some(0),
        tenures: vec![0],
        open: false,
        restart: false,
    };
    let lane = |bars: Vec<Bar>| Row::Lane {
        y: 0.0,
        label: String::new(),
        addrs: String::new(),
        bars,
        health: HealthPaths::default(),
    };
    let heading = Row::Group {
        y: 0.0,
        name: "a".into(),
        colour: 0,
    };
    let layout = Layout {
        rows: vec![
            heading.clone(),
            lane(vec![bar(0.0), bar(100.0)]),
            heading,
            lane(vec![]),
            lane(vec![bar(50.0), bar(90.0)]),
        ],
        ticks: vec![],
        height: 0.0,
    };
    assert_eq!(tab_stop(&layout, 0..5, Some((4, 1))), Some((4, 1)));
    assert_eq!(
        tab_stop(&layout, 0..3, Some((4, 1))),
        Some((1, 0)),
        "its lane is not drawn: the first drawn bar"
    );
    assert_eq!(
        tab_stop(&layout, 2..5, None),
        Some((4, 0)),
        "past a heading and an empty lane"
    );
    assert_eq!(
        tab_stop(&layout, 0..5, Some((1, 7))),
        Some((1, 0)),
        "a bar that is gone"
    );
    assert_eq!(tab_stop(&layout, 2..4, Some((1, 0))), None);
}

#[test]
fn the_picked_tenure_is_highlighted_in_its_bar_wherever_it_came_from() {
    let tenures = vec![
        tenure(8000, false, 1, T0, Some(T0 + HOUR_MS)),
        tenure(8000, false, 2, T0 + HOUR_MS, None),
        tenure(9000, false, 2, T0, None),
    ];
    let now = T0 + 2.0 * HOUR_MS;
    let scale = Scale {
        window: Window::last(3.0 * HOUR_MS, now),
        x0: 0.0,
        width: 600.0,
    };
    let drawn = layout(
        &tenures,
        &lanes(&tenures, scale.window, now, ""),
        scale,
        now,
        0,
    );
    let at = |r: usize, b: usize| drawn.bars(r)[b].tenures.clone();
    // The live event's copy of pid 2's tenure of 8000 began a tick after the span's.
    let mut from_event = tenures[1].clone();
    from_event.start += 900.0;
    let (r, b) = drawn.bar_showing(&tenures, &from_event).unwrap();
    assert_eq!(at(r, b), [1]);
    let (r, b) = drawn.bar_showing(&tenures, &tenures[2]).unwrap();
    assert_eq!(
        at(r, b),
        [2],
        "the same pid on another port is another tenure"
    );
    let mut other = tenures[1].clone();
    other.pid = Some(3);
    assert_eq!(drawn.bar_showing(&tenures, &other), None);
}

#[test]
fn a_week_on_200_ports_stays_a_bounded_drawing() {
    // 200 ports, each restarted every 5 minutes for a week: 403 200 tenures.
    let mut tenures = Vec::new();
    for port in 0..200u16 {
        let mut at = T0;
        while at < T0 + 7.0 * DAY_MS {
            tenures.push(tenure(
                10_000 + port,
                false,
                u32::from(port) + 1,
                at,
                Some(at + 4.0 * MINUTE_MS),
            ));
            at += 5.0 * MINUTE_MS;
        }
    }
    let scale = Scale {
        window: Window::last(7.0 * DAY_MS, T0 + 7.0 * DAY_MS),
        x0: 0.0,
        width: 1000.0,
    };
    let groups = lanes(&tenures, scale.window, T0 + 7.0 * DAY_MS, "");
    let drawn = layout(&tenures, &groups, scale, T0 + 7.0 * DAY_MS, 0);
    assert_eq!(
        drawn
            .rows
            .iter()
            .filter(|r| matches!(r, Row::Lane { .. }))
            .count(),
        200
    );
    assert!(
        drawn.bar_count() <= 200 * (1000.0 / MERGE_PX) as usize + 200,
        "{}",
        drawn.bar_count()
    );
    // In a plot 650 px high, wherever it is scrolled, the rows drawn are those 650 px show
    // (27 lanes, a partial one at each edge) and OVERSCAN_ROWS beyond each edge: a fifth of
    // the 200 lanes.
    for top in [0.0, 1234.0, drawn.height - 650.0] {
        let rows = drawn.rows_in_view(top, 650.0);
        assert!(rows.len() <= 650 / 24 + 2 + 2 * OVERSCAN_ROWS, "{rows:?}");
        assert!(rows.len() >= 650 / 24, "{rows:?}");
    }
    // Zoomed to an hour, each of the 12 tenures of a lane is a bar of its own.
    let hour = Scale {
        window: Window::last(HOUR_MS, T0 + 7.0 * DAY_MS),
        ..scale
    };
    let groups = lanes(&tenures, hour.window, T0 + 7.0 * DAY_MS, "");
    let drawn = layout(&tenures, &groups, hour, T0 + 7.0 * DAY_MS, 0);
    assert!(drawn.rows.iter().all(|r| match r {
        Row::Lane { bars, .. } => bars.len() == 12 && bars.iter().all(|b| b.tenures.len() == 1),
        Row::Group { .. } => true,
    }));
}

#[test]
fn a_bar_opens_the_owner_of_the_moment_clicked() {
    let tenures = vec![
        tenure(8000, false, 1, T0, Some(T0 + 1000.0)),
        tenure(8000, false, 2, T0 + 1000.0, Some(T0 + 2000.0)),
    ];
    let bar = Bar {
        x: 0.0,
        width: 3.0,
        colour: None,
        tenures: vec![0, 1],
        open: false,
        restart: false,
    };
    assert_eq!(bar.tenure_at(&tenures, T0 + 500.0, T0), 0);
    assert_eq!(bar.tenure_at(&tenures, T0 + 1500.0, T0), 1);
    assert_eq!(bar.tenure_at(&tenures, T0 + 9000.0, T0), 1);
}

#[test]
fn keyboard_moves_along_lanes_and_to_the_nearest_bar_across() {
    let bar = |x: f64| Bar {
        x,
        width: 10.0,
        colour: Some(0),
        tenures: vec![0],
        open: false,
        restart: false,
    };
    let lane = |bars: Vec<Bar>| Row::Lane {
        y: 0.0,
        label: String::new(),
        addrs: String::new(),
        bars,
        health: HealthPaths::default(),
    };
    let layout = Layout {
        rows: vec![
            Row::Group {
                y: 0.0,
                name: "a".into(),
                colour: 0,
            },
            lane(vec![bar(0.0), bar(100.0), bar(200.0)]),
            Row::Group {
                y: 0.0,
                name: "b".into(),
                colour: 1,
            },
            lane(vec![bar(90.0), bar(400.0)]),
        ],
        ticks: vec![],
        height: 0.0,
    };
    assert_eq!(neighbour(&layout, 1, 0, "ArrowRight"), Some((1, 1)));
    assert_eq!(neighbour(&layout, 1, 2, "ArrowRight"), None);
    assert_eq!(neighbour(&layout, 1, 0, "ArrowLeft"), None);
    assert_eq!(
        neighbour(&layout, 1, 2, "ArrowDown"),
        Some((3, 0)),
        "skips the heading; nearest x"
    );
    assert_eq!(neighbour(&layout, 3, 1, "ArrowUp"), Some((1, 2)));
    assert_eq!(neighbour(&layout, 3, 0, "ArrowDown"), None);
    assert_eq!(neighbour(&layout, 1, 1, "End"), Some((1, 2)));
}

#[test]
fn colours_are_stable_per_program() {
    assert_eq!(colour("python3"), colour("python3"));
    assert!(colour("python3") < PALETTE);
    let names = [
        "python3",
        "node",
        "nginx",
        "postgres",
        "redis-server",
        "sshd",
        "vite",
        "java",
    ];
    let distinct: std::collections::BTreeSet<usize> = names.iter().map(|n| colour(n)).collect();
    assert!(
        distinct.len() >= 4,
        "eight programs in {} colours",
        distinct.len()
    );
}

#[test]
fn hovering_a_bar_names_its_owner() {
    let mut t = tenure(8000, false, 4242, T0, Some(T0 + 52.0 * MINUTE_MS));
    t.user = Some("dev".into());
    t.cmdline = vec!["python3".into(), "-m".into(), "http.server".into()];
    assert_eq!(
        t.describe(T0, 0),
        "tcp 127.0.0.1:8000 — prog0 (pid 4242), user dev\npython3 -m http.server\n\
         2026-11-29 14:02:03 – 2026-11-29 14:54:03 (52 min)"
    );
}

// ---------------------------------------------------------------------------------------------
// recent changes, connections

#[test]
fn recent_changes_merge_history_and_live_newest_first() {
    let k = key(8000, false);
    let at = |s: f64| T0 + s * 1000.0;
    let opened = event(EventKind::Opened, &k, 4242, at(0.0));
    let closed = event(EventKind::Closed, &k, 4242, at(60.0));
    let reopened = event(EventKind::Opened, &k, 4243, at(65.0));
    // The history (newest first) already holds the closing the page also received live.
    let here = |events: &[&Event]| -> Vec<Change> {
        events.iter().map(|&e| Change::here(e.clone())).collect()
    };
    let history = here(&[&closed, &opened]);
    let live = here(&[&closed, &reopened]);
    assert_eq!(
        recent(&history, &live, 50),
        here(&[&reopened, &closed, &opened])
    );
    assert_eq!(recent(&history, &live, 2), here(&[&reopened, &closed]));
    assert_eq!(
        line(&opened, 0),
        "14:02 opened 127.0.0.1:8000 prog0 (pid 4242)"
    );
    assert!(matches(&opened, "8000 PROG0") && matches(&opened, "4242 opened"));
    assert!(!matches(&opened, "8000 closed") && !matches(&opened, "udp"));
    assert_eq!(
        (port_of(" 8000 "), port_of("8000 x"), port_of("py")),
        (Some(8000), None, None)
    );
    let mut passed = event(EventKind::OwnerChanged, &key(5353, true), 7, at(0.0));
    passed.proto = Proto::Udp;
    assert_eq!(
        line(&passed, 60),
        "15:02 passed on udp [::1]:5353 to prog1 (pid 7)"
    );
    let exited = event(EventKind::Exited, &k, 4242, at(60.0));
    assert_eq!(
        line(&exited, 0),
        "14:03 owner exited 127.0.0.1:8000 prog0 (pid 4242)"
    );
    assert!(matches(&exited, "exited 8000"));
}

#[test]
fn recent_changes_merge_the_hosts_histories_and_name_each_host() {
    let k = key(8000, false);
    let at = |s: f64| T0 + s * 1000.0;
    let mine = event(EventKind::Opened, &k, 4242, at(0.0));
    // The same event, field for field, on a peer: another change, not a duplicate.
    let theirs = Change {
        host: Some("build-box".into()),
        event: mine.clone(),
    };
    let later = Change {
        host: Some("build-box".into()),
        event: event(EventKind::Closed, &k, 4242, at(30.0)),
    };
    // Each host's history in turn, newest first within each: merged newest first.
    let history = vec![Change::here(mine.clone()), later.clone(), theirs.clone()];
    let merged = recent(&history, &[], 50);
    assert_eq!(merged[0], later);
    assert_eq!(merged.len(), 3, "{merged:?}");
    assert!(merged.contains(&theirs) && merged.contains(&Change::here(mine.clone())));
    // The line names the peer as its lanes do; this machine's names none.
    assert_eq!(
        theirs.line(0),
        "build-box · 14:02 opened 127.0.0.1:8000 prog0 (pid 4242)"
    );
    assert_eq!(
        Change::here(mine.clone()).line(0),
        "14:02 opened 127.0.0.1:8000 prog0 (pid 4242)"
    );
    // The filter finds a change by its host's name too, every word still needed.
    assert!(theirs.matches("build-box"));
    assert!(theirs.matches("build 8000"));
    assert!(!Change::here(mine).matches("build-box"));
    assert!(!theirs.matches("build-box 9000"));
}

#[test]
fn an_owners_exit_leaves_the_tenure_its_closing_ended() {
    let k = key(8000, false);
    let at = |s: f64| T0 + s * 1000.0;
    let events = [
        event(EventKind::Opened, &k, 4242, at(0.0)),
        event(EventKind::Closed, &k, 4242, at(60.0)),
        event(EventKind::Exited, &k, 4242, at(60.0)),
    ];
    let tenures = merge(Vec::new(), &events);
    assert_eq!(tenures.len(), 1, "{tenures:?}");
    assert_eq!(
        (tenures[0].start, tenures[0].end),
        (at(0.0), Some(at(60.0)))
    );
}

#[test]
fn the_connections_chart_fills_quiet_minutes_and_sums_up() {
    let now = time::parse("2026-11-29T14:30:30Z").unwrap();
    let minute = |t: &str, accepted, open, peers| ConnectionMinute {
        time: t.into(),
        accepted,
        open,
        peers,
    };
    let history = ConnectionHistory {
        port: 8000,
        minutes: vec![
            minute("2026-11-29T13:20:00Z", 99, 99, 9), // before the hour
            minute("2026-11-29T13:31:00Z", 3, 2, 1),   // the first slot
            minute("2026-11-29T14:02:00Z", 12, 6, 2),
            minute("2026-11-29T14:30:00Z", 0, 1, 1), // the current minute, the last slot
        ],
    };
    let chart = Chart::new(&history, now, 60);
    assert_eq!(chart.slots.len(), 60);
    assert_eq!(chart.first, time::parse("2026-11-29T13:31:00Z").unwrap());
    assert_eq!((chart.slots[0].accepted, chart.slots[0].open), (3, 2));
    assert_eq!((chart.slots[31].accepted, chart.slots[31].open), (12, 6));
    assert_eq!(chart.slots[59].open, 1);
    assert_eq!(
        chart
            .slots
            .iter()
            .filter(|s| **s == Default::default())
            .count(),
        57
    );
    assert_eq!(
        chart.summary(),
        "peak 6 open, 15 accepted in the last hour, from up to 2 addresses a minute"
    );
    assert_eq!(chart.top(), 12);
    let quiet = Chart::new(
        &ConnectionHistory {
            port: 1,
            minutes: vec![],
        },
        now,
        60,
    );
    assert_eq!(quiet.summary(), "no connections in the last hour");
}

fn health(up: bool, status: u16) -> portscope_shared::Health {
    portscope_shared::Health {
        up,
        status: Some(status),
        latency_ms: 3,
        detail: (!up).then(|| format!("HTTP {status}")),
    }
}

fn checked(k: &ListenerKey, pid: u32, at: f64, h: portscope_shared::Health) -> Event {
    Event {
        health: Some(h),
        ..event(EventKind::Health, k, pid, at)
    }
}

#[test]
fn health_news_lands_on_its_owners_tenure_once_and_goes_on_with_a_new_owner() {
    let k = key(8000, false);
    let at = |s: f64| T0 + s * 1000.0;
    // The span the history answered: up from 10 s, then 500 from 100 s.
    let mut answered = span(&Life {
        key: k.clone(),
        pid: 7,
        start: at(0.0),
        end: None,
    });
    answered.health = vec![
        portscope_shared::HealthMark {
            time: time::format_utc(at(10.0)),
            health: health(true, 200),
        },
        portscope_shared::HealthMark {
            time: time::format_utc(at(100.0)),
            health: health(false, 500),
        },
    ];
    let base = vec![Tenure::from_span(&answered).unwrap()];
    let events = [
        // Received live too: the span holds it already.
        checked(&k, 7, at(100.0), health(false, 500)),
        checked(&k, 7, at(200.0), health(true, 200)),
        // Another owner's news is not this tenure's.
        checked(&k, 99, at(250.0), health(false, 502)),
        event(EventKind::OwnerChanged, &k, 8, at(300.0)),
        checked(&k, 8, at(400.0), health(false, 503)),
    ];
    let tenures = merge(base, &events);
    let told = |t: &Tenure| -> Vec<(f64, bool, String)> {
        t.health
            .iter()
            .map(|p| ((p.at - T0) / 1000.0, p.up, p.words.clone()))
            .collect()
    };
    assert_eq!(tenures.len(), 2, "{tenures:?}");
    assert_eq!(
        told(&tenures[0]),
        [
            (10.0, true, "up (200, 3 ms)".to_owned()),
            (100.0, false, "answers 500".to_owned()),
            (200.0, true, "up (200, 3 ms)".to_owned()),
        ]
    );
    assert_eq!(tenures[0].end, Some(at(300.0)));
    assert_eq!(
        told(&tenures[1]),
        [
            (300.0, true, "up (200, 3 ms)".to_owned()),
            (400.0, false, "answers 503".to_owned()),
        ],
        "the listener's health goes on with its new owner from the change"
    );
    assert_eq!(
        tenures[1].health_summary(0).as_deref(),
        Some("health: up (200, 3 ms) at 14:07, answers 503 at 14:08")
    );
    assert_eq!(
        line(&events[4], 0),
        "14:08 health 127.0.0.1:8000 prog2 (pid 8): answers 503"
    );
}

#[test]
fn health_lines_run_from_each_answer_to_the_next_and_a_short_outage_is_seen() {
    let k = key(8000, false);
    let min = |m: f64| T0 + m * MINUTE_MS;
    let mut t = tenure(8000, false, 7, min(5.0), Some(min(50.0)));
    let point = |m: f64, up: bool| HealthPoint {
        at: min(m),
        up,
        words: String::new(),
    };
    // Checked from 10 min: up, down 20–30 min, up, down for one second at 40 min, up.
    t.health = vec![
        point(10.0, true),
        point(20.0, false),
        point(30.0, true),
        point(40.0, false),
        HealthPoint {
            at: min(40.0) + 1000.0,
            up: true,
            words: String::new(),
        },
    ];
    // Before the window: a tenure whose checks are all cut off.
    let mut early = tenure(8000, false, 6, min(-20.0), Some(min(-10.0)));
    early.health = vec![point(-15.0, false)];
    let lane = Lane {
        proto: k.proto,
        port: 8000,
        host: None,
        addrs: vec![k.addr],
        tenures: vec![0, 1],
    };
    // One pixel a minute, from x = 100.
    let scale = Scale {
        window: Window {
            start: min(0.0),
            end: min(60.0),
        },
        x0: 100.0,
        width: 60.0,
    };
    let tenures = [early, t];
    let stretches = health_stretches(&tenures, &lane, scale, min(60.0));
    let rounded: Vec<(f64, f64, bool)> = stretches
        .iter()
        .map(|&(a, b, up)| ((a * 100.0).round() / 100.0, (b * 100.0).round() / 100.0, up))
        .collect();
    assert_eq!(
        rounded,
        [
            (110.0, 120.0, true),
            (120.0, 130.0, false),
            (130.0, 150.0, true),
            (140.0, 143.0, false),
        ],
        "the up lines on each side of a one-second outage are within a pixel: merged (the \
         down line, drawn over it, three pixels wide)"
    );
    let paths = health_paths(&tenures, &lane, scale, min(60.0));
    assert_eq!(
        paths.down.as_deref(),
        Some("M120.0 22.5H130.0M140.0 22.5H143.0")
    );
    assert_eq!(
        paths.up.as_deref(),
        Some("M110.0 22.5H120.0M130.0 22.5H150.0")
    );
    // Down, then closed within the same (whole) second: the outage is drawn all the same.
    let mut last_words = tenure(8000, false, 7, min(5.0), Some(min(20.0)));
    last_words.health = vec![point(10.0, true), point(20.0, false)];
    assert_eq!(
        health_paths(&[last_words], &lane_of(&[0]), scale, min(60.0)),
        HealthPaths {
            up: Some("M110.0 22.5H120.0".into()),
            down: Some("M120.0 22.5H123.0".into()),
        }
    );
    let unchecked = tenure(8000, false, 7, min(5.0), None);
    assert_eq!(
        health_paths(&[unchecked], &lane_of(&[0]), scale, min(60.0)),
        HealthPaths::default()
    );
}

fn lane_of(tenures: &[usize]) -> Lane {
    Lane {
        proto: Proto::Tcp,
        port: 8000,
        host: None,
        addrs: vec![],
        tenures: tenures.to_vec(),
    }
}

#[test]
fn the_projects_term_picks_the_lanes_and_changes_of_its_project_exactly() {
    let at = |s: f64| T0 + s * 1000.0;
    let mut shop = tenure(8000, false, 7, at(0.0), None);
    shop.project = Some("shop-app".into());
    let other = tenure(9000, false, 8, at(0.0), None);
    let window = Window::last(HOUR_MS, at(60.0));
    let ports = |q: &str| -> Vec<u16> {
        lanes(&[shop.clone(), other.clone()], window, at(60.0), q)
            .iter()
            .flat_map(|g| g.lanes.iter().map(|l| l.port))
            .collect()
    };
    assert_eq!(ports("project:shop-app"), [8000]);
    assert_eq!(ports("project:shop"), Vec::<u16>::new(), "exactly");
    assert_eq!(ports("project:shop-app 9000"), Vec::<u16>::new());
    assert_eq!(ports(""), [8000, 9000]);
    let mut opened = event(EventKind::Opened, &key(8000, false), 7, at(0.0));
    opened.project = Some("shop-app".into());
    assert!(matches(&opened, "PROJECT:shop-app") && matches(&opened, "project:shop-app opened"));
    assert!(!matches(&opened, "project:shop"));
    let tenure = Tenure::from_span(&Span {
        project: Some("shop-app".into()),
        ..span(&Life {
            key: key(8000, false),
            pid: 7,
            start: at(0.0),
            end: None,
        })
    })
    .unwrap();
    assert_eq!(tenure.project.as_deref(), Some("shop-app"), "from the span");
}

#[test]
fn all_hosts_merged_give_each_host_its_own_lanes_named_after_it() {
    // The same port on this machine and on a peer: two lanes, the peer's named; this machine's
    // live events touch only its own tenure.
    let min = |m: f64| T0 + m * MINUTE_MS;
    let here = tenure(8000, false, 10, min(-30.0), None);
    let there = tenure(8000, false, 20, min(-20.0), None).on("box");
    let closing = event(EventKind::Closed, &key(8000, false), 10, min(-5.0));
    let merged = merge(vec![here, there], &[closing]);
    let ended: Vec<(Option<&str>, Option<f64>)> = merged
        .iter()
        .map(|t| (t.key.host.as_deref(), t.end))
        .collect();
    assert_eq!(ended, [(None, Some(min(-5.0))), (Some("box"), None)]);
    let window = Window::last(HOUR_MS, min(0.0));
    let labels: Vec<String> = lanes(&merged, window, min(0.0), "")
        .iter()
        .flat_map(|g| g.lanes.iter().map(Lane::label))
        .collect();
    assert_eq!(labels, ["tcp 8000", "box · tcp 8000"]);
    let only_box: Vec<String> = lanes(&merged, window, min(0.0), "box")
        .iter()
        .flat_map(|g| g.lanes.iter().map(Lane::label))
        .collect();
    assert_eq!(
        only_box,
        ["box · tcp 8000"],
        "the filter finds a host by name"
    );
}

/// A failed bind of `node` (pid 4300, in shop-web) on 0.0.0.0:3000, held by python3 (pid 99,
/// in shop-api, started at `started` s), seen `count` times.
fn bind_failure(count: u32, started: u64) -> Event {
    Event {
        kind: EventKind::BindFailed,
        process: Some("node".into()),
        pid: Some(4300),
        local_addr: "0.0.0.0".parse().unwrap(),
        local_port: 3000,
        project: Some("shop-web".into()),
        error: Some("EADDRINUSE (address already in use)".into()),
        count: Some(count),
        fix: Some("python3 (pid 99) holds port 3000: stop it".into()),
        holders: vec![portscope_shared::Holder {
            proto: portscope_shared::Proto::Tcp,
            local_addr: "127.0.0.1".parse().unwrap(),
            local_port: 3000,
            state: Some(portscope_shared::SocketState::Listen),
            pids: vec![99],
            process: Some("python3".into()),
            start_time: Some(started),
            project: Some("shop-api".into()),
        }],
        ..event(EventKind::BindFailed, &key(3000, false), 4300, 0.0)
    }
}

#[test]
fn a_failure_reads_as_who_failed_what_holds_it_since_when_and_where() {
    // 14:02 UTC on 2026-11-29, shown at UTC+1.
    let started = 1_795_000_920;
    let text = super::recent::failure_words(&bind_failure(1, started), 60);
    assert_eq!(
        text,
        format!(
            "node (pid 4300) could not bind 0.0.0.0:3000 (EADDRINUSE) — held: 127.0.0.1:3000 \
             python3 (pid 99), started {} in shop-api",
            time::clock(started as f64 * 1000.0, 60)
        )
    );
    let repeated = super::recent::failure_words(&bind_failure(7, started), 0);
    assert!(repeated.contains("(EADDRINUSE) ×7 — held"), "{repeated}");
    assert_eq!(
        super::recent::ask_of(&bind_failure(1, started)),
        Some(super::recent::Ask::Bind("3000".into()))
    );
    // The lane keeps failures only, newest first as given, at most n.
    let opened = Change::here(event(EventKind::Opened, &key(8000, false), 1, 0.0));
    let failed = Change::here(bind_failure(1, started));
    let lane = super::recent::failures(&[failed.clone(), opened, failed.clone()], 1);
    assert_eq!(lane, vec![failed]);
}

#[test]
fn a_refused_connect_asks_why_at_the_address_it_tried() {
    let mut e = bind_failure(1, 0);
    e.kind = EventKind::ConnectRefused;
    e.holders.clear();
    e.remote_addr = Some("::1".parse().unwrap());
    e.remote_port = Some(5173);
    assert_eq!(
        super::recent::ask_of(&e),
        Some(super::recent::Ask::Why("[::1]:5173".into()))
    );
    let text = super::recent::failure_words(&e, 0);
    assert!(
        text.ends_with("was refused at [::1]:5173 — nothing listens on that port"),
        "{text}"
    );
}
