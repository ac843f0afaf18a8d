//! Errors as npm's own client reads them.
//!
//! Every tapgate error is `{"error": {"code", "message"}}`. npm prints only `body.error`, and an
//! object there as `[object Object]`; it also prints every `npm-notice` header of a response it
//! did not cache, GETs of its update check and first-publish probes included. For requests from
//! npm (they carry `npm-command`), this layer therefore sends the sentence as the string `error`
//! (with `code` and `message` beside it), and drops the notice where npm already prints the
//! sentence. Other clients (yarn, pnpm, tapgate) keep the envelope and the notice of refused
//! writes, which is how yarn shows why.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderName, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

const NOTICE: HeaderName = HeaderName::from_static("npm-notice");
/// Error bodies are small (an approval of a deprecation across many versions is the largest).
const MAX_ERROR_BODY: usize = 1024 * 1024;

pub async fn for_npm(request: Request, next: Next) -> Response {
    let from_npm = request.headers().contains_key("npm-command");
    let is_get = request.method() == Method::GET || request.method() == Method::HEAD;
    let response = next.run(request).await;
    if !response.status().is_client_error() && !response.status().is_server_error() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let otp = parts
        .headers
        .get(header::WWW_AUTHENTICATE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"otp"));
    // Reads that fail (a first publish's probe, npm's update check) are not news to the user.
    if is_get || (from_npm && !otp) {
        parts.headers.remove(NOTICE);
    }
    if !from_npm {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let rewritten = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(mut obj)) => match obj.get("error").cloned() {
            Some(Value::Object(inner)) => {
                let message = inner.get("message").cloned().unwrap_or(Value::Null);
                obj.insert("error".into(), message.clone());
                obj.insert("code".into(), inner.get("code").cloned().unwrap_or(Value::Null));
                obj.insert("message".into(), message);
                serde_json::to_vec(&Value::Object(obj)).ok()
            }
            _ => None,
        },
        _ => None,
    };
    match rewritten {
        Some(body) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(body))
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}
