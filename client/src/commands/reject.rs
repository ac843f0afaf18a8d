//! `tapgate reject URL|ID`

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tapgate_shared::api::{ApprovalInfo, FinishApproval, RejectChallenge};

use super::approve::approval_id;
use crate::api::Client;
use crate::ceremony;
use crate::cli::Global;
use crate::gated::has_control_characters;
use crate::output::emit;

pub async fn run(g: &Global, approval: &str) -> Result<()> {
    let id = approval_id(approval)?;
    let client = Client::new(&g.server, None)?;
    let begin: RejectChallenge =
        client.post(&format!("/api/v1/approvals/{id}/reject"), &serde_json::json!({})).await?;
    // The key signs a rejection of exactly the change shown, and nothing that could pass for
    // an approval: the challenge is recomputed here first.
    let nonce: [u8; 32] = URL_SAFE_NO_PAD
        .decode(&begin.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .context("the registry sent a rejection without a valid nonce; nothing was signed")?;
    if has_control_characters(&serde_json::to_value(&begin.intent).unwrap_or_default()) {
        bail!("the registry sent an intent containing control characters; nothing was signed");
    }
    if begin.public_key.challenge.as_ref() as &[u8] != begin.intent.reject_challenge(&nonce).as_slice() {
        bail!(
            "the registry asked your key to sign something other than a rejection of \"{}\"; nothing was signed",
            begin.intent.describe()
        );
    }
    let origin = ceremony::origin_of(&g.server)?;
    eprintln!("Reject on {origin}: {}", begin.intent.describe());
    eprintln!("  requested by {}", begin.intent.requested_by);
    let credential = ceremony::assert(&g.authenticator, &begin.public_key, &origin).await?;
    let info: ApprovalInfo = client
        .post(&format!("/api/v1/approvals/{id}/reject/{}", begin.ceremony), &FinishApproval { credential })
        .await?;
    emit(
        g.json,
        &serde_json::json!({
            "rejected": true, "change": info.description, "package": info.package,
            "rejected_by": info.rejected_by, "status": info.status,
        }),
        || format!("Rejected: {}. It will not be made.", info.description),
    );
    Ok(())
}
