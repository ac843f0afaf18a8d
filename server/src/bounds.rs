//! Bounds on one request: how long it may take, how long its URL may be, how much text it may
//! ask the registry to store.
//!
//! Time: a client has the header timeout to send its headers (see [`crate::connections`]), may
//! pause at most the body idle timeout while its body streams in, and the whole request must be
//! done within the request timeout. The last is long by default (20 minutes) because the largest
//! publish is a 50 MiB tarball, sent base64-encoded, from someone's home connection; the idle
//! timeout is what drops a client that stops sending.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tapgate_shared::ErrorCode;

use crate::error::ApiError;

/// The longest URL (path and query) served: every name in this registry fits many times over.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Token names (also of sign-in tokens).
pub const MAX_TOKEN_NAME_CHARS: usize = 100;
/// Usernames anyone can type at the sign-in page (names themselves are 64 characters at most).
pub const MAX_USERNAME_CHARS: usize = 64;
/// Ids of npm web logins (`npl_…`).
pub const MAX_LOGIN_ID_CHARS: usize = 128;
/// What a tap sends back that is kept as the approval's record: a browser's clientDataJSON is
/// a few hundred bytes, authenticator data a few dozen, a signature at most 512 (RSA-4096).
pub const MAX_CLIENT_DATA_BYTES: usize = 4 * 1024;
pub const MAX_AUTHENTICATOR_DATA_BYTES: usize = 4 * 1024;
pub const MAX_SIGNATURE_BYTES: usize = 1024;
/// An enrolled key's attestation (its certificate chain included).
pub const MAX_ATTESTATION_BYTES: usize = 64 * 1024;

/// Ends a request that takes longer than `limit` with `408`.
pub async fn request_timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_seconds = limit.as_secs(), "request timed out");
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                ErrorCode::RequestTimeout,
                format!(
                    "the request took longer than the {} seconds this registry allows: send it again, from a faster connection if it was a large upload",
                    limit.as_secs()
                ),
            )
            .with_header(header::CONNECTION, HeaderValue::from_static("close"))
            .into_response()
        }
    }
}

/// Refuses URLs longer than [`MAX_URI_BYTES`] with `414`, before any route sees them.
pub async fn uri_length(request: Request, next: Next) -> Response {
    let length = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if length > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            ErrorCode::BadRequest,
            format!(
                "the URL is {length} bytes long; this registry serves URLs of at most {MAX_URI_BYTES} bytes"
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// Checks free text a client asks the registry to keep: trimmed, 1 to `max_chars` characters,
/// no control characters. `what` names it in the refusal ("the token name").
pub fn text<'a>(what: &str, value: &'a str, max_chars: usize) -> Result<&'a str, ApiError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max_chars || value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            ErrorCode::BadRequest,
            format!("{what} must be 1 to {max_chars} printable characters"),
        ));
    }
    Ok(value)
}

/// Checks that `value` is at most `max` bytes; `what` names it in the refusal.
pub fn bytes(what: &str, value: &[u8], max: usize) -> Result<(), ApiError> {
    if value.len() > max {
        return Err(ApiError::bad_request(
            ErrorCode::BadRequest,
            format!("{what} is {} bytes long; at most {max} bytes are accepted", value.len()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_bounded_and_printable() {
        assert_eq!(text("the name", "  ci  ", 10).ok(), Some("ci"));
        assert!(text("the name", "", 10).is_err());
        assert!(text("the name", "   ", 10).is_err());
        assert!(text("the name", &"x".repeat(11), 10).is_err());
        assert!(text("the name", "é".repeat(10).as_str(), 10).is_ok(), "characters, not bytes");
        assert!(text("the name", "a\nb", 10).is_err());
    }
}
