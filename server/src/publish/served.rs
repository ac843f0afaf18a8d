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
    let Some(message) = &v.deprecated else {
        return v.manifest.clone();
    };
    let mut manifest: Value = serde_json::from_str(&v.manifest).unwrap_or(Value::Null);
    if let Some(obj) = manifest.as_object_mut() {
        obj.insert("deprecated".into(), json!(message));
    }
    manifest.to_string()
}

/// A version's manifest as served, parsed.
pub fn served_manifest(v: &VersionRow) -> Value {
    serde_json::from_str(&served_manifest_text(v)).unwrap_or(Value::Null)
}

fn quoted(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// The packument npm reads, as JSON text in pieces: each version's stored manifest text is moved
/// into its own piece, never copied or parsed (deprecated versions excepted), so a GET holds the
/// rows it read and little more while the pieces stream out.
pub fn packument(
    name: &str,
    versions: Vec<VersionRow>,
    dist_tags: &BTreeMap<String, String>,
    maintainers: &[(String, Option<String>)],
    created_at: i64,
    modified_at: i64,
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
    let _ = write!(
        head,
        "{{\"_id\":{},\"_rev\":{},\"name\":{},\"dist-tags\":{},\"versions\":{{",
        quoted(name),
        quoted(&format!("{total}-{modified_at}")),
        quoted(name),
        json!(dist_tags),
    );
    for (i, v) in served.into_iter().enumerate() {
        head.push_str(if i > 0 { "," } else { "" });
        head.push_str(&quoted(&v.version));
        head.push(':');
        pieces.push(Bytes::from(std::mem::take(&mut head)));
        pieces.push(Bytes::from(if v.deprecated.is_some() { served_manifest_text(&v) } else { v.manifest }));
    }
    // Each maintainer's verified alert address, as npm shows it (`npm view`, `npm owner ls`).
    let maintainers: Vec<Value> = maintainers
        .iter()
        .map(|(name, email)| match email {
            Some(email) => json!({ "name": name, "email": email }),
            None => json!({ "name": name }),
        })
        .collect();
    let _ =
        write!(head, "}},\"time\":{},\"maintainers\":{}}}", Value::Object(time), Value::Array(maintainers));
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
            packument("p", versions.to_vec(), &tags, &[("alice".into(), None)], 1, 2).concat();
        let doc: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
        assert_eq!(doc["name"], "p");
        assert_eq!(doc["dist-tags"]["latest"], "1.1.0");
        assert_eq!(doc["versions"]["1.0.0"]["deprecated"], "use \"2\"");
        assert_eq!(doc["versions"]["1.1.0"]["bin"]["p"], "x");
        assert!(doc["versions"].get("1.2.0").is_none(), "unpublished versions are not served");
        assert!(doc["time"].get("1.2.0").is_none());
        assert_eq!(doc["maintainers"][0]["name"], "alice");
        assert_eq!(doc["_rev"], "3-2");
    }
}
