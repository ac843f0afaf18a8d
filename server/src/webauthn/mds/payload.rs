//! The BLOB's payload (MDS3 `MetadataBLOBPayload`): read leniently, keeping only what decides
//! trust. FIDO adds fields without notice (e.g. `friendlyNames` in 2024), so unknown fields are
//! ignored, and one entry that cannot be read is skipped rather than failing the whole BLOB.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use uuid::Uuid;
use webauthn_attestation_ca::{AttestationCaList, AttestationCaListBuilder};

use super::MdsError;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    no: u32,
    next_update: String,
    #[serde(default)]
    entries: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    /// FIDO2 authenticators only; U2F and UAF entries have none and are skipped.
    aaguid: Option<Uuid>,
    metadata_statement: Option<Statement>,
    #[serde(default)]
    status_reports: Vec<StatusReport>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Statement {
    description: Option<String>,
    #[serde(default)]
    attestation_root_certificates: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusReport {
    status: String,
    effective_date: Option<String>,
}

/// What a BLOB's payload says, reduced to trust.
pub struct Contents {
    pub serial: u32,
    pub next_update: time::Date,
    /// Each certified model's attestation roots, restricted to that model's AAGUID.
    pub list: AttestationCaList,
    /// Models trusted.
    pub certified: usize,
    /// Entries not trusted: not FIDO2, not certified, revoked or compromised, or unreadable.
    pub skipped: usize,
}

/// Statuses that disqualify a model whatever came before or after them.
const DISQUALIFYING: &[&str] = &[
    "REVOKED",
    "USER_VERIFICATION_BYPASS",
    "ATTESTATION_KEY_COMPROMISE",
    "USER_KEY_REMOTE_COMPROMISE",
    "USER_KEY_PHYSICAL_COMPROMISE",
];

/// Whether a model's status reports make it trusted: none disqualifies it, and its latest status
/// (by `effectiveDate`, then order; `UPDATE_AVAILABLE` is informational and skipped) is one of the
/// `FIDO_CERTIFIED*` levels.
fn certified(reports: &[StatusReport]) -> bool {
    if reports.iter().any(|r| DISQUALIFYING.contains(&r.status.as_str())) {
        return false;
    }
    reports
        .iter()
        .enumerate()
        .filter(|(_, r)| r.status != "UPDATE_AVAILABLE")
        .max_by(|(ia, a), (ib, b)| a.effective_date.cmp(&b.effective_date).then(ia.cmp(ib)))
        .is_some_and(|(_, r)| r.status.starts_with("FIDO_CERTIFIED"))
}

pub fn read(payload: &[u8]) -> Result<Contents, MdsError> {
    let payload: Payload = serde_json::from_slice(payload)
        .map_err(|e| MdsError::Malformed(format!("its payload is not an MDS3 metadata BLOB: {e}")))?;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let next_update = time::Date::parse(&payload.next_update, format).map_err(|_| {
        MdsError::Malformed(format!("its nextUpdate {:?} is not a date (YYYY-MM-DD)", payload.next_update))
    })?;
    let mut builder = AttestationCaListBuilder::new();
    let mut certified_models = 0;
    let mut skipped = 0;
    for value in payload.entries {
        let Ok(entry) = serde_json::from_value::<Entry>(value) else {
            skipped += 1;
            continue;
        };
        let (Some(aaguid), Some(statement)) = (entry.aaguid, entry.metadata_statement) else {
            skipped += 1;
            continue;
        };
        if !certified(&entry.status_reports) {
            skipped += 1;
            continue;
        }
        let description = statement.description.unwrap_or_else(|| aaguid.to_string());
        let mut roots = 0;
        for b64 in &statement.attestation_root_certificates {
            // Some entries wrap their base64 in whitespace.
            let cleaned: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
            let Ok(der) = STANDARD.decode(cleaned.as_bytes()) else { continue };
            if builder.insert_device_der(&der, aaguid, description.clone(), BTreeMap::new()).is_ok() {
                roots += 1;
            }
        }
        if roots == 0 {
            skipped += 1;
        } else {
            certified_models += 1;
        }
    }
    Ok(Contents {
        serial: payload.no,
        next_update,
        list: builder.build(),
        certified: certified_models,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reports(list: &[(&str, Option<&str>)]) -> Vec<StatusReport> {
        list.iter()
            .map(|(s, d)| StatusReport { status: (*s).into(), effective_date: d.map(Into::into) })
            .collect()
    }

    #[test]
    fn only_the_latest_certified_status_without_compromise_counts() {
        assert!(certified(&reports(&[("FIDO_CERTIFIED_L1", Some("2020-01-01"))])));
        assert!(certified(&reports(&[
            ("NOT_FIDO_CERTIFIED", Some("2019-01-01")),
            ("FIDO_CERTIFIED", Some("2020-01-01")),
            ("UPDATE_AVAILABLE", Some("2021-01-01")),
        ])));
        // Order in the array does not matter, dates do.
        assert!(!certified(&reports(&[
            ("NOT_FIDO_CERTIFIED", Some("2022-01-01")),
            ("FIDO_CERTIFIED", Some("2020-01-01")),
        ])));
        assert!(!certified(&reports(&[
            ("FIDO_CERTIFIED_L2", Some("2020-01-01")),
            ("ATTESTATION_KEY_COMPROMISE", Some("2019-01-01")),
        ])));
        assert!(!certified(&reports(&[("FIDO_CERTIFIED", Some("2020-01-01")), ("REVOKED", None)])));
        assert!(!certified(&reports(&[("SELF_ASSERTION_SUBMITTED", Some("2020-01-01"))])));
        assert!(!certified(&[]));
    }

    #[test]
    fn payloads_are_read_leniently_but_need_a_serial_and_a_date() {
        let ok = br#"{"no": 7, "nextUpdate": "2030-01-31", "legalHeader": "x", "newField": 1,
            "entries": [5, {"aaid": "1234#5678"}, {"aaguid": "not-a-uuid"}]}"#;
        let contents = read(ok).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(contents.serial, 7);
        assert_eq!(contents.next_update.to_string(), "2030-01-31");
        assert_eq!((contents.certified, contents.skipped), (0, 3));
        assert!(contents.list.is_empty());
        assert!(matches!(read(br#"{"nextUpdate": "2030-01-31"}"#), Err(MdsError::Malformed(_))));
        assert!(matches!(read(br#"{"no": 1, "nextUpdate": "soon"}"#), Err(MdsError::Malformed(_))));
        assert!(matches!(read(b"[]"), Err(MdsError::Malformed(_))));
    }
}
