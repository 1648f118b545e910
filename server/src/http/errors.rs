//! Error answers: every one is `{"error": {"code", "message"}}` ([`ErrorBody`]) with the HTTP
//! status its code always has, so a code and its status cannot drift apart between routes.
//! `docs/protocol.md` lists them; a test keeps the list and [`status`] in step.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portscope_shared::{ApiErrorCode, ErrorBody};

/// The HTTP status of an error with this code; `None` for the codes only the WebSocket sends.
pub fn status(code: ApiErrorCode) -> Option<StatusCode> {
    use ApiErrorCode as C;
    Some(match code {
        C::MissingToken | C::WrongToken | C::MetricsOnly => StatusCode::UNAUTHORIZED,
        C::ForbiddenHost | C::ForbiddenOrigin | C::CrossSite | C::ReadOnly => StatusCode::FORBIDDEN,
        C::NoSuchProcess
        | C::NotASocketOwner
        | C::ProcessChanged
        | C::OtherUser
        | C::SystemProcess
        | C::ContainerPort
        | C::NotPermitted
        | C::Refused => StatusCode::FORBIDDEN,
        C::TooManyConnections | C::HistoryUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        C::TooManyFailures | C::Busy => StatusCode::TOO_MANY_REQUESTS,
        C::BadRequest => StatusCode::BAD_REQUEST,
        C::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        C::LinkUsed | C::NoHistory | C::UnknownHost => StatusCode::NOT_FOUND,
        C::PeerRefused | C::PeerUnreachable => StatusCode::BAD_GATEWAY,
        C::BadMessage | C::UnknownMessage | C::TooManyResyncs | C::TooLarge | C::Unknown => {
            return None;
        }
    })
}

/// The answer for an error: its code's status and the body every error has.
pub fn answer(code: ApiErrorCode, message: impl Into<String>) -> Response {
    let status = status(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(ErrorBody::new(code, message))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_codes_status_is_the_one_the_protocol_doc_gives() {
        let doc = include_str!("../../../docs/protocol.md");
        let section = doc
            .split("\n### Error codes\n")
            .nth(1)
            .expect("docs/protocol.md has a section `### Error codes`");
        let section = section.split("\n#").next().unwrap_or(section);
        let mut rows = 0;
        for line in section.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let code: ApiErrorCode =
                serde_json::from_str(&format!("\"{}\"", cells[1].trim_matches('`'))).unwrap();
            let documented = cells[2].parse::<u16>().ok();
            assert_eq!(
                status(code).map(|s| s.as_u16()),
                documented,
                "{code}: the doc says {}",
                cells[2]
            );
            rows += 1;
        }
        assert_eq!(rows, ApiErrorCode::ALL.len());
    }

    #[test]
    fn an_answer_is_the_body_with_its_codes_status() {
        let res = answer(ApiErrorCode::ProcessChanged, "m");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
}
