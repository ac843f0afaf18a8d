//! The HTML pages: enrollment, sign-in (also for `npm login`), key management, approvals, the
//! approvals and staged releases waiting on a maintainer's packages, and a package's audit log.
//! Plain HTML with a little JavaScript served from `/static/`, no build step. A strict Content-Security-Policy
//! allows only this origin's scripts, and `Referrer-Policy: no-referrer` keeps invite tokens in
//! URLs from leaking to other sites.

use crate::extract::Path;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ApiError;
use crate::state::AppState;

const ENROLL: &str = include_str!("assets/enroll.html");
const LOGIN: &str = include_str!("assets/login.html");
const KEYS: &str = include_str!("assets/keys.html");
const APPROVE: &str = include_str!("assets/approve.html");
const PENDING: &str = include_str!("assets/pending.html");
const ADMIN: &str = include_str!("assets/admin.html");
const STAGE: &str = include_str!("assets/stage.html");
const AUDIT: &str = include_str!("assets/audit.html");

/// Static files: name → (content type, body).
const STATIC: &[(&str, &str, &str)] = &[
    ("tapgate.js", "text/javascript; charset=utf-8", include_str!("assets/tapgate.js")),
    ("enroll.js", "text/javascript; charset=utf-8", include_str!("assets/enroll.js")),
    ("login.js", "text/javascript; charset=utf-8", include_str!("assets/login.js")),
    ("keys.js", "text/javascript; charset=utf-8", include_str!("assets/keys.js")),
    ("approve.js", "text/javascript; charset=utf-8", include_str!("assets/approve.js")),
    ("diff.js", "text/javascript; charset=utf-8", include_str!("assets/diff.js")),
    ("stage.js", "text/javascript; charset=utf-8", include_str!("assets/stage.js")),
    ("pending.js", "text/javascript; charset=utf-8", include_str!("assets/pending.js")),
    ("admin.js", "text/javascript; charset=utf-8", include_str!("assets/admin.js")),
    ("audit.js", "text/javascript; charset=utf-8", include_str!("assets/audit.js")),
    ("style.css", "text/css; charset=utf-8", include_str!("assets/style.css")),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { html(LOGIN) }))
        .route("/enroll", get(|| async { html(ENROLL) }))
        .route("/login", get(|| async { html(LOGIN) }))
        .route("/login/{id}", get(|| async { html(LOGIN) }))
        .route("/keys", get(|| async { html(KEYS) }))
        .route("/approve/{id}", get(|| async { html(APPROVE) }))
        .route("/pending", get(|| async { html(PENDING) }))
        .route("/stage/{id}", get(|| async { html(STAGE) }))
        .route("/admin", get(|| async { html(ADMIN) }))
        // `/audit/left-pad`, `/audit/@acme/tools`: the page reads the name from its address.
        .route("/audit/{*name}", get(|| async { html(AUDIT) }))
        .route("/static/{file}", get(asset))
}

const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
];

/// An HTML page with the security headers.
pub fn html(body: &'static str) -> Response {
    let mut resp =
        (StatusCode::OK, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for (name, value) in SECURITY_HEADERS {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    resp
}

async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let (_, content_type, body) = STATIC
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| ApiError::not_found(format!("no static file {file:?}")))?;
    let mut resp = (StatusCode::OK, [(header::CONTENT_TYPE, *content_type)], *body).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp.headers_mut()
        .insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
    Ok(resp)
}
