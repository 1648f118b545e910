// Loads the dashboard's WebAssembly. A separate file, not an inline script, so that the
// Content-Security-Policy can forbid inline scripts.
import init from "/portscope_web.js";

init({ module_or_path: "/portscope_web_bg.wasm" }).catch((err) => {
  document.body.textContent =
    "portscope's dashboard could not start: " + err + ". Try a current Chromium, Firefox or Safari.";
});
