//! What the fuzz targets share: how one input is cut into several byte strings, and the fixed
//! relying party, credential and keyring the WebAuthn and approval-record targets check against.
//!
//! The fixtures in `fixtures/` and the WebAuthn seeds in `corpus/` come from the software
//! authenticator (`cargo test -p tapgate --lib fuzz_seeds -- --ignored`, see that test).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tapgate_server::webauthn::{AttestationTrust, RelyingParty};
use url::Url;

/// The origin the software authenticator's seeds were made for.
pub const ORIGIN: &str = "http://localhost:1234";

/// The credential the seed assertions were made with (webauthn-rs JSON).
pub const CREDENTIAL_JSON: &str = include_str!("../fixtures/credential.json");
/// A keyring trusting that credential, as `tapgate verify --keyring` reads it.
pub const KEYRING: &str = include_str!("../fixtures/keyring");
/// The tarball the seed approval record approves.
pub const RECORD_TARBALL: &[u8] = include_bytes!("../fixtures/record.tgz");

/// Cuts `data` into `n` parts: each part but the last is preceded by its length as two
/// big-endian bytes; the last part is the rest. Missing parts are empty.
pub fn split(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut parts = Vec::with_capacity(n);
    let mut rest = data;
    for _ in 1..n {
        let (len, tail) = match rest {
            [a, b, tail @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), tail),
            _ => (0, &[][..]),
        };
        let len = len.min(tail.len());
        parts.push(&tail[..len]);
        rest = &tail[len..];
    }
    parts.push(rest);
    parts
}

/// The inverse of [`split`].
pub fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 < parts.len() {
            let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
        }
        out.extend_from_slice(part);
    }
    out
}

/// The relying party the server runs for [`ORIGIN`], trusting no attestation CA.
pub fn relying_party() -> Option<RelyingParty> {
    let origin = Url::parse(ORIGIN).ok()?;
    RelyingParty::new(&origin, AttestationTrust::none()).ok()
}

/// The challenge a clientDataJSON names, when it names one (so a ceremony can expect it).
pub fn challenge_in(client_data_json: &[u8]) -> Option<Vec<u8>> {
    let value: serde_json::Value = serde_json::from_slice(client_data_json).ok()?;
    URL_SAFE_NO_PAD.decode(value.get("challenge")?.as_str()?).ok()
}
