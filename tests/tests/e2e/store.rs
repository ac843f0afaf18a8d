//! The storage conformance suite: every backend must pass every test here.

use tapgate_server::store::StoreError;
use tapgate_server::store::ceremonies::{Ceremony, Taken};
use tapgate_server::store::gate::{CommitError, Guard};
use tapgate_server::store::keys::{CounterUpdate, Enrollment, NewSecurityKey};
use tapgate_server::store::npm_logins::LoginPoll;
use tapgate_shared::api::Scope;

use crate::support::{Backend, backend_tests, test_store};

backend_tests!(
    users_are_unique_and_found_by_name_and_id,
    migrations_are_idempotent,
    invites_are_valid_until_expiry_for_enabled_users_only,
    tokens_authenticate_until_revoked_or_expired,
    token_revocation_is_scoped_to_the_owner,
    disabling_a_user_revokes_their_tokens,
    security_events_are_recorded_newest_first,
    ceremonies_are_taken_once_and_expire,
    npm_logins_are_collected_once,
    server_secrets_are_stable,
    key_counters_move_by_compare_and_set,
    expired_rows_are_purged_but_publish_records_kept,
);

const NOW: i64 = 1_800_000_000;

async fn users_are_unique_and_found_by_name_and_id(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let alice = store.create_user("alice", true, NOW).await.unwrap();
    assert!(alice.admin && !alice.disabled);
    assert_eq!(alice.webauthn_handle.len(), 32);
    let err = store.create_user("alice", false, NOW).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(ref m) if m.contains("alice")), "{err:?}");
    let bob = store.create_user("bob", false, NOW).await.unwrap();
    assert_ne!(alice.webauthn_handle, bob.webauthn_handle);
    assert_eq!(store.user_by_name("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(store.user_by_id(&bob.id).await.unwrap(), Some(bob.clone()));
    assert_eq!(store.user_by_name("carol").await.unwrap(), None);
    let names: Vec<_> = store.list_users().await.unwrap().into_iter().map(|u| u.name).collect();
    assert_eq!(names, ["alice", "bob"]);
}

async fn migrations_are_idempotent(backend: Backend) {
    let Some((store, db)) = test_store(backend).await else {
        return;
    };
    store.create_user("alice", false, NOW).await.unwrap();
    // A second process connecting to the same database migrates nothing and sees the data.
    let again = tapgate_server::store::Store::connect(&db.url).await.unwrap();
    assert!(again.user_by_name("alice").await.unwrap().is_some());
}

async fn invites_are_valid_until_expiry_for_enabled_users_only(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let alice = store.create_user("alice", false, NOW).await.unwrap();
    let invite = store.create_invite(&alice.id, NOW).await.unwrap();
    assert!(invite.starts_with("tg_inv_"));
    let found = store.valid_invite(&invite, NOW + 60).await.unwrap().unwrap();
    assert_eq!(found.user_id, alice.id);
    assert_eq!(found.expires_at, NOW + 7 * 24 * 3600);
    assert!(store.valid_invite(&invite, NOW + 7 * 24 * 3600).await.unwrap().is_none(), "expired");
    assert!(store.valid_invite("tg_inv_nope", NOW).await.unwrap().is_none());
    assert!(store.valid_invite(&invite.replace("tg_inv_", "tg_api_"), NOW).await.unwrap().is_none());
    store.disable_user("alice", NOW).await.unwrap();
    assert!(store.valid_invite(&invite, NOW).await.unwrap().is_none(), "disabled user");
}

async fn tokens_authenticate_until_revoked_or_expired(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let alice = store.create_user("alice", true, NOW).await.unwrap();
    let (rec, secret) = store
        .issue_token(
            &alice.id,
            "laptop",
            &[Scope::Publish, Scope::Read, Scope::Read],
            None,
            tapgate_server::store::tokens::TokenSource::Issued,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(rec.scopes, [Scope::Read, Scope::Publish], "sorted and deduplicated");
    let auth = store.authenticate_token(&secret, NOW).await.unwrap().unwrap();
    assert_eq!(
        (auth.username.as_str(), auth.admin, auth.token_id.as_str()),
        ("alice", true, rec.id.as_str())
    );
    let listed = store.list_tokens(&alice.id, NOW + 1).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_used_at, Some(NOW), "authentication marks the token used");
    // Later uses within the hour write nothing; after it, the mark moves.
    store.authenticate_token(&secret, NOW + 600).await.unwrap().unwrap();
    assert_eq!(store.list_tokens(&alice.id, NOW + 601).await.unwrap()[0].last_used_at, Some(NOW));
    store.authenticate_token(&secret, NOW + 3600).await.unwrap().unwrap();
    assert_eq!(store.list_tokens(&alice.id, NOW + 3601).await.unwrap()[0].last_used_at, Some(NOW + 3600));

    // A near miss (one character changed) is not accepted.
    let mut near = secret.clone();
    let last = near.pop().unwrap();
    near.push(if last == 'A' { 'B' } else { 'A' });
    assert!(store.authenticate_token(&near, NOW).await.unwrap().is_none());

    let (_, short) = store
        .issue_token(
            &alice.id,
            "ci",
            &[Scope::Read],
            Some(NOW + 10),
            tapgate_server::store::tokens::TokenSource::Issued,
            NOW,
        )
        .await
        .unwrap();
    assert!(store.authenticate_token(&short, NOW + 9).await.unwrap().is_some());
    assert!(store.authenticate_token(&short, NOW + 10).await.unwrap().is_none(), "expired");
    assert_eq!(
        store.list_tokens(&alice.id, NOW + 10).await.unwrap().len(),
        1,
        "expired tokens are not listed"
    );

    assert!(store.revoke_token(&rec.id, Some(&alice.id), NOW).await.unwrap());
    assert!(store.authenticate_token(&secret, NOW).await.unwrap().is_none(), "revoked");
    assert!(!store.revoke_token(&rec.id, Some(&alice.id), NOW).await.unwrap(), "already revoked");
}

async fn token_revocation_is_scoped_to_the_owner(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let alice = store.create_user("alice", false, NOW).await.unwrap();
    let bob = store.create_user("bob", false, NOW).await.unwrap();
    let (rec, secret) = store
        .issue_token(
            &alice.id,
            "t",
            &[Scope::Read],
            None,
            tapgate_server::store::tokens::TokenSource::Issued,
            NOW,
        )
        .await
        .unwrap();
    assert!(!store.revoke_token(&rec.id, Some(&bob.id), NOW).await.unwrap());
    assert!(store.authenticate_token(&secret, NOW).await.unwrap().is_some());
    assert!(store.revoke_token(&rec.id, None, NOW).await.unwrap(), "unscoped (admin) revocation");
    assert!(store.authenticate_token(&secret, NOW).await.unwrap().is_none());
}

async fn disabling_a_user_revokes_their_tokens(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let alice = store.create_user("alice", false, NOW).await.unwrap();
    let bob = store.create_user("bob", false, NOW).await.unwrap();
    let (_, a) = store
        .issue_token(
            &alice.id,
            "t",
            &[Scope::Read],
            None,
            tapgate_server::store::tokens::TokenSource::Issued,
            NOW,
        )
        .await
        .unwrap();
    let (_, b) = store
        .issue_token(
            &bob.id,
            "t",
            &[Scope::Read],
            None,
            tapgate_server::store::tokens::TokenSource::Issued,
            NOW,
        )
        .await
        .unwrap();
    assert!(store.disable_user("alice", NOW).await.unwrap());
    assert!(!store.disable_user("nobody", NOW).await.unwrap());
    assert!(store.authenticate_token(&a, NOW).await.unwrap().is_none());
    assert!(store.authenticate_token(&b, NOW).await.unwrap().is_some(), "other users keep theirs");
    assert!(store.user_by_name("alice").await.unwrap().unwrap().disabled);
}

async fn security_events_are_recorded_newest_first(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    store.record_event(NOW, "counter_regression", None, None, "first").await.unwrap();
    store.record_event(NOW + 1, "package_locked", None, Some("left-pad"), "second").await.unwrap();
    let events = store.recent_events(10).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].detail, "second");
    assert_eq!(events[0].package.as_deref(), Some("left-pad"));
    assert_eq!(events[1].kind, "counter_regression");
}

