//! Offline verification of a published version's approval record: the challenge's commitment
//! to the intent, the tarball's integrity, and every tap's signature.
//!
//! Nothing here trusts the registry. Every value is recomputed from the record and the tarball
//! bytes, and a signature counts only when its credential id and public key are in the
//! verifier's keyring: it is checked with the keyring's key, and credited to the keyring's user.
//! The public keys the record carries are the registry's claim and are only compared.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use tapgate_shared::api::{ApprovalRecord, RecordSignature};
use tapgate_shared::ci::ServerKeys;
use tapgate_shared::gate_intent::{Change, GateIntent};
use tapgate_shared::intent::sri_sha512;
use tapgate_shared::public_key::PublicKey;
use webauthn_rs_core::proto::COSEKey;

use crate::keyring::Keyring;

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// Every check, and who approved according to the keyring.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    pub checks: Vec<Check>,
    /// The keyring's users whose trusted keys signed, each once, in the record's order.
    pub approved_by: Vec<String>,
}

impl Verification {
    /// Whether every check passed and at least one trusted key approved.
    pub fn ok(&self) -> bool {
        !self.approved_by.is_empty() && self.checks.iter().all(|c| c.ok)
    }

    /// Records a check's outcome.
    pub(crate) fn push(&mut self, name: impl Into<String>, result: Result<String, String>) {
        self.check(name, result);
    }

