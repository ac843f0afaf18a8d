//! Entry paths as npm unpacks them (pacote runs node-tar with `strip: 1`: the first component,
//! whatever it is, goes), and the rules that keep every reader's file tree, and above all its
//! `package.json`, the same.

use std::collections::{HashMap, HashSet};

use super::TarballError;
use super::extended::Source;

/// More entries than this are refused (bookkeeping stays bounded).
const MAX_ENTRIES: usize = 100_000;
/// Paths longer than this are refused (no system unpacks them).
const MAX_PATH_BYTES: usize = 4096;
/// All paths together may not exceed this.
const MAX_TOTAL_PATH_BYTES: usize = 16 * 1024 * 1024;
/// node-tar skips entries deeper than this.
const MAX_DEPTH: usize = 1024;

/// A file or folder, after any extended header was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    /// The path node-tar uses (the extended header's, when there is one).
    pub path: String,
    /// The path in the entry's own header, which readers ignoring extended headers use.
    pub header_path: String,
    /// Which extended header overrode the path, if any.
    pub renamed_by: Option<Source>,
    pub directory: bool,
    pub size: u64,
}

/// Every path seen so far, keyed as npm unpacks it.
#[derive(Default)]
pub(super) struct Tree {
    /// Stripped path → the entry's full path.
    unpacked: HashMap<String, String>,
    files: HashSet<String>,
    package_json: Option<String>,
    path_bytes: usize,
}

impl Tree {
    /// Records an entry; `Ok(true)` if it is the package's `package.json`.
    pub fn add(&mut self, entry: &Entry) -> Result<bool, TarballError> {
        if self.unpacked.len() >= MAX_ENTRIES {
            return Err(TarballError::malformed(format!(
                "the tarball holds more than {MAX_ENTRIES} entries"
            )));
        }
        self.path_bytes += 2 * entry.path.len();
        if self.path_bytes > MAX_TOTAL_PATH_BYTES {
            return Err(TarballError::malformed("the tarball's paths are too long in total"));
        }
        let parts = components(&entry.path, entry.directory)?;
        if entry.path != entry.header_path {
            check_header_path(entry)?;
        }
        let is_manifest = self.check_package_json(entry, &parts)?;
        if parts.len() > 1 {
            let stripped = parts[1..].join("/");
            if !entry.directory {
                self.files.insert(stripped.clone());
            }
            if let Some(earlier) = self.unpacked.insert(stripped, entry.path.clone()) {
                return Err(TarballError::ambiguous(if earlier == entry.path {
                    format!("the tarball holds {} twice", entry.path)
                } else {
                    format!(
                        "the tarball holds {earlier} and {}, which npm unpacks to the same place",
                        entry.path
                    )
                }));
            }
        }
        Ok(is_manifest)
    }

    /// After the last entry: no file may also be a folder holding other entries.
    pub fn finish(&self) -> Result<(), TarballError> {
        for (stripped, path) in &self.unpacked {
            for (i, _) in stripped.match_indices('/') {
                if self.files.contains(&stripped[..i]) {
                    return Err(TarballError::ambiguous(format!(
                        "the tarball holds {path} inside {}, which it also holds as a file",
                        &stripped[..i]
                    )));
                }
            }
        }
        Ok(())
    }

    fn check_package_json(&mut self, entry: &Entry, parts: &[&str]) -> Result<bool, TarballError> {
        let Some(first) = parts.get(1) else {
            return Ok(false);
        };
        if !looks_like_package_json(first) {
            return Ok(false);
        }
        let path = &entry.path;
        if let Some(earlier) = &self.package_json {
            return Err(TarballError::ambiguous(if earlier == path {
                format!("the tarball holds two package.json files ({path} twice)")
            } else {
                format!("the tarball holds two package.json files ({earlier} and {path})")
            }));
        }
        self.package_json = Some(path.clone());
        if *first != "package.json" {
            return Err(TarballError::ambiguous(format!(
                "the tarball holds {path}, which some systems unpack as package.json"
            )));
        }
        if entry.directory || parts.len() > 2 {
            return Err(TarballError::ambiguous(format!(
                "the tarball holds {path}, a folder named package.json"
            )));
        }
        if let Some(source) = entry.renamed_by.filter(|_| entry.path != entry.header_path) {
            return Err(TarballError::ambiguous(format!(
                "the tarball's package.json is named by a {}, which some readers ignore",
                source.describe()
            )));
        }
        Ok(true)
    }
}

