//! `tapgate verify NAME@VERSION`

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tapgate_shared::api::ApprovalRecord;

use super::encode_name;
use crate::api::Client;
use crate::cli::Global;
use crate::output::emit;
use crate::verify::verify_record;

/// Splits `name@version` (the name may be scoped: `@scope/name@1.0.0`).
pub fn split_spec(spec: &str) -> Result<(String, String)> {
    let at = spec.rfind('@').filter(|&i| i > 0).context("give NAME@VERSION, e.g. left-pad@1.3.0")?;
    Ok((spec[..at].to_string(), spec[at + 1..].to_string()))
}

pub async fn run(g: &Global, spec: &str) -> Result<()> {
    let (name, version) = split_spec(spec)?;
    let client = Client::new(&g.server, crate::credentials::token_for(&g.server)?)?;
    let record: ApprovalRecord =
        client.get(&format!("/api/v1/packages/{}/versions/{version}/approval", encode_name(&name))).await?;
    let manifest: Value = client.get(&format!("/{}/{version}", encode_name(&name))).await?;
    let published =
        manifest["dist"]["integrity"].as_str().context("the registry publishes no integrity")?.to_string();
    let tarball_url =
        manifest["dist"]["tarball"].as_str().context("the registry publishes no tarball URL")?;
    let path =
        tarball_url.strip_prefix(&client.base).context("the tarball is not on this registry")?.to_string();
    let resp = client.execute(client.request(reqwest::Method::GET, &path)).await?;
    let tarball = resp.bytes().await?;
    let mut checks = verify_record(&record, &name, &version, &tarball, &published);
    let expected_origin = crate::ceremony::origin_of(&g.server)?;
    checks.push(crate::verify::Check {
        name: "the approval was made for this registry",
        ok: record.origin == expected_origin
            && crate::ceremony::rp_id_allowed(&record.rp_id, &expected_origin),
        detail: format!("record origin {} (rp {}), registry {expected_origin}", record.origin, record.rp_id),
    });
    let ok = checks.iter().all(|c| c.ok);
    emit(g.json, &serde_json::json!({ "verified": ok, "checks": checks, "record": record }), || {
        let mut out = String::new();
        for c in &checks {
            out.push_str(&format!("{} {}: {}\n", if c.ok { "ok  " } else { "FAIL" }, c.name, c.detail));
        }
        out.push_str(&if ok {
            format!(
                "{name}@{version} was approved by {}'s security key for exactly this tarball.",
                record.approved_by
            )
        } else {
            format!("{name}@{version} does NOT verify.")
        });
        out
    });
    if !ok {
        bail!("verification of {name}@{version} failed");
    }
    Ok(())
}
