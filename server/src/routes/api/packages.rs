//! `GET /api/v1/packages/{name}`, `PUT /api/v1/packages/{name}/policy` (administrators, with
//! their tap), maintainers: `GET …/maintainers`, `PUT|DELETE …/maintainers/{user}` (gated like
//! every change), and the approval record of a version: `GET …/versions/{version}/approval`.

use crate::extract::Path;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, put};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tapgate_shared::ErrorCode;
use tapgate_shared::api::{ApprovalRecord, Maintainers, PackageInfo, PackagePolicy, RecordSignature, Scope};
use tapgate_shared::intent::Intent;

use crate::auth::{AuthUser, otp};
use crate::changes::package as changes;
use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::gate::{approvals::intent_of, approvers, policy_in_force};
use crate::names::validate_package_name;
use crate::policy::Policy;
use crate::routes::npm::packages::package_not_found;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/packages/{name}", get(show))
        .route("/packages/{name}/policy", put(set_policy))
        .route("/packages/{name}/maintainers", get(maintainers))
        .route("/packages/{name}/maintainers/{user}", put(add_maintainer).delete(remove_maintainer))
        .route("/packages/{name}/versions/{version}/approval", get(approval_record))
}

async fn show(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<PackageInfo>> {
    let policy = policy_in_force(&state, &name).await?;
    if !policy.exists {
        return Err(package_not_found(&name));
    }
    Ok(Json(PackageInfo {
        noncompliant_maintainers: approvers::noncompliant(&state, &name, &policy.policy).await?,
        policy: policy.policy.to_wire(),
        maintainers: state.store.maintainers(&name).await?.into_iter().map(|(_, n)| n).collect(),
        versions: changes::served_versions(&state, &name).await?.into_iter().map(|v| v.version).collect(),
        dist_tags: state.store.dist_tags(&name).await?,
        lock: state.store.package_lock(&name).await?.map(|l| super::lock::info(&name, &l)),
        name,
    }))
}

async fn set_policy(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(policy): Json<PackagePolicy>,
) -> ApiResult<Json<PackagePolicy>> {
    user.require(Scope::Admin)?;
    validate_package_name(&name).map_err(|m| ApiError::bad_request(ErrorCode::InvalidName, m))?;
    let new = Policy::from_wire(&policy).map_err(|m| ApiError::bad_request(ErrorCode::BadRequest, m))?;
    let actor = user.actor(&state).await?;
    changes::set_policy(&state, &actor, &name, new, otp(&headers)).await?;
    Ok(Json(policy))
}

async fn maintainers(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Maintainers>> {
    if state.store.package(&name).await?.is_none() {
        return Err(package_not_found(&name));
    }
    let maintainers = state.store.maintainers(&name).await?.into_iter().map(|(_, n)| n).collect();
    Ok(Json(Maintainers { package: name, maintainers }))
}

async fn add_maintainer(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path((name, username)): Path<(String, String)>,
) -> ApiResult<Json<Maintainers>> {
    user.require(Scope::Publish)?;
    let actor = user.actor(&state).await?;
    changes::add_maintainer(&state, &actor, &name, &username, otp(&headers)).await?;
    maintainers(State(state), Path(name)).await
}

async fn remove_maintainer(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Path((name, username)): Path<(String, String)>,
) -> ApiResult<Json<Maintainers>> {
    user.require(Scope::Publish)?;
    let actor = user.actor(&state).await?;
    changes::remove_maintainer(&state, &actor, &name, &username, otp(&headers)).await?;
    maintainers(State(state), Path(name)).await
}

async fn approval_record(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> ApiResult<Json<ApprovalRecord>> {
    let row = state.store.version(&name, &version).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::PackageNotFound,
            format!("{name}@{version} is not in this registry"),
        )
    })?;
    let not_approved = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!(
                "{name}@{version} was published without a security-key approval (its policy did not require one)"
            ),
        )
    };
    if let Some(approval_id) = row.approval_id {
        let a = state.store.approval(&approval_id).await?.ok_or_else(not_approved)?;
        return Ok(Json(record_of(&state, a).await?));
    }
    // Published by CI with an OIDC token: the registry's signed statement (with the ID token and
    // the issuer's key), and the tap that created the trust it names.
    if let Some(spent) = state.store.spent_oidc_token(&name, &version).await? {
        let trust = state
            .store
            .trust(&spent.trust_id)
            .await?
            .ok_or_else(|| ApiError::internal(format!("trust {} is missing", spent.trust_id)))?;
        let a = state
            .store
            .approval(&trust.approval_id)
            .await?
            .ok_or_else(|| ApiError::internal(format!("approval of trust {} is missing", trust.id)))?;
        let mut record = record_of(&state, a).await?;
        record.oidc_publish = spent.statement;
        return Ok(Json(record));
    }
    // Published by CI with a deploy key: the deploy key, and the tap that created the CI
    // credential it names (whose intent is the credential's scope).
    let spent = state.store.spent_deploy_key(&name, &version).await?.ok_or_else(not_approved)?;
    let credential = state
        .store
        .ci_credential(&spent.credential_id)
        .await?
        .ok_or_else(|| ApiError::internal(format!("CI credential {} is missing", spent.credential_id)))?;
    let a = state.store.approval(&credential.approval_id).await?.ok_or_else(|| {
        ApiError::internal(format!("approval of CI credential {} is missing", credential.id))
    })?;
    let mut record = record_of(&state, a).await?;
    record.deploy_key = spent.document;
    Ok(Json(record))
}

