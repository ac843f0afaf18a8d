//! Writes through the registry's gate, with the client trusting nothing the registry says.
//!
//! When a write needs a tap the registry answers `401 otp_required` with the approval: the
//! intent, its nonce and the WebAuthn options. Before the key is touched, [`check`] recomputes
//! the challenge from the intent and nonce and compares it with the one the key would sign, and
//! compares the intent with the change the user asked for. A registry (or anyone between) that
//! asks the key to sign anything else gets nothing signed.

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use tapgate_shared::api::{ApprovalInfo, ApprovalTicket, FinishApproval};
use tapgate_shared::gate_intent::{Change, GateIntent};

use crate::api::{Client, server_error};
use crate::ceremony;
use crate::cli::Global;

/// The change the user asked for, as the key must see it.
#[derive(Debug, Clone)]
pub struct Expected {
    pub subject: String,
    pub change: Change,
    /// Who asked (the signed-in user), when known.
    pub requested_by: Option<String>,
    /// For a publish: what the tarball packed here holds and changes, computed here and shown
    /// before the tap instead of the registry's description (informational, never checked).
    pub details: Option<tapgate_shared::publish_diff::PublishDiff>,
}

impl Expected {
    pub fn new(subject: &str, change: Change) -> Self {
        Self { subject: subject.to_string(), change, requested_by: None, details: None }
    }

    /// Whether `intent` is this change. Where the registry fills in state the client cannot know
    /// (where a tag pointed before, which tarball a version has), only what the user chose is
    /// compared; the registry's part is shown before the tap.
    pub fn matches(&self, intent: &GateIntent) -> bool {
        if intent.subject != self.subject {
            return false;
        }
        if self.requested_by.as_ref().is_some_and(|me| *me != intent.requested_by) {
            return false;
        }
        match (&self.change, &intent.change) {
            (Change::DistTagSet { tag, version, .. }, Change::DistTagSet { tag: t, version: v, .. }) => {
                tag == t && version == v
            }
            (Change::DistTagRemove { tag, .. }, Change::DistTagRemove { tag: t, .. }) => tag == t,
            (Change::Unpublish { version, .. }, Change::Unpublish { version: v, .. }) => version == v,
            (Change::UnpublishPackage { .. }, Change::UnpublishPackage { .. }) => true,
            (Change::KeyRemove { key_id, .. }, Change::KeyRemove { key_id: k, .. }) => key_id == k,
            // The policy it replaces is the registry's to fill in (and shown before the tap).
            (Change::PolicySet { new, .. }, Change::PolicySet { new: n, .. }) => new == n,
            (want, got) => want == got,
        }
    }
}

/// Refuses an approval whose challenge is not the one its intent and nonce commit to, or whose
/// intent is not the expected change. Returns the intent to show.
pub fn check(info: &ApprovalInfo, expected: Option<&Expected>) -> Result<GateIntent> {
    let intent = info
        .intent
        .clone()
        .context("the registry sent an approval without the intent it stands for; nothing was signed")?;
    let nonce: [u8; 32] = info
        .nonce
        .as_deref()
        .and_then(|n| URL_SAFE_NO_PAD.decode(n).ok())
        .and_then(|n| n.try_into().ok())
        .context("the registry sent an approval without a valid nonce; nothing was signed")?;
    // What is shown must be what it says: no terminal control sequences that could redraw the
    // screen around the description.
    if has_control_characters(&serde_json::to_value(&intent).unwrap_or_default()) {
        bail!("the registry sent an intent containing control characters; nothing was signed");
    }
    let options = info.public_key.as_ref().context("the approval is not pending any more")?;
    let challenge: &[u8] = options.challenge.as_ref();
    if challenge != intent.challenge(&nonce).as_slice() {
        bail!(
            "the registry asked your key to sign something other than the change it showed ({}); \
             nothing was signed. Do not trust this registry or the network to it.",
            intent.describe()
        );
    }
    if let Some(expected) = expected
        && !expected.matches(&intent)
    {
        bail!(
            "the registry asked your key to approve \"{}\", not what you asked for (\"{}\"); nothing was signed",
            intent.describe(),
            GateIntent {
                subject: expected.subject.clone(),
                requested_by: intent.requested_by.clone(),
                change: expected.change.clone()
            }
            .describe()
        );
    }
    Ok(intent)
}

