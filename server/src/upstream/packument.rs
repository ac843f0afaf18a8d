//! An upstream packument, rebuilt from what it says rather than passed through: only versions
//! named as requested, with a checkable SHA-512 integrity and a tarball on the upstream itself;
//! tarball URLs rewritten to this registry; tags only to those versions.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Value, json};

use super::UpstreamError;
use crate::names::{validate_tag, validate_version};
use crate::publish::packument::tarball_url;
use crate::publish::served::{Form, abbreviate};

/// Where a served upstream version's tarball comes from, and what it must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The upstream's own URL for the tarball (on the upstream's origin).
    pub tarball: url::Url,
    /// `sha512-<base64>`, from the upstream's `dist.integrity`.
    pub integrity: String,
}

/// A rebuilt upstream packument.
#[derive(Debug)]
pub struct Rebuilt {
    pub document: Value,
    pub sources: BTreeMap<String, Source>,
}

/// The SHA-512 entry of an SRI string (`sha512-…`, 64 bytes), if it has one.
pub fn sha512_of(sri: &str) -> Option<String> {
    sri.split_whitespace().find_map(|token| {
        let b64 = token.strip_prefix("sha512-")?;
        let b64 = b64.split('?').next()?;
        let digest = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        (digest.len() == 64).then(|| format!("sha512-{b64}"))
    })
}

