//! npm's web login: `POST /-/v1/login` → `{loginUrl, doneUrl}`; npm opens `loginUrl` (a page
//! that signs in with a key tap) and polls `doneUrl`, which answers `202` + `Retry-After` until
//! the tap and then `200 {"token"}` exactly once. The done URL carries a secret only npm knows,
//! so seeing the login page's URL is not enough to collect the token.

use crate::extract::Path;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tapgate_shared::ErrorCode;

use crate::error::{ApiError, ApiResult};
use crate::extract::ClientIp;
use crate::limits::{Attempt, Rule, Subject};
use crate::routes::api::sessions::issue_login_token;
use crate::secrets::{self, SecretKind};
use crate::state::AppState;
use crate::store::npm_logins::LoginPoll;
use crate::store::tokens::TokenSource;
use crate::throttle;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/-/v1/login", post(start))
        .route("/-/v1/login/done/{secret}", get(done))
        .route("/-/user/{*rest}", axum::routing::put(legacy_login).get(super::owners::user_doc))
}

/// Polling interval suggested to npm, seconds.
pub const RETRY_AFTER_SECONDS: &str = "1";

async fn start(State(state): State<AppState>, ClientIp(ip): ClientIp) -> ApiResult<Response> {
    throttle::limit(&state, &[Attempt::new(Rule::NpmLogin, Subject::Address(ip))]).await?.keep();
    let id = secrets::capability_id("npl_");
    let done = secrets::generate(SecretKind::Session);
    state.store.create_npm_login(&id, &done.hash, state.now()).await?;
    let body = json!({
        "loginUrl": state.config.url(&format!("/login/{id}")),
        "doneUrl": state.config.url(&format!("/-/v1/login/done/{}", done.plaintext)),
    });
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

async fn done(State(state): State<AppState>, Path(secret): Path<String>) -> ApiResult<Response> {
    match state.store.poll_npm_login(&secrets::hash(&secret), state.now()).await? {
        LoginPoll::Pending => Ok(pending()),
        LoginPoll::Approved { user_id } => {
            let (username, token) =
                issue_login_token(&state, &user_id, "npm login", TokenSource::NpmLogin).await?;
            tracing::info!(user = %username, "npm web login collected");
            Ok((StatusCode::OK, axum::Json(json!({ "token": token, "username": username }))).into_response())
        }
        LoginPoll::Gone => Err(ApiError::new(
            StatusCode::GONE,
            ErrorCode::CeremonyExpired,
            "this login is unknown, expired or already completed: run `npm login` again",
        )),
    }
}

/// `202 Accepted`, `Retry-After`, `{}`: npm keeps polling.
pub fn pending() -> Response {
    let mut resp = (StatusCode::ACCEPTED, axum::Json(json!({}))).into_response();
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
    resp
}

/// npm's legacy username/password login is not offered: keys replace passwords.
async fn legacy_login() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
        "this registry signs in with security keys, not passwords: run `npm login --auth-type=web`",
    )
}
