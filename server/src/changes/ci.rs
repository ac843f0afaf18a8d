//! CI without codes. A maintainer creates a CI credential with a tap whose intent is its scope
//! (package, version range, dist-tags, expiry, client networks); CI trades it, at each release,
//! for a deploy key: a document this registry signs, good for exactly one publish (package,
//! version, tarball, tags), once, for minutes. On its own a CI credential publishes nothing.
//! Revoking takes power away, so a maintainer's token suffices for it.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use tapgate_shared::ci::{
    CreateCiCredential, DEPLOY_KEY_FORMAT, DeployKey, DeployKeyPayload, DeployKeyRequest, IssuedDeployKey,
    parse_utc,
};
use tapgate_shared::gate_intent::Change;
use tapgate_shared::version_range::Range;

use super::{Actor, admit, log_accepted};
use crate::cidr::Cidr;
use crate::clock::rfc3339;
use crate::gate::roles::Asking;
use crate::gate::{self, GateError, commit_error};
use crate::names::{validate_tag, validate_version};
use crate::secrets::{self, SecretKind};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::ci::{CiCredential, NewCiCredential, NewDeployKey};
use crate::store::gate::CommitError;

/// How long a deploy key may be used after it is issued.
pub const DEPLOY_KEY_TTL_SECONDS: i64 = 600;
/// The longest a CI credential lives.
pub const MAX_CREDENTIAL_DAYS: i64 = 366;
/// Dist-tags and networks one credential may name.
const MAX_LIST: usize = 16;

fn invalid(message: String) -> GateError {
    GateError::Invalid(message)
}

/// Checks a requested scope; answers its expiry in Unix seconds.
fn validate(req: &CreateCiCredential, now: i64) -> Result<i64, GateError> {
    let id_ok = req.id.strip_prefix("ci_").is_some_and(|hex| {
        hex.len() == 20 && hex.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    });
    if !id_ok {
        return Err(invalid(format!(
            "{:?} is not a CI credential id: use ci_ and 20 lowercase hex digits",
            req.id
        )));
    }
    if req.name.trim().is_empty() || req.name.chars().count() > 64 || req.name.chars().any(char::is_control) {
        return Err(invalid("a CI credential's name is one line of 1 to 64 characters".into()));
    }
    if req.versions.trim().is_empty() {
        return Err(invalid("give the versions CI may publish as an npm range (`*` for any)".into()));
    }
    Range::parse(&req.versions).map_err(|e| invalid(format!("the version range {:?}: {e}", req.versions)))?;
    if req.tags.is_empty() || req.tags.len() > MAX_LIST {
        return Err(invalid(format!("name 1 to {MAX_LIST} dist-tags CI may set (usually latest)")));
    }
    for (i, tag) in req.tags.iter().enumerate() {
        validate_tag(tag).map_err(invalid)?;
        if req.tags[..i].contains(tag) {
            return Err(invalid(format!("the dist-tag {tag:?} is listed twice")));
        }
    }
    if req.cidrs.len() > MAX_LIST {
        return Err(invalid(format!("name at most {MAX_LIST} networks")));
    }
    for (i, cidr) in req.cidrs.iter().enumerate() {
        Cidr::parse(cidr).map_err(invalid)?;
        if req.cidrs[..i].contains(cidr) {
            return Err(invalid(format!("the network {cidr} is listed twice")));
        }
    }
    let expires_at =
        parse_utc(&req.expires_at).filter(|t| rfc3339(*t) == req.expires_at).ok_or_else(|| {
            invalid(format!("{:?} is not a UTC time like 2027-01-31T00:00:00Z", req.expires_at))
        })?;
    if expires_at <= now || expires_at > now + MAX_CREDENTIAL_DAYS * 86_400 {
        return Err(invalid(format!(
            "a CI credential expires in the future, within {MAX_CREDENTIAL_DAYS} days: create a new one after that"
        )));
    }
    Ok(expires_at)
}

