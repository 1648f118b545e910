//! macOS: sockets and their owning pids from libproc and process details from sysinfo (both
//! through `portable.rs`), the kernel's port settings from `sysctl`, signals through `kill(2)`,
//! the firewall from `pfctl` and the application firewall's state.
//!
//! # Platform-specific behavior
//!
//! libproc shows only the sockets of processes this user may inspect: without root, other
//! users' sockets are missing (not shown as "owner hidden"). There are no accept queues, and
//! macOS 10.14 and later let any user bind ports below 1024. A container's own listeners live
//! in Docker Desktop's virtual machine and cannot be read.

use std::collections::HashMap;

pub use super::portable::{System, hostname, is_running, local_addresses};
use crate::ports::{self, PortSettings};

/// The mount point of `path`'s file system: not read on macOS (a hung lookup marks its own
/// directory only).
pub fn mount_point_of(_path: &std::path::Path) -> Option<std::path::PathBuf> {
    None
}

/// Nothing to do: the one-arena setting is glibc's malloc's.
pub fn use_one_malloc_arena() {}

/// The sysctl names read for [`port_settings`].
const PORT_SYSCTLS: &[&str] = &[
    "net.inet.ip.portrange.first",
    "net.inet.ip.portrange.last",
    "net.inet6.ip6.v6only",
];

/// The kernel's port settings from `sysctl` (the ephemeral range and the `IPV6_V6ONLY`
/// default); defaults where unreadable.
pub fn port_settings() -> PortSettings {
    let text = std::process::Command::new("sysctl")
        .args(PORT_SYSCTLS)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    ports::macos_port_settings(&text)
}

/// macOS 10.14 and later let any user bind ports below 1024.
pub fn can_bind_privileged() -> bool {
    true
}

/// Containers run in Docker Desktop's virtual machine, whose sockets this agent cannot read.
pub fn listening_ports_in(pid: u32) -> Result<Vec<u16>, super::InsideError> {
    Err(super::InsideError::InAVirtualMachine {
        pid,
        system: "macOS",
    })
}

/// This process's effective uid, for the collector.
/// The first uid of a person's account: macOS gives people 501 on, and its system accounts
/// (`_www`, `_postgres`, …) stay below 500.
pub fn first_user_uid() -> u32 {
    500
}

/// The uid of the user named `name` (for `DOAS_USER`): not looked up on macOS, where doas is
/// rare and users live in Directory Services; `sudo` sets `SUDO_UID`.
pub fn uid_of_user(_name: &str) -> Option<u32> {
    None
}

pub fn effective_uid() -> Option<u32> {
    Some(super::unix::euid())
}

/// A process's group, for `kill --tree`.
pub fn process_group(pid: u32) -> Option<u32> {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
    let group = rustix::process::getpgid(Some(pid)).ok()?;
    u32::try_from(group.as_raw_nonzero().get()).ok()
}

/// libproc gives no accept queues.
pub fn accept_queues() -> HashMap<u64, u32> {
    HashMap::new()
}

/// Every process in a process group.
pub fn group_members(pgrp: u32) -> Vec<u32> {
    let mut system = sysinfo::System::new();
    system.refresh_processes_specifics(
        sysinfo::ProcessesToUpdate::All,
        true,
        sysinfo::ProcessRefreshKind::nothing(),
    );
    system
        .processes()
        .keys()
        .map(|pid| pid.as_u32())
        .filter(|&pid| process_group(pid) == Some(pgrp))
        .collect()
}
