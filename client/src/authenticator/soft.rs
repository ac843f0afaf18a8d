//! A software FIDO2 key kept in a file, for tests and development only.
//!
//! The key is a `SoftToken` from webauthn-authenticator-rs: it makes ES256 credentials and signs
//! packed attestations with a certificate issued by its own attestation CA. The whole token
//! (CA, attestation key, credential private keys, signature counter) is stored unencrypted as
//! CBOR in one file, rewritten after every operation so the counter survives across CLI runs.
//! When the file is created, the attestation CA certificate is also written as PEM next to it
//! (see [`ca_pem_path`]) so a server can be configured to trust, or not trust, that CA.
//!
//! Limits inherited from `SoftToken`: credentials are not bound to a relying party, only ES256 is
//! supported, and its attestation certificate is valid for 5 days after the file is created.

#[cfg(test)]
mod fuzz_seeds;
#[cfg(test)]
pub(crate) mod test_support;

use std::ffi::OsString;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use der::EncodePem;
use der::pem::LineEnding;
use sha2::{Digest, Sha256};
use webauthn_authenticator_rs::AuthenticatorBackendHashedClientData;
use webauthn_authenticator_rs::error::WebauthnCError;
use webauthn_authenticator_rs::softtoken::SoftToken;
use webauthn_rs_proto::{
    AllowCredentials, AttestationConveyancePreference, AuthenticatorSelectionCriteria, PubKeyCredParams,
    PublicKeyCredentialCreationOptions, PublicKeyCredentialDescriptor, PublicKeyCredentialRequestOptions,
    RelyingParty, User, UserVerificationPolicy,
};

use super::{
    AssertRequest, AssertResponse, Authenticator, AuthenticatorError, RegisterRequest, RegisterResponse,
    UserVerification,
};

/// COSE identifier of ES256, the only algorithm `SoftToken` creates keys for.
const ES256: i64 = -7;
/// Timeout handed to the token; it answers at once, so this is only informative.
const TIMEOUT_MS: u32 = 60_000;

/// Where the attestation CA certificate of the software key stored at `path` is written:
/// the key file's name with `.ca.pem` appended (`dev-key.cbor` → `dev-key.cbor.ca.pem`).
pub fn ca_pem_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".ca.pem");
    PathBuf::from(name)
}

/// A software authenticator backed by a file. See the module documentation.
pub struct SoftAuthenticator {
    path: PathBuf,
    token: SoftToken,
}

impl SoftAuthenticator {
    /// Loads the software key stored at `path`, or creates one there (and its `.ca.pem`) if the
    /// file does not exist.
    pub fn open(path: &Path) -> Result<Self, AuthenticatorError> {
        match fs::read(path) {
            Ok(bytes) => {
                let token = SoftToken::from_cbor(&bytes).map_err(|e| {
                    AuthenticatorError::Other(format!(
                        "{} is not a tapgate software key file: {e}",
                        path.display()
                    ))
                })?;
                Ok(Self { path: path.to_path_buf(), token })
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Self::create(path),
            Err(e) => Err(file_error("cannot read software key", path, &e)),
        }
    }

    /// Creates a new token with a fresh attestation CA, writes the CA's PEM, then the key file.
    fn create(path: &Path) -> Result<Self, AuthenticatorError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| file_error("cannot create directory", parent, &e))?;
        }
        // The token reports user verification when asked to ("falsify_uv"): it stands in for a
        // key with a PIN, so flows that require UV can be exercised.
        let (token, ca) = SoftToken::new(true)
            .map_err(|e| AuthenticatorError::Other(format!("cannot create a software key: {e}")))?;
        let pem = ca.to_pem(LineEnding::LF).map_err(|e| {
            AuthenticatorError::Other(format!("cannot encode the attestation CA as PEM: {e}"))
        })?;
        let pem_path = ca_pem_path(path);
        fs::write(&pem_path, pem.as_bytes())
            .map_err(|e| file_error("cannot write attestation CA", &pem_path, &e))?;
        let me = Self { path: path.to_path_buf(), token };
        me.save()?;
        Ok(me)
    }

    /// Writes the token to its file atomically (temporary file with mode 0600, then rename).
    fn save(&self) -> Result<(), AuthenticatorError> {
        let bytes = self
            .token
            .to_cbor()
            .map_err(|e| AuthenticatorError::Other(format!("cannot serialise the software key: {e}")))?;
        let mut tmp_name = OsString::from(self.path.as_os_str());
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        write_private(&tmp, &bytes).map_err(|e| file_error("cannot write", &tmp, &e))?;
        fs::rename(&tmp, &self.path).map_err(|e| file_error("cannot replace", &self.path, &e))
    }

    /// Whether the token holds any of `ids`. Runs a throw-away assertion on a copy of the token,
    /// so the real token (and its counter) is untouched.
    fn holds_any(&self, rp_id: &str, ids: &[Vec<u8>]) -> Result<bool, AuthenticatorError> {
        if ids.is_empty() {
            return Ok(false);
        }
        let mut copy = self
            .token
            .to_cbor()
            .and_then(|bytes| SoftToken::from_cbor(&bytes))
            .map_err(|e| AuthenticatorError::Other(format!("cannot copy the software key: {e}")))?;
        let options = request_options(rp_id, ids, UserVerificationPolicy::Discouraged_DO_NOT_USE);
        match copy.perform_auth(vec![0; 32], options, TIMEOUT_MS) {
            Ok(_) => Ok(true),
            // SoftToken answers Internal exactly when none of the allowed credentials is its own.
            Err(WebauthnCError::Internal) => Ok(false),
            Err(e) => Err(map_error(e)),
        }
    }
}

