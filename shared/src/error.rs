//! The error envelope every tapgate endpoint answers with: `{"error": {"code", "message"}}`.
//!
//! Codes are stable identifiers for scripts; messages are sentences for people and may change.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A stable, machine-readable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request body or a parameter is malformed.
    BadRequest,
    /// The body is not valid JSON, or not the JSON shape the endpoint expects.
    InvalidJson,
    /// The body's content type is not the one the endpoint accepts.
    UnsupportedMediaType,
    /// The body exceeds the size limit.
    PayloadTooLarge,
    /// No such route or resource.
    NotFound,
    /// The route exists but not for this HTTP method.
    MethodNotAllowed,
    /// No credentials, or credentials that are not valid.
    Unauthorized,
    /// Valid credentials without the right to do this.
    Forbidden,
    /// The resource already exists or changed concurrently.
    Conflict,
    /// An invalid name (user, package, key).
    InvalidName,
    /// An invite token that is unknown, expired or already used.
    InvalidInvite,
    /// A WebAuthn ceremony id that is unknown, expired or already finished.
    CeremonyExpired,
    /// A WebAuthn response that does not verify.
    WebauthnFailed,
    /// The security key is already enrolled.
    KeyAlreadyEnrolled,
    /// The key's signature counter went backwards: the key may be cloned.
    CounterRegression,
    /// The registry demands a second factor (npm's EOTP).
    OtpRequired,
    /// The operation needs a recent sign-in with a security key (`tapgate login`).
    ReauthenticationRequired,
    /// A publish ticket that is unknown, used, expired or for another tarball.
    InvalidTicket,
    /// An approval that is unknown, expired, or already used.
    ApprovalExpired,
    /// The package or version does not exist.
    PackageNotFound,
    /// The version is already published.
    VersionExists,
    /// The tarball does not match the integrity or length declared for it.
    IntegrityMismatch,
    /// The tarball could be read differently by different tar readers (npm among them): two
    /// package.json files, links, data after its end, extended headers that rename entries…
    AmbiguousTarball,
    /// The package is locked after repeated failed attempts.
    PackageLocked,
    /// The package policy forbids this.
    PolicyViolation,
    /// A deploy key that is forged, expired, used, revoked, or for another publish.
    InvalidDeployKey,
    /// A CI credential asked for something outside its scope (package, versions, tags, address).
    OutsideCiScope,
    /// No staged release with this id, or not one of your packages'.
    StageNotFound,
    /// The staged release was already published, rejected, superseded, or it expired.
    StageClosed,
    /// The package has as many staged releases waiting as it may.
    TooManyStages,
    /// An OIDC ID token that is malformed, signed with an algorithm other than RS256/ES256, or
    /// whose signature does not verify with its issuer's published keys.
    InvalidOidcToken,
    /// An ID token whose issuer (`iss`) this registry's operator does not trust.
    OidcIssuerUntrusted,
    /// An ID token whose audience (`aud`) is not `npm:<this registry's host>`.
    OidcWrongAudience,
    /// An ID token past its expiry (`exp`), or a `tg_oidc_` token past its few minutes.
    OidcTokenExpired,
    /// An ID token not valid yet (`nbf`, or `iat` in the future).
    OidcTokenNotYetValid,
    /// An ID token whose claims match no trust of the package (another repository, workflow,
    /// environment, subject, or another package).
    OidcNoMatchingTrust,
    /// An ID token (its `jti`) that was exchanged already.
    OidcTokenReplayed,
    /// The issuer's discovery document or keys cannot be fetched.
    OidcIssuerUnavailable,
    /// A dependency of the server (the database) is unavailable.
    Unavailable,
    /// The upstream registry (`--upstream`) cannot be reached, timed out, or failed.
    UpstreamUnavailable,
    /// The upstream registry's answer is malformed, too large, or about another package.
    UpstreamInvalid,
    /// An upstream tarball's SHA-512 differs from the `dist.integrity` the upstream declares.
    UpstreamIntegrityMismatch,
    /// Too many requests.
    RateLimited,
    /// The request took longer than the server allows (a stalled or very slow upload).
    RequestTimeout,
    /// Something went wrong inside the server; the details are in its log.
    Internal,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::InvalidJson => "invalid_json",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::Conflict => "conflict",
            Self::InvalidName => "invalid_name",
            Self::InvalidInvite => "invalid_invite",
            Self::CeremonyExpired => "ceremony_expired",
            Self::WebauthnFailed => "webauthn_failed",
            Self::KeyAlreadyEnrolled => "key_already_enrolled",
            Self::CounterRegression => "counter_regression",
            Self::OtpRequired => "otp_required",
            Self::ReauthenticationRequired => "reauthentication_required",
            Self::InvalidTicket => "invalid_ticket",
            Self::ApprovalExpired => "approval_expired",
            Self::PackageNotFound => "package_not_found",
            Self::VersionExists => "version_exists",
            Self::IntegrityMismatch => "integrity_mismatch",
            Self::AmbiguousTarball => "ambiguous_tarball",
            Self::PackageLocked => "package_locked",
            Self::PolicyViolation => "policy_violation",
            Self::InvalidDeployKey => "invalid_deploy_key",
            Self::OutsideCiScope => "outside_ci_scope",
            Self::StageNotFound => "stage_not_found",
            Self::StageClosed => "stage_closed",
            Self::TooManyStages => "too_many_stages",
            Self::InvalidOidcToken => "invalid_oidc_token",
            Self::OidcIssuerUntrusted => "oidc_issuer_untrusted",
            Self::OidcWrongAudience => "oidc_wrong_audience",
            Self::OidcTokenExpired => "oidc_token_expired",
            Self::OidcTokenNotYetValid => "oidc_token_not_yet_valid",
            Self::OidcNoMatchingTrust => "oidc_no_matching_trust",
            Self::OidcTokenReplayed => "oidc_token_replayed",
            Self::OidcIssuerUnavailable => "oidc_issuer_unavailable",
            Self::Unavailable => "unavailable",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::UpstreamInvalid => "upstream_invalid",
            Self::UpstreamIntegrityMismatch => "upstream_integrity_mismatch",
            Self::RateLimited => "rate_limited",
            Self::RequestTimeout => "request_timeout",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"error": {...}}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// The inside of the envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorEnvelope {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { error: ErrorBody { code, message: message.into() } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_their_wire_names() {
        for code in [
            ErrorCode::InvalidJson,
            ErrorCode::CounterRegression,
            ErrorCode::AmbiguousTarball,
            ErrorCode::Internal,
        ] {
            let json = serde_json::to_string(&code).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn envelope_shape() {
        let env = ErrorEnvelope::new(ErrorCode::NotFound, "no such thing");
        let v = serde_json::to_value(&env).unwrap_or_default();
        assert_eq!(v["error"]["code"], "not_found");
        assert_eq!(v["error"]["message"], "no such thing");
    }
}
