//! Request and response bodies of the JSON API under `/api/v1`.

use serde::{Deserialize, Serialize};

/// A token scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read packages and account details.
    Read,
    /// Publish (still subject to each package's second-factor policy).
    Publish,
    /// Administer users and package policies (the user must also be an admin).
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Publish, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Publish => "publish",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == s)
    }
}

/// `GET /api/v1/whoami`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Whoami {
    pub username: String,
    pub admin: bool,
    pub scopes: Vec<Scope>,
}

/// One API token as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// RFC 3339.
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    /// True for the token that authenticated this request.
    pub current: bool,
}

/// `GET /api/v1/tokens`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenList {
    pub tokens: Vec<TokenInfo>,
}

/// A freshly issued token: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    pub id: String,
    pub token: String,
    pub username: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<String>,
}

/// `GET /healthz`, `GET /readyz`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
}

/// `POST /api/v1/tokens`: derive a new token from the caller's, with at most its scopes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Lifetime in days, 1 to 365; 365 when absent. Never later than the calling token's expiry.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// `POST /api/v1/keys/registrations` → a registration ceremony to run on a key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistrationChallenge {
    pub ceremony: String,
    #[serde(rename = "publicKey")]
    pub public_key: webauthn_rs_proto::PublicKeyCredentialCreationOptions,
}

/// `POST /api/v1/keys/registrations/{ceremony}`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinishRegistration {
    pub name: String,
    pub credential: webauthn_rs_proto::RegisterPublicKeyCredential,
}

/// A security key as shown to its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    /// The authenticator model's AAGUID.
    pub aaguid: String,
    /// The attestation statement format (`packed`, `fido-u2f`, `none`, …).
    pub attestation_format: String,
    /// Whether the key's attestation chained to a CA this registry trusts.
    pub attested: bool,
    /// What it chained to, when attested: the CA's subject, or `MDS: <model>` for a model the
    /// FIDO Metadata Service certifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_ca: Option<String>,
    /// Whether the key verified the user (PIN) at enrollment.
    pub user_verified: bool,
    pub created_at: String,
    pub last_used_at: Option<String>,
    /// Set when the key is refused (e.g. its counter went backwards).
    pub suspended_reason: Option<String>,
    /// The WebAuthn credential id, base64url (empty from registries that predate keyrings).
    #[serde(default)]
    pub credential_id: String,
    /// The key's public part as DER SubjectPublicKeyInfo, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_spki: Option<String>,
}

/// `GET /api/v1/keys`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

/// `PATCH /api/v1/keys/{id}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameKey {
    pub name: String,
}

/// `POST /api/v1/sessions`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeginLogin {
    pub username: String,
    /// Approve this pending `npm login` instead of receiving a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npm_login: Option<String>,
    /// A label for the token this login issues (e.g. "tapgate CLI on laptop").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_name: Option<String>,
}

/// `POST /api/v1/sessions` → an authentication ceremony to run on a key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthenticationChallenge {
    pub ceremony: String,
    #[serde(rename = "publicKey")]
    pub public_key: webauthn_rs_proto::PublicKeyCredentialRequestOptions,
}

/// `POST /api/v1/sessions/{ceremony}`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinishLogin {
    pub credential: webauthn_rs_proto::PublicKeyCredential,
}

/// A completed login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResult {
    pub username: String,
    /// The new API token (absent when the login approved an `npm login` instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npm_login: Option<String>,
}

/// `POST /api/v1/approvals`: ask to publish this exact tarball.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApproval {
    pub package: String,
    pub version: String,
    pub integrity: String,
    /// The dist-tags the publish will set (part of what the tap approves); `["latest"]` when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// A pending or finished approval. `publicKey` is present while it can be approved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalInfo {
    pub id: String,
    /// The page where a maintainer approves it with a tap.
    pub url: String,
    /// The package changed (for key changes: the account's id).
    pub package: String,
    /// For publishes: the version and the tarball's integrity; empty for other changes.
    pub version: String,
    pub integrity: String,
    pub requested_by: String,
    /// `pending`, `approved`, `used`, `expired` or `rejected`.
    pub status: String,
    pub expires_at: String,
    #[serde(rename = "publicKey", default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<webauthn_rs_proto::PublicKeyCredentialRequestOptions>,
    /// The change in words, e.g. "Move `latest` of left-pad from 1.0.1 to 1.0.0".
    #[serde(default)]
    pub description: String,
    /// The intent's action (`publish`, `dist-tag-set`, …).
    #[serde(default)]
    pub action: String,
    /// The intent the key signs (format 2). A client recomputes the challenge from it and the
    /// nonce before touching a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<crate::gate_intent::GateIntent>,
    /// base64url, 32 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Distinct people who have tapped, and how many the policy needs.
    #[serde(default)]
    pub approvals: u32,
    #[serde(default)]
    pub required: u32,
    /// What the approver should see besides the intent: where the request came from and, for a
    /// publish, what the tarball holds and changes. Informational: the intent is what binds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<ApprovalDetails>,
    /// Who has tapped, each once.
    #[serde(default)]
    pub approved_by: Vec<String>,
    /// Who rejected the change (status `rejected`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_by: Option<String>,
}

