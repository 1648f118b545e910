//! The portscope dashboard: Leptos (client-side rendering) compiled to WebAssembly, served by
//! the agent. It talks to the agent only through `portscope_shared` messages.

mod api;
mod app;
mod conn;
mod doctor;
mod table;
mod url;

use wasm_bindgen::prelude::wasm_bindgen;

/// Entry point, called by `boot.js` once the module is loaded.
#[wasm_bindgen(start)]
pub fn start() {
    leptos::mount::mount_to_body(app::App);
}
