//! npm's done URL for an approval: `202` + `Retry-After` + `{}` until the taps are in, then
//! `200 {"token": <ticket>}`; npm repeats its request with `npm-otp: <ticket>`. npm polls with
//! the method of the command that needed the approval (`PUT` for `dist-tag add`, `DELETE` for
//! `dist-tag rm`, `GET` otherwise), so every method answers the same.

use crate::extract::Path;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tapgate_shared::ErrorCode;

use super::login::pending;
use crate::error::{ApiError, ApiResult};
use crate::secrets::{self, SecretKind};
use crate::state::AppState;
use crate::store::approvals::DonePoll;

pub fn routes() -> Router<AppState> {
    Router::new().route("/-/v1/done/approvals/{secret}", get(done).put(done).post(done).delete(done))
}

async fn done(State(state): State<AppState>, Path(secret): Path<String>) -> ApiResult<Response> {
    let ticket = secrets::generate(SecretKind::Ticket);
    match state.store.poll_approval_done(&secrets::hash(&secret), &ticket.hash, state.now()).await? {
        DonePoll::Pending => Ok(pending()),
        DonePoll::Ready => {
            Ok((StatusCode::OK, axum::Json(json!({ "token": ticket.plaintext }))).into_response())
        }
        DonePoll::Gone => Err(ApiError::new(
            StatusCode::GONE,
            ErrorCode::ApprovalExpired,
            "this approval is unknown, expired or already used: run the command again",
        )),
    }
}
