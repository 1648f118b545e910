//! The view (filter, toggle, sort) in the page URL, so a view can be bookmarked or shared.

use web_sys::UrlSearchParams;

use crate::table::{Column, View};

/// The view the URL asks for; defaults for what it does not say.
pub fn read_view() -> View {
    let mut view = View::default();
    let Some(search) = web_sys::window().and_then(|w| w.location().search().ok()) else {
        return view;
    };
    let Ok(params) = UrlSearchParams::new_with_str(&search) else {
        return view;
    };
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

/// Replaces the URL's query with the view (no history entry per keystroke).
pub fn write_view(view: &View) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let Ok(params) = UrlSearchParams::new() else {
        return;
    };
    let default = View::default();
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
