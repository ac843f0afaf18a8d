//! Reading the `package.json` inside an npm tarball. What the registry serves as a version's
//! metadata must be what npm installs from its tarball, so a tarball that two reasonable tar
//! readers (npm's node-tar among them) could read differently is refused, not interpreted.
//!
//! Accepted is a subset of tar on which node-tar (run as npm's pacote runs it, `strip: 1`), GNU
//! tar and the Rust `tar` crate agree: one gzip member and nothing after it; POSIX ustar or GNU
//! headers with valid checksums and plain octal numbers; files and folders only; PAX headers with
//! the keys node-tar writes and GNU long names, which must not turn a path into or out of
//! `package.json`; relative canonical paths, each once; nothing after the end-of-archive marker
//! but zeros; exactly one `package.json` directly in the top folder, and no other entry that any
//! system could unpack as it. Decompression and bookkeeping are bounded.

mod extended;
mod gzip;
mod header;
mod paths;
#[cfg(test)]
pub mod tests;

use std::fmt;

use extended::Extension;
use header::{BLOCK, Header, Kind};
use paths::{Entry, Tree};
use sha2::{Digest, Sha256};
use tapgate_shared::publish_diff::PackageFile;

/// A parsed `package.json`.
pub type Manifest = serde_json::Map<String, serde_json::Value>;

/// A package.json larger than this is refused.
const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// Why a tarball was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarballErrorKind {
    /// Not a readable npm tarball (not gzip, truncated, no package.json, too large…).
    Malformed,
    /// Readable, but tar readers could disagree about what it holds.
    Ambiguous,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarballError {
    pub kind: TarballErrorKind,
    pub message: String,
}

impl TarballError {
    fn malformed(message: impl Into<String>) -> Self {
        Self { kind: TarballErrorKind::Malformed, message: message.into() }
    }

    fn ambiguous(message: impl Into<String>) -> Self {
        Self {
            kind: TarballErrorKind::Ambiguous,
            message: format!(
                "{}; tar readers could disagree about what such a tarball holds, so the registry refuses it (repack it with `npm pack`)",
                message.into()
            ),
        }
    }
}

impl fmt::Display for TarballError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The exact bytes of the tarball's `package.json`, as npm would unpack them, after checking
/// that every reader would unpack the same ones.
pub fn package_json_bytes(tarball: &[u8]) -> Result<Vec<u8>, TarballError> {
    read(tarball, false).map(|r| r.package_json)
}

/// The tarball's `package.json` (parsed, see [`manifest`]) and its regular files as npm unpacks
/// them (the top folder stripped), with their sizes and content hashes, in archive order.
pub fn contents(tarball: &[u8]) -> Result<(Manifest, Vec<PackageFile>), TarballError> {
    let read = read(tarball, true)?;
    Ok((parse_manifest(&read.package_json)?, read.files))
}

/// What one pass over a tarball found.
struct Read {
    package_json: Vec<u8>,
    /// Regular files, when asked for.
    files: Vec<PackageFile>,
}

