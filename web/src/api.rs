//! Requests to the agent's REST routes (the port doctor, `kill`, the hosts), with the access
//! token; `on_host` points one at a hub's peer.

use std::cell::RefCell;

use portscope_shared::ApiErrorCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestInit, Response};

thread_local! {
    static TOKEN: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Remembers the token for every request of this page.
pub fn set_token(token: Option<String>) {
    TOKEN.with(|t| *t.borrow_mut() = token);
}

/// A request that failed: the agent's error code when it answered one (the dashboard matches
/// on it, never on the text), and what to tell the user.
#[derive(Clone, Debug)]
pub struct Failure {
    pub code: Option<ApiErrorCode>,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Self {
        message.to_owned().into()
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self {
            code: None,
            message,
        }
    }
}

/// `GET path` and decode its JSON; on failure, the agent's code with its message.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, Failure> {
    send(path, "GET", None).await
}

/// `POST path` with a JSON body; on failure, the agent's code with its message.
pub async fn post<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, Failure> {
    let body = serde_json::to_string(body).map_err(|e| e.to_string())?;
    send(path, "POST", Some(body)).await
}

async fn send<T: DeserializeOwned>(
    path: &str,
    method: &str,
    body: Option<String>,
) -> Result<T, Failure> {
    let init = RequestInit::new();
    init.set_method(method);
    if let Some(body) = &body {
        init.set_body(&JsValue::from_str(body));
    }
    let request = Request::new_with_str_and_init(path, &init).map_err(js_error)?;
    let headers = request.headers();
    if let Some(token) = TOKEN.with(|t| t.borrow().clone()) {
        headers
            .set("Authorization", &format!("Bearer {token}"))
            .map_err(js_error)?;
    }
    if body.is_some() {
        headers
            .set("Content-Type", "application/json")
            .map_err(js_error)?;
    }
    let window = web_sys::window().ok_or("no window")?;
    let response: Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|_| "the agent is not reachable".to_owned())?
        .dyn_into()
        .map_err(js_error)?;
    let text = JsFuture::from(response.text().map_err(js_error)?)
        .await
        .map_err(js_error)?
        .as_string()
        .unwrap_or_default();
    if !response.ok() {
        // The agent's errors are {"error": {"code", "message"}} (`ErrorBody`).
        return Err(
            match serde_json::from_str::<portscope_shared::ErrorBody>(&text) {
                Ok(body) => Failure {
                    code: Some(body.error.code),
                    message: body.error.message,
                },
                Err(_) => format!("the agent answered {}", response.status()).into(),
            },
        );
    }
    Ok(
        serde_json::from_str(&text)
            .map_err(|e| format!("unexpected answer from the agent: {e}"))?,
    )
}

fn js_error(e: JsValue) -> String {
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// `path` about `host`: with `host=NAME` added for a hub's peer (the hub sends the request on
/// to it), as it is for this agent (`None`).
pub fn on_host(path: &str, host: Option<&str>) -> String {
    match host {
        None => path.to_owned(),
        Some(host) => {
            let sep = if path.contains('?') { '&' } else { '?' };
            format!(
                "{path}{sep}host={}",
                String::from(js_sys::encode_uri_component(host))
            )
        }
    }
}

/// Copies text to the clipboard (the page is a secure context on localhost).
pub fn copy(text: &str) {
    if let Some(window) = web_sys::window() {
        let _ = window.navigator().clipboard().write_text(text);
    }
}
