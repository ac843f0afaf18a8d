//! Reading the `package.json` inside a tarball, with bounded decompression.

use std::io::Read;

/// Decompression stops after this many bytes: a gzip bomb cannot exhaust memory or time.
const MAX_UNPACKED_BYTES: u64 = 512 * 1024 * 1024;
/// A package.json larger than this is refused.
const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// The `name` and `version` a tarball's `package.json` (from [`manifest`]) declares.
pub fn identity(manifest: &serde_json::Map<String, serde_json::Value>) -> Result<(String, String), String> {
    let field = |k: &str| manifest.get(k).and_then(|v| v.as_str()).map(str::to_string);
    match (field("name"), field("version")) {
        (Some(name), Some(version)) => Ok((name, version)),
        _ => Err("package.json in the tarball has no name or version".into()),
    }
}

/// The tarball's top-level `package.json` (`<dir>/package.json`) as npm would install it: when
/// several are present, the last one wins, as it does on extraction.
pub fn manifest(tarball: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let gz = flate2::read::GzDecoder::new(tarball).take(MAX_UNPACKED_BYTES);
    let mut archive = tar::Archive::new(gz);
    let entries = archive.entries().map_err(|e| format!("the tarball is not a gzipped tar archive: {e}"))?;
    let mut found = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("the tarball is corrupt: {e}"))?;
        let path = entry.path().map_err(|e| format!("the tarball has a bad path: {e}"))?.into_owned();
        let parts: Vec<_> = path.components().collect();
        if parts.len() == 2 && parts[1].as_os_str() == "package.json" {
            let mut text = String::new();
            (&mut entry)
                .take(MAX_MANIFEST_BYTES)
                .read_to_string(&mut text)
                .map_err(|e| format!("package.json in the tarball is unreadable: {e}"))?;
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("package.json in the tarball is not JSON: {e}"))?;
            found = Some(json.as_object().cloned().ok_or("package.json in the tarball is not an object")?);
        }
    }
    found.ok_or_else(|| "the tarball has no package.json at its top level".into())
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A gzipped tarball holding `package/package.json` with the given content (test helper).
    pub fn tarball_with(package_json: &str) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(package_json.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, "package/package.json", package_json.as_bytes()).unwrap();
        let tar = builder.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn reads_name_and_version() {
        let t = tarball_with(r#"{"name":"x","version":"1.0.0"}"#);
        assert_eq!(identity(&manifest(&t).unwrap()).unwrap(), ("x".into(), "1.0.0".into()));
    }

    #[test]
    fn refuses_garbage_and_missing_manifest() {
        assert!(manifest(b"not gzip").is_err());
        assert!(manifest(&tarball_with("{")).is_err());
        assert!(identity(&manifest(&tarball_with(r#"{"name":"x"}"#)).unwrap()).is_err());
    }
}
