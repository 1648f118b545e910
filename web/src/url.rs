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

/// The dashboard's views, switched by the tabs in the header (`?tab=projects`, `map`,
/// `ports`, …), in the order of the tabs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Projects,
    Sockets,
    Timeline,
    Map,
    Ports,
}

impl Tab {
    pub const ALL: [Tab; 5] = [
        Tab::Projects,
        Tab::Sockets,
        Tab::Timeline,
        Tab::Map,
        Tab::Ports,
    ];

    /// Its name in the URL (`?tab=`), and the stem of its tab's and panel's element ids.
    pub fn key(self) -> &'static str {
        match self {
            Tab::Projects => "projects",
            Tab::Sockets => "sockets",
            Tab::Timeline => "timeline",
            Tab::Map => "map",
            Tab::Ports => "ports",
        }
    }

    /// Its tab's text.
    pub fn label(self) -> &'static str {
        match self {
            Tab::Projects => "Projects",
            Tab::Sockets => "Sockets",
            Tab::Timeline => "Timeline",
            Tab::Map => "Map",
            Tab::Ports => "Port space",
        }
    }

    fn from_key(key: &str) -> Option<Tab> {
        Tab::ALL.into_iter().find(|t| t.key() == key)
    }
}

/// The tab the URL asks for; `None` when it names none (the page then opens on Projects when
/// any project has a listener, else on the socket table).
pub fn read_tab() -> Option<Tab> {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|search| UrlSearchParams::new_with_str(&search).ok())
        .and_then(|params| params.get("tab"))
        .and_then(|t| Tab::from_key(&t))
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

/// Replaces the URL's query with the tab (once the page chose one) and the view (no history
/// entry per keystroke). Anything else in the query, the token included, goes.
pub fn write_view(tab: Option<Tab>, view: &View) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let Ok(params) = UrlSearchParams::new() else {
        return;
    };
    let default = View::default();
    if let Some(tab) = tab {
        params.append("tab", tab.key());
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
