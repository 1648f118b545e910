//! `portscope free`: ports a server can use without trouble.

use std::collections::{HashMap, HashSet};

use portscope_shared::Proto;

use super::bind::{Way, try_bind};
use portscope_core::model::State;
use portscope_core::ports::{IANA_DYNAMIC, PortSettings, Services, is_well_known};

/// Where `free` looks when not told: above the usual dev-tool ports.
pub const DEFAULT_NEAR: u16 = 8100;

/// What makes a port free for a server: not privileged, outside the machine's ephemeral range
/// and IANA's dynamic range, not a registered service's or a common dev tool's, used by no
/// socket, and bindable on TCP `0.0.0.0` and `[::]` (the one check that asks the kernel, made
/// once per port).
struct Free<'a> {
    used: HashSet<u16>,
    low: u16,
    settings: &'a PortSettings,
    services: &'a Services,
    bindable: &'a dyn Fn(u16) -> bool,
    known: HashMap<u16, bool>,
}

impl<'a> Free<'a> {
    fn new(
        state: &State,
        settings: &'a PortSettings,
        services: &'a Services,
        bindable: &'a dyn Fn(u16) -> bool,
    ) -> Self {
        Self {
            used: state.sockets().map(|s| s.local_port).collect(),
            low: settings.unprivileged_start.max(1024),
            settings,
            services,
            bindable,
            known: HashMap::new(),
        }
    }

    fn accepts(&mut self, port: u16) -> bool {
        if let Some(&known) = self.known.get(&port) {
            return known;
        }
        let free = (self.low..IANA_DYNAMIC.first).contains(&port)
            && !self.settings.ephemeral.is_some_and(|r| r.contains(port))
            && !is_well_known(port, self.services)
            && !self.used.contains(&port)
            && (self.bindable)(port);
        self.known.insert(port, free);
        free
    }

    /// The ports of the searched range nearest to `near` first: near, near+1, near-1, near+2, …
    fn nearest(&self, near: u16) -> impl Iterator<Item = u16> + use<> {
        let low = u32::from(self.low);
        (0..=u32::from(u16::MAX))
            .map_while(move |distance| {
                let up = u32::from(near) + distance;
                let down = u32::from(near)
                    .checked_sub(distance)
                    .filter(|_| distance > 0);
                let done = up > u32::from(u16::MAX) && down.is_none_or(|d| d < low);
                (!done).then_some([Some(up), down])
            })
            .flatten()
            .flatten()
            .filter_map(|candidate| u16::try_from(candidate).ok())
    }
}

/// Up to `count` free ports (see [`Free`]), nearest to `near` first.
pub fn find(
    near: u16,
    count: usize,
    state: &State,
    settings: &PortSettings,
    services: &Services,
) -> Vec<u16> {
    let mut free = Free::new(state, settings, services, &bindable);
    // The order borrows nothing of `free` (`use<>`): walked lazily, up to the `count`th port.
    free.nearest(near)
        .filter(|&port| free.accepts(port))
        .take(count)
        .collect()
}

/// `count` consecutive free ports (a dev stack's web, API and debug ports): the block whose
/// first port is nearest to `near`, in order; empty when the searched range holds none.
pub fn find_block(
    near: u16,
    count: usize,
    state: &State,
    settings: &PortSettings,
    services: &Services,
) -> Vec<u16> {
    block_with(
        near,
        count,
        &mut Free::new(state, settings, services, &bindable),
    )
}

fn block_with(near: u16, count: usize, free: &mut Free<'_>) -> Vec<u16> {
    for first in free.nearest(near) {
        let Some(block) = (0..count)
            .map(|i| first.checked_add(u16::try_from(i).ok()?))
            .collect::<Option<Vec<u16>>>()
        else {
            continue;
        };
        if block.iter().all(|&port| free.accepts(port)) {
            return block;
        }
    }
    Vec::new()
}

fn bindable(port: u16) -> bool {
    [
        Way {
            proto: Proto::Tcp,
            addr: "0.0.0.0".parse().expect("literal"),
            v6only: None,
            reuse_addr: true,
        },
        Way {
            proto: Proto::Tcp,
            addr: "::".parse().expect("literal"),
            v6only: Some(true),
            reuse_addr: true,
        },
    ]
    .into_iter()
    .all(|way| !super::bind::failed(&try_bind(way, port)))
}

#[cfg(test)]
mod tests {
    use portscope_shared::PortRange;

    use super::*;

    #[test]
    fn free_ports_avoid_ranges_services_and_used_ports() {
        let settings = PortSettings {
            ephemeral: Some(PortRange {
                first: 8106,
                last: 60999,
            }),
            ..PortSettings::default()
        };
        let services = Services::parse("svc 8101/tcp\n");
        let mut used =
            portscope_core::testing::socket("used", portscope_shared::SocketState::Listen);
        used.local_port = 8102;
        let state = portscope_core::testing::state(&[used]);
        let ports = find(8101, 5, &state, &settings, &services);
        assert!(!ports.contains(&8101), "registered: {ports:?}");
        assert!(!ports.contains(&8102), "used: {ports:?}");
        assert!(
            ports.iter().all(|p| *p < 8106),
            "below the ephemeral range: {ports:?}"
        );
        assert!(
            ports
                .windows(2)
                .all(|w| w[0].abs_diff(8101) <= w[1].abs_diff(8101)),
            "nearest first: {ports:?}"
        );
        assert_eq!(ports.len(), 5);

        let near_top = find(65535, 2, &state, &PortSettings::default(), &services);
        assert_eq!(near_top.len(), 2);
        assert!(near_top.iter().all(|p| *p < 49152), "{near_top:?}");
    }

    /// A block is the nearest run of `count` ports that each pass, checked against a naive
    /// search over every start in order of distance.
    #[test]
    fn a_block_is_the_nearest_run_of_free_ports() {
        let settings = PortSettings::default();
        let services = Services::parse("svc 9003/tcp\n");
        let mut used =
            portscope_core::testing::socket("used", portscope_shared::SocketState::Listen);
        used.local_port = 9006;
        let state = portscope_core::testing::state(&[used]);
        // Ports the kernel would refuse (another user's socket, say): 8996 and 9010.
        let taken = |p: u16| p != 8996 && p != 9010;
        // The naive reading of each port: the same rules, one port at a time.
        let ok = |p: u16| {
            (1024..IANA_DYNAMIC.first).contains(&p)
                && !is_well_known(p, &services)
                && p != 9006
                && taken(p)
        };
        assert!(!ok(9003) && !ok(9006) && !ok(8996), "the test's own ports");
        for (near, count) in [(9000, 3), (9004, 2), (9005, 4), (9001, 1), (9000, 6)] {
            let mut free = Free::new(&state, &settings, &services, &taken);
            let block = block_with(near, count, &mut free);
            let naive = (0..2000u16)
                .flat_map(|d| [near + d, near - d])
                .find(|&first| (first..first + count as u16).all(ok))
                .map(|first| (first..first + count as u16).collect::<Vec<_>>())
                .unwrap();
            assert_eq!(block, naive, "near {near}, {count} ports");
            assert_eq!(block.len(), count);
            assert!(block.windows(2).all(|w| w[1] == w[0] + 1), "{block:?}");
        }
        // At the top of the range no block fits past IANA's dynamic range.
        let mut free = Free::new(&state, &settings, &services, &taken);
        let top = block_with(49151, 3, &mut free);
        assert_eq!(top, [49149, 49150, 49151]);
    }
}
