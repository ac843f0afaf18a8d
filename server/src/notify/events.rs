//! The events maintainers are told about, as JSON (the webhook body). Each carries `summary`
//! (an email's subject) and `text` (an email's body) besides its data, so every channel says the
//! same thing.

use serde_json::{Value, json};
use tapgate_shared::gate_intent::GateIntent;

use crate::client_info::ClientInfo;
use crate::clock::rfc3339;
use crate::lockout::FailureKind;
use crate::state::AppState;
use crate::store::effects::{Effects, Notice};
use crate::store::lockout::{FailureRow, PackageLock};

fn what(kind: &str) -> &'static str {
    [
        FailureKind::AssertionFailed,
        FailureKind::TicketRefused,
        FailureKind::CounterRegression,
        FailureKind::NotMaintainer,
        FailureKind::UnknownKey,
        FailureKind::CiCredential,
        FailureKind::DeployKey,
        FailureKind::OidcToken,
    ]
    .into_iter()
    .find(|k| k.as_str() == kind)
    .map(FailureKind::describe)
    .unwrap_or("a failed attempt")
}

/// The alert every maintainer receives when `lock` is set, whatever they chose.
pub fn lock_alert(state: &AppState, lock: &PackageLock, failures: &[FailureRow]) -> Effects {
    let package = &lock.package;
    let registry = state.config.url("");
    let unlock = format!("tapgate unlock {package}");
    let mut lines = Vec::new();
    let listed: Vec<Value> = failures
        .iter()
        .map(|f| {
            lines.push(format!(
                "- {}: {}\n  account: {}; key: {}\n  from address {}, user agent {}\n  {}",
                rfc3339(f.at),
                what(&f.kind),
                f.account.as_deref().unwrap_or("none (anonymous)"),
                f.key_id.as_deref().unwrap_or("none"),
                f.client_ip.as_deref().unwrap_or("unknown"),
                f.user_agent.as_deref().unwrap_or("none"),
                f.detail,
            ));
            json!({
                "at": rfc3339(f.at),
                "kind": f.kind,
                "what": what(&f.kind),
                "detail": f.detail,
                "account": f.account,
                "key": f.key_id,
                "client_ip": f.client_ip,
                "user_agent": f.user_agent,
            })
        })
        .collect();
    let summary = format!("{package} is locked after {} failed second-factor attempts", lock.failures);
    let text = format!(
        "{package} on {registry} was locked at {} after {} failed second-factor attempts (lock {}).\n\n\
         What failed:\n{}\n\n\
         Locked: every change to {package} (publish, dist-tags, deprecation, unpublish, maintainers, \
         policy) is refused until a maintainer unlocks it. Reading and installing still work.\n\n\
         To unlock it, once you know what happened: `{unlock}` (a tap on your security key; under an \
         N-of-M policy, N maintainers tap).\n\n\
         If these attempts were not yours, someone may hold a token or a key of the account named \
         above: revoke its tokens (`tapgate-server` administrators can disable the account) before \
         unlocking.",
        rfc3339(lock.locked_at),
        lock.failures,
        lock.lock_id,
        lines.join("\n"),
    );
    let payload = json!({
        "type": "package.locked",
        "registry": registry,
        "package": package,
        "at": rfc3339(lock.locked_at),
        "lock": { "id": lock.lock_id, "locked_at": rfc3339(lock.locked_at), "failures": lock.failures },
        "failures": listed,
        "locked": "every write to the package; reading and installing still work",
        "unlock": unlock,
        "summary": summary,
        "text": text,
    });
    Effects {
        notice: Some(Notice {
            kind: "package-locked".into(),
            topic: "package-locked".into(),
            package: Some(package.clone()),
            account: None,
            payload: payload.to_string(),
            alert: true,
            email: state.config.notify.smtp_url.is_some(),
        }),
        audit: Vec::new(),
    }
}

/// How a change was authorized, for notices.
#[derive(Debug, Clone)]
pub struct Authorized {
    /// `tap` or `token`.
    pub kind: &'static str,
    pub approval_id: Option<String>,
    /// (user, key id) of each tap.
    pub keys: Vec<(String, String)>,
}

/// The notice of a change the gate accepted (and the commit makes).
pub fn change_notice(
    state: &AppState,
    intent: &GateIntent,
    authorized: &Authorized,
    client: &ClientInfo,
    account: Option<&str>,
) -> Notice {
    let registry = state.config.url("");
    let action = intent.change.action();
    let how = match authorized.kind {
        "tap" => {
            let keys: Vec<String> = authorized.keys.iter().map(|(u, k)| format!("{u} (key {k})")).collect();
            format!("approved with a security-key tap by {}", keys.join(", "))
        }
        "deploy-key" => {
            "made by CI with a deploy key (obtained with a CI credential a maintainer approved with a tap)"
                .to_string()
        }
        "oidc" => format!(
            "made by CI with an OIDC ID token meeting the trust {} (created with a maintainer's tap, approval {})",
            authorized.keys.first().map(|(_, t)| t.as_str()).unwrap_or("?"),
            authorized.approval_id.as_deref().unwrap_or("?")
        ),
        _ => "made with a token alone (the package's policy asks for no second factor)".to_string(),
    };
    let summary = format!("{}: {}", intent.subject, intent.describe());
    let text = format!(
        "On {registry}, {} asked for this change and it was made:\n\n  {}\n\n\
         It was {how}, from {}, at {}.\n\n\
         If this was not you or a co-maintainer, act now: check your keys and tokens.",
        intent.requested_by,
        intent.describe(),
        client.describe(),
        rfc3339(state.now()),
    );
    let keys: Vec<Value> = authorized.keys.iter().map(|(u, k)| json!({ "user": u, "key": k })).collect();
    let payload = json!({
        "type": if intent.change.is_account_change() { "key.changed" } else { "change.accepted" },
        "registry": registry,
        "package": (!intent.change.is_account_change()).then_some(&intent.subject),
        "account": intent.change.is_account_change().then_some(&intent.subject),
        "action": action,
        "description": intent.describe(),
        "requested_by": intent.requested_by,
        "intent": intent,
        "authorized": { "kind": authorized.kind, "approval_id": authorized.approval_id, "keys": keys },
        "client_ip": client.ip_text(),
        "user_agent": client.user_agent,
        "at": rfc3339(state.now()),
        "summary": summary,
        "text": text,
    });
    let account_change = intent.change.is_account_change();
    Notice {
        kind: if account_change { "key-change".into() } else { "change".into() },
        topic: action.into(),
        package: (!account_change).then(|| intent.subject.clone()),
        account: account.map(str::to_string),
        payload: payload.to_string(),
        alert: action == "unlock",
        email: state.config.notify.smtp_url.is_some(),
    }
}

