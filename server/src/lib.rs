//! tapgate-server: an npm-compatible registry whose publishes are gated by a tap on a FIDO2
//! security key.
//!
//! [`router`] builds the whole application for a given [`AppState`]; [`serve`] runs it on a
//! listener until a shutdown future resolves. Tests use both on port 0 with a fresh database.
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod bounds;
pub mod ceremonies;
pub mod changes;
pub mod cidr;
pub mod cli;
pub mod client_info;
pub mod clock;
pub mod config;
pub mod connections;
pub mod error;
pub mod extract;
pub mod failpoints;
pub mod gate;
pub mod limits;
pub mod lockout;
pub mod metrics;
pub mod names;
pub mod notify;
pub mod npm_errors;
pub mod observe;
pub mod oidc;
pub mod policy;
pub mod publish;
pub mod routes;
pub mod secrets;
pub mod signing;
pub mod state;
pub mod store;
pub mod throttle;
pub mod upstream;
pub mod webauthn;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request, Response};
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

pub use state::{AppConfig, AppState};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The application: every route, with request ids, tracing, body and time limits, the guard on
/// presented second factors, and envelope errors.
pub fn router(state: AppState) -> Router {
    let max_json_bytes = state.config.max_json_bytes;
    let limits = &state.config.connections;
    routes::routes(&state.config)
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_json_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), throttle::otp_attempts))
        .layer(axum::middleware::from_fn(npm_errors::for_npm))
        .layer(axum::middleware::from_fn(observe::observe))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe::trusted_proxy))
        .layer(axum::middleware::from_fn(refuse_control_characters))
        .layer(axum::middleware::from_fn(bounds::uri_length))
        .layer(RequestBodyTimeoutLayer::new(limits.body_idle_timeout))
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            error::ApiError::internal("a request handler panicked").into_response()
        }))
        .layer(axum::middleware::from_fn_with_state(limits.request_timeout, bounds::request_timeout))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let request_id =
                        request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    // The matched route template, never the path: ids, secrets and names in paths
                    // do not reach the log.
                    let route = request
                        .extensions()
                        .get::<axum::extract::MatchedPath>()
                        .map_or("(no route)", axum::extract::MatchedPath::as_str);
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        route = %route,
                        request_id = %request_id,
                    )
                })
                .on_response(|response: &Response<_>, latency: Duration, _span: &Span| {
                    tracing::info!(
                        status = response.status().as_u16(),
                        latency_ms = latency.as_millis() as u64,
                        "response"
                    );
                }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// Refuses paths that carry control characters (`%00`, `%0a`, …): no name or id has them, and
/// some databases refuse them as text.
async fn refuse_control_characters(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if has_encoded_control(request.uri().path()) {
        return error::ApiError::bad_request(
            tapgate_shared::ErrorCode::BadRequest,
            "the URL path holds control characters: no package, user or id has them",
        )
        .into_response();
    }
    next.run(request).await
}

fn has_encoded_control(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        b.is_ascii_control()
            || (b == b'%'
                && bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .is_some_and(|v| v < 0x20 || v == 0x7f))
    })
}

/// Serves the application on `listener` until `shutdown` resolves, then finishes the requests
/// in flight. Connections are bounded by the state's [`connections::ConnectionLimits`]; each
/// request carries its peer address (`ConnectInfo<SocketAddr>`) for the rate limits.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.config.connections.clone();
    connections::run(listener, router(state), &limits, shutdown).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn encoded_control_characters_are_found() {
        assert!(super::has_encoded_control("/a%00b"));
        assert!(super::has_encoded_control("/a%0Ab"));
        assert!(super::has_encoded_control("/a%7fb"));
        assert!(!super::has_encoded_control("/@scope%2fname"));
        assert!(!super::has_encoded_control("/left-pad/-/left-pad-1.0.0.tgz"));
    }
}
