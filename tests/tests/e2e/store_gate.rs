//! Storage conformance for the gate's commits: what every gated write re-checks inside its
//! transaction (policy, maintainer, the tap's ticket bound to the intent's digest), and the
//! single-use and last-one rules under concurrency. Runs on SQLite and PostgreSQL.

use tapgate_server::store::Store;
use tapgate_server::store::approvals::{ApprovalSignature, NewApproval, SignOutcome, TicketHashes};
use tapgate_server::store::gate::{CommitError, Guard, PackageGuard, Tap};
use tapgate_server::store::packages::PublishRecord;

use crate::support::{Backend, backend_tests, test_store};

backend_tests!(
    a_ticket_is_spent_once_and_only_for_its_intent,
    the_policy_and_the_maintainer_are_rechecked_inside_the_commit,
    concurrent_commits_with_one_ticket_have_one_winner,
    unpublished_versions_keep_their_number_and_record,
    the_last_maintainer_stays_under_concurrent_removals,
    tags_move_only_from_the_state_that_was_approved,
    taps_are_counted_per_person_and_recorded_once_per_key,
    a_policy_change_committed_while_a_commit_waits_is_seen,
    a_ticket_dies_with_the_key_that_minted_it,
);

const NOW: i64 = 1_800_000_000;
const POLICY: &str = r#"{"v":1,"second_factor":"security-key"}"#;

/// An approval as the tests use it: its id, the digest it is bound to, its ticket's hash.
pub struct TestApproval {
    pub id: String,
    pub digest: String,
    pub ticket_hash: String,
}

impl TestApproval {
    pub fn tap(&self) -> Tap<'_> {
        Tap { approval_id: &self.id, intent_digest: &self.digest }
    }
}

/// Records an approval for `package@version` by `user_id` (approved with one tap if `approve`).
pub async fn approved_intent(
    store: &Store,
    user_id: &str,
    id: &str,
    package: &str,
    version: &str,
    approve: bool,
) -> TestApproval {
    approval_with(store, user_id, id, package, version, approve, 1).await
}

async fn approval_with(
    store: &Store,
    user_id: &str,
    id: &str,
    package: &str,
    version: &str,
    approve: bool,
    required: i32,
) -> TestApproval {
    let digest = format!("digest-of-{id}");
    store
        .create_approval(
            &NewApproval {
                id,
                subject: package,
                version,
                integrity: "sha512-x",
                requested_by: user_id,
                action: "publish",
                intent: "{}",
                intent_digest: &digest,
                payload: None,
                required_taps: required,
                requester_must_sign: false,
                policy: Some(POLICY),
                nonce: &[0; 32],
                challenge: &[0; 32],
                auth_state: "{}",
                done_hash: &format!("done-{id}"),
                expires_at: NOW + 600,
                details: None,
            },
            NOW,
        )
        .await
        .unwrap();
    let mut ticket_hash = String::new();
    if approve {
        ticket_hash = format!("ticket-{id}");
        let key_id = enrolled_key(store, user_id).await;
        let outcome = sign(store, id, user_id, &key_id, &ticket_hash).await;
        assert_eq!(outcome, SignOutcome::Approved);
    }
    TestApproval { id: id.to_string(), digest, ticket_hash }
}

/// The id of a key `user_id` holds (enrolled with an invite when they have none): a ticket is
/// only good while the keys that tapped it are enrolled.
async fn enrolled_key(store: &Store, user_id: &str) -> String {
    if let Some(key) = store.keys_of_user(user_id).await.unwrap().first() {
        return key.id.clone();
    }
    let invite = store.create_invite(user_id, NOW).await.unwrap();
    let hash = tapgate_server::secrets::hash(&invite);
    let credential_id = user_id.as_bytes().to_vec();
    let key = tapgate_server::store::keys::NewSecurityKey {
        user_id,
        name: "k",
        credential_id: &credential_id,
        credential: "{}",
        counter: 0,
        aaguid: "00000000-0000-0000-0000-000000000000",
        attestation_format: "none",
        attested: false,
        attestation_ca: None,
        user_verified: false,
    };
    store.add_key(&key, tapgate_server::store::keys::Enrollment::Invite(&hash), NOW).await.unwrap().id
}

