//! Certificates and FIDO metadata BLOBs made by the tests: a root, an MDS signing certificate
//! chained to it, and BLOBs signed with it (ES256, `x5c` in the header), so that MDS trust can be
//! exercised without the FIDO Alliance's key.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use crypto_glue::ecdsa_p256::{
    EcdsaP256DerSignature, EcdsaP256Signature, EcdsaP256SigningKey, EcdsaP256VerifyingKey,
};
use crypto_glue::traits::{DecodePem, EncodeDer, EncodePem, Generate, LineEndingPem, Signer, ToExtension};
use crypto_glue::x509::profile::BuilderProfile;
use crypto_glue::x509::{
    BasicConstraints, Builder, CertBuilderError, Certificate, CertificateBuilder, Extension, KeyUsage,
    KeyUsages, Name, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef, TbsCertificate, Time, Validity,
    uuid_to_serial,
};
use serde_json::{Value, json};

/// The name the real MDS signing certificate is issued to.
pub const FIDO_SIGNER: &str = "mds.fidoalliance.org";

struct Profile {
    subject: Name,
    issuer: Name,
    ca: bool,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> Result<Vec<Extension>, CertBuilderError> {
        let mut extensions = Vec::new();
        let constraints = BasicConstraints { ca: self.ca, path_len_constraint: None };
        extensions.push(constraints.to_extension(tbs.subject(), &extensions)?);
        let usage = if self.ca {
            KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)
        } else {
            KeyUsage(KeyUsages::DigitalSignature.into())
        };
        extensions.push(usage.to_extension(tbs.subject(), &extensions)?);
        Ok(extensions)
    }
}

/// A P-256 key and its certificate.
pub struct Issued {
    pub key: EcdsaP256SigningKey,
    pub cert: Certificate,
}

impl Issued {
    pub fn pem(&self) -> String {
        self.cert.to_pem(LineEndingPem::LF).unwrap()
    }

    /// Writes the certificate as PEM into `dir/name` and returns the path.
    pub fn write_pem(&self, dir: &Path, name: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.pem()).unwrap();
        path
    }
}

/// Issues a certificate for `subject` (an RFC 4514 name), signed by `issuer` or self-signed.
pub fn issue(subject: &str, issuer: Option<&Issued>, ca: bool) -> Issued {
    let key = EcdsaP256SigningKey::generate();
    let spki = SubjectPublicKeyInfoOwned::from_key(&EcdsaP256VerifyingKey::from(&key)).unwrap();
    let subject = Name::from_str(subject).unwrap();
    let issuer_name = issuer.map_or_else(|| subject.clone(), |i| i.cert.tbs_certificate().subject().clone());
    let now = SystemTime::now();
    let validity = Validity::new(
        Time::try_from(now - Duration::from_secs(3600)).unwrap(),
        Time::try_from(now + Duration::from_secs(30 * 86400)).unwrap(),
    );
    let profile = Profile { subject, issuer: issuer_name, ca };
    let builder =
        CertificateBuilder::new(profile, uuid_to_serial(uuid::Uuid::new_v4()), validity, spki).unwrap();
    let signer = issuer.map_or(&key, |i| &i.key);
    let cert = builder.build::<EcdsaP256SigningKey, EcdsaP256DerSignature>(signer).unwrap();
    Issued { key, cert }
}

/// A test metadata service: a root, and a signing certificate issued by it.
pub struct TestMds {
    pub root: Issued,
    pub signer: Issued,
}

impl TestMds {
    /// A root and a signing certificate issued to `mds.fidoalliance.org`.
    pub fn new() -> TestMds {
        Self::with_signer_name(FIDO_SIGNER)
    }

    pub fn with_signer_name(name: &str) -> TestMds {
        let root = issue("CN=tapgate test MDS root,O=tapgate tests,C=SE", None, true);
        let signer = issue(&format!("CN={name},O=tapgate tests,C=SE"), Some(&root), false);
        TestMds { root, signer }
    }

    /// `payload` as a BLOB signed by the signing certificate, `x5c` = [signer, …extra].
    pub fn sign(&self, payload: &Value) -> String {
        sign_blob(&self.signer, &[], payload)
    }
}

/// A compact ES256 JWS of `payload` by `signer`, whose `x5c` is `signer` then `chain`.
pub fn sign_blob(signer: &Issued, chain: &[&Certificate], payload: &Value) -> String {
    jws(signer, chain, payload, false)
}

/// The same with the signature DER-encoded instead of `r || s`.
pub fn sign_blob_der(signer: &Issued, payload: &Value) -> String {
    jws(signer, &[], payload, true)
}

fn jws(signer: &Issued, chain: &[&Certificate], payload: &Value, der: bool) -> String {
    let x5c: Vec<String> = std::iter::once(&signer.cert)
        .chain(chain.iter().copied())
        .map(|c| STANDARD.encode(c.to_der().unwrap()))
        .collect();
    let header = json!({ "alg": "ES256", "typ": "JWT", "x5c": x5c });
    let header_b64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
    let payload_b64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).unwrap());
    let input = format!("{header_b64}.{payload_b64}");
    let signature: EcdsaP256Signature = signer.key.sign(input.as_bytes());
    let bytes = if der { signature.to_der().as_bytes().to_vec() } else { signature.to_bytes().to_vec() };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The same BLOB with another payload and the original signature (a forgery).
pub fn with_payload(blob: &str, payload: &Value) -> String {
    let mut parts: Vec<String> = blob.split('.').map(str::to_string).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).unwrap());
    parts.join(".")
}

/// An MDS3 payload.
pub fn payload(serial: u32, next_update: &str, entries: Vec<Value>) -> Value {
    json!({
        "legalHeader": "tapgate test metadata, not from the FIDO Alliance",
        "no": serial,
        "nextUpdate": next_update,
        "entries": entries,
    })
}

/// One FIDO2 model's entry: its AAGUID, description, attestation root (PEM) and status.
pub fn entry(aaguid: uuid::Uuid, description: &str, root_pem: &str, status: &str) -> Value {
    let root = Certificate::from_pem(root_pem.as_bytes()).unwrap();
    json!({
        "aaguid": aaguid.to_string(),
        "metadataStatement": {
            "legalHeader": "test",
            "aaguid": aaguid.to_string(),
            "description": description,
            "friendlyNames": { "en-US": description },
            "protocolFamily": "fido2",
            "schema": 3,
            "attestationTypes": ["basic_full"],
            "attestationRootCertificates": [STANDARD.encode(root.to_der().unwrap())],
        },
        "statusReports": [
            { "status": status, "effectiveDate": "2024-01-02", "certificationDescriptor": description }
        ],
        "timeOfLastStatusChange": "2024-01-02",
    })
}

/// A `nextUpdate` far enough ahead for any test run.
pub const FUTURE: &str = "2099-12-31";
/// A `nextUpdate` in the past.
pub const PAST: &str = "2020-01-31";