impl Authenticator for SoftAuthenticator {
    fn register(&mut self, req: &RegisterRequest) -> Result<RegisterResponse, AuthenticatorError> {
        if !req.algorithms.is_empty() && !req.algorithms.contains(&ES256) {
            return Err(AuthenticatorError::Unsupported(
                "any algorithm the registry accepts (the software key only makes ES256 keys)".into(),
            ));
        }
        if self.holds_any(&req.rp_id, &req.exclude_credentials)? {
            return Err(AuthenticatorError::AlreadyEnrolled);
        }
        let hash = Sha256::digest(&req.client_data_json).to_vec();
        let options = |policy| PublicKeyCredentialCreationOptions {
            rp: RelyingParty { name: req.rp_name.clone(), id: req.rp_id.clone() },
            user: User {
                id: req.user_id.clone(),
                name: req.user_name.clone(),
                display_name: req.user_display_name.clone(),
            },
            // The challenge travels inside clientDataJSON, whose hash is passed separately.
            challenge: Vec::new(),
            pub_key_cred_params: vec![PubKeyCredParams { type_: "public-key".into(), alg: ES256 }],
            timeout: Some(TIMEOUT_MS),
            exclude_credentials: Some(
                req.exclude_credentials
                    .iter()
                    .map(|id| PublicKeyCredentialDescriptor {
                        type_: "public-key".into(),
                        id: id.clone(),
                        transports: None,
                    })
                    .collect(),
            ),
            authenticator_selection: Some(AuthenticatorSelectionCriteria {
                authenticator_attachment: None,
                resident_key: None,
                require_resident_key: false,
                user_verification: policy,
            }),
            hints: None,
            attestation: Some(AttestationConveyancePreference::Direct),
            attestation_formats: None,
            extensions: None,
        };
        let cred = with_uv_fallback(req.user_verification, |policy| {
            self.token.perform_register(hash.clone(), options(policy), TIMEOUT_MS)
        })
        .map_err(map_error)?;
        self.save()?;
        Ok(RegisterResponse {
            credential_id: cred.raw_id,
            attestation_object: cred.response.attestation_object,
        })
    }

