//! The relying party: WebAuthn ceremonies for security keys, on webauthn-rs-core.
//!
//! webauthn-rs's high-level API cannot request direct attestation without also refusing
//! untrusted authenticators, and it always draws its own challenge. tapgate needs both: every key
//! is accepted and its attestation *recorded* (policy decides later which keys count), and
//! publish approvals sign a challenge that commits to the publish intent. So this module uses the
//! core API and upholds the invariants the high-level API would:
//! - user presence is always required (core checks the UP flag on every ceremony);
//! - user verification is `preferred`: a key with a PIN asks for it, and the outcome is recorded;
//! - registrations exclude the user's existing credentials;
//! - authentications allow only the given user's credentials and reject counter regressions;
//! - ceremony state is persisted server-side by the caller and used once.

pub mod attestation;
pub mod builtin;
pub mod mds;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, AuthenticationResult, AuthenticationState, COSEAlgorithm, Credential,
    CredentialID, PublicKeyCredential, PublicKeyCredentialCreationOptions, PublicKeyCredentialHints,
    PublicKeyCredentialRequestOptions, RegisterPublicKeyCredential, RegistrationState,
    UserVerificationPolicy,
};

pub use attestation::AttestationTrust;
use attestation::pem_certificates;

/// How long a browser or key may take, as told to the client. Ceremonies expire server-side
/// after [`CEREMONY_TTL_SECONDS`].
const AUTHENTICATOR_TIMEOUT: Duration = Duration::from_secs(120);

/// Ceremonies expire after five minutes.
pub const CEREMONY_TTL_SECONDS: i64 = 300;

/// The relying party for one origin.
#[derive(Debug)]
pub struct RelyingParty {
    core: WebauthnCore,
    pub origin: Url,
    pub rp_id: String,
    pub trust: AttestationTrust,
}

/// A key that completed registration, with the facts recorded about it.
#[derive(Debug, Clone)]
pub struct RegisteredKey {
    pub credential: Credential,
    pub aaguid: Uuid,
    /// The attestation statement format (`packed`, `fido-u2f`, `none`, …).
    pub format: String,
    /// Whether the attestation chained to a trusted CA and the AAGUID is allowed.
    pub attested: bool,
    /// Which trusted CA it chained to (its subject), when attested.
    pub attestation_ca: Option<String>,
    pub user_verified: bool,
}

/// Why a ceremony failed, in terms a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CeremonyFailure {
    /// The key's counter went backwards: it may have been cloned.
    CounterRegression,
    /// The credential is not one of those allowed (another user's key, or an unknown one).
    UnknownCredential,
    /// The response was made for another website.
    WrongOrigin,
    /// The response answers another challenge (a replay).
    WrongChallenge,
    /// The key did not report a touch.
    NoUserPresence,
    /// The response cannot be parsed.
    Malformed(String),
    /// Anything else that did not verify.
    Invalid(String),
}

impl CeremonyFailure {
    pub fn message(&self) -> String {
        match self {
            Self::CounterRegression => {
                "this key's signature counter went backwards, which is what a cloned key looks like; \
                 the key has been suspended and your administrators alerted"
                    .into()
            }
            Self::UnknownCredential => {
                "this security key is not enrolled for this account: use one of your enrolled keys".into()
            }
            Self::WrongOrigin => {
                "the key's response was made for a different website than this registry".into()
            }
            Self::WrongChallenge => {
                "the key's response answers a different challenge (a replayed or stale response): start again"
                    .into()
            }
            Self::NoUserPresence => {
                "the key did not confirm a touch: touch your security key when it blinks".into()
            }
            Self::Malformed(what) => format!("the key's response is malformed: {what}"),
            Self::Invalid(what) => format!("the key's response did not verify: {what}"),
        }
    }
}

impl From<WebauthnError> for CeremonyFailure {
    fn from(err: WebauthnError) -> Self {
        use WebauthnError as E;
        match err {
            E::CredentialPossibleCompromise => Self::CounterRegression,
            E::CredentialNotFound => Self::UnknownCredential,
            E::InvalidRPOrigin | E::InvalidRPIDHash => Self::WrongOrigin,
            E::MismatchedChallenge => Self::WrongChallenge,
            E::UserNotPresent => Self::NoUserPresence,
            E::ParseCBORFailure(_)
            | E::ParseJSONFailure(_)
            | E::ParseNOMFailure
            | E::ParseInsufficientBytesAvailable
            | E::ParseBase64Failure(_)
            | E::InvalidClientDataType
            | E::COSEKeyInvalidCBORValue
            | E::COSEKeyInvalidType => Self::Malformed(err.to_string()),
            other => Self::Invalid(other.to_string()),
        }
    }
}

/// The algorithms security keys use, most preferred first.
fn algorithms() -> Vec<COSEAlgorithm> {
    vec![COSEAlgorithm::ES256, COSEAlgorithm::EDDSA, COSEAlgorithm::ES384, COSEAlgorithm::RS256]
}

impl RelyingParty {
    /// A relying party whose id is the origin's host.
    pub fn new(origin: &Url, trust: AttestationTrust) -> Result<Self, String> {
        let rp_id = origin.host_str().ok_or_else(|| format!("origin {origin} has no host"))?.to_string();
        let core = WebauthnCore::new_unsafe_experts_only(
            "tapgate",
            &rp_id,
            vec![origin.clone()],
            AUTHENTICATOR_TIMEOUT,
            Some(false),
            Some(false),
        );
        Ok(Self { core, origin: origin.clone(), rp_id, trust })
    }

