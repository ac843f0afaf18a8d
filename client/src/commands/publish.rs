//! `tapgate publish [DIR|TARBALL]`

use anyhow::{Context, Result};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use tapgate_shared::api::{ApprovalInfo, ApprovalTicket, CreateApproval, FinishApproval};
use tapgate_shared::intent::sri_sha512;

use super::encode_name;
use crate::ceremony;
use crate::cli::{Global, PublishArgs};
use crate::output::emit;
use crate::pack::pack;

pub async fn run(g: &Global, args: &PublishArgs) -> Result<()> {
    let client = super::authed_client(g)?;
    let origin = ceremony::origin_of(&g.server)?;
    let packed = pack(&args.path)?;
    let integrity = sri_sha512(&packed.bytes);
    let shasum = hex::encode(Sha1::digest(&packed.bytes));
    let (name, version) = (packed.name.clone(), packed.version.clone());

    let approval: ApprovalInfo = client
        .post(
            "/api/v1/approvals",
            &CreateApproval { package: name.clone(), version: version.clone(), integrity: integrity.clone() },
        )
        .await?;
    let options = approval.public_key.as_ref().context("the registry sent no key challenge")?;
    eprintln!("Approve publishing {name}@{version}");
    eprintln!("  tarball {integrity}");
    let credential = ceremony::assert(&g.authenticator, options, &origin).await?;
    let ticket: ApprovalTicket =
        client.post(&format!("/api/v1/approvals/{}", approval.id), &FinishApproval { credential }).await?;

    let bare = name.rsplit('/').next().unwrap_or(&name);
    let filename = format!("{bare}-{version}.tgz");
    let mut manifest = packed.manifest.clone();
    manifest.insert("_id".into(), json!(format!("{name}@{version}")));
    manifest.insert(
        "dist".into(),
        json!({
            "integrity": integrity,
            "shasum": shasum,
            "tarball": format!("{}/{name}/-/{filename}", client.base),
        }),
    );
    let body = json!({
        "_id": name,
        "name": name,
        "description": manifest.get("description").cloned().unwrap_or(Value::Null),
        "dist-tags": { args.tag.clone(): version },
        "versions": { version.clone(): Value::Object(manifest) },
        "_attachments": {
            filename: {
                "content_type": "application/octet-stream",
                "data": base64::engine::general_purpose::STANDARD.encode(&packed.bytes),
                "length": packed.bytes.len(),
            }
        },
    });
    let req = client
        .request(Method::PUT, &format!("/{}", encode_name(&name)))
        .header("npm-otp", &ticket.ticket)
        .json(&body);
    client.execute(req).await?;
    emit(g.json, &json!({ "name": name, "version": version, "integrity": integrity }), || {
        format!("Published {name}@{version}\n  integrity {integrity}")
    });
    Ok(())
}
