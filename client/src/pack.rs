//! Turning a directory into the tarball npm would publish (by running `npm pack`), and reading
//! a tarball's `package.json` and file list.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tapgate_shared::publish_diff::PackageFile;

/// A tarball ready to publish.
pub struct Packed {
    pub bytes: Vec<u8>,
    pub manifest: serde_json::Map<String, Value>,
    pub name: String,
    pub version: String,
}

/// Packs `path` (a directory, via `npm pack`) or reads it (a `.tgz` file).
pub fn pack(path: &Path) -> Result<Packed> {
    let bytes = if path.is_dir() {
        npm_pack(path)?
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let manifest = read_manifest(&bytes)?;
    let field = |k: &str| manifest.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(name), Some(version)) = (field("name"), field("version")) else {
        bail!("package.json needs a name and a version");
    };
    Ok(Packed { bytes, manifest, name, version })
}

/// Runs `npm pack` in `dir` exactly as a publish would, into a temporary directory.
fn npm_pack(dir: &Path) -> Result<Vec<u8>> {
    let out_dir = tempfile::tempdir()?;
    let output = Command::new("npm")
        .args(["pack", "--json", "--ignore-scripts", "--pack-destination"])
        .arg(out_dir.path())
        .current_dir(dir)
        .output()
        .context("cannot run `npm pack`: is npm installed and on PATH?")?;
    if !output.status.success() {
        bail!("`npm pack` failed in {}: {}", dir.display(), String::from_utf8_lossy(&output.stderr).trim());
    }
    let listing: Value =
        serde_json::from_slice(&output.stdout).context("`npm pack --json` printed something unexpected")?;
    let filename = listing
        .get(0)
        .and_then(|e| e.get("filename"))
        .and_then(Value::as_str)
        .context("`npm pack --json` named no tarball")?;
    let file: PathBuf = out_dir.path().join(filename);
    std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))
}

/// The top-level `package.json` of a gzipped tarball.
pub fn read_manifest(tarball: &[u8]) -> Result<serde_json::Map<String, Value>> {
    let gz = flate2::read::GzDecoder::new(tarball).take(512 * 1024 * 1024);
    let mut archive = tar::Archive::new(gz);
    for entry in archive.entries().context("not a gzipped tarball")? {
        let mut entry = entry.context("corrupt tarball")?;
        let path = entry.path()?.into_owned();
        let parts: Vec<_> = path.components().collect();
        if parts.len() == 2 && parts[1].as_os_str() == "package.json" {
            let mut text = String::new();
            (&mut entry).take(1024 * 1024).read_to_string(&mut text)?;
            let json: Value = serde_json::from_str(&text).context("package.json is not JSON")?;
            return json.as_object().cloned().context("package.json is not an object");
        }
    }
    bail!("the tarball has no package.json at its top level")
}

/// More entries than this are not read (the registry refuses such tarballs anyway).
const MAX_ENTRIES: usize = 100_000;

/// The regular files of a gzipped tarball as npm unpacks them (the top folder stripped), with
/// sizes and content hashes; and its top-level `package.json`, parsed.
pub fn contents(tarball: &[u8]) -> Result<(serde_json::Map<String, Value>, Vec<PackageFile>)> {
    let gz = flate2::read::GzDecoder::new(tarball).take(512 * 1024 * 1024);
    let mut archive = tar::Archive::new(gz);
    let mut files = Vec::new();
    let mut manifest = None;
    for entry in archive.entries().context("not a gzipped tarball")? {
        let mut entry = entry.context("corrupt tarball")?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        if files.len() >= MAX_ENTRIES {
            bail!("the tarball holds more than {MAX_ENTRIES} files");
        }
        let path = entry.path()?.to_string_lossy().into_owned();
        let Some((_, inside)) = path.split_once('/') else { continue };
        let inside = inside.to_string();
        let mut hasher = Sha256::new();
        let mut body = Vec::new();
        let size = entry.size();
        if inside == "package.json" {
            (&mut entry).take(1024 * 1024).read_to_end(&mut body)?;
            hasher.update(&body);
        } else {
            std::io::copy(&mut entry, &mut HashWriter(&mut hasher))?;
        }
        if inside == "package.json" {
            let json: Value = serde_json::from_slice(&body).context("package.json is not JSON")?;
            manifest = Some(json.as_object().cloned().context("package.json is not an object")?);
        }
        files.push(PackageFile { path: inside, size, sha256: hex::encode(hasher.finalize()) });
    }
    let manifest = manifest.context("the tarball has no package.json at its top level")?;
    Ok((manifest, files))
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
