//! The one OS seam: every call into netstat2, procfs or other platform APIs lives below here.
//!
//! Each platform file exports the same items: `System` (the collector's [`Platform`] for this OS),
//! `hostname()`, the kernel's port settings, accept queues, and process signalling for `kill`.
//!
//! # Platform-specific behavior
//!
//! Only Linux is implemented so far; on other systems the build stops with a message.
//!
//! [`Platform`]: crate::collector::Platform

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::{
    SignalTarget, System, accept_queues, can_bind_privileged, euid, group_members, hostname,
    is_root, is_running, listening_ports_in, local_addresses, port_settings, send_signal,
    signal_by_name, use_one_malloc_arena,
};

#[cfg(not(target_os = "linux"))]
compile_error!(
    "portscope's collector is implemented for Linux only so far; \
     see ARCHITECTURE.md (OS seam) for how to add a platform"
);
