//! Failures of ctap-hid-fido2 calls and their translation to [`AuthenticatorError`].
//!
//! ctap-hid-fido2 reports a CTAP error status only inside its error message, as
//! `response_status err = 0x2F CTAP2_ERR_USER_ACTION_TIMEOUT ...` (ctaphid.rs builds it with
//! `get_ctap_status_message`), so the status byte is read back from that text.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use crate::authenticator::AuthenticatorError;

pub(super) const CTAP1_ERR_INVALID_COMMAND: u8 = 0x01;
pub(super) const CTAP1_ERR_INVALID_PARAMETER: u8 = 0x02;
pub(super) const CTAP1_ERR_TIMEOUT: u8 = 0x05;
pub(super) const CTAP2_ERR_CREDENTIAL_EXCLUDED: u8 = 0x19;
pub(super) const CTAP2_ERR_INVALID_CREDENTIAL: u8 = 0x22;
pub(super) const CTAP2_ERR_UNSUPPORTED_ALGORITHM: u8 = 0x26;
pub(super) const CTAP2_ERR_OPERATION_DENIED: u8 = 0x27;
pub(super) const CTAP2_ERR_UNSUPPORTED_OPTION: u8 = 0x2B;
pub(super) const CTAP2_ERR_KEEPALIVE_CANCEL: u8 = 0x2D;
pub(super) const CTAP2_ERR_NO_CREDENTIALS: u8 = 0x2E;
pub(super) const CTAP2_ERR_USER_ACTION_TIMEOUT: u8 = 0x2F;
pub(super) const CTAP2_ERR_PIN_INVALID: u8 = 0x31;
pub(super) const CTAP2_ERR_PIN_BLOCKED: u8 = 0x32;
pub(super) const CTAP2_ERR_PIN_AUTH_BLOCKED: u8 = 0x34;
pub(super) const CTAP2_ERR_PIN_NOT_SET: u8 = 0x35;
/// CTAP2_ERR_PUAT_REQUIRED (CTAP 2.1), called CTAP2_ERR_PIN_REQUIRED in CTAP 2.0.
pub(super) const CTAP2_ERR_PUAT_REQUIRED: u8 = 0x36;
pub(super) const CTAP2_ERR_ACTION_TIMEOUT: u8 = 0x3A;
pub(super) const CTAP2_ERR_UV_BLOCKED: u8 = 0x3C;

/// ctap-hid-fido2 stops reading after 500 keepalive packets (about 50 s) and then reports the
/// keepalive status byte (1 = processing, 2 = up-needed) as if it were an error status. A call
/// that failed with one of those after this long is treated as a touch timeout.
const LIBRARY_GIVE_UP: Duration = Duration::from_secs(40);

/// A failed ctap-hid-fido2 call.
#[derive(Debug, Clone)]
pub(super) struct Failure {
    /// The CTAP status byte, when the key answered with one.
    pub status: Option<u8>,
    pub message: String,
    pub elapsed: Duration,
}

/// Runs one ctap-hid-fido2 call. Its errors, and any panic inside the library (it has a few
/// `expect`s and unchecked slice indexes on device data), become a [`Failure`].
pub(super) fn call<T>(f: impl FnOnce() -> anyhow::Result<T>) -> Result<T, Failure> {
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(f));
    let elapsed = started.elapsed();
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            let message = format!("{e:#}");
            Err(Failure { status: parse_status(&message), message, elapsed })
        }
        Err(_) => Err(Failure {
            status: None,
            message: "the security key library failed on an unexpected answer from the key".into(),
            elapsed,
        }),
    }
}

/// Extracts the status byte from `... response_status err = 0x2F ...`.
pub(super) fn parse_status(message: &str) -> Option<u8> {
    let rest = message.split("response_status err = 0x").nth(1)?;
    let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).take(2).collect();
    u8::from_str_radix(&hex, 16).ok()
}

impl Failure {
    pub fn is(&self, status: u8) -> bool {
        self.status == Some(status)
    }

