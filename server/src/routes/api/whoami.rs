//! `GET /api/v1/whoami`: who the bearer token belongs to.

use axum::Router;
use axum::routing::get;
use tapgate_shared::api::Whoami;

use crate::auth::AuthUser;
use crate::extract::Json;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/whoami", get(whoami))
}

async fn whoami(AuthUser(auth, _): AuthUser) -> Json<Whoami> {
    Json(Whoami { username: auth.username, admin: auth.admin, scopes: auth.scopes })
}
