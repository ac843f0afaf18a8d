//! PAX extended headers and GNU long names, read as node-tar reads them, and only where every
//! reader reads them alike: well-formed records, keys node-tar writes, no key twice.

use super::TarballError;

/// An extended header's body larger than this is refused (node-tar ignores those over 1 MiB).
pub(super) const MAX_BODY: u64 = 16 * 1024;

/// Where an entry's path was overridden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    Pax,
    GnuLongName,
}

impl Source {
    pub fn describe(self) -> &'static str {
        match self {
            Source::Pax => "PAX header",
            Source::GnuLongName => "GNU long-name header",
        }
    }
}

/// What an extended header says about the next entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Extension {
    pub source: Source,
    pub path: Option<String>,
    pub size: Option<u64>,
}

/// Keys allowed in a PAX header for the next entry: those node-tar's writer emits for files and
/// folders (`linkpath`, `type`, `mode` and vendor keys such as `GNU.sparse.*` change what some
/// readers unpack and are refused).
const LOCAL_KEYS: &[&str] = &[
    "path",
    "size",
    "mtime",
    "atime",
    "ctime",
    "uid",
    "gid",
    "uname",
    "gname",
    "charset",
    "comment",
    "SCHILY.dev",
    "SCHILY.ino",
    "SCHILY.nlink",
];

/// Keys allowed in a global PAX header (`git archive` writes a commit id as a comment).
const GLOBAL_KEYS: &[&str] = &["comment"];

/// A PAX extended header (`x`) body.
pub(super) fn pax(body: &[u8]) -> Result<Extension, TarballError> {
    let mut extension = Extension { source: Source::Pax, path: None, size: None };
    for (key, value) in records(body, LOCAL_KEYS)? {
        let valid = match key {
            "path" => {
                extension.path = Some(value.to_string());
                !value.is_empty()
            }
            "size" => {
                extension.size = decimal(value);
                extension.size.is_some()
            }
            "mtime" | "atime" | "ctime" => is_time(value),
            "uid" | "gid" | "SCHILY.dev" | "SCHILY.ino" | "SCHILY.nlink" => decimal(value).is_some(),
            _ => true,
        };
        if !valid {
            return Err(TarballError::ambiguous(format!(
                "a PAX header in the tarball has a malformed {key} value ({value:?})"
            )));
        }
    }
    Ok(extension)
}

/// A global PAX header (`g`) body: only a comment, which changes no entry.
pub(super) fn global_pax(body: &[u8]) -> Result<(), TarballError> {
    records(body, GLOBAL_KEYS).map(|_| ())
}

/// A GNU long name (`L`) body: the path, optionally followed by one NUL.
pub(super) fn long_name(body: &[u8]) -> Result<Extension, TarballError> {
    let path = body.strip_suffix(b"\0").unwrap_or(body);
    let path = std::str::from_utf8(path)
        .ok()
        .filter(|p| !p.is_empty() && !p.contains('\0'))
        .ok_or_else(|| TarballError::ambiguous("a GNU long-name header in the tarball is malformed"))?;
    Ok(Extension { source: Source::GnuLongName, path: Some(path.to_string()), size: None })
}

/// Splits a PAX body into `(key, value)` records: `"<len> <key>=<value>\n"`, `len` in decimal
/// without leading zeros and counting the whole record, no newline or NUL inside (node-tar
/// splits on newlines and cuts at NULs; other readers go by the length), each key once.
fn records<'a>(body: &'a [u8], allowed: &[&str]) -> Result<Vec<(&'a str, &'a str)>, TarballError> {
    let malformed = || TarballError::ambiguous("a PAX header in the tarball is malformed");
    let text = std::str::from_utf8(body).map_err(|_| malformed())?;
    if text.is_empty() || text.contains('\0') {
        return Err(malformed());
    }
    let mut rest = text;
    let mut out: Vec<(&str, &str)> = Vec::new();
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || rest.starts_with('0') || rest.as_bytes().get(digits) != Some(&b' ') {
            return Err(malformed());
        }
        let len: usize = rest[..digits].parse().map_err(|_| malformed())?;
        if len <= digits + 2 || len > rest.len() || !rest.is_char_boundary(len) {
            return Err(malformed());
        }
        let record = &rest[digits + 1..len];
        let content = record.strip_suffix('\n').ok_or_else(malformed)?;
        if content.contains('\n') {
            return Err(malformed());
        }
        let (key, value) = content.split_once('=').ok_or_else(malformed)?;
        if !allowed.contains(&key) {
            return Err(TarballError::ambiguous(format!(
                "a PAX header in the tarball sets {key:?}, which tar readers treat differently"
            )));
        }
        if out.iter().any(|(k, _)| *k == key) {
            return Err(TarballError::ambiguous(format!("a PAX header in the tarball sets {key:?} twice")));
        }
        out.push((key, value));
        rest = &rest[len..];
    }
    Ok(out)
}

/// A plain decimal: digits only, no leading zero (but `0` itself).
fn decimal(value: &str) -> Option<u64> {
    let plain = !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit())
        && (value == "0" || !value.starts_with('0'));
    if plain { value.parse().ok() } else { None }
}

/// A PAX time: optional minus, digits, optional fraction.
fn is_time(value: &str) -> bool {
    let unsigned = value.strip_prefix('-').unwrap_or(value);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    [whole, fraction].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}