async fn sign(store: &Store, approval: &str, user_id: &str, key_id: &str, ticket_hash: &str) -> SignOutcome {
    let sig = ApprovalSignature {
        approval_id: approval.to_string(),
        user_id: user_id.to_string(),
        key_id: key_id.to_string(),
        credential_id: vec![1],
        credential_public_key: "{}".into(),
        client_data_json: vec![1],
        authenticator_data: vec![1],
        signature: vec![1],
        user_verified: true,
        signed_at: NOW,
    };
    let hashes = TicketHashes { ticket_hash, code_hash: "code", ticket_expires_at: NOW + 300 };
    store.add_signature(&sig, &hashes, 5, NOW + 1).await.unwrap()
}

/// The parts of a publish the tests vary.
pub struct TestPublish<'a> {
    pub actor: &'a str,
    pub package: &'a str,
    pub version: &'a str,
    pub approval: Option<&'a TestApproval>,
    pub must_maintain: bool,
    pub policy: &'a str,
    pub tags: Vec<String>,
}

pub fn publish_record<'a>(
    actor: &'a str,
    package: &'a str,
    version: &'a str,
    approval: Option<&'a TestApproval>,
) -> TestPublish<'a> {
    TestPublish {
        actor,
        package,
        version,
        approval,
        must_maintain: false,
        policy: POLICY,
        tags: vec!["latest".into()],
    }
}

