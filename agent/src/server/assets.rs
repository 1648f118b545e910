//! The dashboard's files, embedded in the binary at build time (see `agent/build.rs`) and
//! served from memory only.

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! web_file {
    ($path:literal, $type:literal) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/static", $path)),
        }
    };
}

macro_rules! built_file {
    ($path:literal, $type:literal) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!(env!("OUT_DIR"), "/web", $path)),
        }
    };
}

/// Every file the dashboard needs; anything else is a 404.
pub static ASSETS: &[Asset] = &[
    web_file!("/index.html", "text/html; charset=utf-8"),
    web_file!("/style.css", "text/css; charset=utf-8"),
    web_file!("/boot.js", "text/javascript; charset=utf-8"),
    web_file!("/favicon.svg", "image/svg+xml"),
    built_file!("/portscope_web.js", "text/javascript; charset=utf-8"),
    built_file!("/portscope_web_bg.wasm", "application/wasm"),
];

/// The embedded file at `path` (`/` is `/index.html`).
pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}