    fn assert(&mut self, req: &AssertRequest) -> Result<AssertResponse, AuthenticatorError> {
        let hash = Sha256::digest(&req.client_data_json).to_vec();
        let result = with_uv_fallback(req.user_verification, |policy| {
            let options = request_options(&req.rp_id, &req.allow_credentials, policy);
            self.token.perform_auth(hash.clone(), options, TIMEOUT_MS)
        });
        let cred = match result {
            Ok(cred) => cred,
            Err(WebauthnCError::Internal) => return Err(AuthenticatorError::NoMatchingCredential),
            Err(e) => return Err(map_error(e)),
        };
        // The counter was incremented in memory: persist it before handing out the signature.
        self.save()?;
        Ok(AssertResponse {
            credential_id: cred.raw_id,
            authenticator_data: cred.response.authenticator_data,
            signature: cred.response.signature,
            user_handle: cred.response.user_handle,
        })
    }
}

/// Runs `op` with the SoftToken policy matching `uv`. `SoftToken` only verifies the user when
/// the policy is Required, so Preferred asks for Required first (like a client facing a key that
/// can verify) and falls back to no verification if the token cannot do it. The token refuses
/// before changing any state, so the retry is safe.
fn with_uv_fallback<T>(
    uv: UserVerification,
    mut op: impl FnMut(UserVerificationPolicy) -> Result<T, WebauthnCError>,
) -> Result<T, WebauthnCError> {
    match uv {
        UserVerification::Required => op(UserVerificationPolicy::Required),
        UserVerification::Discouraged => op(UserVerificationPolicy::Discouraged_DO_NOT_USE),
        UserVerification::Preferred => match op(UserVerificationPolicy::Required) {
            Err(WebauthnCError::NotSupported) => op(UserVerificationPolicy::Discouraged_DO_NOT_USE),
            other => other,
        },
    }
}

fn request_options(
    rp_id: &str,
    ids: &[Vec<u8>],
    policy: UserVerificationPolicy,
) -> PublicKeyCredentialRequestOptions {
    PublicKeyCredentialRequestOptions {
        challenge: Vec::new(),
        timeout: Some(TIMEOUT_MS),
        rp_id: rp_id.to_string(),
        allow_credentials: ids
            .iter()
            .map(|id| AllowCredentials { type_: "public-key".into(), id: id.clone(), transports: None })
            .collect(),
        user_verification: policy,
        hints: None,
        extensions: None,
    }
}

fn map_error(e: WebauthnCError) -> AuthenticatorError {
    match e {
        WebauthnCError::NotSupported => AuthenticatorError::Unsupported(
            "user verification (this software key file was created without it)".into(),
        ),
        other => AuthenticatorError::Other(format!("software key: {other}")),
    }
}

fn file_error(what: &str, path: &Path, e: &std::io::Error) -> AuthenticatorError {
    AuthenticatorError::Other(format!("{what} {}: {e}", path.display()))
}

