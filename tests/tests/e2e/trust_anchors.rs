//! Trust anchors: which keys are recorded as *attested*. A software key counts only when the
//! operator trusts its CA (as a CA file, or as the root of a model a FIDO metadata BLOB
//! certifies); `none` attestation, Chromium's virtual authenticator and AAGUIDs outside the
//! allowlist never do. BLOBs are signed by the tests' own root, and refused at start-up when
//! expired, forged, chained elsewhere or older than the last one accepted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crypto_glue::traits::DecodePem;
use crypto_glue::x509::Certificate;
use serde_json::{Value, json};
use tapgate_server::webauthn::AttestationTrust;
use tapgate_server::webauthn::builtin::ca_set;
use tapgate_server::webauthn::mds::{MdsError, MdsRoots, MdsTrust, verify_blob};
use tapgate_tests::bins::bin;
use tapgate_tests::process::{ServeOptions, ServerProcess, strip_ansi};
use webauthn_authenticator_rs::softtoken::AAGUID as SOFT_AAGUID;

use crate::keys_support::{SoftKey, enroll, finish_registration, invited, registration_response};
use crate::support::{Backend, TestApp, backend_tests, test_store};
use crate::trust_support::{
    FUTURE, PAST, TestMds, entry, issue, payload, sign_blob, sign_blob_der, with_payload,
};
use tapgate_server::store::fido_mds::MdsBlobRecord;

const SOFT_MODEL: &str = "tapgate software key (test model)";

fn ca_pem_text(key: &SoftKey) -> String {
    std::fs::read_to_string(key.ca_pem()).unwrap()
}

fn subject_of(pem: &str) -> String {
    Certificate::from_pem(pem.as_bytes()).unwrap().tbs_certificate().subject().to_string()
}

/// Enrolls `key` as the first key of a fresh user on a fresh app trusting `trust`.
async fn enrolled_with(trust: AttestationTrust, key: &SoftKey) -> Value {
    let app = TestApp::with_trust(Backend::Sqlite, trust).await.unwrap();
    let invite = invited(&app, "alice").await;
    enroll(&app, &invite, key, "k").await
}

/// A verified BLOB certifying the soft key model with `key`'s CA, with `status`.
fn mds_for(key: &SoftKey, aaguid: uuid::Uuid, status: &str) -> MdsTrust {
    let mds = TestMds::new();
    let blob = mds.sign(&payload(3, FUTURE, vec![entry(aaguid, SOFT_MODEL, &ca_pem_text(key), status)]));
    let roots = MdsRoots::from_pem(&mds.root.pem()).unwrap();
    verify_blob(&blob, &roots, SystemTime::now()).unwrap()
}

#[tokio::test]
async fn a_software_key_is_attested_only_when_its_ca_is_trusted() {
    let key = SoftKey::new();
    let trust = AttestationTrust::load(&key.ca_pem(), None).unwrap();
    let stored = enrolled_with(trust, &key).await;
    assert_eq!(stored["attested"], true, "{stored}");
    // The anchor it chained to is the CA's subject, shown with the key.
    assert_eq!(stored["attestation_ca"], subject_of(&ca_pem_text(&key)), "{stored}");
    assert!(stored["attestation_ca"].as_str().unwrap().contains("Dynamic Softtoken CA"));

    // The same kind of key, its CA untrusted (another key's CA, and Yubico's roots): not attested.
    let other = SoftKey::new();
    let trust = AttestationTrust::load(&other.ca_pem(), None)
        .unwrap()
        .with_builtin(ca_set("yubico").unwrap())
        .unwrap();
    assert_eq!(trust.ca_count(), 3);
    let stored = enrolled_with(trust, &SoftKey::new()).await;
    assert_eq!(stored["attested"], false, "{stored}");
    assert_eq!(stored["attestation_format"], "packed");
    assert!(stored.get("attestation_ca").is_none_or(Value::is_null), "{stored}");
}

