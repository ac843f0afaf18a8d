//! What an approval shows about a publish, besides the intent: who asked from where, and what
//! the uploaded tarball holds and changes against the previous version — bounded whatever the
//! tarball holds, and never in the way of the approval itself.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tapgate_shared::api::ApprovalInfo;
use tapgate_shared::publish_diff::{MAX_LISTED, PublishDiff};

use crate::gate_support::tap_required;
use crate::publish_support::*;
use crate::support::{Backend, TestApp, backend_tests};

backend_tests!(
    publish_details_show_scripts_dependencies_files_and_origin,
    publish_details_are_bounded_for_many_files
);

const NPM_AGENT: &str = "npm/11.0.0 node/v20.19.0 linux x64 workspaces/false";

/// A gzipped tarball of `package/package.json` (`manifest`) and `files`.
pub fn package_tgz(manifest: &Value, files: &[(String, String)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let manifest = manifest.to_string();
    let all = std::iter::once(("package.json", manifest.as_str()))
        .chain(files.iter().map(|(p, d)| (p.as_str(), d.as_str())));
    for (path, data) in all {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, format!("package/{path}"), data.as_bytes()).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &builder.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(p, d)| (p.to_string(), d.to_string())).collect()
}

/// `PUT /<name>` as npm sends it, without a ticket: the approval it asks for.
async fn ask(app: &TestApp, token: &str, name: &str, version: &str, tgz: &[u8]) -> ApprovalInfo {
    let resp = app
        .http
        .put(app.url(&format!("/{}", encode(name))))
        .bearer_auth(token)
        .header("user-agent", NPM_AGENT)
        .json(&publish_body(name, version, tgz))
        .send()
        .await
        .unwrap();
    tap_required(resp).await
}

async fn publish_details_show_scripts_dependencies_files_and_origin(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    let v1 = package_tgz(
        &json!({ "name": "gadget", "version": "1.0.0", "dependencies": { "kept": "^1.0.0" } }),
        &files(&[("index.js", "module.exports = 1;\n"), ("old.js", "bye\n")]),
    );
    // The first publish: compared with nothing, but its files and dependencies are listed.
    let first = ask(&app, &alice.token, "gadget", "1.0.0", &v1).await;
    let d = first.details.clone().expect("details");
    let p = d.publish.expect("a publish with its tarball is described");
    assert_eq!(p.previous_version, None);
    assert_eq!(p.files.total(), 3);
    assert!(p.added.is_empty() && p.removed.is_empty());
    let ticket = approve(&app, &first, &alice.key).await;
    let resp =
        put(&app, &alice.token, "gadget", &publish_body("gadget", "1.0.0", &v1), Some(&ticket.ticket)).await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    let v2 = package_tgz(
        &json!({
            "name": "gadget", "version": "1.1.0",
            "dependencies": { "kept": "^1.0.0", "left-pad": "^1.3.0" },
            "scripts": { "postinstall": "node collect.js" },
        }),
        &files(&[("index.js", "module.exports = 2;\n"), ("collect.js", "steal()\n")]),
    );
    let info = ask(&app, &alice.token, "gadget", "1.1.0", &v2).await;
    // The page reads the same through GET.
    let shown: ApprovalInfo = app.get_json(&format!("/api/v1/approvals/{}", info.id)).await;
    assert_eq!(shown.details, info.details, "the 401 and the page show the same details");
    let d = shown.details.expect("details");
    assert_eq!(d.registry, app.origin.trim_start_matches("http://"));
    assert_eq!(d.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(d.user_agent.as_deref(), Some(NPM_AGENT));
    assert!(d.requested_at.starts_with("20"), "{}", d.requested_at);
    let p = d.publish.expect("described");
    assert_eq!(p.previous_version.as_deref(), Some("1.0.0"));
    assert_eq!(p.tarball_size, v2.len() as u64);
    let install: Vec<(&str, Option<&str>)> =
        p.install_script_changes().map(|s| (s.name.as_str(), s.to.as_deref())).collect();
    assert_eq!(install, [("postinstall", Some("node collect.js"))]);
    let deps: Vec<(&str, Option<&str>, Option<&str>)> =
        p.dependencies.items.iter().map(|c| (c.name.as_str(), c.from.as_deref(), c.to.as_deref())).collect();
    assert_eq!(deps, [("left-pad", None, Some("^1.3.0"))]);
    let paths =
        |l: &[tapgate_shared::publish_diff::ListedFile]| l.iter().map(|f| f.path.clone()).collect::<Vec<_>>();
    assert_eq!(paths(&p.added.items), ["collect.js"]);
    assert_eq!(paths(&p.removed.items), ["old.js"]);
    let changed: Vec<&str> = p.changed.items.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(changed, ["index.js", "package.json"]);
    // Informational only: the approval works as before.
    let ticket = approve(&app, &info, &alice.key).await;
    let resp =
        put(&app, &alice.token, "gadget", &publish_body("gadget", "1.1.0", &v2), Some(&ticket.ticket)).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    // An intent without a tarball (a dist-tag move) has details but no publish description.
    let resp = crate::gate_support::send(
        &app,
        reqwest::Method::PUT,
        "/-/package/gadget/dist-tags/latest",
        &alice.token,
        Some(&json!("1.0.0")),
        None,
    )
    .await;
    let tag = tap_required(resp).await;
    let d = tag.details.expect("details");
    assert!(d.publish.is_none());
    assert_eq!(d.registry, app.origin.trim_start_matches("http://"));
}

async fn publish_details_are_bounded_for_many_files(backend: Backend) {
    let Some(app) = TestApp::new(backend).await else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    let v1 = package_tgz(&json!({ "name": "many", "version": "1.0.0" }), &files(&[("index.js", "1")]));
    let resp = publish_with_key(&app, &alice, "many", "1.0.0", &v1).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let extra = 700;
    let count = MAX_LISTED + extra;
    let many: Vec<(String, String)> =
        (0..count).map(|i| (format!("lib/file-{i:05}.js"), format!("{i}"))).collect();
    let v2 = package_tgz(&json!({ "name": "many", "version": "2.0.0" }), &many);
    let info = ask(&app, &alice.token, "many", "2.0.0", &v2).await;
    let text = app
        .http
        .get(app.url(&format!("/api/v1/approvals/{}", info.id)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let shown: ApprovalInfo = serde_json::from_str(&text).unwrap();
    let p: PublishDiff = shown.details.unwrap().publish.unwrap();
    // package.json + the files; index.js is gone.
    assert_eq!(p.files.items.len(), MAX_LISTED);
    assert_eq!(p.files.more, (count + 1 - MAX_LISTED) as u64);
    assert_eq!(p.added.items.len(), MAX_LISTED);
    assert_eq!(p.added.more, extra as u64);
    assert_eq!(p.removed.total(), 1);
    assert!(text.len() < 512 * 1024, "the approval is {} bytes", text.len());
}
