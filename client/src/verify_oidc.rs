//! Offline verification of a version CI published with an OIDC ID token. The chain is
//!
//! 1. a maintainer's tap over the trust's creation (`trust-create`: issuer, claims), checked like
//!    every tap against the verifier's keyring by [`crate::verify`];
//! 2. the registry's statement, signed with a key the verifier pinned (a saved copy of
//!    `/.well-known/tapgate-keys`), naming that trust, this version and its tarball;
//! 3. the ID token the statement carries: its signature re-checked with the issuer key the
//!    statement carries (reported as exactly that unless the verifier pinned the issuer's keys),
//!    its issuer the trust's, its audience this registry's, its claims meeting the trust's
//!    claims (the same matcher the registry uses), its validity covering the exchange;
//! 4. the tarball.
//!
//! So an edited trust, statement, token or tarball fails, and a registry alone cannot make a
//! publish look authorized by a trust the maintainer did not tap.

use tapgate_shared::api::ApprovalRecord;
use tapgate_shared::ci::ServerKeys;
use tapgate_shared::gate_intent::{Change, GateIntent};
use tapgate_shared::intent::sri_sha512;
use tapgate_shared::oidc::{IdToken, Jwk, OidcPublish, match_claims};

use crate::verify::Verification;

/// Seconds of clock difference allowed between the issuer and the registry (as the registry).
const SKEW_SECONDS: i64 = 60;
/// The longest a registry token from an exchange lives (as the registry).
const TOKEN_TTL_SECONDS: i64 = 300;

/// What the verifier brings to an OIDC publish's check.
#[derive(Debug, Clone, Default)]
pub struct OidcPins {
    /// The audience ID tokens for this registry carry: `npm:<registry host>`.
    pub audience: String,
    /// The issuer keys the verifier pinned (saved JWKS documents); `None`: not pinned.
    pub issuer_keys: Option<Vec<Jwk>>,
}

fn signed_by_pinned_key(s: &OidcPublish, pinned: &ServerKeys) -> Result<String, String> {
    if pinned.keys.is_empty() {
        return Err(
            "you pinned no registry signing keys: save the registry's /.well-known/tapgate-keys once, \
                    check it, and pass it with --server-key FILE"
                .into(),
        );
    }
    let p = &s.payload;
    let signer = pinned
        .keys
        .iter()
        .filter(|k| k.kid == p.kid && k.alg == "EdDSA")
        .find(|k| k.public_key_bytes().is_some_and(|pk| s.verify(&pk)))
        .ok_or_else(|| {
            format!("the statement's signature does not verify with a pinned registry key {:?}", p.kid)
        })?;
    if !signer.valid_at(p.published_at) {
        return Err(format!("the statement was signed outside the period of the key {:?}", p.kid));
    }
    Ok(format!("signed by the registry key {} you pinned", p.kid))
}

/// The trust the record's tap approved, if that is what it approved.
fn tapped_trust<'a>(record: &'a ApprovalRecord, package: &str) -> Result<&'a GateIntent, String> {
    match &record.gate_intent {
        Some(intent @ GateIntent { subject, change: Change::TrustCreate { .. }, .. })
            if subject == package =>
        {
            Ok(intent)
        }
        Some(GateIntent { subject, change: Change::TrustCreate { .. }, .. }) => {
            Err(format!("the tapped trust is for {subject}, not {package}"))
        }
        Some(other) => Err(format!("the record's tap approves another change: {}", other.describe())),
        None => Err("the record holds no trust approval".into()),
    }
}

