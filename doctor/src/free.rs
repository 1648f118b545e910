//! `portscope free`: ports a server can use without trouble.

use std::collections::HashSet;

use portscope_shared::Proto;

use super::bind::{Way, try_bind};
use portscope_core::model::State;
use portscope_core::ports::{IANA_DYNAMIC, PortSettings, Services, is_well_known};

/// Where `free` looks when not told: above the usual dev-tool ports.
pub const DEFAULT_NEAR: u16 = 8100;

/// Up to `count` free ports, nearest to `near` first: not privileged, outside the machine's
/// ephemeral range and IANA's dynamic range, not a registered service's or a common dev tool's,
/// used by no socket, and bindable on TCP `0.0.0.0` and `[::]`.
pub fn find(
    near: u16,
    count: usize,
    state: &State,
    settings: &PortSettings,
    services: &Services,
) -> Vec<u16> {
    let used: HashSet<u16> = state.sockets.values().map(|s| s.local_port).collect();
    let low = settings.unprivileged_start.max(1024);
    let high = IANA_DYNAMIC.first - 1;
    let acceptable = |port: u16| {
        (low..=high).contains(&port)
            && !settings.ephemeral.is_some_and(|r| r.contains(port))
            && !is_well_known(port, services)
            && !used.contains(&port)
            && bindable(port)
    };
    let mut found = Vec::new();
    // near, near+1, near-1, near+2, … within 1..=65535.
    for distance in 0..=u32::from(u16::MAX) {
        if found.len() >= count {
            break;
        }
        let up = u32::from(near) + distance;
        let down = u32::from(near)
            .checked_sub(distance)
            .filter(|_| distance > 0);
        if up > u32::from(u16::MAX) && down.is_none_or(|d| d < u32::from(low)) {
            break;
        }
        for candidate in [Some(up), down].into_iter().flatten() {
            if let Ok(port) = u16::try_from(candidate)
                && found.len() < count
                && acceptable(port)
            {
                found.push(port);
            }
        }
    }
    found
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
}