#[tokio::test]
async fn a_none_attestation_never_counts_even_from_a_trusted_key() {
    let key = SoftKey::new();
    let trust = AttestationTrust::load(&key.ca_pem(), None).unwrap();
    let app = TestApp::with_trust(Backend::Sqlite, trust).await.unwrap();
    let invite = invited(&app, "alice").await;
    let (ceremony, mut cred) = registration_response(&app, &invite, &key).await;
    // What a browser sends when it strips attestation: fmt "none", no statement.
    let mut object: serde_cbor_2::Value =
        serde_cbor_2::from_slice(&cred.response.attestation_object).unwrap();
    let serde_cbor_2::Value::Map(map) = &mut object else { panic!("attestation object is not a map") };
    map.insert(serde_cbor_2::Value::Text("fmt".into()), serde_cbor_2::Value::Text("none".into()));
    map.insert(serde_cbor_2::Value::Text("attStmt".into()), serde_cbor_2::Value::Map(Default::default()));
    cred.response.attestation_object = serde_cbor_2::to_vec(&object).unwrap();
    let resp = finish_registration(&app, &invite, &ceremony, "k", &cred).await;
    let status = resp.status();
    let stored: Value = resp.json().await.unwrap();
    assert_eq!(status, 201, "{stored}");
    assert_eq!(stored["attestation_format"], "none");
    assert_eq!(stored["attested"], false, "{stored}");
    let user = app.store().user_by_name("alice").await.unwrap().unwrap();
    let keys = app.store().keys_of_user(&user.id).await.unwrap();
    assert!(!keys[0].attested && keys[0].attestation_ca.is_none());
}

#[tokio::test]
async fn a_model_certified_by_an_mds_blob_is_attested_for_its_aaguid_only() {
    let key = SoftKey::new();
    let stored = enrolled_with(
        AttestationTrust::none().with_mds(mds_for(&key, SOFT_AAGUID, "FIDO_CERTIFIED_L1")),
        &key,
    )
    .await;
    assert_eq!(stored["attested"], true, "{stored}");
    assert_eq!(stored["attestation_ca"], format!("MDS: {SOFT_MODEL}"));

    // The same root listed for another model: this key's AAGUID is not certified.
    let other_model = uuid::Uuid::from_u128(SOFT_AAGUID.as_u128() ^ 1);
    let key = SoftKey::new();
    let stored =
        enrolled_with(AttestationTrust::none().with_mds(mds_for(&key, other_model, "FIDO_CERTIFIED")), &key)
            .await;
    assert_eq!(stored["attested"], false, "{stored}");

    // Certified, but the model was revoked since: not trusted.
    let key = SoftKey::new();
    let revoked = mds_for(&key, SOFT_AAGUID, "REVOKED");
    assert_eq!((revoked.certified, revoked.skipped), (0, 1));
    let stored = enrolled_with(AttestationTrust::none().with_mds(revoked), &key).await;
    assert_eq!(stored["attested"], false, "{stored}");

    // Certified by the BLOB, but outside the operator's AAGUID allowlist: not attested.
    let key = SoftKey::new();
    let trust = AttestationTrust::none()
        .with_mds(mds_for(&key, SOFT_AAGUID, "FIDO_CERTIFIED"))
        .with_aaguids(Some([other_model].into_iter().collect()));
    let stored = enrolled_with(trust, &key).await;
    assert_eq!(stored["attested"], false, "{stored}");
}

