//! What needs no running registry: RS256 verification with a generated RSA key, and the real
//! server binary refusing OIDC issuers it could not check tokens of.

use serde_json::{Value, json};

use crate::oidc_support::IssuerKey;

/// RS256 (what GitHub and GitLab sign with): a token verifies with its RSA key, not once edited,
/// and a key of the wrong type or algorithm never verifies it.
#[test]
fn rs256_tokens_verify_with_their_rsa_key_only() {
    use base64::Engine;
    use crypto_glue::rsa::{RS256Signature, RS256SigningKey, new_key};
    use crypto_glue::traits::{PublicKeyParts, SignatureEncoding, Signer};
    use tapgate_shared::oidc::{IdToken, Jwk};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let private = new_key(2048).unwrap();
    let public = private.to_public_key();
    let signing = RS256SigningKey::new(private);
    let part = |v: &Value| b64.encode(serde_json::to_vec(v).unwrap());
    let sign = |claims: &Value| {
        let input = format!("{}.{}", part(&json!({"alg": "RS256", "kid": "r1"})), part(claims));
        let signature: RS256Signature = signing.sign(input.as_bytes());
        format!("{input}.{}", b64.encode(signature.to_bytes()))
    };
    let jwk: Jwk = serde_json::from_value(json!({
        "kty": "RSA", "kid": "r1", "alg": "RS256", "n": b64.encode(public.n_bytes()), "e": b64.encode(public.e_bytes()),
    }))
    .unwrap();
    let token = sign(&json!({"iss": "x", "sub": "a"}));
    IdToken::parse(&token).unwrap().verify(&jwk).unwrap();
    let mut parts: Vec<&str> = token.split('.').collect();
    let edited = part(&json!({"iss": "x", "sub": "b"}));
    parts[1] = &edited;
    assert!(IdToken::parse(&parts.join(".")).unwrap().verify(&jwk).is_err(), "edited claims");
    let es256_jwk: Jwk = serde_json::from_value(IssuerKey::new("r1").jwk()).unwrap();
    assert!(IdToken::parse(&token).unwrap().verify(&es256_jwk).is_err(), "an EC key for an RS256 token");
    let mut wrong_alg = jwk.clone();
    wrong_alg.alg = Some("RS512".into());
    assert!(IdToken::parse(&token).unwrap().verify(&wrong_alg).is_err(), "a key published for another alg");
}

/// The real binary refuses an issuer it could not check tokens of, with one sentence.
#[test]
fn the_server_refuses_oidc_issuers_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (spec, expect) in [
        ("plain=http://ci.example", "must be https://"),
        ("gh=https://ci.example;ca=/nonexistent/ca.pem", "cannot read the CA file"),
        ("gh=https://ci.example;colour=blue", "unknown item"),
        ("gh=https://ci.example;kind=jenkins", "unknown issuer kind"),
    ] {
        let (status, _, err) = tapgate_tests::process::server_cli(
            &data,
            None,
            &["serve", "--listen", "127.0.0.1:0", "--oidc-issuer", spec],
        );
        assert!(!status.success(), "{spec}");
        assert!(err.contains(expect) && !err.contains("panicked"), "{spec}: {err}");
    }
}