/// Creates a CI credential for `req.package` with the tap of one of its maintainers; answers it
/// with its secret (shown once).
pub async fn create(
    state: &AppState,
    actor: &Actor,
    req: &CreateCiCredential,
    otp: Option<&str>,
) -> Result<(CiCredential, String), GateError> {
    let expires_at = validate(req, state.now())?;
    let change = Change::CiCredentialCreate {
        credential_id: req.id.clone(),
        name: req.name.clone(),
        versions: req.versions.clone(),
        tags: req.tags.clone(),
        expires_at: req.expires_at.clone(),
        cidrs: req.cidrs.clone(),
    };
    let admitted = admit(state, actor, &req.package, Asking::Release, change, otp).await?;
    let secret = secrets::generate(SecretKind::CiCredential);
    let new = NewCiCredential {
        id: &req.id,
        package: &req.package,
        name: &req.name,
        secret_hash: &secret.hash,
        versions: &req.versions,
        tags: &req.tags,
        cidrs: &req.cidrs,
        expires_at,
        guard: admitted.guard(actor, state.now()),
    };
    state.store.create_ci_credential(&new).await.map_err(|e| match e {
        CommitError::Store(StoreError::Conflict(_)) => GateError::Conflict(format!(
            "a CI credential {} exists already: create it under another id",
            req.id
        )),
        other => commit_error(other, &req.package),
    })?;
    log_accepted(&admitted, actor);
    let created = state
        .store
        .ci_credential(&req.id)
        .await?
        .ok_or_else(|| GateError::Corrupt("a created CI credential vanished".into()))?;
    Ok((created, secret.plaintext))
}

/// Refuses unless `actor` maintains `package` (or administers the registry).
async fn may_manage(state: &AppState, actor: &Actor, package: &str) -> Result<(), GateError> {
    if state.store.package(package).await?.is_none() {
        return Err(GateError::NotFound(format!("package {package:?} is not in this registry")));
    }
    if actor.admin || state.store.is_maintainer(package, &actor.user.id).await? {
        return Ok(());
    }
    Err(GateError::Forbidden(format!("only maintainers of {package} manage its CI credentials")))
}

/// A package's CI credentials.
pub async fn list(state: &AppState, actor: &Actor, package: &str) -> Result<Vec<CiCredential>, GateError> {
    may_manage(state, actor, package).await?;
    Ok(state.store.ci_credentials(package).await?)
}

/// Revokes a credential: deploy keys it obtained stop working at once, even unspent ones.
pub async fn revoke(state: &AppState, actor: &Actor, id: &str) -> Result<CiCredential, GateError> {
    let not_found = || GateError::NotFound(format!("no CI credential {id:?}"));
    let credential = state.store.ci_credential(id).await?.ok_or_else(not_found)?;
    may_manage(state, actor, &credential.package).await?;
    if !state.store.revoke_ci_credential(id, &actor.user.id, state.now()).await? {
        return Err(GateError::Conflict(format!("the CI credential {id} was revoked already")));
    }
    tracing::info!(credential_id = %id, subject = %credential.package, user = %actor.user.name, "CI credential revoked");
    state.store.ci_credential(id).await?.ok_or_else(not_found)
}

/// The credential a `tg_ci_…` secret stands for, if it is usable.
pub async fn authenticate(state: &AppState, secret: &str) -> Result<CiCredential, GateError> {
    let unknown = || {
        GateError::Unauthenticated("the CI credential is unknown: create one with `tapgate ci create`".into())
    };
    if !secrets::has_prefix(secret, SecretKind::CiCredential) {
        return Err(unknown());
    }
    let credential =
        state.store.ci_credential_by_secret(&secrets::hash(secret)).await?.ok_or_else(unknown)?;
    if credential.revoked_at.is_some() {
        return Err(GateError::Unauthenticated(format!(
            "the CI credential {} was revoked: a maintainer can create a new one with `tapgate ci create`",
            credential.id
        )));
    }
    if credential.expires_at <= state.now() {
        return Err(GateError::Unauthenticated(format!(
            "the CI credential {} expired: a maintainer can create a new one with `tapgate ci create`",
            credential.id
        )));
    }
    Ok(credential)
}

