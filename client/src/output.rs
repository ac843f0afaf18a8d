//! Printing: results to stdout (text or `--json`), everything else to stderr.

use serde::Serialize;

/// Prints `value` as JSON when `json`, else the human text.
pub fn emit<T: Serialize>(json: bool, value: &T, human: impl FnOnce() -> String) {
    if json {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("error: cannot render JSON output: {e}"),
        }
    } else {
        println!("{}", human());
    }
}
