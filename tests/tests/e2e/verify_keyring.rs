//! `tapgate verify` trusts the keys the verifier trusts (its keyring), never the keys the
//! record carries: the published-keys endpoints, real and forged records, and the CLI against
//! the server binary.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use tapgate::keyring::Keyring;
use tapgate::verify::{Check, Verification, verify_record};
use tapgate_shared::api::{ApprovalRecord, KeyList, PublicKeyList};
use tapgate_shared::gate_intent::Change;
use tapgate_shared::intent::sri_sha512;
use tapgate_shared::public_key::PublicKey;

use crate::publish_support::{Maintainer, maintainer, publish_with_key, tarball};
use crate::support::{Backend, TestApp, backend_tests, expect_error};

backend_tests!(published_keys_are_public_and_usable_only, a_real_record_verifies_with_the_exported_keyring);

/// The keyring a verifier gets from `GET path` (as `tapgate keyring export` writes it).
pub async fn exported(app: &TestApp, path: &str) -> Keyring {
    let list: PublicKeyList = app.get_json(path).await;
    let text: String = list
        .keys
        .iter()
        .map(|k| format!("{} {} spki:{}\n", k.user, k.credential_id, k.public_key_spki))
        .collect();
    Keyring::parse(&text, "exported").unwrap()
}

fn verify(record: &ApprovalRecord, tgz: &[u8], keyring: &Keyring) -> Verification {
    verify_record(record, "left-pad", "1.0.0", tgz, &sri_sha512(tgz), keyring)
}

fn check<'a>(v: &'a Verification, name: &str) -> &'a Check {
    v.checks.iter().find(|c| c.name.starts_with(name)).unwrap_or_else(|| panic!("no check {name:?}: {v:?}"))
}

/// alice published left-pad@1.0.0 with a tap; the record the registry serves for it.
async fn published(backend: Backend) -> Option<(TestApp, Maintainer, Vec<u8>, ApprovalRecord)> {
    let app = TestApp::new(backend).await?;
    let alice = maintainer(&app, "alice").await;
    let tgz = tarball("left-pad", "1.0.0", "v1");
    assert_eq!(publish_with_key(&app, &alice, "left-pad", "1.0.0", &tgz).await.status(), StatusCode::CREATED);
    let record = app.get_json("/api/v1/packages/left-pad/versions/1.0.0/approval").await;
    Some((app, alice, tgz, record))
}

async fn published_keys_are_public_and_usable_only(backend: Backend) {
    let Some((app, alice, _, record)) = published(backend).await else { return };
    let bob = maintainer(&app, "bob").await;
    // No token: public keys are public.
    let keys: PublicKeyList = app.get_json("/api/v1/users/alice/keys").await;
    assert_eq!(keys.keys.len(), 1);
    let k = &keys.keys[0];
    assert_eq!(
        (k.user.as_str(), k.name.as_str(), k.attested, k.algorithm.as_str()),
        ("alice", "key", false, "ES256")
    );
    assert_eq!(k.credential_id, record.credential_id);
    let spki = PublicKey::from_spki_base64(&k.public_key_spki).unwrap();
    assert_eq!(PublicKey::from_cose_base64url(&k.public_key_cose).unwrap(), spki);
    assert_eq!(PublicKey::from_webauthn_json(&record.credential_public_key).unwrap(), spki);
    // The record carries the same key in the standard encodings, per tap and at the top.
    assert_eq!(record.credential_public_key_spki.as_deref(), Some(k.public_key_spki.as_str()));
    assert_eq!(record.credential_public_key_cose.as_deref(), Some(k.public_key_cose.as_str()));
    assert_eq!(record.signatures[0].credential_public_key_spki.as_deref(), Some(k.public_key_spki.as_str()));
    // The owner's key list names the credential and its SPKI too.
    let own: KeyList = app.get_json_as("/api/v1/keys", &alice.token).await;
    assert_eq!(own.keys[0].credential_id, k.credential_id);
    assert_eq!(own.keys[0].public_key_spki.as_deref(), Some(k.public_key_spki.as_str()));

    // A package's keys are its current maintainers' keys.
    let pkg: PublicKeyList = app.get_json("/api/v1/packages/left-pad/keys").await;
    assert_eq!(pkg.keys, keys.keys);
    let bobs: PublicKeyList = app.get_json("/api/v1/users/bob/keys").await;
    assert_eq!(bobs.keys.len(), 1);
    assert_ne!(bobs.keys[0].credential_id, k.credential_id);
    drop(bob);

    // A suspended key is not published; unknown names are 404s with their codes.
    let user = app.store().user_by_name("alice").await.unwrap().unwrap();
    let key_id = app.store().keys_of_user(&user.id).await.unwrap()[0].id.clone();
    app.store().suspend_key(&key_id, "test", app.clock_now()).await.unwrap();
    let keys: PublicKeyList = app.get_json("/api/v1/users/alice/keys").await;
    assert!(keys.keys.is_empty());
    let pkg: PublicKeyList = app.get_json("/api/v1/packages/left-pad/keys").await;
    assert!(pkg.keys.is_empty());
    let resp = app.http.get(app.url("/api/v1/users/nobody/keys")).send().await.unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = app.http.get(app.url("/api/v1/packages/no-such-pkg/keys")).send().await.unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "package_not_found").await;
}

