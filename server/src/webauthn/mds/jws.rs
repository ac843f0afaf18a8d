//! The BLOB's envelope: a JWS in compact form whose protected header carries the signing
//! certificate and its chain (`x5c`, RFC 7515 §4.1.6). The signature is checked with the first
//! `x5c` certificate, and that certificate must chain to a trusted root.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use crypto_glue::ecdsa_p256::{EcdsaP256PublicKey, EcdsaP256Signature, EcdsaP256VerifyingKey};
use crypto_glue::rsa::{RS256PublicKey, RS256Signature, RS256VerifyingKey};
use crypto_glue::traits::{DecodeDer, OwnedToRef, Verifier};
use crypto_glue::x509::{Certificate, GeneralName, SubjectAltName, X509Store};
use serde::Deserialize;

use super::MdsError;

/// The largest `x5c` chain accepted (the real one has three certificates).
const MAX_CHAIN: usize = 8;

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    x5c: Vec<String>,
}

/// A JWS whose signature verified with its leaf certificate, which chains to a trusted root.
pub struct Verified {
    pub payload: Vec<u8>,
    /// The subject of the certificate that signed the BLOB.
    pub signer: String,
}

/// Verifies `compact` against `roots` at `now`. With `signer_domain`, the signing certificate must
/// also be issued to that DNS domain or a name under it (subject CN or a subjectAltName dNSName).
pub fn verify(
    compact: &str,
    roots: &[Certificate],
    signer_domain: Option<&str>,
    now: SystemTime,
) -> Result<Verified, MdsError> {
    let mut parts = compact.trim().split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(MdsError::Malformed("it is not a JWS in compact form (three base64url parts)".into()));
    };
    let header_json = decode_part("header", header_b64)?;
    let header: Header = serde_json::from_slice(&header_json)
        .map_err(|e| MdsError::Malformed(format!("its JWS header is not the expected JSON: {e}")))?;
    if header.x5c.is_empty() {
        return Err(MdsError::Malformed("its JWS header has no x5c certificate chain".into()));
    }
    if header.x5c.len() > MAX_CHAIN {
        return Err(MdsError::Malformed(format!("its x5c chain has more than {MAX_CHAIN} certificates")));
    }
    let chain = header
        .x5c
        .iter()
        .enumerate()
        .map(|(i, b64)| {
            let der = STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| MdsError::Malformed(format!("x5c certificate {i} is not base64: {e}")))?;
            Certificate::from_der(&der)
                .map_err(|e| MdsError::Malformed(format!("x5c certificate {i} is not a certificate: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let payload = decode_part("payload", payload_b64)?;
    let signature = decode_part("signature", signature_b64)?;
    let (leaf, _) = chain.split_first().ok_or_else(|| MdsError::Malformed("empty x5c".into()))?;

    verify_chain(&chain, roots, now)?;
    if let Some(domain) = signer_domain
        && !issued_within(leaf, domain)
    {
        return Err(MdsError::WrongSigner { subject: leaf.tbs_certificate().subject().to_string() });
    }
    let signing_input = format!("{header_b64}.{payload_b64}");
    verify_signature(&header.alg, leaf, signing_input.as_bytes(), &signature)?;
    Ok(Verified { payload, signer: leaf.tbs_certificate().subject().to_string() })
}

fn decode_part(what: &str, b64: &str) -> Result<Vec<u8>, MdsError> {
    URL_SAFE_NO_PAD
        .decode(b64.as_bytes())
        .map_err(|e| MdsError::Malformed(format!("its JWS {what} is not base64url: {e}")))
}

/// The chain from the leaf up must reach a trusted root. The BLOB's `x5c` may end with a
/// cross-certificate above the root the verifier trusts, so each path from the leaf alone to the
/// whole chain is tried (RFC 5280 takes the trust anchor as an input, not as part of the path).
fn verify_chain(chain: &[Certificate], roots: &[Certificate], now: SystemTime) -> Result<(), MdsError> {
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err(MdsError::Malformed("empty x5c".into()));
    };
    let mut store = X509Store::new(roots);
    // Certificates issued for TLS servers do not always carry basic constraints.
    store.leaf_basic_constraints_required(false);
    let mut last = None;
    for len in 0..=intermediates.len() {
        match store.verify(leaf, intermediates.get(..len).unwrap_or_default(), now) {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(MdsError::Untrusted(last.map(|e| format!("{e:?}")).unwrap_or_default()))
}

/// Whether `cert` is issued to `domain` or a name under it (its subject CN or a subjectAltName
/// dNSName).
fn issued_within(cert: &Certificate, domain: &str) -> bool {
    let within = |name: &str| {
        let name = name.to_ascii_lowercase();
        let domain = domain.to_ascii_lowercase();
        name == domain || name.strip_suffix(&domain).is_some_and(|head| head.ends_with('.'))
    };
    let tbs = cert.tbs_certificate();
    if tbs.subject().common_name().ok().flatten().is_some_and(|cn| within(&cn.value())) {
        return true;
    }
    match tbs.get_extension::<SubjectAltName>() {
        Ok(Some((_, san))) => san.0.iter().any(|name| match name {
            GeneralName::DnsName(dns) => within(dns.as_str()),
            _ => false,
        }),
        _ => false,
    }
}

/// RS256 (RSASSA-PKCS1-v1_5 with SHA-256) or ES256 (P-256 with SHA-256, the signature as the
/// 64-byte `r || s` of RFC 7518 §3.4, or DER), with a key of the matching type.
fn verify_signature(alg: &str, leaf: &Certificate, input: &[u8], signature: &[u8]) -> Result<(), MdsError> {
    let spki = leaf.tbs_certificate().subject_public_key_info().owned_to_ref();
    let wrong_key = || MdsError::Malformed(format!("its signing certificate's key does not fit alg {alg}"));
    let valid = match alg {
        "RS256" => {
            let key = RS256PublicKey::try_from(spki).map_err(|_| wrong_key())?;
            let signature = RS256Signature::try_from(signature).map_err(|_| MdsError::BadSignature)?;
            RS256VerifyingKey::new(key).verify(input, &signature).is_ok()
        }
        "ES256" => {
            let key = EcdsaP256PublicKey::try_from(spki).map_err(|_| wrong_key())?;
            // A DER signature (as in the MDS3 specification's own example BLOB) is read too.
            let signature = EcdsaP256Signature::from_slice(signature)
                .or_else(|_| EcdsaP256Signature::from_der(signature))
                .map_err(|_| MdsError::BadSignature)?;
            EcdsaP256VerifyingKey::from(key).verify(input, &signature).is_ok()
        }
        other => return Err(MdsError::Algorithm(other.to_string())),
    };
    if valid { Ok(()) } else { Err(MdsError::BadSignature) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json.as_bytes())
    }

    fn err(compact: &str) -> MdsError {
        match verify(compact, &[], None, SystemTime::now()) {
            Err(e) => e,
            Ok(_) => panic!("{compact} verified"),
        }
    }

    #[test]
    fn malformed_envelopes_are_refused_before_any_crypto() {
        assert!(matches!(err("only.two"), MdsError::Malformed(_)));
        assert!(matches!(err("a.b.c.d"), MdsError::Malformed(_)));
        assert!(matches!(err("!!.e30.AA"), MdsError::Malformed(_)));
        let no_chain = format!("{}.{}.AA", b64(r#"{"alg":"RS256"}"#), b64("{}"));
        match err(&no_chain) {
            MdsError::Malformed(m) => assert!(m.contains("no x5c"), "{m}"),
            other => panic!("{other:?}"),
        }
        let bad_cert = format!("{}.{}.AA", b64(r#"{"alg":"RS256","x5c":["AAAA"]}"#), b64("{}"));
        match err(&bad_cert) {
            MdsError::Malformed(m) => assert!(m.contains("not a certificate"), "{m}"),
            other => panic!("{other:?}"),
        }
        let long = format!(r#"{{"alg":"RS256","x5c":[{}]}}"#, ["\"AAAA\""; 9].join(","));
        assert!(matches!(err(&format!("{}.e30.AA", b64(&long))), MdsError::Malformed(_)));
    }
}
