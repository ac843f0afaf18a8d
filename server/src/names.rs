//! Validation of user names (and, later, package names).

/// Checks a username: 1–64 characters of lowercase ASCII letters, digits, `-`, `_`, `.`,
/// starting with a letter or digit.
pub fn validate_username(name: &str) -> Result<(), String> {
    let valid_chars =
        name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    let valid_start = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty() || name.len() > 64 || !valid_chars || !valid_start {
        return Err(format!(
            "invalid username {name:?}: use 1 to 64 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit"
        ));
    }
    Ok(())
}

/// Names the registry's own pages and endpoints use at the top level; no package may take them.
const RESERVED: &[&str] = &[
    "admin",
    "api",
    "approve",
    "enroll",
    "healthz",
    "keys",
    "login",
    "pending",
    "readyz",
    "static",
    "-",
    "favicon.ico",
];

/// Checks an npm package name (`name` or `@scope/name`) by npm's rules for new packages:
/// at most 214 characters, lowercase, URL-safe, not starting with `.` or `_`.
pub fn validate_package_name(name: &str) -> Result<(), String> {
    let fail = |why: &str| Err(format!("invalid package name {name:?}: {why}"));
    if name.is_empty() || name.len() > 214 {
        return fail("use 1 to 214 characters");
    }
    let (scope, bare) = match name.strip_prefix('@') {
        Some(rest) => match rest.split_once('/') {
            Some((scope, bare)) => (Some(scope), bare),
            None => return fail("a scoped name looks like @scope/name"),
        },
        None => (None, name),
    };
    let part_ok = |part: &str| {
        !part.is_empty()
            && !part.starts_with('.')
            && !part.starts_with('_')
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_' | '~'))
    };
    if scope.is_some_and(|s| !part_ok(s)) || !part_ok(bare) {
        return fail("use lowercase letters, digits, '-', '.', '_' or '~', not starting with '.' or '_'");
    }
    if scope.is_none() && RESERVED.contains(&bare) {
        return fail("the name is reserved by the registry");
    }
    Ok(())
}

/// Checks a version: semantic versioning `MAJOR.MINOR.PATCH[-pre][+build]`.
pub fn validate_version(version: &str) -> Result<(), String> {
    let fail =
        || Err(format!("invalid version {version:?}: use semantic versioning, e.g. 1.2.3 or 2.0.0-beta.1"));
    if version.is_empty() || version.len() > 256 {
        return fail();
    }
    let (main, build) = match version.split_once('+') {
        Some((m, b)) => (m, Some(b)),
        None => (version, None),
    };
    let (core, pre) = match main.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (main, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let number_ok = |n: &&str| {
        !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) && (n.len() == 1 || !n.starts_with('0'))
    };
    if numbers.len() != 3 || !numbers.iter().all(number_ok) {
        return fail();
    }
    let ident_ok = |s: &str| {
        s.split('.').all(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    if pre.is_some_and(|p| !ident_ok(p)) || build.is_some_and(|b| !ident_ok(b)) {
        return fail();
    }
    // npm's semver ignores build metadata: 1.0.0+x is 1.0.0 to installers, so it would reuse a
    // version number (and could shadow an unpublished one).
    if build.is_some() {
        return Err(format!(
            "invalid version {version:?}: build metadata (+…) is ignored by npm, so {main} would be published twice; drop it"
        ));
    }
    Ok(())
}

/// Orders two valid versions as semantic versioning does (shared with the CLI).
pub use tapgate_shared::publish_diff::compare_versions;

/// Checks a dist-tag: not empty, not a version, URL-safe.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 64
        && validate_version(tag).is_err()
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid dist-tag {tag:?}: use letters, digits, '-', '.', '_' (and not a version)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names() {
        for ok in ["left-pad", "@scope/pkg", "a", "x.y_z~1", "@a-b/c"] {
            assert!(validate_package_name(ok).is_ok(), "{ok}");
        }
        for bad in
            ["", "Left", ".x", "_x", "@scope", "@/x", "a b", "a/b", "keys", "api", &"x".repeat(215), "@s/.x"]
        {
            assert!(validate_package_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_and_tags() {
        for ok in ["1.0.0", "0.0.1-beta.1", "10.20.30", "1.0.0-rc-1"] {
            assert!(validate_version(ok).is_ok(), "{ok}");
        }
        for bad in ["1.0", "01.0.0", "1.0.0-", "v1.0.0", "1.0.0-be ta", "", "1.0.0+build.5"] {
            assert!(validate_version(bad).is_err(), "{bad}");
        }
        assert!(validate_tag("latest").is_ok());
        assert!(validate_tag("1.0.0").is_err());
        assert!(validate_tag("").is_err());
    }

    #[test]
    fn versions_order_as_semver() {
        let mut v = vec!["1.0.0", "1.0.0-beta.2", "1.0.0-beta.10", "0.9.9", "1.0.0-alpha", "1.10.0", "1.2.0"];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(v, ["0.9.9", "1.0.0-alpha", "1.0.0-beta.2", "1.0.0-beta.10", "1.0.0", "1.2.0", "1.10.0"]);
    }

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
