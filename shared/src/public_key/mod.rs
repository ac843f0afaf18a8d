//! A security key's public key in the encodings a verifier can pin and compare: COSE_Key (the
//! CBOR bytes an authenticator produces, RFC 9053), DER SubjectPublicKeyInfo (RFC 5280, what
//! openssl and most tools read), and the webauthn-rs JSON form the registry stores.
//!
//! This is format conversion only, no cryptography: a key read here is checked (is the point on
//! the curve, …) when it is used to verify a signature. Every encoding of one key converts to the
//! same [`PublicKey`], so two encodings name the same key exactly when the values are equal.
//!
//! Supported: ES256 (P-256), ES384 (P-384), EdDSA (Ed25519) and RS256 (2048-bit RSA), the
//! algorithms the registry accepts at enrollment.

mod cose;
mod spki;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

/// A credential's public key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// ECDSA on P-256 with SHA-256; `x` and `y` are 32 bytes each.
    Es256 { x: Vec<u8>, y: Vec<u8> },
    /// ECDSA on P-384 with SHA-384; `x` and `y` are 48 bytes each.
    Es384 { x: Vec<u8>, y: Vec<u8> },
    /// EdDSA on Ed25519; `x` is 32 bytes.
    Ed25519 { x: Vec<u8> },
    /// RSASSA-PKCS1-v1_5 with SHA-256; `n` is 256 bytes (2048 bits), `e` 3 bytes big-endian.
    Rs256 { n: Vec<u8>, e: [u8; 3] },
}

/// Why bytes are not a public key this module reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub String);

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

fn err<T>(message: impl Into<String>) -> Result<T, KeyError> {
    Err(KeyError(message.into()))
}

impl PublicKey {
    /// Checks the sizes of the key's parts.
    fn checked(self) -> Result<Self, KeyError> {
        let ok = match &self {
            Self::Es256 { x, y } => x.len() == 32 && y.len() == 32,
            Self::Es384 { x, y } => x.len() == 48 && y.len() == 48,
            Self::Ed25519 { x } => x.len() == 32,
            Self::Rs256 { n, .. } => n.len() == 256,
        };
        if ok { Ok(self) } else { err(format!("the {} key has parts of the wrong size", self.algorithm())) }
    }

