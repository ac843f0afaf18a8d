//! The storage conformance suite: every backend must pass every test here.

use tapgate_server::store::StoreError;
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
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m.contains("alice")),
        "{err:?}"
    );
    let bob = store.create_user("bob", false, NOW).await.unwrap();
    assert_ne!(alice.webauthn_handle, bob.webauthn_handle);
    assert_eq!(store.user_by_name("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(store.user_by_id(&bob.id).await.unwrap(), Some(bob.clone()));
    assert_eq!(store.user_by_name("carol").await.unwrap(), None);
    let names: Vec<_> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
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
    assert!(
        store
            .valid_invite(&invite, NOW + 7 * 24 * 3600)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    assert!(store.valid_invite("tg_inv_nope", NOW).await.unwrap().is_none());
    assert!(
        store
            .valid_invite(&invite.replace("tg_inv_", "tg_api_"), NOW)
            .await
            .unwrap()
            .is_none()
    );
    store.disable_user("alice", NOW).await.unwrap();
    assert!(
        store.valid_invite(&invite, NOW).await.unwrap().is_none(),
        "disabled user"
    );
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
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        rec.scopes,
        [Scope::Read, Scope::Publish],
        "sorted and deduplicated"
    );
    let auth = store.authenticate_token(&secret, NOW).await.unwrap().unwrap();
    assert_eq!(
        (auth.username.as_str(), auth.admin, auth.token_id.as_str()),
        ("alice", true, rec.id.as_str())
    );
    let listed = store.list_tokens(&alice.id, NOW + 1).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].last_used_at,
        Some(NOW),
        "authentication marks the token used"
    );

    // A near miss (one character changed) is not accepted.
    let mut near = secret.clone();
    let last = near.pop().unwrap();
    near.push(if last == 'A' { 'B' } else { 'A' });
    assert!(store.authenticate_token(&near, NOW).await.unwrap().is_none());

    let (_, short) = store
        .issue_token(&alice.id, "ci", &[Scope::Read], Some(NOW + 10), NOW)
        .await
        .unwrap();
    assert!(store.authenticate_token(&short, NOW + 9).await.unwrap().is_some());
    assert!(
        store
            .authenticate_token(&short, NOW + 10)
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    assert_eq!(
        store.list_tokens(&alice.id, NOW + 10).await.unwrap().len(),
        1,
        "expired tokens are not listed"
    );

    assert!(store.revoke_token(&rec.id, Some(&alice.id), NOW).await.unwrap());
    assert!(
        store.authenticate_token(&secret, NOW).await.unwrap().is_none(),
        "revoked"
    );
    assert!(
        !store.revoke_token(&rec.id, Some(&alice.id), NOW).await.unwrap(),
        "already revoked"
    );
}

async fn token_revocation_is_scoped_to_the_owner(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let alice = store.create_user("alice", false, NOW).await.unwrap();
    let bob = store.create_user("bob", false, NOW).await.unwrap();
    let (rec, secret) = store
        .issue_token(&alice.id, "t", &[Scope::Read], None, NOW)
        .await
        .unwrap();
    assert!(!store.revoke_token(&rec.id, Some(&bob.id), NOW).await.unwrap());
    assert!(store.authenticate_token(&secret, NOW).await.unwrap().is_some());
    assert!(
        store.revoke_token(&rec.id, None, NOW).await.unwrap(),
        "unscoped (admin) revocation"
    );
    assert!(store.authenticate_token(&secret, NOW).await.unwrap().is_none());
}

async fn disabling_a_user_revokes_their_tokens(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let alice = store.create_user("alice", false, NOW).await.unwrap();
    let bob = store.create_user("bob", false, NOW).await.unwrap();
    let (_, a) = store
        .issue_token(&alice.id, "t", &[Scope::Read], None, NOW)
        .await
        .unwrap();
    let (_, b) = store
        .issue_token(&bob.id, "t", &[Scope::Read], None, NOW)
        .await
        .unwrap();
    assert!(store.disable_user("alice", NOW).await.unwrap());
    assert!(!store.disable_user("nobody", NOW).await.unwrap());
    assert!(store.authenticate_token(&a, NOW).await.unwrap().is_none());
    assert!(
        store.authenticate_token(&b, NOW).await.unwrap().is_some(),
        "other users keep theirs"
    );
    assert!(store.user_by_name("alice").await.unwrap().unwrap().disabled);
}

async fn security_events_are_recorded_newest_first(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    store
        .record_event(NOW, "counter_regression", None, None, "first")
        .await
        .unwrap();
    store
        .record_event(NOW + 1, "package_locked", None, Some("left-pad"), "second")
        .await
        .unwrap();
    let events = store.recent_events(10).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].detail, "second");
    assert_eq!(events[0].package.as_deref(), Some("left-pad"));
    assert_eq!(events[1].kind, "counter_regression");
}
