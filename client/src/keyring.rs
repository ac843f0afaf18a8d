//! Keyrings: the security keys a verifier trusts, and whose they are.
//!
//! A keyring is a text file meant to be committed next to code, like git's allowed-signers file:
//!
//! ```text
//! # comments and blank lines are ignored
//! alice  <credential id, base64url>  spki:<DER SubjectPublicKeyInfo, base64>
//! bob    <credential id, base64url>  cose:<COSE_Key, base64url>
//! ```
//!
//! The user is the registry account name the key approves as. `tapgate verify` trusts the keys
//! in the user's own keyring (`keyring` in the config directory, where `tapgate key add` pins
//! the keys it enrolls) and in every file given with `--keyring`, and nothing else.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tapgate_shared::public_key::PublicKey;

/// WebAuthn credential ids are at most 1023 bytes.
const MAX_CREDENTIAL_ID: usize = 1023;

/// One trusted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The account the key approves as.
    pub user: String,
    pub credential_id: Vec<u8>,
    pub key: PublicKey,
    /// Where it was read: `FILE:LINE`.
    pub source: String,
}

impl Entry {
    /// The credential id as written in keyrings and records (base64url).
    pub fn credential_id_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.credential_id)
    }

    /// The entry as a keyring line (without newline).
    pub fn line(&self) -> String {
        line(&self.user, &self.credential_id, &self.key)
    }
}

/// A keyring line for a key.
pub fn line(user: &str, credential_id: &[u8], key: &PublicKey) -> String {
    format!("{user} {} spki:{}", URL_SAFE_NO_PAD.encode(credential_id), key.spki_base64())
}

/// A line that is not a keyring entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// The keys a verifier trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyring {
    entries: Vec<Entry>,
}

fn validate_user(user: &str) -> Result<(), String> {
    let valid_chars =
        user.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    let valid_start = user.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if user.len() > 64 || !valid_chars || !valid_start {
        return Err(format!(
            "{user:?} is not a registry user name (1 to 64 lowercase letters, digits, '-', '_' or '.')"
        ));
    }
    Ok(())
}

/// Reads a credential id (base64url, no padding).
pub fn parse_credential_id(text: &str) -> Result<Vec<u8>, String> {
    let id = URL_SAFE_NO_PAD.decode(text).map_err(|_| format!("credential id {text:?} is not base64url"))?;
    if id.is_empty() || id.len() > MAX_CREDENTIAL_ID {
        return Err(format!("credential id {text:?} is not 1 to {MAX_CREDENTIAL_ID} bytes"));
    }
    Ok(id)
}

/// Reads a key field: `spki:<base64 DER>` or `cose:<base64url COSE_Key>`.
pub fn parse_key(text: &str) -> Result<PublicKey, String> {
    if let Some(b64) = text.strip_prefix("spki:") {
        PublicKey::from_spki_base64(b64).map_err(|e| format!("the spki: key is unreadable: {e}"))
    } else if let Some(b64) = text.strip_prefix("cose:") {
        PublicKey::from_cose_base64url(b64).map_err(|e| format!("the cose: key is unreadable: {e}"))
    } else {
        Err(format!(
            "the key must start with spki: (DER SubjectPublicKeyInfo, base64) or cose: (COSE_Key, base64url), not {:?}",
            text.chars().take(12).collect::<String>()
        ))
    }
}

/// Reads one line: `None` for blank lines and comments.
fn parse_line(text: &str) -> Result<Option<(String, Vec<u8>, PublicKey)>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let fields: Vec<&str> = trimmed.split_whitespace().collect();
    let [user, credential_id, key] = fields[..] else {
        return Err(format!(
            "expected `USER CREDENTIAL_ID spki:KEY`, found {} field{}",
            fields.len(),
            if fields.len() == 1 { "" } else { "s" }
        ));
    };
    validate_user(user)?;
    Ok(Some((user.to_string(), parse_credential_id(credential_id)?, parse_key(key)?)))
}