fn read(tarball: &[u8], list_files: bool) -> Result<Read, TarballError> {
    let mut stream = gzip::Stream::open(tarball)?;
    let mut tree = Tree::default();
    let mut pending: Option<Extension> = None;
    let mut package_json = None;
    let mut files = Vec::new();
    let mut block = [0u8; BLOCK];
    while stream.next_block(&mut block)? {
        if block.iter().all(|&b| b == 0) {
            stream.expect_zeros()?;
            break;
        }
        let header = Header::parse(&block)?;
        let what = format!("the entry {:?}", header.path);
        match header.kind {
            Kind::Pax | Kind::GlobalPax | Kind::GnuLongName => {
                if pending.is_some() {
                    return Err(TarballError::ambiguous(
                        "the tarball has two extended headers in a row, which readers combine differently",
                    ));
                }
                if header.size == 0 || header.size > extended::MAX_BODY {
                    return Err(TarballError::ambiguous(format!(
                        "the tarball has an extended header of {} bytes",
                        header.size
                    )));
                }
                let body = stream.read_body(header.size, &what)?;
                match header.kind {
                    Kind::Pax => pending = Some(extended::pax(&body)?),
                    Kind::GnuLongName => pending = Some(extended::long_name(&body)?),
                    _ => extended::global_pax(&body)?,
                }
            }
            Kind::File | Kind::Directory => {
                let entry = resolve(header, pending.take())?;
                // Checked by the tree: a file's path has a top folder to strip.
                let unpacked = || entry.path.split_once('/').map_or("", |(_, rest)| rest).to_string();
                if tree.add(&entry)? {
                    if entry.size > MAX_MANIFEST_BYTES {
                        return Err(TarballError::malformed(format!(
                            "package.json in the tarball is larger than {} KiB",
                            MAX_MANIFEST_BYTES >> 10
                        )));
                    }
                    let body = stream.read_body(entry.size, "package.json")?;
                    if list_files {
                        files.push(PackageFile {
                            path: unpacked(),
                            size: entry.size,
                            sha256: hex::encode(Sha256::digest(&body)),
                        });
                    }
                    package_json = Some(body);
                } else if list_files && !entry.directory {
                    let sha256 = hex::encode(stream.hash_body(entry.size, &what)?);
                    files.push(PackageFile { path: unpacked(), size: entry.size, sha256 });
                } else {
                    stream.skip_body(entry.size, &what)?;
                }
            }
        }
    }
    if pending.is_some() {
        return Err(TarballError::ambiguous(
            "the tarball ends with an extended header that describes no entry",
        ));
    }
    stream.finish()?;
    tree.finish()?;
    let package_json = package_json
        .ok_or_else(|| TarballError::malformed("the tarball has no package.json in its top folder"))?;
    Ok(Read { package_json, files })
}

/// Applies an extended header to the entry that follows it.
fn resolve(header: Header, extension: Option<Extension>) -> Result<Entry, TarballError> {
    let directory = header.kind == Kind::Directory;
    let (path, renamed_by) = match &extension {
        Some(Extension { path: Some(path), source, .. }) => (path.clone(), Some(*source)),
        _ => (header.path.clone(), None),
    };
    if let Some(size) = extension.as_ref().and_then(|e| e.size)
        && size != header.size
    {
        return Err(TarballError::ambiguous(format!(
            "a PAX header gives {path:?} a size of {size} bytes, its own header {}",
            header.size
        )));
    }
    if directory && header.size != 0 {
        // node-tar reads no data for a folder; other readers skip `size` bytes.
        return Err(TarballError::ambiguous(format!("the folder {path:?} has data")));
    }
    Ok(Entry { path, header_path: header.path, renamed_by, directory, size: header.size })
}

/// The `name` and `version` a tarball's `package.json` (from [`manifest`]) declares.
pub fn identity(manifest: &serde_json::Map<String, serde_json::Value>) -> Result<(String, String), String> {
    let field = |k: &str| manifest.get(k).and_then(|v| v.as_str()).map(str::to_string);
    match (field("name"), field("version")) {
        (Some(name), Some(version)) => Ok((name, version)),
        _ => Err("package.json in the tarball has no name or version".into()),
    }
}

/// The tarball's `package.json` (see [`package_json_bytes`]), parsed.
pub fn manifest(tarball: &[u8]) -> Result<Manifest, TarballError> {
    parse_manifest(&package_json_bytes(tarball)?)
}

fn parse_manifest(bytes: &[u8]) -> Result<Manifest, TarballError> {
    let json: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| TarballError::malformed(format!("package.json in the tarball is not JSON: {e}")))?;
    match json {
        serde_json::Value::Object(map) => Ok(map),
        _ => Err(TarballError::malformed("package.json in the tarball is not an object")),
    }
}