/// Refuses unless `credential`'s approved scope covers publishing `version` with `tags` (sorted)
/// when asked from `client`: the version range, the dist-tags and the networks its maintainer
/// tapped for. Deploy keys and stages obey the same scope.
pub fn check_scope(
    credential: &CiCredential,
    version: &str,
    tags: &[String],
    client: std::net::IpAddr,
) -> Result<(), GateError> {
    let package = credential.package.as_str();
    let outside = |why: String| Err(GateError::OutsideScope(why));
    let range = Range::parse(&credential.versions).map_err(GateError::Corrupt)?;
    if !range.contains(version) {
        return outside(format!(
            "{package}@{} is outside the versions this CI credential may publish ({})",
            version, credential.versions
        ));
    }
    if let Some(tag) = tags.iter().find(|t| !credential.tags.contains(t)) {
        return outside(format!(
            "this CI credential may set the dist-tags {} only, not {tag}",
            credential.tags.join(", ")
        ));
    }
    let from_allowed = credential.cidrs.is_empty()
        || credential.cidrs.iter().filter_map(|c| Cidr::parse(c).ok()).any(|c| c.contains(client));
    if !from_allowed {
        return outside(format!(
            "this CI credential may be used from {} only, not from {client}",
            credential.cidrs.join(", ")
        ));
    }
    Ok(())
}

fn valid_integrity(integrity: &str) -> bool {
    integrity.strip_prefix("sha512-").and_then(|b| STANDARD.decode(b).ok()).is_some_and(|d| d.len() == 64)
}

/// Answers a deploy key for exactly the publish `req` names, when `credential`'s scope, the
/// client's address and the package's policy allow it.
pub async fn issue_deploy_key(
    state: &AppState,
    credential: &CiCredential,
    client: std::net::IpAddr,
    req: &DeployKeyRequest,
) -> Result<IssuedDeployKey, GateError> {
    let package = credential.package.as_str();
    let outside = |why: String| Err(GateError::OutsideScope(why));
    if req.package != package {
        return outside(format!("this CI credential publishes {package} only, not {}", req.package));
    }
    validate_version(&req.version).map_err(invalid)?;
    if !valid_integrity(&req.integrity) {
        return Err(invalid(
            "the integrity is the tarball's SHA-512 SRI: sha512-<base64 of 64 bytes>".into(),
        ));
    }
    let mut tags = req.tags.clone();
    tags.sort();
    tags.dedup();
    for tag in &tags {
        validate_tag(tag).map_err(invalid)?;
    }
    if tags.len() > super::publish::MAX_TAGS_PER_PUBLISH {
        return Err(invalid("too many dist-tags for one publish".into()));
    }
    let policy = gate::policy_in_force(state, package).await?;
    let change = Change::Publish {
        version: req.version.clone(),
        integrity: req.integrity.clone(),
        tags: tags.clone(),
    };
    gate::deploy_keys::allowed(package, &policy, &change)?;
    if !state.store.is_maintainer(package, &credential.created_by).await? {
        return Err(GateError::Forbidden(format!(
            "the maintainer who created this CI credential no longer maintains {package}: ask a maintainer for a new one"
        )));
    }
    check_scope(credential, &req.version, &tags, client)?;
    super::publish::check_new_version(state, package, &req.version).await?;

    let now = state.now();
    let key = crate::signing::current(&state.store, now).await?;
    let mut nonce = [0u8; 32];
    rand::rng().fill_bytes(&mut nonce);
    let payload = DeployKeyPayload {
        v: DEPLOY_KEY_FORMAT,
        kid: key.kid.clone(),
        package: package.to_string(),
        version: req.version.clone(),
        integrity: req.integrity.clone(),
        tags,
        credential_id: credential.id.clone(),
        approval_id: credential.approval_id.clone(),
        issued_at: now,
        expires_at: now + DEPLOY_KEY_TTL_SECONDS,
        nonce: URL_SAFE_NO_PAD.encode(nonce),
    };
    let encoded = DeployKey::encode_payload(&payload);
    let signature = crate::signing::sign(&key, &DeployKey::signing_input(&encoded))?;
    let text = DeployKey::assemble(&encoded, &signature);
    state
        .store
        .create_deploy_key(&NewDeployKey {
            hash: &secrets::hash(&text),
            nonce: &payload.nonce,
            kid: &payload.kid,
            credential_id: &credential.id,
            package,
            version: &payload.version,
            integrity: &payload.integrity,
            tags: &payload.tags,
            issued_at: payload.issued_at,
            expires_at: payload.expires_at,
        })
        .await?;
    tracing::info!(credential_id = %credential.id, subject = %package, version = %payload.version, kid = %payload.kid, "deploy key issued");
    Ok(IssuedDeployKey { deploy_key: text, payload })
}
