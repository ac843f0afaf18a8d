//! What installers read, as they read it: the abbreviated packument, gzip, and validators (ETag,
//! `304 Not Modified`) on packuments and tarballs.

use std::io::Read;

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use tapgate_shared::intent::sri_sha512;

use crate::gate_support::with_tap;
use crate::publish_support::*;
use crate::support::{Backend, TestApp, backend_tests};

backend_tests!(abbreviated_packuments_gzip_and_validators);

const CORGI: &str = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";

async fn abbreviated_packuments_gzip_and_validators(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    for v in ["1.0.0", "1.1.0"] {
        let resp = publish_with_key(
            &app,
            &alice,
            "lib",
            v,
            &tarball("lib", v, &format!("{v} {}", "x".repeat(2000))),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let get = |accept: &'static str, extra: Option<(&'static str, String)>| {
        let mut req = app.http.get(app.url("/lib")).header(header::ACCEPT, accept);
        if let Some((k, v)) = extra {
            req = req.header(k, v);
        }
        req.send()
    };

    // The abbreviated form: only what installers read.
    let resp = get(CORGI, None).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/vnd.npm.install-v1+json");
    let etag_short = resp.headers()[header::ETAG].to_str().unwrap().to_string();
    let short: Value = resp.json().await.unwrap();
    assert_eq!(short["name"], "lib");
    assert_eq!(short["dist-tags"]["latest"], "1.1.0");
    assert!(short["modified"].as_str().unwrap().ends_with('Z'));
    assert!(short.get("time").is_none() && short.get("maintainers").is_none() && short.get("_rev").is_none());
    let version = short["versions"]["1.0.0"].as_object().unwrap();
    assert!(version.get("description").is_none(), "descriptions are not for installers: {version:?}");
    assert_eq!(
        version["dist"]["integrity"].as_str().unwrap(),
        sri_sha512(&tarball("lib", "1.0.0", &format!("1.0.0 {}", "x".repeat(2000))))
    );
    // The full form by default.
    let resp = get("application/json", None).await.unwrap();
    let etag_full = resp.headers()[header::ETAG].to_str().unwrap().to_string();
    assert_ne!(etag_full, etag_short);
    let full: Value = resp.json().await.unwrap();
    assert!(full["versions"]["1.0.0"]["description"].as_str().unwrap().starts_with("1.0.0"));
    assert!(full["maintainers"].is_array() && full["time"].is_object());

    // gzip for clients that accept it, decoding to the same document.
    let resp = get("application/json", Some(("accept-encoding", "gzip".into()))).await.unwrap();
    assert_eq!(resp.headers()[header::CONTENT_ENCODING], "gzip");
    let zipped = resp.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&zipped[..]).read_to_string(&mut text).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), full);
    assert!(zipped.len() * 3 < text.len(), "{} vs {}", zipped.len(), text.len());

    // 304 while nothing changed; a new validator once something did.
    for (accept, etag) in [(CORGI, &etag_short), ("application/json", &etag_full)] {
        let resp = get(accept, Some(("if-none-match", etag.clone()))).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
        assert!(resp.bytes().await.unwrap().is_empty());
    }
    let body = json!({"message": "use 1.1"});
    let (_, resp) = with_tap(
        &app,
        Method::PUT,
        "/api/v1/packages/lib/versions/1.0.0/deprecation",
        &alice.token,
        Some(&body),
        &alice.key,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = get(CORGI, Some(("if-none-match", etag_short.clone()))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "a deprecation changes the document");
    let short: Value = resp.json().await.unwrap();
    assert_eq!(short["versions"]["1.0.0"]["deprecated"], "use 1.1");

    // Tarballs: their integrity is their validator.
    let resp = app.http.get(app.url("/lib/-/lib-1.0.0.tgz")).send().await.unwrap();
    let etag = resp.headers()[header::ETAG].to_str().unwrap().to_string();
    assert!(etag.starts_with("\"sha512-"), "{etag}");
    let resp =
        app.http.get(app.url("/lib/-/lib-1.0.0.tgz")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    let resp =
        app.http.get(app.url("/lib/-/lib-1.1.0.tgz")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "another tarball's validator does not match");

    // npm's errors stay readable: never compressed, the sentence as a string.
    let resp = app
        .http
        .put(app.url("/lib"))
        .bearer_auth(&alice.token)
        .header("npm-command", "publish")
        .header("accept-encoding", "gzip")
        .json(&publish_body("lib", "2.0.0", &tarball("lib", "2.0.0", "two")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().get(header::CONTENT_ENCODING).is_none());
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("Publish lib@2.0.0"), "{body}");
    assert_eq!(body["code"], "otp_required");
}
