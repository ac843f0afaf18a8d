//! Describing a publish to its approvers: what the uploaded tarball holds and what it changes
//! against the previous served version (files, dependencies, install scripts). The comparison
//! itself is [`tapgate_shared::publish_diff`], which the CLI runs on its own tarball too.
//!
//! Informational only: the approval binds the tarball's integrity, never this description. A
//! description that cannot be made (an old tarball the strict reader refuses) leaves a note.

use tapgate_shared::publish_diff::{Contents, PublishDiff, compare, previous_version};

use super::tarball::{self, TarballError};
use crate::state::AppState;
use crate::store::StoreError;

/// Describes `tarball`, compared with `previous` (version, tarball) when there is one.
pub fn describe(tarball: &[u8], previous: Option<(&str, &[u8])>) -> Result<PublishDiff, TarballError> {
    let (manifest, files) = tarball::contents(tarball)?;
    let new = Contents { files: &files, manifest: &manifest };
    let size = u64::try_from(tarball.len()).unwrap_or(u64::MAX);
    let Some((version, bytes)) = previous else {
        return Ok(compare(size, new, None));
    };
    match tarball::contents(bytes) {
        Ok((old_manifest, old_files)) => {
            Ok(compare(size, new, Some((version, Contents { files: &old_files, manifest: &old_manifest }))))
        }
        Err(e) => Ok(PublishDiff {
            note: Some(format!("not compared with {version}: its tarball cannot be read ({e})")),
            ..compare(size, new, None)
        }),
    }
}

/// Describes the upload of `package@version`, compared with the highest served version below it
/// (see [`previous_version`]). `None` when the upload cannot be described (logged).
pub async fn of_upload(
    state: &AppState,
    package: &str,
    version: &str,
    tarball: &[u8],
) -> Result<Option<PublishDiff>, StoreError> {
    let served = state.store.served_versions(package).await?;
    let previous = match previous_version(served.iter().map(String::as_str), version) {
        Some(v) => state.store.tarball(package, v).await?.map(|bytes| (v.to_string(), bytes)),
        None => None,
    };
    let tarball = tarball.to_vec();
    // Gunzipping and hashing both tarballs runs off the async workers.
    let described = tokio::task::spawn_blocking(move || {
        describe(&tarball, previous.as_ref().map(|(v, bytes)| (v.as_str(), bytes.as_slice())))
    })
    .await;
    match described {
        Ok(Ok(diff)) => Ok(Some(diff)),
        Ok(Err(e)) => {
            tracing::warn!(subject = %package, version = %version, error = %e, "publish not described");
            Ok(None)
        }
        Err(e) => {
            tracing::warn!(subject = %package, version = %version, error = %e, "publish not described");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tgz(files: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, format!("package/{path}"), data.as_bytes()).unwrap();
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &builder.into_inner().unwrap()).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn lists_files_with_sizes_and_hashes() {
        let manifest = json!({ "name": "x", "version": "1.0.0" }).to_string();
        let (parsed, files) =
            tarball::contents(&tgz(&[("package.json", &manifest), ("lib/a.js", "abc")])).unwrap();
        assert_eq!(parsed["name"], "x");
        let listed: Vec<(&str, u64)> = files.iter().map(|f| (f.path.as_str(), f.size)).collect();
        assert_eq!(listed, [("package.json", manifest.len() as u64), ("lib/a.js", 3)]);
        assert_eq!(files[1].sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn describes_against_the_previous_tarball() {
        let v1 = json!({ "name": "x", "version": "1.0.0" }).to_string();
        let v2 = json!({
            "name": "x", "version": "1.1.0",
            "scripts": { "postinstall": "node evil.js" }, "dependencies": { "left-pad": "^1.3.0" },
        })
        .to_string();
        let old = tgz(&[("package.json", &v1), ("index.js", "1"), ("old.js", "bye")]);
        let new = tgz(&[("package.json", &v2), ("index.js", "2")]);
        let diff = describe(&new, Some(("1.0.0", &old))).unwrap();
        assert_eq!(diff.tarball_size, new.len() as u64);
        assert_eq!(diff.previous_version.as_deref(), Some("1.0.0"));
        assert_eq!(diff.removed.items.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["old.js"]);
        let changed: Vec<&str> = diff.changed.items.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(changed, ["index.js", "package.json"]);
        assert_eq!(
            diff.install_script_changes().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["postinstall"]
        );
        assert_eq!(diff.dependencies.items[0].name, "left-pad");
        // An unreadable previous tarball leaves a note instead of a comparison.
        let diff = describe(&new, Some(("1.0.0", b"not a tarball"))).unwrap();
        assert!(diff.previous_version.is_none());
        assert!(diff.note.as_deref().unwrap().contains("1.0.0"), "{:?}", diff.note);
        assert!(describe(b"junk", None).is_err());
    }
}