/// Recorded when an intent is created, shown with its approval.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDetails {
    /// The registry's host, as configured (compare it with the address bar).
    #[serde(default)]
    pub registry: String,
    /// When the change was asked for, RFC 3339.
    #[serde(default)]
    pub requested_at: String,
    /// The address the request came from.
    #[serde(default)]
    pub ip: Option<String>,
    /// The client that sent it (its `User-Agent`), clipped.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// For a publish whose tarball the registry received: what it holds and changes.
    #[serde(default)]
    pub publish: Option<crate::publish_diff::PublishDiff>,
}

/// `POST /api/v1/approvals/{id}`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinishApproval {
    pub credential: webauthn_rs_proto::PublicKeyCredential,
}

/// An approved intent: a single-use ticket for the publish (valid 5 minutes), and a short code
/// for clients that ask for typed codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalTicket {
    pub ticket: String,
    pub code: String,
    pub expires_at: String,
}

/// The stored evidence that a key approved a published version; re-verifiable offline.
///
/// Format 1 records sign `intent` under `tapgate-intent-v1`; format 2 records sign `gate_intent`
/// under `tapgate-intent-v2` (with the tags the publish set), and list every tap in
/// `signatures`. The top-level signature fields repeat the first tap, so format-1 readers keep
/// working.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    #[serde(default = "format_one")]
    pub format: u32,
    pub intent: crate::intent::Intent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_intent: Option<crate::gate_intent::GateIntent>,
    /// base64url, 32 bytes.
    pub nonce: String,
    /// base64url of the challenge the key signed.
    pub challenge: String,
    pub client_data_json: String,
    pub authenticator_data: String,
    pub signature: String,
    pub credential_id: String,
    /// The credential's public key as COSE (webauthn-rs JSON form).
    pub credential_public_key: serde_json::Value,
    /// The same key as COSE_Key CBOR bytes, base64url (absent from records served before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_public_key_cose: Option<String>,
    /// The same key as DER SubjectPublicKeyInfo, base64 (absent from records served before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_public_key_spki: Option<String>,
    pub rp_id: String,
    pub origin: String,
    pub approved_by: String,
    pub approved_at: String,
    pub user_verified: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<RecordSignature>,
    /// For a version CI published with a deploy key: the deploy key (`tg_dk_…`, signed by the
    /// registry). The rest of the record is then the tap that created the CI credential it names
    /// (`gate_intent` is its `ci-credential-create` scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_key: Option<String>,
    /// For a version CI published with an OIDC ID token: the registry's signed statement
    /// ([`crate::oidc::OidcPublish`]) carrying the ID token and the issuer's key. The rest of
    /// the record is then the tap that created the trust it names (`gate_intent` is its
    /// `trust-create`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_publish: Option<String>,
    /// The package policy in force when the change was approved (absent from older records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PackagePolicy>,
    /// How many distinct people the registry required to approve this change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_approvals: Option<u32>,
}

fn format_one() -> u32 {
    1
}

/// One tap in an approval record. The public key is the registry's claim: a verifier checks the
/// signature with the key it trusts for `credential_id`, never with this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSignature {
    pub approved_by: String,
    pub approved_at: String,
    pub credential_id: String,
    /// webauthn-rs JSON form.
    pub credential_public_key: serde_json::Value,
    /// COSE_Key CBOR bytes, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_public_key_cose: Option<String>,
    /// DER SubjectPublicKeyInfo, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_public_key_spki: Option<String>,
    pub client_data_json: String,
    pub authenticator_data: String,
    pub signature: String,
    pub user_verified: bool,
}

/// One enrolled key's public part, as published for verifiers to pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyInfo {
    /// The key's owner.
    pub user: String,
    /// The WebAuthn credential id, base64url.
    pub credential_id: String,
    /// The owner's name for the key.
    pub name: String,
    /// Whether the key's attestation chained to a CA this registry trusts.
    pub attested: bool,
    /// `ES256`, `ES384`, `EdDSA` or `RS256`.
    pub algorithm: String,
    /// DER SubjectPublicKeyInfo, base64.
    pub public_key_spki: String,
    /// COSE_Key CBOR bytes, base64url.
    pub public_key_cose: String,
}

/// `GET /api/v1/users/{name}/keys`, `GET /api/v1/packages/{name}/keys`: usable (not suspended)
/// keys, by owner then enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyList {
    pub keys: Vec<PublicKeyInfo>,
}

/// `GET /api/v1/packages/{name}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageInfo {
    pub name: String,
    pub policy: PackagePolicy,
    pub maintainers: Vec<String>,
    pub versions: Vec<String>,
    pub dist_tags: std::collections::BTreeMap<String, String>,
    /// Under `all_maintainers_enrolled`: maintainers without a key that meets the policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub noncompliant_maintainers: Vec<NoncompliantMaintainer>,
    /// Set while the package is locked after repeated failed attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<PackageLockInfo>,
}