async fn ceremonies_are_taken_once_and_expire(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let c = |id: &str| Ceremony {
        id: id.into(),
        kind: "login".into(),
        user_id: None,
        state: "{}".into(),
        context: "{}".into(),
        created_at: NOW,
        expires_at: NOW + 300,
    };
    store.put_ceremony(&c("a")).await.unwrap();
    store.put_ceremony(&c("b")).await.unwrap();
    assert_eq!(store.take_ceremony("a", "register", NOW).await.unwrap(), Taken::Missing, "kind must match");
    assert_eq!(store.take_ceremony("a", "login", NOW).await.unwrap(), Taken::Found(c("a")));
    assert_eq!(store.take_ceremony("a", "login", NOW).await.unwrap(), Taken::Missing, "single use");
    assert_eq!(store.take_ceremony("b", "login", NOW + 300).await.unwrap(), Taken::Expired);
    assert_eq!(store.take_ceremony("b", "login", NOW).await.unwrap(), Taken::Missing);
    store.put_ceremony(&c("c")).await.unwrap();
    assert_eq!(store.purge_expired(NOW + 301).await.unwrap(), 1);
}

async fn npm_logins_are_collected_once(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let alice = store.create_user("alice", false, NOW).await.unwrap();
    store.create_npm_login("npl_1", "hash1", NOW).await.unwrap();
    assert_eq!(store.poll_npm_login("hash1", NOW).await.unwrap(), LoginPoll::Pending);
    assert_eq!(store.poll_npm_login("other", NOW).await.unwrap(), LoginPoll::Gone);
    assert!(store.approve_npm_login("npl_1", &alice.id, NOW + 1).await.unwrap());
    assert!(!store.approve_npm_login("npl_1", &alice.id, NOW + 1).await.unwrap(), "approved once");
    assert_eq!(
        store.poll_npm_login("hash1", NOW + 2).await.unwrap(),
        LoginPoll::Approved { user_id: alice.id.clone() }
    );
    assert_eq!(store.poll_npm_login("hash1", NOW + 3).await.unwrap(), LoginPoll::Gone, "collected once");
    store.create_npm_login("npl_2", "hash2", NOW).await.unwrap();
    assert!(!store.approve_npm_login("npl_2", &alice.id, NOW + 600).await.unwrap(), "expired");
    assert_eq!(store.poll_npm_login("hash2", NOW + 600).await.unwrap(), LoginPoll::Gone);
}