fn same_origin(a: &url::Url, b: &url::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Rebuilds `doc` (the upstream's answer for `name`) in `form`, its tarball URLs pointing at
/// `base` (this registry). A document for another name is refused whole; versions that cannot
/// be checked are left out.
pub fn rebuild(
    name: &str,
    doc: Value,
    form: Form,
    upstream: &url::Url,
    base: &str,
) -> Result<Rebuilt, UpstreamError> {
    let Value::Object(mut doc) = doc else {
        return Err(UpstreamError::Invalid(format!(
            "the upstream's packument of {name} is not a JSON object"
        )));
    };
    if doc.get("name").and_then(Value::as_str) != Some(name) {
        return Err(UpstreamError::Invalid(format!(
            "the upstream answered for {name} with a packument named {}",
            doc.get("name").map_or_else(|| "nothing".to_string(), Value::to_string)
        )));
    }
    let Some(Value::Object(versions)) = doc.remove("versions") else {
        return Err(UpstreamError::Invalid(format!("the upstream's packument of {name} has no versions")));
    };
    let mut served = Map::new();
    let mut sources = BTreeMap::new();
    for (version, manifest) in versions {
        let Value::Object(mut manifest) = manifest else { continue };
        if validate_version(&version).is_err()
            || manifest.get("name").and_then(Value::as_str) != Some(name)
            || manifest.get("version").and_then(Value::as_str) != Some(version.as_str())
        {
            continue;
        }
        let dist = manifest.get("dist").and_then(Value::as_object);
        let integrity = dist.and_then(|d| d.get("integrity")).and_then(Value::as_str).and_then(sha512_of);
        let tarball = dist
            .and_then(|d| d.get("tarball"))
            .and_then(Value::as_str)
            .and_then(|t| url::Url::parse(t).ok())
            .filter(|t| same_origin(t, upstream));
        let (Some(integrity), Some(tarball)) = (integrity, tarball) else { continue };
        let shasum = dist
            .and_then(|d| d.get("shasum"))
            .and_then(Value::as_str)
            .filter(|s| s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit()))
            .map(str::to_string);
        let mut ours = json!({ "tarball": tarball_url(base, name, &version), "integrity": integrity });
        if let (Some(shasum), Some(d)) = (shasum, ours.as_object_mut()) {
            d.insert("shasum".into(), Value::String(shasum));
        }
        manifest.insert("dist".into(), ours);
        manifest.insert("_id".into(), Value::String(format!("{name}@{version}")));
        let manifest = match form {
            Form::Full => Value::Object(manifest),
            Form::Abbreviated => abbreviate(&Value::Object(manifest)),
        };
        sources.insert(version.clone(), Source { tarball, integrity });
        served.insert(version, manifest);
    }
    let mut tags = Map::new();
    if let Some(Value::Object(upstream_tags)) = doc.get("dist-tags") {
        for (tag, target) in upstream_tags {
            if let Some(target) = target.as_str()
                && validate_tag(tag).is_ok()
                && served.contains_key(target)
            {
                tags.insert(tag.clone(), Value::String(target.to_string()));
            }
        }
    }
    let mut time = Map::new();
    if let Some(Value::Object(upstream_time)) = doc.get("time") {
        for (key, at) in upstream_time {
            if at.is_string() && (key == "created" || key == "modified" || served.contains_key(key)) {
                time.insert(key.clone(), at.clone());
            }
        }
    }
    let modified = doc.get("modified").filter(|m| m.is_string()).or_else(|| time.get("modified")).cloned();
    let mut out = Map::new();
    if form == Form::Full {
        out.insert("_id".into(), Value::String(name.to_string()));
    }
    out.insert("name".into(), Value::String(name.to_string()));
    if let Some(modified) = modified.filter(|_| form == Form::Abbreviated) {
        out.insert("modified".into(), modified);
    }
    out.insert("dist-tags".into(), Value::Object(tags));
    out.insert("versions".into(), Value::Object(served));
    if form == Form::Full {
        out.insert("time".into(), Value::Object(time));
        if let Some(description) = doc.get("description").filter(|d| d.is_string()) {
            out.insert("description".into(), description.clone());
        }
    }
    Ok(Rebuilt { document: Value::Object(out), sources })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRI: &str =
        "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==";

    fn upstream() -> url::Url {
        url::Url::parse("https://up.example/").unwrap_or_else(|e| panic!("{e}"))
    }

    fn version(name: &str, v: &str, tarball: &str) -> Value {
        json!({"name": name, "version": v, "readme": "r", "dependencies": {"a": "^1"},
               "dist": {"tarball": tarball, "integrity": format!("{SRI} sha1-x"), "signatures": [{"k": 1}]}})
    }

    #[test]
    fn only_checkable_versions_of_the_requested_name_are_served_through_this_registry() {
        let doc = json!({
            "name": "p",
            "dist-tags": {"latest": "1.0.0", "evil": "9.9.9", "next": "2.0.0"},
            "time": {"created": "c", "1.0.0": "t1", "9.9.9": "t9"},
            "versions": {
                "1.0.0": version("p", "1.0.0", "https://up.example/p/-/p-1.0.0.tgz"),
                "2.0.0": version("p", "2.0.0", "https://elsewhere.example/p-2.0.0.tgz"),
                "3.0.0": version("other", "3.0.0", "https://up.example/p/-/p-3.0.0.tgz"),
                "4.0.0": {"name": "p", "version": "4.0.0", "dist": {"tarball": "https://up.example/p/-/p-4.0.0.tgz", "shasum": "x"}},
                "5.0.0+b": version("p", "5.0.0+b", "https://up.example/p/-/p-5.0.0.tgz"),
            }
        });
        let r = rebuild("p", doc.clone(), Form::Abbreviated, &upstream(), "http://me:1")
            .unwrap_or_else(|e| panic!("{e}"));
        let d = &r.document;
        assert_eq!(d["versions"].as_object().map(Map::len), Some(1), "{d}");
        assert_eq!(d["versions"]["1.0.0"]["dist"]["tarball"], "http://me:1/p/-/p-1.0.0.tgz");
        assert_eq!(d["versions"]["1.0.0"]["dist"]["integrity"], SRI);
        assert!(d["versions"]["1.0.0"]["dist"].get("signatures").is_none());
        assert!(d["versions"]["1.0.0"].get("readme").is_none(), "abbreviated");
        assert_eq!(d["dist-tags"], json!({"latest": "1.0.0"}));
        assert_eq!(r.sources["1.0.0"].tarball.as_str(), "https://up.example/p/-/p-1.0.0.tgz");

        let r = rebuild("p", doc.clone(), Form::Full, &upstream(), "http://me:1")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.document["versions"]["1.0.0"]["readme"], "r");
        assert_eq!(r.document["time"], json!({"created": "c", "1.0.0": "t1"}));

        let err = rebuild("q", doc, Form::Full, &upstream(), "http://me:1").err();
        assert!(matches!(err, Some(UpstreamError::Invalid(_))), "a packument for another name is refused");
    }

    #[test]
    fn sha512_entries_are_picked_out_of_sri_strings() {
        assert_eq!(sha512_of(&format!("sha1-x {SRI}")).as_deref(), Some(SRI));
        assert_eq!(sha512_of("sha512-dG9vc2hvcnQ="), None);
        assert_eq!(sha512_of("sha256-x"), None);
    }
}
