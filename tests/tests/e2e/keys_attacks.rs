//! Attacks on enrollment and sign-in: each is refused with a clear error and stores nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tapgate_server::webauthn::AttestationTrust;

use crate::keys_support::*;
use crate::state_support::refused;
use crate::support::{Backend, TestApp, backend_tests};

backend_tests!(replayed_and_reused_ceremonies_are_refused, foreign_credentials_and_origins_are_refused);

async fn replayed_and_reused_ceremonies_are_refused(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let invite = invited(&app, "alice").await;
    let key = SoftKey::new();

    // Two enrollments begun with one invite: the first to finish consumes it.
    let (c1, cred1) = registration_response(&app, &invite, &key).await;
    let other = SoftKey::new();
    let (c2, cred2) = registration_response(&app, &invite, &other).await;
    assert_eq!(finish_registration(&app, &invite, &c1, "k", &cred1).await.status(), StatusCode::CREATED);
    refused!(
        &app,
        finish_registration(&app, &invite, &c2, "k2", &cred2).await,
        StatusCode::UNAUTHORIZED,
        "invalid_invite"
    );
    assert_eq!(key_count(&app, "alice").await, 1);

    // Finishing the same ceremony twice.
    let token = login(&app, "alice", &key).await;
    refused!(
        &app,
        finish_registration(&app, &token, &c1, "again", &cred1).await,
        StatusCode::GONE,
        "ceremony_expired"
    );

    // A registration response replayed into a new ceremony.
    let resp = begin_registration(&app, &token).await;
    let begin: tapgate_shared::api::RegistrationChallenge = resp.json().await.unwrap();
    let msg = refused!(
        &app,
        finish_registration(&app, &token, &begin.ceremony, "replay", &cred2).await,
        StatusCode::UNAUTHORIZED,
        "webauthn_failed"
    );
    assert!(msg.contains("different challenge"), "{msg}");
    assert_eq!(key_count(&app, "alice").await, 1);

    // A login response replayed into a new ceremony, and a finished login finished again.
    let begin = begin_login(&app, "alice").await;
    let cred = assertion(&app, &key, &begin).await;
    assert_eq!(finish_login(&app, &begin.ceremony, &cred).await.status(), StatusCode::CREATED);
    refused!(&app, finish_login(&app, &begin.ceremony, &cred).await, StatusCode::GONE, "ceremony_expired");
    let fresh = begin_login(&app, "alice").await;
    let msg = refused!(
        &app,
        finish_login(&app, &fresh.ceremony, &cred).await,
        StatusCode::UNAUTHORIZED,
        "webauthn_failed"
    );
    assert!(msg.contains("answer was not accepted"), "{msg}");

    // An expired ceremony (5 minutes).
    let begin = begin_login(&app, "alice").await;
    let cred = assertion(&app, &key, &begin).await;
    app.clock.advance(301);
    let msg = refused!(
        &app,
        finish_login(&app, &begin.ceremony, &cred).await,
        StatusCode::GONE,
        "ceremony_expired"
    );
    assert!(msg.contains("expired"), "{msg}");
    let tokens_before = app
        .store()
        .list_tokens(&app.store().user_by_name("alice").await.unwrap().unwrap().id, app.clock_now())
        .await
        .unwrap()
        .len();
    assert_eq!(tokens_before, 2, "only the two successful sign-ins issued tokens");

    // Malformed base64 and CBOR.
    let begin = begin_login(&app, "alice").await;
    refused!(
        &app,
        finish_login(
            &app,
            &begin.ceremony,
            &json!({"id": "x", "rawId": "%%%", "type": "public-key",
        "response": {"authenticatorData": "AA", "clientDataJSON": "AA", "signature": "AA"}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_json"
    );
    let token = login(&app, "alice", &key).await;
    let resp = begin_registration(&app, &token).await;
    let begin: tapgate_shared::api::RegistrationChallenge = resp.json().await.unwrap();
    let mut bad = serde_json::to_value(registration_response(&app, &token, &SoftKey::new()).await.1).unwrap();
    bad["response"]["attestationObject"] = json!("bm90IGNib3I");
    let msg = refused!(
        &app,
        finish_registration(&app, &token, &begin.ceremony, "bad", &bad).await,
        StatusCode::BAD_REQUEST,
        "webauthn_failed"
    );
    assert!(msg.contains("malformed"), "{msg}");
    assert_eq!(key_count(&app, "alice").await, 1);
}

async fn foreign_credentials_and_origins_are_refused(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let alice_key = SoftKey::new();
    let bob_key = SoftKey::new();
    let alice_invite = invited(&app, "alice").await;
    enroll(&app, &alice_invite, &alice_key, "a").await;
    let bob_invite = invited(&app, "bob").await;
    enroll(&app, &bob_invite, &bob_key, "b").await;
    let bob = app.store().user_by_name("bob").await.unwrap().unwrap();
    let bob_cred = app.store().keys_of_user(&bob.id).await.unwrap()[0].credential_id.clone();

    // Bob's key answers alice's sign-in challenge.
    let begin = begin_login(&app, "alice").await;
    let mut options = begin.public_key.clone();
    options.allow_credentials[0].id = bob_cred.clone();
    let cred = tapgate::ceremony::assert(&bob_key.choice, &options, &app.origin).await.unwrap();
    let wrong_key_msg = refused!(
        &app,
        finish_login(&app, &begin.ceremony, &cred).await,
        StatusCode::UNAUTHORIZED,
        "webauthn_failed"
    );
    assert!(wrong_key_msg.contains("use a key enrolled for this account"), "{wrong_key_msg}");

    // Bob finishing an enrollment alice began (with her invite replaced by his token).
    let alice_token = login(&app, "alice", &alice_key).await;
    let bob_token = login(&app, "bob", &bob_key).await;
    let (ceremony, cred) = registration_response(&app, &alice_token, &SoftKey::new()).await;
    refused!(
        &app,
        finish_registration(&app, &bob_token, &ceremony, "x", &cred).await,
        StatusCode::FORBIDDEN,
        "forbidden"
    );

    // A response made for another origin.
    let begin = begin_login(&app, "alice").await;
    let evil = app.origin.replace("localhost", "evil.localhost");
    let cred = tapgate::ceremony::assert(&alice_key.choice, &begin.public_key, &evil).await.unwrap();
    let msg = refused!(
        &app,
        finish_login(&app, &begin.ceremony, &cred).await,
        StatusCode::UNAUTHORIZED,
        "webauthn_failed"
    );
    assert_eq!(msg, wrong_key_msg, "sign-in failures all read alike");
    let resp = begin_registration(&app, &alice_token).await;
    let begin: tapgate_shared::api::RegistrationChallenge = resp.json().await.unwrap();
    let cred = tapgate::ceremony::register(&SoftKey::new().choice, &begin.public_key, &evil).await.unwrap();
    refused!(
        &app,
        finish_registration(&app, &alice_token, &begin.ceremony, "evil", &cred).await,
        StatusCode::UNAUTHORIZED,
        "webauthn_failed"
    );
    assert_eq!(key_count(&app, "alice").await, 1);

    // No account enumeration: an unknown user gets the same shape, stably, and the same refusal.
    let known: Value = app
        .http
        .post(app.url("/api/v1/sessions"))
        .json(&json!({"username": "alice"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first =
        app.http.post(app.url("/api/v1/sessions")).json(&json!({"username": "nobody"})).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let second: Value = app
        .http
        .post(app.url("/api/v1/sessions"))
        .json(&json!({"username": "nobody"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shape = |v: &Value| {
        let mut keys: Vec<String> = v["publicKey"].as_object().unwrap().keys().cloned().collect();
        keys.sort();
        let allow = v["publicKey"]["allowCredentials"].as_array().unwrap();
        (keys, allow[0].as_object().unwrap().keys().cloned().collect::<Vec<_>>())
    };
    assert_eq!(shape(&known), shape(&first));
    // The decoy looks like an account's keys: one or two ids of lengths real keys use.
    let decoy_ids = first["publicKey"]["allowCredentials"].as_array().unwrap();
    assert!((1..=2).contains(&decoy_ids.len()));
    for id in decoy_ids {
        let bytes = base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            id["id"].as_str().unwrap(),
        )
        .unwrap();
        assert!([16, 32, 48, 64].contains(&bytes.len()), "{}", bytes.len());
    }
    let mut lengths = std::collections::BTreeSet::new();
    for i in 0..24 {
        let v: Value = app
            .http
            .post(app.url("/api/v1/sessions"))
            .json(&json!({"username": format!("ghost{i}")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for id in v["publicKey"]["allowCredentials"].as_array().unwrap() {
            lengths.insert(id["id"].as_str().unwrap().len());
        }
    }
    assert!(lengths.len() > 1, "decoys vary across accounts like real keys do: {lengths:?}");
    assert_eq!(
        first["publicKey"]["allowCredentials"], second["publicKey"]["allowCredentials"],
        "stable decoy"
    );
    assert_ne!(first["publicKey"]["challenge"], second["publicKey"]["challenge"]);
    let decoy: tapgate_shared::api::AuthenticationChallenge = serde_json::from_value(first).unwrap();
    let mut options = decoy.public_key.clone();
    options.allow_credentials[0].id = app
        .store()
        .keys_of_user(&app.store().user_by_name("alice").await.unwrap().unwrap().id)
        .await
        .unwrap()[0]
        .credential_id
        .clone();
    let cred = tapgate::ceremony::assert(&alice_key.choice, &options, &app.origin).await.unwrap();
    let unknown_msg = refused!(
        &app,
        finish_login(&app, &decoy.ceremony, &cred).await,
        StatusCode::UNAUTHORIZED,
        "webauthn_failed"
    );
    assert_eq!(unknown_msg, wrong_key_msg);

    // A malformed answer naming the offered credential: the same refusal for a real account
    // and an unknown one.
    for username in ["alice", "nobody"] {
        let begin = begin_login(&app, username).await;
        let mut cred = tapgate::ceremony::assert(
            &alice_key.choice,
            &options_for(&app, &begin, "alice").await,
            &app.origin,
        )
        .await
        .unwrap();
        cred.raw_id = begin.public_key.allow_credentials[0].id.clone();
        cred.response.authenticator_data = vec![1, 2, 3];
        let msg = refused!(
            &app,
            finish_login(&app, &begin.ceremony, &cred).await,
            StatusCode::UNAUTHORIZED,
            "webauthn_failed"
        );
        assert_eq!(msg, wrong_key_msg, "{username}");
    }
}

/// `begin`'s options with alice's credential offered, so her soft key answers them.
async fn options_for(
    app: &TestApp,
    begin: &tapgate_shared::api::AuthenticationChallenge,
    user: &str,
) -> webauthn_rs_proto::PublicKeyCredentialRequestOptions {
    let id = app.store().user_by_name(user).await.unwrap().unwrap().id;
    let mut options = begin.public_key.clone();
    options.allow_credentials.truncate(1);
    options.allow_credentials[0].id = app.store().keys_of_user(&id).await.unwrap()[0].credential_id.clone();
    options
}

#[tokio::test]
async fn attestation_is_recorded_against_the_configured_trust() {
    let key = SoftKey::new();
    let other = SoftKey::new();

    // Trusting this key's CA: attested.
    let trust = AttestationTrust::load(&key.ca_pem(), None).unwrap();
    let app = TestApp::with_trust(Backend::Sqlite, trust).await.unwrap();
    let invite = invited(&app, "alice").await;
    let stored = enroll(&app, &invite, &key, "k").await;
    assert_eq!(stored["attested"], true);
    let aaguid: uuid::Uuid = stored["aaguid"].as_str().unwrap().parse().unwrap();
    let keys = app
        .store()
        .keys_of_user(&app.store().user_by_name("alice").await.unwrap().unwrap().id)
        .await
        .unwrap();
    // The anchor is named by its subject (the soft key's CA).
    assert!(keys[0].attestation_ca.as_deref().unwrap().contains("CN=Dynamic Softtoken CA"));

    // Trusting another CA only: a genuine packed attestation, but not attested.
    let trust = AttestationTrust::load(&other.ca_pem(), None).unwrap();
    let app = TestApp::with_trust(Backend::Sqlite, trust).await.unwrap();
    let invite = invited(&app, "alice").await;
    let stored = enroll(&app, &invite, &SoftKey::new(), "k").await;
    assert_eq!(stored["attested"], false);
    assert_eq!(stored["attestation_format"], "packed");

    // The right CA but an AAGUID allowlist without this model: not attested.
    let not_this = [uuid::Uuid::from_u128(aaguid.as_u128() ^ 1)].into_iter().collect();
    let trust = AttestationTrust::load(&key.ca_pem(), Some(not_this)).unwrap();
    let app = TestApp::with_trust(Backend::Sqlite, trust).await.unwrap();
    let invite = invited(&app, "alice").await;
    let fresh = SoftKey::new();
    let trust_fresh = AttestationTrust::load(&fresh.ca_pem(), Some([aaguid].into_iter().collect())).unwrap();
    let stored = enroll(&app, &invite, &key, "k").await;
    assert_eq!(stored["attested"], false);
    // …and with the allowlist naming it: attested.
    let app = TestApp::with_trust(Backend::Sqlite, trust_fresh).await.unwrap();
    let invite = invited(&app, "alice").await;
    let stored = enroll(&app, &invite, &fresh, "k").await;
    assert_eq!(stored["attested"], true);

    assert!(AttestationTrust::load(std::path::Path::new("/nonexistent.pem"), None).is_err());
}
