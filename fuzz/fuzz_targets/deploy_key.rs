//! CI deploy keys (`tg_dk_PAYLOAD.SIGNATURE`) as the server and `tapgate verify` read them, and
//! the UTC times in them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapgate_shared::ci::{DeployKey, format_utc, parse_utc};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(key) = DeployKey::parse(text) {
        assert_eq!(DeployKey::parse(&key.text()).as_ref(), Ok(&key), "text round trip");
        assert!(!key.verify(&[0; 32]));
        let _ = key.verify(&[1; 31]);
    }
    if let Some(at) = parse_utc(text) {
        assert_eq!(parse_utc(&format_utc(at)), Some(at), "time round trip");
    }
});
