//! Credential public keys in every encoding tapgate reads: COSE_Key CBOR (whole and as a
//! prefix of authenticator data), DER SubjectPublicKeyInfo, and webauthn-rs JSON. Whatever
//! decodes must encode back to bytes that decode to the same key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapgate_shared::public_key::PublicKey;

fn round_trips(key: &PublicKey) {
    assert_eq!(PublicKey::from_cose(&key.to_cose()).as_ref(), Ok(key), "COSE round trip");
    assert_eq!(PublicKey::from_spki(&key.to_spki()).as_ref(), Ok(key), "SPKI round trip");
    assert_eq!(PublicKey::from_webauthn_json(&key.to_webauthn_json()).as_ref(), Ok(key), "JSON round trip");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = PublicKey::from_cose(data) {
        round_trips(&key);
    }
    if let Ok((key, used)) = PublicKey::from_cose_prefix(data) {
        assert!(used <= data.len());
        round_trips(&key);
    }
    if let Ok(key) = PublicKey::from_spki(data) {
        round_trips(&key);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = PublicKey::from_cose_base64url(text);
        let _ = PublicKey::from_spki_base64(text);
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data)
        && let Ok(key) = PublicKey::from_webauthn_json(&value)
    {
        round_trips(&key);
    }
});