impl Keyring {
    /// Parses a keyring's text; `source` names it in errors (a path).
    pub fn parse(text: &str, source: &str) -> Result<Keyring, ParseError> {
        let mut keyring = Keyring::default();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let fail = |message: String| ParseError { file: source.to_string(), line, message };
            let Some((user, credential_id, key)) = parse_line(raw).map_err(fail)? else {
                continue;
            };
            if let Some(earlier) = keyring.find(&credential_id) {
                return Err(fail(format!(
                    "credential {} is already listed at {}",
                    earlier.credential_id_text(),
                    earlier.source
                )));
            }
            keyring.entries.push(Entry { user, credential_id, key, source: format!("{source}:{line}") });
        }
        Ok(keyring)
    }

    /// Reads a keyring file.
    pub fn load(path: &Path) -> Result<Keyring> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the keyring {}", path.display()))?;
        Ok(Keyring::parse(&text, &path.display().to_string())?)
    }

    /// The user's own keyring; empty when there is none yet.
    pub fn load_own() -> Result<Keyring> {
        let path = own_path()?;
        if !path.exists() {
            return Ok(Keyring::default());
        }
        Keyring::load(&path)
    }

    /// The user's own keyring and each of `files`, as one. A credential listed twice must be the
    /// same key of the same user.
    pub fn load_all(files: &[PathBuf]) -> Result<Keyring> {
        let mut keyring = Keyring::load_own()?;
        for file in files {
            keyring.merge(Keyring::load(file)?)?;
        }
        Ok(keyring)
    }

    /// Adds `other`'s entries.
    pub fn merge(&mut self, other: Keyring) -> Result<()> {
        for entry in other.entries {
            match self.find(&entry.credential_id) {
                Some(known) if known.user == entry.user && known.key == entry.key => {}
                Some(known) => bail!(
                    "credential {} is listed as {}'s at {} but differently ({}'s, {} key) at {}: fix one of them",
                    entry.credential_id_text(),
                    known.user,
                    known.source,
                    entry.user,
                    if known.key == entry.key { "the same" } else { "another" },
                    entry.source
                ),
                None => self.entries.push(entry),
            }
        }
        Ok(())
    }

    /// The entry trusted for a credential id.
    pub fn find(&self, credential_id: &[u8]) -> Option<&Entry> {
        self.entries.iter().find(|e| e.credential_id == credential_id)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The user's own keyring: `keyring` in the config directory (see [`crate::credentials`]).
pub fn own_path() -> Result<PathBuf> {
    Ok(crate::credentials::config_dir()?.join("keyring"))
}

const HEADER: &str = "\
# tapgate keyring: the security keys `tapgate verify` trusts, one per line:
#   USER CREDENTIAL_ID spki:<DER SubjectPublicKeyInfo, base64>   (or cose:<COSE_Key, base64url>)
";

/// What adding a key to a keyring did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Added,
    AlreadyTrusted,
}

/// Adds a key to the keyring at `path` (created if missing). Refuses a credential id the file
/// already lists for another user or key.
pub fn add_to(path: &Path, user: &str, credential_id: &[u8], key: &PublicKey) -> Result<Added> {
    validate_user(user).map_err(anyhow::Error::msg)?;
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HEADER.to_string(),
        Err(e) => return Err(e).with_context(|| format!("cannot read the keyring {}", path.display())),
    };
    let keyring = Keyring::parse(&text, &path.display().to_string())?;
    if let Some(known) = keyring.find(credential_id) {
        if known.user == user && &known.key == key {
            return Ok(Added::AlreadyTrusted);
        }
        bail!(
            "{} already trusts credential {} as {}'s{}; remove it first with `tapgate keyring remove {}` if that entry is wrong",
            known.source,
            known.credential_id_text(),
            known.user,
            if &known.key == key { "" } else { " with another public key" },
            known.credential_id_text()
        );
    }
    let mut text = text;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&line(user, credential_id, key));
    text.push('\n');
    write(path, &text)?;
    Ok(Added::Added)
}

/// Removes every line for `credential_id` from the keyring at `path`; how many were removed.
/// Comments and other lines are kept as they are.
pub fn remove_from(path: &Path, credential_id: &[u8]) -> Result<usize> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the keyring {}", path.display()))?;
    Keyring::parse(&text, &path.display().to_string())?;
    let mut kept = String::with_capacity(text.len());
    let mut removed = 0;
    for raw in text.lines() {
        match parse_line(raw) {
            Ok(Some((_, id, _))) if id == credential_id => removed += 1,
            _ => {
                kept.push_str(raw);
                kept.push('\n');
            }
        }
    }
    if removed > 0 {
        write(path, &kept)?;
    }
    Ok(removed)
}

