//! `tapgate stage list|view|download|approve|reject|wait` and `tapgate ci stage`: staged
//! releases. CI uploads a release nobody is served; a maintainer reviews it and approves it
//! (the publish of exactly those bytes) or rejects it, each with a tap.
//!
//! Before the key is touched, the tarball is downloaded and its integrity, name and version are
//! computed here: the key approves the bytes this machine saw, whatever the registry says about
//! them.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use reqwest::Method;
use sha1::{Digest, Sha1};
use tapgate_shared::gate_intent::Change;
use tapgate_shared::intent::sri_sha512;
use tapgate_shared::stage::{StageItem, StageList, StageState, Staged};

use crate::api::Client;
use crate::cli::{Global, PublishArgs};
use crate::gated::{self, Expected};
use crate::output::emit;

#[derive(Debug, Subcommand)]
pub enum StageCommand {
    /// List the staged releases of your packages (or of one), newest first.
    List {
        /// Only this package's.
        package: Option<String>,
    },
    /// Show a staged release: who staged it, its tarball's integrity, its state.
    View { id: String },
    /// Save a staged release's tarball (checked against its integrity) to inspect it.
    Download {
        id: String,
        /// Where to write it [default: NAME-VERSION-ID.tgz].
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// Approve a staged release with a tap: it is published, exactly as staged. The tarball is
    /// downloaded and checked here first, and what it changes is shown.
    Approve { id: String },
    /// Reject a staged release with a tap: it is never published and its tarball is deleted.
    Reject { id: String },
    /// Wait until a staged release is decided. Exit status: 0 published, 3 rejected, 4 expired,
    /// 5 superseded (the version was published otherwise), 6 still pending after --timeout.
    Wait {
        id: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
        /// Ask every this many seconds.
        #[arg(long, default_value_t = 5)]
        interval: u64,
    },
}

/// A command that ends with a particular exit status (and says why on stderr).
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

pub async fn run(g: &Global, cmd: StageCommand) -> Result<()> {
    let client = super::authed_client(g)?;
    match cmd {
        StageCommand::List { package } => list(g, &client, package.as_deref()).await,
        StageCommand::View { id } => {
            let item = item(&client, &id).await?;
            emit(g.json, &item, || describe(&item));
            Ok(())
        }
        StageCommand::Download { id, output } => {
            let item = item(&client, &id).await?;
            let bytes = checked_tarball(&client, &item).await?;
            let bare = item.package_name.rsplit('/').next().unwrap_or(&item.package_name);
            let path = output.unwrap_or_else(|| format!("{bare}-{}-{}.tgz", item.version, item.id).into());
            std::fs::write(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
            emit(g.json, &serde_json::json!({ "file": path, "integrity": item.integrity }), || {
                format!("{} ({} bytes, {})", path.display(), bytes.len(), item.integrity)
            });
            Ok(())
        }
        StageCommand::Approve { id } => approve(g, &client, &id).await,
        StageCommand::Reject { id } => reject(g, &client, &id).await,
        StageCommand::Wait { id, timeout, interval } => wait(g, &client, &id, timeout, interval).await,
    }
}

fn path(id: &str) -> Result<String> {
    if uuid::Uuid::parse_str(id).is_err() {
        bail!("{id:?} is not a stage id (a UUID, as `tapgate stage list` prints it)");
    }
    Ok(format!("/-/stage/{id}"))
}

/// The stage `id` as the registry describes it (refused if it describes another one).
async fn item(client: &Client, id: &str) -> Result<StageItem> {
    let item: StageItem = client.get(&path(id)?).await?;
    if !item.id.eq_ignore_ascii_case(id) {
        bail!("asked for the staged release {id}, the registry answered {}; nothing was done", item.id);
    }
    Ok(item)
}

/// The largest staged tarball the CLI downloads.
const MAX_TARBALL_BYTES: u64 = 512 * 1024 * 1024;

fn describe(s: &StageItem) -> String {
    let by = match &s.credential {
        Some(c) => format!("{} ({} {c})", s.actor, s.actor_type.as_str()),
        None => s.actor.clone(),
    };
    let decided = match (&s.decided_by, &s.decided_at) {
        (Some(who), Some(at)) => format!(" by {who} at {at}"),
        (None, Some(at)) => format!(" at {at}"),
        _ => String::new(),
    };
    format!(
        "{id}  {name}@{version}  {state}{decided}\n  tags {tags}; staged by {by} at {at}; expires {exp}\n  integrity {integrity}\n  review: {url}",
        id = s.id,
        name = s.package_name,
        version = s.version,
        state = s.state.as_str(),
        tags = s.tags.join(", "),
        at = s.created_at,
        exp = s.expires_at,
        integrity = s.integrity,
        url = s.url,
    )
}

async fn list(g: &Global, client: &Client, package: Option<&str>) -> Result<()> {
    let mut query = String::from("/-/stage?page=0&perPage=100");
    if let Some(p) = package {
        query.push_str("&package=");
        query.extend(url::form_urlencoded::byte_serialize(p.as_bytes()));
    }
    let list: StageList = client.get(&query).await?;
    emit(g.json, &list, || {
        if list.items.is_empty() {
            "No staged releases.".to_string()
        } else {
            list.items.iter().map(describe).collect::<Vec<_>>().join("\n\n")
        }
    });
    Ok(())
}

/// The staged tarball, refused unless its bytes hash to the integrity the registry reports and
/// hold the package and version it says.
async fn checked_tarball(client: &Client, item: &StageItem) -> Result<Vec<u8>> {
    let expected = u64::try_from(item.size).unwrap_or(0);
    if expected > MAX_TARBALL_BYTES {
        bail!("the staged tarball is {expected} bytes, more than this CLI downloads");
    }
    let mut resp =
        client.execute(client.request(Method::GET, &format!("{}/tarball", path(&item.id)?))).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.context("cannot download the staged tarball")? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > expected {
            bail!(
                "the registry sent more than the {expected} bytes it says the staged tarball has; nothing was signed"
            );
        }
    }
    let integrity = sri_sha512(&bytes);
    if integrity != item.integrity || hex::encode(Sha1::digest(&bytes)) != item.shasum {
        bail!(
            "the registry sent a tarball ({integrity}) other than the one it says was staged ({}); nothing was signed",
            item.integrity
        );
    }
    let manifest = crate::pack::read_manifest(&bytes)?;
    let (name, version) =
        (manifest.get("name").and_then(|v| v.as_str()), manifest.get("version").and_then(|v| v.as_str()));
    if name != Some(item.package_name.as_str()) || version != Some(item.version.as_str()) {
        bail!(
            "the staged tarball holds {}@{}, not {}@{} as the registry says; nothing was signed",
            name.unwrap_or("?"),
            version.unwrap_or("?"),
            item.package_name,
            item.version
        );
    }
    Ok(bytes)
}

async fn approve(g: &Global, client: &Client, id: &str) -> Result<()> {
    let item = item(client, id).await?;
    if item.state != StageState::Pending {
        bail!("the staged release {id} is {}: there is nothing to approve", item.state.as_str());
    }
    let bytes = checked_tarball(client, &item).await?;
    eprintln!("{}", describe(&item));
    let mut expected = Expected::new(
        &item.package_name,
        Change::Publish {
            version: item.version.clone(),
            integrity: sri_sha512(&bytes),
            tags: item.tags.clone(),
        },
    );
    match crate::describe::local_publish_diff(client, &item.package_name, &item.version, &bytes).await {
        Ok(diff) => expected.details = Some(diff),
        Err(e) => eprintln!("warning: cannot list what this tarball changes: {e:#}"),
    }
    let approve_path = format!("{}/approve", path(id)?);
    let resp = gated::send(g, client, Some(&expected), |otp| {
        super::with_otp(client.request(Method::POST, &approve_path), otp)
    })
    .await?;
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    emit(g.json, &body, || format!("Published {}@{} from stage {id}", item.package_name, item.version));
    Ok(())
}

async fn reject(g: &Global, client: &Client, id: &str) -> Result<()> {
    let item = item(client, id).await?;
    if item.state != StageState::Pending {
        bail!("the staged release {id} is {}: there is nothing to reject", item.state.as_str());
    }
    let expected = Expected::new(
        &item.package_name,
        Change::StageReject {
            stage_id: item.id.clone(),
            version: item.version.clone(),
            integrity: item.integrity.clone(),
        },
    );
    let stage_path = path(id)?;
    let resp = gated::send(g, client, Some(&expected), |otp| {
        super::with_otp(client.request(Method::DELETE, &stage_path), otp)
    })
    .await?;
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    emit(g.json, &body, || {
        format!("Rejected {}@{} (stage {id}): it will never be published", item.package_name, item.version)
    });
    Ok(())
}

/// The exit status `tapgate stage wait` ends with in `state`.
pub fn wait_status(state: StageState) -> Option<u8> {
    match state {
        StageState::Pending => None,
        StageState::Published => Some(0),
        StageState::Rejected => Some(3),
        StageState::Expired => Some(4),
        StageState::Superseded => Some(5),
    }
}

async fn wait(g: &Global, client: &Client, id: &str, timeout: u64, interval: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let interval = Duration::from_secs(interval.max(1));
    loop {
        let item = item(client, id).await?;
        if let Some(code) = wait_status(item.state) {
            emit(g.json, &item, || describe(&item));
            if code == 0 {
                return Ok(());
            }
            return Err(Exit {
                code,
                message: format!("the staged release {id} was not published: it is {}", item.state.as_str()),
            }
            .into());
        }
        if Instant::now() + interval > deadline {
            return Err(Exit {
                code: 6,
                message: format!("the staged release {id} is still pending after {timeout} s"),
            }
            .into());
        }
        tokio::time::sleep(interval).await;
    }
}

/// `tapgate ci stage`: pack and stage with `TAPGATE_CI_TOKEN`; prints the stage id.
pub async fn ci_stage(g: &Global, client: &Client, args: &PublishArgs) -> Result<()> {
    let packed = crate::pack::pack(&args.path)?;
    let (body, integrity) = super::publish::document(&client.base, &packed, &args.tag);
    let path = format!("/-/stage/package/{}", super::encode_name(&packed.name));
    let staged: Staged = client.send(client.request(Method::POST, &path).json(&body)).await?;
    if staged.item.integrity != integrity {
        bail!("the registry recorded {} for the tarball packed here ({integrity})", staged.item.integrity);
    }
    emit(g.json, &staged, || staged.stage_id.clone());
    eprintln!(
        "Staged {}@{} ({}): a maintainer approves it at {} or with `tapgate stage approve {}`",
        packed.name, packed.version, args.tag, staged.item.url, staged.stage_id
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_tell_the_outcomes_apart() {
        let codes: Vec<Option<u8>> = [
            StageState::Pending,
            StageState::Published,
            StageState::Rejected,
            StageState::Expired,
            StageState::Superseded,
        ]
        .into_iter()
        .map(wait_status)
        .collect();
        assert_eq!(codes, [None, Some(0), Some(3), Some(4), Some(5)]);
    }

    #[test]
    fn stage_ids_are_uuids() {
        assert!(path("not-a-uuid").is_err());
        assert!(path("../../-/npm/v1/tokens").is_err());
        assert_eq!(
            path("0b7c5d1e-8f2a-4c3b-9d4e-5f6a7b8c9d0e").ok().as_deref(),
            Some("/-/stage/0b7c5d1e-8f2a-4c3b-9d4e-5f6a7b8c9d0e")
        );
    }
}
