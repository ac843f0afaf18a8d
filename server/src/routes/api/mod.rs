//! The JSON API under `/api/v1`.

pub mod approvals;
pub mod audit;
pub mod ci;
pub mod keys;
pub mod lock;
pub mod notifications;
pub mod packages;
pub mod public_keys;
pub mod registrations;
pub mod sessions;
pub mod tokens;
pub mod versions;
pub mod whoami;

use axum::Router;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(approvals::routes())
        .merge(audit::routes())
        .merge(ci::routes())
        .merge(keys::routes())
        .merge(lock::routes())
        .merge(notifications::routes())
        .merge(packages::routes())
        .merge(public_keys::routes())
        .merge(registrations::routes())
        .merge(sessions::routes())
        .merge(tokens::routes())
        .merge(versions::routes())
        .merge(whoami::routes())
}
