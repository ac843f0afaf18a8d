//! Liveness and readiness.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use tapgate_shared::api::Health;

use crate::error::ApiResult;
use crate::extract::Json;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

/// The process is up.
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// The process can reach its database.
async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    state.store.ping().await?;
    Ok(Json(Health { status: "ready".into() }))
}
