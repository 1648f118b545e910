//! `portscope-core`: this machine's sockets and processes as a live model.
//!
//! It owns the platform seam ([`os`]: the only code that calls netstat2, procfs, sysinfo and
//! the like), the [`collector`] that turns one read of the OS into a [`model::State`], the
//! incremental [`owners`] map, the names of [`ports`], [`projects`] and [`containers`], the
//! [`events`] derived from each change and the [`live`] model that publishes them, the
//! connection [`graph`] and the agent's [`metrics`] handle.
//!
//! It must not depend on the doctor, the history, the server or the command line (no other
//! crate of ours but `portscope-shared`, the protocol): the layers above read the model, and
//! what they add to each scan comes in through [`collector::Annotate`].

pub mod collector;
pub mod containers;
pub mod events;
pub mod graph;
pub mod live;
pub mod metrics;
pub mod model;
pub mod os;
pub mod owners;
pub mod ports;
pub mod private;
pub mod projects;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod text;
