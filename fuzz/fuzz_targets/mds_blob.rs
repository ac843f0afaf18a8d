//! A FIDO Metadata Service BLOB (a JWS, `--fido-mds`) checked as at start-up: its header, the
//! `x5c` chain to the test root, the signature, then the payload.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use tapgate_server::webauthn::mds::{MdsRoots, verify_blob};

const ROOT: &str = include_str!("../../server/src/webauthn/mds/testdata/rs256-root.pem");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(roots) = MdsRoots::from_pem(ROOT) else { return };
    // 2026-12-01: inside the test chain's validity and before the seed's nextUpdate.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_083_200);
    let _ = verify_blob(text, &roots.requiring_signer_domain("fidoalliance.org"), now);
});
