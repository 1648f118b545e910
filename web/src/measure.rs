//! wasm32 only: keeping a view's measurements of its plot up to date. A hidden panel measures
//! nothing, so a view measures again when it shows, and whenever its plot's box changes size
//! (the window, or the panels beside it).

use std::time::Duration;

use leptos::html;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

/// Runs `measure` once the view is shown (`active`), and on every size change of `plot`
/// (a ResizeObserver that lives as long as the page).
pub fn on_show_and_resize(
    plot: NodeRef<html::Div>,
    active: Signal<bool>,
    measure: impl Fn() + Copy + 'static,
) {
    Effect::new(move |_| {
        if active.get() {
            set_timeout(measure, Duration::ZERO);
        }
    });
    Effect::new(move |_| {
        let Some(el) = plot.get() else { return };
        let on_resize = Closure::<dyn FnMut()>::new(measure);
        if let Ok(observer) = web_sys::ResizeObserver::new(on_resize.as_ref().unchecked_ref()) {
            observer.observe(&el);
        }
        on_resize.forget();
    });
}

/// The width of a view's plot, in CSS pixels (`initial` until it is first measured).
pub fn plot_width(active: Signal<bool>, initial: f64) -> (NodeRef<html::Div>, RwSignal<f64>) {
    let plot = NodeRef::<html::Div>::new();
    let width = RwSignal::new(initial);
    on_show_and_resize(plot, active, move || {
        if let Some(el) = plot.get_untracked() {
            let w = f64::from(el.client_width());
            if w > 0.0 && w != width.get_untracked() {
                width.set(w);
            }
        }
    });
    (plot, width)
}
