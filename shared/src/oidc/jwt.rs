//! ID tokens (JWS compact form, RFC 7519) and the issuers' JSON Web Keys (RFC 7517).
//!
//! Only RS256 (RSA PKCS#1 v1.5, SHA-256, 2048 to 8192 bits) and ES256 (ECDSA P-256, SHA-256)
//! are accepted: never `none`, never an HMAC (whose "key" would be the issuer's public JWK), and
//! the key's type must be the one the algorithm needs, whatever the header claims.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Longest ID token read, in bytes.
pub const MAX_ID_TOKEN_LEN: usize = 16 * 1024;
/// The algorithms an ID token may be signed with.
pub const ALLOWED_ALGS: [&str; 2] = ["RS256", "ES256"];

/// Why an ID token cannot be read or its signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// Not a JWT this registry reads (the sentence says why).
    Malformed(String),
    /// The header names an algorithm other than RS256 and ES256.
    Algorithm(String),
    /// The signature does not verify with the key.
    Signature(String),
}

impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(m) | Self::Algorithm(m) | Self::Signature(m) => f.write_str(m),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// Critical extensions this reader would have to understand: refused when present.
    #[serde(default)]
    crit: Option<Value>,
}

/// An ID token taken apart. Nothing in it is trusted before [`IdToken::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdToken {
    pub alg: String,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
    text: String,
    signing_input_len: usize,
    signature: Vec<u8>,
}

fn part(what: &str, b64: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| JwtError::Malformed(format!("the ID token's {what} is not base64url")))
}

impl IdToken {
    /// Reads a compact JWT.
    pub fn parse(text: &str) -> Result<IdToken, JwtError> {
        let text = text.trim();
        if text.len() > MAX_ID_TOKEN_LEN {
            return Err(JwtError::Malformed(format!("the ID token is longer than {MAX_ID_TOKEN_LEN} bytes")));
        }
        let mut parts = text.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed(
                "the bearer is not an ID token (a JWT: three base64url parts joined by dots)".into(),
            ));
        };
        let header: Header = serde_json::from_slice(&part("header", h)?)
            .map_err(|e| JwtError::Malformed(format!("the ID token's header is unreadable: {e}")))?;
        if !ALLOWED_ALGS.contains(&header.alg.as_str()) {
            return Err(JwtError::Algorithm(format!(
                "the ID token is signed with {:?}; this registry accepts RS256 and ES256 only",
                header.alg
            )));
        }
        if header.crit.is_some() {
            return Err(JwtError::Malformed("the ID token has critical header extensions (crit)".into()));
        }
        let claims: Map<String, Value> = serde_json::from_slice(&part("payload", p)?)
            .map_err(|e| JwtError::Malformed(format!("the ID token's claims are not a JSON object: {e}")))?;
        let signature = part("signature", s)?;
        Ok(IdToken {
            alg: header.alg,
            kid: header.kid,
            claims,
            text: text.to_string(),
            signing_input_len: h.len() + 1 + p.len(),
            signature,
        })
    }

    /// The token as presented.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// A string claim.
    pub fn str_claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A numeric date claim (seconds since the epoch; fractions are cut).
    pub fn time_claim(&self, name: &str) -> Option<i64> {
        let v = self.claims.get(name)?;
        v.as_i64().or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
    }

    /// Whether `aud` (a string or a list of strings) holds `audience`.
    pub fn has_audience(&self, audience: &str) -> bool {
        match self.claims.get("aud") {
            Some(Value::String(a)) => a == audience,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        }
    }

    /// Checks the signature with `key`, which must be a key of the type the algorithm needs.
    pub fn verify(&self, key: &Jwk) -> Result<(), JwtError> {
        let input = self.text.as_bytes().get(..self.signing_input_len).unwrap_or_default();
        key.verify(&self.alg, input, &self.signature)
    }
}

/// One JSON Web Key (the public members tapgate reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// A JWK Set (`jwks_uri`'s document). Keys tapgate cannot use are skipped when read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Value>,
}

impl Jwks {
    /// The public keys this registry can use, with a `kid`.
    pub fn usable(&self) -> Vec<Jwk> {
        self.keys
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .filter(|k| k.kid.is_some() && k.use_.as_deref().is_none_or(|u| u == "sig"))
            .filter(|k| matches!(k.kty.as_str(), "RSA" | "EC"))
            .collect()
    }
}