#[test]
fn blobs_are_verified_before_anything_they_say_is_trusted() {
    let mds = TestMds::new();
    let roots = MdsRoots::from_pem(&mds.root.pem()).unwrap();
    let root_pem = mds.root.pem();
    let body = payload(7, FUTURE, vec![entry(SOFT_AAGUID, SOFT_MODEL, &root_pem, "FIDO_CERTIFIED")]);
    let now = SystemTime::now();

    let good = verify_blob(&mds.sign(&body), &roots, now).unwrap();
    // ES256 signatures are read as r || s (RFC 7518) and as DER.
    assert_eq!(verify_blob(&sign_blob_der(&mds.signer, &body), &roots, now).unwrap().serial, 7);
    assert_eq!((good.serial, good.certified, good.skipped), (7, 1, 0));
    assert_eq!(good.next_update.to_string(), FUTURE);
    assert!(good.signer.contains("CN=mds.fidoalliance.org"), "{}", good.signer);

    let expired = verify_blob(&mds.sign(&payload(7, PAST, vec![])), &roots, now);
    assert_eq!(
        expired.err().map(|e| e.sentence(Path::new("b.jwt"))).unwrap(),
        "the FIDO metadata BLOB b.jwt expired on 2020-01-31 (its nextUpdate): download the current BLOB"
    );

    // Another payload under the original signature.
    let forged = with_payload(&mds.sign(&body), &payload(8, FUTURE, vec![]));
    assert_eq!(verify_blob(&forged, &roots, now).err(), Some(MdsError::BadSignature));

    // Validly signed, but by a chain to another root.
    let elsewhere = TestMds::new();
    let err = verify_blob(&elsewhere.sign(&body), &roots, now).err();
    assert!(matches!(err, Some(MdsError::Untrusted(_))), "{err:?}");

    // With the name check the built-in roots get: a certificate for another site is refused.
    for name in ["www.example.com", "fidoalliance.org.example.com", "evilfidoalliance.org"] {
        let impostor = TestMds::with_signer_name(name);
        let named =
            MdsRoots::from_pem(&impostor.root.pem()).unwrap().requiring_signer_domain("fidoalliance.org");
        let err = verify_blob(&impostor.sign(&body), &named, now).err();
        assert!(matches!(&err, Some(MdsError::WrongSigner { subject }) if subject.contains(name)), "{err:?}");
    }
    for name in ["mds.fidoalliance.org", "mds3.fidoalliance.org", "fidoalliance.org"] {
        let genuine = TestMds::with_signer_name(name);
        let named =
            MdsRoots::from_pem(&genuine.root.pem()).unwrap().requiring_signer_domain("fidoalliance.org");
        assert!(verify_blob(&genuine.sign(&body), &named, now).is_ok(), "{name}");
    }

    // A chain through an intermediate verifies to the root, and to the intermediate when that is
    // the trusted one (x5c may carry certificates above the verifier's anchor).
    let intermediate = issue("CN=tapgate test MDS intermediate,O=tapgate tests,C=SE", Some(&mds.root), true);
    let leaf = issue("CN=mds.fidoalliance.org,O=tapgate tests,C=SE", Some(&intermediate), false);
    let chained = sign_blob(&leaf, &[&intermediate.cert, &mds.root.cert], &body);
    assert!(verify_blob(&chained, &roots, now).is_ok());
    let anchored_lower = MdsRoots::from_pem(&intermediate.pem()).unwrap();
    assert!(verify_blob(&chained, &anchored_lower, now).is_ok());
    let without_intermediate = sign_blob(&leaf, &[], &body);
    assert!(matches!(verify_blob(&without_intermediate, &roots, now), Err(MdsError::Untrusted(_))));

    // "alg": "none" and friends are refused, even with a valid chain.
    let parts: Vec<&str> = chained.split('.').collect();
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, parts[0]).unwrap(),
    )
    .unwrap();
    let none_header = json!({ "alg": "none", "x5c": header["x5c"] });
    let none = format!(
        "{}.{}.",
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, none_header.to_string()),
        parts[1]
    );
    assert_eq!(verify_blob(&none, &roots, now).err(), Some(MdsError::Algorithm("none".into())));
}

