//! `tapgate verify NAME@VERSION [--keyring FILE]…`

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tapgate_shared::api::ApprovalRecord;

use super::encode_name;
use crate::api::Client;
use crate::cli::Global;
use crate::keyring::Keyring;
use crate::output::emit;
use crate::verify::verify_record_oidc;
use crate::verify_oidc::OidcPins;

/// Splits `name@version` (the name may be scoped: `@scope/name@1.0.0`).
pub fn split_spec(spec: &str) -> Result<(String, String)> {
    let at = spec.rfind('@').filter(|&i| i > 0).context("give NAME@VERSION, e.g. left-pad@1.3.0")?;
    Ok((spec[..at].to_string(), spec[at + 1..].to_string()))
}

pub async fn run(
    g: &Global,
    spec: &str,
    keyrings: &[std::path::PathBuf],
    server_keys: &[std::path::PathBuf],
    issuer_keys: &[std::path::PathBuf],
) -> Result<()> {
    let (name, version) = split_spec(spec)?;
    let pins = OidcPins {
        audience: tapgate_shared::oidc::audience_for(
            url::Url::parse(&g.server)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default()
                .as_str(),
        ),
        issuer_keys: if issuer_keys.is_empty() { None } else { Some(load_issuer_keys(issuer_keys)?) },
    };
    let keyring = Keyring::load_all(keyrings)?;
    let server_keys = crate::verify_chain::load_server_keys(server_keys)?;
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
    let mut verification =
        verify_record_oidc(&record, &name, &version, &tarball, &published, &keyring, &server_keys, &pins);
    let expected_origin = crate::ceremony::origin_of(&g.server)?;
    verification.checks.push(crate::verify::Check {
        name: "the approval was made for this registry".into(),
        ok: record.origin == expected_origin
            && crate::ceremony::rp_id_allowed(&record.rp_id, &expected_origin),
        detail: format!("record origin {} (rp {}), registry {expected_origin}", record.origin, record.rp_id),
    });
    let ok = verification.ok();
    let approved_by = &verification.approved_by;
    let checks = &verification.checks;
    let value = serde_json::json!({
        "verified": ok, "approved_by": approved_by, "checks": checks, "record": record,
    });
    emit(g.json, &value, || {
        let mut out = String::new();
        for c in checks {
            out.push_str(&format!("{} {}: {}\n", if c.ok { "ok  " } else { "FAIL" }, c.name, c.detail));
        }
        out.push_str(&if ok && record.oidc_publish.is_some() {
            format!(
                "{name}@{version} was published by CI with an OIDC ID token that meets a trust {} created with keys \
                 your keyring trusts, for exactly this tarball, as your pinned registry key signed.",
                approved_by.join(", ")
            )
        } else if ok && record.deploy_key.is_some() {
            format!(
                "{name}@{version} was published by CI with a deploy key your pinned registry key signed, for \
                 exactly this tarball, under a CI credential {} approved with keys your keyring trusts.",
                approved_by.join(", ")
            )
        } else if ok {
            format!(
                "{name}@{version} was approved by {} with keys your keyring trusts, for exactly this tarball.",
                approved_by.join(", ")
            )
        } else if keyring.is_empty() {
            format!(
                "{name}@{version} does NOT verify. Your keyring is empty: get the maintainers' keys with \
                 `tapgate keyring export {name} --output FILE`, check them with their owners, and pass \
                 `--keyring FILE`."
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

/// Reads pinned issuer keys: each file a saved JWKS document.
fn load_issuer_keys(files: &[std::path::PathBuf]) -> Result<Vec<tapgate_shared::oidc::Jwk>> {
    let mut keys = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the issuer keys {}", file.display()))?;
        let jwks: tapgate_shared::oidc::Jwks = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a saved JWKS document", file.display()))?;
        keys.extend(jwks.usable());
    }
    Ok(keys)
}
