//! npm's publish document (`PUT /<name>`) in. What installers read back is in [`super::served`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};
use tapgate_shared::ErrorCode;
use tapgate_shared::intent::sri_sha512;

use crate::error::ApiError;
use crate::names::{validate_package_name, validate_tag, validate_version};
use crate::publish::tarball::TarballErrorKind;

/// A publish document, checked: one version, one tarball that matches what the document says.
#[derive(Debug, Clone)]
pub struct Upload {
    pub name: String,
    pub version: String,
    /// The tarball's own `package.json` (what the tap approved), before `_id` and `dist` are added.
    pub manifest: Map<String, Value>,
    pub tarball: Vec<u8>,
    pub integrity: String,
    pub shasum: String,
    pub tags: Vec<String>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::BadRequest, message)
}

fn mismatch(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::IntegrityMismatch, message)
}

/// Parses npm's document body (a packument, with or without attachments).
pub fn parse_document(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(ErrorCode::InvalidJson, format!("the body is not valid JSON: {e}"))
    })?;
    match doc {
        Value::Object(map) => Ok(map),
        _ => Err(bad("the body must be a JSON object (a packument)")),
    }
}

/// Whether a document carries a tarball (a publish) rather than metadata changes.
pub fn has_attachments(doc: &Map<String, Value>) -> bool {
    doc.get("_attachments").and_then(Value::as_object).is_some_and(|a| !a.is_empty())
}

/// Parses and checks npm's publish body for package `name` (from the URL).
pub fn parse_upload(name: &str, body: &[u8], max_tarball_bytes: usize) -> Result<Upload, ApiError> {
    parse_upload_document(name, &parse_document(body)?, max_tarball_bytes)
}

/// Checks a parsed publish document for package `name`.
pub fn parse_upload_document(
    name: &str,
    doc: &Map<String, Value>,
    max_tarball_bytes: usize,
) -> Result<Upload, ApiError> {
    validate_package_name(name).map_err(|m| ApiError::bad_request(ErrorCode::InvalidName, m))?;
    if let Some(doc_name) = doc.get("name").and_then(Value::as_str)
        && doc_name != name
    {
        return Err(bad(format!("the document names package {doc_name:?} but was sent to {name:?}")));
    }
    let versions = doc
        .get("versions")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("the publish body has no \"versions\" object"))?;
    if versions.len() != 1 {
        return Err(bad("publish exactly one version at a time"));
    }
    let Some((version, manifest)) = versions.iter().next() else {
        return Err(bad("the publish body has no version"));
    };
    validate_version(version).map_err(bad)?;
    let manifest = manifest.as_object().ok_or_else(|| bad("the version entry must be an object"))?.clone();
    if manifest.get("name").and_then(Value::as_str) != Some(name) {
        return Err(bad(format!("the version's manifest must have \"name\": {name:?}")));
    }
    if manifest.get("version").and_then(Value::as_str) != Some(version.as_str()) {
        return Err(bad(format!("the version's manifest must have \"version\": {version:?}")));
    }
    let attachments = doc
        .get("_attachments")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("the publish body has no \"_attachments\" (the tarball)"))?;
    if attachments.len() != 1 {
        return Err(bad("attach exactly one tarball"));
    }
    let Some((_, attachment)) = attachments.iter().next() else {
        return Err(bad("the publish body has no tarball"));
    };
    let data = attachment
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("the tarball attachment has no base64 \"data\""))?;
    if data.len() / 4 * 3 > max_tarball_bytes + 3 {
        return Err(too_large(max_tarball_bytes));
    }
    let tarball =
        STANDARD.decode(data).map_err(|e| bad(format!("the tarball attachment is not valid base64: {e}")))?;
    if tarball.len() > max_tarball_bytes {
        return Err(too_large(max_tarball_bytes));
    }
    if let Some(length) = attachment.get("length")
        && length.as_u64() != Some(tarball.len() as u64)
    {
        return Err(mismatch(format!(
            "the attachment says its length is {length} but the tarball has {} bytes",
            tarball.len()
        )));
    }
    let integrity = sri_sha512(&tarball);
    let shasum = hex::encode(Sha1::digest(&tarball));
    let dist = manifest.get("dist").and_then(Value::as_object);
    match dist.and_then(|d| d.get("integrity")).and_then(Value::as_str) {
        Some(declared) if declared != integrity => {
            return Err(mismatch(format!(
                "the tarball's integrity is {integrity} but the manifest declares {declared}: the upload was altered or corrupted"
            )));
        }
        _ => {}
    }
    match dist.and_then(|d| d.get("shasum")).and_then(Value::as_str) {
        Some(declared) if !declared.eq_ignore_ascii_case(&shasum) => {
            return Err(mismatch(format!(
                "the tarball's sha1 is {shasum} but the manifest declares {declared}"
            )));
        }
        _ => {}
    }
    let inner = super::tarball::manifest(&tarball).map_err(|e| {
        let code = match e.kind {
            TarballErrorKind::Malformed => ErrorCode::BadRequest,
            TarballErrorKind::Ambiguous => ErrorCode::AmbiguousTarball,
        };
        ApiError::bad_request(code, e.message)
    })?;
    let (inner_name, inner_version) =
        super::tarball::identity(&inner).map_err(|m| ApiError::bad_request(ErrorCode::BadRequest, m))?;
    if inner_name != name || inner_version != *version {
        return Err(mismatch(format!(
            "the tarball's package.json says {inner_name}@{inner_version}, not {name}@{version}"
        )));
    }
    let mut tags = Vec::new();
    if let Some(dist_tags) = doc.get("dist-tags").and_then(Value::as_object) {
        for (tag, target) in dist_tags {
            if target.as_str() == Some(version.as_str()) {
                validate_tag(tag).map_err(bad)?;
                tags.push(tag.clone());
            }
        }
    }
    if tags.is_empty() {
        tags.push("latest".into());
    }
    // What installers read (dependencies, scripts, bin…) comes from the approved tarball itself,
    // never from the upload's metadata, which the key tap does not cover.
    Ok(Upload {
        name: name.to_string(),
        version: version.clone(),
        manifest: inner,
        tarball,
        integrity,
        shasum,
        tags,
    })
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::PayloadTooLarge,
        format!("the tarball is larger than this registry accepts ({max} bytes)"),
    )
}

/// `https://registry/<name>/-/<bare>-<version>.tgz`
pub fn tarball_url(base: &str, name: &str, version: &str) -> String {
    let bare = name.rsplit('/').next().unwrap_or(name);
    format!("{}/{name}/-/{bare}-{version}.tgz", base.trim_end_matches('/'))
}

/// The stored manifest: the uploaded one with `_id` and `dist` set by the registry.
pub fn stored_manifest(upload: &Upload, base: &str) -> Value {
    let mut manifest = upload.manifest.clone();
    manifest.insert("_id".into(), json!(format!("{}@{}", upload.name, upload.version)));
    manifest.insert(
        "dist".into(),
        json!({
            "tarball": tarball_url(base, &upload.name, &upload.version),
            "integrity": upload.integrity,
            "shasum": upload.shasum,
        }),
    );
    Value::Object(manifest)
}
