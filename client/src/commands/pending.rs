//! `tapgate pending`

use anyhow::Result;
use tapgate_shared::api::PendingApprovals;

use crate::cli::Global;
use crate::output::emit;

pub async fn run(g: &Global) -> Result<()> {
    let client = super::authed_client(g)?;
    let list: PendingApprovals = client.get("/api/v1/approvals?pending=true").await?;
    emit(g.json, &list, || {
        if list.approvals.is_empty() {
            return "Nothing is waiting for approval.".into();
        }
        let mut out = String::new();
        for a in &list.approvals {
            let who = if a.approved_by.is_empty() {
                String::new()
            } else {
                format!(" ({})", a.approved_by.join(", "))
            };
            out.push_str(&format!(
                "{}\n  requested by {}; approved by {} of {}{who}; expires {}\n  tapgate approve {}\n",
                a.description, a.requested_by, a.approvals, a.required, a.expires_at, a.url
            ));
        }
        out.trim_end().to_string()
    });
    Ok(())
}
