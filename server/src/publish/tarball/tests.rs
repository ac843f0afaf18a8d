//! Each refusal, on tarballs built byte by byte; and what npm pack and the `tar` crate write.

use super::*;

const MANIFEST: &str = r#"{"name":"x","version":"1.0.0"}"#;

/// A gzipped tarball holding `package/package.json` with the given content (test helper), as
/// the `tar` crate writes it (GNU headers).
pub fn tarball_with(package_json: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(package_json.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, "package/package.json", package_json.as_bytes()).unwrap();
    gz(&builder.into_inner().unwrap())
}

fn gz(tar: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, tar).unwrap();
    gz.finish().unwrap()
}

fn put(block: &mut [u8], offset: usize, bytes: &[u8]) {
    block[offset..offset + bytes.len()].copy_from_slice(bytes);
}

fn octal(block: &mut [u8], offset: usize, width: usize, value: u64) {
    put(block, offset, format!("{value:0w$o}\0", w = width - 1).as_bytes());
}

fn seal(block: &mut [u8; BLOCK]) {
    let sum = header::checksum(block);
    put(block, 148, format!("{sum:06o}\0 ").as_bytes());
}

/// A POSIX ustar header, unsealed.
fn raw_header(name: &str, typeflag: u8, size: u64) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    put(&mut block, 0, name.as_bytes());
    octal(&mut block, 100, 8, 0o644);
    octal(&mut block, 124, 12, size);
    octal(&mut block, 136, 12, 499162500);
    block[156] = typeflag;
    put(&mut block, 257, b"ustar\x0000");
    block
}

fn with_data(mut block: [u8; BLOCK], data: &[u8]) -> Vec<u8> {
    seal(&mut block);
    let mut out = block.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    out
}

fn file(name: &str, data: &str) -> Vec<u8> {
    with_data(raw_header(name, b'0', data.len() as u64), data.as_bytes())
}

fn typed(name: &str, typeflag: u8) -> Vec<u8> {
    with_data(raw_header(name, typeflag, 0), b"")
}

fn extended(typeflag: u8, body: &str) -> Vec<u8> {
    with_data(raw_header("PaxHeader/x", typeflag, body.len() as u64), body.as_bytes())
}

fn record(key: &str, value: &str) -> String {
    let content = format!(" {key}={value}\n");
    let mut len = content.len() + 1;
    while len.to_string().len() + content.len() != len {
        len += 1;
    }
    format!("{len}{content}")
}

fn pax(records: &[(&str, &str)]) -> Vec<u8> {
    extended(b'x', &records.iter().map(|(k, v)| record(k, v)).collect::<String>())
}

fn tgz(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut tar = entries.concat();
    tar.extend_from_slice(&[0; 2 * BLOCK]);
    gz(&tar)
}

fn manifest_file() -> Vec<u8> {
    file("package/package.json", MANIFEST)
}

#[track_caller]
fn accepted(tarball: &[u8]) -> String {
    String::from_utf8(package_json_bytes(tarball).unwrap()).unwrap()
}

#[track_caller]
fn refused(tarball: &[u8], kind: TarballErrorKind, needle: &str) {
    let err = package_json_bytes(tarball).unwrap_err();
    assert_eq!(err.kind, kind, "{err}");
    assert!(err.message.contains(needle), "{needle:?} not in: {err}");
}

#[track_caller]
fn ambiguous(tarball: &[u8], needle: &str) {
    refused(tarball, TarballErrorKind::Ambiguous, needle);
}

#[test]
fn reads_name_and_version() {
    let t = tarball_with(MANIFEST);
    assert_eq!(identity(&manifest(&t).unwrap()).unwrap(), ("x".into(), "1.0.0".into()));
}

