//! The comparison's cases: files, dependencies, scripts, bounds, versions, npm's integrity.

use serde_json::json;

use super::*;

fn file(path: &str, content: &str) -> PackageFile {
    use sha2::Digest;
    PackageFile {
        path: path.into(),
        size: content.len() as u64,
        sha256: hex(&sha2::Sha256::digest(content.as_bytes())),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn manifest(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

#[test]
fn files_added_removed_and_changed_with_sizes() {
    let old =
        [file("package.json", "{}"), file("index.js", "a"), file("old.js", "gone"), file("same.js", "s")];
    let new = [
        file("package.json", "{}"),
        file("index.js", "abc"),
        file("lib/new.js", "new!!"),
        file("same.js", "s"),
    ];
    let m = manifest(json!({}));
    let diff = compare(
        99,
        Contents { files: &new, manifest: &m },
        Some(("1.0.0", Contents { files: &old, manifest: &m })),
    );
    assert_eq!(diff.tarball_size, 99);
    assert_eq!(diff.unpacked_size, 2 + 3 + 5 + 1);
    assert_eq!(diff.previous_version.as_deref(), Some("1.0.0"));
    let paths: Vec<&str> = diff.files.items.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["index.js", "lib/new.js", "package.json", "same.js"], "sorted by path");
    assert_eq!(diff.added.items, [ListedFile { path: "lib/new.js".into(), size: 5 }]);
    assert_eq!(diff.removed.items, [ListedFile { path: "old.js".into(), size: 4 }]);
    assert_eq!(diff.changed.items, [ChangedFile { path: "index.js".into(), old_size: 1, size: 3 }]);
    // Same size, other content: changed too.
    let edited = [file("package.json", "{}"), file("index.js", "b")];
    let diff = compare(
        1,
        Contents { files: &edited, manifest: &m },
        Some(("1.0.0", Contents { files: &old[..2], manifest: &m })),
    );
    assert_eq!(diff.changed.items, [ChangedFile { path: "index.js".into(), old_size: 1, size: 1 }]);
    assert!(diff.added.is_empty() && diff.removed.is_empty());
}

#[test]
fn dependencies_added_changed_and_removed() {
    let old = manifest(json!({
        "dependencies": { "kept": "^1.0.0", "bumped": "^1.0.0", "dropped": "1.0.0" },
        "peerDependencies": { "react": ">=17" },
    }));
    let new = manifest(json!({
        "dependencies": { "kept": "^1.0.0", "bumped": "^2.0.0", "left-pad": "^1.3.0" },
        "optionalDependencies": { "fsevents": "*" },
        "peerDependencies": { "react": ">=17" },
    }));
    let diff = compare(
        1,
        Contents { files: &[], manifest: &new },
        Some(("1.0.0", Contents { files: &[], manifest: &old })),
    );
    let dep = |kind: &str, name: &str, from: Option<&str>, to: Option<&str>| DependencyChange {
        kind: kind.into(),
        name: name.into(),
        from: from.map(Into::into),
        to: to.map(Into::into),
    };
    assert_eq!(
        diff.dependencies.items,
        [
            dep("dependencies", "bumped", Some("^1.0.0"), Some("^2.0.0")),
            dep("dependencies", "left-pad", None, Some("^1.3.0")),
            dep("optionalDependencies", "fsevents", None, Some("*")),
            dep("dependencies", "dropped", Some("1.0.0"), None),
        ]
    );
    // A first publish lists every dependency as added.
    let first = compare(1, Contents { files: &[], manifest: &old }, None);
    assert_eq!(first.dependencies.total(), 4);
    assert!(first.dependencies.items.iter().all(|d| d.from.is_none()));
    assert!(first.added.is_empty(), "no file comparison without a previous version");
}

#[test]
fn install_scripts_added_or_changed_come_first() {
    let old = manifest(json!({ "scripts": { "test": "jest", "prepare": "tsc", "build": "tsc" } }));
    let new = manifest(json!({ "scripts": {
        "test": "vitest", "prepare": "tsc && node steal.js", "build": "tsc",
        "postinstall": "node evil.js", "lint": "eslint",
    } }));
    let diff = compare(
        1,
        Contents { files: &[], manifest: &new },
        Some(("1.0.0", Contents { files: &[], manifest: &old })),
    );
    let names: Vec<(&str, bool)> = diff.scripts.items.iter().map(|s| (s.name.as_str(), s.install)).collect();
    assert_eq!(names, [("postinstall", true), ("prepare", true), ("lint", false), ("test", false)]);
    assert_eq!(diff.scripts.items[0].from, None);
    assert_eq!(diff.scripts.items[0].to.as_deref(), Some("node evil.js"));
    assert_eq!(diff.scripts.items[1].from.as_deref(), Some("tsc"));
    assert_eq!(diff.install_script_changes().count(), 2);
    // Unchanged install scripts are not changes.
    let same = compare(
        1,
        Contents { files: &[], manifest: &new },
        Some(("1.1.0", Contents { files: &[], manifest: &new })),
    );
    assert!(same.scripts.is_empty());
    // A removed install script is listed, but is no install-script change to fear.
    let removed = compare(
        1,
        Contents { files: &[], manifest: &old },
        Some(("1.1.0", Contents { files: &[], manifest: &new })),
    );
    assert!(removed.scripts.items.iter().any(|s| s.name == "postinstall" && s.to.is_none()));
    assert!(removed.install_script_changes().all(|s| s.name == "prepare"));
}

#[test]
fn a_binding_gyp_implies_an_install_script() {
    let m = manifest(json!({ "name": "x" }));
    let old = [file("package.json", "{}")];
    let new = [file("package.json", "{}"), file("binding.gyp", "{}")];
    let diff = compare(
        1,
        Contents { files: &new, manifest: &m },
        Some(("1.0.0", Contents { files: &old, manifest: &m })),
    );
    let install: Vec<&ScriptChange> = diff.install_script_changes().collect();
    assert_eq!(install.len(), 1);
    assert_eq!(install[0].name, "install");
    assert!(install[0].to.as_deref().unwrap().starts_with(NODE_GYP_REBUILD));
    let off = manifest(json!({ "gypfile": false }));
    let diff = compare(1, Contents { files: &new, manifest: &off }, None);
    assert!(diff.scripts.is_empty(), "gypfile: false turns it off");
}

#[test]
fn lists_and_values_are_bounded() {
    let many: Vec<PackageFile> = (0..MAX_LISTED + 7).map(|i| file(&format!("f{i:05}.js"), "x")).collect();
    let long = "x".repeat(5000);
    let m = manifest(json!({ "scripts": { "postinstall": long } }));
    let diff = compare(1, Contents { files: &many, manifest: &m }, None);
    assert_eq!(diff.files.items.len(), MAX_LISTED);
    assert_eq!(diff.files.more, 7);
    assert_eq!(diff.files.total(), (MAX_LISTED + 7) as u64);
    let shown = diff.scripts.items[0].to.as_deref().unwrap();
    assert_eq!(shown.chars().count(), MAX_VALUE_CHARS);
    assert!(shown.ends_with('…'));
    // Long paths hit the byte budget before the count.
    let deep: Vec<PackageFile> =
        (0..200).map(|i| file(&format!("{}{i:03}", "d/".repeat(1500)), "x")).collect();
    let diff = compare(1, Contents { files: &deep, manifest: &m }, None);
    let bytes: usize = diff.files.items.iter().map(|f| f.path.len()).sum();
    assert!(bytes <= MAX_LISTED_PATH_BYTES, "{bytes}");
    assert_eq!(diff.files.total(), 200);
    assert!(diff.files.more > 0);
}

#[test]
fn the_previous_version_is_the_highest_below() {
    let served = ["1.0.0", "1.2.0", "2.0.0-beta.1", "0.9.0"];
    assert_eq!(previous_version(served, "1.3.0"), Some("1.2.0"));
    assert_eq!(previous_version(served, "2.0.0"), Some("2.0.0-beta.1"));
    assert_eq!(previous_version(served, "1.1.0"), Some("1.0.0"));
    assert_eq!(previous_version(served, "0.1.0"), Some("2.0.0-beta.1"), "a backport: the highest");
    assert_eq!(previous_version([], "1.0.0"), None);
}

#[test]
fn integrity_as_npm_prints_it() {
    let sri = format!("sha512-{}", "A".repeat(13) + &"b".repeat(60) + &"C".repeat(13) + "==");
    assert_eq!(sri.len(), 95);
    assert_eq!(npm_short_integrity(&sri), format!("sha512-{}[...]{}", "A".repeat(13), "C".repeat(13) + "=="));
    assert_eq!(npm_short_integrity("sha512-short"), "sha512-short");
}
