//! FIDO Metadata Service v3 BLOBs, loaded from a file (`--fido-mds FILE`).
//!
//! A BLOB is a JWS signed by the FIDO Alliance. It is trusted only when its signature verifies
//! with the first certificate of its `x5c` header, that certificate chains to a configured root
//! (by default the GlobalSign roots in `server/trust/fido-mds-roots/`, and then it must also be
//! issued to a `fidoalliance.org` name), and it has not expired (`nextUpdate`). The registry also
//! refuses a BLOB older than the last one it accepted (its serial `no` is lower): see
//! `Store::accept_fido_mds`. Each certified FIDO2 model it lists then becomes trusted: a key whose
//! attestation chains to one of the model's `attestationRootCertificates` *and* reports that
//! model's AAGUID counts as attested.
//!
//! Not done: certificate revocation lists are not fetched (the registry works offline), so a
//! revoked MDS signing certificate is only refused once its chain expires.
//!
//! The `fido-mds` crate (kanidm) was considered: its 0.6.2 refuses every field it does not know
//! (today's BLOBs have several, kanidm/webauthn-rs#450) and verifies only against its own
//! built-in roots, so the payload is read here and the chain checked with crypto-glue.

mod jws;
mod payload;

use std::path::Path;
use std::time::SystemTime;

use crypto_glue::traits::DecodePem;
use crypto_glue::x509::Certificate;
use sha2::{Digest, Sha256};
use webauthn_attestation_ca::AttestationCaList;

use super::builtin::{FIDO_MDS_ROOTS, FIDO_MDS_SIGNER_DOMAIN};
use super::pem_certificates;

/// Why a BLOB is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MdsError {
    /// Not a BLOB: what is wrong with it.
    Malformed(String),
    /// A JWS algorithm other than RS256 or ES256.
    Algorithm(String),
    /// The `x5c` chain does not reach a trusted root (the reason, from the verifier).
    Untrusted(String),
    /// The chain is trusted but its signing certificate is not issued to the FIDO MDS.
    WrongSigner { subject: String },
    /// The signature does not verify with the signing certificate.
    BadSignature,
    /// `nextUpdate` is in the past.
    Expired { next_update: time::Date },
}

impl MdsError {
    /// One sentence saying what is wrong with the BLOB in `file` and what to do.
    pub fn sentence(&self, file: &Path) -> String {
        let file = file.display();
        match self {
            Self::Malformed(what) => format!("the FIDO metadata BLOB {file} cannot be used: {what}"),
            Self::Algorithm(alg) => format!(
                "the FIDO metadata BLOB {file} is signed with JWS algorithm {alg:?}; only RS256 and ES256 are accepted"
            ),
            Self::Untrusted(why) => format!(
                "the FIDO metadata BLOB {file} is refused: its certificate chain does not lead to a trusted \
                 FIDO metadata root ({why}); check --fido-mds-root"
            ),
            Self::WrongSigner { subject } => format!(
                "the FIDO metadata BLOB {file} is refused: it is signed by {subject:?}, not by a certificate issued to {FIDO_MDS_SIGNER_DOMAIN}"
            ),
            Self::BadSignature => format!(
                "the FIDO metadata BLOB {file} is refused: its signature does not verify with its signing certificate"
            ),
            Self::Expired { next_update } => format!(
                "the FIDO metadata BLOB {file} expired on {next_update} (its nextUpdate): download the current BLOB"
            ),
        }
    }
}

/// The roots a BLOB must chain to.
#[derive(Debug, Clone)]
pub struct MdsRoots {
    certs: Vec<Certificate>,
    /// The DNS domain the signing certificate must be issued within, for public roots.
    signer_domain: Option<String>,
}

