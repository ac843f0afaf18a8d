//! The JSON API under `/api/v1`.

pub mod tokens;
pub mod whoami;

use axum::Router;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().merge(tokens::routes()).merge(whoami::routes())
}
