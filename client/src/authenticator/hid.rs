//! FIDO2 security keys over USB HID, through the ctap-hid-fido2 crate.
//!
//! ctap-hid-fido2 takes a "challenge" and sends its SHA-256 to the key as clientDataHash
//! (`make_credential_command::Params::new` and `get_assertion_command::Params::new` both call
//! `util::create_clientdata_hash`). The exact clientDataJSON bytes are passed as that challenge,
//! so the key signs over SHA-256(clientDataJSON) as WebAuthn requires.
//!
//! Several connected keys: an assertion silently asks each key (user presence off, no PIN)
//! whether it holds one of the allowed credentials, then asks for the touch only on the key
//! that does. A registration lists the keys on stderr and reads the choice from stdin.
//!
//! User verification uses the key's PIN when the relying party requires or prefers it and the
//! key has a PIN; a key without a PIN but with built-in verification (fingerprint) uses that.
//! A key that demands its PIN anyway (CTAP2_ERR_PUAT_REQUIRED) gets it on a second attempt.

mod attestation;
mod errors;
mod prompt;

use ctap_hid_fido2::fidokey::{
    CredentialSupportedKeyType, GetAssertionArgsBuilder, MakeCredentialArgsBuilder,
};
use ctap_hid_fido2::public_key_credential_user_entity::PublicKeyCredentialUserEntity;
use ctap_hid_fido2::{Cfg, FidoKeyHid, FidoKeyHidFactory, HidInfo};

use self::errors::{Failure, call};
use super::{
    AssertRequest, AssertResponse, Authenticator, AuthenticatorError, RegisterRequest, RegisterResponse,
    UserVerification,
};

const ES256: i64 = -7;
const EDDSA: i64 = -8;

/// Real security keys over USB HID. Holds no state: keys are enumerated for every operation.
#[derive(Debug, Default)]
pub struct HidAuthenticator {}

impl HidAuthenticator {
    pub fn new() -> Self {
        Self {}
    }
}

impl Authenticator for HidAuthenticator {
    fn register(&mut self, req: &RegisterRequest) -> Result<RegisterResponse, AuthenticatorError> {
        let infos = connected()?;
        let key = if let [only] = infos.as_slice() {
            Key::open(only)?
        } else {
            choose_for_registration(&infos, req)?
        };
        key.register(req)
    }

    fn assert(&mut self, req: &AssertRequest) -> Result<AssertResponse, AuthenticatorError> {
        if req.allow_credentials.is_empty() {
            return Err(AuthenticatorError::NoMatchingCredential);
        }
        let infos = connected()?;
        let (key, allow) = find_for_assertion(&infos, req)?;
        key.assert(req, &allow)
    }
}

/// The FIDO HID devices currently connected.
fn connected() -> Result<Vec<HidInfo>, AuthenticatorError> {
    let infos = call(|| Ok(ctap_hid_fido2::get_fidokey_devices()))
        .map_err(|f| AuthenticatorError::Other(format!("cannot list USB security keys: {}", f.message)))?;
    if infos.is_empty() { Err(AuthenticatorError::NoDevice) } else { Ok(infos) }
}

/// Registration with several keys connected: ask which one, marking the keys that already hold
/// one of the excluded credentials.
fn choose_for_registration(infos: &[HidInfo], req: &RegisterRequest) -> Result<Key, AuthenticatorError> {
    let mut keys = Vec::new();
    let mut open_error = None;
    for info in infos {
        match Key::open(info) {
            Ok(key) => keys.push(key),
            Err(e) => open_error = Some(e),
        }
    }
    if keys.is_empty() {
        return Err(open_error.unwrap_or(AuthenticatorError::NoDevice));
    }
    if keys.len() == 1 {
        return Ok(keys.swap_remove(0));
    }
    let labels: Vec<String> = keys
        .iter()
        .map(|key| match key.probe(&req.rp_id, &req.client_data_json, &req.exclude_credentials) {
            Probe::Holds(_) => format!("{} (already enrolled for this account)", key.label),
            _ => key.label.clone(),
        })
        .collect();
    let index = prompt::choose_key(&labels)?;
    Ok(keys.swap_remove(index))
}