impl<'a> TestPublish<'a> {
    pub fn guard(&'a self, now: i64) -> Guard<'a> {
        Guard {
            actor: self.actor,
            package: Some(PackageGuard {
                package: self.package,
                policy: self.policy,
                must_maintain: self.must_maintain,
                unlocking: false,
            }),
            tap: self.approval.map(TestApproval::tap),
            deploy_key: None,
            oidc: None,
            now,
            effects: None,
        }
    }

    pub fn as_record(&'a self, now: i64) -> PublishRecord<'a> {
        PublishRecord {
            package: self.package,
            version: self.version,
            manifest: "{}",
            abbreviated: "{}",
            tarball: b"tarball",
            integrity: "sha512-x",
            shasum: "s",
            guard: self.guard(now),
            tags: &self.tags,
            stage: None,
        }
    }
}

async fn a_ticket_is_spent_once_and_only_for_its_intent(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let alice = store.create_user("alice", false, NOW).await.unwrap();
    let bob = store.create_user("bob", false, NOW).await.unwrap();
    let a = approved_intent(&store, &alice.id, "apr_a", "p", "1.0.0", true).await;
    let pending = approved_intent(&store, &alice.id, "apr_pending", "p", "1.0.0", false).await;

    // Bound to another intent's digest, not approved yet, or presented by another user: no.
    let forged = TestApproval {
        id: a.id.clone(),
        digest: "digest-of-something-else".into(),
        ticket_hash: String::new(),
    };
    let err = store
        .publish(&publish_record(&alice.id, "p", "1.0.0", Some(&forged)).as_record(NOW + 2))
        .await
        .unwrap_err();
    assert!(matches!(err, CommitError::EvidenceSpent), "{err:?}");
    let err = store
        .publish(&publish_record(&alice.id, "p", "1.0.0", Some(&pending)).as_record(NOW + 2))
        .await
        .unwrap_err();
    assert!(matches!(err, CommitError::EvidenceSpent), "{err:?}");
    let err =
        store.publish(&publish_record(&bob.id, "p", "1.0.0", Some(&a)).as_record(NOW + 2)).await.unwrap_err();
    assert!(matches!(err, CommitError::EvidenceSpent), "{err:?}");
    // Expired (tickets last 300 s from the tap).
    let err = store
        .publish(&publish_record(&alice.id, "p", "1.0.0", Some(&a)).as_record(NOW + 400))
        .await
        .unwrap_err();
    assert!(matches!(err, CommitError::EvidenceSpent), "{err:?}");
    assert!(store.package("p").await.unwrap().is_none(), "nothing was stored");
    assert!(store.approval("apr_a").await.unwrap().unwrap().used_at.is_none(), "no ticket spent");

    store.publish(&publish_record(&alice.id, "p", "1.0.0", Some(&a)).as_record(NOW + 2)).await.unwrap();
    assert_eq!(store.approval("apr_a").await.unwrap().unwrap().used_at, Some(NOW + 2));
    let err = store
        .publish(&publish_record(&alice.id, "p", "1.0.1", Some(&a)).as_record(NOW + 3))
        .await
        .unwrap_err();
    assert!(matches!(err, CommitError::EvidenceSpent), "spent: {err:?}");
    assert!(store.version("p", "1.0.1").await.unwrap().is_none());
    // A version that exists is refused without spending the ticket offered with it.
    let b = approved_intent(&store, &alice.id, "apr_b", "p", "1.0.0", true).await;
    let err = store
        .publish(&publish_record(&alice.id, "p", "1.0.0", Some(&b)).as_record(NOW + 4))
        .await
        .unwrap_err();
    assert!(matches!(err, CommitError::VersionExists), "{err:?}");
    assert!(
        store.approval("apr_b").await.unwrap().unwrap().used_at.is_none(),
        "rolled back with the refusal"
    );
}

async fn the_policy_and_the_maintainer_are_rechecked_inside_the_commit(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let alice = store.create_user("alice", false, NOW).await.unwrap();
    let mallory = store.create_user("mallory", false, NOW).await.unwrap();
    store.publish(&publish_record(&alice.id, "p", "1.0.0", None).as_record(NOW)).await.unwrap();

    // The gate evaluated a weaker policy than the one stored now.
    let lowered = r#"{"v":1,"second_factor":"none"}"#;
    let mut stale = publish_record(&alice.id, "p", "1.0.1", None);
    stale.policy = lowered;
    let err = store.publish(&stale.as_record(NOW + 1)).await.unwrap_err();
    assert!(matches!(err, CommitError::PolicyChanged), "{err:?}");
    let err = store.deprecate("p", &[("1.0.0".into(), "x".into())], &stale.guard(NOW + 1)).await.unwrap_err();
    assert!(matches!(err, CommitError::PolicyChanged), "{err:?}");

    // Not a maintainer (any more).
    let mut outsider = publish_record(&mallory.id, "p", "1.0.1", None);
    let err = store.publish(&outsider.as_record(NOW + 1)).await.unwrap_err();
    assert!(matches!(err, CommitError::NotMaintainer), "{err:?}");
    outsider.must_maintain = true;
    let err = store.set_dist_tag("p", "evil", "1.0.0", None, &outsider.guard(NOW + 1)).await.unwrap_err();
    assert!(matches!(err, CommitError::NotMaintainer), "{err:?}");
    assert_eq!(store.versions("p").await.unwrap().len(), 1);
    assert!(!store.dist_tags("p").await.unwrap().contains_key("evil"));
    assert!(store.version("p", "1.0.0").await.unwrap().unwrap().deprecated.is_none());

    // A reserved name (no maintainers) is claimed by nobody.
    store.reserve_package("reserved", POLICY, &[], NOW).await.unwrap();
    let err = store
        .publish(&publish_record(&mallory.id, "reserved", "1.0.0", None).as_record(NOW))
        .await
        .unwrap_err();
    assert!(matches!(err, CommitError::NotMaintainer), "{err:?}");
    store.reserve_package("reserved", POLICY, std::slice::from_ref(&alice.id), NOW).await.unwrap();
    store.publish(&publish_record(&alice.id, "reserved", "1.0.0", None).as_record(NOW)).await.unwrap();
}

async fn concurrent_commits_with_one_ticket_have_one_winner(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let alice = store.create_user("alice", false, NOW).await.unwrap();
    store.publish(&publish_record(&alice.id, "p", "1.0.0", None).as_record(NOW)).await.unwrap();
    let a = approved_intent(&store, &alice.id, "apr_race", "p", "", true).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        let (actor, approval) = (
            alice.id.clone(),
            TestApproval { id: a.id.clone(), digest: a.digest.clone(), ticket_hash: String::new() },
        );
        tasks.push(tokio::spawn(async move {
            let mut g = publish_record(&actor, "p", "", Some(&approval));
            g.must_maintain = true;
            store.deprecate("p", &[("1.0.0".into(), format!("message {i}"))], &g.guard(NOW + 2)).await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => won += 1,
            Err(CommitError::EvidenceSpent) => {}
            Err(other) => panic!("unexpected refusal: {other:?}"),
        }
    }
    assert_eq!(won, 1, "exactly one commit spends the ticket");
    let message = store.version("p", "1.0.0").await.unwrap().unwrap().deprecated.unwrap();
    assert!(message.starts_with("message "), "{message}");
}

async fn unpublished_versions_keep_their_number_and_record(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let alice = store.create_user("alice", false, NOW).await.unwrap();
    store.publish(&publish_record(&alice.id, "p", "1.0.0", None).as_record(NOW)).await.unwrap();
    store.publish(&publish_record(&alice.id, "p", "1.1.0", None).as_record(NOW + 1)).await.unwrap();
    let mut g = publish_record(&alice.id, "p", "", None);
    g.must_maintain = true;
    store.set_dist_tag("p", "next", "1.1.0", None, &g.guard(NOW + 2)).await.unwrap();

    let err = store.unpublish_version("p", "1.1.0", "sha512-other", &g.guard(NOW + 3)).await.unwrap_err();
    assert!(matches!(err, CommitError::Stale(_)), "another tarball than approved: {err:?}");
    let done = store.unpublish_version("p", "1.1.0", "sha512-x", &g.guard(NOW + 3)).await.unwrap();
    assert_eq!(done.removed_tags, ["latest", "next"]);
    assert_eq!(done.latest.as_deref(), Some("1.0.0"));
    assert_eq!(store.dist_tags("p").await.unwrap().get("latest").map(String::as_str), Some("1.0.0"));
    assert!(store.tarball("p", "1.1.0").await.unwrap().is_none(), "not served");
    let row = store.version("p", "1.1.0").await.unwrap().unwrap();
    assert_eq!(row.unpublished_at, Some(NOW + 3), "the row and its record stay");
    assert_eq!(row.integrity, "sha512-x");
    let err =
        store.publish(&publish_record(&alice.id, "p", "1.1.0", None).as_record(NOW + 4)).await.unwrap_err();
    assert!(matches!(err, CommitError::VersionExists), "numbers are never reused: {err:?}");
    let err = store.unpublish_version("p", "1.1.0", "sha512-x", &g.guard(NOW + 4)).await.unwrap_err();
    assert!(matches!(err, CommitError::Stale(_)), "already unpublished: {err:?}");

    let err =
        store.unpublish_package("p", &["1.0.0".into(), "1.1.0".into()], &g.guard(NOW + 5)).await.unwrap_err();
    assert!(matches!(err, CommitError::Stale(_)), "the approved version list no longer matches: {err:?}");
    store.unpublish_package("p", &["1.0.0".into()], &g.guard(NOW + 5)).await.unwrap();
    assert!(store.tarball("p", "1.0.0").await.unwrap().is_none());
    assert!(store.dist_tags("p").await.unwrap().is_empty());
    assert_eq!(store.maintainers("p").await.unwrap().len(), 1, "the name stays with its maintainers");
    assert!(store.package("p").await.unwrap().is_some());
}

async fn the_last_maintainer_stays_under_concurrent_removals(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let alice = store.create_user("alice", false, NOW).await.unwrap();
    let bob = store.create_user("bob", false, NOW).await.unwrap();
    store.publish(&publish_record(&alice.id, "p", "1.0.0", None).as_record(NOW)).await.unwrap();
    let g = publish_record(&alice.id, "p", "", None);
    assert!(store.add_maintainer("p", &bob.id, &g.guard(NOW)).await.unwrap());
    assert!(!store.add_maintainer("p", &bob.id, &g.guard(NOW)).await.unwrap(), "already one");
    for _ in 0..5 {
        let (s1, s2) = (store.clone(), store.clone());
        let (a, b) = (alice.id.clone(), bob.id.clone());
        let t1 = tokio::spawn(async move {
            let g = publish_record(&a, "p", "", None);
            s1.remove_maintainer("p", &a, &g.guard(NOW)).await
        });
        let t2 = tokio::spawn(async move {
            let g = publish_record(&b, "p", "", None);
            s2.remove_maintainer("p", &b, &g.guard(NOW)).await
        });
        let results = [t1.await.unwrap(), t2.await.unwrap()];
        let removed = results.iter().filter(|r| matches!(r, Ok(true))).count();
        assert_eq!(removed, 1, "{results:?}");
        assert!(results.iter().any(|r| matches!(r, Err(CommitError::Stale(_)))), "{results:?}");
        let left = store.maintainers("p").await.unwrap();
        assert_eq!(left.len(), 1);
        let other = if left[0].0 == alice.id { &bob.id } else { &alice.id };
        assert!(store.add_maintainer("p", other, &g.guard(NOW)).await.unwrap());
    }
}

async fn tags_move_only_from_the_state_that_was_approved(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let alice = store.create_user("alice", false, NOW).await.unwrap();
    store.publish(&publish_record(&alice.id, "p", "1.0.0", None).as_record(NOW)).await.unwrap();
    store.publish(&publish_record(&alice.id, "p", "1.0.1", None).as_record(NOW)).await.unwrap();
    let g = publish_record(&alice.id, "p", "", None);
    let err = store.set_dist_tag("p", "latest", "1.0.0", Some("0.9.0"), &g.guard(NOW)).await.unwrap_err();
    assert!(matches!(err, CommitError::Stale(_)), "{err:?}");
    let err = store.set_dist_tag("p", "latest", "9.9.9", Some("1.0.1"), &g.guard(NOW)).await.unwrap_err();
    assert!(matches!(err, CommitError::Stale(_)), "no such version: {err:?}");
    assert_eq!(store.dist_tags("p").await.unwrap()["latest"], "1.0.1");
    store.set_dist_tag("p", "latest", "1.0.0", Some("1.0.1"), &g.guard(NOW)).await.unwrap();
    assert_eq!(store.dist_tags("p").await.unwrap()["latest"], "1.0.0");
    let err = store.remove_dist_tag("p", "latest", "1.0.1", &g.guard(NOW)).await.unwrap_err();
    assert!(matches!(err, CommitError::Stale(_)), "the tag moved since: {err:?}");
}

async fn taps_are_counted_per_person_and_recorded_once_per_key(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let alice = store.create_user("alice", false, NOW).await.unwrap();
    let bob = store.create_user("bob", false, NOW).await.unwrap();
    approval_with(&store, &alice.id, "apr_two", "p", "1.0.0", false, 2).await;
    assert_eq!(sign(&store, "apr_two", &alice.id, "key_a1", "t").await, SignOutcome::Pending { signers: 1 });
    assert_eq!(sign(&store, "apr_two", &alice.id, "key_a1", "t").await, SignOutcome::AlreadySigned);
    assert_eq!(
        sign(&store, "apr_two", &alice.id, "key_a2", "t").await,
        SignOutcome::Pending { signers: 1 },
        "two keys of one person count once"
    );
    assert!(store.approval("apr_two").await.unwrap().unwrap().approved_at.is_none());
    assert_eq!(sign(&store, "apr_two", &bob.id, "key_b", "t2").await, SignOutcome::Approved);
    assert_eq!(store.approval_signatures("apr_two").await.unwrap().len(), 3);
    assert_eq!(sign(&store, "apr_two", &bob.id, "key_b2", "t3").await, SignOutcome::Gone, "approved already");
    assert_eq!(store.approval_by_ticket("t2").await.unwrap().map(|a| a.id).as_deref(), Some("apr_two"));
}

async fn a_policy_change_committed_while_a_commit_waits_is_seen(backend: Backend) {
    use sqlx::Connection;
    let Some((store, db)) = test_store(backend).await else {
        return;
    };
    let alice = store.create_user("alice", false, NOW).await.unwrap();
    store.publish(&publish_record(&alice.id, "p", "1.0.0", None).as_record(NOW)).await.unwrap();
    let stricter = r#"{"v":1,"second_factor":"none","stricter":true}"#;
    // An administrator's policy change is under way (written, not committed) when a commit that
    // evaluated the old policy arrives; the commit must see the new policy once it gets the lock.
    macro_rules! race {
        ($conn:expr, $begin:literal) => {{
            let mut conn = $conn;
            sqlx::query($begin).execute(&mut conn).await.unwrap();
            sqlx::query("UPDATE packages SET policy = $1 WHERE name = 'p'")
                .bind(stricter)
                .execute(&mut conn)
                .await
                .unwrap();
            let (s, actor) = (store.clone(), alice.id.clone());
            let waiting = tokio::spawn(async move {
                let mut g = publish_record(&actor, "p", "", None);
                g.must_maintain = true;
                s.set_dist_tag("p", "beta", "1.0.0", None, &g.guard(NOW + 1)).await
            });
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            sqlx::query("COMMIT").execute(&mut conn).await.unwrap();
            waiting.await.unwrap()
        }};
    }
    let result = match backend {
        Backend::Sqlite => race!(sqlx::SqliteConnection::connect(&db.url).await.unwrap(), "BEGIN IMMEDIATE"),
        Backend::Postgres => race!(sqlx::PgConnection::connect(&db.url).await.unwrap(), "BEGIN"),
    };
    assert!(matches!(result, Err(CommitError::PolicyChanged)), "{result:?}");
    assert!(
        !store.dist_tags("p").await.unwrap().contains_key("beta"),
        "nothing committed under the old policy"
    );
}

async fn a_ticket_dies_with_the_key_that_minted_it(backend: Backend) {
    let Some((store, _db)) = test_store(backend).await else {
        return;
    };
    let alice = store.create_user("alice", false, NOW).await.unwrap();
    let key = |id: &'static str| tapgate_server::store::keys::NewSecurityKey {
        user_id: &alice.id,
        name: id,
        credential_id: &[1],
        credential: "{}",
        counter: 0,
        aaguid: "00000000-0000-0000-0000-000000000000",
        attestation_format: "none",
        attested: false,
        attestation_ca: None,
        user_verified: false,
    };
    let invite = store.create_invite(&alice.id, NOW).await.unwrap();
    let hash = tapgate_server::secrets::hash(&invite);
    let k1 =
        store.add_key(&key("k1"), tapgate_server::store::keys::Enrollment::Invite(&hash), NOW).await.unwrap();
    store.publish(&publish_record(&alice.id, "p", "1.0.0", None).as_record(NOW)).await.unwrap();
    // An approval tapped with k1, then k1 is suspended (its counter went backwards).
    approval_with(&store, &alice.id, "apr_k1", "p", "", false, 1).await;
    assert_eq!(sign(&store, "apr_k1", &alice.id, &k1.id, "t-k1").await, SignOutcome::Approved);
    let a =
        TestApproval { id: "apr_k1".into(), digest: "digest-of-apr_k1".into(), ticket_hash: "t-k1".into() };
    store.suspend_key(&k1.id, "test", NOW).await.unwrap();
    let mut g = publish_record(&alice.id, "p", "", Some(&a));
    g.must_maintain = true;
    let err = store.deprecate("p", &[("1.0.0".into(), "x".into())], &g.guard(NOW + 2)).await.unwrap_err();
    assert!(matches!(err, CommitError::EvidenceSpent), "{err:?}");
    assert!(store.version("p", "1.0.0").await.unwrap().unwrap().deprecated.is_none());
}
