//! The approval record `tapgate verify` fetches from the registry (a malicious registry writes
//! it): deserialised, then checked against the fixture tarball, a keyring trusting the fixture
//! key, and no pinned registry keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapgate::keyring::Keyring;
use tapgate::verify::verify_record_with;
use tapgate_fuzz::{KEYRING, RECORD_TARBALL};
use tapgate_shared::api::ApprovalRecord;
use tapgate_shared::ci::ServerKeys;
use tapgate_shared::intent::sri_sha512;

fuzz_target!(|data: &[u8]| {
    let Ok(record) = serde_json::from_slice::<ApprovalRecord>(data) else { return };
    let Ok(keyring) = Keyring::parse(KEYRING, "fixture") else { return };
    let integrity = sri_sha512(RECORD_TARBALL);
    let v = verify_record_with(
        &record,
        &record.intent.package,
        &record.intent.version,
        RECORD_TARBALL,
        &integrity,
        &keyring,
        &ServerKeys::default(),
    );
    let _ = v.ok();
    let v = verify_record_with(&record, "fuzz-pkg", "1.0.0", b"", "", &keyring, &ServerKeys::default());
    assert!(!v.ok(), "an empty tarball verified");
});
