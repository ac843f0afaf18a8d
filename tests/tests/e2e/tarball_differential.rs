//! What the registry reads as a tarball's package.json is what npm installs. A seeded generator
//! makes a few hundred odd tarballs (two package.json files, links, PAX and GNU headers, data
//! after the end, stray gzip members, odd header encodings, flipped bytes…); each is read by the
//! server's parser and unpacked by npm's own node-tar as pacote runs it. Wherever the server
//! accepts, node-tar (and the Rust `tar` crate) must unpack the very same package.json bytes.
//! And a real npm cannot publish a tarball with two package.json files through tapgate.

use std::io::Read;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::Value;
use tapgate_server::publish::tarball::package_json_bytes;
use tapgate_tests::npm::Npm;
use tapgate_tests::tools::{available, npm_available};

use crate::publish_support::{encode, maintainer, publish_body, put};
use crate::support::{Backend, TestApp, expect_error};
use crate::tar_builder::*;

const SEED: u64 = 0x7a96_a7e5;
const CASES: usize = 400;

struct Case {
    tarball: Vec<u8>,
    /// What the generator put in, for failure messages.
    made_of: Vec<String>,
}

fn manifest(case: usize, which: &str) -> Vec<u8> {
    format!(r#"{{"name":"diff-pkg","version":"1.0.0","case":{case},"which":"{which}"}}"#).into_bytes()
}

/// The real package.json, in one of the header encodings readers agree or disagree on.
fn main_entry(rng: &mut StdRng, data: &[u8], made_of: &mut Vec<String>) -> Vec<u8> {
    let size = data.len() as u64;
    let mut h = Header::posix("package/package.json", b'0', size);
    let variant = rng.random_range(0..36);
    made_of.push(format!("package.json#{variant}"));
    match variant {
        0 => h = Header::gnu("package/package.json", b'0', size),
        1 => h.checksum = Checksum::Gnu,
        2 => h.checksum = Checksum::Unterminated,
        3 => h.checksum = Checksum::Wrong(rng.random_range(-3..=3)),
        4 => {
            h.field(0, 100, b"package.json").field(345, 155, b"package");
        }
        5 => {
            h.field(0, 100, b"package.json").put(345, b"package").octal(476, 12, 1).octal(488, 12, 1);
        }
        6 => {
            h.field(156, 1, b"\0");
        }
        7 => {
            h.field(124, 12, format!(" {size:010o}\0").as_bytes());
        }
        8 => {
            h.field(124, 12, format!("{size:012o}").as_bytes());
        }
        9 => {
            h.field(124, 12, &[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, size as u8]);
        }
        10 => {
            h.field(257, 8, &[0; 8]);
        }
        11 => {
            h.put(30, b"\0garbage");
        }
        12 => {
            h.field(157, 100, b"package/other.json");
        }
        13 => {
            h.field(108, 8, &[0x80, 0, 0, 0, 0, 0, 0, 1]);
        }
        _ => {}
    }
    entry(&h, data)
}

fn pax_entry(records: &[(&str, &str)]) -> Vec<u8> {
    extended(b'x', records.iter().map(|(k, v)| record(k, v)).collect::<String>().as_bytes())
}

const PATHS: &[&str] = &[
    "package/package.json",
    "./package/package.json",
    "package//package.json",
    "package/./package.json",
    "other/package.json",
    "package/Package.json",
    "package/PACKAGE.JSON",
    "package/package.json.",
    "package/PACKAG~1.JSO",
    "/package/package.json",
    "package/../package.json",
    "package/sub/../package.json",
    "package\\package.json",
    "package.json",
    "./package.json",
    "package/package.json/",
    "package/node_modules/dep/package.json",
    "package/package.json5",
    "package/lib/package.json",
];

/// One construct that splits (or does not split) tar readers.
fn construct(rng: &mut StdRng, second: &[u8]) -> (String, Vec<u8>) {
    let path = *PATHS.choose(rng).unwrap();
    let long = format!("package/lib/{}/{}.js", "a".repeat(rng.random_range(90..130)), "c".repeat(110));
    let kind = rng.random_range(0..24);
    let bytes = match kind {
        0..=2 | 20..=22 => {
            file(["package/index.js", "package/lib/a.js", "package/README.md"].choose(rng).unwrap(), b"x")
        }
        3 => file(path, second),
        4 => {
            let typeflag = *b"1234567KSV".choose(rng).unwrap();
            let mut h = Header::posix(path, typeflag, 0);
            h.field(157, 100, b"package/evil.json");
            entry(&h, b"")
        }
        5 => entry(
            &Header::posix(
                ["package/", "package/lib/", "package/package.json/"].choose(rng).unwrap(),
                b'5',
                0,
            ),
            b"",
        ),
        6 => entry(&Header::posix("package/lib/", b'5', 1), b"x"),
        7 | 23 => {
            // What npm pack writes for a long path: PAX path, truncated header path.
            let mut h = Header::posix(&"c".repeat(99), b'0', 2);
            h.field(345, 155, long.rsplit_once('/').unwrap().0.as_bytes());
            [pax_entry(&[("path", &long), ("mtime", "499162500"), ("size", "2")]), entry(&h, b"x\n")].concat()
        }
        8 => [pax_entry(&[("path", path)]), file("package/index.js", second)].concat(),
        9 => [pax_entry(&[("path", "package/index.js")]), file(path, second)].concat(),
        10 => {
            let size = if rng.random_bool(0.5) { second.len() } else { second.len() + 512 };
            [pax_entry(&[("size", &size.to_string())]), file(path, second)].concat()
        }
        11 => {
            let key = *["mtime", "comment", "uname", "linkpath", "type", "mode", "GNU.sparse.name"]
                .choose(rng)
                .unwrap();
            [pax_entry(&[(key, "1")]), file("package/index.js", b"1")].concat()
        }
        12 => {
            let body =
                *["9 path=ab\n", "012 path=ab\n", "13 path=a\nb\n", "path=a\n", ""].choose(rng).unwrap();
            [extended(b'x', body.as_bytes()), file(path, second)].concat()
        }
        13 => {
            let name = if rng.random_bool(0.5) { long.as_str() } else { path };
            let mut body = name.as_bytes().to_vec();
            body.extend(std::iter::repeat_n(0, rng.random_range(0..3)));
            [
                entry(&Header::gnu("././@LongLink", b'L', body.len() as u64), &body),
                file("package/index.js", second),
            ]
            .concat()
        }
        14 => extended(b'g', record(["comment", "path"].choose(rng).unwrap(), path).as_bytes()),
        15 => [vec![0; BLOCK * rng.random_range(1..=2)], file(path, second)].concat(),
        16 => (0..BLOCK).map(|_| rng.random::<u8>()).collect(),
        17 => [pax_entry(&[("mtime", "1")]), pax_entry(&[("path", path)]), file("package/a.js", second)]
            .concat(),
        18 => {
            let mut h = Header::gnu(path, b'0', second.len() as u64);
            h.field(0, 100, b"package.json").put(345, b"package");
            entry(&h, second)
        }
        _ => entry(&Header::posix("package/a.js/", *b"0\0".choose(rng).unwrap(), 1), b"x"),
    };
    (format!("construct#{kind}:{path}"), bytes)
}

fn generate(rng: &mut StdRng, case: usize) -> Case {
    let mut made_of = Vec::new();
    let mut pieces = Vec::new();
    if rng.random_bool(0.92) {
        pieces.push(main_entry(rng, &manifest(case, "first"), &mut made_of));
    }
    for _ in 0..rng.random_range(0..=2) {
        let (label, bytes) = construct(rng, &manifest(case, "second"));
        let at = rng.random_range(0..=pieces.len());
        pieces.insert(at, bytes);
        made_of.push(label);
    }
    let mut tar = pieces.concat();
    let end = rng.random_range(0..20);
    made_of.push(format!("end#{end}"));
    match end {
        0 => {}
        1 => tar.extend_from_slice(&[0; BLOCK]),
        2 => tar.extend_from_slice(&[0; 20 * BLOCK]),
        3 => tar.extend_from_slice(&[[0; 2 * BLOCK].as_slice(), b"trailing"].concat()),
        4 => tar.extend_from_slice(
            &[vec![0; 2 * BLOCK], file("package/package.json", &manifest(case, "second"))].concat(),
        ),
        5 => tar.extend_from_slice(b"partial"),
        _ => tar.extend_from_slice(&[0; 2 * BLOCK]),
    }
    if !tar.is_empty() && rng.random_bool(0.05) {
        let at = rng.random_range(0..tar.len());
        tar[at] ^= 1 << rng.random_range(0..8);
        made_of.push(format!("flip@{at}"));
    }
    let compress = rng.random_range(0..40);
    made_of.push(format!("gzip#{compress}"));
    let tarball = match compress {
        0 => tar.clone(),
        1 => {
            let cut = tar.len() / BLOCK / 2 * BLOCK;
            [gzip(&tar[..cut]), gzip(&tar[cut..])].concat()
        }
        2 => [gzip(&tar), b"junk".to_vec()].concat(),
        3 => {
            let gz = gzip(&tar);
            gz[..gz.len() - rng.random_range(1..10).min(gz.len())].to_vec()
        }
        4 => {
            let mut gz = flate2::GzBuilder::new()
                .filename("a.tar")
                .comment("c")
                .write(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, &tar).unwrap();
            gz.finish().unwrap()
        }
        _ => gzip(&tar),
    };
    Case { tarball, made_of }
}

/// How the Rust `tar` crate reads it: the last regular `<dir>/package.json`.
fn tar_crate_reading(tarball: &[u8]) -> Option<Vec<u8>> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
    let mut found = None;
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        let path = entry.path().ok()?.into_owned();
        let parts: Vec<_> = path.components().collect();
        if parts.len() == 2 && parts[1].as_os_str() == "package.json" && entry.header().entry_type().is_file()
        {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).ok()?;
            found = Some(data);
        }
    }
    found
}

