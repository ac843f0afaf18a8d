//! `tapgate publish [DIR|TARBALL]`

use anyhow::Result;
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use tapgate_shared::gate_intent::Change;
use tapgate_shared::intent::sri_sha512;

use super::{encode_name, with_otp};
use crate::cli::{Global, PublishArgs};
use crate::gated::{self, Expected};
use crate::output::emit;
use crate::pack::{Packed, pack};

/// npm's publish document for a packed tarball setting `tag`; and the tarball's integrity.
pub fn document(base: &str, packed: &Packed, tag: &str) -> (Value, String) {
    let integrity = sri_sha512(&packed.bytes);
    let shasum = hex::encode(Sha1::digest(&packed.bytes));
    let (name, version) = (packed.name.clone(), packed.version.clone());

    let bare = name.rsplit('/').next().unwrap_or(&name);
    let filename = format!("{bare}-{version}.tgz");
    let mut manifest = packed.manifest.clone();
    manifest.insert("_id".into(), json!(format!("{name}@{version}")));
    manifest.insert(
        "dist".into(),
        json!({
            "integrity": integrity,
            "shasum": shasum,
            "tarball": format!("{base}/{name}/-/{filename}"),
        }),
    );
    let body = json!({
        "_id": name,
        "name": name,
        "description": manifest.get("description").cloned().unwrap_or(Value::Null),
        "dist-tags": { tag: version },
        "versions": { version.clone(): Value::Object(manifest) },
        "_attachments": {
            filename: {
                "content_type": "application/octet-stream",
                "data": base64::engine::general_purpose::STANDARD.encode(&packed.bytes),
                "length": packed.bytes.len(),
            }
        },
    });
    (body, integrity)
}

pub async fn run(g: &Global, args: &PublishArgs) -> Result<()> {
    let client = super::authed_client(g)?;
    let packed = pack(&args.path)?;
    let (name, version) = (packed.name.clone(), packed.version.clone());
    let (body, integrity) = document(&client.base, &packed, &args.tag);
    // The key signs only this: the tarball packed here (its integrity computed here), this
    // version, this tag.
    let mut expected = Expected::new(
        &name,
        Change::Publish {
            version: version.clone(),
            integrity: integrity.clone(),
            tags: vec![args.tag.clone()],
        },
    );
    // Shown before the tap: what this tarball changes, computed here rather than taken from the
    // registry.
    match crate::describe::local_publish_diff(&client, &name, &version, &packed.bytes).await {
        Ok(diff) => expected.details = Some(diff),
        Err(e) => eprintln!("warning: cannot list what this tarball changes: {e:#}"),
    }
    let path = format!("/{}", encode_name(&name));
    gated::send(g, &client, Some(&expected), |otp| {
        with_otp(client.request(Method::PUT, &path).json(&body), otp)
    })
    .await?;
    emit(
        g.json,
        &json!({ "name": name, "version": version, "integrity": integrity, "tag": args.tag }),
        || format!("Published {name}@{version} ({})\n  integrity {integrity}", args.tag),
    );
    Ok(())
}
