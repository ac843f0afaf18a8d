//! `GET /-/whoami`, `GET /-/ping`, and npm's audit endpoint.

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tapgate_shared::ErrorCode;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/-/whoami", get(whoami))
        .route("/-/ping", get(ping))
        .route("/-/metrics", get(metrics))
        .route("/-/npm/v1/security/advisories/bulk", post(audit))
        .route("/-/npm/v1/security/audits/quick", post(audit))
}

async fn whoami(AuthUser(auth, _): AuthUser) -> Json<Value> {
    Json(json!({ "username": auth.username }))
}

/// Prometheus' text format.
async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<axum::response::Response, ApiError> {
    let (pool_size, pool_idle, pool_max) = state.store.pool_stats();
    let gauges = crate::metrics::Gauges {
        approvals_pending: state.store.count_pending_approvals(state.now()).await?,
        pool_size,
        pool_idle,
        pool_max,
    };
    Ok((
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        crate::metrics::render(gauges),
    )
        .into_response())
}

async fn ping() -> Json<Value> {
    Json(json!({}))
}

/// This registry keeps no advisory database. `npm install` ignores a failed audit quietly;
/// `npm audit` says the endpoint failed, with this sentence, instead of claiming "0 vulnerabilities".
async fn audit() -> ApiError {
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        ErrorCode::NotFound,
        "this registry keeps no security advisory database: run npm audit against a registry that does (--registry)",
    )
}
