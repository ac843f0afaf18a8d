//! Authentication extractors. The bearer token never reaches a log: extraction is
//! `#[instrument(skip_all)]` and only the token's public id is recorded.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use tapgate_shared::api::Scope;
use tracing::instrument;

use crate::client_info::ClientInfo;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::tokens::Authenticated;

/// A request authenticated by an API token, and the client that sent it (for alerts and the
/// audit log).
#[derive(Debug, Clone)]
pub struct AuthUser(pub Authenticated, pub ClientInfo);

impl AuthUser {
    /// Fails with 403 unless the token carries `scope` (and, for `admin`, the user is one).
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if !self.0.scopes.contains(&scope) {
            return Err(ApiError::forbidden(format!(
                "this token lacks the {:?} scope; issue a token with it",
                scope.as_str()
            )));
        }
        if scope == Scope::Admin && !self.0.admin {
            return Err(ApiError::forbidden("only administrators may do this"));
        }
        Ok(())
    }
}

impl AuthUser {
    /// The actor behind the token, for the gate: who they are and whether this token may act
    /// as an administrator. Never evidence for a change.
    pub async fn actor(&self, state: &AppState) -> Result<crate::changes::Actor, ApiError> {
        let user = state
            .store
            .user_by_id(&self.0.user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or_else(|| ApiError::unauthorized("your account no longer exists or is disabled"))?;
        let admin = self.require(Scope::Admin).is_ok();
        Ok(crate::changes::Actor {
            user,
            admin,
            origin: crate::gate::Origin::default(),
            ci: None,
            client: self.1.clone(),
        })
    }
}

/// The `npm-otp` header: a ticket from an approval, or the typed code shown after the tap.
pub fn otp(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers.get("npm-otp").and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// The bearer credential in `Authorization`, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    bearer_in(&parts.headers)
}

/// The bearer credential in these headers, if any.
pub fn bearer_in(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    #[instrument(skip_all, fields(token_id))]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(token) = bearer(parts) else {
            return Err(ApiError::unauthorized(
                "this needs an API token: send `Authorization: Bearer tg_api_…` (get one with `tapgate login`)",
            ));
        };
        if crate::secrets::has_prefix(token, crate::secrets::SecretKind::CiCredential) {
            return Err(ApiError::unauthorized(
                "a CI credential only asks for deploy keys and publishes with them; this needs a maintainer's API token",
            ));
        }
        if crate::secrets::has_prefix(token, crate::secrets::SecretKind::OidcToken) {
            return Err(ApiError::unauthorized(
                "an OIDC token only publishes the package it was exchanged for; this needs a maintainer's API token",
            ));
        }
        match state.store.authenticate_token(token, state.now()).await? {
            Some(auth) => {
                tracing::Span::current().record("token_id", auth.token_id.as_str());
                if let Some(slot) = parts.extensions.get::<crate::observe::RequestUser>() {
                    slot.set(&auth.username);
                }
                Ok(AuthUser(auth, crate::extract::client_info(parts)))
            }
            None => Err(ApiError::unauthorized(
                "the API token is unknown, expired or revoked: sign in again with `tapgate login`",
            )),
        }
    }
}

/// Like [`AuthUser`] but absent credentials are not an error.
#[derive(Debug, Clone)]
pub struct MaybeAuthUser(pub Option<AuthUser>);

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = ApiError;

    #[instrument(skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if bearer(parts).is_none() {
            return Ok(MaybeAuthUser(None));
        }
        AuthUser::from_request_parts(parts, state).await.map(|u| MaybeAuthUser(Some(u)))
    }
}

/// A request authenticated by a CI credential (`tg_ci_…`): it may ask for deploy keys, and
/// publish its package with them, nothing else.
#[derive(Debug, Clone)]
pub struct CiPrincipal(pub crate::store::ci::CiCredential);

impl CiPrincipal {
    /// The maintainer who created the credential, acting through it.
    pub async fn actor(&self, state: &AppState) -> Result<crate::changes::Actor, ApiError> {
        let user =
            state.store.user_by_id(&self.0.created_by).await?.filter(|u| !u.disabled).ok_or_else(|| {
                ApiError::unauthorized("the account that created this CI credential is disabled")
            })?;
        Ok(crate::changes::Actor {
            user,
            admin: false,
            origin: crate::gate::Origin::default(),
            ci: Some(crate::changes::CiActor::Credential(self.0.id.clone())),
            client: crate::client_info::ClientInfo::unknown(),
        })
    }
}

