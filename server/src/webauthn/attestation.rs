//! Attestation trust: which CAs (and optionally which AAGUIDs) the operator trusts, and the
//! facts read from an attestation statement.
//!
//! Three sources, all off by default: CA files (`--attestation-ca`), the roots shipped in
//! `server/trust/fido-roots/` (`--attestation-ca-builtin`), and the models a FIDO Metadata
//! Service BLOB certifies (`--fido-mds`). A key is attested when its attestation chains to one of
//! them (for an MDS root, only with the AAGUID of the model the root was listed for), and, with
//! `--attestation-aaguid`, its AAGUID is allowed.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::SystemTime;

use serde_cbor_2::Value;
use uuid::Uuid;
use webauthn_attestation_ca::{AttestationCa, AttestationCaList};
use webauthn_rs_core::proto::Credential;

use super::builtin::BuiltinCaSet;
use super::mds::MdsTrust;

/// The operator's attestation trust configuration.
#[derive(Debug, Clone, Default)]
pub struct AttestationTrust {
    /// CAs trusted for any model: files and built-in sets.
    cas: Option<AttestationCaList>,
    /// Roots of the models a FIDO metadata BLOB certifies, each for its model's AAGUID.
    mds: Option<MdsTrust>,
    /// When set, only these authenticator models count as attested.
    aaguids: Option<BTreeSet<Uuid>>,
}

impl AttestationTrust {
    /// Trusts nothing: every key is recorded as unattested.
    pub fn none() -> Self {
        Self::default()
    }

    /// Loads PEM CA certificates from a file or from every `*.pem`/`*.crt` file in a directory.
    pub fn load(path: &Path, aaguids: Option<BTreeSet<Uuid>>) -> Result<Self, String> {
        Self::none().with_aaguids(aaguids).with_ca_path(path)
    }

    /// Also trusts the PEM CA certificates in a file or a directory's `*.pem`/`*.crt` files.
    pub fn with_ca_path(mut self, path: &Path) -> Result<Self, String> {
        let files = if path.is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(path)
                .map_err(|e| format!("cannot read attestation CA directory {}: {e}", path.display()))?
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pem" || x == "crt"))
                .collect();
            files.sort();
            files
        } else {
            vec![path.to_path_buf()]
        };
        let mut list = AttestationCaList::default();
        for file in &files {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read attestation CA file {}: {e}", file.display()))?;
            list.union(&ca_list(&text, &file.display().to_string())?);
        }
        if list.is_empty() {
            return Err(format!("no CA certificates found in {}", path.display()));
        }
        self.add_cas(&list);
        Ok(self)
    }

    /// Also trusts a set of roots shipped with tapgate (`server/trust/`).
    pub fn with_builtin(mut self, set: &BuiltinCaSet) -> Result<Self, String> {
        for (file, pem) in set.files {
            let list = ca_list(pem, &format!("built-in {file}"))?;
            self.add_cas(&list);
        }
        Ok(self)
    }

    /// Also trusts the models a verified FIDO metadata BLOB certifies.
    pub fn with_mds(mut self, mds: MdsTrust) -> Self {
        self.mds = Some(mds);
        self
    }

    /// Only an AAGUID allowlist, e.g. in addition to CAs loaded separately.
    pub fn with_aaguids(mut self, aaguids: Option<BTreeSet<Uuid>>) -> Self {
        self.aaguids = aaguids;
        self
    }

    fn add_cas(&mut self, list: &AttestationCaList) {
        self.cas.get_or_insert_with(AttestationCaList::default).union(list);
    }

    /// CAs trusted for any model.
    pub fn ca_count(&self) -> usize {
        self.cas.as_ref().map_or(0, AttestationCaList::len)
    }

    /// The metadata BLOB in use, if any.
    pub fn mds(&self) -> Option<&MdsTrust> {
        self.mds.as_ref()
    }

    /// Whether `credential`'s attestation chains to a trusted CA and its AAGUID is allowed; and
    /// which anchor it chained to: the CA's subject, or `MDS: <model description>`.
    pub fn evaluate(&self, credential: &Credential, aaguid: Uuid) -> (bool, Option<String>) {
        if let Some(allowed) = &self.aaguids
            && !allowed.contains(&aaguid)
        {
            return (false, None);
        }
        if let Some(cas) = &self.cas
            && let Ok(Some(ca)) = credential.verify_attestation(cas)
        {
            return (true, Some(describe_ca(ca)));
        }
        if let Some(mds) = &self.mds
            && !mds.expired_at(SystemTime::now())
            && let Ok(Some(ca)) = credential.verify_attestation(&mds.list)
            && let Some(model) = ca.aaguids().get(&aaguid)
        {
            return (true, Some(format!("MDS: {}", model.description_en())));
        }
        (false, None)
    }
}

/// The certificates in PEM `text`, trusted for any model.
fn ca_list(text: &str, origin: &str) -> Result<AttestationCaList, String> {
    let mut list = AttestationCaList::default();
    for block in pem_certificates(text) {
        let one = AttestationCaList::try_from(block.as_bytes())
            .map_err(|e| format!("invalid CA certificate in {origin}: {e:?}"))?;
        list.union(&one);
    }
    Ok(list)
}

fn describe_ca(ca: &AttestationCa) -> String {
    ca.ca().tbs_certificate().subject().to_string()
}

/// Splits a PEM bundle into its certificate blocks.
pub(crate) fn pem_certificates(text: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let Some(end) = rest[start..].find(END) else { break };
        let stop = start + end + END.len();
        out.push(format!("{}\n", &rest[start..stop]));
        rest = &rest[stop..];
    }
    out
}

/// What the attestation object says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementFacts {
    pub format: String,
    pub aaguid: Uuid,
}

/// Reads `fmt` and the AAGUID (authData bytes 37..53) from a CBOR attestation object.
pub fn statement_facts(attestation_object: &[u8]) -> Result<StatementFacts, String> {
    let value: Value = serde_cbor_2::from_slice(attestation_object)
        .map_err(|e| format!("attestation object is not CBOR: {e}"))?;
    let Value::Map(map) = value else {
        return Err("attestation object is not a CBOR map".into());
    };
    let get = |key: &str| map.get(&Value::Text(key.to_string()));
    let format = match get("fmt") {
        Some(Value::Text(fmt)) => fmt.clone(),
        _ => return Err("attestation object has no fmt".into()),
    };
    let auth_data = match get("authData") {
        Some(Value::Bytes(bytes)) => bytes,
        _ => return Err("attestation object has no authData".into()),
    };
    let aaguid = auth_data
        .get(37..53)
        .and_then(|b| Uuid::from_slice(b).ok())
        .ok_or("authData is too short to hold attested credential data")?;
    Ok(StatementFacts { format, aaguid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bundles_split_into_certificates() {
        let one = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----";
        let text = format!("junk\n{one}\nmore\n{one}\n");
        assert_eq!(pem_certificates(&text).len(), 2);
        assert!(pem_certificates("nothing").is_empty());
    }

    #[test]
    fn statement_facts_refuse_garbage() {
        assert!(statement_facts(b"\x01\x02").is_err());
        assert!(statement_facts(&serde_cbor_2::to_vec(&5).unwrap_or_default()).is_err());
    }
}
