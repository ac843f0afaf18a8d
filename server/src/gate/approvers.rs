//! Who may approve an intent, and whether a key (and a tap) meets a package's policy.
//!
//! - A key is *compliant* when it is usable (not suspended) and, under `attested_keys`, its
//!   attestation chained to a CA the registry trusts when it was enrolled.
//! - A tap counts when its key is compliant and, under `user_verification`, the key verified its
//!   user for this very tap.
//! - Under `all_maintainers_enrolled`, a maintainer without a compliant key can neither ask for
//!   nor approve changes to the package until they enroll one; the others are not blocked.

use tapgate_shared::api::NoncompliantMaintainer;
use webauthn_rs_core::proto::Credential;

use super::{Approvers, GateError, Request, Requirement, Role};
use crate::ceremonies::{self, VerifiedAssertion};
use crate::policy::Policy;
use crate::state::AppState;
use crate::store::keys::SecurityKey;

/// The kind of key `policy` asks for, in words.
fn kind_of_key(policy: &Policy) -> &'static str {
    if policy.attested_keys { "an attested hardware security key" } else { "a security key" }
}

/// Why `key` cannot approve changes under `policy`, if it cannot.
pub fn key_refusal(policy: &Policy, key: &SecurityKey) -> Option<String> {
    if key.suspended_at.is_some() {
        return Some(format!("your key \"{}\" is suspended", key.name));
    }
    (policy.attested_keys && !key.attested).then(|| {
        format!(
            "this package requires an attested hardware security key; your key \"{}\" is not attested \
             (its attestation does not chain to a CA this registry trusts): approve with an attested key, \
             or enroll one with `tapgate key add`",
            key.name
        )
    })
}

/// The refusal of a tap that did not verify its user (`key`: the key's name, if known).
pub fn unverified_user(key: Option<&str>) -> String {
    let key = key.map_or_else(|| "your key".to_string(), |name| format!("your key \"{name}\""));
    format!(
        "this package requires user verification for each approval, but {key} did not verify you: set a PIN \
         (or fingerprint) on the key and approve again, entering it when asked"
    )
}

/// Why a verified tap does not count under `policy`, if it does not.
pub fn tap_refusal(policy: &Policy, verified: &VerifiedAssertion) -> Option<String> {
    key_refusal(policy, &verified.key).or_else(|| {
        (policy.user_verification && !verified.user_verified)
            .then(|| unverified_user(Some(&verified.key.name)))
    })
}

/// A user's keys that may approve under `policy`, with their credentials, and the names of
/// their usable keys that may not.
pub async fn compliant_keys(
    state: &AppState,
    policy: &Policy,
    user_id: &str,
) -> Result<(Vec<(SecurityKey, Credential)>, Vec<String>), GateError> {
    let (ok, refused): (Vec<_>, Vec<_>) = ceremonies::usable_keys(state, user_id)
        .await?
        .into_iter()
        .partition(|(k, _)| key_refusal(policy, k).is_none());
    Ok((ok, refused.into_iter().map(|(k, _)| k.name).collect()))
}

/// `"a", "b"`
fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")
}

/// What `user` (None: the reader) must do to hold a compliant key.
pub fn needs(policy: &Policy, user: Option<&str>, has_usable_key: bool) -> String {
    let kind = kind_of_key(policy);
    match (user, has_usable_key) {
        (Some(user), true) => format!(
            "{user} must enroll {kind} (`tapgate key add`, with a key whose maker this registry trusts)"
        ),
        (Some(user), false) => {
            format!("{user} has no usable security key: they must enroll {kind} (`tapgate key add`)")
        }
        (None, true) => {
            format!("enroll {kind} (`tapgate key add`, with a key whose maker this registry trusts)")
        }
        (None, false) => format!("you have no usable security key: enroll {kind} (`tapgate key add`)"),
    }
}

