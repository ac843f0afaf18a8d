//! `tapgate keyring add|list|remove|export`

use anyhow::{Context, Result, bail};
use tapgate_shared::api::{PublicKeyInfo, PublicKeyList};
use tapgate_shared::public_key::PublicKey;

use super::encode_name;
use crate::api::{Client, ServerError};
use crate::cli::{Global, KeyringCommand};
use crate::keyring::{self, Added, Keyring};
use crate::output::emit;

pub async fn run(g: &Global, cmd: KeyringCommand) -> Result<()> {
    match cmd {
        KeyringCommand::Add { user, credential_id, key } => add(g, &user, &credential_id, &key),
        KeyringCommand::List => list(g),
        KeyringCommand::Remove { credential_id } => remove(g, &credential_id),
        KeyringCommand::Export { target, user, package, output, force } => {
            export(g, &target, Kind::from_flags(user, package), output.as_deref(), force).await
        }
    }
}

fn add(g: &Global, user: &str, credential_id: &str, key: &str) -> Result<()> {
    let id = keyring::parse_credential_id(credential_id).map_err(anyhow::Error::msg)?;
    let key = keyring::parse_key(key).map_err(anyhow::Error::msg)?;
    let path = keyring::own_path()?;
    let added = keyring::add_to(&path, user, &id, &key)?;
    let value = serde_json::json!({
        "user": user, "credential_id": credential_id, "added": added == Added::Added,
        "keyring": path.display().to_string(),
    });
    emit(g.json, &value, || match added {
        Added::Added => format!(
            "Trusting {credential_id} as {user}'s {} key ({}): `tapgate verify` credits {user} with what it signs.",
            key.algorithm(),
            path.display()
        ),
        Added::AlreadyTrusted => format!("{credential_id} is already trusted as {user}'s key."),
    });
    Ok(())
}

fn list(g: &Global) -> Result<()> {
    let path = keyring::own_path()?;
    let keyring = Keyring::load_own()?;
    let entries: Vec<_> = keyring
        .entries()
        .iter()
        .map(|e| {
            serde_json::json!({
                "user": e.user, "credential_id": e.credential_id_text(), "algorithm": e.key.algorithm(),
                "public_key_spki": e.key.spki_base64(),
            })
        })
        .collect();
    let value = serde_json::json!({ "keyring": path.display().to_string(), "keys": entries });
    emit(g.json, &value, || {
        if keyring.is_empty() {
            return format!(
                "Your keyring ({}) trusts no keys yet: `tapgate key add` pins yours, `tapgate keyring add` \
                 adds others'.",
                path.display()
            );
        }
        let mut out = format!("# {}\n", path.display());
        for e in keyring.entries() {
            out.push_str(&format!("{}\n", e.line()));
        }
        out.trim_end().to_string()
    });
    Ok(())
}

fn remove(g: &Global, credential_id: &str) -> Result<()> {
    let id = keyring::parse_credential_id(credential_id).map_err(anyhow::Error::msg)?;
    let path = keyring::own_path()?;
    if !path.exists() || keyring::remove_from(&path, &id)? == 0 {
        bail!("your keyring ({}) does not list credential {credential_id}", path.display());
    }
    emit(g.json, &serde_json::json!({ "removed": credential_id }), || {
        format!("No longer trusting {credential_id}.")
    });
    Ok(())
}

/// What `export` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    Package,
    Either,
}

impl Kind {
    fn from_flags(user: bool, package: bool) -> Kind {
        match (user, package) {
            (true, _) => Kind::User,
            (_, true) => Kind::Package,
            _ => Kind::Either,
        }
    }
}

/// The keys the registry publishes at `path`, or `None` when it has no such user or package.
async fn fetch(client: &Client, path: &str) -> Result<Option<Vec<PublicKeyInfo>>> {
    match client.get::<PublicKeyList>(path).await {
        Ok(list) => Ok(Some(list.keys)),
        Err(e)
            if e.downcast_ref::<ServerError>()
                .is_some_and(|s| s.status == reqwest::StatusCode::NOT_FOUND) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

async fn export(
    g: &Global,
    target: &str,
    kind: Kind,
    output: Option<&std::path::Path>,
    force: bool,
) -> Result<()> {
    if let Some(path) = output
        && path.exists()
        && !force
    {
        bail!("{} exists: choose another file, or give --force to replace it", path.display());
    }
    let client = Client::new(&g.server, crate::credentials::token_for(&g.server)?)?;
    let as_user = match kind {
        Kind::Package => None,
        _ => fetch(&client, &format!("/api/v1/users/{}/keys", encode_name(target))).await?,
    };
    let as_package = match kind {
        Kind::User => None,
        _ => fetch(&client, &format!("/api/v1/packages/{}/keys", encode_name(target))).await?,
    };
    let (what, keys) = match (as_user, as_package) {
        (Some(_), Some(_)) => {
            bail!("{target} is both a user and a package on {}: give --user or --package", client.base)
        }
        (Some(keys), None) => (format!("{target}'s keys"), keys),
        (None, Some(keys)) => (format!("the keys of {target}'s maintainers"), keys),
        (None, None) => bail!(
            "{} has no {} named {target}",
            client.base,
            match kind {
                Kind::User => "user",
                Kind::Package => "package",
                Kind::Either => "user or package",
            }
        ),
    };
    if keys.is_empty() {
        bail!("{} publishes no usable keys for {target}", client.base);
    }
    let mut text = format!(
        "# {what}, as {} published them. Check them with their owners before trusting them.\n",
        client.base
    );
    for k in &keys {
        let id = keyring::parse_credential_id(&k.credential_id)
            .map_err(|e| anyhow::anyhow!("the registry sent a bad key for {}: {e}", k.user))?;
        let key = PublicKey::from_spki_base64(&k.public_key_spki)
            .with_context(|| format!("the registry sent an unreadable key for {}", k.user))?;
        if PublicKey::from_cose_base64url(&k.public_key_cose).ok().as_ref() != Some(&key) {
            bail!(
                "the registry sent two different public keys for {}'s credential {}",
                k.user,
                k.credential_id
            );
        }
        let attested = if k.attested { "attested" } else { "not attested" };
        text.push_str(&format!("# {}: {:?} ({}, {attested})\n", k.user, k.name, key.algorithm()));
        text.push_str(&keyring::line(&k.user, &id, &key));
        text.push('\n');
    }
    // What is written must read back as a keyring.
    Keyring::parse(&text, "export")?;
    match output {
        Some(path) => {
            keyring::write(path, &text)?;
            emit(g.json, &serde_json::json!({ "keys": keys, "output": path.display().to_string() }), || {
                format!(
                    "Wrote {} key(s) to {}: use it with `tapgate verify --keyring {}`.",
                    keys.len(),
                    path.display(),
                    path.display()
                )
            });
        }
        None => emit(g.json, &serde_json::json!({ "keys": keys }), || text.trim_end().to_string()),
    }
    Ok(())
}