    /// The [`AuthenticatorError`] for this failure. `PinInvalid` carries no retry count here;
    /// callers holding the device add it.
    pub fn to_error(&self) -> AuthenticatorError {
        use AuthenticatorError as E;
        match self.status {
            Some(CTAP2_ERR_PIN_INVALID) => E::PinInvalid { retries: None },
            Some(CTAP2_ERR_PIN_BLOCKED) => E::PinBlocked,
            Some(CTAP2_ERR_PIN_AUTH_BLOCKED) => E::PinAuthBlocked,
            Some(CTAP2_ERR_PIN_NOT_SET) => E::PinNotSet,
            Some(CTAP2_ERR_USER_ACTION_TIMEOUT | CTAP2_ERR_ACTION_TIMEOUT | CTAP1_ERR_TIMEOUT) => E::Timeout,
            Some(CTAP1_ERR_INVALID_COMMAND | CTAP1_ERR_INVALID_PARAMETER)
                if self.elapsed >= LIBRARY_GIVE_UP =>
            {
                E::Timeout
            }
            Some(CTAP2_ERR_NO_CREDENTIALS) => E::NoMatchingCredential,
            Some(CTAP2_ERR_CREDENTIAL_EXCLUDED) => E::AlreadyEnrolled,
            Some(CTAP2_ERR_OPERATION_DENIED | CTAP2_ERR_KEEPALIVE_CANCEL) => E::Cancelled,
            Some(CTAP2_ERR_UNSUPPORTED_ALGORITHM) => {
                E::Unsupported("any signature algorithm the registry accepts (ES256, EdDSA)".into())
            }
            Some(CTAP2_ERR_UNSUPPORTED_OPTION) => {
                E::Unsupported(format!("an option tapgate asked for ({})", self.message))
            }
            Some(CTAP2_ERR_PUAT_REQUIRED) => {
                E::Other("the security key requires its PIN for this operation".into())
            }
            Some(CTAP2_ERR_UV_BLOCKED) => {
                E::Other("the key's built-in user verification is blocked: unlock it with the PIN".into())
            }
            _ if self.message.contains("read err") || self.message.contains("write error") => {
                E::Other("lost contact with the security key: was it unplugged?".into())
            }
            _ => E::Other(self.message.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(message: &str, secs: u64) -> Failure {
        Failure { status: parse_status(message), message: message.into(), elapsed: Duration::from_secs(secs) }
    }

    #[test]
    fn parses_status_from_library_messages() {
        let m = "response_status err = 0x2F CTAP2_ERR_USER_ACTION_TIMEOUT   Timeout waiting";
        assert_eq!(parse_status(m), Some(0x2F));
        assert_eq!(parse_status("response_status err = 0x5"), Some(0x05));
        assert_eq!(parse_status("response_status err = 0x01 CTAP1_ERR"), Some(0x01));
        assert_eq!(parse_status("FIDO device not found."), None);
    }

    #[test]
    fn maps_ctap_errors() {
        let e = |code: u8| failure(&format!("response_status err = 0x{code:02X} X"), 1).to_error();
        use AuthenticatorError as E;
        assert_eq!(e(0x31), E::PinInvalid { retries: None });
        assert_eq!(e(0x32), E::PinBlocked);
        assert_eq!(e(0x34), E::PinAuthBlocked);
        assert_eq!(e(0x35), E::PinNotSet);
        assert_eq!(e(0x2F), E::Timeout);
        assert_eq!(e(0x3A), E::Timeout);
        assert_eq!(e(0x2E), E::NoMatchingCredential);
        assert_eq!(e(0x19), E::AlreadyEnrolled);
        assert_eq!(e(0x27), E::Cancelled);
        assert_eq!(e(0x2D), E::Cancelled);
        assert!(matches!(e(0x26), E::Unsupported(_)));
        assert!(matches!(e(0x02), E::Other(_)));
        assert!(matches!(e(0x7F), E::Other(_)));
    }

    #[test]
    fn library_keepalive_give_up_is_a_timeout() {
        let f = failure("response_status err = 0x02 CTAP1_ERR_INVALID_PARAMETER", 55);
        assert_eq!(f.to_error(), AuthenticatorError::Timeout);
    }

    #[test]
    fn panics_inside_the_library_become_failures() {
        let r: Result<(), Failure> = call(|| panic!("boom"));
        assert!(r.is_err());
        let r = call(|| Err::<(), _>(anyhow::anyhow!("response_status err = 0x2E NO_CREDS")));
        assert!(r.is_err_and(|f| f.is(CTAP2_ERR_NO_CREDENTIALS)));
    }
}
