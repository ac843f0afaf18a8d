//! The tarball reader: gzip, tar headers, PAX and GNU extensions, paths, `package.json`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapgate_server::publish::tarball;

fuzz_target!(|data: &[u8]| {
    let listed = tarball::contents(data);
    let manifest = tarball::manifest(data);
    let bytes = tarball::package_json_bytes(data);
    // One reader, three views: they accept and refuse the same tarballs.
    assert_eq!(listed.is_ok(), manifest.is_ok(), "contents and manifest disagree");
    assert_eq!(bytes.is_ok(), manifest.is_ok(), "package_json_bytes and manifest disagree");
    if let (Ok((from_contents, _)), Ok(manifest)) = (&listed, &manifest) {
        assert_eq!(from_contents, manifest);
        let _ = tarball::identity(manifest);
    }
});
