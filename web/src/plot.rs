//! What the plotted views (the Map, the Port space, the Timeline) share in the browser.

use std::time::Duration;

use leptos::html;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

/// The plot's width, measured when the view shows and whenever the plot is resized.
pub fn watch_width(plot_ref: NodeRef<html::Div>, active: Signal<bool>) -> RwSignal<f64> {
    let width = RwSignal::new(1200.0);
    let measure = move || {
        if let Some(el) = plot_ref.get_untracked() {
            let w = f64::from(el.client_width());
            if w > 0.0 && w != width.get_untracked() {
                width.set(w);
            }
        }
    };
    Effect::new(move |_| {
        if active.get() {
            set_timeout(measure, Duration::ZERO);
        }
    });
    on_resize(plot_ref, measure);
    width
}

/// Calls `measure` whenever the plot's size changes: with the window, and with the panels beside
/// it (the detail opening). The ResizeObserver lives as long as the page.
pub fn on_resize(plot_ref: NodeRef<html::Div>, measure: impl Fn() + Copy + 'static) {
    Effect::new(move |_| {
        let Some(el) = plot_ref.get() else { return };
        let on_resize = Closure::<dyn FnMut()>::new(measure);
        if let Ok(observer) = web_sys::ResizeObserver::new(on_resize.as_ref().unchecked_ref()) {
            observer.observe(&el);
        }
        on_resize.forget();
    });
}
