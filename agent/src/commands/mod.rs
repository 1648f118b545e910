//! The command line's subcommands: each turns its clap arguments (`crate::cli`) into calls to
//! the layers below and prints what they answer, as text or JSON, with its exit status. Clap
//! stops here: the doctor, history, peers and core take plain option types.

pub mod complete;
pub mod graph;
pub mod history;
pub mod kill;
pub mod ls;
pub mod man;
pub mod peer;
pub mod wait;
pub mod watch;
pub mod who;
pub mod why;
