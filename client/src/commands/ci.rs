//! `tapgate ci create|list|revoke|deploy-key|publish|stage`: CI without codes.
//!
//! A maintainer runs `ci create` once (a tap approves the credential's exact scope). CI holds
//! the credential as `TAPGATE_CI_TOKEN` and, per release, trades it for a deploy key bound to
//! one tarball: `ci publish` does it all; `ci deploy-key` prints a deploy key for
//! `npm publish --otp`.

use anyhow::{Context, Result, bail};
use rand::RngCore;
use reqwest::Method;
use serde_json::json;
use tapgate_shared::ci::{
    CiCredentialInfo, CiCredentialList, CreateCiCredential, DeployKeyRequest, IssuedCiCredential,
    IssuedDeployKey, format_utc,
};
use tapgate_shared::gate_intent::Change;

use super::{encode_name, with_otp};
use crate::api::Client;
use crate::cli::{CiCommand, Global, PublishArgs};
use crate::gated::{self, Expected};
use crate::output::emit;
use crate::pack::pack;

/// The environment variable CI keeps its credential in.
pub const CI_TOKEN_ENV: &str = "TAPGATE_CI_TOKEN";

pub async fn run(g: &Global, cmd: CiCommand) -> Result<()> {
    match cmd {
        CiCommand::Create { package, versions, tags, expires, cidr, name } => {
            create(g, &package, &versions, &tags, &expires, &cidr, &name).await
        }
        CiCommand::List { package } => list(g, &package).await,
        CiCommand::Revoke { id } => revoke(g, &id).await,
        CiCommand::DeployKey { package, version, integrity, tag } => {
            let request = DeployKeyRequest { package, version, integrity, tags: tag };
            let issued = deploy_key(g, &request).await?;
            emit(g.json, &issued, || issued.deploy_key.clone());
            Ok(())
        }
        CiCommand::Publish(args) => publish(g, &args).await,
        CiCommand::Stage(args) => super::stage::ci_stage(g, &ci_client(g)?, &args).await,
    }
}

/// Seconds in `90d` or `12h`.
fn lifetime(text: &str) -> Result<i64> {
    let bad = || format!("--expires {text:?}: give days (90d) or hours (12h)");
    let Some((at, _)) = text.char_indices().last() else { bail!(bad()) };
    let (number, unit) = text.split_at(at);
    let n: i64 = number.parse().ok().filter(|n| *n > 0).with_context(bad)?;
    match unit {
        "d" => Ok(n * 86_400),
        "h" => Ok(n * 3600),
        _ => bail!(bad()),
    }
}

/// A network as the registry wants it: one address is its own /32 (or /128).
fn network(text: &str) -> Result<String> {
    if text.contains('/') {
        return Ok(text.to_string());
    }
    let ip: std::net::IpAddr =
        text.parse().with_context(|| format!("--cidr {text:?} is not an address or network"))?;
    Ok(format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 }))
}

fn now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
}

async fn create(
    g: &Global,
    package: &str,
    versions: &str,
    tags: &[String],
    expires: &str,
    cidrs: &[String],
    name: &str,
) -> Result<()> {
    let client = super::authed_client(g)?;
    let mut id = [0u8; 10];
    rand::rng().fill_bytes(&mut id);
    // Everything the tap approves is chosen here, so repeating the request with the ticket names
    // the same change, and the key signs only what was asked for.
    let body = CreateCiCredential {
        id: format!("ci_{}", hex::encode(id)),
        package: package.to_string(),
        name: name.to_string(),
        versions: versions.to_string(),
        tags: tags.to_vec(),
        expires_at: format_utc(now() + lifetime(expires)?),
        cidrs: cidrs.iter().map(|c| network(c)).collect::<Result<_>>()?,
    };
    let expected = Expected::new(
        package,
        Change::CiCredentialCreate {
            credential_id: body.id.clone(),
            name: body.name.clone(),
            versions: body.versions.clone(),
            tags: body.tags.clone(),
            expires_at: body.expires_at.clone(),
            cidrs: body.cidrs.clone(),
        },
    );
    let resp = gated::send(g, &client, Some(&expected), |otp| {
        with_otp(client.request(Method::POST, "/api/v1/ci/credentials").json(&body), otp)
    })
    .await?;
    let issued: IssuedCiCredential = resp.json().await?;
    if !g.json {
        eprintln!(
            "Created CI credential {} for {package}: versions {}, tags {}, until {}. Store it as CI's {CI_TOKEN_ENV}; it is not shown again:",
            issued.info.id,
            issued.info.versions,
            issued.info.tags.join(","),
            issued.info.expires_at
        );
    }
    emit(g.json, &issued, || issued.credential.clone());
    Ok(())
}