/// Adds the OIDC chain's checks to `v` (the tap's are added by the caller).
#[allow(clippy::too_many_arguments)]
pub fn check(
    v: &mut Verification,
    record: &ApprovalRecord,
    package: &str,
    version: &str,
    tarball: &[u8],
    published_integrity: &str,
    pinned: &ServerKeys,
    pins: &OidcPins,
) {
    let statement = match OidcPublish::parse(record.oidc_publish.as_deref().unwrap_or_default()) {
        Ok(s) => s,
        Err(e) => {
            v.push("the OIDC publish statement is readable", Err(e));
            return;
        }
    };
    let p = &statement.payload;
    v.push("the statement is signed by a registry key you pinned", signed_by_pinned_key(&statement, pinned));
    v.push(
        "the statement names this version",
        if p.package == package && p.version == version {
            Ok(format!("{package}@{version}, dist-tags {}", p.tags.join(", ")))
        } else {
            Err(format!("the statement is for {}@{}", p.package, p.version))
        },
    );
    let actual = sri_sha512(tarball);
    v.push(
        "tarball matches the statement's integrity",
        if actual == p.integrity && actual == published_integrity {
            Ok(actual.clone())
        } else {
            Err(format!(
                "tarball is {actual}, statement says {}, registry publishes {published_integrity}",
                p.integrity
            ))
        },
    );
    let trust = tapped_trust(record, package);
    let trust = match trust {
        Ok(GateIntent {
            change: Change::TrustCreate { trust_id, issuer, claims, permissions, .. },
            requested_by,
            ..
        }) if *trust_id == p.trust_id && *issuer == p.issuer => {
            v.push(
                "the tap approved the trust the statement names",
                Ok(format!(
                    "trust {trust_id} for {issuer} created by {requested_by}, permissions {}",
                    permissions.join(", ")
                )),
            );
            Some((issuer.clone(), claims.clone(), permissions.clone()))
        }
        Ok(_) => {
            v.push(
                "the tap approved the trust the statement names",
                Err(format!("the statement names the trust {} of {}, the tap another", p.trust_id, p.issuer)),
            );
            None
        }
        Err(e) => {
            v.push("the tap approved the trust the statement names", Err(e));
            None
        }
    };
    if let Some((_, _, permissions)) = &trust {
        v.push(
            "the trust lets CI publish",
            if permissions.iter().any(|x| x == tapgate_shared::oidc::PERMISSION_PUBLISH) {
                Ok("createPackage".into())
            } else {
                Err("the tapped trust does not allow publishing".into())
            },
        );
    }
    let token = match IdToken::parse(&p.id_token) {
        Ok(t) => t,
        Err(e) => {
            v.push("the ID token is readable", Err(e.to_string()));
            return;
        }
    };
    v.push(
        "the ID token's signature verifies with the issuer key in the statement",
        match (token.kid.as_deref() == p.jwk.kid.as_deref(), token.verify(&p.jwk)) {
            (true, Ok(())) => Ok(format!("{} key {:?}", token.alg, p.jwk.kid.as_deref().unwrap_or_default())),
            (false, _) => Err("the ID token names another key than the statement's".into()),
            (_, Err(e)) => Err(e.to_string()),
        },
    );
    v.push(
        "the issuer's key is one you trust",
        match &pins.issuer_keys {
            Some(keys) if keys.iter().any(|k| k.same_key(&p.jwk)) => Ok(format!("{} pinned by you", p.jwk.thumbprint())),
            Some(_) => Err(format!("the issuer key {} is not among the issuer keys you pinned", p.jwk.thumbprint())),
            None => Ok(format!(
                "not pinned: the key (thumbprint {}) is the one the registry recorded from {}; pass --issuer-keys FILE \
                 (a saved JWKS) to check that the issuer signed it",
                p.jwk.thumbprint(),
                p.issuer
            )),
        },
    );
    let iss = token.str_claim("iss").unwrap_or_default();
    v.push(
        "the ID token is the trust's issuer's, for this registry",
        if iss != p.issuer {
            Err(format!("the ID token's issuer is {iss:?}, the statement's {}", p.issuer))
        } else if p.audience != pins.audience || !token.has_audience(&pins.audience) {
            Err(format!("the ID token is not for this registry's audience {:?}", pins.audience))
        } else {
            Ok(format!("iss {iss}, aud {}", pins.audience))
        },
    );
    if let Some((issuer, claims, _)) = &trust {
        let required: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(claims).unwrap_or_default();
        v.push(
            "the ID token's claims meet the tapped trust",
            if required.is_empty() {
                Err("the tapped trust's claims are unreadable or empty".into())
            } else {
                match_claims(issuer, &required, &token.claims).map(|()| claims.clone())
            },
        );
    }
    let (iat, exp) =
        (token.time_claim("iat").unwrap_or(i64::MAX), token.time_claim("exp").unwrap_or(i64::MIN));
    v.push(
        "the ID token was valid when it was exchanged",
        if p.exchanged_at + SKEW_SECONDS < iat || p.exchanged_at > exp + SKEW_SECONDS {
            Err(format!("exchanged at {}, the token is valid from {iat} to {exp}", p.exchanged_at))
        } else if p.published_at < p.exchanged_at || p.published_at > p.exchanged_at + TOKEN_TTL_SECONDS {
            Err(format!(
                "published at {}, more than minutes after the exchange at {}",
                p.published_at, p.exchanged_at
            ))
        } else {
            Ok(format!(
                "issued {iat}, expires {exp}, exchanged {}, published {}",
                p.exchanged_at, p.published_at
            ))
        },
    );
}