/// A path's components, with the rules every reader agrees on: relative, no `.`, `..` or empty
/// components, no backslash (a separator on Windows), no control character, no drive letter.
fn components(path: &str, directory: bool) -> Result<Vec<&str>, TarballError> {
    let shown = printable(path);
    let refuse = |why: &str| Err(TarballError::ambiguous(format!("the tarball holds {shown}, {why}")));
    if path.len() > MAX_PATH_BYTES {
        return refuse("a path longer than any system accepts");
    }
    if path.chars().any(|c| c.is_control()) {
        return refuse("a path with a control character");
    }
    if path.contains('\\') {
        return refuse("a path with a backslash, which Windows reads as a separator");
    }
    if path.starts_with('/') {
        return refuse("an absolute path");
    }
    let trimmed = if directory { path.strip_suffix('/').unwrap_or(path) } else { path };
    if trimmed.ends_with('/') {
        return refuse("a file whose path ends with '/', which some readers take for a folder");
    }
    let parts: Vec<&str> = trimmed.split('/').collect();
    if parts.contains(&"..") {
        return refuse("a path that leaves the package folder");
    }
    if parts.iter().any(|p| p.is_empty() || *p == ".") {
        return refuse("a path with an empty or '.' component, which readers strip differently");
    }
    if parts.len() > MAX_DEPTH {
        return refuse("a path nested too deep");
    }
    if parts.iter().take(2).any(|p| is_drive(p)) {
        return refuse("a path starting with a drive letter");
    }
    if !directory && parts.len() < 2 {
        return refuse("a file outside any folder, which npm does not unpack");
    }
    Ok(parts)
}

/// The path in an entry's own header, when an extended header overrides it: readers that ignore
/// extended headers must not find a package.json there, nor leave the package folder.
fn check_header_path(entry: &Entry) -> Result<(), TarballError> {
    let header_path = &entry.header_path;
    let raw: Vec<&str> = header_path.split('/').collect();
    let normalised: Vec<&str> = raw.iter().copied().filter(|p| !p.is_empty() && *p != ".").collect();
    let renamed = || {
        let source = entry.renamed_by.map_or("extended header", Source::describe);
        format!(
            "an entry is named {} in its own header but {} in its {source}",
            printable(header_path),
            printable(&entry.path)
        )
    };
    if header_path.starts_with('/') || raw.contains(&"..") || header_path.contains('\\') {
        return Err(TarballError::ambiguous(format!("{}, a path that leaves the package folder", renamed())));
    }
    if [raw.get(1), normalised.get(1)].into_iter().flatten().any(|p| looks_like_package_json(p)) {
        return Err(TarballError::ambiguous(format!(
            "{}: readers that ignore the latter take it for package.json",
            renamed()
        )));
    }
    Ok(())
}

/// Whether a name directly in the package folder could be opened as `package.json` somewhere:
/// any case (macOS, Windows), non-ASCII look-alikes and invisible characters, Windows' trailing
/// dots and spaces, and Windows short names (`PACKAG~1.JSO`).
pub(super) fn looks_like_package_json(name: &str) -> bool {
    let folded: String = name
        .chars()
        .filter_map(|c| {
            if c.is_ascii() {
                return Some(c.to_ascii_lowercase());
            }
            // A character whose case mapping is ASCII (the Kelvin sign, a long s) stands for that
            // letter; other non-ASCII characters are dropped, so look-alikes still match.
            c.to_lowercase().chain(c.to_uppercase()).find(char::is_ascii).map(|a| a.to_ascii_lowercase())
        })
        .collect();
    let folded = folded.trim_end_matches(['.', ' ']);
    folded == "package.json" || (folded.contains('~') && folded.ends_with(".jso"))
}

fn is_drive(component: &str) -> bool {
    let b = component.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

/// A path for messages: quoted when it has characters that would confuse.
fn printable(path: &str) -> String {
    let plain = path.chars().all(|c| c.is_ascii_graphic() && c != '"');
    let short: String = path.chars().take(300).collect();
    if plain && short.len() == path.len() { short } else { format!("{short:?}") }
}
