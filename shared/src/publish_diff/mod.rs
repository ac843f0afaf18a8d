//! What a publish holds, and what it changes against the previous version: files, dependencies
//! and, above all, install scripts. Shown to whoever approves a publish (the approval page,
//! `tapgate approve`, and `tapgate publish` before its tap, which computes it from its own
//! tarball).
//!
//! Informational only: the signed intent (the tarball's integrity) is what binds an approval,
//! never this description. The comparison is pure: each side reads tarballs itself and passes
//! the regular files it found ([`PackageFile`]) and the parsed `package.json`. Every list is
//! bounded ([`Listed`]), so a tarball with many files describes itself in bounded space.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Most entries a list holds; the rest are only counted.
pub const MAX_LISTED: usize = 2000;
/// Most bytes of paths one list of files holds (paths may be up to 4 KiB each).
pub const MAX_LISTED_PATH_BYTES: usize = 256 * 1024;
/// Most dependency changes listed.
pub const MAX_DEPENDENCIES: usize = 1000;
/// Most script changes listed (install scripts first).
pub const MAX_SCRIPTS: usize = 100;
/// Longest script command or dependency range shown, in characters.
pub const MAX_VALUE_CHARS: usize = 500;
/// Longest dependency or script name shown, in characters.
const MAX_NAME_CHARS: usize = 214;

/// Scripts npm runs when the package is installed (`prepare` for git dependencies).
pub const INSTALL_SCRIPTS: [&str; 4] = ["preinstall", "install", "postinstall", "prepare"];
/// The dependency fields npm installs from.
pub const DEPENDENCY_KINDS: [&str; 3] = ["dependencies", "optionalDependencies", "peerDependencies"];
/// What npm runs as `install` for a package with a `binding.gyp` and no install script.
pub const NODE_GYP_REBUILD: &str = "node-gyp rebuild";

/// A regular file in a package tarball: its path in the package (npm strips the top folder),
/// its size, and the hex SHA-256 of its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// One version's contents, as read from its tarball.
#[derive(Debug, Clone, Copy)]
pub struct Contents<'a> {
    pub files: &'a [PackageFile],
    pub manifest: &'a Map<String, Value>,
}

/// A bounded list: at most [`MAX_LISTED`] items, and how many more there are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed<T> {
    pub items: Vec<T>,
    /// Items left out ("and N more").
    #[serde(default)]
    pub more: u64,
}

impl<T> Default for Listed<T> {
    fn default() -> Self {
        Self { items: Vec::new(), more: 0 }
    }
}

impl<T> Listed<T> {
    /// Keeps items while both the count and the `cost` budget allow; counts the rest.
    fn bounded(all: Vec<T>, max: usize, budget: usize, cost: impl Fn(&T) -> usize) -> Self {
        let total = all.len();
        let mut spent = 0usize;
        let mut items = Vec::new();
        for item in all {
            spent = spent.saturating_add(cost(&item));
            if items.len() >= max || spent > budget {
                break;
            }
            items.push(item);
        }
        let more = u64::try_from(total - items.len()).unwrap_or(u64::MAX);
        Self { items, more }
    }

    /// Every item, listed or not.
    pub fn total(&self) -> u64 {
        u64::try_from(self.items.len()).unwrap_or(u64::MAX).saturating_add(self.more)
    }

    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }
}

/// A file and its size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedFile {
    pub path: String,
    pub size: u64,
}

/// A file whose content changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedFile {
    pub path: String,
    pub old_size: u64,
    pub size: u64,
}

/// A dependency added (`from` absent), changed, or removed (`to` absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyChange {
    /// `dependencies`, `optionalDependencies` or `peerDependencies`.
    pub kind: String,
    pub name: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A script added (`from` absent), changed, or removed (`to` absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptChange {
    pub name: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// npm runs it on install ([`INSTALL_SCRIPTS`]): what an approver must look at first.
    pub install: bool,
}

/// What a publish holds and changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishDiff {
    /// The tarball as uploaded (gzipped), in bytes.
    pub tarball_size: u64,
    /// The files' sizes added up.
    pub unpacked_size: u64,
    pub files: Listed<ListedFile>,
    /// The version compared against; absent for a first publish.
    #[serde(default)]
    pub previous_version: Option<String>,
    /// Why there is no comparison although earlier versions exist, if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default)]
    pub added: Listed<ListedFile>,
    #[serde(default)]
    pub removed: Listed<ListedFile>,
    #[serde(default)]
    pub changed: Listed<ChangedFile>,
    /// Against the previous version, or (first publish) against none.
    #[serde(default)]
    pub dependencies: Listed<DependencyChange>,
    /// Install scripts first, then the others by name.
    #[serde(default)]
    pub scripts: Listed<ScriptChange>,
}

