//! The one OS seam: every call into netstat2, procfs, sysinfo or other platform APIs lives
//! below here.
//!
//! Each platform file exports the same items: `System` (the collector's [`Platform`] for this
//! OS), `hostname()`, the kernel's port settings, accept queues, the firewall's rules, process
//! signalling for `kill`, and how private files are made and checked.
//!
//! # Platform-specific behavior
//!
//! Linux (`linux.rs`) reads the kernel directly. Windows (`windows.rs`) and macOS (`macos.rs`)
//! share `portable.rs`, whose `System` takes sockets with their pids from netstat2 and process
//! details from sysinfo. Linux and macOS share `unix.rs` (file modes and owners, and signals). What a
//! platform cannot tell is said as "could not check" with the reason; README.md lists each
//! system's limits.
//!
pub mod kernel;
mod netstat;
mod platform;

pub use platform::{
    FdError, InsideError, Platform, ProcessStat, RawProcess, RawSocket, ReadError, SocketList,
};

#[cfg(target_os = "linux")]
mod diag;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::{
    System, accept_queues, can_bind_privileged, first_user_uid, group_members, hostname,
    is_running, listening_ports_in, local_addresses, mount_point_of, port_settings, uid_of_user,
    use_one_malloc_arena,
};

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::{
    SIGNAL_NAMES, SignalTarget, app_data_dir, euid, hosts_file, is_ours, is_root, make_private,
    new_private_file, open_no_follow, open_to_others, open_without_links, own_home,
    private_dir_builder, private_file_to_lock, private_temp_dir, send_signal, signal_by_name,
    writable_by_others,
};

#[cfg(any(windows, target_os = "macos"))]
mod portable;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::{
    SIGNAL_NAMES, SignalTarget, System, accept_queues, app_data_dir, can_bind_privileged,
    effective_uid, first_user_uid, group_members, hostname, hosts_file, is_ours, is_root,
    is_running, listening_ports_in, local_addresses, make_private, mount_point_of,
    new_private_file, open_no_follow, open_to_others, open_without_links, own_home, port_settings,
    private_dir_builder, private_file_to_lock, private_temp_dir, process_group, send_signal,
    signal_by_name, uid_of_user, use_one_malloc_arena, writable_by_others,
};

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
pub use macos::{
    System, accept_queues, can_bind_privileged, effective_uid, first_user_uid, group_members,
    hostname, is_running, listening_ports_in, local_addresses, mount_point_of, port_settings,
    process_group, uid_of_user, use_one_malloc_arena,
};

#[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
compile_error!(
    "portscope's collector is implemented for Linux, Windows and macOS; \
     see ARCHITECTURE.md (OS seam) for how to add a platform"
);
