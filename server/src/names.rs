//! Validation of user names (and, later, package names).

/// Checks a username: 1–64 characters of lowercase ASCII letters, digits, `-`, `_`, `.`,
/// starting with a letter or digit.
pub fn validate_username(name: &str) -> Result<(), String> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    let valid_start = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty() || name.len() > 64 || !valid_chars || !valid_start {
        return Err(format!(
            "invalid username {name:?}: use 1 to 64 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["alice", "a", "bob-2", "c.d_e"] {
            assert!(validate_username(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Alice", "-x", "a b", "ä", &"x".repeat(65), "a/b"] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }
}