/// The offline-verifiable record of an approval: its intent, nonce, challenge and every tap.
async fn record_of(state: &AppState, a: crate::store::approvals::Approval) -> ApiResult<ApprovalRecord> {
    let approval_id = a.id.clone();
    let gate_intent = intent_of(&a)?;
    let requester = state.store.user_by_id(&a.requested_by).await?.map(|u| u.name).unwrap_or_default();
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let mut signatures = Vec::new();
    for sig in state.store.approval_signatures(&approval_id).await? {
        let public_key: serde_json::Value =
            serde_json::from_str(&sig.credential_public_key).map_err(ApiError::internal)?;
        let (cose, spki) = super::public_keys::encodings(&public_key);
        signatures.push(RecordSignature {
            approved_by: state.store.user_by_id(&sig.user_id).await?.map(|u| u.name).unwrap_or_default(),
            approved_at: rfc3339(sig.signed_at),
            credential_id: b64(&sig.credential_id),
            credential_public_key: public_key,
            credential_public_key_cose: cose,
            credential_public_key_spki: spki,
            client_data_json: b64(&sig.client_data_json),
            authenticator_data: b64(&sig.authenticator_data),
            signature: b64(&sig.signature),
            user_verified: sig.user_verified,
        });
    }
    let first = signatures
        .first()
        .cloned()
        .ok_or_else(|| ApiError::internal(format!("approval {approval_id} lacks its evidence")))?;
    Ok(ApprovalRecord {
        format: if gate_intent.is_some() { 2 } else { 1 },
        intent: Intent {
            package: a.package,
            version: a.version,
            integrity: a.integrity,
            requested_by: requester,
        },
        gate_intent,
        nonce: b64(&a.nonce),
        challenge: b64(&a.challenge),
        client_data_json: first.client_data_json,
        authenticator_data: first.authenticator_data,
        signature: first.signature,
        credential_id: first.credential_id,
        credential_public_key: first.credential_public_key,
        credential_public_key_cose: first.credential_public_key_cose,
        credential_public_key_spki: first.credential_public_key_spki,
        rp_id: state.rp.rp_id.clone(),
        origin: state.config.origin.as_str().trim_end_matches('/').to_string(),
        approved_by: first.approved_by,
        approved_at: first.approved_at,
        user_verified: first.user_verified,
        signatures,
        deploy_key: None,
        oidc_publish: None,
        policy: a.policy.as_deref().and_then(|p| Policy::from_stored(p).ok()).map(Policy::to_wire),
        required_approvals: u32::try_from(a.required_taps).ok(),
    })
}
