//! Authenticators: the things that hold a user's WebAuthn credentials.
//!
//! The CLI builds `clientDataJSON` itself (type, challenge, origin, crossOrigin) and hands the
//! exact bytes to an authenticator; the authenticator signs over `SHA-256(clientDataJSON)` as
//! CTAP2 specifies. Two implementations exist:
//! - [`hid::HidAuthenticator`]: a real FIDO2 key over USB HID (ctap-hid-fido2);
//! - [`soft::SoftAuthenticator`]: a software key saved to a file, for tests and development only,
//!   never selected unless asked for with `--authenticator soft:PATH`.
//!
//! Every method blocks (USB I/O, waiting for a touch); async callers run them in
//! `tokio::task::spawn_blocking`.

pub mod hid;
pub mod soft;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Whether the relying party wants the authenticator to verify the user (PIN or biometrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserVerification {
    Required,
    Preferred,
    Discouraged,
}

/// A request to create a credential (WebAuthn registration / CTAP2 authenticatorMakeCredential).
#[derive(Debug, Clone)]
pub struct RegisterRequest {
    pub rp_id: String,
    pub rp_name: String,
    /// The exact clientDataJSON bytes; the authenticator receives their SHA-256.
    pub client_data_json: Vec<u8>,
    pub user_id: Vec<u8>,
    pub user_name: String,
    pub user_display_name: String,
    /// Credential ids already registered for this user; a key holding one must refuse.
    pub exclude_credentials: Vec<Vec<u8>>,
    pub user_verification: UserVerification,
    /// COSE algorithm identifiers the relying party accepts, most preferred first.
    pub algorithms: Vec<i64>,
}

/// The result of a registration, in the shape WebAuthn's JSON transports.
#[derive(Debug, Clone)]
pub struct RegisterResponse {
    pub credential_id: Vec<u8>,
    /// CBOR map `{fmt, attStmt, authData}` exactly as the authenticator produced it.
    pub attestation_object: Vec<u8>,
}

/// A request to sign in with an existing credential (CTAP2 authenticatorGetAssertion).
#[derive(Debug, Clone)]
pub struct AssertRequest {
    pub rp_id: String,
    /// The exact clientDataJSON bytes; the authenticator receives their SHA-256.
    pub client_data_json: Vec<u8>,
    /// Credential ids the relying party accepts. Never empty for tapgate (no discoverable creds).
    pub allow_credentials: Vec<Vec<u8>>,
    pub user_verification: UserVerification,
}

/// The result of an assertion.
#[derive(Debug, Clone)]
pub struct AssertResponse {
    pub credential_id: Vec<u8>,
    pub authenticator_data: Vec<u8>,
    pub signature: Vec<u8>,
    pub user_handle: Option<Vec<u8>>,
}

/// Why an authenticator could not do what was asked. Each message says what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthenticatorError {
    /// No FIDO2 key is connected.
    NoDevice,
    /// None of the connected keys holds any of the allowed credentials.
    NoMatchingCredential,
    /// The key already holds a credential for this account (exclude list matched).
    AlreadyEnrolled,
    /// The key needs a PIN and none is set on it.
    PinNotSet,
    /// The PIN was wrong; `retries` attempts remain (if the key said).
    PinInvalid { retries: Option<u32> },
    /// Too many wrong PINs: the key's PIN is blocked.
    PinBlocked,
    /// Too many wrong PINs since the key was plugged in: replug it.
    PinAuthBlocked,
    /// Nobody touched the key in time.
    Timeout,
    /// The user or the key cancelled the operation.
    Cancelled,
    /// The key does not support what was asked (e.g. no algorithm in common).
    Unsupported(String),
    /// Anything else: the device or the file failed.
    Other(String),
}

impl fmt::Display for AuthenticatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoDevice => write!(f, "no security key found: plug in your key and try again"),
            Self::NoMatchingCredential => write!(
                f,
                "none of the connected security keys is enrolled for this account: use an enrolled key, or enroll this one with `tapgate key add`"
            ),
            Self::AlreadyEnrolled => {
                write!(f, "this security key is already enrolled for this account")
            }
            Self::PinNotSet => write!(
                f,
                "this security key has no PIN but one is required: set a PIN with your key's management tool"
            ),
            Self::PinInvalid { retries: Some(n) } => {
                write!(f, "wrong PIN for the security key ({n} attempts left)")
            }
            Self::PinInvalid { retries: None } => write!(f, "wrong PIN for the security key"),
            Self::PinBlocked => write!(
                f,
                "the security key's PIN is blocked after too many wrong attempts: the key must be reset"
            ),
            Self::PinAuthBlocked => {
                write!(f, "too many wrong PINs: unplug the security key, plug it back in and try again")
            }
            Self::Timeout => write!(f, "the security key was not touched in time: try again"),
            Self::Cancelled => write!(f, "the operation was cancelled on the security key"),
            Self::Unsupported(what) => write!(f, "the security key does not support {what}"),
            Self::Other(msg) => write!(f, "security key error: {msg}"),
        }
    }
}

impl std::error::Error for AuthenticatorError {}

/// A FIDO2 authenticator. Methods block until the key answers or times out.
pub trait Authenticator: Send {
    fn register(&mut self, req: &RegisterRequest) -> Result<RegisterResponse, AuthenticatorError>;
    fn assert(&mut self, req: &AssertRequest) -> Result<AssertResponse, AuthenticatorError>;
}

/// Which authenticator the user asked for (`--authenticator`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthenticatorChoice {
    /// Real keys over USB HID. The default.
    Usb,
    /// A software key stored in a file (created on first use). Tests and development only.
    Soft(PathBuf),
}

impl FromStr for AuthenticatorChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "usb" {
            Ok(Self::Usb)
        } else if let Some(path) = s.strip_prefix("soft:") {
            if path.is_empty() {
                Err("soft: needs a file path, e.g. soft:./dev-key.cbor".into())
            } else {
                Ok(Self::Soft(PathBuf::from(path)))
            }
        } else {
            Err(format!("unknown authenticator {s:?}: use `usb` or `soft:PATH`"))
        }
    }
}

/// Opens the chosen authenticator.
pub fn open(choice: &AuthenticatorChoice) -> Result<Box<dyn Authenticator>, AuthenticatorError> {
    match choice {
        AuthenticatorChoice::Usb => Ok(Box::new(hid::HidAuthenticator::new())),
        AuthenticatorChoice::Soft(path) => Ok(Box::new(soft::SoftAuthenticator::open(path)?)),
    }
}
