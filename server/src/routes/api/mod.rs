//! The JSON API under `/api/v1`.

pub mod keys;
pub mod registrations;
pub mod sessions;
pub mod tokens;
pub mod whoami;

use axum::Router;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(keys::routes())
        .merge(registrations::routes())
        .merge(sessions::routes())
        .merge(tokens::routes())
        .merge(whoami::routes())
}
