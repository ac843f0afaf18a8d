//! CI without codes: CI credentials, the deploy keys they are traded for, and the registry's
//! signing keys that make a deploy key verifiable offline.
//!
//! A deploy key is `tg_dk_` + base64url(JSON payload) + `.` + base64url(Ed25519 signature), the
//! signature made by the registry's signing key `kid` over
//! `"tapgate-deploy-key-v1." || base64url(JSON payload)` (the payload as sent, byte for byte).
//! The payload names exactly one publish (package, version, tarball integrity, dist-tags), the
//! CI credential that asked for it, the approval (a maintainer's tap) that created that
//! credential, when it was issued and until when it may be used, and a random nonce.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// What every deploy key starts with.
pub const DEPLOY_KEY_PREFIX: &str = "tg_dk_";
/// What every CI credential starts with.
pub const CI_CREDENTIAL_PREFIX: &str = "tg_ci_";
/// Domain separation of what a deploy key's signature covers.
pub const DEPLOY_KEY_DOMAIN: &[u8] = b"tapgate-deploy-key-v1.";
/// The payload format this code writes and reads.
pub const DEPLOY_KEY_FORMAT: u32 = 1;
/// Longest deploy key accepted, in bytes.
pub const MAX_DEPLOY_KEY_LEN: usize = 4096;

/// `POST /api/v1/ci/credentials` (with the ticket of a maintainer's tap on the repeat): let CI
/// ask for deploy keys for `package` within this scope. The client chooses the id and the
/// absolute expiry, so that repeating the request with the ticket names the same change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCiCredential {
    /// `ci_` and 20 lowercase hex digits.
    pub id: String,
    pub package: String,
    /// A label, e.g. "GitHub Actions release.yml".
    pub name: String,
    /// An npm version range (`^1.2.0`, `1.x`, `*`, `>=1.0.0 <2.0.0`, `||`).
    pub versions: String,
    /// The dist-tags a deploy may set.
    pub tags: Vec<String>,
    /// RFC 3339, UTC, whole seconds (`2027-01-01T00:00:00Z`).
    pub expires_at: String,
    /// Client addresses CI may ask from (`203.0.113.0/24`, `2001:db8::/32`); any when empty.
    #[serde(default)]
    pub cidrs: Vec<String>,
}

/// A CI credential as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiCredentialInfo {
    pub id: String,
    pub package: String,
    pub name: String,
    pub versions: String,
    pub tags: Vec<String>,
    pub cidrs: Vec<String>,
    pub expires_at: String,
    pub created_by: String,
    pub created_at: String,
    /// The approval (a maintainer's tap) whose intent is this scope.
    pub approval_id: String,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

/// The answer to a created credential: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCiCredential {
    pub credential: String,
    #[serde(flatten)]
    pub info: CiCredentialInfo,
}

/// `GET /api/v1/ci/credentials?package=NAME`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiCredentialList {
    pub credentials: Vec<CiCredentialInfo>,
}

/// `POST /api/v1/ci/deploy-keys` (Bearer: the CI credential): the one publish CI is about to
/// make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployKeyRequest {
    pub package: String,
    pub version: String,
    /// The tarball's SHA-512 SRI (`sha512-…`).
    pub integrity: String,
    /// The dist-tags the publish sets (npm sets `latest` unless told `--tag`).
    pub tags: Vec<String>,
}

/// A deploy key, with its payload for convenience.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedDeployKey {
    pub deploy_key: String,
    pub payload: DeployKeyPayload,
}

/// What a deploy key says. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployKeyPayload {
    /// Payload format ([`DEPLOY_KEY_FORMAT`]).
    pub v: u32,
    /// The registry signing key that signed it.
    pub kid: String,
    pub package: String,
    pub version: String,
    pub integrity: String,
    /// Sorted, without duplicates.
    pub tags: Vec<String>,
    pub credential_id: String,
    /// The approval (maintainer tap) that created the credential.
    pub approval_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// base64url, 32 random bytes.
    pub nonce: String,
}

/// A deploy key taken apart. Nothing in it is trusted before [`DeployKey::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployKey {
    pub payload: DeployKeyPayload,
    payload_b64: String,
    signature: [u8; 64],
}

impl DeployKey {
    /// What the signature covers for a payload as encoded.
    pub fn signing_input(payload_b64: &str) -> Vec<u8> {
        let mut input = DEPLOY_KEY_DOMAIN.to_vec();
        input.extend_from_slice(payload_b64.as_bytes());
        input
    }

