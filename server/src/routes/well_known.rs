//! `GET /.well-known/tapgate-keys`: the registry's signing keys (current and retired, with the
//! periods they signed in), for verifiers to pin once and check deploy keys with offline.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use tapgate_shared::ci::ServerKeys;

use crate::error::ApiResult;
use crate::extract::Json;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/.well-known/tapgate-keys", get(keys))
}

async fn keys(State(state): State<AppState>) -> ApiResult<Json<ServerKeys>> {
    Ok(Json(crate::signing::published(&state.store, state.now()).await?))
}
