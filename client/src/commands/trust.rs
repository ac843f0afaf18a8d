//! `tapgate trust add|list|remove|issuers`: trusted publishing from any issuer the registry's
//! operator trusts (self-hosted GitLab, Forgejo/Gitea Actions, Buildkite…), over the routes npm's
//! `npm trust` uses. `add` chooses everything the tap approves (the trust id included) and
//! recomputes the intent before the key is touched.

use anyhow::{Context, Result, bail};
use rand::RngCore;
use reqwest::Method;
use serde_json::{Map, Value, json};
use tapgate_shared::gate_intent::Change;
use tapgate_shared::oidc::{IssuerInfo, PERMISSION_PUBLISH, PERMISSION_STAGE, TrustConfig};

use super::{encode_name, with_otp};
use crate::cli::{Global, TrustCommand};
use crate::gated::{self, Expected};
use crate::output::emit;

pub async fn run(g: &Global, cmd: TrustCommand) -> Result<()> {
    match cmd {
        TrustCommand::Add { package, issuer, claims, file, stage, stage_only } => {
            add(g, &package, &issuer, &claims, file.as_deref(), stage, stage_only).await
        }
        TrustCommand::List { package } => list(g, &package).await,
        TrustCommand::Remove { package, id } => remove(g, &package, &id).await,
        TrustCommand::Issuers => {
            let issuers = issuers(g).await?;
            emit(g.json, &issuers, || {
                if issuers.is_empty() {
                    return "This registry trusts no OIDC issuer.".to_string();
                }
                issuers
                    .iter()
                    .map(|i| {
                        format!(
                            "{} ({}): {}, trusts must name {}",
                            i.name,
                            i.kind,
                            i.issuer,
                            i.required_claims.join(", ")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
    }
}

async fn issuers(g: &Global) -> Result<Vec<IssuerInfo>> {
    let client = crate::api::Client::new(&g.server, None)?;
    client.get("/-/npm/v1/oidc/issuers").await
}

/// The claims map a trust sends: each NAME=VALUE, and `--file` as npm's `{"file": F}` on the
/// claim the issuer's kind uses for it.
fn claims_of(kind: &str, pairs: &[String], file: Option<&str>) -> Result<Map<String, Value>> {
    let mut claims = Map::new();
    for pair in pairs {
        let (name, value) =
            pair.split_once('=').with_context(|| format!("--claim {pair:?}: use NAME=VALUE"))?;
        if claims.insert(name.to_string(), Value::String(value.to_string())).is_some() {
            bail!("the claim {name} is given twice");
        }
    }
    if let Some(file) = file {
        let claim = match kind {
            "github" => "workflow_ref",
            "gitlab" => "ci_config_ref_uri",
            other => bail!(
                "--file works for GitHub and GitLab issuers; for a {other} issuer name the claim with --claim"
            ),
        };
        claims.insert(claim.to_string(), json!({ "file": file }));
    }
    Ok(claims)
}

async fn add(
    g: &Global,
    package: &str,
    issuer: &str,
    pairs: &[String],
    file: Option<&str>,
    stage: bool,
    stage_only: bool,
) -> Result<()> {
    let client = super::authed_client(g)?;
    let all = issuers(g).await?;
    let found: Vec<&IssuerInfo> = all.iter().filter(|i| i.name == issuer || i.kind == issuer).collect();
    let info = match found.as_slice() {
        [one] => *one,
        [] => bail!("this registry trusts no issuer {issuer:?}: see `tapgate trust issuers`"),
        _ => bail!("several issuers are of kind {issuer}: name one (see `tapgate trust issuers`)"),
    };
    let claims = claims_of(&info.kind, pairs, file)?;
    if let Some(missing) = info.required_claims.iter().find(|c| !claims.contains_key(*c)) {
        bail!(
            "the registry requires trusts for {} to name the claim {missing} (--claim {missing}=…)",
            info.name
        );
    }
    let mut permissions = Vec::new();
    if !stage_only {
        permissions.push(PERMISSION_PUBLISH.to_string());
    }
    if stage || stage_only {
        permissions.push(PERMISSION_STAGE.to_string());
    }
    permissions.sort();
    let mut id = [0u8; 10];
    rand::rng().fill_bytes(&mut id);
    let trust_id = format!("trust_{}", hex::encode(id));
    let provider = info.name.clone();
    let body = vec![TrustConfig {
        id: None,
        provider: provider.clone(),
        claims: claims.clone(),
        permissions: permissions.clone(),
        issuer: Some(info.issuer.clone()),
        trust_id: Some(trust_id.clone()),
        package: None,
        created_by: None,
        created_at: None,
        approval_id: None,
    }];
    let expected = Expected::new(
        package,
        Change::TrustCreate {
            trust_id,
            issuer: info.issuer.clone(),
            provider,
            claims: serde_json::to_string(&claims)?,
            permissions,
        },
    );
    let path = format!("/-/package/{}/trust", encode_name(package));
    let resp = gated::send(g, &client, Some(&expected), |otp| {
        with_otp(client.request(Method::POST, &path).json(&body), otp)
    })
    .await?;
    let created: Vec<TrustConfig> = resp.json().await?;
    emit(g.json, &created, || created.iter().map(line).collect::<Vec<_>>().join("\n"));
    Ok(())
}

fn line(t: &TrustConfig) -> String {
    format!(
        "{} {} ({}) claims {} permissions {} created by {}",
        t.id.as_deref().unwrap_or("?"),
        t.issuer.as_deref().unwrap_or("?"),
        t.provider,
        Value::Object(t.claims.clone()),
        t.permissions.join(","),
        t.created_by.as_deref().unwrap_or("?")
    )
}

async fn list(g: &Global, package: &str) -> Result<()> {
    let client = super::authed_client(g)?;
    let trusts: Vec<TrustConfig> = client.get(&format!("/-/package/{}/trust", encode_name(package))).await?;
    emit(g.json, &trusts, || {
        if trusts.is_empty() {
            format!("{package} has no trusts.")
        } else {
            trusts.iter().map(line).collect::<Vec<_>>().join("\n")
        }
    });
    Ok(())
}

async fn remove(g: &Global, package: &str, id: &str) -> Result<()> {
    let client = super::authed_client(g)?;
    let path = format!("/-/package/{}/trust/{}", encode_name(package), id);
    let resp = client.execute(client.request(Method::DELETE, &path)).await?;
    let removed: Vec<TrustConfig> = resp.json().await?;
    emit(g.json, &removed, || {
        format!("Removed the trust {id} of {package}: CI tokens it gave no longer work.")
    });
    Ok(())
}