fn describe(c: &CiCredentialInfo) -> String {
    let state = match (&c.revoked_at, c.last_used_at.as_deref()) {
        (Some(at), _) => format!("revoked {at}"),
        (None, Some(at)) => format!("last used {at}"),
        (None, None) => "never used".into(),
    };
    let from = if c.cidrs.is_empty() { "any address".into() } else { c.cidrs.join(",") };
    format!(
        "{}  {:?}  versions {}  tags {}  from {from}  until {}  by {}  ({state})",
        c.id,
        c.name,
        c.versions,
        c.tags.join(","),
        c.expires_at,
        c.created_by
    )
}

async fn list(g: &Global, package: &str) -> Result<()> {
    let client = super::authed_client(g)?;
    let list: CiCredentialList = client
        .get(&format!(
            "/api/v1/ci/credentials?package={}",
            url::form_urlencoded::byte_serialize(package.as_bytes()).collect::<String>()
        ))
        .await?;
    emit(g.json, &list, || {
        if list.credentials.is_empty() {
            format!("{package} has no CI credentials")
        } else {
            list.credentials.iter().map(describe).collect::<Vec<_>>().join("\n")
        }
    });
    Ok(())
}

async fn revoke(g: &Global, id: &str) -> Result<()> {
    let client = super::authed_client(g)?;
    let revoked: CiCredentialInfo =
        client.send(client.request(Method::DELETE, &format!("/api/v1/ci/credentials/{id}"))).await?;
    emit(g.json, &revoked, || format!("Revoked {}", describe(&revoked)));
    Ok(())
}

fn ci_client(g: &Global) -> Result<Client> {
    let token = std::env::var(CI_TOKEN_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .with_context(|| format!("set {CI_TOKEN_ENV} to the CI credential (tg_ci_…) a maintainer created"))?;
    Client::new(&g.server, Some(token.trim().to_string()))
}

/// Trades the CI credential for a deploy key for exactly `request`.
pub async fn deploy_key(g: &Global, request: &DeployKeyRequest) -> Result<IssuedDeployKey> {
    let client = ci_client(g)?;
    client.post("/api/v1/ci/deploy-keys", request).await
}

async fn publish(g: &Global, args: &PublishArgs) -> Result<()> {
    let client = ci_client(g)?;
    let packed = pack(&args.path)?;
    let (name, version) = (packed.name.clone(), packed.version.clone());
    let (body, integrity) = super::publish::document(&client.base, &packed, &args.tag);
    let request = DeployKeyRequest {
        package: name.clone(),
        version: version.clone(),
        integrity: integrity.clone(),
        tags: vec![args.tag.clone()],
    };
    let issued: IssuedDeployKey = client.post("/api/v1/ci/deploy-keys", &request).await?;
    let path = format!("/{}", encode_name(&name));
    client
        .execute(with_otp(client.request(Method::PUT, &path).json(&body), Some(&issued.deploy_key)))
        .await?;
    emit(
        g.json,
        &json!({ "name": name, "version": version, "integrity": integrity, "tag": args.tag,
                 "credential_id": issued.payload.credential_id }),
        || format!("Published {name}@{version} ({}) with a deploy key\n  integrity {integrity}", args.tag),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_and_networks() {
        assert_eq!(lifetime("90d").ok(), Some(90 * 86_400));
        assert_eq!(lifetime("12h").ok(), Some(12 * 3600));
        assert!(lifetime("0d").is_err() && lifetime("3w").is_err() && lifetime("").is_err());
        assert_eq!(network("127.0.0.1").ok().as_deref(), Some("127.0.0.1/32"));
        assert_eq!(network("::1").ok().as_deref(), Some("::1/128"));
        assert_eq!(network("10.0.0.0/8").ok().as_deref(), Some("10.0.0.0/8"));
        assert!(network("nope").is_err());
    }
}
