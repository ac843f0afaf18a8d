//! `tapgate approve URL|ID`

use anyhow::{Context, Result, bail};
use tapgate_shared::api::ApprovalInfo;

use crate::api::Client;
use crate::cli::Global;
use crate::gated::{self, Tapped};
use crate::output::emit;

/// The approval id in an approval URL (`…/approve/<id>`) or the id itself.
pub fn approval_id(approval: &str) -> Result<String> {
    let id = approval.trim().trim_end_matches('/').rsplit('/').next().unwrap_or_default();
    if !id.starts_with("apr_") {
        bail!("{approval:?} is not an approval URL or id (they look like …/approve/apr_…)");
    }
    Ok(id.to_string())
}

pub async fn run(g: &Global, approval: &str) -> Result<()> {
    if let Some(login_id) = npm_login_id(approval) {
        return approve_npm_login(g, &login_id).await;
    }
    let id = approval_id(approval)?;
    let client = Client::new(&g.server, None)?;
    let info: ApprovalInfo = client.get(&format!("/api/v1/approvals/{id}")).await?;
    if info.status != "pending" {
        bail!("this approval is {}: nothing to approve", info.status);
    }
    // What is shown is what is signed: the challenge is recomputed from the intent first.
    let intent = info.intent.as_ref().map(|i| i.describe()).unwrap_or_default();
    let ticket = match gated::tap(g, &info, None).await? {
        Tapped::Ticket(ticket) => ticket,
        Tapped::Pending { approvals, required } => {
            let missing = required.saturating_sub(approvals);
            emit(
                g.json,
                &serde_json::json!({
                    "approved": true, "pending": true, "change": intent, "package": info.package,
                    "version": info.version, "approvals": approvals, "required": required,
                }),
                || {
                    format!(
                        "Your approval is recorded: {intent}. {missing} more maintainer(s) must approve at {} before the change is made.",
                        info.url
                    )
                },
            );
            return Ok(());
        }
    };
    emit(
        g.json,
        &serde_json::json!({
            "approved": true, "change": intent, "package": info.package, "version": info.version,
            "code": ticket.code, "ticket": ticket.ticket, "expires_at": ticket.expires_at,
        }),
        || {
            format!(
                "Approved: {intent}. Return to the terminal that asked; if it wants a one-time code, enter {}",
                ticket.code
            )
        },
    );
    Ok(())
}

/// The id in an `npm login` URL (`…/login/npl_…`), if `url` is one.
pub fn npm_login_id(url: &str) -> Option<String> {
    let id = url.trim().trim_end_matches('/').rsplit('/').next()?;
    id.starts_with("npl_").then(|| id.to_string())
}

/// Finishes an `npm login` started elsewhere by signing in here with a tap.
async fn approve_npm_login(g: &Global, login_id: &str) -> Result<()> {
    use tapgate_shared::api::BeginLogin;
    let username = crate::credentials::saved_username(&g.server)?
        .context("sign in once with `tapgate login --username NAME` so tapgate knows who you are")?;
    eprintln!("Signing in as {username} to finish `npm login`.");
    let begin = BeginLogin { username, npm_login: Some(login_id.to_string()), token_name: None };
    let result = super::login::sign_in_with(g, &begin).await?;
    emit(g.json, &serde_json::json!({ "npm_login": "approved", "username": result.username }), || {
        format!("Logged in as {} — return to the terminal running `npm login`.", result.username)
    });
    Ok(())
}
