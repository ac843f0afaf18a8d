//! A page of a package's audit log as `tapgate audit verify` and `tapgate audit list` read it
//! from the registry: the hash chain, the signed head, and each entry's summary.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapgate::commands::audit::{check_signature, summary};
use tapgate_shared::audit::{AuditPage, verify_chain};

fuzz_target!(|data: &[u8]| {
    let Ok(page) = serde_json::from_slice::<AuditPage>(data) else { return };
    let _ = verify_chain(&page.chain, &page.entries);
    if let Some(head) = &page.signed_head {
        let _ = check_signature(head, &head.public_key);
    }
    for entry in &page.entries {
        let value: serde_json::Value = serde_json::from_str(&entry.entry).unwrap_or_default();
        let _ = summary(&value);
    }
});