/// The email with a verification link for a new alert address.
pub fn verify_email(state: &AppState, username: &str, address: &str, link: &str) -> String {
    let summary = "Confirm your address for tapgate alerts".to_string();
    let text = format!(
        "{username} on {} asked for alerts about their packages to be sent to {address}.\n\n\
         Open this link to confirm (it works for 24 hours):\n\n  {link}\n\n\
         If you did not ask for this, ignore this email.",
        state.config.url(""),
    );
    json!({ "type": "email.verify", "summary": summary, "text": text }).to_string()
}

/// The note to a user's current address that another one was asked for.
pub fn email_change_note(state: &AppState, username: &str, new_address: &str, client: &ClientInfo) -> String {
    let summary = "Your tapgate alert address is being changed".to_string();
    let text = format!(
        "Someone signed in as {username} on {} asked for alerts to go to {new_address} instead of this \
         address (from {}). Alerts keep coming here until the new address is confirmed. If this was not \
         you, someone holds a token of your account: revoke your tokens now.",
        state.config.url(""),
        client.describe(),
    );
    json!({ "type": "email.changing", "summary": summary, "text": text }).to_string()
}

/// The notice to a package's maintainers that a change waits for more taps (N-of-M).
pub fn approval_pending(
    state: &AppState,
    intent: &GateIntent,
    info: &tapgate_shared::api::ApprovalInfo,
) -> Notice {
    let summary = format!("{}: approval needed: {}", intent.subject, intent.describe());
    let text = format!(
        "{} asked for this change on {}, which needs {} maintainers' taps:\n\n  {}\n\n\
         Approve it with your security key at {} (or `tapgate approve {}`), before {}. If you do not \
         know why it was asked for, do not approve it.",
        intent.requested_by,
        state.config.url(""),
        info.required,
        intent.describe(),
        info.url,
        info.url,
        info.expires_at,
    );
    let payload = json!({
        "type": "approval.pending",
        "registry": state.config.url(""),
        "package": intent.subject,
        "action": intent.change.action(),
        "description": intent.describe(),
        "requested_by": intent.requested_by,
        "url": info.url,
        "required": info.required,
        "expires_at": info.expires_at,
        "summary": summary,
        "text": text,
    });
    Notice {
        kind: "approval-pending".into(),
        topic: "approval-pending".into(),
        package: Some(intent.subject.clone()),
        account: None,
        payload: payload.to_string(),
        alert: false,
        email: state.config.notify.smtp_url.is_some(),
    }
}

/// The notice to a package's maintainers that a release was staged and waits for one of them.
pub fn stage_created(
    state: &AppState,
    stage: &crate::store::stages::StageRow,
    client: &ClientInfo,
) -> Notice {
    let url = state.config.url(&format!("/stage/{}", stage.id));
    let by = match &stage.actor_ref {
        Some(credential) => {
            format!("{} (through {} {credential})", stage.staged_by_name, stage.actor_type.as_str())
        }
        None => stage.staged_by_name.clone(),
    };
    let summary = format!("{}@{} was staged and waits for a maintainer", stage.package, stage.version);
    let text = format!(
        "{by} staged {}@{} (tarball {}, tags {}) on {} from {} at {}. Nothing is served until a \
         maintainer approves it.\n\nReview it at {url}, then approve it with your security key there, \
         with `tapgate stage approve {}` or `npm stage approve {}`; or reject it. It expires at {}. If \
         you do not know why it was staged, reject it and check the package's CI credentials.",
        stage.package,
        stage.version,
        stage.integrity,
        stage.tags.join(", "),
        state.config.url(""),
        client.describe(),
        rfc3339(stage.created_at),
        stage.id,
        stage.id,
        rfc3339(stage.expires_at),
    );
    let payload = json!({
        "type": "stage.created",
        "registry": state.config.url(""),
        "package": stage.package,
        "version": stage.version,
        "integrity": stage.integrity,
        "tags": stage.tags,
        "stage_id": stage.id,
        "staged_by": stage.staged_by_name,
        "actor_type": stage.actor_type.as_str(),
        "credential": stage.actor_ref,
        "client_ip": client.ip_text(),
        "user_agent": client.user_agent,
        "url": url,
        "expires_at": rfc3339(stage.expires_at),
        "summary": summary,
        "text": text,
    });
    Notice {
        kind: "stage-created".into(),
        topic: "stage-created".into(),
        package: Some(stage.package.clone()),
        account: None,
        payload: payload.to_string(),
        alert: false,
        email: state.config.notify.smtp_url.is_some(),
    }
}