/// The key holding one of the allowed credentials, with the allow list to send it: the one
/// credential the key admitted to, or the whole list when the key's answer was inconclusive.
fn find_for_assertion(
    infos: &[HidInfo],
    req: &AssertRequest,
) -> Result<(Key, Vec<Vec<u8>>), AuthenticatorError> {
    let mut inconclusive = None;
    let mut open_error = None;
    let mut opened_any = false;
    for info in infos {
        let key = match Key::open(info) {
            Ok(key) => key,
            Err(e) => {
                open_error = Some(e);
                continue;
            }
        };
        opened_any = true;
        match key.probe(&req.rp_id, &req.client_data_json, &req.allow_credentials) {
            Probe::Holds(id) => return Ok((key, vec![id])),
            Probe::HoldsNone => {}
            Probe::Unknown => {
                if inconclusive.is_none() {
                    inconclusive = Some(key);
                }
            }
        }
    }
    match (inconclusive, opened_any, open_error) {
        (Some(key), _, _) => Ok((key, req.allow_credentials.clone())),
        (None, false, Some(e)) => Err(e),
        _ => Err(AuthenticatorError::NoMatchingCredential),
    }
}

/// What a silent pre-flight assertion revealed about a key.
enum Probe {
    /// The key holds this credential.
    Holds(Vec<u8>),
    /// The key holds none of the credentials.
    HoldsNone,
    /// The key gave no clear answer (e.g. it refuses assertions without user verification).
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PinState {
    Set,
    NotSet,
    Unsupported,
}

/// How user verification is obtained from a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Uv {
    None,
    Pin,
    BuiltIn,
}

/// What the key said about itself in authenticatorGetInfo.
#[derive(Debug, Clone)]
struct Caps {
    pin: PinState,
    builtin_uv: bool,
    /// COSE algorithms the key supports; empty when it does not say (CTAP 2.0).
    algorithms: Vec<i64>,
    /// 0 when the key does not say.
    max_credentials_in_list: usize,
    max_credential_id_length: usize,
}

/// An opened security key.
struct Key {
    label: String,
    device: FidoKeyHid,
    caps: Caps,
}

impl Key {
    fn open(info: &HidInfo) -> Result<Self, AuthenticatorError> {
        let name =
            if info.product_string.is_empty() { "FIDO security key" } else { info.product_string.as_str() };
        let label = format!("{name} ({:04x}:{:04x})", info.vid, info.pid);
        let mut cfg = Cfg::init();
        // The touch prompt is printed by tapgate itself, on stderr.
        cfg.enable_keep_alive_msg = false;
        cfg.keep_alive_msg_to_stderr = true;
        let device = call(|| FidoKeyHidFactory::create_by_params(std::slice::from_ref(&info.param), &cfg))
            .map_err(|f| {
                AuthenticatorError::Other(format!(
                    "cannot open {label}: {} (on Linux, check that your user may access the key, \
                     e.g. with the udev rules for FIDO devices)",
                    f.message
                ))
            })?;
        let info = call(|| device.get_info()).map_err(|f| {
            if f.is(errors::CTAP1_ERR_INVALID_COMMAND) {
                AuthenticatorError::Unsupported(format!("FIDO2 ({label} looks like a U2F-only key)"))
            } else {
                f.to_error()
            }
        })?;
        let option = |name: &str| info.options.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
        let caps = Caps {
            pin: match option("clientPin") {
                Some(true) => PinState::Set,
                Some(false) => PinState::NotSet,
                None => PinState::Unsupported,
            },
            builtin_uv: option("uv") == Some(true),
            algorithms: info
                .algorithms
                .iter()
                .filter(|(k, _)| k == "alg")
                .filter_map(|(_, v)| v.parse().ok())
                .collect(),
            max_credentials_in_list: usize::try_from(info.max_credential_count_in_list).unwrap_or(0),
            max_credential_id_length: usize::try_from(info.max_credential_id_length).unwrap_or(0),
        };
        // PIN/UV auth protocol 1 is the one every CTAP2 key with a PIN supports, unless it says
        // it only has protocol 2.
        let protocols = &info.pin_uv_auth_protocols;
        let protocol = if protocols.contains(&2) && !protocols.contains(&1) { 2 } else { 1 };
        let device = device.with_pin_protocol_version(protocol);
        Ok(Self { label, device, caps })
    }

