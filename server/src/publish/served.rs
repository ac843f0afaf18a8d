//! What installers read: the packument (`GET /<name>`) and one version's manifest.
//!
//! The packument is written straight from the stored manifest texts, without parsing them into
//! JSON trees: one GET costs the rows it reads plus the document it sends, whatever the number
//! and size of versions (each stored manifest is capped at [`MAX_STORED_MANIFEST_BYTES`]).

use std::collections::BTreeMap;
use std::fmt::Write;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::clock::rfc3339;
use crate::store::packages::VersionRow;

/// The largest manifest (the tarball's package.json plus `_id` and `dist`) stored for a version.
pub const MAX_STORED_MANIFEST_BYTES: usize = 256 * 1024;

/// A version's manifest as served: the stored text, with its deprecation message when it has
/// one.
pub fn served_manifest_text(v: &VersionRow) -> String {
    with_deprecation(&v.manifest, v.deprecated.as_deref())
}

/// A version's manifest as served, parsed.
pub fn served_manifest(v: &VersionRow) -> Value {
    serde_json::from_str(&served_manifest_text(v)).unwrap_or(Value::Null)
}

fn quoted(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// The fields of a version installers read from the abbreviated packument
/// (`application/vnd.npm.install-v1+json`), as npm's registry serves them.
const ABBREVIATED_FIELDS: &[&str] = &[
    "name",
    "version",
    "deprecated",
    "dependencies",
    "optionalDependencies",
    "devDependencies",
    "bundleDependencies",
    "bundledDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "acceptDependencies",
    "bin",
    "directories",
    "dist",
    "engines",
    "cpu",
    "os",
    "libc",
    "funding",
    "license",
    "_hasShrinkwrap",
];

/// A version's abbreviated manifest, from its full one: the fields installers read, and
/// `hasInstallScript` when the package runs code at install time.
pub fn abbreviate(manifest: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for field in ABBREVIATED_FIELDS {
        if let Some(value) = manifest.get(*field) {
            out.insert((*field).to_string(), value.clone());
        }
    }
    let scripts = manifest.get("scripts").and_then(Value::as_object);
    if scripts.is_some_and(|s| ["preinstall", "install", "postinstall"].iter().any(|k| s.contains_key(*k))) {
        out.insert("hasInstallScript".into(), Value::Bool(true));
    }
    Value::Object(out)
}

/// Which packument a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    Full,
    /// `Accept: application/vnd.npm.install-v1+json`.
    Abbreviated,
}

impl Form {
    pub fn content_type(self) -> &'static str {
        match self {
            Form::Full => "application/json",
            Form::Abbreviated => "application/vnd.npm.install-v1+json",
        }
    }
}

fn with_deprecation(text: &str, deprecated: Option<&str>) -> String {
    let Some(message) = deprecated else {
        return text.to_string();
    };
    let mut manifest: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    if let Some(obj) = manifest.as_object_mut() {
        obj.insert("deprecated".into(), json!(message));
    }
    manifest.to_string()
}

/// The text a version contributes to a packument of `form`, taking the row's stored text
/// (never copied or parsed unless it is deprecated, or its abbreviation predates storage).
fn version_text(v: VersionRow, form: Form) -> String {
    let text = match form {
        Form::Full => v.manifest,
        Form::Abbreviated => match v.abbreviated {
            Some(text) => text,
            None => abbreviate(&serde_json::from_str(&v.manifest).unwrap_or(Value::Null)).to_string(),
        },
    };
    match v.deprecated.as_deref() {
        Some(message) => with_deprecation(&text, Some(message)),
        None => text,
    }
}

/// A validator for a packument: changes whenever any of its parts does (versions, their
/// deprecation, tags, maintainers), computed without building the document.
pub fn etag(
    name: &str,
    versions: &[VersionRow],
    dist_tags: &BTreeMap<String, String>,
    maintainers: &[(String, Option<String>)],
    modified_at: i64,
    form: Form,
) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(format!("{name}\0{modified_at}\0{form:?}\0"));
    for v in versions.iter().filter(|v| v.unpublished_at.is_none()) {
        h.update(format!("{}\0{}\0{}\0", v.version, v.integrity, v.deprecated.as_deref().unwrap_or("")));
    }
    h.update(json!(dist_tags).to_string());
    h.update(json!(maintainers).to_string());
    let digest: [u8; 32] = h.finalize().into();
    format!("W/\"{}\"", hex::encode(&digest[..16]))
}