/// The last accepted serial only moves forward, on both backends.
async fn the_accepted_blob_serial_only_moves_forward(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else { return };
    let blob = |serial| MdsBlobRecord { serial, next_update: "2099-12-31", blob_sha256: "ab" };
    assert_eq!(store.last_fido_mds_serial().await.unwrap(), None);
    assert_eq!(store.accept_fido_mds(&blob(10), 1).await.unwrap(), Ok(()));
    assert_eq!(store.accept_fido_mds(&blob(10), 2).await.unwrap(), Ok(()), "the same BLOB again");
    assert_eq!(store.accept_fido_mds(&blob(9), 3).await.unwrap(), Err(10));
    assert_eq!(store.last_fido_mds_serial().await.unwrap(), Some(10));
    assert_eq!(store.accept_fido_mds(&blob(11), 4).await.unwrap(), Ok(()));
    assert_eq!(store.accept_fido_mds(&blob(10), 5).await.unwrap(), Err(11));
    assert_eq!(store.last_fido_mds_serial().await.unwrap(), Some(11));
}

backend_tests!(the_accepted_blob_serial_only_moves_forward);

/// Runs `tapgate-server serve ARGS` expecting it to refuse to start; returns its stderr. Kills
/// it (and fails) if it is still running after a minute, i.e. it started.
fn refused_start(data: &Path, args: &[&str]) -> String {
    let mut child = Command::new(bin("tapgate-server"))
        .arg("--data-dir")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tapgate-server started with {args:?} instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let stderr = strip_ansi(&stderr);
    assert!(!status.success(), "{stderr}");
    let errors: Vec<_> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "one error sentence expected:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    errors[0].to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_server_accepts_a_valid_blob_and_refuses_bad_ones_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mds = TestMds::new();
    let root = mds.root.write_pem(dir.path(), "root.pem");
    let root = root.to_str().unwrap();
    let key = SoftKey::new();
    let certified = |serial| {
        mds.sign(&payload(
            serial,
            FUTURE,
            vec![entry(SOFT_AAGUID, SOFT_MODEL, &ca_pem_text(&key), "FIDO_CERTIFIED")],
        ))
    };
    let blob5 = write(dir.path(), "blob5.jwt", &certified(5));
    let blob5 = blob5.to_str().unwrap();

    // A valid BLOB: the server starts and says what it trusts.
    let serve = |blob: &str| ServeOptions {
        extra_args: vec!["--fido-mds".into(), blob.into(), "--fido-mds-root".into(), root.into()],
        ..Default::default()
    };
    let server = ServerProcess::start(&data, &serve(blob5));
    let log = server.log();
    assert!(log.contains("accepted: serial 5, 1 certified models trusted, valid until 2099-12-31"), "{log}");
    server.terminate();

    // An older BLOB (lower serial) is a replay: refused, and the accepted serial stays.
    let blob4 = write(dir.path(), "blob4.jwt", &certified(4));
    let err = refused_start(&data, &["--fido-mds", blob4.to_str().unwrap(), "--fido-mds-root", root]);
    assert!(
        err.contains("its serial number 4 is lower than 5, the last one this registry accepted"),
        "{err}"
    );
    // The same BLOB again (a restart) and a newer one are fine.
    let server = ServerProcess::start(&data, &serve(blob5));
    server.terminate();
    let blob6 = write(dir.path(), "blob6.jwt", &certified(6));
    let server = ServerProcess::start(&data, &serve(blob6.to_str().unwrap()));
    server.terminate();
    let err = refused_start(&data, &["--fido-mds", blob5, "--fido-mds-root", root]);
    assert!(err.contains("its serial number 5 is lower than 6"), "{err}");

    // Expired.
    let expired = write(dir.path(), "expired.jwt", &mds.sign(&payload(9, PAST, vec![])));
    let err = refused_start(&data, &["--fido-mds", expired.to_str().unwrap(), "--fido-mds-root", root]);
    assert!(err.contains("expired on 2020-01-31 (its nextUpdate)"), "{err}");
    // Forged: another payload under a valid signature.
    let forged = write(dir.path(), "forged.jwt", &with_payload(&certified(9), &payload(10, FUTURE, vec![])));
    let err = refused_start(&data, &["--fido-mds", forged.to_str().unwrap(), "--fido-mds-root", root]);
    assert!(err.contains("its signature does not verify with its signing certificate"), "{err}");
    // Chained to another root.
    let elsewhere = write(dir.path(), "elsewhere.jwt", &TestMds::new().sign(&payload(9, FUTURE, vec![])));
    let err = refused_start(&data, &["--fido-mds", elsewhere.to_str().unwrap(), "--fido-mds-root", root]);
    assert!(err.contains("does not lead to a trusted FIDO metadata root"), "{err}");
    // With the built-in roots (the real FIDO ones), a test-signed BLOB is refused the same way.
    let err = refused_start(&data, &["--fido-mds", blob5]);
    assert!(err.contains("does not lead to a trusted FIDO metadata root"), "{err}");
    // Not a BLOB, and no file.
    let junk = write(dir.path(), "junk.jwt", "hello");
    let err = refused_start(&data, &["--fido-mds", junk.to_str().unwrap(), "--fido-mds-root", root]);
    assert!(err.contains("is not a JWS in compact form"), "{err}");
    let err = refused_start(&data, &["--fido-mds", "/nonexistent/blob.jwt"]);
    assert!(err.contains("cannot read the FIDO metadata BLOB /nonexistent/blob.jwt"), "{err}");
    let err = refused_start(&data, &["--attestation-ca-builtin", "acme"]);
    assert!(err.contains("unknown --attestation-ca-builtin \"acme\""), "{err}");
    // None of the refusals moved the accepted serial.
    let server = ServerProcess::start(&data, &serve(blob6.to_str().unwrap()));
    server.terminate();
}

