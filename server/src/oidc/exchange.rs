//! `POST /-/npm/v1/oidc/token/exchange/package/<name>`: a CI's ID token for a registry token
//! (`tg_oidc_…`, stored hashed) that may publish (or stage, as its trust allows) that one
//! package, once, for minutes.
//!
//! The ID token must be signed (RS256 or ES256) by a key its issuer publishes, `iss` exactly an
//! issuer the operator trusts, `aud` exactly `npm:<registry host>`, within `exp`, `nbf` and
//! `iat` (a minute of skew), its claims must meet a trust of the package, and its `jti` must
//! never have been exchanged (on any instance: the database remembers it until it expires).
//! Every refused token is a failed attempt on the package, counted towards its lock.

use tapgate_shared::oidc::{ExchangedToken, IdToken, JwtError, match_claims};

use super::{KeyError, OidcFailure, SKEW_SECONDS, TOKEN_TTL_SECONDS};
use crate::client_info::ClientInfo;
use crate::gate::roles::{Asking, role_for};
use crate::gate::{self, GateError};
use crate::lockout::{self, FailureKind};
use crate::secrets;
use crate::state::AppState;
use crate::store::oidc::{ExchangeError, NewExchange, TrustRow};

/// A verified ID token and the trust it meets.
#[derive(Debug)]
pub struct Verified {
    pub token: IdToken,
    pub jwk: tapgate_shared::oidc::Jwk,
    pub trust: TrustRow,
}

/// Refuses `why`, after recording it as a failed attempt on `package`.
async fn refuse<T>(
    state: &AppState,
    package: &str,
    client: &ClientInfo,
    failure: OidcFailure,
    why: String,
) -> Result<T, GateError> {
    tracing::warn!(subject = %package, reason = %why, code = %failure.code(), "OIDC token refused");
    // Recorded against names someone holds or trusts: anonymous tokens for made-up names leave
    // nothing behind.
    if state.store.package(package).await?.is_some() || !state.store.trusts(package).await?.is_empty() {
        let detail = format!("an OIDC token was refused: {why}");
        lockout::record_failure(state, package, None, FailureKind::OidcToken, &detail, client).await?;
    }
    Err(GateError::Oidc(failure, why))
}

/// Checks `text` (the bearer) as an ID token for `package`: everything but its `jti`.
pub async fn verify(
    state: &AppState,
    package: &str,
    text: &str,
    client: &ClientInfo,
) -> Result<Verified, GateError> {
    let bad = |e: JwtError| (OidcFailure::Invalid, e.to_string());
    let token = match IdToken::parse(text) {
        Ok(token) => token,
        Err(e) => {
            let (f, why) = bad(e);
            return refuse(state, package, client, f, why).await;
        }
    };
    let iss = token.str_claim("iss").unwrap_or_default().to_string();
    let Some(issuer) = state.config.oidc.issuer(&iss) else {
        return refuse(
            state,
            package,
            client,
            OidcFailure::Untrusted,
            format!("the ID token's issuer {iss:?} is not one this registry's operator trusts"),
        )
        .await;
    };
    let Some(kid) = token.kid.clone() else {
        return refuse(
            state,
            package,
            client,
            OidcFailure::Invalid,
            "the ID token's header names no key (kid)".into(),
        )
        .await;
    };
    let jwk = match state.config.oidc.key(issuer, &kid).await {
        Ok(jwk) => jwk,
        Err(KeyError::UnknownKid(why)) => {
            return refuse(state, package, client, OidcFailure::Invalid, why).await;
        }
        Err(KeyError::Unavailable(why)) => {
            tracing::warn!(issuer = %issuer.url, reason = %why, "OIDC issuer unavailable");
            return Err(GateError::Oidc(
                OidcFailure::IssuerUnavailable,
                format!(
                    "this registry cannot fetch the keys of the issuer {}: try again shortly",
                    issuer.url
                ),
            ));
        }
    };
    if let Err(e) = token.verify(&jwk) {
        let (f, why) = bad(e);
        return refuse(state, package, client, f, why).await;
    }
    let audience = super::audience(&state.config.origin);
    if !token.has_audience(&audience) {
        return refuse(state, package, client, OidcFailure::Audience, format!(
            "the ID token's audience is {}, this registry needs {audience:?} (ask your CI for an ID token with that audience)",
            token.claims.get("aud").map(ToString::to_string).unwrap_or_else(|| "absent".into())
        ))
        .await;
    }
    let now = state.now();
    let (exp, iat) = (token.time_claim("exp"), token.time_claim("iat"));
    let (Some(exp), Some(iat)) = (exp, iat) else {
        return refuse(state, package, client, OidcFailure::Invalid, "the ID token lacks exp or iat".into())
            .await;
    };
    if now > exp.saturating_add(SKEW_SECONDS) {
        return refuse(
            state,
            package,
            client,
            OidcFailure::Expired,
            format!("the ID token expired {} seconds ago: ask your CI for a fresh one", now - exp),
        )
        .await;
    }
    if iat > now + SKEW_SECONDS || token.time_claim("nbf").is_some_and(|nbf| nbf > now + SKEW_SECONDS) {
        return refuse(
            state,
            package,
            client,
            OidcFailure::NotYetValid,
            "the ID token is not valid yet (nbf or iat lies in the future): check the clocks".into(),
        )
        .await;
    }
    if token.str_claim("jti").is_none_or(str::is_empty) {
        return refuse(
            state,
            package,
            client,
            OidcFailure::Invalid,
            "the ID token has no jti, so its replay could not be refused".into(),
        )
        .await;
    }
    let trusts: Vec<TrustRow> =
        state.store.trusts(package).await?.into_iter().filter(|t| t.issuer == issuer.url).collect();
    let mut why = format!(
        "{package} has no trust for the issuer {}: a maintainer creates one with `npm trust` or `tapgate trust add`",
        issuer.url
    );
    for trust in trusts {
        let required: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&trust.claims)
            .map_err(|e| GateError::Corrupt(format!("trust {}: {e}", trust.id)))?;
        match match_claims(&issuer.url, &required, &token.claims) {
            Ok(()) => return Ok(Verified { token, jwk, trust }),
            Err(mismatch) => why = format!("the ID token matches no trust of {package}: {mismatch}"),
        }
    }
    refuse(state, package, client, OidcFailure::NoTrust, why).await
}

