//! Enrolling a security key: `POST /api/v1/keys/registrations` and
//! `POST /api/v1/keys/registrations/{ceremony}`.
//!
//! The bearer is either the user's invite (`tg_inv_…`, for their first key or after losing all
//! of them; consumed by the enrollment) or an API token from a recent sign-in with a key, so that
//! a leaked long-lived token cannot enroll an attacker's key.

use crate::extract::Path;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use tapgate_shared::ErrorCode;
use tapgate_shared::api::{FinishRegistration, KeyInfo, RegistrationChallenge};
use tracing::instrument;

use super::keys::key_info;
use crate::auth::bearer;
use crate::ceremonies;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::secrets::{self, SecretKind};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::keys::NewSecurityKey;
use crate::store::tokens::TokenSource;
use crate::store::users::User;
use crate::webauthn::StoredState;

/// How recent a key sign-in must be to enroll or remove keys with its token.
pub const FRESH_LOGIN_SECONDS: i64 = 15 * 60;

const KIND: &str = "register";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/keys/registrations", post(begin))
        .route("/keys/registrations/{ceremony}", post(finish))
}

/// Who may enroll a key, and through what.
#[derive(Debug)]
pub struct Enroller {
    pub user: User,
    /// The invite's hash when enrolling with an invite (consumed on success).
    pub invite_hash: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Context {
    invite_hash: Option<String>,
}

impl FromRequestParts<AppState> for Enroller {
    type Rejection = ApiError;

    #[instrument(skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(credential) = bearer(parts) else {
            return Err(ApiError::unauthorized(
                "enrolling a key needs your invite (from the invite link) or a fresh sign-in token",
            ));
        };
        let now = state.now();
        if secrets::has_prefix(credential, SecretKind::Invite) {
            let invite = state.store.valid_invite(credential, now).await?.ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::InvalidInvite,
                    "this invite is unknown, expired or already used: ask an administrator for a new one",
                )
            })?;
            let user = state
                .store
                .user_by_id(&invite.user_id)
                .await?
                .ok_or_else(|| ApiError::internal("invite without user"))?;
            return Ok(Enroller { user, invite_hash: Some(invite.token_hash) });
        }
        let auth = state.store.authenticate_token(credential, now).await?.ok_or_else(|| {
            ApiError::unauthorized(
                "the API token is unknown, expired or revoked: sign in again with your security key",
            )
        })?;
        require_fresh_login(auth.source, auth.created_at, now)?;
        let user = state
            .store
            .user_by_id(&auth.user_id)
            .await?
            .ok_or_else(|| ApiError::internal("token without user"))?;
        Ok(Enroller { user, invite_hash: None })
    }
}

/// Managing keys takes a token from a sign-in with a key in the last 15 minutes.
pub fn require_fresh_login(source: TokenSource, created_at: i64, now: i64) -> Result<(), ApiError> {
    if source == TokenSource::Login && now - created_at <= FRESH_LOGIN_SECONDS {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::ReauthenticationRequired,
        "managing security keys needs a sign-in with one of your keys in the last 15 minutes: \
         sign in again (`tapgate login` or the /login page) and retry",
    ))
}

async fn begin(
    State(state): State<AppState>,
    enroller: Enroller,
) -> ApiResult<(StatusCode, Json<RegistrationChallenge>)> {
    let existing = state.store.keys_of_user(&enroller.user.id).await?;
    let exclude = existing.into_iter().map(|k| k.credential_id).collect();
    let (public_key, reg_state) = state
        .rp
        .begin_registration(&enroller.user.webauthn_handle, &enroller.user.name, exclude)
        .map_err(|f| ApiError::internal(f.message()))?;
    let context = Context { invite_hash: enroller.invite_hash };
    let ceremony = ceremonies::persist(
        &state,
        KIND,
        Some(&enroller.user.id),
        &StoredState::Registration(reg_state),
        &context,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(RegistrationChallenge { ceremony, public_key })))
}

/// Checks a key name: 1–64 printable characters.
pub fn validate_key_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidName,
            "name the key with 1 to 64 printable characters, e.g. \"YubiKey 5C (desk)\"",
        ));
    }
    Ok(name)
}

async fn finish(
    State(state): State<AppState>,
    enroller: Enroller,
    Path(ceremony_id): Path<String>,
    Json(body): Json<FinishRegistration>,
) -> ApiResult<(StatusCode, Json<KeyInfo>)> {
    let name = validate_key_name(&body.name)?.to_string();
    let ceremony = ceremonies::take(&state, &ceremony_id, KIND).await?;
    if ceremony.user_id.as_deref() != Some(enroller.user.id.as_str()) {
        return Err(ApiError::forbidden("this enrollment was started by another account"));
    }
    let context: Context = ceremonies::decode(&ceremony.context)?;
    let StoredState::Registration(reg_state) = ceremonies::decode::<StoredState>(&ceremony.state)? else {
        return Err(ApiError::internal("registration ceremony holds the wrong state"));
    };
    let registered = state.rp.finish_registration(&body.credential, &reg_state).map_err(|f| {
        let status = match f {
            crate::webauthn::CeremonyFailure::Malformed(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        };
        ApiError::new(status, ErrorCode::WebauthnFailed, f.message())
    })?;
    let credential_json = serde_json::to_string(&registered.credential).map_err(ApiError::internal)?;
    let aaguid = registered.aaguid.to_string();
    let new_key = NewSecurityKey {
        user_id: &enroller.user.id,
        name: &name,
        credential_id: &registered.credential.cred_id,
        credential: &credential_json,
        counter: i64::from(registered.credential.counter),
        aaguid: &aaguid,
        attestation_format: &registered.format,
        attested: registered.attested,
        attestation_ca: registered.attestation_ca.as_deref(),
        user_verified: registered.user_verified,
    };
    let key = match state.store.add_key(&new_key, context.invite_hash.as_deref(), state.now()).await {
        Ok(key) => key,
        Err(StoreError::Conflict(msg)) if msg.contains("already enrolled") => {
            return Err(ApiError::conflict(
                ErrorCode::KeyAlreadyEnrolled,
                "this security key is already enrolled; use a different key or keep using this one",
            ));
        }
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidInvite,
                "this invite was used meanwhile or has expired: ask an administrator for a new one",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(
        user = %enroller.user.name,
        key_id = %key.id,
        aaguid = %key.aaguid,
        attested = key.attested,
        format = %key.attestation_format,
        "security key enrolled"
    );
    Ok((StatusCode::CREATED, Json(key_info(key))))
}