async fn a_real_record_verifies_with_the_exported_keyring(backend: Backend) {
    let Some((app, _alice, tgz, record)) = published(backend).await else { return };
    let keyring = exported(&app, "/api/v1/packages/left-pad/keys").await;
    let v = verify(&record, &tgz, &keyring);
    assert!(v.ok(), "{v:#?}");
    assert_eq!(v.approved_by, ["alice"]);
    assert_eq!(
        check(&v, "signature by the approving key").detail.split(" (").next(),
        Some("approved by alice")
    );

    // The same record with no keyring: a valid signature, by a key nobody trusts.
    let v = verify(&record, &tgz, &Keyring::default());
    assert!(!v.ok());
    assert!(v.approved_by.is_empty());
    let trust = check(&v, "the signing key is one you trust");
    assert!(!trust.ok);
    assert_eq!(
        trust.detail,
        format!(
            "signed by a key you do not trust (credential {}); add it with `tapgate keyring add` only if you got it \
             from alice directly, not from this registry",
            record.credential_id
        )
    );
    // Everything else about the record is fine: only trust is missing.
    assert_eq!(v.checks.iter().filter(|c| !c.ok).count(), 1, "{v:#?}");
}

/// What `tapgate verify` accepted before keyrings: the record's intent commits to the tarball,
/// its challenge to the intent, and its signature verifies under the public key the record
/// itself carries. (This is the old `verify_record`, condensed.)
fn old_semantics_accept(record: &ApprovalRecord, tgz: &[u8]) -> bool {
    let intent = record.gate_intent.as_ref().unwrap();
    let Change::Publish { integrity, .. } = &intent.change else { return false };
    let nonce: [u8; 32] = URL_SAFE_NO_PAD.decode(&record.nonce).unwrap().try_into().unwrap();
    let challenge = intent.challenge(&nonce);
    let cd: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&record.client_data_json).unwrap()).unwrap();
    let key: webauthn_rs_core::proto::COSEKey =
        serde_json::from_value(record.credential_public_key.clone()).unwrap();
    let mut data = URL_SAFE_NO_PAD.decode(&record.authenticator_data).unwrap();
    data.extend_from_slice(&Sha256::digest(URL_SAFE_NO_PAD.decode(&record.client_data_json).unwrap()));
    *integrity == sri_sha512(tgz)
        && URL_SAFE_NO_PAD.decode(&record.challenge).unwrap() == challenge
        && cd["challenge"] == URL_SAFE_NO_PAD.encode(challenge)
        && key.verify_signature(&URL_SAFE_NO_PAD.decode(&record.signature).unwrap(), &data).unwrap()
}

/// A P-256 key pair made here, as a registry would make its own.
struct ForgedKey {
    signing: crypto_glue::ecdsa_p256::EcdsaP256SigningKey,
    public: PublicKey,
}

impl ForgedKey {
    fn new() -> ForgedKey {
        use crypto_glue::traits::SpkiEncodePublicKey;
        let secret = crypto_glue::ecdsa_p256::new_key();
        let der = secret.public_key().to_public_key_der().unwrap();
        // RustCrypto's SPKI is the one tapgate reads and writes.
        let public = PublicKey::from_spki(der.as_bytes()).unwrap();
        assert_eq!(public.to_spki(), der.as_bytes());
        ForgedKey { signing: crypto_glue::ecdsa_p256::EcdsaP256SigningKey::from(&secret), public }
    }

    fn sign(&self, data: &[u8]) -> Vec<u8> {
        use crypto_glue::traits::Signer;
        let signature: crypto_glue::ecdsa_p256::EcdsaP256Signature = self.signing.sign(data);
        signature.to_der().as_bytes().to_vec()
    }
}

