//! The dashboard's files, embedded in the binary at build time (see `agent/build.rs`) and
//! served from memory only.

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// The same, gzip-compressed at build time (the large built files only).
    pub gzip: Option<&'static [u8]>,
}

macro_rules! web_file {
    ($path:literal, $type:literal) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/static", $path)),
            gzip: None,
        }
    };
}

macro_rules! built_file {
    ($path:literal, $type:literal) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!(env!("OUT_DIR"), "/web", $path)),
            gzip: Some(include_bytes!(concat!(
                env!("OUT_DIR"),
                "/web",
                $path,
                ".gz"
            ))),
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

/// Whether an `Accept-Encoding` value accepts gzip: a `gzip` (or `*`) coding whose quality is not
/// zero (RFC 9110, section 12.5.3).
pub fn accepts_gzip(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|coding| {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or_default().trim();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_sent_only_where_accepted() {
        assert!(accepts_gzip("gzip, deflate, br, zstd"));
        assert!(accepts_gzip("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("br, deflate"));
        assert!(!accepts_gzip(""));
        assert!(!accepts_gzip("x-gzip-not"));
    }
}
