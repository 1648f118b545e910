//! Tests of the port space's model: the scale against hand-computed places, the merged marks
//! against a look at every pair of listeners, the free ranges against a port-by-port walk of
//! the safe ranges, the safe ranges around an ephemeral range at each possible place.

use std::collections::BTreeSet;

use portscope_shared::{Exposure, PortRange};
use proptest::prelude::*;

use super::*;

const STRIP: Scale = Scale {
    x0: 10.0,
    width: 1000.0,
};

fn listener(port: u16, exposure: Option<Exposure>, ephemeral: bool) -> Listener {
    Listener {
        key: format!("tcp 127.0.0.1:{port} - 1"),
        port,
        proto: "tcp",
        endpoint: format!("127.0.0.1:{port}"),
        exposure,
        owner: format!("python3 (pid {})", 4000 + u32::from(port % 100)),
        pids: vec![4000 + u32::from(port % 100)],
        what: String::new(),
        ephemeral,
        projects: Vec::new(),
    }
}

#[test]
fn the_scale_is_a_square_root_of_the_port() {
    assert_eq!(STRIP.x(0), 10.0);
    assert_eq!(STRIP.x(65536), 1010.0);
    // 16384 is a quarter of the ports and half the strip; 1024 is an eighth of it.
    assert_eq!(STRIP.x(16384), 510.0);
    assert_eq!(STRIP.x(1024), 135.0);
    // The first 10 000 ports, where developers' servers listen, get two fifths of the strip
    // (a linear one would give them 15 %).
    assert!((STRIP.x(10000) - STRIP.x0) / STRIP.width > 0.39);
    for port in [0u16, 1, 80, 1023, 1024, 8000, 32768, 49151, 65535] {
        let x = STRIP.x(u32::from(port));
        // The middle of a port's band reads back as that port.
        let next = STRIP.x(u32::from(port) + 1);
        assert_eq!(STRIP.port_at((x + next) / 2.0), port, "{port}");
    }
    assert_eq!(STRIP.port_at(-5.0), 0);
    assert_eq!(STRIP.port_at(5000.0), 65535);
    let (x, w) = STRIP.span(PRIVILEGED);
    assert_eq!((x, w), (10.0, 125.0));
}

#[test]
fn safe_ranges_leave_out_the_ephemeral_range_wherever_it_lies() {
    let r = |first, last| PortRange { first, last };
    assert_eq!(safe_ranges(None), vec![r(1024, 49151)]);
    // Linux's default.
    assert_eq!(safe_ranges(Some(r(32768, 60999))), vec![r(1024, 32767)]);
    // Windows' and IANA's: the dynamic range only.
    assert_eq!(safe_ranges(Some(r(49152, 65535))), vec![r(1024, 49151)]);
    // Inside the registered range: both sides.
    assert_eq!(
        safe_ranges(Some(r(10000, 20000))),
        vec![r(1024, 9999), r(20001, 49151)]
    );
    // Covering it all.
    assert_eq!(safe_ranges(Some(r(1024, 65535))), vec![]);
    assert_eq!(safe_ranges(Some(r(0, 2000))), vec![r(2001, 49151)]);
}

proptest! {
    /// Free ranges are exactly the unused ports of the safe ranges, as maximal runs.
    #[test]
    fn free_ranges_are_the_unused_safe_ports(
        used in prop::collection::btree_set(0u16..=65535, 0..40),
        near in prop::collection::btree_set(1000u16..1100, 0..40),
        eph in (1024u16..65535).prop_flat_map(|a| (Just(a), a..=65535)),
    ) {
        let used: BTreeSet<u16> = used.into_iter().chain(near).collect();
        let safe = safe_ranges(Some(PortRange { first: eph.0, last: eph.1 }));
        let free = free_ranges(&safe, &used);
        // Port by port: free iff safe and unused.
        let is_safe = |p: u16| safe.iter().any(|r| r.contains(p));
        let mut expected = Vec::new();
        for p in 0..=65535u16 {
            if is_safe(p) && !used.contains(&p) {
                expected.push(p);
            }
        }
        let got: Vec<u16> = free.iter().flat_map(|r| r.first..=r.last).collect();
        prop_assert_eq!(got, expected);
        // Maximal: two ranges never touch.
        for pair in free.windows(2) {
            prop_assert!(u32::from(pair[0].last) + 1 < u32::from(pair[1].first));
        }
        prop_assert!(free.iter().all(|r| r.first <= r.last));
    }

    /// Each listener is in exactly one mark; within a mark neighbouring ports are at most
    /// MERGE_PX apart, between marks more; a mark's exposure is its widest, its flag any.
    #[test]
    fn marks_merge_exactly_the_close_listeners(
        ports in prop::collection::vec((0u16..=65535, 0u8..4, any::<bool>()), 0..80),
        width in 200.0f64..2000.0,
    ) {
        let exposures = [None, Some(Exposure::Loopback), Some(Exposure::Interface), Some(Exposure::All)];
        let listeners: Vec<Listener> = ports
            .iter()
            .map(|&(p, e, eph)| listener(p, exposures[usize::from(e)], eph))
            .collect();
        let scale = Scale { x0: 0.0, width };
        let marks = marks(&listeners, scale);
        let mut seen: Vec<usize> = marks.iter().flat_map(|m| m.listeners.clone()).collect();
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..listeners.len()).collect::<Vec<_>>());
        let x = |p: u16| scale.x(u32::from(p));
        for m in &marks {
            let ports: Vec<u16> = m.listeners.iter().map(|&i| listeners[i].port).collect();
            prop_assert!(ports.windows(2).all(|w| w[0] <= w[1] && x(w[1]) - x(w[0]) <= MERGE_PX));
            prop_assert_eq!((m.first, m.last), (ports[0], *ports.last().unwrap()));
            let rank = |e: Option<Exposure>| exposures.iter().position(|x| *x == e).unwrap();
            let widest = m.listeners.iter().map(|&i| rank(listeners[i].exposure)).max().unwrap();
            prop_assert_eq!(rank(m.exposure), widest);
            prop_assert_eq!(m.ephemeral, m.listeners.iter().any(|&i| listeners[i].ephemeral));
            prop_assert!(m.width >= MARK_MIN_PX);
        }
        for pair in marks.windows(2) {
            prop_assert!(x(pair[1].first) - x(pair[0].last) > MERGE_PX);
        }
    }
}

