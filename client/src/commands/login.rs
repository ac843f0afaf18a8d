//! `tapgate login`, `tapgate logout`

use anyhow::{Context, Result};
use tapgate_shared::api::{AuthenticationChallenge, BeginLogin, FinishLogin, LoginResult};

use crate::api::Client;
use crate::ceremony;
use crate::cli::{Global, LoginArgs};
use crate::credentials;
use crate::output::emit;

/// Runs a sign-in ceremony for `begin` with a key tap and returns the registry's answer.
pub async fn sign_in_with(g: &Global, begin: &BeginLogin) -> Result<LoginResult> {
    let client = Client::new(&g.server, None)?;
    let origin = ceremony::origin_of(&g.server)?;
    let challenge: AuthenticationChallenge = client.post("/api/v1/sessions", begin).await?;
    let credential = ceremony::assert(&g.authenticator, &challenge.public_key, &origin).await?;
    client.post(&format!("/api/v1/sessions/{}", challenge.ceremony), &FinishLogin { credential }).await
}

/// Signs in with a key tap and returns (username, token) without saving.
pub async fn sign_in(g: &Global, username: &str) -> Result<(String, String)> {
    eprintln!("Signing in to {} as {username}.", g.server);
    let begin = BeginLogin {
        username: username.to_string(),
        npm_login: None,
        token_name: Some(format!("tapgate CLI on {}", hostname())),
    };
    let result = sign_in_with(g, &begin).await?;
    let token = result.token.context("the registry did not return a token")?;
    Ok((result.username, token))
}

pub async fn run(g: &Global, args: &LoginArgs) -> Result<()> {
    let username = match &args.username {
        Some(name) => name.clone(),
        None => credentials::saved_username(&g.server)?
            .context("give your username: `tapgate login --username NAME`")?,
    };
    let (username, token) = sign_in(g, &username).await?;
    let path = credentials::save(&g.server, &token, &username)?;
    emit(g.json, &serde_json::json!({ "username": username, "server": g.server, "saved_to": path }), || {
        format!("Logged in to {} as {username}. Token saved to {}.", g.server, path.display())
    });
    Ok(())
}

/// Revokes the saved token on the registry, then forgets it here. A token the registry already
/// refuses is simply forgotten; if the registry cannot be reached the token is kept, so that it
/// is not left valid and forgotten.
pub async fn logout(g: &Global) -> Result<()> {
    if let Some(token) = credentials::token_for(&g.server)? {
        let client = Client::new(&g.server, Some(token.clone()))?;
        let path = format!("/-/user/token/{token}");
        match client.execute(client.request(reqwest::Method::DELETE, &path)).await {
            Ok(_) => {}
            Err(e)
                if e.downcast_ref::<crate::api::ServerError>()
                    .is_some_and(|s| s.status == reqwest::StatusCode::UNAUTHORIZED) => {}
            Err(e) => return Err(e.context("could not revoke the token on the registry; it is still saved")),
        }
    }
    let had = credentials::forget(&g.server)?;
    emit(g.json, &serde_json::json!({ "server": g.server, "forgotten": had }), || {
        if had {
            format!("Logged out of {}; the token is revoked.", g.server)
        } else {
            format!("You were not logged in to {}.", g.server)
        }
    });
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "this machine".into())
}
