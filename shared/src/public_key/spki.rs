//! DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7): `SEQUENCE { AlgorithmIdentifier, BIT STRING }`,
//! with the key as RFC 5480 (EC, uncompressed point), RFC 8410 (Ed25519) or RFC 8017 (RSA)
//! specify. Read by re-encoding: only the one canonical encoding of a supported key is taken.

use super::{KeyError, PublicKey, err};

/// `SEQUENCE { id-ecPublicKey, prime256v1 }`
const ALG_P256: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07,
];
/// `SEQUENCE { id-ecPublicKey, secp384r1 }`
const ALG_P384: &[u8] = &[
    0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00,
    0x22,
];
/// `SEQUENCE { id-Ed25519 }`
const ALG_ED25519: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];
/// `SEQUENCE { rsaEncryption, NULL }`
const ALG_RSA: &[u8] =
    &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let be = len.to_be_bytes();
        let first = be.iter().position(|&b| b != 0).unwrap_or(be.len() - 1);
        out.push(0x80 | (be.len() - first) as u8);
        out.extend_from_slice(&be[first..]);
    }
    out.extend_from_slice(content);
    out
}

/// A DER INTEGER holding the unsigned big-endian `value`.
fn unsigned_integer(value: &[u8]) -> Vec<u8> {
    let first = value.iter().position(|&b| b != 0).unwrap_or(value.len().saturating_sub(1));
    let mut content = Vec::with_capacity(value.len() + 1);
    if value.get(first).is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(value.get(first..).unwrap_or_default());
    tlv(INTEGER, &content)
}

pub fn encode(key: &PublicKey) -> Vec<u8> {
    let (alg, subject_key) = match key {
        PublicKey::Es256 { x, y } => (ALG_P256, [&[0x04][..], x, y].concat()),
        PublicKey::Es384 { x, y } => (ALG_P384, [&[0x04][..], x, y].concat()),
        PublicKey::Ed25519 { x } => (ALG_ED25519, x.clone()),
        PublicKey::Rs256 { n, e } => {
            (ALG_RSA, tlv(SEQUENCE, &[unsigned_integer(n), unsigned_integer(e)].concat()))
        }
    };
    let bits = [&[0x00][..], &subject_key].concat();
    tlv(SEQUENCE, &[alg, &tlv(BIT_STRING, &bits)].concat())
}

/// The content of the TLV with `tag` at the start of `input`, and what follows it. Lengths are
/// read without checking their DER form: the caller re-encodes and compares.
fn read(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), KeyError> {
    let truncated = || KeyError("the SubjectPublicKeyInfo is truncated or not DER".into());
    let (&t, rest) = input.split_first().ok_or_else(truncated)?;
    if t != tag {
        return err(format!("the SubjectPublicKeyInfo has tag {t:#04x} where {tag:#04x} belongs"));
    }
    let (&first, mut rest) = rest.split_first().ok_or_else(truncated)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let width = usize::from(first & 0x7f);
        if width == 0 || width > 4 {
            return Err(truncated());
        }
        let (len_bytes, after) = rest.split_at_checked(width).ok_or_else(truncated)?;
        rest = after;
        len_bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    rest.split_at_checked(len).ok_or_else(truncated)
}

pub fn decode(der: &[u8]) -> Result<PublicKey, KeyError> {
    let (spki, after) = read(der, SEQUENCE)?;
    if !after.is_empty() {
        return err("the SubjectPublicKeyInfo is followed by extra bytes");
    }
    let alg_len = spki.len() - read(spki, SEQUENCE)?.1.len();
    let (alg, rest) = spki.split_at(alg_len);
    let (bits, after) = read(rest, BIT_STRING)?;
    if !after.is_empty() {
        return err("the SubjectPublicKeyInfo has extra fields");
    }
    let Some((0, subject_key)) = bits.split_first() else {
        return err("the SubjectPublicKeyInfo's key is not a whole number of bytes");
    };
    let point = |size: usize| -> Result<(Vec<u8>, Vec<u8>), KeyError> {
        match subject_key.split_first() {
            Some((0x04, xy)) if xy.len() == 2 * size => Ok((xy[..size].to_vec(), xy[size..].to_vec())),
            Some((0x02 | 0x03, _)) => err("compressed elliptic-curve points are not supported"),
            _ => err("the elliptic-curve point is malformed"),
        }
    };
    let key = if alg == ALG_P256 {
        let (x, y) = point(32)?;
        PublicKey::Es256 { x, y }
    } else if alg == ALG_P384 {
        let (x, y) = point(48)?;
        PublicKey::Es384 { x, y }
    } else if alg == ALG_ED25519 {
        PublicKey::Ed25519 { x: subject_key.to_vec() }
    } else if alg == ALG_RSA {
        let (seq, after) = read(subject_key, SEQUENCE)?;
        let (n, rest) = read(seq, INTEGER)?;
        let (e, rest) = read(rest, INTEGER)?;
        if !after.is_empty() || !rest.is_empty() {
            return err("the RSA key has extra fields");
        }
        // n is 256 bytes big-endian, as in COSE: DER drops its leading zero bytes.
        let n = n.strip_prefix(&[0]).unwrap_or(n);
        if n.len() > 256 {
            return err("unsupported RSA key size: use a 2048-bit key");
        }
        let n = [vec![0; 256 - n.len()], n.to_vec()].concat();
        let e = e.strip_prefix(&[0]).unwrap_or(e);
        if e.is_empty() || e.len() > 3 {
            return err("the RSA exponent is not 1 to 3 bytes");
        }
        let mut padded = [0u8; 3];
        padded[3 - e.len()..].copy_from_slice(e);
        PublicKey::Rs256 { n, e: padded }
    } else {
        return err("unsupported key algorithm: use an ES256, ES384, Ed25519 or RS256 key");
    };
    let key = key.checked()?;
    if encode(&key) != der {
        return err("the SubjectPublicKeyInfo is not in canonical DER");
    }
    Ok(key)
}
