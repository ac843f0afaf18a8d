//! Trusted publishing (OIDC): the trusts maintainers create (npm's `npm trust` shapes), the ID
//! tokens CI presents, the issuers' keys that sign them, and the registry's signed statement
//! that an ID token published a version.
//!
//! One implementation of the ID-token checks (signature, claims) serves the registry, which
//! decides with it, and `tapgate verify`, which re-checks the decision offline: they cannot read
//! a token differently.

pub mod claims;
pub mod jwt;
pub mod statement;

use serde::{Deserialize, Serialize};

pub use claims::{ClaimsError, match_claims, validate_claims};
pub use jwt::{IdToken, Jwk, Jwks, JwtError};
pub use statement::{OIDC_PUBLISH_DOMAIN, OidcPublish, OidcPublishPayload};

/// What every short-lived registry token obtained by an OIDC exchange starts with.
pub const OIDC_TOKEN_PREFIX: &str = "tg_oidc_";

/// npm's permission names: a trust lets CI publish, stage, or both.
pub const PERMISSION_PUBLISH: &str = "createPackage";
pub const PERMISSION_STAGE: &str = "createStagedPackage";

/// The audience an ID token for this registry must carry, as npm asks GitHub for it:
/// `npm:` and the registry URL's host name (without port).
pub fn audience_for(registry_host: &str) -> String {
    format!("npm:{registry_host}")
}

/// One trusted publisher configuration as npm sends it (`POST /-/package/<name>/trust` takes an
/// array of these) and as the registry lists it (then with `id` and tapgate's own fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `github`, `gitlab`, `circleci` (npm's providers), or the name an operator gave an issuer.
    #[serde(rename = "type")]
    pub provider: String,
    /// Claim name → required value (a string; a list of strings the token's list must hold; or
    /// npm's `{"file": F}` for GitHub's `workflow_ref` and GitLab's `ci_config_ref_uri`).
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// [`PERMISSION_PUBLISH`] and/or [`PERMISSION_STAGE`]; npm sends them, publish when absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
    /// The issuer URL (`iss`); chosen by `type` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The id the client chose (`trust_` and 20 lowercase hex digits), so that the request
    /// repeated with the ticket names the same change; the registry picks one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "trustId")]
    pub trust_id: Option<String>,
    /// Set by the registry when listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "createdBy")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "createdAt")]
    pub created_at: Option<String>,
    /// The approval (the creating maintainer's tap): the first link of an OIDC publish's chain.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "approvalId")]
    pub approval_id: Option<String>,
}

/// An issuer the operator trusts, as `GET /-/npm/v1/oidc/issuers` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerInfo {
    pub name: String,
    pub issuer: String,
    /// `github`, `gitlab`, `circleci` or `generic`: which of npm's shortcuts map to it.
    pub kind: String,
    /// Claims every trust for this issuer must constrain.
    pub required_claims: Vec<String>,
}

/// `POST /-/npm/v1/oidc/token/exchange/package/<name>` answers this (npm reads `token`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangedToken {
    pub token: String,
    /// Unix seconds.
    #[serde(rename = "expiresAt")]
    pub expires_at: i64,
    pub package: String,
    #[serde(rename = "trustId")]
    pub trust_id: String,
    pub permissions: Vec<String>,
}

/// Whether `id` is a trust id: `trust_` and 20 lowercase hex digits.
pub fn is_trust_id(id: &str) -> bool {
    id.strip_prefix("trust_").is_some_and(|hex| {
        hex.len() == 20 && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}