#[test]
fn close_listeners_merge_and_far_ones_do_not() {
    let listeners = vec![
        listener(8080, Some(Exposure::All), false),
        listener(8000, Some(Exposure::Loopback), false),
        listener(8001, Some(Exposure::Loopback), false),
        listener(45000, Some(Exposure::Loopback), true),
        listener(22, Some(Exposure::All), false),
    ];
    let m = marks(&listeners, STRIP);
    let groups: Vec<(u16, u16, usize)> = m
        .iter()
        .map(|m| (m.first, m.last, m.listeners.len()))
        .collect();
    assert_eq!(
        groups,
        vec![(22, 22, 1), (8000, 8080, 3), (45000, 45000, 1)]
    );
    assert_eq!(m[1].exposure, Some(Exposure::All));
    assert!(m[2].ephemeral && !m[1].ephemeral);
}

#[test]
fn a_listener_says_who_owns_it_and_why_its_port_is_a_problem() {
    let l = listener(45000, Some(Exposure::Loopback), true);
    assert_eq!(
        l.describe(),
        "127.0.0.1:45000 tcp python3 (pid 4000) · loopback only · ⚠ inside the ephemeral range"
    );
    assert!(l.matches("45000") && l.matches("4000") && l.matches("PYTHON loopback"));
    // A number matches a port or pid exactly, not as a prefix.
    assert!(!l.matches("450") && !l.matches("python3 22"));
    // The Projects view's term names an owner's project exactly.
    let shop = Listener {
        projects: vec!["Shop App".into()],
        ..l.clone()
    };
    assert!(shop.matches("project:shop_app") && shop.matches("PROJECT:SHOP_APP 45000"));
    assert!(!shop.matches("project:shop") && !l.matches("project:shop_app"));
}

#[test]
fn the_largest_free_ranges_come_first() {
    let r = |first, last| PortRange { first, last };
    let used: BTreeSet<u16> = [3000, 5432, 8000, 8080].into_iter().collect();
    let free = free_ranges(&safe_ranges(Some(r(32768, 60999))), &used);
    assert_eq!(
        free,
        vec![
            r(1024, 2999),
            r(3001, 5431),
            r(5433, 7999),
            r(8001, 8079),
            r(8081, 32767)
        ]
    );
    assert_eq!(largest(&free, 2), vec![r(8081, 32767), r(5433, 7999)]);
    // The 79 ports between 8000 and 8080 are under two pixels wide on a 1 000 px strip: not
    // drawn there; on a 3 000 px strip they are.
    let drawn = |width: f64| -> Vec<u16> {
        free_bands(&free, Scale { x0: 0.0, width })
            .iter()
            .map(|(r, _, _)| r.first)
            .collect()
    };
    assert_eq!(drawn(1000.0), vec![1024, 3001, 5433, 8081]);
    assert_eq!(drawn(3000.0), vec![1024, 3001, 5433, 8001, 8081]);
}

#[test]
fn ticks_keep_their_distance_and_the_ranges_ends() {
    let eph = Some(PortRange {
        first: 32768,
        last: 60999,
    });
    let t = ticks(STRIP, eph, 40.0);
    let ports: Vec<u32> = t.iter().map(|(_, p)| *p).collect();
    for must in [0, 1024, 32768, 49152, 65535] {
        assert!(ports.contains(&must), "{ports:?}");
    }
    assert!(t.windows(2).all(|w| w[1].0 - w[0].0 >= 40.0), "{t:?}");
    // Narrow: fewer ticks, still apart.
    let narrow = ticks(
        Scale {
            x0: 0.0,
            width: 300.0,
        },
        eph,
        40.0,
    );
    assert!(narrow.len() < t.len());
    assert!(narrow.windows(2).all(|w| w[1].0 - w[0].0 >= 40.0));
}

#[test]
fn counts_say_their_nouns() {
    assert_eq!(count(1, "process"), "1 process");
    assert_eq!(count(2, "process"), "2 processes");
    assert_eq!(count(0, "remote address"), "0 remote addresses");
    assert_eq!(count(3, "listener"), "3 listeners");
}