    /// The payload's encoding (what [`DeployKey::signing_input`] takes).
    pub fn encode_payload(payload: &DeployKeyPayload) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).unwrap_or_default())
    }

    /// The deploy key's text from an encoded payload and its signature.
    pub fn assemble(payload_b64: &str, signature: &[u8; 64]) -> String {
        format!("{DEPLOY_KEY_PREFIX}{payload_b64}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// Reads a deploy key's text; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<DeployKey, String> {
        let text = text.trim();
        if text.len() > MAX_DEPLOY_KEY_LEN {
            return Err("the deploy key is too long to be one".into());
        }
        let body = text.strip_prefix(DEPLOY_KEY_PREFIX).ok_or("a deploy key starts with tg_dk_")?;
        let (payload_b64, signature_b64) =
            body.split_once('.').ok_or("a deploy key is tg_dk_PAYLOAD.SIGNATURE")?;
        let json =
            URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| "the deploy key's payload is not base64url")?;
        let payload: DeployKeyPayload = serde_json::from_slice(&json)
            .map_err(|e| format!("the deploy key's payload is unreadable: {e}"))?;
        if payload.v != DEPLOY_KEY_FORMAT {
            return Err(format!(
                "the deploy key is in format {}, which this tapgate does not read",
                payload.v
            ));
        }
        let signature: [u8; 64] = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or("the deploy key's signature is not 64 bytes of base64url")?;
        Ok(DeployKey { payload, payload_b64: payload_b64.to_string(), signature })
    }

    /// Whether the signature verifies with this Ed25519 public key (32 bytes).
    pub fn verify(&self, public_key: &[u8]) -> bool {
        let Ok(bytes) = <[u8; 32]>::try_from(public_key) else { return false };
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&bytes) else { return false };
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature);
        key.verify_strict(&Self::signing_input(&self.payload_b64), &signature).is_ok()
    }

    /// The text form again.
    pub fn text(&self) -> String {
        Self::assemble(&self.payload_b64, &self.signature)
    }
}

/// One of the registry's signing keys, as `GET /.well-known/tapgate-keys` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerKey {
    pub kid: String,
    /// `EdDSA` (Ed25519).
    pub alg: String,
    /// The raw 32-byte Ed25519 public key, base64url.
    pub public_key: String,
    /// Unix seconds: the key signs from `not_before` until `not_after` (open while current).
    pub not_before: i64,
    pub not_after: Option<i64>,
}

impl ServerKey {
    /// Whether the key was in force at `at`.
    pub fn valid_at(&self, at: i64) -> bool {
        self.not_before <= at && self.not_after.is_none_or(|end| at <= end)
    }

    pub fn public_key_bytes(&self) -> Option<Vec<u8>> {
        URL_SAFE_NO_PAD.decode(&self.public_key).ok().filter(|k| k.len() == 32)
    }
}

/// `GET /.well-known/tapgate-keys`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerKeys {
    pub keys: Vec<ServerKey>,
}

/// Unix seconds of an RFC 3339 UTC time written `YYYY-MM-DDTHH:MM:SSZ` (the form CI
/// credentials' expiries take).
pub fn parse_utc(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.chars().all(|c| c.is_ascii_digit()).then(|| s.parse().ok()).flatten()
    };
    let (y, m, d, hh, mm, ss) =
        (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&m)
        || d < 1
        || d > days_in_month[usize::try_from(m - 1).ok()?]
        || hh > 23
        || mm > 59
        || ss > 59
    {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// The RFC 3339 UTC form (`YYYY-MM-DDTHH:MM:SSZ`) of Unix seconds; the inverse of [`parse_utc`].
pub fn format_utc(at: i64) -> String {
    let (days, secs) = (at.div_euclid(86_400), at.rem_euclid(86_400));
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_parse() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_utc("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(parse_utc("2026-11-25T17:11:09Z"), Some(1_795_626_669));
        for t in [0, 951_868_800, 1_795_626_669, 4_102_444_799, 1_709_164_800] {
            assert_eq!(parse_utc(&format_utc(t)), Some(t), "{}", format_utc(t));
        }
        assert_eq!(format_utc(1_709_164_800), "2024-02-29T00:00:00Z");
        for bad in ["2026-02-30T00:00:00Z", "2026-11-25T17:11:09+01:00", "2026-11-25 17:11:09Z", "x"] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }

    #[test]
    fn deploy_keys_round_trip_and_bad_ones_say_why() {
        let payload = DeployKeyPayload {
            v: 1,
            kid: "k".into(),
            package: "p".into(),
            version: "1.0.0".into(),
            integrity: "sha512-x".into(),
            tags: vec!["latest".into()],
            credential_id: "ci_1".into(),
            approval_id: "apr_1".into(),
            issued_at: 1,
            expires_at: 2,
            nonce: "n".into(),
        };
        let b64 = DeployKey::encode_payload(&payload);
        let text = DeployKey::assemble(&b64, &[7u8; 64]);
        let parsed = DeployKey::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.payload, payload);
        assert_eq!(parsed.text(), text);
        assert!(!parsed.verify(&[0u8; 32]));
        assert!(DeployKey::parse("tg_api_x").is_err());
        assert!(DeployKey::parse(&format!("{DEPLOY_KEY_PREFIX}{b64}")).is_err());
    }
}
