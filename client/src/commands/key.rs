//! `tapgate key add|list|rename|remove`

use anyhow::{Context, Result, bail};
use reqwest::Method;
use tapgate_shared::ErrorCode;
use tapgate_shared::api::{FinishRegistration, KeyInfo, KeyList, RegistrationChallenge, RenameKey};

use crate::api::{Client, ServerError};
use crate::ceremony;
use crate::cli::{Global, KeyCommand};
use crate::credentials;
use crate::output::emit;

pub async fn run(g: &Global, cmd: KeyCommand) -> Result<()> {
    match cmd {
        KeyCommand::Add { invite, name } => add(g, invite.as_deref(), &name).await,
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

/// Runs `f` with the saved token; if the registry wants a fresh sign-in, signs in with a key
/// tap first (and saves the new token), then retries once.
pub async fn with_fresh_login<T, F, Fut>(g: &Global, f: F) -> Result<T>
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let client = super::authed_client(g)?;
    match f(client).await {
        Err(e)
            if e.downcast_ref::<ServerError>()
                .is_some_and(|s| s.code == Some(ErrorCode::ReauthenticationRequired)) =>
        {
            let username =
                credentials::saved_username(&g.server)?.context("sign in again with `tapgate login`")?;
            eprintln!("This needs a recent sign-in. Touch one of your enrolled keys first.");
            let (username, token) = super::login::sign_in(g, &username).await?;
            credentials::save(&g.server, &token, &username)?;
            f(Client::new(&g.server, Some(token))?).await
        }
        other => other,
    }
}

async fn add(g: &Global, invite: Option<&str>, name: &str) -> Result<()> {
    let origin = ceremony::origin_of(&g.server)?;
    let enroll = |client: Client| {
        let origin = origin.clone();
        async move {
            let begin: RegistrationChallenge =
                client.post("/api/v1/keys/registrations", &serde_json::json!({})).await?;
            eprintln!("Enrolling a key for {} on {}.", begin.public_key.user.name, client.base);
            let credential = ceremony::register(&g.authenticator, &begin.public_key, &origin).await?;
            let key: KeyInfo = client
                .post(
                    &format!("/api/v1/keys/registrations/{}", begin.ceremony),
                    &FinishRegistration { name: name.to_string(), credential },
                )
                .await?;
            Ok::<_, anyhow::Error>((begin.public_key.user.name, key))
        }
    };
    let (user, key) = match invite {
        Some(invite) => enroll(Client::new(&g.server, Some(invite_token(invite)?))?).await?,
        None => with_fresh_login(g, enroll).await?,
    };
    emit(g.json, &key, || {
        let kind = if key.attested { "attested hardware key" } else { "key (not attested)" };
        format!(
            "Enrolled {kind} {:?} ({}) for {user}. Sign in with `tapgate login --username {user}`.",
            key.name, key.id
        )
    });
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
    let path = format!("/api/v1/keys/{id}");
    with_fresh_login(g, |client: Client| {
        let path = path.clone();
        async move {
            client.execute(client.request(Method::DELETE, &path)).await?;
            Ok(())
        }
    })
    .await?;
    emit(g.json, &serde_json::json!({ "removed": id }), || format!("Removed key {id}."));
    Ok(())
}