#[test]
fn chromium_virtual_authenticator_is_never_attested() {
    let Some(driver) = tapgate_tests::tools::browser_driver() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A registry that trusts Yubico's roots and the models a (test-signed) BLOB certifies.
    let mds = TestMds::new();
    let root = mds.root.write_pem(dir.path(), "root.pem");
    let soft = SoftKey::new();
    let blob =
        payload(1, FUTURE, vec![entry(SOFT_AAGUID, SOFT_MODEL, &ca_pem_text(&soft), "FIDO_CERTIFIED")]);
    let blob = write(dir.path(), "blob.jwt", &mds.sign(&blob));
    let options = ServeOptions {
        extra_args: ["--attestation-ca-builtin", "yubico", "--fido-mds", blob.to_str().unwrap()]
            .into_iter()
            .map(String::from)
            .chain(["--fido-mds-root".to_string(), root.display().to_string()])
            .collect(),
        ..Default::default()
    };
    let server = ServerProcess::start(&data, &options);
    assert!(server.log().contains("attestation_cas=2"), "{}", server.log());
    let origin = server.origin.clone();
    let cli = |args: &[&str]| {
        let mut all = vec!["--origin", origin.as_str()];
        all.extend_from_slice(args);
        let (status, out, err) = tapgate_tests::process::server_cli(&data, None, &all);
        assert!(status.success(), "{err}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let invite_url = cli(&["user", "add", "carol", "--json"])["invite_url"].as_str().unwrap().to_string();

    let mut browser = tapgate_tests::browser::Browser::start(&driver);
    browser.goto(&invite_url);
    browser.fill("#key-name", "virtual key");
    browser.click("#enroll");
    browser.wait_for("#status[data-state=ok]");
    let status = browser.text("#status");
    assert!(status.contains("is enrolled for carol") && !status.contains("attested"), "{status}");

    let token =
        cli(&["token", "issue", "carol", "--scope", "read", "--json"])["token"].as_str().unwrap().to_string();
    let keys: Value = reqwest::blocking::Client::new()
        .get(server.url("/api/v1/keys"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let key = &keys["keys"][0];
    assert_eq!(key["name"], "virtual key", "{keys}");
    // Chromium attests its virtual keys (packed, its own batch certificate): a real chain, to a
    // root nobody trusts.
    assert_eq!(key["attestation_format"], "packed", "{keys}");
    assert_eq!(key["attested"], false, "{keys}");
    assert!(key.get("attestation_ca").is_none_or(Value::is_null), "{keys}");
}
