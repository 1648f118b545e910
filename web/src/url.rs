//! The page URL in the browser: the access token it arrives with, and the view (tab, host,
//! filter, toggle, sort) it keeps so that a view can be bookmarked or shared. What a query says
//! and how a view is written is [`crate::address`]'s, tested on the host.

use crate::address::{self, Address, Tab};
use crate::table::View;

/// Where the token is kept for this tab: sessionStorage is scoped to this exact origin
/// (scheme, host and port), unlike cookies, and lives as long as the tab.
const TOKEN_KEY: &str = "portscope_token";

/// What the address bar's query says.
fn read() -> Address {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .map(|search| address::parse(&search))
        .unwrap_or_default()
}

/// The access token: taken from `?token=` (then kept in the tab's sessionStorage, and dropped
/// from the address bar by the next [`write_view`]), else from sessionStorage.
pub fn take_token() -> Option<String> {
    let storage = web_sys::window()?.session_storage().ok().flatten();
    match read().token {
        Some(token) => {
            if let Some(storage) = &storage {
                let _ = storage.set_item(TOKEN_KEY, &token);
            }
            Some(token)
        }
        None => storage?.get_item(TOKEN_KEY).ok().flatten(),
    }
}

/// The tab the URL asks for; `None` when it names none (the page then opens on Projects when
/// any project has a listener, else on the socket table).
pub fn read_tab() -> Option<Tab> {
    read().tab
}

/// The view the URL asks for; defaults for what it does not say.
pub fn read_view() -> View {
    read().view
}

/// Replaces the URL's query with the tab (once the page chose one) and the view (no history
/// entry per keystroke). Anything else in the query, the token included, goes.
pub fn write_view(tab: Option<Tab>, view: &View) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let query = address::query(tab, view);
    let url = if query.is_empty() {
        window.location().pathname().unwrap_or_else(|_| "/".into())
    } else {
        format!("?{query}")
    };
    if let Ok(history) = window.history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
}
