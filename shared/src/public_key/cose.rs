//! COSE_Key (RFC 9052 §7, RFC 9053): a CBOR map from integer labels to the key's parameters.
//! Written in CTAP2's deterministic encoding; read strictly (definite lengths, shortest integer
//! forms, no duplicate labels), ignoring labels that do not change the key (e.g. `kid`).

use std::collections::BTreeMap;

use super::{KeyError, PublicKey, err};

const KTY: i64 = 1;
const ALG: i64 = 3;
const CRV_OR_N: i64 = -1;
const X_OR_E: i64 = -2;
const Y: i64 = -3;

const KTY_OKP: i64 = 1;
const KTY_EC2: i64 = 2;
const KTY_RSA: i64 = 3;

/// At most this many labels: a key has five; anything much larger is not a key.
const MAX_LABELS: u64 = 16;
/// Larger than any supported key's part.
const MAX_BYTES: u64 = 1024;

pub fn encode(key: &PublicKey) -> Vec<u8> {
    // Labels in CTAP2 canonical order: 1, 3, -1, -2, -3.
    let mut out = Vec::new();
    let int = |out: &mut Vec<u8>, v: i64| head_int(out, v);
    match key {
        PublicKey::Es256 { x, y } | PublicKey::Es384 { x, y } => {
            let (alg, crv) = if matches!(key, PublicKey::Es256 { .. }) { (-7, 1) } else { (-35, 2) };
            out.push(0xa5);
            for (label, value) in [(KTY, KTY_EC2), (ALG, alg), (CRV_OR_N, crv)] {
                int(&mut out, label);
                int(&mut out, value);
            }
            int(&mut out, X_OR_E);
            bytes(&mut out, x);
            int(&mut out, Y);
            bytes(&mut out, y);
        }
        PublicKey::Ed25519 { x } => {
            out.push(0xa4);
            for (label, value) in [(KTY, KTY_OKP), (ALG, -8), (CRV_OR_N, 6)] {
                int(&mut out, label);
                int(&mut out, value);
            }
            int(&mut out, X_OR_E);
            bytes(&mut out, x);
        }
        PublicKey::Rs256 { n, e } => {
            out.push(0xa4);
            for (label, value) in [(KTY, KTY_RSA), (ALG, -257)] {
                int(&mut out, label);
                int(&mut out, value);
            }
            int(&mut out, CRV_OR_N);
            bytes(&mut out, n);
            int(&mut out, X_OR_E);
            let first = e.iter().position(|&b| b != 0).unwrap_or(2);
            bytes(&mut out, &e[first..]);
        }
    }
    out
}

fn head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    match arg {
        0..=23 => out.push(m | arg as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, arg as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(arg as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(arg as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&arg.to_be_bytes());
        }
    }
}

fn head_int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 { head(out, 0, v.unsigned_abs()) } else { head(out, 1, (-1 - v).unsigned_abs()) }
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    head(out, 2, b.len() as u64);
    out.extend_from_slice(b);
}

/// One parameter value.
enum Item {
    Int(i64),
    Bytes(Vec<u8>),
    Other,
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, KeyError> {
        let b = *self.bytes.get(self.pos).ok_or_else(|| KeyError("the COSE key is truncated".into()))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&[u8], KeyError> {
        let n = usize::try_from(n).map_err(|_| KeyError("the COSE key is truncated".into()))?;
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| KeyError("the COSE key is truncated".into()))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// (major type, argument), refusing indefinite lengths and non-shortest forms.
    fn head(&mut self) -> Result<(u8, u64), KeyError> {
        let first = self.byte()?;
        let (major, info) = (first >> 5, first & 0x1f);
        let arg = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let width = 1u64 << (info - 24);
                let mut arg = 0u64;
                for &b in self.take(width)? {
                    arg = (arg << 8) | u64::from(b);
                }
                let shortest = match info {
                    24 => arg >= 24,
                    25 => arg > 0xff,
                    26 => arg > 0xffff,
                    _ => arg > 0xffff_ffff,
                };
                if !shortest {
                    return err("the COSE key is not in deterministic CBOR (a long integer form)");
                }
                arg
            }
            _ => return err("the COSE key uses indefinite lengths or reserved CBOR values"),
        };
        Ok((major, arg))
    }

    fn int(&mut self) -> Result<i64, KeyError> {
        match self.head()? {
            (0, v) => i64::try_from(v).map_err(|_| KeyError("a COSE label is out of range".into())),
            (1, v) => {
                i64::try_from(v).map(|v| -1 - v).map_err(|_| KeyError("a COSE label is out of range".into()))
            }
            _ => err("a COSE label is not an integer"),
        }
    }

    fn item(&mut self) -> Result<Item, KeyError> {
        let start = self.pos;
        let (major, arg) = self.head()?;
        match major {
            0 | 1 => {
                self.pos = start;
                Ok(Item::Int(self.int()?))
            }
            2 | 3 if arg <= MAX_BYTES => {
                let b = self.take(arg)?.to_vec();
                Ok(if major == 2 { Item::Bytes(b) } else { Item::Other })
            }
            7 if arg <= 23 => Ok(Item::Other),
            _ => err("the COSE key holds a value this reader does not take"),
        }
    }
}

pub fn decode(input: &[u8]) -> Result<(PublicKey, usize), KeyError> {
    let mut r = Reader { bytes: input, pos: 0 };
    let (major, n) = r.head()?;
    if major != 5 || n > MAX_LABELS {
        return err("a COSE key is a CBOR map of a few labels");
    }
    let mut map = BTreeMap::new();
    for _ in 0..n {
        let label = r.int()?;
        let value = r.item()?;
        if map.insert(label, value).is_some() {
            return err(format!("the COSE key repeats label {label}"));
        }
    }
    let int = |label| match map.get(&label) {
        Some(Item::Int(v)) => Ok(*v),
        _ => err(format!("the COSE key lacks integer label {label}")),
    };
    let bytes = |label| match map.get(&label) {
        Some(Item::Bytes(v)) => Ok(v.clone()),
        _ => err(format!("the COSE key lacks byte-string label {label}")),
    };
    let key = match (int(KTY)?, int(ALG)?) {
        (KTY_EC2, -7) if int(CRV_OR_N)? == 1 => PublicKey::Es256 { x: bytes(X_OR_E)?, y: bytes(Y)? },
        (KTY_EC2, -35) if int(CRV_OR_N)? == 2 => PublicKey::Es384 { x: bytes(X_OR_E)?, y: bytes(Y)? },
        (KTY_OKP, -8) if int(CRV_OR_N)? == 6 => PublicKey::Ed25519 { x: bytes(X_OR_E)? },
        (KTY_RSA, -257) => {
            let e = bytes(X_OR_E)?;
            if e.is_empty() || e.len() > 3 || e[0] == 0 {
                return err("the RSA exponent is not 1 to 3 bytes in shortest form");
            }
            let mut padded = [0u8; 3];
            padded[3 - e.len()..].copy_from_slice(&e);
            PublicKey::Rs256 { n: bytes(CRV_OR_N)?, e: padded }
        }
        (kty, alg) => {
            return err(format!("unsupported COSE key: type {kty}, algorithm {alg} (or its curve)"));
        }
    };
    Ok((key.checked()?, r.pos))
}
