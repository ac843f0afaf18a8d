//! `tapgate key add|list|rename|remove`

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use sha2::{Digest, Sha256};
use tapgate_shared::api::{FinishRegistration, KeyInfo, KeyList, RegistrationChallenge, RenameKey};
use tapgate_shared::gate_intent::Change;
use tapgate_shared::public_key::PublicKey;

use super::with_otp;
use crate::api::Client;
use crate::authenticator::AuthenticatorChoice;
use crate::ceremony;
use crate::cli::{Global, KeyCommand};
use crate::credentials;
use crate::gated::{self, Expected};
use crate::keyring::{self, Added};
use crate::output::emit;

pub async fn run(g: &Global, cmd: KeyCommand) -> Result<()> {
    match cmd {
        KeyCommand::Add { invite, name, approve_with } => {
            add(g, invite.as_deref(), &name, approve_with).await
        }
        KeyCommand::List => list(g).await,
        KeyCommand::Rename { id, name } => {
            let client = super::authed_client(g)?;
            let key: KeyInfo = client
                .send(client.request(Method::PATCH, &format!("/api/v1/keys/{id}")).json(&RenameKey { name }))
                .await?;
            emit(g.json, &key, || format!("Renamed {} to {:?}.", key.id, key.name));
            Ok(())
        }
        KeyCommand::Remove { id } => remove(g, &id).await,
    }
}

/// The invite token in an invite URL (or the token itself).
pub fn invite_token(invite: &str) -> Result<String> {
    if invite.starts_with("tg_inv_") {
        return Ok(invite.to_string());
    }
    let url = url::Url::parse(invite).context("--invite takes the invite URL or its tg_inv_… token")?;
    url.query_pairs()
        .find(|(k, _)| k == "invite")
        .map(|(_, v)| v.into_owned())
        .filter(|v| v.starts_with("tg_inv_"))
        .context("the invite URL has no ?invite=tg_inv_… part")
}

async fn add(
    g: &Global,
    invite: Option<&str>,
    name: &str,
    approve_with: Option<AuthenticatorChoice>,
) -> Result<()> {
    let origin = ceremony::origin_of(&g.server)?;
    let client = match invite {
        Some(invite) => Client::new(&g.server, Some(invite_token(invite)?))?,
        None => super::authed_client(g)?,
    };
    let begin: RegistrationChallenge =
        client.post("/api/v1/keys/registrations", &serde_json::json!({})).await?;
    let user = begin.public_key.user.name.clone();
    eprintln!("Enrolling a key for {user} on {}. Touch the NEW key now.", client.base);
    let credential = ceremony::register(&g.authenticator, &begin.public_key, &origin).await?;
    let public_key = ceremony::attested_public_key(&credential)?;
    let raw_credential_id = credential.raw_id.clone();
    let credential_id = URL_SAFE_NO_PAD.encode(&credential.raw_id);
    // The tap that approves this key must name this key's own attestation (its public key), as
    // produced here: a registry cannot substitute another key under the same name and id.
    let attestation_sha256 = hex::encode(Sha256::digest(&credential.response.attestation_object));
    let body = FinishRegistration { name: name.to_string(), credential };
    let path = format!("/api/v1/keys/registrations/{}", begin.ceremony);
    // With a token (not an invite), one of the account's existing keys must approve exactly this
    // new key: the registry answers with the approval, checked here before that tap.
    let expected = Expected::new(
        &user,
        Change::KeyAdd { name: name.trim().to_string(), credential_id, attestation_sha256 },
    );
    if invite.is_none() {
        eprintln!("Then approve it with one of your existing keys when asked.");
    }
    let approver =
        Global { authenticator: approve_with.unwrap_or_else(|| g.authenticator.clone()), ..g.clone() };
    let resp = gated::send(&approver, &client, Some(&expected), |otp| {
        with_otp(client.request(Method::POST, &path).json(&body), otp)
    })
    .await?;
    let key: KeyInfo = resp.json().await?;
    pin(&user, &raw_credential_id, &public_key, &key)?;
    emit(g.json, &key, || {
        let kind = if key.attested { "attested hardware key" } else { "key (not attested)" };
        format!(
            "Enrolled {kind} {:?} ({}) for {user}. Sign in with `tapgate login --username {user}`.",
            key.name, key.id
        )
    });
    Ok(())
}

/// Pins a key just enrolled in the user's own keyring, so `tapgate verify` trusts what it signs
/// as `user`'s. The key pinned is the one the authenticator produced; the registry's account of
/// it must agree.
fn pin(user: &str, credential_id: &[u8], public_key: &PublicKey, key: &KeyInfo) -> Result<()> {
    let registry_key = key.public_key_spki.as_deref().map(PublicKey::from_spki_base64);
    let registry_id = (!key.credential_id.is_empty()).then(|| URL_SAFE_NO_PAD.decode(&key.credential_id));
    if registry_key.is_some_and(|k| k.as_ref() != Ok(public_key))
        || registry_id.is_some_and(|id| id.as_deref() != Ok(credential_id))
    {
        bail!(
            "the key is enrolled, but the registry reports a different public key or credential id than the \
             key itself produced: do not trust this registry's approval records, and tell its operator"
        );
    }
    let path = keyring::own_path()?;
    let added = keyring::add_to(&path, user, credential_id, public_key)
        .context("the key is enrolled, but pinning it in your keyring failed")?;
    match added {
        Added::Added => eprintln!(
            "Pinned this key in your keyring ({}): `tapgate verify` trusts what it signs as {user}'s.",
            path.display()
        ),
        Added::AlreadyTrusted => {}
    }
    Ok(())
}

async fn list(g: &Global) -> Result<()> {
    let client = super::authed_client(g)?;
    let list: KeyList = client.get("/api/v1/keys").await?;
    emit(g.json, &list, || {
        if list.keys.is_empty() {
            return "No keys enrolled.".into();
        }
        let mut out = String::new();
        for k in &list.keys {
            let mut flags = vec![if k.attested { "attested" } else { "not attested" }];
            if k.user_verified {
                flags.push("PIN");
            }
            if k.suspended_reason.is_some() {
                flags.push("SUSPENDED");
            }
            let used = k.last_used_at.as_deref().map_or("never", |t| t.get(..10).unwrap_or(t));
            out.push_str(&format!("{}  {:<28} {:<24} last used {used}\n", k.id, k.name, flags.join(", ")));
        }
        out.trim_end().to_string()
    });
    Ok(())
}

async fn remove(g: &Global, id: &str) -> Result<()> {
    if id.is_empty() {
        bail!("give a key id (see `tapgate key list`)");
    }
    let client = super::authed_client(g)?;
    let path = format!("/api/v1/keys/{id}");
    let user = match credentials::saved_username(&g.server)? {
        Some(user) => user,
        None => client.get::<tapgate_shared::api::Whoami>("/api/v1/whoami").await?.username,
    };
    let expected = Expected::new(
        &user,
        Change::KeyRemove { key_id: id.to_string(), name: String::new(), credential_id: String::new() },
    );
    gated::send(g, &client, Some(&expected), |otp| with_otp(client.request(Method::DELETE, &path), otp))
        .await?;
    emit(g.json, &serde_json::json!({ "removed": id }), || format!("Removed key {id}."));
    Ok(())
}
