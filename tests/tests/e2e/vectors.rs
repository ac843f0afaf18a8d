//! Known-answer vectors for every signed or hashed format: intent v1 and v2 challenges (every
//! kind of change), rejections, ticket digests, deploy keys, audit entries and signed heads, and
//! webhook signatures. Fixed inputs and their outputs are committed in `tests/vectors/formats.json`;
//! this test recomputes every output with the Rust code, and `tests/vectors/check.mjs` (Node, its
//! built-in crypto only) recomputes them independently. A change to any format fails both.
//!
//! To regenerate after a deliberate format change (a new domain string, never an edit of an
//! existing one): `TAPGATE_WRITE_VECTORS=1 cargo test -p tapgate-tests --test e2e vectors::`.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tapgate_server::store::audit::{AuditDraft, entry_text};
use tapgate_server::store::signing_keys::SigningKeyRow;
use tapgate_shared::ci::{DeployKey, DeployKeyPayload};
use tapgate_shared::gate_intent::{Change, Deprecation, GateIntent};
use tapgate_shared::intent::{Intent, sri_sha512};

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors/formats.json")
}

fn nonce(fill: u8) -> [u8; 32] {
    let mut n = [0u8; 32];
    for (i, b) in n.iter_mut().enumerate() {
        *b = fill.wrapping_add(u8::try_from(i).unwrap());
    }
    n
}

/// The action name of every kind of change: a new variant does not compile until it is named
/// here, and then fails the test until it has a vector.
fn action_of(change: &Change) -> &'static str {
    match change {
        Change::Publish { .. } => "publish",
        Change::DistTagSet { .. } => "dist-tag-set",
        Change::DistTagRemove { .. } => "dist-tag-remove",
        Change::Deprecate { .. } => "deprecate",
        Change::Unpublish { .. } => "unpublish",
        Change::UnpublishPackage { .. } => "unpublish-package",
        Change::MaintainerAdd { .. } => "maintainer-add",
        Change::MaintainerRemove { .. } => "maintainer-remove",
        Change::PolicySet { .. } => "policy-set",
        Change::KeyAdd { .. } => "key-add",
        Change::KeyRemove { .. } => "key-remove",
        Change::CiCredentialCreate { .. } => "ci-credential-create",
        Change::Unlock { .. } => "unlock",
        Change::WebhookSet { .. } => "webhook-set",
        Change::StageReject { .. } => "stage-reject",
        Change::TrustCreate { .. } => "trust-create",
        Change::TrustRemove { .. } => "trust-remove",
    }
}

const ACTIONS: usize = 17;