impl PublishDiff {
    /// The install scripts added or changed (removals are listed, but run nothing).
    pub fn install_script_changes(&self) -> impl Iterator<Item = &ScriptChange> {
        self.scripts.items.iter().filter(|s| s.install && s.to.is_some())
    }
}

/// Describes `new` (whose tarball is `tarball_size` bytes), compared with `previous` (its
/// version and contents) when there is one.
pub fn compare(tarball_size: u64, new: Contents<'_>, previous: Option<(&str, Contents<'_>)>) -> PublishDiff {
    let mut files: Vec<&PackageFile> = new.files.iter().collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let unpacked_size = files.iter().fold(0u64, |sum, f| sum.saturating_add(f.size));
    let listed = files.iter().map(|f| ListedFile { path: f.path.clone(), size: f.size }).collect();
    let empty = Map::new();
    let old_manifest = previous.map_or(&empty, |(_, p)| p.manifest);
    let (added, removed, changed) = match previous {
        Some((_, old)) => file_changes(old.files, new.files),
        None => Default::default(),
    };
    PublishDiff {
        tarball_size,
        unpacked_size,
        files: bounded_files(listed),
        previous_version: previous.map(|(v, _)| v.to_string()),
        note: None,
        added: bounded_files(added),
        removed: bounded_files(removed),
        changed: Listed::bounded(changed, MAX_LISTED, MAX_LISTED_PATH_BYTES, |c| c.path.len()),
        dependencies: Listed::bounded(
            dependency_changes(old_manifest, new.manifest),
            MAX_DEPENDENCIES,
            usize::MAX,
            |_| 0,
        ),
        scripts: Listed::bounded(
            script_changes(
                &scripts(old_manifest, previous.map_or(&[], |(_, p)| p.files)),
                &scripts(new.manifest, new.files),
            ),
            MAX_SCRIPTS,
            usize::MAX,
            |_| 0,
        ),
    }
}

fn bounded_files(files: Vec<ListedFile>) -> Listed<ListedFile> {
    Listed::bounded(files, MAX_LISTED, MAX_LISTED_PATH_BYTES, |f| f.path.len())
}

/// Files added, removed, and changed (same path, other content), each by path.
fn file_changes(
    old: &[PackageFile],
    new: &[PackageFile],
) -> (Vec<ListedFile>, Vec<ListedFile>, Vec<ChangedFile>) {
    let before: BTreeMap<&str, &PackageFile> = old.iter().map(|f| (f.path.as_str(), f)).collect();
    let after: BTreeMap<&str, &PackageFile> = new.iter().map(|f| (f.path.as_str(), f)).collect();
    let listed = |f: &PackageFile| ListedFile { path: f.path.clone(), size: f.size };
    let added = after.iter().filter(|(p, _)| !before.contains_key(*p)).map(|(_, f)| listed(f)).collect();
    let removed = before.iter().filter(|(p, _)| !after.contains_key(*p)).map(|(_, f)| listed(f)).collect();
    let changed = after
        .iter()
        .filter_map(|(p, f)| {
            let old = before.get(p)?;
            (old.sha256 != f.sha256 || old.size != f.size).then(|| ChangedFile {
                path: f.path.clone(),
                old_size: old.size,
                size: f.size,
            })
        })
        .collect();
    (added, removed, changed)
}

/// A manifest value as shown: strings as they are, anything else as JSON; clipped.
fn shown(value: &Value, max: usize) -> String {
    match value {
        Value::String(s) => clip(s, max),
        other => clip(&other.to_string(), max),
    }
}

/// At most `max` characters of `s`, with "…" when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn object<'a>(manifest: &'a Map<String, Value>, field: &str) -> Option<&'a Map<String, Value>> {
    manifest.get(field).and_then(Value::as_object)
}

