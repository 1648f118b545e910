//! The portscope dashboard: Leptos (client-side rendering) compiled to WebAssembly, served by
//! the agent. It talks to the agent only through `portscope_shared` messages.
//!
//! Only [`table`], [`projects`], [`timeline`], [`map`], [`portspace`], [`peers`], [`stopping`],
//! [`address`] (the page's query) and [`link`] (a link's states and backoff), the client-side
//! models, and [`windowing`], the rows in view that the table and the timeline render, are pure
//! Rust: they also compile for the host, where their tests run (`cargo test --workspace`).
//! Everything that touches the browser (their `view` modules included) is wasm32-only.

pub mod address;
#[cfg(target_arch = "wasm32")]
mod api;
#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod conn;
#[cfg(target_arch = "wasm32")]
mod detail;
#[cfg(target_arch = "wasm32")]
mod doctor;
#[cfg(target_arch = "wasm32")]
mod fleet;
#[cfg(target_arch = "wasm32")]
mod header;
pub mod link;
pub mod map;
#[cfg(target_arch = "wasm32")]
mod nav;
pub mod peers;
#[cfg(target_arch = "wasm32")]
mod plot;
pub mod portspace;
pub mod projects;
#[cfg(target_arch = "wasm32")]
mod sockets;
pub mod stopping;
pub mod table;
pub mod timeline;
#[cfg(target_arch = "wasm32")]
mod url;
pub mod windowing;

/// Entry point, called by `boot.js` once the module is loaded.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    leptos::mount::mount_to_body(app::App);
}