    /// Silently asks the key (no user presence, no PIN) whether it holds one of `ids`, in chunks
    /// the key accepts. The key signs the probe but the result is thrown away.
    fn probe(&self, rp_id: &str, client_data_json: &[u8], ids: &[Vec<u8>]) -> Probe {
        let max_len = self.caps.max_credential_id_length;
        let ids: Vec<&Vec<u8>> = ids.iter().filter(|id| max_len == 0 || id.len() <= max_len).collect();
        let chunk = match self.caps.max_credentials_in_list {
            0 => ids.len().max(1),
            n => n,
        };
        let mut result = Probe::HoldsNone;
        for part in ids.chunks(chunk) {
            let mut builder =
                GetAssertionArgsBuilder::new(rp_id, client_data_json).without_pin_and_uv().without_up();
            for id in part {
                builder = builder.add_credential_id(id);
            }
            let args = builder.build();
            match call(|| self.device.get_assertion_with_args(&args)) {
                Ok(found) => match found.into_iter().next().map(|a| a.credential_id) {
                    Some(id) if !id.is_empty() => return Probe::Holds(id),
                    // A key may leave out the credential when the list has a single entry.
                    _ if part.len() == 1 => return Probe::Holds(part[0].clone()),
                    _ => result = Probe::Unknown,
                },
                Err(f)
                    if f.is(errors::CTAP2_ERR_NO_CREDENTIALS)
                        || f.is(errors::CTAP2_ERR_INVALID_CREDENTIAL) => {}
                Err(_) => result = Probe::Unknown,
            }
        }
        result
    }

    fn register(&self, req: &RegisterRequest) -> Result<RegisterResponse, AuthenticatorError> {
        let key_types = key_types(&req.algorithms, &self.caps.algorithms)?;
        if let Probe::Holds(_) = self.probe(&req.rp_id, &req.client_data_json, &req.exclude_credentials) {
            return Err(AuthenticatorError::AlreadyEnrolled);
        }
        let uv = uv_method(req.user_verification, &self.caps)?;
        let user = PublicKeyCredentialUserEntity::new(
            Some(&req.user_id),
            Some(&req.user_name),
            Some(&req.user_display_name),
        );
        let make = |pin: Option<&str>| {
            let mut builder =
                MakeCredentialArgsBuilder::new(&req.rp_id, &req.client_data_json).user_entity(&user);
            for key_type in &key_types {
                builder = builder.key_type(*key_type);
            }
            for id in &req.exclude_credentials {
                builder = builder.exclude_authenticator(id);
            }
            builder = match (pin, uv) {
                (Some(pin), _) => builder.pin(pin),
                // The builder asks for built-in verification (uv option) by default.
                (None, Uv::BuiltIn) => builder,
                (None, _) => builder.without_pin_and_uv(),
            };
            let args = builder.build();
            prompt::touch();
            call(|| self.device.make_credential_with_args(&args))
        };
        let att = self.with_pin(uv, make)?;
        let attestation_object = attestation::attestation_object(&att)?;
        let credential_id = attestation::credential_id(&att.auth_data)?;
        Ok(RegisterResponse { credential_id, attestation_object })
    }

    fn assert(&self, req: &AssertRequest, allow: &[Vec<u8>]) -> Result<AssertResponse, AuthenticatorError> {
        let uv = uv_method(req.user_verification, &self.caps)?;
        let get = |pin: Option<&str>| {
            let mut builder = GetAssertionArgsBuilder::new(&req.rp_id, &req.client_data_json);
            for id in allow {
                builder = builder.add_credential_id(id);
            }
            builder = match (pin, uv) {
                (Some(pin), _) => builder.pin(pin),
                (None, Uv::BuiltIn) => builder,
                (None, _) => builder.without_pin_and_uv(),
            };
            let args = builder.build();
            prompt::touch();
            call(|| self.device.get_assertion_with_args(&args))
        };
        let assertion = self
            .with_pin(uv, get)?
            .into_iter()
            .next()
            .ok_or_else(|| AuthenticatorError::Other("the security key returned no assertion".into()))?;
        if assertion.auth_data.is_empty() || assertion.signature.is_empty() {
            return Err(AuthenticatorError::Other("the security key returned an empty assertion".into()));
        }
        let credential_id = match (assertion.credential_id, allow) {
            (id, _) if !id.is_empty() => id,
            (_, [only]) => only.clone(),
            _ => {
                return Err(AuthenticatorError::Other(
                    "the security key did not say which credential it used".into(),
                ));
            }
        };
        let user_id = assertion.user.id;
        Ok(AssertResponse {
            credential_id,
            authenticator_data: assertion.auth_data,
            signature: assertion.signature,
            user_handle: (!user_id.is_empty()).then_some(user_id),
        })
    }

