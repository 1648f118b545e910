//! `--open`'s one-time link: the browser is handed a file (readable only by us) that redirects
//! to `/open/<nonce>`; the first request for that nonce gets the dashboard URL with the token
//! (a 303) and deletes the file, so the token lies on disk only until the browser has read it,
//! and a copy of the file opens nothing afterwards.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AppState;

/// The link handed to the browser, until it is used or expires.
#[derive(Clone, Debug, Default)]
pub struct OpenLink {
    ticket: Arc<Mutex<Option<Ticket>>>,
}

#[derive(Debug)]
struct Ticket {
    nonce: String,
    token: String,
    file: PathBuf,
    /// A private directory made for the file (when `$XDG_RUNTIME_DIR` is not set).
    dir: Option<PathBuf>,
}

impl Ticket {
    fn delete(&self) {
        let _ = std::fs::remove_file(&self.file);
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

impl OpenLink {
    /// Remembers the one link that may be redeemed, and the file that carries it.
    pub fn issue(&self, nonce: String, token: String, file: PathBuf, dir: Option<PathBuf>) {
        let old = self
            .ticket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(Ticket {
                nonce,
                token,
                file,
                dir,
            });
        if let Some(old) = old {
            old.delete();
        }
    }

    /// The token, once, for the right nonce (compared in constant time); the file is deleted.
    pub fn redeem(&self, nonce: &str) -> Option<String> {
        let mut slot = self.ticket.lock().unwrap_or_else(PoisonError::into_inner);
        let matches = slot
            .as_ref()
            .is_some_and(|t| bool::from(t.nonce.as_bytes().ct_eq(nonce.as_bytes())));
        if !matches {
            return None;
        }
        let ticket = slot.take()?;
        ticket.delete();
        Some(ticket.token)
    }

    /// Forgets an unused link and deletes its file (the browser never came).
    pub fn expire(&self) {
        if let Some(ticket) = self
            .ticket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            ticket.delete();
        }
    }
}

/// `GET /open/{nonce}`: the dashboard with its token, once.
pub async fn redeem(State(app): State<AppState>, Path(nonce): Path<String>) -> Response {
    match app.open.redeem(&nonce) {
        Some(token) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, format!("/?token={token}")),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
        )
            .into_response(),
        None => super::errors::answer(
            portscope_shared::ApiErrorCode::LinkUsed,
            "this link was used already or has expired; open the URL portscope printed when it started",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_opens_once_and_deletes_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("open.html");
        std::fs::write(&file, "x").unwrap();
        let link = OpenLink::default();
        link.issue("n0nce".into(), "tok".into(), file.clone(), None);
        assert_eq!(link.redeem("wrong"), None);
        assert!(file.exists(), "a wrong nonce deletes nothing");
        assert_eq!(link.redeem("n0nce").as_deref(), Some("tok"));
        assert!(!file.exists());
        assert_eq!(link.redeem("n0nce"), None, "once only");

        std::fs::write(&file, "x").unwrap();
        link.issue("again".into(), "tok".into(), file.clone(), None);
        link.expire();
        assert!(!file.exists());
        assert_eq!(link.redeem("again"), None);
    }
}
