//! An OIDC registry token (`tg_oidc_…`, from an exchange) as evidence: it counts for a publish
//! only of the package it was exchanged for, unexpired and unspent, while the trust that
//! answered it is in force and was created by the actor, with the trust allowing publishes, and
//! when the package's policy lists `oidc` and is not critical. The commit spends it (see
//! [`crate::store::gate`]); the version's record is the registry's signed statement carrying
//! the ID token and the issuer's key.

use tapgate_shared::api::CiMethod;
use tapgate_shared::gate_intent::Change;
use tapgate_shared::oidc::{Jwk, OidcPublish, OidcPublishPayload, PERMISSION_PUBLISH};

use super::{Evidence, GateError, PolicyInForce, Request};
use crate::changes::OidcActor;
use crate::lockout::{self, FailureKind};
use crate::oidc::OidcFailure;
use crate::state::AppState;

/// Refuses unless `package`'s policy lets CI publish with OIDC trusted publishing: it lists
/// `oidc`, and it is not critical (more approvals, attested keys, user verification keep a
/// package's releases to people; an ID token stands for the one tap that created its trust).
pub fn allowed(package: &str, policy: &PolicyInForce) -> Result<(), GateError> {
    if !policy.policy.ci.allows(CiMethod::Oidc) {
        return Err(GateError::NotAllowed(format!(
            "the policy of {package} does not let CI publish with OIDC trusted publishing; an administrator can \
             allow it (\"ci\": [\"oidc\"])"
        )));
    }
    if policy.policy.is_critical() {
        return Err(GateError::NotAllowed(format!(
            "{package} is critical (attested keys, user verification or several approvals): its releases need \
             maintainers' taps, not an OIDC token"
        )));
    }
    Ok(())
}

async fn refuse(
    state: &AppState,
    request: &Request<'_>,
    failure: OidcFailure,
    why: String,
) -> Result<Evidence, GateError> {
    let subject = &request.intent.subject;
    tracing::warn!(subject = %subject, user = %request.actor.name, reason = %why, "OIDC token refused");
    let detail = format!("a refused OIDC token acting for {}: {why}", request.actor.name);
    lockout::record_failure(
        state,
        subject,
        Some(&request.actor.id),
        FailureKind::OidcToken,
        &detail,
        request.client,
    )
    .await?;
    Err(GateError::Oidc(failure, why))
}

/// Checks the OIDC registry token `oidc` for `request` and answers the evidence it is.
pub async fn redeem(
    state: &AppState,
    request: &Request<'_>,
    oidc: &OidcActor,
) -> Result<Evidence, GateError> {
    let intent = request.intent;
    let package = intent.subject.as_str();
    let Change::Publish { version, integrity, tags } = &intent.change else {
        return Err(GateError::Forbidden(format!(
            "an OIDC token only publishes new versions; {} needs a maintainer",
            intent.describe()
        )));
    };
    if oidc.package != package {
        return refuse(
            state,
            request,
            OidcFailure::NoTrust,
            format!("this OIDC token was exchanged for {}, not {package}", oidc.package),
        )
        .await;
    }
    allowed(package, request.policy)?;
    let now = state.now();
    let Some(row) = state.store.oidc_token(&oidc.token_hash).await? else {
        return refuse(
            state,
            request,
            OidcFailure::Invalid,
            "this registry never issued this OIDC token".into(),
        )
        .await;
    };
    if row.spent_at.is_some() {
        return refuse(
            state,
            request,
            OidcFailure::Invalid,
            "this OIDC token was already used: each publishes once".into(),
        )
        .await;
    }
    if row.expires_at <= now {
        return refuse(
            state,
            request,
            OidcFailure::Expired,
            "this OIDC token expired (they last minutes): exchange a new ID token".into(),
        )
        .await;
    }
    if !row.permission_list().iter().any(|p| p == PERMISSION_PUBLISH) {
        return Err(GateError::NotAllowed(format!(
            "the trust {} lets CI stage releases of {package}, not publish them",
            row.trust_id
        )));
    }
    let trust = state.store.trust(&row.trust_id).await?;
    let trust = match trust {
        Some(t) if t.removed_at.is_none() && t.created_by == request.actor.id && t.package == package => t,
        Some(t) if t.removed_at.is_some() => {
            return refuse(state, request, OidcFailure::NoTrust, format!("the trust {} was removed", t.id))
                .await;
        }
        _ => {
            return refuse(state, request, OidcFailure::NoTrust, "this OIDC token's trust is gone".into())
                .await;
        }
    };
    let jwk: Jwk =
        serde_json::from_str(&row.jwk).map_err(|e| GateError::Corrupt(format!("a stored JWK: {e}")))?;
    let key = crate::signing::current(&state.store, now).await?;
    let payload = OidcPublishPayload {
        v: 1,
        kid: key.kid.clone(),
        package: package.to_string(),
        version: version.clone(),
        integrity: integrity.clone(),
        tags: tags.clone(),
        trust_id: trust.id.clone(),
        approval_id: trust.approval_id.clone(),
        issuer: trust.issuer.clone(),
        audience: crate::oidc::audience(&state.config.origin),
        id_token: row.id_token.clone(),
        jwk,
        exchanged_at: row.exchanged_at,
        published_at: now,
    };
    let encoded = OidcPublish::encode_payload(&payload);
    let signature = crate::signing::sign(&key, &OidcPublish::signing_input(&encoded))?;
    let statement = OidcPublish::assemble(&encoded, &signature);
    Ok(Evidence::Oidc {
        hash: row.hash,
        trust_id: trust.id,
        approval_id: trust.approval_id,
        package: package.to_string(),
        version: version.clone(),
        statement,
    })
}
