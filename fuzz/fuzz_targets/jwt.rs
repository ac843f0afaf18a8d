//! OIDC ID tokens as the token exchange reads them (`IdToken::parse`, its claims, `verify`
//! against the issuer's JWKS), and the registry's signed OIDC publish statement `tapgate verify`
//! reads. The input is the token, a newline, then the JWKS document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapgate_shared::oidc::{IdToken, Jwks, OidcPublish, match_claims, validate_claims};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (token, jwks) = text.split_once('\n').unwrap_or((text, ""));
    let keys = serde_json::from_str::<Jwks>(jwks).map(|j| j.usable()).unwrap_or_default();
    if let Ok(parsed) = IdToken::parse(token) {
        assert_eq!(parsed.text(), token.trim(), "the token is kept as sent, less surrounding space");
        let _ = (parsed.str_claim("iss"), parsed.time_claim("exp"), parsed.has_audience("npm:localhost"));
        for key in &keys {
            let _ = parsed.verify(key);
            let _ = key.thumbprint();
        }
    }
    if let Ok(claims) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(jwks) {
        let _ = validate_claims(&claims, &["repository".to_string()]);
        let _ = match_claims("github", &claims, &claims);
    }
    if let Ok(statement) = OidcPublish::parse(token) {
        assert!(!statement.verify(&[0; 32]));
        let _ = statement.text();
    }
});