    fn check(&mut self, name: impl Into<String>, result: Result<String, String>) {
        let (ok, detail) = match result {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        self.checks.push(Check { name: name.into(), ok, detail });
    }
}

fn decode(field: &str, value: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD.decode(value).map_err(|e| format!("{field} is not base64url: {e}"))
}

/// Verifies `record` for `package@version` against the tarball bytes, the integrity the
/// registry publishes for it, and the keys `keyring` trusts.
pub fn verify_record(
    record: &ApprovalRecord,
    package: &str,
    version: &str,
    tarball: &[u8],
    published_integrity: &str,
    keyring: &Keyring,
) -> Verification {
    verify_record_with(
        record,
        package,
        version,
        tarball,
        published_integrity,
        keyring,
        &ServerKeys::default(),
    )
}

/// [`verify_record`], also for versions CI published with a deploy key: its signature is
/// checked with the registry keys the verifier pinned (`server_keys`), and the tap in the record
/// must be the one that created the CI credential it names, over a scope that covers it.
pub fn verify_record_with(
    record: &ApprovalRecord,
    package: &str,
    version: &str,
    tarball: &[u8],
    published_integrity: &str,
    keyring: &Keyring,
    server_keys: &ServerKeys,
) -> Verification {
    let pins = crate::verify_oidc::OidcPins::default();
    verify_record_oidc(record, package, version, tarball, published_integrity, keyring, server_keys, &pins)
}

/// [`verify_record_with`], also for versions CI published with an OIDC ID token: the
/// registry's statement is checked with `server_keys`, the ID token with the issuer key it
/// carries (and the issuer keys `pins` holds, if any), against the trust the record's tap
/// created and this registry's audience.
#[allow(clippy::too_many_arguments)]
pub fn verify_record_oidc(
    record: &ApprovalRecord,
    package: &str,
    version: &str,
    tarball: &[u8],
    published_integrity: &str,
    keyring: &Keyring,
    server_keys: &ServerKeys,
    pins: &crate::verify_oidc::OidcPins,
) -> Verification {
    let mut v = Verification { checks: Vec::new(), approved_by: Vec::new() };
    match (&record.deploy_key, &record.oidc_publish) {
        (Some(_), None) => crate::verify_chain::check(
            &mut v,
            record,
            package,
            version,
            tarball,
            published_integrity,
            server_keys,
        ),
        (None, Some(_)) => crate::verify_oidc::check(
            &mut v,
            record,
            package,
            version,
            tarball,
            published_integrity,
            server_keys,
            pins,
        ),
        (Some(_), Some(_)) => v.check(
            "the record holds one CI chain",
            Err("the record holds both a deploy key and an OIDC statement".into()),
        ),
        (None, None) => check_publish(&mut v, record, package, version, tarball, published_integrity),
    }
    check_taps(&mut v, record, keyring);
    v
}

/// The publish the record's tap approved is this version and this tarball.
fn check_publish(
    v: &mut Verification,
    record: &ApprovalRecord,
    package: &str,
    version: &str,
    tarball: &[u8],
    published_integrity: &str,
) {
    // What the key signed: format 2 records sign the gate intent (with the publish's tags),
    // format 1 records the publish-only intent. Either way the approved package, version and
    // integrity come from the signed intent, never from the record's other fields.
    let approved = approved_publish(record);
    v.check(
        "intent names this version",
        match &approved {
            Ok((p, ver, _, by)) if p == package && ver == version => {
                Ok(format!("{package}@{version} requested by {by}"))
            }
            Ok((p, ver, _, _)) => Err(format!("the record approves {p}@{ver}")),
            Err(e) => Err(e.clone()),
        },
    );

    let actual = sri_sha512(tarball);
    let approved_integrity = approved.as_ref().map(|(_, _, i, _)| i.clone()).unwrap_or_default();
    v.check(
        "tarball matches the approved integrity",
        if actual == approved_integrity && actual == published_integrity {
            Ok(actual.clone())
        } else {
            Err(format!(
                "tarball is {actual}, approval says {approved_integrity}, registry publishes {published_integrity}"
            ))
        },
    );
}

/// The challenge commits to the record's intent, and each tap signed it with a trusted key.
fn check_taps(v: &mut Verification, record: &ApprovalRecord, keyring: &Keyring) {
    let challenge = (|| {
        let nonce: [u8; 32] =
            decode("nonce", &record.nonce)?.try_into().map_err(|_| "nonce is not 32 bytes".to_string())?;
        let expected = match (&record.format, &record.gate_intent) {
            (2, Some(intent)) => intent.challenge(&nonce),
            (1, None) => record.intent.challenge(&nonce),
            (format, _) => return Err(format!("record format {format} is unknown or inconsistent")),
        };
        let stated = decode("challenge", &record.challenge)?;
        if stated != expected {
            return Err("the challenge does not commit to this intent and nonce".to_string());
        }
        Ok(expected)
    })();
    v.check(
        "challenge commits to the intent",
        challenge.as_ref().map(|c| URL_SAFE_NO_PAD.encode(c)).map_err(Clone::clone),
    );

    let taps = taps(record);
    if !record.signatures.is_empty() {
        v.check("the record's summary repeats its first tap", summary_matches(record));
    }
    if taps.is_empty() {
        v.check("the record holds a tap", Err("the record holds no signature".into()));
    }
    for (i, tap) in taps.iter().enumerate() {
        let label =
            if taps.len() == 1 { String::new() } else { format!(" (tap {} of {})", i + 1, taps.len()) };
        check_tap(v, record, tap, challenge.as_ref().ok(), keyring, &label);
    }
    let needed = approvals_needed(record);
    if needed > 1 {
        let got = v.approved_by.len();
        v.check(
            "enough distinct people approved with keys you trust",
            if got >= needed {
                Ok(format!(
                    "{got} of the {needed} approvals the policy in force requires ({})",
                    v.approved_by.join(", ")
                ))
            } else {
                Err(format!(
                    "the policy in force requires {needed} approvals by distinct maintainers, but only {got} \
                     signed with keys you trust{}",
                    if got == 0 { String::new() } else { format!(" ({})", v.approved_by.join(", ")) }
                ))
            },
        );
    }
}

/// How many distinct people must have approved: what the policy in force when the change was
/// approved asks (and what the registry says it demanded, if more).
fn approvals_needed(record: &ApprovalRecord) -> usize {
    let policy = record.policy.as_ref().map_or(1, |p| p.approvals);
    let demanded = record.required_approvals.unwrap_or(1);
    usize::try_from(policy.max(demanded).max(1)).unwrap_or(usize::MAX)
}

/// The record's taps: its `signatures`, or (records that predate the list) the top-level one.
fn taps(record: &ApprovalRecord) -> Vec<RecordSignature> {
    if !record.signatures.is_empty() {
        return record.signatures.clone();
    }
    vec![RecordSignature {
        approved_by: record.approved_by.clone(),
        approved_at: record.approved_at.clone(),
        credential_id: record.credential_id.clone(),
        credential_public_key: record.credential_public_key.clone(),
        credential_public_key_cose: record.credential_public_key_cose.clone(),
        credential_public_key_spki: record.credential_public_key_spki.clone(),
        client_data_json: record.client_data_json.clone(),
        authenticator_data: record.authenticator_data.clone(),
        signature: record.signature.clone(),
        user_verified: record.user_verified,
    }]
}

/// Readers of the top-level fields alone must see the first tap, not something else.
fn summary_matches(record: &ApprovalRecord) -> Result<String, String> {
    let Some(first) = record.signatures.first() else { return Ok(String::new()) };
    let top = (
        &record.approved_by,
        &record.credential_id,
        &record.credential_public_key,
        &record.client_data_json,
        &record.authenticator_data,
        &record.signature,
    );
    let tap = (
        &first.approved_by,
        &first.credential_id,
        &first.credential_public_key,
        &first.client_data_json,
        &first.authenticator_data,
        &first.signature,
    );
    if top == tap {
        Ok(format!("{} tap(s)", record.signatures.len()))
    } else {
        Err("the record's top-level signature differs from its first tap".into())
    }
}

fn check_tap(
    v: &mut Verification,
    record: &ApprovalRecord,
    tap: &RecordSignature,
    challenge: Option<&[u8; 32]>,
    keyring: &Keyring,
    label: &str,
) {
    let first_check = v.checks.len();
    let client_data = decode("client_data_json", &tap.client_data_json);
    v.check(
        format!("client data is a WebAuthn assertion over that challenge at the registry's origin{label}"),
        (|| {
            let bytes = client_data.clone()?;
            let cd: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| format!("clientDataJSON is not JSON: {e}"))?;
            let challenge = challenge.ok_or("the challenge is not valid")?;
            if cd["type"] != "webauthn.get" {
                return Err(format!("clientDataJSON type is {}", cd["type"]));
            }
            if cd["challenge"].as_str() != Some(URL_SAFE_NO_PAD.encode(challenge).as_str()) {
                return Err("clientDataJSON signs a different challenge".into());
            }
            if cd["origin"].as_str() != Some(record.origin.as_str()) {
                return Err(format!(
                    "clientDataJSON origin is {}, record says {}",
                    cd["origin"], record.origin
                ));
            }
            Ok(record.origin.clone())
        })(),
    );