pub(crate) fn has_control_characters(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.chars().any(char::is_control),
        serde_json::Value::Array(items) => items.iter().any(has_control_characters),
        serde_json::Value::Object(map) => {
            map.iter().any(|(k, v)| k.chars().any(char::is_control) || has_control_characters(v))
        }
        _ => false,
    }
}

/// What a tap achieved.
#[derive(Debug)]
pub enum Tapped {
    /// The last approval needed: the ticket for the change.
    Ticket(ApprovalTicket),
    /// Recorded; more distinct maintainers must approve.
    Pending { approvals: u32, required: u32 },
}

/// Shows the change, taps the key, and returns the ticket (or how many approvals are still
/// missing).
pub async fn tap(g: &Global, info: &ApprovalInfo, expected: Option<&Expected>) -> Result<Tapped> {
    let intent = check(info, expected)?;
    let origin = ceremony::origin_of(&g.server)?;
    eprintln!("Approve on {}: {}", origin, intent.describe());
    eprintln!("  requested by {}", intent.requested_by);
    let local = expected.and_then(|e| e.details.as_ref());
    eprint!("{}", crate::describe::lines(&intent, info.details.as_ref(), local));
    if info.required > 1 {
        let who = if info.approved_by.is_empty() {
            String::new()
        } else {
            format!(" ({})", info.approved_by.join(", "))
        };
        eprintln!("  approved so far by {} of the {} needed{who}", info.approvals, info.required);
    }
    let options = info.public_key.as_ref().context("the approval is not pending any more")?;
    let credential = ceremony::assert(&g.authenticator, options, &origin).await?;
    let client = Client::new(&g.server, None)?;
    let resp = client
        .execute(
            client
                .request(reqwest::Method::POST, &format!("/api/v1/approvals/{}", info.id))
                .json(&FinishApproval { credential }),
        )
        .await?;
    if resp.status() == StatusCode::ACCEPTED {
        let pending: Pending = resp.json().await?;
        return Ok(Tapped::Pending { approvals: pending.approvals, required: pending.required });
    }
    let ticket = resp.json().await.map_err(|e| anyhow!("the registry sent an unexpected answer: {e}"))?;
    Ok(Tapped::Ticket(ticket))
}

#[derive(Debug, Deserialize)]
struct Pending {
    approvals: u32,
    required: u32,
}

