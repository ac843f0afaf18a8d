//! Enrolling a security key: `POST /api/v1/keys/registrations` and
//! `POST /api/v1/keys/registrations/{ceremony}`.
//!
//! The bearer is either the user's invite (`tg_inv_…`, for their first key or after losing all
//! of them; consumed by the enrollment) or an API token. With a token, the new key is enrolled
//! only after a tap of one of the account's existing keys approves exactly that key: finishing
//! the registration answers `401 otp_required` with the approval, and repeating the same request
//! with `npm-otp: <ticket>` enrolls it. A leaked token alone can never add an attacker's key.

use crate::extract::Path;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tapgate_shared::ErrorCode;
use tapgate_shared::api::{FinishRegistration, KeyInfo, RegistrationChallenge};
use tracing::instrument;

use super::keys::key_info;
use crate::auth::{bearer, otp};
use crate::bounds;
use crate::ceremonies;
use crate::changes::keys::{KeyAdd, PendingKey, add_key};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientIp, Json};
use crate::limits::{Attempt, Rule, Subject};
use crate::secrets::{self, SecretKind};
use crate::state::AppState;
use crate::store::users::User;
use crate::throttle;
use crate::webauthn::StoredState;

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
            let ClientIp(ip) = ClientIp::of(&parts.extensions)?;
            throttle::limit(state, &[Attempt::new(Rule::Invites, Subject::Address(ip))]).await?.keep();
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
        let user = state
            .store
            .user_by_id(&auth.user_id)
            .await?
            .ok_or_else(|| ApiError::internal("token without user"))?;
        Ok(Enroller { user, invite_hash: None })
    }
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
    headers: HeaderMap,
    Path(ceremony_id): Path<String>,
    Json(body): Json<FinishRegistration>,
) -> ApiResult<(StatusCode, Json<KeyInfo>)> {
    let name = validate_key_name(&body.name)?.to_string();
    let response = &body.credential.response;
    bounds::bytes("clientDataJSON", &response.client_data_json, bounds::MAX_CLIENT_DATA_BYTES)?;
    bounds::bytes("attestationObject", &response.attestation_object, bounds::MAX_ATTESTATION_BYTES)?;
    let otp = otp(&headers);
    let add = match (otp, &enroller.invite_hash) {
        // The repetition with the ticket: the key is the one the tap approved (its registration
        // was verified when the approval was asked for, and the ceremony is spent).
        (Some(_), None) => KeyAdd::Repeated {
            name,
            credential_id: body.credential.raw_id.to_vec(),
            attestation_sha256: attestation_digest(&body),
        },
        _ => {
            let key = register(&state, &enroller, &ceremony_id, &body, name).await?;
            KeyAdd::Registered { key, invite_hash: enroller.invite_hash.clone() }
        }
    };
    let key = add_key(&state, &enroller.user, add, otp).await?;
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

/// Hex SHA-256 of the attestation object a registration carries: what a key-add tap binds.
fn attestation_digest(body: &FinishRegistration) -> String {
    hex::encode(Sha256::digest(&body.credential.response.attestation_object))
}

/// Verifies the registration against its (consumed) ceremony.
async fn register(
    state: &AppState,
    enroller: &Enroller,
    ceremony_id: &str,
    body: &FinishRegistration,
    name: String,
) -> ApiResult<PendingKey> {
    let ceremony = ceremonies::take(state, ceremony_id, KIND).await?;
    if ceremony.user_id.as_deref() != Some(enroller.user.id.as_str()) {
        return Err(ApiError::forbidden("this enrollment was started by another account"));
    }
    let context: Context = ceremonies::decode(&ceremony.context)?;
    if context.invite_hash != enroller.invite_hash {
        return Err(ApiError::forbidden("this enrollment was started with another credential"));
    }
    let StoredState::Registration(reg_state) = ceremonies::decode::<StoredState>(&ceremony.state)? else {
        return Err(ApiError::internal("registration ceremony holds the wrong state"));
    };
    let registered = state.rp.finish_registration(&body.credential, &reg_state).map_err(ApiError::from)?;
    if registered.credential.cred_id.as_slice() != body.credential.raw_id.as_slice() {
        return Err(ApiError::bad_request(
            ErrorCode::WebauthnFailed,
            "the registration names a different credential id than the one its key attested",
        ));
    }
    Ok(PendingKey {
        attestation_sha256: attestation_digest(body),
        name,
        credential_id: registered.credential.cred_id.to_vec(),
        credential: serde_json::to_string(&registered.credential).map_err(ApiError::internal)?,
        counter: i64::from(registered.credential.counter),
        aaguid: registered.aaguid.to_string(),
        attestation_format: registered.format.clone(),
        attested: registered.attested,
        attestation_ca: registered.attestation_ca.clone(),
        user_verified: registered.user_verified,
    })
}