/// The packument npm reads, as JSON text in pieces: each version's stored text is moved into its
/// own piece, so a GET holds the rows it read and little more while the pieces stream out.
pub fn packument(
    name: &str,
    versions: Vec<VersionRow>,
    dist_tags: &BTreeMap<String, String>,
    maintainers: &[(String, Option<String>)],
    created_at: i64,
    modified_at: i64,
    form: Form,
) -> Vec<Bytes> {
    let total = versions.len();
    let served: Vec<VersionRow> = versions.into_iter().filter(|v| v.unpublished_at.is_none()).collect();
    let mut time = serde_json::Map::new();
    time.insert("created".into(), json!(rfc3339(created_at)));
    time.insert("modified".into(), json!(rfc3339(modified_at)));
    for v in &served {
        time.insert(v.version.clone(), json!(rfc3339(v.published_at)));
    }
    let mut pieces = Vec::with_capacity(served.len() * 2 + 2);
    let mut head = String::new();
    match form {
        Form::Full => {
            let _ = write!(
                head,
                "{{\"_id\":{},\"_rev\":{},\"name\":{},\"dist-tags\":{},\"versions\":{{",
                quoted(name),
                quoted(&format!("{total}-{modified_at}")),
                quoted(name),
                json!(dist_tags),
            );
        }
        Form::Abbreviated => {
            let _ = write!(
                head,
                "{{\"name\":{},\"modified\":{},\"dist-tags\":{},\"versions\":{{",
                quoted(name),
                json!(rfc3339(modified_at)),
                json!(dist_tags),
            );
        }
    }
    for (i, v) in served.into_iter().enumerate() {
        head.push_str(if i > 0 { "," } else { "" });
        head.push_str(&quoted(&v.version));
        head.push(':');
        pieces.push(Bytes::from(std::mem::take(&mut head)));
        pieces.push(Bytes::from(version_text(v, form)));
    }
    match form {
        Form::Full => {
            // Each maintainer's verified alert address, as npm shows it (`npm view`, `npm owner ls`).
            let maintainers: Vec<Value> = maintainers
                .iter()
                .map(|(name, email)| match email {
                    Some(email) => json!({ "name": name, "email": email }),
                    None => json!({ "name": name }),
                })
                .collect();
            let _ = write!(
                head,
                "}},\"time\":{},\"maintainers\":{}}}",
                Value::Object(time),
                Value::Array(maintainers)
            );
        }
        Form::Abbreviated => head.push_str("}}"),
    }
    pieces.push(Bytes::from(head));
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(version: &str, manifest: &str, deprecated: Option<&str>, unpublished: bool) -> VersionRow {
        VersionRow {
            version: version.into(),
            manifest: manifest.into(),
            integrity: "sha512-x".into(),
            shasum: "s".into(),
            size: 1,
            published_at: 1_800_000_000,
            approval_id: None,
            deprecated: deprecated.map(Into::into),
            unpublished_at: unpublished.then_some(1_800_000_001),
            abbreviated: None,
        }
    }

    #[test]
    fn the_text_is_the_json_npm_expects() {
        let versions = [
            row("1.0.0", r#"{"name":"p","version":"1.0.0"}"#, Some("use \"2\""), false),
            row("1.1.0", r#"{"name":"p","version":"1.1.0","bin":{"p":"x"}}"#, None, false),
            row("1.2.0", r#"{"name":"p","version":"1.2.0"}"#, None, true),
        ];
        let tags = BTreeMap::from([("latest".to_string(), "1.1.0".to_string())]);
        let text: Vec<u8> =
            packument("p", versions.to_vec(), &tags, &[("alice".into(), None)], 1, 2, Form::Full).concat();
        let doc: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
        assert_eq!(doc["name"], "p");
        assert_eq!(doc["dist-tags"]["latest"], "1.1.0");
        assert_eq!(doc["versions"]["1.0.0"]["deprecated"], "use \"2\"");
        assert_eq!(doc["versions"]["1.1.0"]["bin"]["p"], "x");
        assert!(doc["versions"].get("1.2.0").is_none(), "unpublished versions are not served");
        assert!(doc["time"].get("1.2.0").is_none());
        assert_eq!(doc["maintainers"][0]["name"], "alice");
        assert_eq!(doc["_rev"], "3-2");

        let text: Vec<u8> = packument("p", versions.to_vec(), &tags, &[], 1, 2, Form::Abbreviated).concat();
        let doc: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
        assert_eq!(doc["modified"], rfc3339(2));
        assert_eq!(doc["versions"]["1.1.0"], json!({"name": "p", "version": "1.1.0", "bin": {"p": "x"}}));
        assert_eq!(doc["versions"]["1.0.0"]["deprecated"], "use \"2\"");
        assert!(doc.get("time").is_none() && doc.get("maintainers").is_none());
        let e1 = etag("p", &versions, &tags, &[("alice".into(), None)], 2, Form::Full);
        assert_ne!(e1, etag("p", &versions, &tags, &[("alice".into(), None)], 2, Form::Abbreviated));
        assert_ne!(
            e1,
            etag("p", &versions, &tags, &[("bob".into(), None)], 2, Form::Full),
            "maintainers change it"
        );
        let mut undeprecated = versions.to_vec();
        undeprecated[0].deprecated = None;
        assert_ne!(e1, etag("p", &undeprecated, &tags, &[("alice".into(), None)], 2, Form::Full));
    }

    #[test]
    fn abbreviation_keeps_what_installers_read() {
        let full = json!({"name": "p", "version": "1.0.0", "readme": "long", "scripts": {"postinstall": "x", "test": "y"},
            "dependencies": {"a": "^1"}, "dist": {"integrity": "sha512-x"}, "description": "d"});
        let short = abbreviate(&full);
        assert_eq!(
            short,
            json!({"name": "p", "version": "1.0.0", "dependencies": {"a": "^1"},
            "dist": {"integrity": "sha512-x"}, "hasInstallScript": true})
        );
    }
}