    /// Starts enrolling a key for a user; `exclude` are the user's existing credential ids.
    pub fn begin_registration(
        &self,
        user_handle: &[u8],
        user_name: &str,
        exclude: Vec<CredentialID>,
    ) -> Result<(PublicKeyCredentialCreationOptions, RegistrationState), CeremonyFailure> {
        let builder = self
            .core
            .new_challenge_register_builder(user_handle, user_name, user_name)?
            .attestation(AttestationConveyancePreference::Direct)
            .credential_algorithms(algorithms())
            .require_resident_key(false)
            .authenticator_attachment(None)
            .user_verification_policy(UserVerificationPolicy::Preferred)
            .reject_synchronised_authenticators(false)
            .exclude_credentials(Some(exclude))
            .hints(Some(vec![PublicKeyCredentialHints::SecurityKey]))
            .extensions(None);
        let (ccr, state) = self.core.generate_challenge_register(builder)?;
        Ok((ccr.public_key, state))
    }

    /// Verifies a registration response and records its attestation facts.
    pub fn finish_registration(
        &self,
        reg: &RegisterPublicKeyCredential,
        state: &RegistrationState,
    ) -> Result<RegisteredKey, CeremonyFailure> {
        // No CA list here: every genuine key may enroll; trust is recorded, not enforced.
        let credential = self.core.register_credential(reg, state, None)?;
        let facts = attestation::statement_facts(&reg.response.attestation_object)
            .map_err(CeremonyFailure::Malformed)?;
        let (attested, attestation_ca) = self.trust.evaluate(&credential, facts.aaguid);
        Ok(RegisteredKey {
            user_verified: credential.user_verified,
            credential,
            aaguid: facts.aaguid,
            format: facts.format,
            attested,
            attestation_ca,
        })
    }

    /// Starts an authentication limited to `credentials`. With `challenge`, the key signs that
    /// exact value instead of a random one (publish approvals commit to their intent this way).
    pub fn begin_authentication(
        &self,
        credentials: Vec<Credential>,
        challenge: Option<[u8; 32]>,
    ) -> Result<(PublicKeyCredentialRequestOptions, AuthenticationState), CeremonyFailure> {
        let builder = self
            .core
            .new_challenge_authenticate_builder(credentials, Some(UserVerificationPolicy::Preferred))?
            .allow_backup_eligible_upgrade(false)
            .hints(Some(vec![PublicKeyCredentialHints::SecurityKey]));
        let (rcr, state) = self.core.generate_challenge_authenticate(builder)?;
        let mut options = rcr.public_key;
        let state = match challenge {
            None => state,
            Some(challenge) => {
                options.challenge = challenge.to_vec();
                with_challenge(state, &challenge)?
            }
        };
        Ok((options, state))
    }

    /// Verifies an assertion against the ceremony state.
    pub fn finish_authentication(
        &self,
        rsp: &PublicKeyCredential,
        state: &AuthenticationState,
    ) -> Result<AuthenticationResult, CeremonyFailure> {
        Ok(self.core.authenticate_credential(rsp, state)?)
    }
}

/// The state's challenge, as it will be checked.
pub fn state_challenge(state: &AuthenticationState) -> Option<Vec<u8>> {
    let value = serde_json::to_value(state).ok()?;
    let text = value.get("challenge")?.as_str()?;
    base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, text).ok()
}

/// Replaces the random challenge webauthn-rs drew with `challenge`, through the state's serde
/// form (its fields are private). Pinned by tests: an assertion over the replaced challenge
/// verifies, one over the original does not.
fn with_challenge(
    state: AuthenticationState,
    challenge: &[u8; 32],
) -> Result<AuthenticationState, CeremonyFailure> {
    let mut value = serde_json::to_value(&state).map_err(|e| CeremonyFailure::Invalid(e.to_string()))?;
    let slot = value
        .get_mut("challenge")
        .ok_or_else(|| CeremonyFailure::Invalid("authentication state has no challenge".into()))?;
    *slot = serde_json::Value::String(base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        challenge,
    ));
    let replaced: AuthenticationState =
        serde_json::from_value(value).map_err(|e| CeremonyFailure::Invalid(e.to_string()))?;
    if state_challenge(&replaced).as_deref() != Some(&challenge[..]) {
        return Err(CeremonyFailure::Invalid("could not set the ceremony challenge".into()));
    }
    Ok(replaced)
}

/// Serialisable wrappers so ceremony state can live in the database.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StoredState {
    Registration(RegistrationState),
    Authentication(AuthenticationState),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp() -> RelyingParty {
        let origin = Url::parse("http://localhost:8080").unwrap();
        RelyingParty::new(&origin, AttestationTrust::none()).unwrap()
    }

    #[test]
    fn the_intent_challenge_replaces_the_random_one_in_options_and_state() {
        let ours = [42u8; 32];
        let (options, state) = rp().begin_authentication(Vec::new(), Some(ours)).unwrap();
        assert_eq!(options.challenge, ours.to_vec());
        assert_eq!(state_challenge(&state), Some(ours.to_vec()));
        assert_eq!(options.rp_id, "localhost");
    }

    #[test]
    fn without_an_intent_the_challenge_is_random() {
        let (a, sa) = rp().begin_authentication(Vec::new(), None).unwrap();
        let (b, _) = rp().begin_authentication(Vec::new(), None).unwrap();
        assert_ne!(a.challenge, b.challenge);
        assert_eq!(a.challenge.len(), 32);
        assert_eq!(state_challenge(&sa), Some(a.challenge.clone()));
    }

    #[test]
    fn registration_asks_for_direct_attestation_and_excludes_existing_keys() {
        let (options, _) = rp().begin_registration(&[1; 32], "alice", vec![vec![9, 9]]).unwrap();
        assert!(matches!(options.attestation, Some(AttestationConveyancePreference::Direct)));
        assert_eq!(options.exclude_credentials.unwrap()[0].id, vec![9, 9]);
        assert_eq!(options.rp.id, "localhost");
    }
}