fn v2_inputs() -> Vec<GateIntent> {
    let integrity = sri_sha512(b"tarball bytes");
    let s = |x: &str| x.to_string();
    let changes = vec![
        Change::Publish {
            version: s("1.2.3"),
            integrity: integrity.clone(),
            tags: vec![s("latest"), s("next")],
        },
        Change::DistTagSet { tag: s("beta"), version: s("1.2.3"), previous: Some(s("1.2.2")) },
        Change::DistTagSet { tag: s("beta"), version: s("1.2.3"), previous: None },
        Change::DistTagRemove { tag: s("beta"), version: s("1.2.3") },
        Change::Deprecate {
            versions: vec![
                Deprecation { version: s("1.0.0"), message: s("use 2.x — ünïcode") },
                Deprecation { version: s("1.0.1"), message: s("") },
            ],
        },
        Change::Unpublish { version: s("1.2.3"), integrity: integrity.clone() },
        Change::UnpublishPackage { versions: vec![s("1.0.0"), s("1.2.3")] },
        Change::MaintainerAdd { user: s("bob") },
        Change::MaintainerRemove { user: s("bob") },
        Change::PolicySet {
            old: s(r#"{"second_factor":"none"}"#),
            new: s(r#"{"second_factor":"security-key"}"#),
        },
        Change::KeyAdd {
            name: s("YubiKey 5C"),
            credential_id: s("AAECAwQ"),
            attestation_sha256: s(&"ab".repeat(32)),
        },
        Change::KeyRemove { key_id: s("key_0123"), name: s("old key"), credential_id: s("BAUGBwg") },
        Change::CiCredentialCreate {
            credential_id: s("ci_0123456789abcdef0123"),
            name: s("release workflow"),
            versions: s("^1.0.0"),
            tags: vec![s("latest")],
            expires_at: s("2027-01-01T00:00:00Z"),
            cidrs: vec![s("203.0.113.0/24"), s("2001:db8::/32")],
        },
        Change::Unlock { lock_id: s("lock_0123"), locked_at: s("2026-12-04T20:00:00Z") },
        Change::WebhookSet {
            old: vec![],
            new: vec![s("https://hooks.example.com/a"), s("https://hooks.example.com/b")],
        },
        Change::StageReject {
            stage_id: s("0b7c5d1e-8f2a-4c3b-9d4e-5f6a7b8c9d0e"),
            version: s("1.2.3"),
            integrity: integrity.clone(),
        },
        Change::TrustCreate {
            trust_id: s("trust_0123456789abcdef"),
            issuer: s("https://token.actions.githubusercontent.com"),
            provider: s("github"),
            claims: s(r#"{"repository":"acme/left-pad","workflow_ref":"release.yml"}"#),
            permissions: vec![s("createPackage"), s("createStagedPackage")],
        },
        Change::TrustRemove {
            trust_id: s("trust_0123456789abcdef"),
            issuer: s("https://token.actions.githubusercontent.com"),
            claims: s(r#"{"repository":"acme/left-pad"}"#),
        },
    ];
    changes
        .into_iter()
        .map(|change| {
            let subject = if change.is_account_change() { s("usr_0123") } else { s("@acme/left-pad") };
            GateIntent { subject, requested_by: s("alice"), change }
        })
        .collect()
}

fn v2_vector(intent: &GateIntent, i: u8) -> Value {
    let n = nonce(i);
    json!({
        "intent": intent,
        "nonce_hex": hex::encode(n),
        "canonical_hex": hex::encode(intent.canonical()),
        "challenge_hex": hex::encode(intent.challenge(&n)),
        "reject_challenge_hex": hex::encode(intent.reject_challenge(&n)),
        "digest_hex": intent.digest(),
    })
}

fn v1_vector(intent: &Intent, i: u8) -> Value {
    let n = nonce(i);
    json!({
        "intent": intent,
        "nonce_hex": hex::encode(n),
        "canonical_hex": hex::encode(intent.canonical()),
        "challenge_hex": hex::encode(intent.challenge(&n)),
    })
}

fn signing_key(seed: [u8; 32]) -> SigningKeyRow {
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes().to_vec();
    SigningKeyRow {
        kid: "k1".into(),
        alg: "EdDSA".into(),
        public_key: public,
        private_key: seed.to_vec(),
        not_before: 0,
        not_after: None,
    }
}

fn deploy_key_vector(payload: &DeployKeyPayload, seed: [u8; 32]) -> Value {
    let key = signing_key(seed);
    let payload_b64 = DeployKey::encode_payload(payload);
    let input = DeployKey::signing_input(&payload_b64);
    let signature = tapgate_server::signing::sign(&key, &input).unwrap();
    let text = DeployKey::assemble(&payload_b64, &signature);
    let parsed = DeployKey::parse(&text).unwrap();
    assert!(parsed.verify(&key.public_key), "the deploy key verifies");
    assert_eq!(&parsed.payload, payload);
    json!({
        "payload": payload,
        "seed_hex": hex::encode(seed),
        "public_key_hex": hex::encode(&key.public_key),
        "payload_b64": payload_b64,
        "signing_input_hex": hex::encode(&input),
        "signature_hex": hex::encode(signature),
        "text": text,
    })
}

fn audit_vectors(seed: [u8; 32]) -> Value {
    let chain = tapgate_shared::audit::package_chain("@acme/left-pad");
    let drafts = [
        ("publish", json!({"version": "1.0.0", "by": "alice", "integrity": sri_sha512(b"a")})),
        ("dist-tag-set", json!({"tag": "latest", "version": "1.0.0", "previous": null})),
        ("maintainer-add", json!({"user": "bob", "note": "naïve \"quoted\" \\ text"})),
    ];
    let mut prev = tapgate_shared::audit::GENESIS.to_string();
    let mut entries = Vec::new();
    for (i, (kind, body)) in drafts.into_iter().enumerate() {
        let seq = i64::try_from(i).unwrap() + 1;
        let at = 1_796_000_000 + seq * 61;
        let draft = AuditDraft { chain: chain.clone(), kind: kind.into(), body: body.clone() };
        let entry = entry_text(&draft, seq, at);
        let hash = tapgate_shared::audit::entry_hash(&prev, &entry);
        entries.push(json!({"kind": kind, "body": body, "seq": seq, "at": at, "prev_hash": prev, "entry": entry, "hash": hash}));
        prev = hash;
    }
    let key = signing_key(seed);
    let seq = u64::try_from(entries.len()).unwrap();
    let message = tapgate_shared::audit::head_message(&chain, seq, &prev);
    let signature = tapgate_server::signing::sign(&key, &message).unwrap();
    json!({
        "chain": chain,
        "entries": entries,
        "head": {
            "seq": seq, "hash": prev, "seed_hex": hex::encode(seed), "public_key_hex": hex::encode(&key.public_key),
            "message_hex": hex::encode(&message), "signature_hex": hex::encode(signature),
        },
    })
}

fn webhook_vectors() -> Value {
    let cases = [
        ("whsec_0123456789abcdef", 1_796_000_000_i64, r#"{"type":"publish","package":"left-pad"}"#),
        ("a", 0, ""),
        ("whsec_ünïcode secret", 2_000_000_000, "{\"event_id\":7,\"note\":\"line\\nbreak\"}"),
    ];
    Value::Array(
        cases
            .iter()
            .map(|(secret, t, body)| {
                let header = tapgate_server::notify::webhook::signature(secret, *t, body.as_bytes());
                assert!(tapgate_server::notify::webhook::verify(secret, &header, body.as_bytes(), *t, 0));
                json!({"secret": secret, "timestamp": t, "body": body, "header": header})
            })
            .collect(),
    )
}

/// The vectors as the code computes them from the fixed inputs.
fn computed() -> Value {
    let v1 = [
        Intent {
            package: "left-pad".into(),
            version: "1.0.0".into(),
            integrity: sri_sha512(b"tarball"),
            requested_by: "alice".into(),
        },
        Intent {
            package: "@scope/ünï".into(),
            version: "0.0.1-beta.1+build".into(),
            integrity: sri_sha512(b""),
            requested_by: "bob".into(),
        },
    ];
    let v2 = v2_inputs();
    let payload = DeployKeyPayload {
        v: 1,
        kid: "k1".into(),
        package: "@acme/left-pad".into(),
        version: "1.2.3".into(),
        integrity: sri_sha512(b"tarball bytes"),
        tags: vec!["latest".into(), "next".into()],
        credential_id: "ci_0123456789abcdef0123".into(),
        approval_id: "apr_0123".into(),
        issued_at: 1_796_000_000,
        expires_at: 1_796_000_600,
        nonce: URL_SAFE_NO_PAD.encode(nonce(9)),
    };
    json!({
        "intent_v1": v1.iter().enumerate().map(|(i, x)| v1_vector(x, u8::try_from(i).unwrap())).collect::<Vec<_>>(),
        "intent_v2": v2.iter().enumerate().map(|(i, x)| v2_vector(x, u8::try_from(i * 3).unwrap())).collect::<Vec<_>>(),
        "deploy_key": [deploy_key_vector(&payload, [7u8; 32])],
        "audit": audit_vectors([11u8; 32]),
        "webhook": webhook_vectors(),
    })
}

/// Recomputes every committed output from the committed inputs with the Rust code.
fn recompute(file: &Value) -> Value {
    let v1: Vec<Value> = file["intent_v1"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let intent: Intent = serde_json::from_value(v["intent"].clone()).unwrap();
            let out = v1_vector(&intent, u8::try_from(i).unwrap());
            assert_eq!(out["nonce_hex"], v["nonce_hex"]);
            out
        })
        .collect();
    let v2: Vec<Value> = file["intent_v2"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let intent: GateIntent = serde_json::from_value(v["intent"].clone()).unwrap();
            let out = v2_vector(&intent, u8::try_from(i * 3).unwrap());
            assert_eq!(out["nonce_hex"], v["nonce_hex"]);
            out
        })
        .collect();
    let dk = &file["deploy_key"][0];
    let payload: DeployKeyPayload = serde_json::from_value(dk["payload"].clone()).unwrap();
    let seed: [u8; 32] = hex::decode(dk["seed_hex"].as_str().unwrap()).unwrap().try_into().unwrap();
    let audit_seed: [u8; 32] =
        hex::decode(file["audit"]["head"]["seed_hex"].as_str().unwrap()).unwrap().try_into().unwrap();
    json!({
        "intent_v1": v1,
        "intent_v2": v2,
        "deploy_key": [deploy_key_vector(&payload, seed)],
        "audit": audit_vectors(audit_seed),
        "webhook": webhook_vectors(),
    })
}

#[test]
fn committed_vectors_match_the_rust_code() {
    let computed = computed();
    if std::env::var("TAPGATE_WRITE_VECTORS").is_ok_and(|v| v == "1") {
        std::fs::write(path(), serde_json::to_string_pretty(&computed).unwrap() + "\n").unwrap();
    }
    let text = std::fs::read_to_string(path()).expect("tests/vectors/formats.json");
    let file: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(recompute(&file), file, "a signed or hashed format changed: the vectors no longer match");
    assert_eq!(computed, file, "the vector inputs in this test and the file differ");
    // Every kind of change has a vector.
    let mut actions: Vec<&str> = v2_inputs().iter().map(|i| action_of(&i.change)).collect();
    actions.dedup();
    assert_eq!(actions.len(), ACTIONS, "a vector for every kind of change: {actions:?}");
    let in_file: std::collections::BTreeSet<&str> = file["intent_v2"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["intent"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(in_file.len(), ACTIONS, "{in_file:?}");
}

#[test]
fn an_independent_node_implementation_agrees_with_the_vectors() {
    if !tapgate_tests::tools::available("known-answer vectors in Node", &[("node", &["--version"])]) {
        return;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors/check.mjs");
    let out = std::process::Command::new("node").arg(&script).arg(path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "node disagrees:\n{stdout}\n{stderr}");
    // The script says how much it checked: nothing passes vacuously.
    assert!(stdout.contains(&format!("intent_v2 {ACTIONS} actions")), "{stdout}");
    assert!(stdout.contains("all vectors agree"), "{stdout}");
}
