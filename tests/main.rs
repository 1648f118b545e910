//! portscope's integration and browser tests: one test binary, a module per area.
//!
//! Every test starts the real `portscope` binary on a free port and talks to it over real
//! sockets; sockets to observe are opened by a separate process (`support/holder.py`).

mod browser;
mod developer;
mod doctor;
mod fleet;
mod guards;
mod history;
mod kernel;
mod limits;
mod live;
mod mcp;
mod servers;
mod share;
mod shell;
mod support;
mod truth;
