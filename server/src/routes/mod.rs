//! HTTP routes: the JSON API, the npm registry protocol and the HTML pages.

pub mod api;
pub mod health;
pub mod npm;
pub mod pages;
pub mod well_known;

use axum::Router;
use axum::http::{Method, Uri};

use crate::error::ApiError;
use crate::state::AppState;

/// Every route of the application.
pub fn routes(config: &crate::state::AppConfig) -> Router<AppState> {
    Router::new()
        .merge(health::routes())
        .nest("/api/v1", api::routes())
        .merge(npm::routes(config.max_tarball_bytes))
        .merge(pages::routes())
        .merge(well_known::routes())
        .merge(api::notifications::link_routes())
}

/// Unknown routes answer the envelope, not an empty 404.
pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {method} {}", uri.path()))
}

/// Known routes with the wrong method.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        tapgate_shared::ErrorCode::MethodNotAllowed,
        format!("{} does not accept {method}", uri.path()),
    )
}
