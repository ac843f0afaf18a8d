//! The server's TOML config file, read and checked exactly as `tapgate-server serve --config`
//! does (flags and environment empty).
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use tapgate_server::config::{GlobalArgs, ServeArgs, Settings};

fuzz_target!(|data: &[u8]| {
    let Ok(mut file) = tempfile::NamedTempFile::new() else { return };
    if file.write_all(data).is_err() {
        return;
    }
    let global = GlobalArgs { config: Some(file.path().to_path_buf()), ..GlobalArgs::default() };
    let _ = Settings::resolve(&global, &ServeArgs::default());
});