/// The registry rewrites alice's record to approve `evil` instead, signs it with its own key,
/// and serves that key as the signer's (under `credential_id`, named `alice`).
fn forge(record: &ApprovalRecord, evil: &[u8], key: &ForgedKey, credential_id: &str) -> ApprovalRecord {
    let mut forged = record.clone();
    let evil_integrity = sri_sha512(evil);
    let intent = forged.gate_intent.as_mut().unwrap();
    let Change::Publish { integrity, .. } = &mut intent.change else { panic!("not a publish") };
    *integrity = evil_integrity.clone();
    forged.intent.integrity = evil_integrity;
    let nonce: [u8; 32] = URL_SAFE_NO_PAD.decode(&forged.nonce).unwrap().try_into().unwrap();
    let challenge = forged.gate_intent.as_ref().unwrap().challenge(&nonce);
    let client_data = tapgate::ceremony::client_data_json("webauthn.get", &challenge, &forged.origin);
    // authenticatorData names only the relying party, flags and counter: alice's serves as is.
    let auth_data = URL_SAFE_NO_PAD.decode(&forged.authenticator_data).unwrap();
    let mut signed = auth_data.clone();
    signed.extend_from_slice(&Sha256::digest(&client_data));
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    forged.challenge = b64(&challenge);
    forged.client_data_json = b64(&client_data);
    forged.signature = b64(&key.sign(&signed));
    forged.credential_id = credential_id.to_string();
    forged.credential_public_key = key.public.to_webauthn_json();
    forged.credential_public_key_cose = Some(key.public.cose_base64url());
    forged.credential_public_key_spki = Some(key.public.spki_base64());
    let tap = &mut forged.signatures[0];
    tap.client_data_json = forged.client_data_json.clone();
    tap.signature = forged.signature.clone();
    tap.credential_id = forged.credential_id.clone();
    tap.credential_public_key = forged.credential_public_key.clone();
    tap.credential_public_key_cose = forged.credential_public_key_cose.clone();
    tap.credential_public_key_spki = forged.credential_public_key_spki.clone();
    forged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_signing_with_its_own_key_passed_the_old_check_and_fails_the_new() {
    let Some((app, _alice, tgz, record)) = published(Backend::Sqlite).await else { return };
    let keyring = exported(&app, "/api/v1/users/alice/keys").await;
    assert!(old_semantics_accept(&record, &tgz));
    let evil = tarball("left-pad", "1.0.0", "evil");
    let registry_key = ForgedKey::new();

    // 1. The registry keeps alice's credential id and swaps in its own public key. The old
    //    verifier recomputed everything from the record, so it accepted the evil tarball as
    //    "approved by alice's security key". The new one checks with the key the keyring holds
    //    for that credential, and sees the substitution.
    let forged = forge(&record, &evil, &registry_key, &record.credential_id);
    assert!(old_semantics_accept(&forged, &evil), "the attack worked against the old semantics");
    let v = verify(&forged, &evil, &keyring);
    assert!(!v.ok());
    assert!(v.approved_by.is_empty());
    let trust = check(&v, "the signing key is one you trust");
    assert!(!trust.ok && trust.detail.contains("the record carries a different public key"), "{trust:?}");
    let sig = check(&v, "signature by the approving key");
    assert_eq!(
        (sig.ok, sig.detail.as_str()),
        (false, "the signature does not verify with alice's trusted key")
    );
    // The intent, tarball and challenge checks pass: they were never the problem.
    for name in ["intent names this version", "tarball matches", "challenge commits"] {
        assert!(check(&v, name).ok, "{name}");
    }

    // 2. The registry uses a credential id of its own: a valid signature by an unknown key.
    let forged = forge(&record, &evil, &registry_key, &URL_SAFE_NO_PAD.encode([7u8; 32]));
    assert!(old_semantics_accept(&forged, &evil));
    let v = verify(&forged, &evil, &keyring);
    assert!(!v.ok());
    assert!(check(&v, "the signing key is one you trust").detail.starts_with(&format!(
        "signed by a key you do not trust (credential {}); add it with `tapgate keyring add` only if you got it from alice",
        URL_SAFE_NO_PAD.encode([7u8; 32])
    )));

    // 3. Only the top-level fields forged (what old readers read): the summary no longer
    //    repeats the first tap.
    let mut half = forge(&record, &evil, &registry_key, &record.credential_id);
    half.signatures = record.signatures.clone();
    let v = verify(&half, &evil, &keyring);
    assert!(!v.ok());
    assert!(!check(&v, "the record's summary repeats its first tap").ok);
}

#[test]
fn rsa_spki_is_the_one_rustcrypto_reads_and_writes() {
    use crypto_glue::traits::{SpkiDecodePublicKey, SpkiEncodePublicKey};
    let mut n = vec![0xc5; 256];
    n[255] = 0x01;
    let key = PublicKey::Rs256 { n, e: [1, 0, 1] };
    let parsed = crypto_glue::rsa::RS256PublicKey::from_public_key_der(&key.to_spki()).unwrap();
    assert_eq!(parsed.to_public_key_der().unwrap().as_bytes(), key.to_spki());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyring_entry_with_the_right_credential_and_another_key_fails() {
    let Some((_app, _alice, tgz, record)) = published(Backend::Sqlite).await else { return };
    let other = ForgedKey::new();
    let keyring =
        Keyring::parse(&format!("alice {} spki:{}\n", record.credential_id, other.public.spki_base64()), "k")
            .unwrap();
    let v = verify(&record, &tgz, &keyring);
    assert!(!v.ok());
    assert!(v.approved_by.is_empty());
    let trust = check(&v, "the signing key is one you trust");
    assert!(!trust.ok && trust.detail.contains("than your keyring (k:1)"), "{trust:?}");
    assert!(!check(&v, "signature by the approving key").ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_by_is_the_keyrings_word_and_must_agree_with_the_record() {
    let Some((app, _alice, tgz, record)) = published(Backend::Sqlite).await else { return };
    let keyring = exported(&app, "/api/v1/users/alice/keys").await;
    // The registry claims bob approved with alice's key.
    let mut spoofed = record.clone();
    spoofed.approved_by = "bob".into();
    spoofed.signatures[0].approved_by = "bob".into();
    let v = verify(&spoofed, &tgz, &keyring);
    assert!(!v.ok());
    let trust = check(&v, "the signing key is one you trust");
    assert!(
        trust.detail.starts_with("the record says bob approved, but credential")
            && trust.detail.contains("is alice's key"),
        "{trust:?}"
    );
    // The keyring names the key's owner otherwise: the record's "alice" is not believed either.
    let key = PublicKey::from_webauthn_json(&record.credential_public_key).unwrap();
    let renamed =
        Keyring::parse(&format!("carol {} spki:{}\n", record.credential_id, key.spki_base64()), "team")
            .unwrap();
    let v = verify(&record, &tgz, &renamed);
    assert!(!v.ok());
    assert!(v.approved_by.is_empty());
    assert!(
        check(&v, "the signing key is one you trust")
            .detail
            .contains("is carol's key in your keyring (team:1)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_format_1_records_still_verify_with_a_keyring() {
    let Some(app) = TestApp::new(Backend::Sqlite).await else { return };
    let alice = maintainer(&app, "alice").await;
    let tgz = tarball("left-pad", "1.0.0", "v1");
    let info =
        crate::publish_support::create_approval(&app, &alice, "left-pad", "1.0.0", &sri_sha512(&tgz)).await;
    let options = info.public_key.clone().unwrap();
    let ticket = crate::publish_support::approve(&app, &info, &alice.key).await;
    let body = crate::publish_support::publish_body("left-pad", "1.0.0", &tgz);
    let resp = crate::publish_support::put(&app, &alice.token, "left-pad", &body, Some(&ticket.ticket)).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let record: ApprovalRecord = app.get_json("/api/v1/packages/left-pad/versions/1.0.0/approval").await;
    let keyring = exported(&app, "/api/v1/users/alice/keys").await;

    // A format-1 record as older registries served it: the publish-only intent signed under
    // tapgate-intent-v1, one top-level signature, no `signatures` list, no standard encodings.
    let nonce: [u8; 32] = URL_SAFE_NO_PAD.decode(&record.nonce).unwrap().try_into().unwrap();
    let challenge = record.intent.challenge(&nonce);
    let mut v1_options = options;
    v1_options.challenge = challenge.to_vec();
    let tap = tapgate::ceremony::assert(&alice.key.choice, &v1_options, &app.origin).await.unwrap();
    let mut old = serde_json::to_value(&record).unwrap();
    let obj = old.as_object_mut().unwrap();
    for field in
        ["format", "gate_intent", "signatures", "credential_public_key_cose", "credential_public_key_spki"]
    {
        obj.remove(field);
    }
    obj.insert("challenge".into(), URL_SAFE_NO_PAD.encode(challenge).into());
    obj.insert("client_data_json".into(), URL_SAFE_NO_PAD.encode(&tap.response.client_data_json).into());
    obj.insert("authenticator_data".into(), URL_SAFE_NO_PAD.encode(&tap.response.authenticator_data).into());
    obj.insert("signature".into(), URL_SAFE_NO_PAD.encode(&tap.response.signature).into());
    let old: ApprovalRecord = serde_json::from_value(old).unwrap();
    assert_eq!((old.format, old.gate_intent.is_none(), old.signatures.is_empty()), (1, true, true));
    let v = verify(&old, &tgz, &keyring);
    assert!(v.ok(), "{v:#?}");
    assert_eq!(v.approved_by, ["alice"]);
    // And it is still only the keyring that makes it count.
    assert!(!verify(&old, &tgz, &Keyring::default()).ok());
}

mod cli;
