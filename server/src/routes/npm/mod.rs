//! npm's registry protocol: the endpoints the real `npm` client calls.

pub mod approvals_done;
pub mod dist_tags;
pub mod documents;
pub mod login;
pub mod misc;
pub mod owners;
pub mod packages;
mod proxy;
pub mod publish;
pub mod stage;
pub mod tokens;
pub mod trust;

use axum::Router;

use crate::state::AppState;

pub fn routes(max_tarball_bytes: usize) -> Router<AppState> {
    Router::new()
        .merge(login::routes())
        .merge(misc::routes())
        .merge(approvals_done::routes())
        .merge(dist_tags::routes())
        .merge(documents::routes())
        .merge(tokens::routes())
        .merge(stage::routes(max_tarball_bytes))
        .merge(trust::routes())
        .merge(packages::routes(max_tarball_bytes))
}
