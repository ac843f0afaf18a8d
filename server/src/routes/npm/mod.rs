//! npm's registry protocol: the endpoints the real `npm` client calls.

pub mod login;
pub mod misc;

use axum::Router;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().merge(login::routes()).merge(misc::routes())
}