/// Exchanges an ID token for a registry token for `package`.
pub async fn exchange(
    state: &AppState,
    package: &str,
    text: &str,
    client: &ClientInfo,
) -> Result<ExchangedToken, GateError> {
    crate::names::validate_package_name(package).map_err(GateError::Invalid)?;
    lockout::ensure_unlocked(state, package).await?;
    let verified = verify(state, package, text, client).await?;
    let Verified { token, jwk, trust } = verified;
    let policy = gate::policy_in_force(state, package).await?;
    gate::oidc::allowed(package, &policy)?;
    // The trust's creator acts: they must still maintain the package (or, for a name nobody
    // holds yet, still be able to claim it).
    let creator = state
        .store
        .user_by_id(&trust.created_by)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| GateError::Forbidden("the account that created this trust is disabled".into()))?;
    role_for(state, &creator, false, package, &policy, Asking::Publish).await.map_err(|e| match e {
        GateError::Forbidden(why) => GateError::Forbidden(format!(
            "the trust {} was created by {}, who can no longer publish {package}: {why}",
            trust.id, creator.name
        )),
        other => other,
    })?;
    let now = state.now();
    let exp = token.time_claim("exp").unwrap_or(now);
    let jti = token.str_claim("jti").unwrap_or_default().to_string();
    let secret = secrets::generate(secrets::SecretKind::OidcToken);
    let permissions = trust.permission_list();
    let jwk_json = serde_json::to_string(&jwk).map_err(|e| GateError::Corrupt(e.to_string()))?;
    let recorded = state
        .store
        .record_exchange(&NewExchange {
            hash: &secret.hash,
            trust_id: &trust.id,
            package,
            permissions: &permissions,
            issuer: &trust.issuer,
            jti: &jti,
            jti_expires_at: exp.saturating_add(SKEW_SECONDS),
            id_token: token.text(),
            jwk: &jwk_json,
            now,
            expires_at: now + TOKEN_TTL_SECONDS,
        })
        .await;
    match recorded {
        Ok(()) => {}
        Err(ExchangeError::Replayed) => {
            return refuse(
                state,
                package,
                client,
                OidcFailure::Replayed,
                format!("this ID token (jti {jti:?}) was exchanged already: each ID token is exchanged once"),
            )
            .await;
        }
        Err(ExchangeError::Store(e)) => return Err(e.into()),
    }
    tracing::info!(subject = %package, trust_id = %trust.id, issuer = %trust.issuer, "OIDC token exchanged");
    Ok(ExchangedToken {
        token: secret.plaintext,
        expires_at: now + TOKEN_TTL_SECONDS,
        package: package.to_string(),
        trust_id: trust.id,
        permissions,
    })
}
