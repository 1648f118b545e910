//! The page URL: the access token it arrives with, and the view (tab, host, filter, toggle,
//! sort) it keeps so that a view can be bookmarked or shared.

use web_sys::UrlSearchParams;

/// Where the token is kept for this tab: sessionStorage is scoped to this exact origin
/// (scheme, host and port), unlike cookies, and lives as long as the tab.
const TOKEN_KEY: &str = "portscope_token";

/// The access token: taken from `?token=` (then kept in the tab's sessionStorage, and dropped
/// from the address bar by the next [`write_view`]), else from sessionStorage.
pub fn take_token() -> Option<String> {
    let window = web_sys::window()?;
    let storage = window.session_storage().ok().flatten();
    let from_url = window
        .location()
        .search()
        .ok()
        .and_then(|search| UrlSearchParams::new_with_str(&search).ok())
        .and_then(|params| params.get("token"))
        .filter(|t| !t.is_empty());
    match from_url {
        Some(token) => {
            if let Some(storage) = &storage {
                let _ = storage.set_item(TOKEN_KEY, &token);
            }
            Some(token)
        }
        None => storage?.get_item(TOKEN_KEY).ok().flatten(),
    }
}

use crate::table::{Column, View};

/// The dashboard's views, switched by the tabs in the header (`?tab=timeline`, `map`, `ports`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Sockets,
    Timeline,
    Map,
    Ports,
}

impl Tab {
    /// The tabs in the header's order.
    pub const ALL: [Tab; 4] = [Tab::Sockets, Tab::Timeline, Tab::Map, Tab::Ports];

    /// Its `?tab=` value (none for the socket table, the default).
    pub fn key(self) -> Option<&'static str> {
        match self {
            Tab::Sockets => None,
            Tab::Timeline => Some("timeline"),
            Tab::Map => Some("map"),
            Tab::Ports => Some("ports"),
        }
    }

    /// The tab `step` places after this one in the header, wrapping around.
    pub fn step(self, step: isize) -> Tab {
        let at = Tab::ALL.iter().position(|t| *t == self).unwrap_or(0) as isize;
        let n = Tab::ALL.len() as isize;
        Tab::ALL[(at + step).rem_euclid(n) as usize]
    }
}

/// The tab the URL asks for; the socket table when it names none.
pub fn read_tab() -> Tab {
    let asked = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|search| UrlSearchParams::new_with_str(&search).ok())
        .and_then(|params| params.get("tab"));
    Tab::ALL
        .into_iter()
        .find(|t| t.key().is_some() && t.key() == asked.as_deref())
        .unwrap_or(Tab::Sockets)
}

/// The view the URL asks for; defaults for what it does not say.
pub fn read_view() -> View {
    let mut view = View::default();
    let Some(search) = web_sys::window().and_then(|w| w.location().search().ok()) else {
        return view;
    };
    let Ok(params) = UrlSearchParams::new_with_str(&search) else {
        return view;
    };
    view.host = params.get("host").filter(|h| !h.is_empty());
    if let Some(q) = params.get("q") {
        view.query = q;
    }
    view.listening_only = params.get("listening").is_some_and(|v| v == "1");
    if let Some(column) = params.get("sort").as_deref().and_then(Column::from_key) {
        view.sort = column;
    }
    view.descending = params.get("desc").is_some_and(|v| v == "1");
    view
}

/// Replaces the URL's query with the tab and the view (no history entry per keystroke).
/// Anything else in the query, the token included, goes.
pub fn write_view(tab: Tab, view: &View) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let Ok(params) = UrlSearchParams::new() else {
        return;
    };
    let default = View::default();
    if let Some(key) = tab.key() {
        params.append("tab", key);
    }
    if let Some(host) = &view.host {
        params.append("host", host);
    }
    if !view.query.is_empty() {
        params.append("q", &view.query);
    }
    if view.listening_only {
        params.append("listening", "1");
    }
    if view.sort != default.sort {
        params.append("sort", view.sort.key());
    }
    if view.descending {
        params.append("desc", "1");
    }
    let query = String::from(params.to_string());
    let url = if query.is_empty() {
        window.location().pathname().unwrap_or_else(|_| "/".into())
    } else {
        format!("?{query}")
    };
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
}
