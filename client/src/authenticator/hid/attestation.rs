//! Rebuilding the WebAuthn attestationObject from what ctap-hid-fido2 returns.
//!
//! ctap-hid-fido2 parses the authenticatorMakeCredential response into an `Attestation` and
//! does not hand back the raw CBOR. It keeps the authenticator data as the exact bytes the key
//! sent (`auth_data`) and the statement fields `fmt`, `alg`, `sig` and `x5c`. From those the
//! attestation object `{fmt, attStmt, authData}` is encoded again here, in CTAP2 canonical key
//! order, with `authData` copied byte for byte so the attestation signature still verifies.

use ctap_hid_fido2::fidokey::make_credential::Attestation;

use crate::authenticator::AuthenticatorError;

/// The subset of CBOR data items an attestation object needs.
#[derive(Debug)]
pub(super) enum Cbor<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    Text(&'a str),
    Array(Vec<Cbor<'a>>),
    Map(Vec<(Cbor<'a>, Cbor<'a>)>),
}

impl Cbor<'_> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Int(n) if *n >= 0 => head(0, n.unsigned_abs(), out),
            // Major type 1 carries -1 - n, which is |n| - 1 for negative n.
            Self::Int(n) => head(1, n.unsigned_abs() - 1, out),
            Self::Bytes(b) => {
                head(2, b.len() as u64, out);
                out.extend_from_slice(b);
            }
            Self::Text(t) => {
                head(3, t.len() as u64, out);
                out.extend_from_slice(t.as_bytes());
            }
            Self::Array(items) => {
                head(4, items.len() as u64, out);
                for item in items {
                    item.encode(out);
                }
            }
            Self::Map(entries) => {
                head(5, entries.len() as u64, out);
                for (key, value) in entries {
                    key.encode(out);
                    value.encode(out);
                }
            }
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// Writes a CBOR initial byte and argument in the shortest form.
fn head(major: u8, value: u64, out: &mut Vec<u8>) {
    let m = major << 5;
    if let Ok(v) = u8::try_from(value) {
        if v < 24 {
            out.push(m | v);
        } else {
            out.extend_from_slice(&[m | 24, v]);
        }
    } else if let Ok(v) = u16::try_from(value) {
        out.push(m | 25);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = u32::try_from(value) {
        out.push(m | 26);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// Encodes the attestation object for `att`.
pub(super) fn attestation_object(att: &Attestation) -> Result<Vec<u8>, AuthenticatorError> {
    if att.auth_data.is_empty() {
        return Err(AuthenticatorError::Other("the security key returned no authenticator data".into()));
    }
    let x5c = || Cbor::Array(att.attstmt_x5c.iter().map(|c| Cbor::Bytes(c)).collect());
    let mut stmt = Vec::new();
    match att.fmt.as_str() {
        "packed" => {
            if att.attstmt_alg == 0 {
                return Err(AuthenticatorError::Other(
                    "the security key returned a packed attestation without an algorithm".into(),
                ));
            }
            stmt.push((Cbor::Text("alg"), Cbor::Int(i64::from(att.attstmt_alg))));
            stmt.push((Cbor::Text("sig"), Cbor::Bytes(&att.attstmt_sig)));
            // Without x5c this is self attestation, signed with the credential key itself.
            if !att.attstmt_x5c.is_empty() {
                stmt.push((Cbor::Text("x5c"), x5c()));
            }
        }
        "fido-u2f" => {
            stmt.push((Cbor::Text("sig"), Cbor::Bytes(&att.attstmt_sig)));
            stmt.push((Cbor::Text("x5c"), x5c()));
        }
        "none" => {}
        "" => {
            return Err(AuthenticatorError::Other("the security key returned no attestation format".into()));
        }
        // tpm, android-key, apple...: their statements carry fields ctap-hid-fido2 drops.
        other => {
            return Err(AuthenticatorError::Unsupported(format!(
                "the \"{other}\" attestation format (not a USB security key format)"
            )));
        }
    }
    let object = Cbor::Map(vec![
        (Cbor::Text("fmt"), Cbor::Text(&att.fmt)),
        (Cbor::Text("attStmt"), Cbor::Map(stmt)),
        (Cbor::Text("authData"), Cbor::Bytes(&att.auth_data)),
    ]);
    Ok(object.to_vec())
}

/// The credential id inside authenticator data with attested credential data:
/// rpIdHash (32) | flags (1) | signCount (4) | aaguid (16) | idLength (2, BE) | id | key...
pub(super) fn credential_id(auth_data: &[u8]) -> Result<Vec<u8>, AuthenticatorError> {
    let bad = |what: &str| {
        AuthenticatorError::Other(format!("the security key returned {what} authenticator data"))
    };
    let flags = *auth_data.get(32).ok_or_else(|| bad("truncated"))?;
    if flags & 0x40 == 0 {
        return Err(bad("credential-less"));
    }
    let len_bytes = auth_data.get(53..55).ok_or_else(|| bad("truncated"))?;
    let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
    let id = auth_data.get(55..55 + len).ok_or_else(|| bad("truncated"))?;
    Ok(id.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_integers_in_shortest_form() {
        let enc = |n: i64| Cbor::Int(n).to_vec();
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(23), [0x17]);
        assert_eq!(enc(24), [0x18, 0x18]);
        assert_eq!(enc(256), [0x19, 0x01, 0x00]);
        assert_eq!(enc(65536), [0x1a, 0x00, 0x01, 0x00, 0x00]);
        assert_eq!(enc(1 << 32), [0x1b, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(enc(-1), [0x20]);
        assert_eq!(enc(-7), [0x26]);
        assert_eq!(enc(-8), [0x27]);
        assert_eq!(enc(-257), [0x39, 0x01, 0x00]);
        assert_eq!(enc(i64::MIN), [0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn encodes_none_attestation_object() {
        let att = Attestation { fmt: "none".into(), auth_data: vec![0xAB], ..Default::default() };
        let bytes = attestation_object(&att).expect("encode");
        let mut expected = vec![0xa3, 0x63];
        expected.extend_from_slice(b"fmt");
        expected.push(0x64);
        expected.extend_from_slice(b"none");
        expected.push(0x67);
        expected.extend_from_slice(b"attStmt");
        expected.push(0xa0);
        expected.push(0x68);
        expected.extend_from_slice(b"authData");
        expected.extend_from_slice(&[0x41, 0xAB]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn encodes_packed_statement_in_canonical_order() {
        let att = Attestation {
            fmt: "packed".into(),
            auth_data: vec![1; 40],
            attstmt_alg: -7,
            attstmt_sig: vec![2; 3],
            attstmt_x5c: vec![vec![3; 2]],
            ..Default::default()
        };
        let bytes = attestation_object(&att).expect("encode");
        let mut stmt = vec![0xa3, 0x63];
        stmt.extend_from_slice(b"alg");
        stmt.push(0x26);
        stmt.push(0x63);
        stmt.extend_from_slice(b"sig");
        stmt.extend_from_slice(&[0x43, 2, 2, 2, 0x63]);
        stmt.extend_from_slice(b"x5c");
        stmt.extend_from_slice(&[0x81, 0x42, 3, 3]);
        let found = bytes.windows(stmt.len()).any(|w| w == stmt.as_slice());
        assert!(found, "attStmt encoding");
        // authData: byte string of 40 bytes (0x58 0x28) at the end.
        assert_eq!(&bytes[bytes.len() - 42..bytes.len() - 40], &[0x58, 0x28]);
    }

    #[test]
    fn rejects_unknown_formats_and_bad_auth_data() {
        let att = Attestation { fmt: "tpm".into(), auth_data: vec![0; 60], ..Default::default() };
        assert!(matches!(attestation_object(&att), Err(AuthenticatorError::Unsupported(_))));
        assert!(credential_id(&[0; 20]).is_err());
        assert!(credential_id(&[0; 60]).is_err(), "AT flag not set");
        let mut ad = vec![0u8; 55];
        ad[32] = 0x41;
        ad[54] = 4;
        assert!(credential_id(&ad).is_err(), "id runs past the end");
        ad.extend_from_slice(&[9, 8, 7, 6]);
        assert_eq!(credential_id(&ad).expect("id"), vec![9, 8, 7, 6]);
    }
}