fn member(key: &Jwk, name: &str, value: Option<&String>) -> Result<Vec<u8>, JwtError> {
    let value =
        value.ok_or_else(|| JwtError::Signature(format!("the issuer's key {:?} lacks {name}", key.kid)))?;
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| JwtError::Signature(format!("the issuer's key {:?} has an unreadable {name}", key.kid)))
}

impl Jwk {
    /// Verifies `signature` over `input` with this key under `alg`.
    pub fn verify(&self, alg: &str, input: &[u8], signature: &[u8]) -> Result<(), JwtError> {
        if self.alg.as_deref().is_some_and(|a| a != alg) {
            return Err(JwtError::Signature(format!(
                "the issuer's key {:?} is for {}, the token says {alg}",
                self.kid,
                self.alg.as_deref().unwrap_or_default()
            )));
        }
        let bad =
            || JwtError::Signature("the ID token's signature does not verify with the issuer's key".into());
        match (alg, self.kty.as_str()) {
            ("RS256", "RSA") => {
                let n = member(self, "n", self.n.as_ref())?;
                let e = member(self, "e", self.e.as_ref())?;
                let key = ring::signature::RsaPublicKeyComponents { n: &n, e: &e };
                key.verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, input, signature).map_err(|_| bad())
            }
            ("ES256", "EC") if self.crv.as_deref() == Some("P-256") => {
                let x = member(self, "x", self.x.as_ref())?;
                let y = member(self, "y", self.y.as_ref())?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(JwtError::Signature(
                        "the issuer's P-256 key has malformed coordinates".into(),
                    ));
                }
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point)
                    .verify(input, signature)
                    .map_err(|_| bad())
            }
            _ => Err(JwtError::Algorithm(format!(
                "the ID token says {alg}, but the issuer's key {:?} is a {} key{}",
                self.kid,
                self.kty,
                self.crv.as_deref().map(|c| format!(" on {c}")).unwrap_or_default()
            ))),
        }
    }

    /// The RFC 7638 thumbprint (base64url SHA-256 of the required members in order): what a
    /// verifier compares with a key it pinned.
    pub fn thumbprint(&self) -> String {
        let s =
            |v: &Option<String>| serde_json::to_string(v.as_deref().unwrap_or_default()).unwrap_or_default();
        let canonical = match self.kty.as_str() {
            "RSA" => format!("{{\"e\":{},\"kty\":\"RSA\",\"n\":{}}}", s(&self.e), s(&self.n)),
            _ => format!(
                "{{\"crv\":{},\"kty\":{},\"x\":{},\"y\":{}}}",
                s(&self.crv),
                serde_json::to_string(&self.kty).unwrap_or_default(),
                s(&self.x),
                s(&self.y)
            ),
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// Whether `other` is the same public key (same type and members).
    pub fn same_key(&self, other: &Jwk) -> bool {
        self.kty == other.kty && self.thumbprint() == other.thumbprint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str, claims: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims),
            URL_SAFE_NO_PAD.encode([1u8; 64])
        )
    }

    #[test]
    fn none_and_hmac_are_refused_before_any_key_is_looked_at() {
        for alg in ["none", "HS256", "HS512", "RS512", "PS256", "EdDSA"] {
            let t = token(&format!("{{\"alg\":\"{alg}\",\"kid\":\"k\"}}"), "{}");
            assert!(matches!(IdToken::parse(&t), Err(JwtError::Algorithm(_))), "{alg}");
        }
        assert!(IdToken::parse("a.b").is_err());
        assert!(IdToken::parse(&token("{\"alg\":\"RS256\",\"crit\":[\"x\"]}", "{}")).is_err());
    }

    #[test]
    fn a_key_of_another_type_never_verifies() {
        let t = IdToken::parse(&token("{\"alg\":\"ES256\",\"kid\":\"k\"}", "{\"aud\":[\"a\",\"npm:x\"]}"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(t.has_audience("npm:x") && !t.has_audience("npm:y"));
        let rsa = Jwk {
            kty: "RSA".into(),
            kid: Some("k".into()),
            alg: None,
            use_: None,
            n: Some("AQAB".into()),
            e: Some("AQAB".into()),
            crv: None,
            x: None,
            y: None,
        };
        assert!(matches!(t.verify(&rsa), Err(JwtError::Algorithm(_))));
    }

    #[test]
    fn thumbprint_matches_rfc_7638() {
        // RFC 7638 §3.1's example key and thumbprint.
        let key = Jwk {
            kty: "RSA".into(),
            kid: None,
            alg: None,
            use_: None,
            n: Some("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into()),
            e: Some("AQAB".into()),
            crv: None,
            x: None,
            y: None,
        };
        assert_eq!(key.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }
}
