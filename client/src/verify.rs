//! Offline verification of a published version's approval record: the key's signature, the
//! challenge's commitment to the intent, and the tarball's integrity. Nothing here trusts the
//! registry: every value is recomputed from the record and the tarball bytes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use tapgate_shared::api::ApprovalRecord;
use tapgate_shared::gate_intent::{Change, GateIntent};
use tapgate_shared::intent::sri_sha512;
use webauthn_rs_core::proto::COSEKey;

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

fn decode(field: &str, value: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD.decode(value).map_err(|e| format!("{field} is not base64url: {e}"))
}

/// Verifies `record` for `package@version` against the tarball bytes and the integrity the
/// registry publishes for it. Returns every check; the record is valid only if all pass.
pub fn verify_record(
    record: &ApprovalRecord,
    package: &str,
    version: &str,
    tarball: &[u8],
    published_integrity: &str,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut check = |name: &'static str, result: Result<String, String>| {
        let (ok, detail) = match result {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        checks.push(Check { name, ok, detail });
    };

    // What the key signed: format 2 records sign the gate intent (with the publish's tags),
    // format 1 records the publish-only intent. Either way the approved package, version and
    // integrity come from the signed intent, never from the record's other fields.
    let approved = approved_publish(record);
    check(
        "intent names this version",
        match &approved {
            Ok((p, v, _, by)) if p == package && v == version => {
                Ok(format!("{package}@{version} requested by {by}"))
            }
            Ok((p, v, _, _)) => Err(format!("the record approves {p}@{v}")),
            Err(e) => Err(e.clone()),
        },
    );

    let actual = sri_sha512(tarball);
    let approved_integrity = approved.as_ref().map(|(_, _, i, _)| i.clone()).unwrap_or_default();
    check(
        "tarball matches the approved integrity",
        if actual == approved_integrity && actual == published_integrity {
            Ok(actual.clone())
        } else {
            Err(format!(
                "tarball is {actual}, approval says {approved_integrity}, registry publishes {published_integrity}"
            ))
        },
    );

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
    check(
        "challenge commits to the intent",
        challenge.as_ref().map(|c| URL_SAFE_NO_PAD.encode(c)).map_err(Clone::clone),
    );

    let client_data = decode("client_data_json", &record.client_data_json);
    check(
        "client data is a WebAuthn assertion over that challenge at the registry's origin",
        (|| {
            let bytes = client_data.clone()?;
            let cd: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|e| format!("clientDataJSON is not JSON: {e}"))?;
            let challenge = challenge.clone()?;
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

    let auth_data = decode("authenticator_data", &record.authenticator_data);
    check(
        "authenticator data is for this registry with the key touched",
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
            let uv = if flags & 0x04 != 0 { ", user verified" } else { "" };
            Ok(format!("rp {}, counter {counter}{uv}", record.rp_id))
        })(),
    );

    check(
        "signature by the approving key",
        (|| {
            let key: COSEKey = serde_json::from_value(record.credential_public_key.clone())
                .map_err(|e| format!("credential public key is not a COSE key: {e}"))?;
            let signature = decode("signature", &record.signature)?;
            let mut data = auth_data.clone()?;
            data.extend_from_slice(&Sha256::digest(client_data.clone()?));
            match key.verify_signature(&signature, &data) {
                Ok(true) => {
                    Ok(format!("credential {} of {}", short(&record.credential_id), record.approved_by))
                }
                Ok(false) => Err("the signature does not verify".into()),
                Err(e) => Err(format!("the signature cannot be checked: {e}")),
            }
        })(),
    );
    checks
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