#[derive(Debug, Deserialize)]
struct OtpRequired {
    approval: Option<ApprovalInfo>,
    #[serde(rename = "doneUrl")]
    done_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Done {
    token: String,
}

/// Waits on the approval's done URL (as npm does) until the other maintainers approved; returns
/// the ticket.
async fn wait_for_others(
    client: &Client,
    info: &ApprovalInfo,
    done_url: &str,
    missing: u32,
) -> Result<String> {
    eprintln!(
        "Your approval is recorded; waiting for {missing} more maintainer(s) to approve at {} \
         (`tapgate approve {}`, or `tapgate pending`). Press Ctrl-C to stop waiting.",
        info.url, info.url
    );
    let http = reqwest::Client::new();
    loop {
        let resp = http
            .get(done_url)
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach the registry at {}: {e}", client.base))?;
        match resp.status() {
            StatusCode::OK => {
                let done: Done =
                    resp.json().await.map_err(|e| anyhow!("the registry sent an unexpected answer: {e}"))?;
                return Ok(done.token);
            }
            StatusCode::ACCEPTED => {
                let seconds = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(2)
                    .clamp(1, 10);
                tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
            }
            _ => {
                let err = server_error(resp).await;
                bail!(
                    "the change was not approved: {} (it may have expired or been rejected: see {})",
                    err.message,
                    info.url
                );
            }
        }
    }
}

/// Sends the request `build(otp)` makes; when the registry wants a tap, checks the approval
/// against `expected`, taps, and sends it again with the ticket.
pub async fn send(
    g: &Global,
    client: &Client,
    expected: Option<&Expected>,
    build: impl Fn(Option<&str>) -> RequestBuilder,
) -> Result<Response> {
    let resp =
        build(None).send().await.map_err(|e| anyhow!("cannot reach the registry at {}: {e}", client.base))?;
    if resp.status().is_success() {
        return Ok(resp);
    }
    if resp.status() != StatusCode::UNAUTHORIZED {
        return Err(server_error(resp).await.into());
    }
    let text = resp.text().await.unwrap_or_default();
    let otp_required = serde_json::from_str::<OtpRequired>(&text).ok();
    let done_url = otp_required.as_ref().and_then(|o| o.done_url.clone());
    let approval = otp_required.and_then(|o| o.approval);
    let Some(approval) = approval else {
        let err = serde_json::from_str::<tapgate_shared::ErrorEnvelope>(&text)
            .map(|e| e.error.message)
            .unwrap_or_else(|_| format!("the registry refused the request: {text}"));
        bail!("{err}");
    };
    let mut expected = expected.cloned();
    if let Some(expected) = expected.as_mut()
        && expected.requested_by.is_none()
    {
        expected.requested_by = crate::credentials::saved_username(&g.server).ok().flatten();
    }
    let ticket = match tap(g, &approval, expected.as_ref()).await? {
        Tapped::Ticket(ticket) => ticket.ticket,
        Tapped::Pending { approvals, required } => {
            let done_url = done_url.context("the registry sent no URL to wait on for the other approvals")?;
            wait_for_others(client, &approval, &done_url, required.saturating_sub(approvals)).await?
        }
    };
    client.execute(build(Some(&ticket))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(shown: &GateIntent, signed: &GateIntent) -> ApprovalInfo {
        let nonce = [5u8; 32];
        serde_json::from_value(serde_json::json!({
            "id": "apr_x", "url": "http://localhost/approve/apr_x", "package": shown.subject,
            "version": "", "integrity": "", "requested_by": shown.requested_by, "status": "pending",
            "expires_at": "2030-01-01T00:00:00Z", "intent": shown,
            "nonce": URL_SAFE_NO_PAD.encode(nonce),
            "publicKey": {
                "challenge": URL_SAFE_NO_PAD.encode(signed.challenge(&nonce)), "rpId": "localhost",
                "allowCredentials": [], "userVerification": "preferred",
            },
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn key_add(attestation: &str, requested_by: &str) -> GateIntent {
        GateIntent {
            subject: "alice".into(),
            requested_by: requested_by.into(),
            change: Change::KeyAdd {
                name: "desk".into(),
                credential_id: "c".into(),
                attestation_sha256: attestation.into(),
            },
        }
    }

    #[test]
    fn what_is_signed_must_be_what_is_shown_and_what_was_asked() {
        let mine = key_add("aa", "alice");
        let theirs = key_add("bb", "alice");
        let expected =
            Expected { requested_by: Some("alice".into()), ..Expected::new("alice", mine.change.clone()) };
        assert!(check(&info(&mine, &mine), Some(&expected)).is_ok());
        let err =
            check(&info(&mine, &theirs), Some(&expected)).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("something other than the change it showed"), "{err}");
        let err =
            check(&info(&theirs, &theirs), Some(&expected)).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("not what you asked for"), "another key under the same name and id: {err}");
        let someone_else = key_add("aa", "mallory");
        assert!(
            check(&info(&someone_else, &someone_else), Some(&expected)).is_err(),
            "requested by someone else"
        );
        let sneaky = GateIntent { subject: "alice\u{1b}[2K".into(), ..mine.clone() };
        let err = check(&info(&sneaky, &sneaky), None).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("control characters"), "{err}");
    }
}
