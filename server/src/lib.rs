//! `portscope-server`: the agent as a service — its HTTP API and WebSocket ([`http`], the only
//! code that knows HTTP and WebSocket framing), the guards and limits in front of them, the
//! hub's links to other agents ([`peers`], pinned [`tls`]), the health checks ([`health`]) and
//! the refresher that keeps the live model current ([`refresh`]).
//!
//! It builds on the core, the doctor and the history; it must not depend on the command line
//! (clap stays in the binary, which starts the server with plain options).

pub mod health;
pub mod http;
pub mod peers;
pub mod refresh;
pub mod tls;