#[test]
fn the_registry_reads_the_package_json_npm_installs() {
    if !available("tarball differential test", &[("node", &["--version"]), ("npm", &["--version"])]) {
        return;
    }
    // Another seed explores further: TAPGATE_TARBALL_SEED=<n>.
    let seed = std::env::var("TAPGATE_TARBALL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(SEED);
    let mut rng = StdRng::seed_from_u64(seed);
    let cases: Vec<Case> = (0..CASES).map(|i| generate(&mut rng, i)).collect();
    let dir = tempfile::tempdir().unwrap();
    let tarballs: Vec<Vec<u8>> = cases.iter().map(|c| c.tarball.clone()).collect();
    let unpacked = unpack_with_node_tar(dir.path(), &tarballs);
    let (mut accepted, mut readers_split) = (0, 0);
    for (i, (case, node)) in cases.iter().zip(&unpacked).enumerate() {
        let rust_tar = tar_crate_reading(&case.tarball);
        if rust_tar != node.package_json {
            readers_split += 1;
        }
        let Ok(ours) = package_json_bytes(&case.tarball) else {
            continue;
        };
        accepted += 1;
        assert_eq!(
            node.package_json.as_deref(),
            Some(ours.as_slice()),
            "case {i} ({:?}): the registry reads {:?} but node-tar unpacks {:?} (error {:?}, warnings {:?})",
            case.made_of,
            String::from_utf8_lossy(&ours),
            node.package_json.as_deref().map(String::from_utf8_lossy),
            node.error,
            node.warnings
        );
        assert!(node.error.is_none() && node.warnings.is_empty(), "case {i} ({:?}): {node:?}", case.made_of);
        assert_eq!(
            rust_tar.as_deref(),
            Some(ours.as_slice()),
            "case {i} ({:?}): the tar crate",
            case.made_of
        );
    }
    let refused = CASES - accepted;
    eprintln!(
        "seed {seed}: {CASES} tarballs: {accepted} accepted, {refused} refused; node-tar and the tar crate disagree on {readers_split}"
    );
    // The generator must reach both sides, and the constructs that split tar readers.
    assert!(accepted >= CASES / 6 && refused >= CASES / 6, "{accepted} accepted, {refused} refused");
    assert!(readers_split >= CASES / 20, "only {readers_split} cases split node-tar and the tar crate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_cannot_publish_a_tarball_with_a_second_package_json() {
    if !npm_available() || !available("node-tar check", &[("node", &["--version"])]) {
        return;
    }
    let Some(app) = TestApp::new(Backend::Sqlite).await else {
        return;
    };
    let alice = maintainer(&app, "alice").await;
    let name = "two-manifests";
    let reviewed = format!(r#"{{"name":"{name}","version":"1.0.0","description":"reviewed"}}"#);
    let hidden = format!(
        r#"{{"name":"{name}","version":"1.0.0","description":"reviewed","scripts":{{"postinstall":"node -e \"require('fs').writeFileSync('pwned','')\""}}}}"#
    );
    let tar =
        [file("package/package.json", reviewed.as_bytes()), file("package/package.json", hidden.as_bytes())];
    let tarball = gzip(&[tar.concat(), vec![0; 2 * BLOCK]].concat());

    // The danger is real: npm install (node-tar) unpacks the second, whose postinstall runs.
    let dir = tempfile::tempdir().unwrap();
    let unpacked = unpack_with_node_tar(dir.path(), std::slice::from_ref(&tarball));
    let installed: Value = serde_json::from_slice(unpacked[0].package_json.as_ref().unwrap()).unwrap();
    assert!(installed["scripts"]["postinstall"].is_string(), "{installed}");

    // npm publish of that tarball: refused, and npm shows why.
    let file_path = dir.path().join(format!("{name}-1.0.0.tgz"));
    std::fs::write(&file_path, &tarball).unwrap();
    let npm = Npm::new(dir.path(), &app.base);
    npm.set_token(&alice.token);
    let cwd = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || npm.run(&cwd, &["publish", file_path.to_str().unwrap()]))
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "npm publish must fail:\n{err}");
    assert!(err.contains("400") && err.contains("two package.json files"), "{err}");

    // The same upload by hand: the stable code, the sentence; nothing stored.
    let resp = put(&app, &alice.token, name, &publish_body(name, "1.0.0", &tarball), None).await;
    let message = expect_error(resp, StatusCode::BAD_REQUEST, "ambiguous_tarball").await;
    assert!(message.contains("two package.json files (package/package.json twice)"), "{message}");
    assert!(app.store().package(name).await.unwrap().is_none());
    assert!(app.store().tarball(name, "1.0.0").await.unwrap().is_none());
    let status = app.http.get(app.url(&format!("/{}", encode(name)))).send().await.unwrap().status();
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn npm_pack_tarballs_with_long_and_unicode_paths_are_accepted() {
    if !npm_available() || !available("node-tar check", &[("node", &["--version"])]) {
        return;
    }
    // npm pack writes PAX headers (and truncated header paths) for these.
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("pkg");
    let long = pkg.join("lib").join("a".repeat(120));
    std::fs::create_dir_all(&long).unwrap();
    std::fs::write(long.join(format!("{}.js", "c".repeat(110))), "x").unwrap();
    let deep = pkg.join(["bbbbbbbbbb"; 14].join("/"));
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("file.js"), "y").unwrap();
    std::fs::write(pkg.join("h\u{e9}llo-\u{fc}n\u{ef}code.js"), "z").unwrap();
    let manifest = r#"{"name":"long-paths","version":"1.0.0"}"#;
    std::fs::write(pkg.join("package.json"), manifest).unwrap();
    let tarball = tapgate::pack::pack(&pkg).unwrap().bytes;
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(tarball.as_slice()).read_to_end(&mut tar).unwrap();
    assert!(tar.windows(10).any(|w| w == b"PaxHeader/"), "npm pack wrote no PAX header");
    let ours = package_json_bytes(&tarball).unwrap();
    let unpacked = unpack_with_node_tar(dir.path(), std::slice::from_ref(&tarball));
    assert_eq!(unpacked[0].package_json.as_deref(), Some(ours.as_slice()));
    assert_eq!(serde_json::from_slice::<Value>(&ours).unwrap()["name"], "long-paths");
}
