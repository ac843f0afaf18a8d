//! npm's publish body (`PUT /<name>`): the JSON document, then the checks of one version with
//! its base64 tarball attachment (which runs the tarball reader on what it decodes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapgate_server::publish::packument::{has_attachments, parse_document, parse_upload_document};

/// The server's default `max_tarball_bytes` is 50 MiB; a smaller bound keeps runs fast and
/// exercises the size refusal.
const MAX_TARBALL_BYTES: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = parse_document(data) else { return };
    let _ = has_attachments(&doc);
    // The URL names the package; use the document's own name so the checks go deeper, and a
    // fixed one so the name mismatch is exercised too.
    let name = doc.get("name").and_then(|n| n.as_str()).unwrap_or("fuzz-pkg").to_string();
    let _ = parse_upload_document(&name, &doc, MAX_TARBALL_BYTES);
    let _ = parse_upload_document("fuzz-pkg", &doc, MAX_TARBALL_BYTES);
});
