//! Writes the fuzz targets' WebAuthn fixtures and seeds (`fuzz/fixtures/`, `fuzz/corpus/`) from
//! a real software-key registration and assertion, so the committed bytes are what a key sends.
//! Run by hand when the formats change:
//! `cargo test -p tapgate --lib fuzz_seeds -- --ignored`.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tapgate_shared::api::ApprovalRecord;
use tapgate_shared::intent::{Intent, sri_sha512};
use tapgate_shared::public_key::PublicKey;

use super::SoftAuthenticator;
use super::test_support::{TestRp, assert_request, client_data};
use crate::authenticator::{Authenticator, UserVerification};

/// The fuzz targets' framing: each part but the last preceded by its length (u16, big-endian).
fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 < parts.len() {
            out.extend_from_slice(&u16::try_from(part.len()).expect("part fits a u16").to_be_bytes());
        }
        out.extend_from_slice(part);
    }
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).expect("create seed directory");
    fs::write(dir.join(name), bytes).expect("write seed");
}

#[test]
#[ignore = "writes fuzz/fixtures and fuzz/corpus; run by hand"]
fn fuzz_seeds() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let fixtures = fuzz.join("fixtures");
    let corpus = fuzz.join("corpus");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut key = SoftAuthenticator::open(&dir.path().join("key.cbor")).expect("soft key");
    let rp = TestRp::new();

    let mut registration = None;
    let credential = rp
        .register_with(None, UserVerification::Preferred, |req| {
            let resp = key.register(req).map_err(|e| e.to_string())?;
            registration = Some((req.client_data_json.clone(), resp.clone()));
            Ok(resp)
        })
        .expect("registration verifies");
    let (reg_client_data, reg) = registration.expect("registration response");
    write(
        &corpus.join("webauthn_register"),
        "soft-packed",
        &join(&[&reg_client_data, &reg.credential_id, &reg.attestation_object]),
    );
    write(&fixtures, "credential.json", serde_json::to_string(&credential).expect("json").as_bytes());

    let public_key = PublicKey::from_webauthn_json(&serde_json::to_value(&credential.cred).expect("json"))
        .expect("ES256 key");
    write(&corpus.join("public_key"), "es256-cose", &public_key.to_cose());
    write(&corpus.join("public_key"), "es256-spki", &public_key.to_spki());
    write(&corpus.join("public_key"), "es256-json", public_key.to_webauthn_json().to_string().as_bytes());
    let keyring = format!("{}\n", crate::keyring::line("alice", &reg.credential_id, &public_key));
    write(&fixtures, "keyring", keyring.as_bytes());

    // An approval of fuzz-pkg@1.0.0 (the fixture tarball), signed by that key.
    let tarball = fs::read(fixtures.join("record.tgz")).expect("fixture tarball");
    let intent = Intent {
        package: "fuzz-pkg".into(),
        version: "1.0.0".into(),
        integrity: sri_sha512(&tarball),
        requested_by: "alice".into(),
    };
    let nonce = [7u8; 32];
    let challenge = intent.challenge(&nonce);
    let cd = client_data("webauthn.get", &challenge);
    let assertion =
        key.assert(&assert_request(cd.clone(), vec![reg.credential_id.clone()])).expect("assertion");
    write(
        &corpus.join("webauthn_authenticate"),
        "soft-es256",
        &join(&[&cd, &assertion.credential_id, &assertion.authenticator_data, &assertion.signature]),
    );
    let record = ApprovalRecord {
        format: 1,
        intent,
        gate_intent: None,
        nonce: URL_SAFE_NO_PAD.encode(nonce),
        challenge: URL_SAFE_NO_PAD.encode(challenge),
        client_data_json: URL_SAFE_NO_PAD.encode(&cd),
        authenticator_data: URL_SAFE_NO_PAD.encode(&assertion.authenticator_data),
        signature: URL_SAFE_NO_PAD.encode(&assertion.signature),
        credential_id: URL_SAFE_NO_PAD.encode(&reg.credential_id),
        credential_public_key: serde_json::to_value(&credential.cred).expect("json"),
        credential_public_key_cose: Some(public_key.cose_base64url()),
        credential_public_key_spki: Some(public_key.spki_base64()),
        rp_id: "localhost".into(),
        origin: "http://localhost:1234".into(),
        approved_by: "alice".into(),
        approved_at: "2026-12-04T21:00:00Z".into(),
        user_verified: false,
        signatures: Vec::new(),
        deploy_key: None,
        policy: None,
        required_approvals: None,
        oidc_publish: None,
    };
    let keyring = crate::keyring::Keyring::parse(&keyring, "seed").expect("keyring");
    let verified =
        crate::verify::verify_record(&record, "fuzz-pkg", "1.0.0", &tarball, &sri_sha512(&tarball), &keyring);
    assert!(verified.ok(), "the seed record verifies: {:?}", verified.checks);
    write(
        &corpus.join("approval_record"),
        "soft-format1.json",
        serde_json::to_string_pretty(&record).expect("json").as_bytes(),
    );
}