#[test]
fn refuses_garbage_and_missing_manifest() {
    refused(b"not gzip", TarballErrorKind::Malformed, "not gzip");
    assert!(manifest(&tarball_with("{")).is_err());
    assert!(identity(&manifest(&tarball_with(r#"{"name":"x"}"#)).unwrap()).is_err());
    refused(&tgz(&[file("package/index.js", "1")]), TarballErrorKind::Malformed, "no package.json");
    refused(&gz(b""), TarballErrorKind::Malformed, "no package.json");
}

#[test]
fn accepts_what_npm_pack_and_the_tar_crate_write() {
    // npm pack: POSIX headers, a PAX path for long and non-ASCII names, the header holding a
    // truncated path.
    let long = format!("package/lib/{}/{}.js", "a".repeat(120), "c".repeat(110));
    let mut truncated = raw_header(&"c".repeat(99), b'0', 2);
    put(&mut truncated, 345, format!("package/lib/{}", "a".repeat(120)).as_bytes());
    let unicode = "package/h\u{e9}llo.js";
    let tarball = tgz(&[
        pax(&[("path", &long), ("mtime", "499162500"), ("size", "2")]),
        with_data(truncated, b"x\n"),
        pax(&[("path", unicode), ("mtime", "499162500"), ("size", "2")]),
        file(unicode, "z\n"),
        typed("package/lib/", b'5'),
        manifest_file(),
    ]);
    assert_eq!(accepted(&tarball), MANIFEST);
    // The tar crate: GNU headers and GNU long names.
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in
        [(format!("package/{}/x.js", "d".repeat(150)), "1"), ("package/package.json".into(), MANIFEST)]
    {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, path, data.as_bytes()).unwrap();
    }
    assert_eq!(accepted(&gz(&builder.into_inner().unwrap())), MANIFEST);
    // A global comment (git archive), and a tarball with no end-of-archive blocks.
    let commented = tgz(&[extended(b'g', &record("comment", "0123abc")), manifest_file()]);
    assert_eq!(accepted(&commented), MANIFEST);
    assert_eq!(accepted(&gz(&manifest_file())), MANIFEST);
}

#[test]
fn refuses_data_after_the_end_or_after_the_gzip_stream() {
    let mut after_end = manifest_file();
    after_end.extend_from_slice(&[0; 2 * BLOCK]);
    after_end.extend_from_slice(&file("package/package.json", r#"{"scripts":{}}"#));
    ambiguous(&gz(&after_end), "after its end-of-archive marker");
    let mut after_one_zero_block = manifest_file();
    after_one_zero_block.extend_from_slice(&[0; BLOCK]);
    after_one_zero_block.extend_from_slice(&file("package/index.js", "1"));
    ambiguous(&gz(&after_one_zero_block), "after its end-of-archive marker");
    let mut trailing = manifest_file();
    trailing.extend_from_slice(&[0; 2 * BLOCK]);
    trailing.push(1);
    ambiguous(&gz(&trailing), "after its end-of-archive marker");
    let mut partial = manifest_file();
    partial.extend_from_slice(b"tail");
    ambiguous(&gz(&partial), "partial block");

    let good = tgz(&[manifest_file()]);
    let mut two_members = good.clone();
    two_members.extend_from_slice(&tgz(&[file("package/package.json", "{}")]));
    ambiguous(&two_members, "second gzip stream");
    let mut garbage = good.clone();
    garbage.extend_from_slice(b"junk");
    ambiguous(&garbage, "4 bytes after its gzip stream");
    refused(&good[..good.len() - 4], TarballErrorKind::Malformed, "corrupt or truncated");
    let mut crc = good.clone();
    let at = crc.len() - 8;
    crc[at] ^= 1;
    refused(&crc, TarballErrorKind::Malformed, "corrupt");
    // Zero padding past the end is fine.
    let mut padded = manifest_file();
    padded.extend_from_slice(&[0; 20 * BLOCK + 7]);
    assert_eq!(accepted(&gz(&padded)), MANIFEST);
}

#[test]
fn refuses_a_second_package_json_in_any_spelling() {
    let two = |other: Vec<u8>| tgz(&[manifest_file(), other]);
    let evil = r#"{"name":"x","version":"1.0.0","scripts":{"postinstall":"evil"}}"#;
    ambiguous(
        &two(file("package/package.json", evil)),
        "two package.json files (package/package.json twice)",
    );
    ambiguous(&two(file("other/package.json", evil)), "(package/package.json and other/package.json)");
    for spelling in ["./package/package.json", "package//package.json", "package/./package.json"] {
        ambiguous(&two(file(spelling, evil)), "empty or '.' component");
    }
    for alias in [
        "package/Package.json",
        "package/PACKAGE.JSON",
        "package/package.json.",
        "package/package.json ",
        "package/PACKAG~1.JSO",
        "package/pac\u{200b}kage.json",
        "package/pac\u{212a}age.json",
    ] {
        ambiguous(&two(file(alias, evil)), "two package.json files");
        ambiguous(&tgz(&[file(alias, MANIFEST)]), "which some systems unpack as package.json");
    }
    ambiguous(&tgz(&[typed("package/package.json/", b'5'), manifest_file()]), "a folder named package.json");
    ambiguous(&tgz(&[file("package/package.json/x", "1")]), "a folder named package.json");
    // Not at the top: fine.
    let nested = tgz(&[file("package/node_modules/y/package.json", "{}"), manifest_file()]);
    assert_eq!(accepted(&nested), MANIFEST);
}

#[test]
fn refuses_duplicates_and_files_that_are_folders() {
    ambiguous(
        &tgz(&[file("package/a.js", "1"), file("package/a.js", "2"), manifest_file()]),
        "package/a.js twice",
    );
    ambiguous(
        &tgz(&[file("a/x.js", "1"), file("b/x.js", "2"), manifest_file()]),
        "a/x.js and b/x.js, which npm unpacks to the same place",
    );
    ambiguous(
        &tgz(&[file("package/lib", "1"), file("package/lib/x.js", "2"), manifest_file()]),
        "also holds as a file",
    );
    ambiguous(&tgz(&[file("package/lib", "1"), typed("package/lib/", b'5'), manifest_file()]), "same place");
}

#[test]
fn refuses_links_devices_and_other_entry_types() {
    for (typeflag, what) in [
        (b'1', "a hard link"),
        (b'2', "a symbolic link"),
        (b'3', "a character device"),
        (b'4', "a block device"),
        (b'6', "a FIFO"),
        (b'7', "a contiguous file"),
        (b'K', "a GNU long link name"),
        (b'S', "a GNU sparse file"),
        (b'V', "unsupported type"),
    ] {
        ambiguous(&tgz(&[typed("package/package.json", typeflag), manifest_file()]), what);
    }
    let mut linked = raw_header("package/a.js", b'0', 0);
    put(&mut linked, 157, b"package/package.json");
    ambiguous(&tgz(&[with_data(linked, b""), manifest_file()]), "names a link target");
}

#[test]
fn refuses_extended_headers_that_rename_or_resize() {
    let evil = r#"{"name":"x","version":"1.0.0","scripts":{"postinstall":"evil"}}"#;
    // A PAX path turning an entry into package.json, or one out of it.
    let into = tgz(&[pax(&[("path", "package/package.json")]), file("package/index.js", evil)]);
    ambiguous(&into, "named by a PAX header");
    let out =
        tgz(&[pax(&[("path", "package/index.js")]), file("package/package.json", evil), manifest_file()]);
    ambiguous(&out, "readers that ignore the latter take it for package.json");
    let long = tgz(&[
        with_data(raw_header("././@LongLink", b'L', 20), b"package/package.json"),
        file("package/index.js", evil),
    ]);
    ambiguous(&long, "named by a GNU long-name header");
    // Sizes, keys and record syntax.
    let resized = tgz(&[pax(&[("size", "3")]), file("package/a.js", "12"), manifest_file()]);
    ambiguous(&resized, "a size of 3 bytes, its own header 2");
    for key in ["linkpath", "type", "mode", "GNU.sparse.name", "hdrcharset"] {
        ambiguous(
            &tgz(&[pax(&[(key, "1")]), file("package/a.js", "1"), manifest_file()]),
            "which tar readers treat",
        );
    }
    let twice = tgz(&[pax(&[("mtime", "1"), ("mtime", "2")]), file("package/a.js", "1"), manifest_file()]);
    ambiguous(&twice, "twice");
    for body in
        ["9 path=ab\n", "012 path=ab\n", "13 path=a\nb\n", "12 path=a\0b\n", "path=a\n", "10 pathab\n"]
    {
        ambiguous(&tgz(&[extended(b'x', body), file("package/a.js", "1"), manifest_file()]), "malformed");
    }
    ambiguous(&tgz(&[pax(&[("size", "01")]), file("package/a.js", "1"), manifest_file()]), "malformed size");
    ambiguous(&tgz(&[pax(&[("path", "")]), file("package/a.js", "1"), manifest_file()]), "malformed path");
    let global_path = tgz(&[extended(b'g', &record("path", "package/package.json")), manifest_file()]);
    ambiguous(&global_path, "which tar readers treat differently");
    // Extended headers in a row, or describing nothing.
    let in_a_row = tgz(&[pax(&[("mtime", "1")]), pax(&[("mtime", "2")]), manifest_file()]);
    ambiguous(&in_a_row, "two extended headers in a row");
    ambiguous(&tgz(&[manifest_file(), pax(&[("mtime", "1")])]), "describes no entry");
    ambiguous(&tgz(&[extended(b'x', ""), manifest_file()]), "extended header of 0 bytes");
}

#[test]
fn refuses_paths_that_leave_the_package_or_readers_strip_differently() {
    for (path, why) in [
        ("package/../package.json", "leaves the package folder"),
        ("/package/package.json", "absolute path"),
        ("package\\package.json", "backslash"),
        ("package/a\u{1}b.js", "control character"),
        ("c:/package.json", "drive letter"),
        ("package/c:package.json", "drive letter"),
        ("package.json", "a file outside any folder"),
        ("package/a.js/", "ends with '/'"),
    ] {
        ambiguous(&tgz(&[manifest_file(), file(path, "1")]), why);
    }
    // A NUL in the name field with more after it.
    let mut nul = raw_header("package/a.js", b'0', 0);
    put(&mut nul, 12, b"\0package.json");
    ambiguous(&tgz(&[with_data(nul, b""), manifest_file()]), "malformed name field");
    // The header path a PAX path overrides must not leave the package either.
    let hidden = tgz(&[pax(&[("path", "package/a.js")]), file("../x.js", "1"), manifest_file()]);
    ambiguous(&hidden, "leaves the package folder");
}

#[test]
fn refuses_malformed_headers() {
    let mut bad_sum = raw_header("package/package.json", b'0', MANIFEST.len() as u64);
    seal(&mut bad_sum);
    bad_sum[0] = b'P';
    let mut tar = bad_sum.to_vec();
    tar.extend_from_slice(MANIFEST.as_bytes());
    tar.resize(2 * BLOCK, 0);
    ambiguous(&tgz(&[tar]), "wrong checksum");
    // Numbers: base-256, no terminator, stray characters.
    for (offset, width, bytes) in [
        (124usize, 12usize, &b"\x80\0\0\0\0\0\0\0\0\0\0\x1e"[..]),
        (124, 12, b"000000000036"),
        (124, 12, b"0000000036x\0"),
        (136, 12, b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"),
        (108, 8, b"-000001\0"),
    ] {
        let mut block = raw_header("package/package.json", b'0', MANIFEST.len() as u64);
        put(&mut block, offset, &bytes[..width]);
        ambiguous(&tgz(&[with_data(block, MANIFEST.as_bytes())]), "malformed");
    }
    let mut v7 = raw_header("package/package.json", b'0', MANIFEST.len() as u64);
    put(&mut v7, 257, &[0; 8]);
    ambiguous(&tgz(&[with_data(v7, MANIFEST.as_bytes())]), "neither POSIX ustar nor GNU tar");
    ambiguous(&tgz(&[with_data(raw_header("package/lib/", b'5', 1), b"x"), manifest_file()]), "has data");
    let mut truncated = manifest_file();
    truncated.truncate(BLOCK + 10);
    refused(&gz(&truncated), TarballErrorKind::Malformed, "truncated inside package.json");
}

#[test]
fn bounds_memory_and_decompression() {
    let big = format!("{{\"pad\":\"{}\"}}", " ".repeat(1024 * 1024));
    refused(&tgz(&[file("package/package.json", &big)]), TarballErrorKind::Malformed, "larger than 1024 KiB");
    // All zeros compresses about 1000-fold: a bomb of them stops early.
    let mut bomb = manifest_file();
    bomb.extend_from_slice(&vec![0; 64 * 1024 * 1024]);
    refused(&gz(&bomb), TarballErrorKind::Malformed, "expands more than 1000-fold");
}

#[test]
fn looks_like_package_json_folds_cases_look_alikes_and_short_names() {
    for yes in ["package.json", "Package.JSON", "package.json..", "PACKAG~1.JSO", "package.j\u{17f}on"] {
        assert!(paths::looks_like_package_json(yes), "{yes}");
    }
    for no in ["package.json5", "packages.json", "package-lock.json", "index.js", "~1.js"] {
        assert!(!paths::looks_like_package_json(no), "{no}");
    }
}