/// A package's policy: what evidence its changes need. Absent fields mean "not required" (and
/// are left out when serialised, so a policy's canonical JSON only names what it requires).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackagePolicy {
    /// `none` or `security-key`.
    pub second_factor: SecondFactor,
    /// The ways CI may publish without a person's tap at release time; none when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ci: Vec<CiMethod>,
    /// Only keys whose attestation chains to a CA the registry trusts approve changes.
    #[serde(default, skip_serializing_if = "is_false")]
    pub attested_keys: bool,
    /// Each approving tap must verify its user (PIN or fingerprint).
    #[serde(default, skip_serializing_if = "is_false")]
    pub user_verification: bool,
    /// Distinct maintainers who must each approve a change (1 when absent).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub approvals: u32,
    /// Every maintainer must hold a key that meets this policy.
    #[serde(default, skip_serializing_if = "is_false")]
    pub all_maintainers_enrolled: bool,
    /// Distinct maintainers who must approve a publish that adds or changes install scripts
    /// (`preinstall`, `install`, `postinstall`, `prepare`); `approvals` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals_when_scripts_change: Option<u32>,
}

impl PackagePolicy {
    /// A policy asking only for `second_factor`.
    pub fn new(second_factor: SecondFactor) -> Self {
        Self {
            second_factor,
            ci: Vec::new(),
            attested_keys: false,
            user_verification: false,
            approvals: 1,
            all_maintainers_enrolled: false,
            approvals_when_scripts_change: None,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// A maintainer who holds no key meeting the package's policy: they can neither approve nor
/// publish it until they enroll one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoncompliantMaintainer {
    pub user: String,
    /// What they must do, in a sentence.
    pub needs: String,
}

/// `GET /api/v1/approvals?pending=true`: pending approvals on the caller's packages (and the
/// caller's own requests), oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingApprovals {
    pub approvals: Vec<ApprovalInfo>,
}

/// `POST /api/v1/approvals/{id}/reject`: the key signs the intent's reject challenge
/// (`tapgate-reject-v2`), which no approval can be made of.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RejectChallenge {
    pub ceremony: String,
    #[serde(rename = "publicKey")]
    pub public_key: webauthn_rs_proto::PublicKeyCredentialRequestOptions,
    /// The intent rejected and its nonce, so the client recomputes the challenge before a tap.
    pub intent: crate::gate_intent::GateIntent,
    pub nonce: String,
}

/// A way CI publishes (`"ci": ["deploy-key", "stage", "oidc"]` in a package policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CiMethod {
    /// A single-use deploy key, traded for a CI credential a maintainer's tap authorized.
    DeployKey,
    /// A staged upload a maintainer approves with a tap.
    Stage,
    /// An OIDC trusted-publisher token.
    Oidc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecondFactor {
    /// Publishing needs only a token with the publish scope.
    None,
    /// Every publish needs a maintainer's security-key tap bound to the tarball.
    SecurityKey,
}

/// `GET/PUT/DELETE /api/v1/packages/{name}/maintainers…`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintainers {
    pub package: String,
    pub maintainers: Vec<String>,
}

/// A package's lock after repeated failed second-factor attempts: every write is refused until
/// its maintainers unlock it with a tap. Reading and installing are never blocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageLockInfo {
    pub lock_id: String,
    /// RFC 3339.
    pub locked_at: String,
    /// Counted failures in the window when it was locked.
    pub failures: u64,
    /// How to unlock it, in a sentence.
    pub unlock: String,
}

/// `GET /api/v1/packages/{name}/lock`, and `POST …/unlock` (gated) which answers the state after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockStatus {
    pub package: String,
    /// The lock in force, if any.
    pub lock: Option<PackageLockInfo>,
}

/// `GET /api/v1/user/notifications`: where and what the signed-in user is alerted about. Lock
/// alerts always go to the verified address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationSettings {
    /// The verified address alerts go to.
    pub email: Option<String>,
    /// An address waiting for its verification link.
    pub pending_email: Option<String>,
    /// `["all"]`, or the event kinds chosen (e.g. `publish`, `maintainer-add`, `key-add`).
    pub events: Vec<String>,
}

/// `PUT /api/v1/user/email`: a new alert address; a verification link is sent to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetEmail {
    pub email: String,
}

/// `PUT /api/v1/user/notifications`: the events to be told about besides lock alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetEvents {
    pub events: Vec<String>,
}

/// `PUT /api/v1/packages/{name}/webhooks` (a gated change): the package's webhook URLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetWebhooks {
    pub urls: Vec<String>,
}

/// A package's webhooks. `secret` (the HMAC key of `tapgate-signature`) is shown once, when the
/// webhook is added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookInfo {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// `GET|PUT /api/v1/packages/{name}/webhooks`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhooks {
    pub package: String,
    pub webhooks: Vec<WebhookInfo>,
}
