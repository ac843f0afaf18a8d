//! npm version ranges (policies' `versions`) and versions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapgate_shared::version_range::{Range, Version, satisfies};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (range, version) = text.split_once('\n').unwrap_or((text, "1.2.3"));
    if let Ok(parsed) = Range::parse(range) {
        assert_eq!(parsed.contains(version), satisfies(version, range));
    }
    let _ = Version::parse(version);
    let _ = Version::parse(range);
});
