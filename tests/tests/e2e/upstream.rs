//! The upstream proxy (`--upstream`): public names come from the upstream registry through this
//! one, local names never do (dependency confusion), tarballs are checked against the upstream's
//! integrity before they are served or cached, and a lying or absent upstream changes nothing
//! local.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tapgate_server::policy::Policy;
use tapgate_shared::api::SecondFactor;
use tapgate_shared::intent::sri_sha512;
use tapgate_tests::npm::Npm;
use tapgate_tests::tools::npm_available;

use crate::publish_support::*;
use crate::support::{Backend, TestApp, backend_tests, expect_error};
use crate::upstream_support::{FakeUpstream, upstream};

backend_tests!(
    npm_installs_local_and_upstream_packages_and_local_names_win,
    a_lying_upstream_injects_nothing_and_tampered_tarballs_are_refused,
    an_unreachable_upstream_fails_clearly_and_local_names_are_unaffected,
);

const CORGI: &str = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn npm_installs_local_and_upstream_packages_and_local_names_win(backend: Backend) {
    if !npm_available() {
        return;
    }
    // The upstream: another tapgate on loopback, with a public package and names that also
    // exist here.
    let Some(up) = TestApp::new(backend).await else {
        return;
    };
    let carol = maintainer(&up, "carol").await;
    let public = tarball("pub-lib", "1.2.0", "public");
    for (name, version, bytes) in [
        ("pub-lib", "1.2.0", public.clone()),
        ("shared-name", "9.0.0", tarball("shared-name", "9.0.0", "upstream's")),
        ("reserved-name", "1.0.0", tarball("reserved-name", "1.0.0", "upstream's")),
        ("@alice/thing", "1.0.0", tarball("@alice/thing", "1.0.0", "upstream's")),
    ] {
        if name.starts_with("@alice") {
            let alice = maintainer(&up, "alice").await;
            assert_eq!(
                publish_with_key(&up, &alice, name, version, &bytes).await.status(),
                StatusCode::CREATED
            );
        } else {
            assert_eq!(
                publish_with_key(&up, &carol, name, version, &bytes).await.status(),
                StatusCode::CREATED
            );
        }
    }
    let Some(me) = TestApp::with_config(backend, |c| c.upstream = upstream(&up.origin, 1 << 30)).await else {
        return;
    };
    let bob = maintainer(&me, "bob").await;
    for (name, version) in [("local-lib", "1.0.0"), ("shared-name", "1.0.0")] {
        let bytes = tarball(name, version, "local");
        assert_eq!(publish_with_key(&me, &bob, name, version, &bytes).await.status(), StatusCode::CREATED);
    }
    me.user("alice", false).await;
    let policy = Policy::new(SecondFactor::SecurityKey).to_stored();
    me.store().reserve_package("reserved-name", &policy, &[], me.clock_now()).await.unwrap();

    // The abbreviated packument of an upstream name points at this registry.
    let resp = me.http.get(me.url("/pub-lib")).header("accept", CORGI).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/vnd.npm.install-v1+json");
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(
        doc["versions"]["1.2.0"]["dist"]["tarball"],
        format!("{}/pub-lib/-/pub-lib-1.2.0.tgz", me.origin)
    );
    assert!(doc["versions"]["1.2.0"].get("description").is_none(), "abbreviated: {doc}");

    // npm installs a project that depends on both.
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("package.json"),
        json!({"name": "consumer", "version": "1.0.0", "private": true,
               "dependencies": {"local-lib": "1.0.0", "pub-lib": "^1.0.0", "shared-name": "*"}})
        .to_string(),
    )
    .unwrap();
    let npm = Npm::new(dir.path(), &me.base);
    let out = npm.run(&project, &["install"]);
    assert!(out.status.success(), "npm install failed: {}", String::from_utf8_lossy(&out.stderr));
    let modules = project.join("node_modules");
    assert_eq!(read_json(&modules.join("pub-lib/package.json"))["version"], "1.2.0");
    assert_eq!(read_json(&modules.join("local-lib/package.json"))["version"], "1.0.0");
    let shared = read_json(&modules.join("shared-name/package.json"));
    assert_eq!(shared["version"], "1.0.0", "the local package wins over the upstream's 9.0.0");
    assert_eq!(shared["description"], "local");
    let lock = read_json(&project.join("package-lock.json"));
    let entry = &lock["packages"]["node_modules/pub-lib"];
    assert_eq!(entry["integrity"], sri_sha512(&public));
    assert!(entry["resolved"].as_str().unwrap().starts_with(&me.origin), "{entry}");
    let cached = me.store().upstream_tarball("pub-lib", "1.2.0").await.unwrap().expect("cached");
    assert_eq!(cached.bytes, public);

    // Names reserved here or in a scope owned here never come from the upstream.
    for path in
        ["/reserved-name", "/@alice%2fthing", "/@alice/thing", "/reserved-name/-/reserved-name-1.0.0.tgz"]
    {
        expect_error(
            me.http.get(me.url(path)).send().await.unwrap(),
            StatusCode::NOT_FOUND,
            "package_not_found",
        )
        .await;
    }
    assert!(me.store().upstream_tarball("reserved-name", "1.0.0").await.unwrap().is_none());

    // A name served from the upstream is not claimed here by publishing...
    let mine = tarball("pub-lib", "2.0.0", "hijack");
    let info_resp = me
        .http
        .post(me.url("/api/v1/approvals"))
        .bearer_auth(&bob.token)
        .json(&json!({"package": "pub-lib", "version": "2.0.0", "integrity": sri_sha512(&mine)}))
        .send()
        .await
        .unwrap();
    let message = expect_error(info_resp, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(message.contains("package reserve pub-lib"), "{message}");
    let resp = put(&me, &bob.token, "pub-lib", &publish_body("pub-lib", "2.0.0", &mine), None).await;
    expect_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(me.store().package("pub-lib").await.unwrap().is_none(), "nothing changed");
    let doc: Value = me.get_json("/pub-lib").await;
    assert!(doc["versions"].get("2.0.0").is_none());
    // ...but an administrator can reserve it for a local owner: from then on it is local only.
    let bob_id = me.store().user_by_name("bob").await.unwrap().unwrap().id;
    me.store().reserve_package("pub-lib", &policy, &[bob_id], me.clock_now()).await.unwrap();
    expect_error(
        me.http.get(me.url("/pub-lib")).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "package_not_found",
    )
    .await;
    let resp = publish_with_key(&me, &bob, "pub-lib", "2.0.0", &mine).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let doc: Value = me.get_json("/pub-lib").await;
    assert_eq!(doc["versions"].as_object().unwrap().keys().collect::<Vec<_>>(), ["2.0.0"]);
    let resp = me.http.get(me.url("/pub-lib/-/pub-lib-1.2.0.tgz")).send().await.unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "package_not_found").await;
}

