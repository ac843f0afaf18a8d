//! Trusted publishing over npm's protocol: `npm trust github|gitlab|circleci|list|revoke`
//! (`POST|GET /-/package/<name>/trust`, `DELETE /-/package/<name>/trust/<id>`; tapgate's CLI uses
//! the same routes for any issuer the operator trusts), and the exchange npm's publish makes in
//! CI: `POST /-/npm/v1/oidc/token/exchange/package/<name>` with the ID token as bearer.
//!
//! Creating a trust is gated: without a ticket npm is told, its own way (`401`,
//! `WWW-Authenticate: OTP`, `authUrl`/`doneUrl`), to have the creator tap, and repeats the
//! request with the ticket.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use tapgate_shared::ErrorCode;
use tapgate_shared::api::Scope;
use tapgate_shared::oidc::{ExchangedToken, IssuerInfo, TrustConfig};

use crate::auth::{AuthUser, bearer_in, otp};
use crate::changes::trust;
use crate::client_info::ClientInfo;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::gate::GateError;
use crate::oidc::OidcFailure;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/-/package/{name}/trust", get(list).post(create))
        .route("/-/package/{name}/trust/{id}", delete(remove))
        .route("/-/npm/v1/oidc/token/exchange/package/{name}", post(exchange))
        .route("/-/npm/v1/oidc/issuers", get(issuers))
}

async fn wire(state: &AppState, rows: &[crate::store::oidc::TrustRow]) -> ApiResult<Vec<TrustConfig>> {
    let mut out = Vec::new();
    for row in rows {
        let by = state.store.user_by_id(&row.created_by).await?.map(|u| u.name);
        out.push(trust::to_wire(row, by));
    }
    Ok(out)
}

async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(configs): Json<Vec<TrustConfig>>,
) -> ApiResult<Response> {
    user.require(Scope::Publish)?;
    let [config] = configs.as_slice() else {
        return Err(ApiError::bad_request(
            ErrorCode::BadRequest,
            "send one trust configuration at a time (a JSON array of one): each needs its own tap",
        ));
    };
    let actor = user.actor(&state).await?;
    let created = trust::create(&state, &actor, &name, config, otp(&headers)).await?;
    Ok((StatusCode::CREATED, Json(wire(&state, &[created]).await?)).into_response())
}

async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<TrustConfig>>> {
    let actor = user.actor(&state).await?;
    let rows = trust::list(&state, &actor, &name).await?;
    Ok(Json(wire(&state, &rows).await?))
}

async fn remove(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<Json<Vec<TrustConfig>>> {
    user.require(Scope::Publish)?;
    let actor = user.actor(&state).await?;
    let removed = trust::remove(&state, &actor, &name, &id, otp(&headers)).await?;
    Ok(Json(wire(&state, &[removed]).await?))
}

async fn exchange(
    State(state): State<AppState>,
    Path(name): Path<String>,
    client: ClientInfo,
    headers: HeaderMap,
) -> ApiResult<(StatusCode, Json<ExchangedToken>)> {
    let Some(token) = bearer_in(&headers) else {
        return Err(GateError::Oidc(
            OidcFailure::Invalid,
            "send the CI's ID token as `Authorization: Bearer <ID token>`".into(),
        )
        .into());
    };
    let exchanged = crate::oidc::exchange::exchange(&state, &name, token, &client).await?;
    Ok((StatusCode::CREATED, Json(exchanged)))
}

async fn issuers(State(state): State<AppState>) -> Json<Vec<IssuerInfo>> {
    Json(
        state
            .config
            .oidc
            .issuers
            .iter()
            .map(|i| IssuerInfo {
                name: i.name.clone(),
                issuer: i.url.clone(),
                kind: i.kind.as_str().into(),
                required_claims: i.required_claims.clone(),
            })
            .collect(),
    )
}
