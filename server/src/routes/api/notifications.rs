//! Where alerts go. Per user: `GET /api/v1/user/notifications`, `PUT /api/v1/user/email`
//! (sends a verification link), `PUT /api/v1/user/notifications` (the events chosen), and the
//! link itself, `GET /-/email/verify/{token}`. Per package: `GET|PUT
//! /api/v1/packages/{name}/webhooks` (maintainers; setting them is a gated change).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Html;
use axum::routing::get;
use tapgate_shared::ErrorCode;
use tapgate_shared::api::{
    NotificationSettings, Scope, SetEmail, SetEvents, SetWebhooks, WebhookInfo, Webhooks,
};

use crate::auth::{AuthUser, otp};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::notify::settings::{self, SettingsError};
use crate::routes::npm::packages::package_not_found;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/user/notifications", get(show).put(set_events))
        .route("/user/email", axum::routing::put(set_email))
        .route("/packages/{name}/webhooks", get(webhooks).put(set_webhooks))
}

/// `GET /-/email/verify/{token}` (outside `/api/v1`: it is opened from an email).
pub fn link_routes() -> Router<AppState> {
    Router::new().route("/-/email/verify/{token}", get(verify))
}

impl From<SettingsError> for ApiError {
    fn from(e: SettingsError) -> Self {
        match e {
            SettingsError::Invalid(m) => ApiError::bad_request(ErrorCode::BadRequest, m),
            SettingsError::Store(s) => s.into(),
        }
    }
}

async fn settings_of(state: &AppState, user_id: &str) -> ApiResult<NotificationSettings> {
    let row = state.store.user_email(user_id).await?;
    Ok(match row {
        Some(r) => NotificationSettings {
            email: r.address.filter(|_| r.verified_at.is_some()),
            pending_email: r.pending_address,
            events: r.events.split(',').filter(|e| !e.is_empty()).map(str::to_string).collect(),
        },
        None => NotificationSettings { email: None, pending_email: None, events: vec!["all".into()] },
    })
}

async fn show(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<NotificationSettings>> {
    Ok(Json(settings_of(&state, &user.0.user_id).await?))
}

async fn set_email(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<SetEmail>,
) -> ApiResult<(StatusCode, Json<NotificationSettings>)> {
    let actor = user.actor(&state).await?;
    settings::set_email(&state, &actor.user, &body.email, &actor.client).await?;
    Ok((StatusCode::ACCEPTED, Json(settings_of(&state, &actor.user.id).await?)))
}

async fn set_events(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<SetEvents>,
) -> ApiResult<Json<NotificationSettings>> {
    let actor = user.actor(&state).await?;
    settings::set_events(&state, &actor.user, &body.events).await?;
    Ok(Json(settings_of(&state, &actor.user.id).await?))
}

async fn verify(State(state): State<AppState>, Path(token): Path<String>) -> ApiResult<Html<String>> {
    match settings::verify(&state, &token).await? {
        Some(address) => Ok(Html(format!(
            "<!doctype html><meta charset=utf-8><title>tapgate</title><p>Alerts now go to {}.</p>",
            escape(&address)
        ))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "this confirmation link is unknown, used or expired: set your address again",
        )),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

async fn webhooks(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> ApiResult<Json<Webhooks>> {
    if state.store.package(&name).await?.is_none() {
        return Err(package_not_found(&name));
    }
    if !state.store.is_maintainer(&name, &user.0.user_id).await? {
        return Err(ApiError::forbidden(format!("only the maintainers of {name} see its webhooks")));
    }
    let webhooks = state
        .store
        .webhooks(&name)
        .await?
        .into_iter()
        .map(|w| WebhookInfo { url: w.url, secret: None })
        .collect();
    Ok(Json(Webhooks { package: name, webhooks }))
}

async fn set_webhooks(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(body): Json<SetWebhooks>,
) -> ApiResult<Json<Webhooks>> {
    user.require(Scope::Publish)?;
    let actor = user.actor(&state).await?;
    let set = crate::changes::webhooks::set(&state, &actor, &name, &body.urls, otp(&headers)).await?;
    let webhooks = set.into_iter().map(|(url, secret)| WebhookInfo { url, secret }).collect();
    Ok(Json(Webhooks { package: name, webhooks }))
}