    /// Runs `op` with the PIN when `uv` says so. Without a PIN, a key that answers
    /// CTAP2_ERR_PUAT_REQUIRED gets a second attempt with its PIN.
    fn with_pin<T>(
        &self,
        uv: Uv,
        op: impl Fn(Option<&str>) -> Result<T, Failure>,
    ) -> Result<T, AuthenticatorError> {
        let first = if uv == Uv::Pin {
            let pin = self.ask_pin()?;
            op(Some(&pin))
        } else {
            op(None)
        };
        match first {
            Ok(value) => Ok(value),
            Err(f) if f.is(errors::CTAP2_ERR_PUAT_REQUIRED) && uv != Uv::Pin => {
                if self.caps.pin != PinState::Set {
                    return Err(AuthenticatorError::PinNotSet);
                }
                let pin = self.ask_pin()?;
                op(Some(&pin)).map_err(|f| self.error(&f))
            }
            Err(f) => Err(self.error(&f)),
        }
    }

    fn ask_pin(&self) -> Result<String, AuthenticatorError> {
        let retries = call(|| self.device.get_pin_retries()).ok();
        if retries == Some(0) {
            return Err(AuthenticatorError::PinBlocked);
        }
        prompt::pin(retries)
    }

    /// The error for `f`, with the remaining PIN attempts after a wrong PIN.
    fn error(&self, f: &Failure) -> AuthenticatorError {
        match f.to_error() {
            AuthenticatorError::PinInvalid { retries: None } => {
                let retries = call(|| self.device.get_pin_retries()).ok().and_then(|n| u32::try_from(n).ok());
                AuthenticatorError::PinInvalid { retries }
            }
            other => other,
        }
    }
}

/// How to verify the user for `policy` on a key with `caps`.
fn uv_method(policy: UserVerification, caps: &Caps) -> Result<Uv, AuthenticatorError> {
    let available = if caps.pin == PinState::Set {
        Uv::Pin
    } else if caps.builtin_uv {
        Uv::BuiltIn
    } else {
        Uv::None
    };
    match (policy, available) {
        (UserVerification::Discouraged, _) => Ok(Uv::None),
        (UserVerification::Preferred, method) => Ok(method),
        (UserVerification::Required, Uv::None) if caps.pin == PinState::NotSet => {
            Err(AuthenticatorError::PinNotSet)
        }
        (UserVerification::Required, Uv::None) => Err(AuthenticatorError::Unsupported(
            "user verification (it has neither a PIN nor built-in verification)".into(),
        )),
        (UserVerification::Required, method) => Ok(method),
    }
}

/// ES256 first, then EdDSA, keeping those both the relying party (`rp`) and the key accept.
/// An empty list means "not stated" and accepts both.
fn key_types(rp: &[i64], key: &[i64]) -> Result<Vec<CredentialSupportedKeyType>, AuthenticatorError> {
    let types: Vec<_> =
        [(ES256, CredentialSupportedKeyType::Ecdsa256), (EDDSA, CredentialSupportedKeyType::Ed25519)]
            .into_iter()
            .filter(|(alg, _)| (rp.is_empty() || rp.contains(alg)) && (key.is_empty() || key.contains(alg)))
            .map(|(_, key_type)| key_type)
            .collect();
    if types.is_empty() {
        Err(AuthenticatorError::Unsupported(
            "any signature algorithm the registry accepts (ES256 or EdDSA)".into(),
        ))
    } else {
        Ok(types)
    }
}

#[cfg(test)]
mod tests;
