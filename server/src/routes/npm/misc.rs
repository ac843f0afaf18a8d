//! `GET /-/whoami`, `GET /-/ping`.

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

use crate::auth::AuthUser;
use crate::extract::Json;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/-/whoami", get(whoami)).route("/-/ping", get(ping))
}

async fn whoami(AuthUser(auth): AuthUser) -> Json<Value> {
    Json(json!({ "username": auth.username }))
}

async fn ping() -> Json<Value> {
    Json(json!({}))
}