/// Writes a keyring atomically (public keys: readable by others is fine).
pub fn write(path: &Path, text: &str) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write a keyring in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> PublicKey {
        PublicKey::Es256 { x: vec![b; 32], y: vec![b; 32] }
    }

    #[test]
    fn parses_lines_comments_and_both_key_forms() {
        let text = format!(
            "# team keys\n\n  alice AQID spki:{}\nbob BAUG cose:{}  \n",
            key(1).spki_base64(),
            key(2).cose_base64url()
        );
        let keyring = Keyring::parse(&text, "k").unwrap();
        let e = keyring.entries();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].user.as_str(), e[0].credential_id.as_slice(), &e[0].key),
            ("alice", &[1u8, 2, 3][..], &key(1))
        );
        assert_eq!(e[0].source, "k:3");
        assert_eq!((e[1].user.as_str(), &e[1].key, e[1].source.as_str()), ("bob", &key(2), "k:4"));
        assert_eq!(keyring.find(&[4, 5, 6]).unwrap().user, "bob");
        assert_eq!(Keyring::parse(&format!("{}\n", e[0].line()), "x").unwrap().entries()[0].key, key(1));
    }

    #[test]
    fn errors_name_the_line() {
        let good = format!("alice AQID spki:{}", key(1).spki_base64());
        let cases = [
            (format!("# c\n{good}\nalice AQID\n"), 3, "found 2 fields"),
            (format!("{good} extra\n"), 1, "found 4 fields"),
            (format!("\n\nAlice AQID spki:{}\n", key(1).spki_base64()), 3, "not a registry user name"),
            ("alice AQ+D spki:AAAA\n".to_string(), 1, "not base64url"),
            ("alice AQID pem:AAAA\n".to_string(), 1, "must start with spki:"),
            ("alice AQID spki:AAAA\n".to_string(), 1, "the spki: key is unreadable"),
            ("alice AQID cose:AAAA\n".to_string(), 1, "the cose: key is unreadable"),
            (format!("{good}\n{good}\n"), 2, "already listed at f:1"),
        ];
        for (text, line, message) in cases {
            let err = Keyring::parse(&text, "f").unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(err.message.contains(message), "{text:?}: {err}");
            assert!(err.to_string().starts_with(&format!("f:{line}: ")), "{err}");
        }
    }

    #[test]
    fn merging_refuses_conflicting_entries() {
        let a = Keyring::parse(&format!("alice AQID spki:{}\n", key(1).spki_base64()), "a").unwrap();
        let mut merged = a.clone();
        merged.merge(a.clone()).unwrap();
        assert_eq!(merged.entries().len(), 1);
        for other in [
            format!("bob AQID spki:{}\n", key(1).spki_base64()),
            format!("alice AQID spki:{}\n", key(2).spki_base64()),
        ] {
            let b = Keyring::parse(&other, "b").unwrap();
            let err = a.clone().merge(b).unwrap_err().to_string();
            assert!(err.contains("at a:1") && err.contains("at b:1"), "{err}");
        }
    }

    #[test]
    fn add_and_remove_keep_the_rest_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("keyring");
        assert_eq!(add_to(&path, "alice", &[1, 2, 3], &key(1)).unwrap(), Added::Added);
        assert_eq!(add_to(&path, "alice", &[1, 2, 3], &key(1)).unwrap(), Added::AlreadyTrusted);
        assert!(
            add_to(&path, "bob", &[1, 2, 3], &key(1)).unwrap_err().to_string().contains("already trusts")
        );
        assert!(
            add_to(&path, "alice", &[1, 2, 3], &key(2))
                .unwrap_err()
                .to_string()
                .contains("another public key")
        );
        add_to(&path, "bob", &[4, 5, 6], &key(2)).unwrap();
        assert_eq!(Keyring::load(&path).unwrap().entries().len(), 2);
        assert_eq!(remove_from(&path, &[1, 2, 3]).unwrap(), 1);
        assert_eq!(remove_from(&path, &[1, 2, 3]).unwrap(), 0);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# tapgate keyring"), "{text}");
        let left = Keyring::load(&path).unwrap();
        assert_eq!(left.entries().len(), 1);
        assert_eq!(left.entries()[0].user, "bob");
    }
}
