//! `tapgate approve URL|ID`

use anyhow::{Context, Result, bail};
use tapgate_shared::api::{ApprovalInfo, ApprovalTicket, FinishApproval};

use crate::api::Client;
use crate::ceremony;
use crate::cli::Global;
use crate::output::emit;

/// The approval id in an approval URL (`…/approve/<id>`) or the id itself.
pub fn approval_id(approval: &str) -> Result<String> {
    let id = approval
        .trim()
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    if !id.starts_with("apr_") {
        bail!("{approval:?} is not an approval URL or id (they look like …/approve/apr_…)");
    }
    Ok(id.to_string())
}

pub async fn run(g: &Global, approval: &str) -> Result<()> {
    let id = approval_id(approval)?;
    let client = Client::new(&g.server, None)?;
    let origin = ceremony::origin_of(&g.server)?;
    let info: ApprovalInfo = client.get(&format!("/api/v1/approvals/{id}")).await?;
    if info.status != "pending" {
        bail!("this approval is {}: nothing to approve", info.status);
    }
    eprintln!(
        "Approve publishing {}@{} requested by {}",
        info.package, info.version, info.requested_by
    );
    eprintln!("  tarball {}", info.integrity);
    let options = info
        .public_key
        .as_ref()
        .context("the registry sent no key challenge")?;
    let credential = ceremony::assert(&g.authenticator, options, &origin).await?;
    let ticket: ApprovalTicket = client
        .post(&format!("/api/v1/approvals/{id}"), &FinishApproval { credential })
        .await?;
    emit(
        g.json,
        &serde_json::json!({
            "approved": true, "package": info.package, "version": info.version,
            "code": ticket.code, "ticket": ticket.ticket, "expires_at": ticket.expires_at,
        }),
        || {
            format!(
                "Approved {}@{}. Return to the terminal running the publish; if it asks for a one-time code, enter {}",
                info.package, info.version, ticket.code
            )
        },
    );
    Ok(())
}