    let auth_data = decode("authenticator_data", &tap.authenticator_data);
    v.check(
        format!("authenticator data is for this registry with the key touched{label}"),
        (|| {
            let ad = auth_data.clone()?;
            if ad.len() < 37 {
                return Err("authenticator data is too short".into());
            }
            if ad[..32] != Sha256::digest(record.rp_id.as_bytes())[..] {
                return Err(format!("authenticator data is not for relying party {}", record.rp_id));
            }
            let flags = ad[32];
            if flags & 0x01 == 0 {
                return Err("the key did not report user presence".into());
            }
            let counter = u32::from_be_bytes([ad[33], ad[34], ad[35], ad[36]]);
            let uv_required = record.policy.as_ref().is_some_and(|p| p.user_verification);
            if uv_required && flags & 0x04 == 0 {
                return Err(
                    "the policy in force requires user verification, but the key did not verify its user"
                        .into(),
                );
            }
            let uv = if flags & 0x04 != 0 { ", user verified" } else { "" };
            Ok(format!("rp {}, counter {counter}{uv}", record.rp_id))
        })(),
    );

    let signed = (|| {
        let mut data = auth_data.clone()?;
        data.extend_from_slice(&Sha256::digest(client_data.clone()?));
        Ok::<_, String>((data, decode("signature", &tap.signature)?))
    })();
    let credential = short(&tap.credential_id);
    let trusted = decode("credential_id", &tap.credential_id).ok().and_then(|id| keyring.find(&id));
    let Some(entry) = trusted else {
        // Not a key the verifier trusts: whether the signature is valid under the key the record
        // carries says nothing about who made it, only how to word the refusal.
        let valid_under_record_key = record_key(tap)
            .ok()
            .zip(signed.as_ref().ok())
            .is_some_and(|(key, (data, sig))| signature_valid(&key, sig, data) == Ok(true));
        v.check(
            format!("the signing key is one you trust{label}"),
            Err(if valid_under_record_key {
                format!(
                    "signed by a key you do not trust (credential {}); add it with `tapgate keyring add` \
                     only if you got it from {} directly, not from this registry",
                    tap.credential_id, tap.approved_by
                )
            } else {
                format!(
                    "the signature does not verify even with the key the record carries (credential {credential}), \
                     and that key is not in your keyring"
                )
            }),
        );
        return;
    };