impl FromRequestParts<AppState> for CiPrincipal {
    type Rejection = ApiError;

    #[instrument(skip_all, fields(credential_id))]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(secret) = bearer(parts) else {
            return Err(ApiError::unauthorized(
                "this needs a CI credential: send `Authorization: Bearer tg_ci_…` (TAPGATE_CI_TOKEN)",
            ));
        };
        let credential = crate::changes::ci::authenticate(state, secret).await?;
        tracing::Span::current().record("credential_id", credential.id.as_str());
        Ok(CiPrincipal(credential))
    }
}

/// A request authenticated by a registry token an OIDC exchange answered (`tg_oidc_…`): it
/// publishes (or, where its trust allows, stages) its one package, once, nothing else. Whether
/// it is still usable (unspent, unexpired, its trust in force) is the gate's to decide, so that
/// a refused one counts as a failed attempt on the package.
#[derive(Debug, Clone)]
pub struct OidcPrincipal(pub crate::store::oidc::OidcTokenRow, pub ClientInfo);

impl OidcPrincipal {
    /// The maintainer who created the trust, acting through it.
    pub async fn actor(&self, state: &AppState) -> Result<crate::changes::Actor, ApiError> {
        let trust =
            state.store.trust(&self.0.trust_id).await?.ok_or_else(|| {
                ApiError::unauthorized("the trust this OIDC token was exchanged under is gone")
            })?;
        let user =
            state.store.user_by_id(&trust.created_by).await?.filter(|u| !u.disabled).ok_or_else(|| {
                ApiError::unauthorized("the account that created this OIDC token's trust is disabled")
            })?;
        Ok(crate::changes::Actor {
            user,
            admin: false,
            origin: crate::gate::Origin::default(),
            ci: Some(crate::changes::CiActor::Oidc(crate::changes::OidcActor {
                token_hash: self.0.hash.clone(),
                trust_id: self.0.trust_id.clone(),
                package: self.0.package.clone(),
                permissions: self.0.permission_list(),
            })),
            client: self.1.clone(),
        })
    }
}

impl FromRequestParts<AppState> for OidcPrincipal {
    type Rejection = ApiError;

    #[instrument(skip_all, fields(trust_id))]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let unknown = || {
            ApiError::from(crate::gate::GateError::Oidc(
                crate::oidc::OidcFailure::Invalid,
                "the OIDC token is unknown (or expired long ago): exchange the CI's ID token again".into(),
            ))
        };
        let token =
            bearer(parts).filter(|t| crate::secrets::has_prefix(t, crate::secrets::SecretKind::OidcToken));
        let Some(token) = token else { return Err(unknown()) };
        let row = state.store.oidc_token(&crate::secrets::hash(token)).await?.ok_or_else(unknown)?;
        tracing::Span::current().record("trust_id", row.trust_id.as_str());
        Ok(OidcPrincipal(row, crate::extract::client_info(parts)))
    }
}

/// Who publishes: a user's API token, a CI credential (its package only, with a deploy key it
/// obtained), or an OIDC registry token (its package only, once).
#[derive(Debug, Clone)]
pub enum Publisher {
    User(AuthUser),
    Ci(CiPrincipal),
    Oidc(OidcPrincipal),
}

impl Publisher {
    /// The actor for the gate; a user's token must carry the publish scope.
    pub async fn actor(&self, state: &AppState) -> Result<crate::changes::Actor, ApiError> {
        match self {
            Publisher::User(user) => {
                user.require(Scope::Publish)?;
                user.actor(state).await
            }
            Publisher::Ci(ci) => ci.actor(state).await,
            Publisher::Oidc(oidc) => oidc.actor(state).await,
        }
    }
}

impl FromRequestParts<AppState> for Publisher {
    type Rejection = ApiError;

    #[instrument(skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if bearer(parts)
            .is_some_and(|t| crate::secrets::has_prefix(t, crate::secrets::SecretKind::CiCredential))
        {
            return CiPrincipal::from_request_parts(parts, state).await.map(Publisher::Ci);
        }
        if bearer(parts).is_some_and(|t| crate::secrets::has_prefix(t, crate::secrets::SecretKind::OidcToken))
        {
            return OidcPrincipal::from_request_parts(parts, state).await.map(Publisher::Oidc);
        }
        AuthUser::from_request_parts(parts, state).await.map(Publisher::User)
    }
}
