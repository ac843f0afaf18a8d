//! Trusted publishing (OIDC): the issuers the operator trusts ([`issuers`]), and the exchange of
//! a CI's ID token for a short-lived registry token that publishes one package ([`exchange`]).
//! The token is then evidence of the one gate ([`crate::gate::oidc`]), spent by the publish it
//! makes. Domain code: no HTTP here.

pub mod exchange;
pub mod issuers;

pub use issuers::{Issuer, IssuerKind, KeyError, OidcConfig};
use tapgate_shared::ErrorCode;

/// Why an OIDC token was refused: each has its own stable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OidcFailure {
    /// Malformed, a refused algorithm, an unknown key, a bad signature, a missing claim, or a
    /// `tg_oidc_` token that is unknown or spent.
    Invalid,
    /// `iss` is not an issuer the operator trusts.
    Untrusted,
    /// `aud` is not `npm:<registry host>`.
    Audience,
    /// Past `exp` (or the registry token's few minutes).
    Expired,
    /// Before `nbf`, or `iat` in the future.
    NotYetValid,
    /// The claims match no trust of the package.
    NoTrust,
    /// The `jti` was exchanged already.
    Replayed,
    /// The issuer's documents cannot be fetched (not the token's fault: not counted).
    IssuerUnavailable,
}

impl OidcFailure {
    pub fn code(self) -> ErrorCode {
        match self {
            Self::Invalid => ErrorCode::InvalidOidcToken,
            Self::Untrusted => ErrorCode::OidcIssuerUntrusted,
            Self::Audience => ErrorCode::OidcWrongAudience,
            Self::Expired => ErrorCode::OidcTokenExpired,
            Self::NotYetValid => ErrorCode::OidcTokenNotYetValid,
            Self::NoTrust => ErrorCode::OidcNoMatchingTrust,
            Self::Replayed => ErrorCode::OidcTokenReplayed,
            Self::IssuerUnavailable => ErrorCode::OidcIssuerUnavailable,
        }
    }
}

/// Allowed difference between the issuer's clock and this registry's, in seconds.
pub const SKEW_SECONDS: i64 = 60;
/// How long a registry token from an exchange may be used.
pub const TOKEN_TTL_SECONDS: i64 = 300;

/// The host name ID tokens for this registry are minted for (`aud` is `npm:` and it), as npm
/// computes it: the registry URL's host name, without port.
pub fn audience(origin: &url::Url) -> String {
    tapgate_shared::oidc::audience_for(origin.host_str().unwrap_or_default())
}