async fn a_lying_upstream_injects_nothing_and_tampered_tarballs_are_refused(backend: Backend) {
    let fake = FakeUpstream::start().await;
    let good = tarball("good", "1.0.0", "good");
    let good2 = tarball("good", "1.1.0", "good too");
    fake.add("good", "1.0.0", &good, &good);
    fake.add("good", "1.1.0", &good2, &good2);
    fake.add(
        "tampered",
        "1.0.0",
        &tarball("tampered", "1.0.0", "real"),
        &tarball("tampered", "1.0.0", "evil"),
    );
    fake.add("mine", "9.9.9", &good, &good);
    fake.add("other", "1.0.0", &good, &good);
    let other = fake.state.packuments.lock().unwrap()["other"].clone();
    fake.state.packuments.lock().unwrap().insert("liar".into(), other);
    fake.add("elsewhere", "1.0.0", &good, &good);
    fake.state.packuments.lock().unwrap().get_mut("elsewhere").unwrap()["versions"]["1.0.0"]["dist"]["tarball"] =
        json!("http://127.0.0.2:9/elsewhere/-/elsewhere-1.0.0.tgz");
    fake.state.raw.lock().unwrap().insert("/huge".into(), vec![b' '; 70 * 1024]);
    // The cache holds one of the two good tarballs at a time.
    let cap = good.len().max(good2.len()) as i64 + 10;
    let Some(me) = TestApp::with_config(backend, |c| c.upstream = upstream(&fake.base, cap)).await else {
        return;
    };
    let bob = maintainer(&me, "bob").await;
    let local = tarball("mine", "1.0.0", "local");
    assert_eq!(publish_with_key(&me, &bob, "mine", "1.0.0", &local).await.status(), StatusCode::CREATED);

    // A local name never reaches the upstream, whatever versions it has there.
    let before = fake.hits();
    let doc: Value = me.get_json("/mine").await;
    assert_eq!(doc["versions"].as_object().unwrap().len(), 1);
    let resp = me.http.get(me.url("/mine/-/mine-9.9.9.tgz")).send().await.unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "package_not_found").await;
    let resp = me.http.get(me.url("/mine/9.9.9")).send().await.unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "package_not_found").await;
    assert_eq!(fake.hits(), before, "no upstream request for a local name");

    // A packument for another name, or too large, is refused whole.
    let resp = me.http.get(me.url("/liar")).send().await.unwrap();
    let message = expect_error(resp, StatusCode::BAD_GATEWAY, "upstream_invalid").await;
    assert!(message.contains("liar"), "{message}");
    let resp = me.http.get(me.url("/huge")).send().await.unwrap();
    expect_error(resp, StatusCode::BAD_GATEWAY, "upstream_invalid").await;
    // A version whose tarball lives elsewhere is not served.
    let doc: Value = me.get_json("/elsewhere").await;
    assert_eq!(doc["versions"], json!({}), "{doc}");
    let resp = me.http.get(me.url("/elsewhere/-/elsewhere-1.0.0.tgz")).send().await.unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "package_not_found").await;

    // A tampered tarball is refused with its code, and not cached.
    let resp = me.http.get(me.url("/tampered/-/tampered-1.0.0.tgz")).send().await.unwrap();
    let message = expect_error(resp, StatusCode::BAD_GATEWAY, "upstream_integrity_mismatch").await;
    assert!(message.contains("altered"), "{message}");
    assert!(me.store().upstream_tarball("tampered", "1.0.0").await.unwrap().is_none());
    assert_eq!(me.store().upstream_cache_bytes().await.unwrap(), 0);

    // A good one is served and cached; the cached copy is what is served from then on.
    let resp = me.http.get(me.url("/good/-/good-1.0.0.tgz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), good);
    fake.state.tarballs.lock().unwrap().insert("/good/-/good-1.0.0.tgz".into(), b"swapped".to_vec());
    let resp = me.http.get(me.url("/good/-/good-1.0.0.tgz")).send().await.unwrap();
    assert_eq!(resp.bytes().await.unwrap().to_vec(), good);
    // The cache stays within its bound: the oldest goes.
    let resp = me.http.get(me.url("/good/-/good-1.1.0.tgz")).send().await.unwrap();
    assert_eq!(resp.bytes().await.unwrap().to_vec(), good2);
    assert!(me.store().upstream_cache_bytes().await.unwrap() <= cap);
    assert!(me.store().upstream_tarball("good", "1.0.0").await.unwrap().is_none());
    assert!(me.store().upstream_tarball("good", "1.1.0").await.unwrap().is_some());

    // Writes to a proxied name go through the gate like any other, and never to the upstream.
    let before = fake.hits();
    let resp = me.http.get(me.url("/good?write=true")).bearer_auth(&bob.token).send().await.unwrap();
    expect_error(resp, StatusCode::NOT_FOUND, "package_not_found").await;
    let resp = me
        .http
        .put(me.url("/-/package/good/dist-tags/evil"))
        .bearer_auth(&bob.token)
        .json(&json!("1.0.0"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{}", resp.text().await.unwrap());
    let resp =
        put(&me, &bob.token, "good", &publish_body("good", "2.0.0", &tarball("good", "2.0.0", "x")), None)
            .await;
    expect_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(fake.hits(), before, "writes and write-reads never ask the upstream");
    assert!(me.store().package("good").await.unwrap().is_none());
}

async fn an_unreachable_upstream_fails_clearly_and_local_names_are_unaffected(backend: Backend) {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let Some(me) = TestApp::with_config(backend, |c| c.upstream = upstream(&url, 1 << 20)).await else {
        return;
    };
    let bob = maintainer(&me, "bob").await;
    let local = tarball("mine", "1.0.0", "local");
    assert_eq!(publish_with_key(&me, &bob, "mine", "1.0.0", &local).await.status(), StatusCode::CREATED);
    for path in ["/left-pad", "/left-pad/-/left-pad-1.0.0.tgz", "/left-pad/latest"] {
        let resp = me.http.get(me.url(path)).send().await.unwrap();
        let message = expect_error(resp, StatusCode::BAD_GATEWAY, "upstream_unavailable").await;
        assert!(message.contains("cannot be reached"), "{message}");
    }
    let resp = me.http.get(me.url("/mine")).header("accept", CORGI).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = me.http.get(me.url("/mine/-/mine-1.0.0.tgz")).send().await.unwrap();
    assert_eq!(resp.bytes().await.unwrap().to_vec(), local);
}