/// Dependencies added or changed (in [`DEPENDENCY_KINDS`] order, by name), then those removed.
fn dependency_changes(old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<DependencyChange> {
    let empty = Map::new();
    let mut changes = Vec::new();
    let mut removals = Vec::new();
    for kind in DEPENDENCY_KINDS {
        let before = object(old, kind).unwrap_or(&empty);
        let after = object(new, kind).unwrap_or(&empty);
        let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        for name in names {
            let (from, to) = (before.get(name), after.get(name));
            if from == to {
                continue;
            }
            let change = DependencyChange {
                kind: kind.to_string(),
                name: clip(name, MAX_NAME_CHARS),
                from: from.map(|v| shown(v, MAX_VALUE_CHARS)),
                to: to.map(|v| shown(v, MAX_VALUE_CHARS)),
            };
            if to.is_some() { changes.push(change) } else { removals.push(change) }
        }
    }
    changes.extend(removals);
    changes
}

/// The scripts npm would run for a package: its `scripts`, and the `install` npm implies for a
/// package with a `binding.gyp` and neither `install` nor `preinstall` (unless `gypfile` is
/// false).
fn scripts(manifest: &Map<String, Value>, files: &[PackageFile]) -> BTreeMap<String, Value> {
    let mut scripts: BTreeMap<String, Value> =
        object(manifest, "scripts").map(|s| s.clone().into_iter().collect()).unwrap_or_default();
    let gyp = files.iter().any(|f| f.path == "binding.gyp")
        && manifest.get("gypfile") != Some(&Value::Bool(false))
        && !scripts.contains_key("install")
        && !scripts.contains_key("preinstall");
    if gyp {
        scripts
            .insert("install".into(), Value::String(format!("{NODE_GYP_REBUILD} (implied by binding.gyp)")));
    }
    scripts
}

/// Scripts added, changed or removed: install scripts first ([`INSTALL_SCRIPTS`] order).
fn script_changes(old: &BTreeMap<String, Value>, new: &BTreeMap<String, Value>) -> Vec<ScriptChange> {
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut changes: Vec<ScriptChange> = names
        .into_iter()
        .filter(|name| old.get(*name) != new.get(*name))
        .map(|name| ScriptChange {
            name: clip(name, MAX_NAME_CHARS),
            from: old.get(name).map(|v| shown(v, MAX_VALUE_CHARS)),
            to: new.get(name).map(|v| shown(v, MAX_VALUE_CHARS)),
            install: INSTALL_SCRIPTS.contains(&name.as_str()),
        })
        .collect();
    let rank =
        |s: &ScriptChange| INSTALL_SCRIPTS.iter().position(|i| *i == s.name).unwrap_or(INSTALL_SCRIPTS.len());
    changes.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.name.cmp(&b.name)));
    changes
}

/// Orders two valid versions as semantic versioning does (a prerelease sorts before its
/// release; prerelease identifiers compare numerically when both are numbers).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn split(v: &str) -> (Vec<u64>, Option<&str>) {
        let main = v.split('+').next().unwrap_or(v);
        let (core, pre) = match main.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (main, None),
        };
        (core.split('.').map(|n| n.parse().unwrap_or(0)).collect(), pre)
    }
    let ((ca, pa), (cb, pb)) = (split(a), split(b));
    ca.cmp(&cb).then_with(|| match (pa, pb) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => {
            let (xs, ys): (Vec<&str>, Vec<&str>) = (x.split('.').collect(), y.split('.').collect());
            for (i, j) in xs.iter().zip(&ys) {
                let ord = match (i.parse::<u64>(), j.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => i.cmp(j),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            xs.len().cmp(&ys.len())
        }
    })
}

/// The version a new one is compared with: the highest served version below it, else (a
/// backport below every served version) the highest served version.
pub fn previous_version<'a>(served: impl IntoIterator<Item = &'a str>, new: &str) -> Option<&'a str> {
    let served: Vec<&'a str> = served.into_iter().filter(|v| *v != new).collect();
    let below = served.iter().copied().filter(|v| compare_versions(v, new) == Ordering::Less);
    below
        .max_by(|a, b| compare_versions(a, b))
        .or_else(|| served.iter().copied().max_by(|a, b| compare_versions(a, b)))
}

/// An SRI integrity as `npm publish` prints it (`npm notice integrity: sha512-…[...]…`): its first
/// 20 characters, `[...]`, and everything from the 80th.
pub fn npm_short_integrity(integrity: &str) -> String {
    let chars: Vec<char> = integrity.chars().collect();
    if chars.len() <= 80 {
        return integrity.to_string();
    }
    let head: String = chars[..20].iter().collect();
    let tail: String = chars[80..].iter().collect();
    format!("{head}[...]{tail}")
}

#[cfg(test)]
mod tests;