/// Whether `user_id` holds a key meeting `policy`; else what they must do.
pub async fn compliance(
    state: &AppState,
    policy: &Policy,
    user_id: &str,
    user: &str,
) -> Result<Result<(), String>, GateError> {
    let (keys, refused) = compliant_keys(state, policy, user_id).await?;
    Ok(if keys.is_empty() { Err(needs(policy, Some(user), !refused.is_empty())) } else { Ok(()) })
}

/// Under `all_maintainers_enrolled`, the maintainers of `package` without a compliant key.
pub async fn noncompliant(
    state: &AppState,
    package: &str,
    policy: &Policy,
) -> Result<Vec<NoncompliantMaintainer>, GateError> {
    if !policy.all_maintainers_enrolled {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (id, name) in state.store.maintainers(package).await? {
        if let Err(needs) = compliance(state, policy, &id, &name).await? {
            out.push(NoncompliantMaintainer { user: name, needs });
        }
    }
    Ok(out)
}

/// The users whose keys may tap an approval of `subject` requested by `requester`: the
/// requester, and when several people must approve, every maintainer.
pub async fn approver_ids(
    state: &AppState,
    subject: &str,
    requester: &str,
    approvers: Approvers,
) -> Result<Vec<String>, GateError> {
    let mut ids = vec![requester.to_string()];
    if approvers == Approvers::Maintainers {
        for (id, _) in state.store.maintainers(subject).await? {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

/// The credentials allowed to tap a new approval of `request`, or why it could never be
/// approved.
pub async fn allowed_credentials(
    state: &AppState,
    request: &Request<'_>,
    need: Requirement,
) -> Result<Vec<Credential>, GateError> {
    let policy = &request.policy.policy;
    let actor = request.actor;
    let subject = &request.intent.subject;
    let (own, refused) = compliant_keys(state, policy, &actor.id).await?;
    let any = !own.is_empty() || !refused.is_empty();
    let why_not = if refused.is_empty() {
        String::new()
    } else {
        format!(
            " (your key{} {} {} not attested)",
            if refused.len() == 1 { "" } else { "s" },
            quoted(&refused),
            if refused.len() == 1 { "is" } else { "are" }
        )
    };
    let must_tap = need.approvers == Approvers::Requester || need.requester_must_sign;
    if !any && must_tap {
        return Err(GateError::NoUsableKey(format!(
            "this change to {subject} needs approval with a security key, but you have no usable security key: enroll one first"
        )));
    }
    if own.is_empty() && policy.all_maintainers_enrolled && request.role == Role::Maintainer {
        return Err(GateError::PolicyViolation(format!(
            "{subject} requires every maintainer to hold {}{why_not}; until you do, you can neither change \
             nor approve changes to it: {}",
            kind_of_key(policy),
            needs(policy, None, any)
        )));
    }
    if own.is_empty() && must_tap {
        return Err(GateError::PolicyViolation(format!(
            "this change to {subject} needs your approval with {}, but none of your keys qualifies{why_not}: {}",
            kind_of_key(policy),
            needs(policy, None, any)
        )));
    }
    let mut able = usize::from(!own.is_empty());
    let mut credentials: Vec<Credential> = own.into_iter().map(|(_, c)| c).collect();
    if need.approvers == Approvers::Maintainers {
        for id in approver_ids(state, subject, &actor.id, need.approvers).await?.iter().skip(1) {
            let (keys, _) = compliant_keys(state, policy, id).await?;
            if !keys.is_empty() {
                able += 1;
                credentials.extend(keys.into_iter().map(|(_, c)| c));
            }
        }
    }
    let taps = usize::try_from(need.taps).unwrap_or(usize::MAX);
    if able < taps {
        return Err(GateError::PolicyViolation(format!(
            "this change to {subject} needs approvals from {taps} different people with {}, but only {able} of \
             those who may approve it hold one: ask its maintainers to enroll such keys, or an administrator \
             to add maintainers",
            kind_of_key(policy)
        )));
    }
    Ok(credentials)
}