    v.check(
        format!("the signing key is one you trust{label}"),
        (|| {
            if tap.approved_by != entry.user {
                return Err(format!(
                    "the record says {} approved, but credential {credential} is {}'s key in your keyring ({})",
                    tap.approved_by, entry.user, entry.source
                ));
            }
            match record_key(tap) {
                Ok(key) if key == entry.key => {}
                Ok(_) => {
                    return Err(format!(
                        "the record carries a different public key for credential {credential} than your keyring ({}): \
                         the registry substituted it, or your keyring is wrong",
                        entry.source
                    ));
                }
                Err(e) => return Err(format!("the record's public key for credential {credential}: {e}")),
            }
            Ok(format!("credential {credential} is {}'s key ({})", entry.user, entry.source))
        })(),
    );
    v.check(
        format!("signature by the approving key{label}"),
        (|| {
            let (data, signature) = signed.clone()?;
            match signature_valid(&entry.key, &signature, &data) {
                Ok(true) => Ok(format!("approved by {} (credential {credential})", entry.user)),
                Ok(false) => Err(format!("the signature does not verify with {}'s trusted key", entry.user)),
                Err(e) => Err(e),
            }
        })(),
    );
    if v.checks[first_check..].iter().all(|c| c.ok) && !v.approved_by.contains(&entry.user) {
        v.approved_by.push(entry.user.clone());
    }
}

/// The public key the record carries for a tap. When it gives several encodings they must all
/// be the same key.
fn record_key(tap: &RecordSignature) -> Result<PublicKey, String> {
    let key = PublicKey::from_webauthn_json(&tap.credential_public_key)
        .map_err(|e| format!("the record's public key is unreadable: {e}"))?;
    let others = [
        tap.credential_public_key_cose.as_deref().map(PublicKey::from_cose_base64url),
        tap.credential_public_key_spki.as_deref().map(PublicKey::from_spki_base64),
    ];
    for other in others.into_iter().flatten() {
        if other.as_ref() != Ok(&key) {
            return Err("the record's encodings of the public key disagree".into());
        }
    }
    Ok(key)
}

/// Checks a WebAuthn assertion signature (over authenticatorData || SHA-256(clientDataJSON)).
pub fn signature_valid(key: &PublicKey, signature: &[u8], data: &[u8]) -> Result<bool, String> {
    let cose: COSEKey = serde_json::from_value(key.to_webauthn_json())
        .map_err(|e| format!("the {} key cannot be used: {e}", key.algorithm()))?;
    cose.verify_signature(signature, data)
        .map_err(|e| format!("the {} signature cannot be checked: {e}", key.algorithm()))
}

/// (package, version, integrity, requested by) of the publish a record's signed intent approves.
fn approved_publish(record: &ApprovalRecord) -> Result<(String, String, String, String), String> {
    match &record.gate_intent {
        None => {
            let i = &record.intent;
            Ok((i.package.clone(), i.version.clone(), i.integrity.clone(), i.requested_by.clone()))
        }
        Some(GateIntent { subject, requested_by, change: Change::Publish { version, integrity, .. } }) => {
            let summary = &record.intent;
            if (&summary.package, &summary.version, &summary.integrity, &summary.requested_by)
                != (subject, version, integrity, requested_by)
            {
                return Err("the record's summary differs from the intent the key signed".into());
            }
            Ok((subject.clone(), version.clone(), integrity.clone(), requested_by.clone()))
        }
        Some(other) => Err(format!("the record approves another kind of change: {}", other.describe())),
    }
}

fn short(s: &str) -> &str {
    s.get(..16).unwrap_or(s)
}