    /// The COSE algorithm's name: `ES256`, `ES384`, `EdDSA` or `RS256`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Self::Es256 { .. } => "ES256",
            Self::Es384 { .. } => "ES384",
            Self::Ed25519 { .. } => "EdDSA",
            Self::Rs256 { .. } => "RS256",
        }
    }

    /// The COSE_Key CBOR bytes, in CTAP2's deterministic encoding.
    pub fn to_cose(&self) -> Vec<u8> {
        cose::encode(self)
    }

    /// Reads a COSE_Key: the whole input must be one key.
    pub fn from_cose(bytes: &[u8]) -> Result<Self, KeyError> {
        let (key, used) = cose::decode(bytes)?;
        if used != bytes.len() {
            return err("the COSE key is followed by extra bytes");
        }
        Ok(key)
    }

    /// Reads the COSE_Key at the start of `bytes` (as in authenticator data, where extensions
    /// may follow); returns it and how many bytes it used.
    pub fn from_cose_prefix(bytes: &[u8]) -> Result<(Self, usize), KeyError> {
        cose::decode(bytes)
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn to_spki(&self) -> Vec<u8> {
        spki::encode(self)
    }

    /// Reads a DER SubjectPublicKeyInfo; only the canonical encoding of a supported key is read.
    pub fn from_spki(der: &[u8]) -> Result<Self, KeyError> {
        spki::decode(der)
    }

    /// base64url (no padding) of [`Self::to_cose`], as approval records carry it.
    pub fn cose_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.to_cose())
    }

    /// base64 (standard, padded) of [`Self::to_spki`], as approval records and keyrings carry it.
    pub fn spki_base64(&self) -> String {
        STANDARD.encode(self.to_spki())
    }

    /// Reads [`Self::cose_base64url`]'s form.
    pub fn from_cose_base64url(text: &str) -> Result<Self, KeyError> {
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|e| KeyError(format!("not base64url: {e}")))?;
        Self::from_cose(&bytes)
    }

    /// Reads [`Self::spki_base64`]'s form.
    pub fn from_spki_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD.decode(text).map_err(|e| KeyError(format!("not base64: {e}")))?;
        Self::from_spki(&bytes)
    }

    /// The webauthn-rs JSON form of the key (its `COSEKey` serialized), as the registry stores it.
    pub fn to_webauthn_json(&self) -> Value {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        match self {
            Self::Es256 { x, y } => json!({
                "type_": "ES256",
                "key": {"EC_EC2": {"curve": "SECP256R1", "x": b64(x), "y": b64(y)}}
            }),
            Self::Es384 { x, y } => json!({
                "type_": "ES384",
                "key": {"EC_EC2": {"curve": "SECP384R1", "x": b64(x), "y": b64(y)}}
            }),
            Self::Ed25519 { x } => json!({
                "type_": "EDDSA",
                "key": {"EC_OKP": {"curve": "ED25519", "x": b64(x)}}
            }),
            Self::Rs256 { n, e } => json!({
                "type_": "RS256",
                "key": {"RSA": {"n": b64(n), "e": e}}
            }),
        }
    }

    /// Reads the webauthn-rs JSON form.
    pub fn from_webauthn_json(value: &Value) -> Result<Self, KeyError> {
        let alg = value["type_"].as_str().unwrap_or_default();
        let Some(key) = value["key"].as_object().filter(|k| k.len() == 1) else {
            return err("the key has no single `key` part");
        };
        let bytes = |part: &Value, name: &str| -> Result<Vec<u8>, KeyError> {
            match &part[name] {
                Value::String(s) => {
                    URL_SAFE_NO_PAD.decode(s).map_err(|e| KeyError(format!("{name} is not base64url: {e}")))
                }
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_u64().and_then(|b| u8::try_from(b).ok()))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or_else(|| KeyError(format!("{name} is not a list of bytes"))),
                _ => err(format!("the key has no {name}")),
            }
        };
        let key = if let Some(ec) = key.get("EC_EC2") {
            let (x, y) = (bytes(ec, "x")?, bytes(ec, "y")?);
            match (alg, ec["curve"].as_str()) {
                ("ES256" | "ECDSA_SHA256", Some("SECP256R1")) => Self::Es256 { x, y },
                ("ES384" | "ECDSA_SHA384", Some("SECP384R1")) => Self::Es384 { x, y },
                (alg, curve) => return err(format!("unsupported elliptic-curve key: {alg} on {curve:?}")),
            }
        } else if let Some(okp) = key.get("EC_OKP") {
            match (alg, okp["curve"].as_str()) {
                ("EDDSA", Some("ED25519")) => Self::Ed25519 { x: bytes(okp, "x")? },
                (alg, curve) => return err(format!("unsupported octet key: {alg} on {curve:?}")),
            }
        } else if let Some(rsa) = key.get("RSA") {
            if alg != "RS256" {
                return err(format!("unsupported RSA algorithm {alg}"));
            }
            let e: [u8; 3] = bytes(rsa, "e")?.try_into().map_err(|_| KeyError("e is not 3 bytes".into()))?;
            Self::Rs256 { n: bytes(rsa, "n")?, e }
        } else {
            return err("unsupported key type");
        };
        key.checked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<PublicKey> {
        let mut n = vec![0xc5; 256];
        n[255] = 0x01;
        vec![
            PublicKey::Es256 { x: vec![1; 32], y: vec![2; 32] },
            PublicKey::Es384 { x: vec![3; 48], y: vec![4; 48] },
            PublicKey::Ed25519 { x: vec![5; 32] },
            PublicKey::Rs256 { n, e: [1, 0, 1] },
            // A modulus with leading zero bytes and a one-byte exponent.
            PublicKey::Rs256 { n: [vec![0, 0x45], vec![0x11; 254]].concat(), e: [0, 0, 3] },
        ]
    }

    #[test]
    fn every_encoding_round_trips() {
        for key in keys() {
            assert_eq!(PublicKey::from_cose(&key.to_cose()).unwrap(), key);
            assert_eq!(PublicKey::from_spki(&key.to_spki()).unwrap(), key);
            assert_eq!(PublicKey::from_webauthn_json(&key.to_webauthn_json()).unwrap(), key);
            assert_eq!(PublicKey::from_cose_base64url(&key.cose_base64url()).unwrap(), key);
            assert_eq!(PublicKey::from_spki_base64(&key.spki_base64()).unwrap(), key);
        }
    }

    #[test]
    fn known_encodings() {
        let key = PublicKey::Es256 { x: vec![1; 32], y: vec![2; 32] };
        let spki = hex(&key.to_spki());
        assert!(spki.starts_with("3059301306072a8648ce3d020106082a8648ce3d03010703420004"), "{spki}");
        // CTAP2 canonical order: 1 (kty), 3 (alg), -1 (crv), -2 (x), -3 (y).
        let cose = hex(&key.to_cose());
        assert!(cose.starts_with("a5010203262001215820"), "{cose}");
        let ed = PublicKey::Ed25519 { x: vec![5; 32] };
        assert!(hex(&ed.to_spki()).starts_with("302a300506032b6570032100"));
        let rsa = &keys()[3];
        assert!(
            hex(&rsa.to_spki())
                .starts_with("30820122300d06092a864886f70d01010105000382010f003082010a0282010100c5")
        );
        assert!(hex(&rsa.to_spki()).ends_with("0203010001"));
    }

    #[test]
    fn extra_bytes_and_non_canonical_encodings_are_refused() {
        let key = &keys()[0];
        let mut cose = key.to_cose();
        cose.push(0);
        assert!(PublicKey::from_cose(&cose).is_err());
        assert_eq!(PublicKey::from_cose_prefix(&cose).unwrap(), (key.clone(), cose.len() - 1));
        let mut spki = key.to_spki();
        spki.push(0);
        assert!(PublicKey::from_spki(&spki).is_err());
        // A compressed point, a truncated key, garbage.
        let mut compressed = key.to_spki();
        compressed[26] = 0x02;
        assert!(PublicKey::from_spki(&compressed).is_err());
        assert!(PublicKey::from_spki(&key.to_spki()[..40]).is_err());
        assert!(PublicKey::from_cose(&key.to_cose()[..40]).is_err());
        assert!(PublicKey::from_cose(b"\xff\xff").is_err());
        assert!(PublicKey::from_spki(b"").is_err());
        // Wrong sizes in JSON.
        let mut json = key.to_webauthn_json();
        json["key"]["EC_EC2"]["x"] = json!("AAAA");
        assert!(PublicKey::from_webauthn_json(&json).is_err());
    }

    #[test]
    fn cose_with_duplicate_or_inconsistent_labels_is_refused() {
        // {1: 2, 1: 2, ...}: a duplicate label.
        let mut dup = keys()[0].to_cose();
        dup[0] = 0xa6;
        dup.splice(1..1, [0x01, 0x02]);
        assert!(PublicKey::from_cose(&dup).is_err());
        // ES256 on the P-384 curve id.
        let mut wrong = keys()[0].to_cose();
        assert_eq!(wrong[6], 0x01);
        wrong[6] = 0x02;
        assert!(PublicKey::from_cose(&wrong).is_err());
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