/// Writes `bytes` to a new file at `path` readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    fn new_key(dir: &tempfile::TempDir) -> (PathBuf, SoftAuthenticator) {
        let path = dir.path().join("key.cbor");
        let key = SoftAuthenticator::open(&path).expect("create soft key");
        (path, key)
    }

    fn counter(auth_data: &[u8]) -> u32 {
        u32::from_be_bytes(auth_data[33..37].try_into().expect("counter bytes"))
    }

    #[test]
    fn creates_private_file_and_ca_pem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, _key) = new_key(&dir);
        assert!(path.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let pem = fs::read(ca_pem_path(&path)).expect("read ca pem");
        let (label, der) = der::pem::decode_vec(&pem).expect("valid PEM");
        assert_eq!(label, "CERTIFICATE");
        assert!(!der.is_empty());
        // The server's parser accepts it as an attestation CA.
        let _ = ca_list(&pem);
        assert_eq!(ca_pem_path(Path::new("/x/dev.cbor")), PathBuf::from("/x/dev.cbor.ca.pem"));
    }

    #[test]
    fn full_ceremony_verifies_with_trusted_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, mut key) = new_key(&dir);
        let pem = fs::read(ca_pem_path(&path)).expect("read ca pem");
        let rp = TestRp::new();
        let cred = rp
            .register(&mut key, Some(&ca_list(&pem)), UserVerification::Preferred)
            .expect("registration verifies");
        let first = rp.authenticate(&mut key, &cred, UserVerification::Preferred).expect("auth");
        let second = rp.authenticate(&mut key, &cred, UserVerification::Preferred).expect("auth");
        assert!(first.user_verified());
        assert!(second.counter() > first.counter());
    }

    #[test]
    fn untrusted_ca_is_rejected_by_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, mut key) = new_key(&dir);
        // A CA belonging to another software key.
        let other_path = dir.path().join("other.cbor");
        let _other = SoftAuthenticator::open(&other_path).expect("other key");
        let other_pem = fs::read(ca_pem_path(&other_path)).expect("read ca pem");
        let rp = TestRp::new();
        let res = rp.register(&mut key, Some(&ca_list(&other_pem)), UserVerification::Preferred);
        let err = res.expect_err("attestation from an untrusted CA must be refused");
        assert!(err.contains("not trusted"), "{err}");
    }

    #[test]
    fn counter_persists_across_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, mut key) = new_key(&dir);
        let reg = key.register(&register_request(b"{}".to_vec(), vec![])).expect("register");
        let req = assert_request(b"{}".to_vec(), vec![reg.credential_id.clone()]);
        let a1 = key.assert(&req).expect("assert 1");
        drop(key);
        let mut key = SoftAuthenticator::open(&path).expect("reopen");
        let a2 = key.assert(&req).expect("assert 2");
        assert_eq!(a2.credential_id, reg.credential_id);
        assert!(counter(&a2.authenticator_data) > counter(&a1.authenticator_data));
        drop(key);
        let mut key = SoftAuthenticator::open(&path).expect("reopen again");
        let a3 = key.assert(&req).expect("assert 3");
        assert!(counter(&a3.authenticator_data) > counter(&a2.authenticator_data));
    }

    #[test]
    fn exclude_list_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, mut key) = new_key(&dir);
        let reg = key.register(&register_request(b"{}".to_vec(), vec![])).expect("register");
        let again = key.register(&register_request(b"{}".to_vec(), vec![reg.credential_id]));
        assert_eq!(again.err(), Some(AuthenticatorError::AlreadyEnrolled));
        // An unknown credential in the exclude list does not block registration.
        let other = key.register(&register_request(b"{}".to_vec(), vec![vec![7; 32]]));
        assert!(other.is_ok());
    }

    #[test]
    fn allow_list_without_own_credential_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, mut key) = new_key(&dir);
        key.register(&register_request(b"{}".to_vec(), vec![])).expect("register");
        let res = key.assert(&assert_request(b"{}".to_vec(), vec![vec![9; 32]]));
        assert_eq!(res.err(), Some(AuthenticatorError::NoMatchingCredential));
        let res = key.assert(&assert_request(b"{}".to_vec(), vec![]));
        assert_eq!(res.err(), Some(AuthenticatorError::NoMatchingCredential));
    }

    #[test]
    fn user_verification_flag_follows_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, mut key) = new_key(&dir);
        let reg = key.register(&register_request(b"{}".to_vec(), vec![])).expect("register");
        let mut req = assert_request(b"{}".to_vec(), vec![reg.credential_id]);
        for (uv, expect_uv) in [
            (UserVerification::Required, true),
            (UserVerification::Preferred, true),
            (UserVerification::Discouraged, false),
        ] {
            req.user_verification = uv;
            let a = key.assert(&req).expect("assert");
            let flags = a.authenticator_data[32];
            assert_eq!(flags & 0x01, 0x01, "user present");
            assert_eq!(flags & 0x04 == 0x04, expect_uv, "{uv:?}");
        }
    }

    #[test]
    fn unsupported_algorithm_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, mut key) = new_key(&dir);
        let mut req = register_request(b"{}".to_vec(), vec![]);
        req.algorithms = vec![-257];
        assert!(matches!(key.register(&req), Err(AuthenticatorError::Unsupported(_))));
    }

    #[test]
    fn corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.cbor");
        fs::write(&path, b"not cbor").expect("write");
        assert!(matches!(SoftAuthenticator::open(&path), Err(AuthenticatorError::Other(_))));
    }
}