impl MdsRoots {
    /// The FIDO Alliance's roots shipped in `server/trust/fido-mds-roots/`; the signing
    /// certificate must be issued to a `fidoalliance.org` name.
    pub fn builtin() -> Result<Self, String> {
        let certs = FIDO_MDS_ROOTS
            .iter()
            .map(|(file, pem)| {
                Certificate::from_pem(pem.as_bytes())
                    .map_err(|e| format!("built-in FIDO metadata root {file} does not parse: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { certs, signer_domain: Some(FIDO_MDS_SIGNER_DOMAIN.to_string()) })
    }

    /// Every certificate in a PEM file: the operator's own roots, trusted for any signer.
    pub fn from_pem_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --fido-mds-root {}: {e}", path.display()))?;
        Self::from_pem(&text).map_err(|e| format!("invalid --fido-mds-root {}: {e}", path.display()))
    }

    /// Every certificate in PEM text, trusted for any signer.
    pub fn from_pem(text: &str) -> Result<Self, String> {
        let certs = pem_certificates(text)
            .iter()
            .map(|block| Certificate::from_pem(block.as_bytes()).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        if certs.is_empty() {
            return Err("it holds no PEM certificate".into());
        }
        Ok(Self { certs, signer_domain: None })
    }

    /// Also require the signing certificate to be issued to `domain` or a name under it.
    pub fn requiring_signer_domain(mut self, domain: &str) -> Self {
        self.signer_domain = Some(domain.to_string());
        self
    }
}

/// A verified BLOB, reduced to what the registry trusts.
#[derive(Debug, Clone)]
pub struct MdsTrust {
    /// The BLOB's serial number (`no`).
    pub serial: u32,
    pub next_update: time::Date,
    /// Hex SHA-256 of the BLOB file as read.
    pub sha256: String,
    /// The certified models' roots, each restricted to its model's AAGUID.
    pub list: AttestationCaList,
    /// Models trusted, and entries left out.
    pub certified: usize,
    pub skipped: usize,
    /// Who signed it (the signing certificate's subject).
    pub signer: String,
}

impl MdsTrust {
    /// Whether `nextUpdate` has passed at `now` (the BLOB is good through that whole day, UTC).
    pub fn expired_at(&self, now: SystemTime) -> bool {
        time::OffsetDateTime::from(now).date() > self.next_update
    }
}

/// Verifies BLOB text at `now`.
pub fn verify_blob(text: &str, roots: &MdsRoots, now: SystemTime) -> Result<MdsTrust, MdsError> {
    let verified = jws::verify(text, &roots.certs, roots.signer_domain.as_deref(), now)?;
    let contents = payload::read(&verified.payload)?;
    let trust = MdsTrust {
        serial: contents.serial,
        next_update: contents.next_update,
        sha256: hex::encode(Sha256::digest(text.trim().as_bytes())),
        list: contents.list,
        certified: contents.certified,
        skipped: contents.skipped,
        signer: verified.signer,
    };
    if trust.expired_at(now) {
        return Err(MdsError::Expired { next_update: trust.next_update });
    }
    Ok(trust)
}

/// Reads and verifies the BLOB in `path`; errors are one sentence naming the file.
pub fn load_blob(path: &Path, roots: &MdsRoots, now: SystemTime) -> Result<MdsTrust, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the FIDO metadata BLOB {}: {e}", path.display()))?;
    verify_blob(&text, roots, now).map_err(|e| e.sentence(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn the_builtin_roots_require_the_fido_signer() {
        let roots = MdsRoots::builtin().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(roots.certs.len(), 2);
        assert_eq!(roots.signer_domain.as_deref(), Some("fidoalliance.org"));
        assert!(MdsRoots::from_pem("no certificates here").is_err());
    }

    /// An RS256 BLOB made with openssl (`testdata/make-rs256-blob.sh`): an RSA chain like the
    /// real one, `x5c` = [leaf, intermediate, root], the leaf issued to mds.fidoalliance.org.
    const RS256_BLOB: &str = include_str!("testdata/rs256-blob.jwt");
    const RS256_ROOT: &str = include_str!("testdata/rs256-root.pem");

    #[test]
    fn an_rs256_blob_verifies_to_its_root_and_nothing_else() {
        let roots = MdsRoots::from_pem(RS256_ROOT)
            .unwrap_or_else(|e| panic!("{e}"))
            .requiring_signer_domain(FIDO_MDS_SIGNER_DOMAIN);
        let now = SystemTime::now();
        let trust = verify_blob(RS256_BLOB, &roots, now).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((trust.serial, trust.certified), (42, 0));
        assert_eq!(trust.next_update.to_string(), "2099-12-31");
        // The real FIDO roots do not certify it.
        let builtin = MdsRoots::builtin().unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(verify_blob(RS256_BLOB, &builtin, now), Err(MdsError::Untrusted(_))));
        // One bit of the signature changed.
        let blob = RS256_BLOB.trim();
        let at = blob.len() - 10;
        let flipped = if blob.as_bytes()[at] == b'A' { "B" } else { "A" };
        let tampered = format!("{}{flipped}{}", &blob[..at], &blob[at + 1..]);
        assert_eq!(verify_blob(&tampered, &roots, now).err(), Some(MdsError::BadSignature));
        // The header claims ES256 for an RSA key.
        let mut parts: Vec<String> = RS256_BLOB.trim().split('.').map(str::to_string).collect();
        let header =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[0].as_bytes()).unwrap_or_default();
        let header = String::from_utf8_lossy(&header).replace("RS256", "ES256");
        parts[0] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header.as_bytes());
        assert!(matches!(verify_blob(&parts.join("."), &roots, now), Err(MdsError::Malformed(_))));
    }

    #[test]
    fn a_blob_is_good_through_its_next_update_day() {
        let roots = MdsRoots::from_pem(RS256_ROOT).unwrap_or_else(|e| panic!("{e}"));
        let mut trust =
            verify_blob(RS256_BLOB, &roots, SystemTime::now()).unwrap_or_else(|e| panic!("{e:?}"));
        trust.next_update = time::macros::date!(2030 - 06 - 15);
        let at = |s: &str| {
            let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|e| panic!("{e}"));
            SystemTime::from(t)
        };
        assert!(!trust.expired_at(at("2030-06-15T23:59:59Z")));
        assert!(trust.expired_at(at("2030-06-16T00:00:00Z")));
    }

    #[test]
    fn every_refusal_is_one_sentence_naming_the_file() {
        let file = Path::new("/etc/blob.jwt");
        let all = [
            MdsError::Malformed("x".into()),
            MdsError::Algorithm("none".into()),
            MdsError::Untrusted("NoMatchingIssuer".into()),
            MdsError::WrongSigner { subject: "CN=evil".into() },
            MdsError::BadSignature,
            MdsError::Expired { next_update: time::macros::date!(2024 - 01 - 31) },
        ];
        for err in all {
            let s = err.sentence(file);
            assert!(s.contains("/etc/blob.jwt"), "{s}");
            assert!(!s.contains('\n'), "{s}");
        }
    }
}