async fn server_secrets_are_stable(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let a = store.server_secret("x").await.unwrap();
    assert_eq!(a.len(), 32);
    assert_eq!(store.server_secret("x").await.unwrap(), a);
    assert_ne!(store.server_secret("y").await.unwrap(), a);
}

async fn key_counters_move_by_compare_and_set(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let alice = store.create_user("alice", false, NOW).await.unwrap();
    let invite = store.create_invite(&alice.id, NOW).await.unwrap();
    let invite_hash = tapgate_server::secrets::hash(&invite);
    let new = NewSecurityKey {
        user_id: &alice.id,
        name: "k",
        credential_id: &[1, 2, 3],
        credential: "{}",
        counter: 5,
        aaguid: "00000000-0000-0000-0000-000000000000",
        attestation_format: "packed",
        attested: false,
        attestation_ca: None,
        user_verified: true,
    };
    let key = store.add_key(&new, Enrollment::Invite(&invite_hash), NOW).await.unwrap();
    assert!(store.valid_invite(&invite, NOW).await.unwrap().is_none(), "invite consumed with the key");
    let second = store.create_invite(&alice.id, NOW).await.unwrap();
    let err = store
        .add_key(&new, Enrollment::Invite(&tapgate_server::secrets::hash(&second)), NOW)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CommitError::Store(StoreError::Conflict(ref m)) if m.contains("already enrolled")),
        "{err:?}"
    );
    assert!(
        store.valid_invite(&second, NOW).await.unwrap().is_some(),
        "a refused enrollment spends no invite"
    );
    let err = store
        .add_key(
            &NewSecurityKey { credential_id: &[9], ..new.clone() },
            Enrollment::Invite(&invite_hash),
            NOW,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CommitError::Stale(_)), "a used invite enrolls nothing: {err:?}");
    assert_eq!(store.keys_of_user(&alice.id).await.unwrap().len(), 1);

    assert_eq!(store.record_key_use(&key.id, 5, 6, "{}", NOW).await.unwrap(), CounterUpdate::Updated);
    assert_eq!(
        store.record_key_use(&key.id, 5, 7, "{}", NOW).await.unwrap(),
        CounterUpdate::Lost,
        "stale expectation"
    );
    assert_eq!(store.key_by_id(&key.id).await.unwrap().unwrap().counter, 6);
    assert_eq!(
        store.record_key_use(&key.id, 6, 6, "{}", NOW).await.unwrap(),
        CounterUpdate::Lost,
        "a counter never stands still or moves back"
    );
    store.suspend_key(&key.id, "test", NOW).await.unwrap();
    assert_eq!(
        store.record_key_use(&key.id, 6, 7, "{}", NOW).await.unwrap(),
        CounterUpdate::Lost,
        "suspended"
    );
    assert!(store.rename_key(&alice.id, &key.id, "new").await.unwrap());
    assert!(!store.rename_key("someone-else", &key.id, "x").await.unwrap());
    let guard = Guard {
        actor: &alice.id,
        package: None,
        tap: None,
        deploy_key: None,
        oidc: None,
        now: NOW,
        effects: None,
    };
    let err = store.delete_key(&alice.id, &key.id, &guard).await.unwrap_err();
    assert!(matches!(err, CommitError::Stale(ref m) if m.contains("last usable")), "last key: {err:?}");
    assert_eq!(store.delete_key(&alice.id, "key_nope", &guard).await.unwrap(), None);
    assert_eq!(store.keys_of_user(&alice.id).await.unwrap().len(), 1, "the last key stays");
}

async fn expired_rows_are_purged_but_publish_records_kept(backend: Backend) {
    use crate::store_gate::{approved_intent, publish_record};
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let alice = store.create_user("alice", false, NOW).await.unwrap();
    let unused = approved_intent(&store, &alice.id, "apr_unused", "p", "1.0.0", false).await;
    let used = approved_intent(&store, &alice.id, "apr_used", "p", "1.0.0", true).await;
    assert!(unused.ticket_hash.is_empty());
    let record = publish_record(&alice.id, "p", "1.0.0", Some(&used));
    store.publish(&record.as_record(NOW + 2)).await.unwrap();
    store.create_npm_login("npl_x", "h", NOW).await.unwrap();
    assert_eq!(store.purge_expired(NOW + 700).await.unwrap(), 0, "nothing is a day past expiry yet");
    assert!(store.purge_expired(NOW + 2 * 86_400).await.unwrap() >= 2);
    assert!(store.approval("apr_unused").await.unwrap().is_none());
    assert!(store.approval("apr_used").await.unwrap().is_some(), "a published version's record is kept");
    assert_eq!(store.approval_signatures("apr_used").await.unwrap().len(), 1, "with its signature");
    assert!(store.npm_login("npl_x").await.unwrap().is_none());
}
