//! A deploy key as evidence: `npm-otp: tg_dk_…` on a publish. It counts for a publish only when
//! the registry signed it (with a key whose period covers its issue), it names exactly this
//! package, version, tarball and dist-tags, it is unexpired and unspent, the CI credential that
//! asked for it is unrevoked and belongs to the actor, and the package's policy lets CI publish
//! with deploy keys. The commit spends it (see [`crate::store::gate`]).

use tapgate_shared::api::CiMethod;
use tapgate_shared::ci::{DEPLOY_KEY_PREFIX, DeployKey};
use tapgate_shared::gate_intent::Change;

use super::{Evidence, GateError, PolicyInForce, Request, Role, requirement};
use crate::secrets;
use crate::state::AppState;

/// Whether an `npm-otp` value is a deploy key (rather than a ticket or a typed code).
pub fn is_deploy_key(otp: &str) -> bool {
    otp.starts_with(DEPLOY_KEY_PREFIX)
}

/// Refuses unless `package`'s policy lets CI publish `change` with a deploy key: the policy
/// lists `deploy-key`, and asks for no more than one maintainer's approval (a deploy key
/// stands for the one tap that authorized its credential).
pub fn allowed(package: &str, policy: &PolicyInForce, change: &Change) -> Result<(), GateError> {
    if !policy.policy.ci.allows(CiMethod::DeployKey) {
        return Err(GateError::NotAllowed(format!(
            "the policy of {package} does not let CI publish with deploy keys; an administrator can allow it \
             (\"ci\": [\"deploy-key\"])"
        )));
    }
    // A deploy key stands for one tap; a critical package (more approvals, attested keys, user
    // verification) keeps its releases to people.
    if policy.policy.is_critical() {
        return Err(GateError::NotAllowed(format!(
            "{package} is critical (attested keys, user verification or several approvals): its releases need maintainers' taps, not a deploy key"
        )));
    }
    let need = requirement(&policy.policy, change, Role::Maintainer, super::Facts::default());
    if need.taps > 1 {
        return Err(GateError::NotAllowed(format!(
            "the policy of {package} needs {} maintainers to approve each release; a deploy key stands for one",
            need.taps
        )));
    }
    Ok(())
}

/// Checks a deploy key presented for `request` and answers the evidence it is.
pub async fn redeem(state: &AppState, request: &Request<'_>, otp: &str) -> Result<Evidence, GateError> {
    let intent = request.intent;
    let package = intent.subject.as_str();
    let Change::Publish { version, integrity, tags } = &intent.change else {
        return refuse(
            state,
            request,
            format!(
                "a deploy key only publishes the version it names; {} needs a maintainer's tap",
                intent.describe()
            ),
        )
        .await;
    };
    if request.role != Role::Maintainer {
        return refuse(state, request, format!(
            "a deploy key publishes new versions of an existing package; {package} has no such CI credential"
        ))
        .await;
    }
    allowed(package, request.policy, &intent.change)?;
    let key = match DeployKey::parse(otp) {
        Ok(key) => key,
        Err(why) => return refuse(state, request, format!("this is not a valid deploy key: {why}")).await,
    };
    let p = &key.payload;
    let signer = state.store.signing_key(&p.kid).await?;
    let signed = signer.as_ref().is_some_and(|k| key.verify(&k.public_key));
    if !signed {
        return refuse(state, request, format!(
            "this deploy key's signature does not verify with this registry's key {:?}: it is forged or was altered",
            p.kid
        ))
        .await;
    }
    if signer.is_some_and(|k| !crate::signing::public(&k).valid_at(p.issued_at)) {
        return refuse(state, request, "this deploy key was signed outside its signing key's period".into())
            .await;
    }
    let now = state.now();
    let mismatch = if p.package != package {
        Some(format!("this deploy key is for {}, not {package}", p.package))
    } else if p.version != *version {
        Some(format!("this deploy key is for {package}@{}, not {version}", p.version))
    } else if p.integrity != *integrity {
        Some(format!(
            "this deploy key is for the tarball {}, but the uploaded tarball is {integrity}",
            p.integrity
        ))
    } else if p.tags != *tags {
        Some(format!(
            "this deploy key sets the dist-tags [{}], but this publish sets [{}]: ask for a deploy key with the same --tag",
            p.tags.join(", "),
            tags.join(", ")
        ))
    } else if p.expires_at <= now {
        Some("this deploy key expired (deploy keys last minutes): ask for a new one".into())
    } else {
        None
    };
    if let Some(why) = mismatch {
        return refuse(state, request, why).await;
    }
    let hash = secrets::hash(key.text().as_str());
    let Some(row) = state.store.deploy_key(&hash).await? else {
        return refuse(state, request, "this registry never issued this deploy key".into()).await;
    };
    if row.spent_at.is_some() {
        return refuse(
            state,
            request,
            "this deploy key was already used: each deploy key publishes once".into(),
        )
        .await;
    }
    let credential = state.store.ci_credential(&row.credential_id).await?;
    let why = match &credential {
        None => Some("the CI credential that asked for this deploy key is gone".to_string()),
        Some(c) if c.revoked_at.is_some() => {
            Some(format!("the CI credential {} that asked for this deploy key was revoked", c.id))
        }
        Some(c) if c.expires_at <= now => {
            Some(format!("the CI credential {} that asked for this deploy key expired", c.id))
        }
        Some(c) if c.created_by != request.actor.id => {
            Some("this deploy key belongs to another maintainer's CI credential".to_string())
        }
        Some(c) if c.id != p.credential_id || c.approval_id != p.approval_id || c.package != package => {
            Some("this deploy key does not match the CI credential it names".to_string())
        }
        Some(_) => None,
    };
    match (credential, why) {
        (Some(c), None) => Ok(Evidence::DeployKey {
            hash,
            credential_id: c.id,
            approval_id: c.approval_id,
            package: package.to_string(),
            version: version.clone(),
            document: key.text(),
        }),
        (_, why) => refuse(state, request, why.unwrap_or_default()).await,
    }
}

async fn refuse(state: &AppState, request: &Request<'_>, why: String) -> Result<Evidence, GateError> {
    let subject = &request.intent.subject;
    tracing::warn!(subject = %subject, user = %request.actor.name, reason = %why, "deploy key refused");
    // A failed attempt on the package: counted towards its lock like a refused ticket.
    let detail = format!("{} presented a refused deploy key: {why}", request.actor.name);
    let failure = crate::lockout::Failure {
        package: subject,
        account: Some(&request.actor.id),
        key: None,
        kind: crate::lockout::FailureKind::DeployKey,
        detail: &detail,
        client: request.client,
    };
    crate::lockout::record(state, &failure).await?;
    Err(GateError::InvalidDeployKey(why))
}
