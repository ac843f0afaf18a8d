//! What a trust requires of an ID token's claims, and whether a token meets it.
//!
//! A trust maps claim names to required values:
//! - a string: the token's claim is exactly that string;
//! - a list of strings: the token's claim is a list holding every one of them (CircleCI's
//!   `oidc.circleci.com/context-ids`);
//! - npm's `{"file": F}`, for two claims only: GitHub's `workflow_ref` must be
//!   `<repository>/.github/workflows/<F>@<ref>` (the trust's `repository`), GitLab's
//!   `ci_config_ref_uri` must be `<issuer host>/<project_path>//<F>@<ref>` (the trust's
//!   `project_path`).
//!
//! Nothing else is accepted, so a trust means one thing to the registry and to a verifier.

use serde_json::{Map, Value};

/// Claims one trust may constrain, and the longest name or value.
pub const MAX_CLAIMS: usize = 32;
const MAX_LEN: usize = 512;

/// Why a trust's claims are refused, or a token does not meet them (a sentence).
pub type ClaimsError = String;

fn file_of(value: &Value) -> Option<&str> {
    let obj = value.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    obj.get("file")?.as_str()
}

fn plain(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_LEN && !s.chars().any(char::is_control)
}

/// Checks a trust's claims when it is created: the shapes above, every claim in `required`
/// (the operator's list for the issuer) constrained, and at least one claim.
pub fn validate_claims(claims: &Map<String, Value>, required: &[String]) -> Result<(), ClaimsError> {
    if claims.is_empty() {
        return Err("a trust names the claims an ID token must carry (e.g. repository and workflow)".into());
    }
    if claims.len() > MAX_CLAIMS {
        return Err(format!("a trust constrains at most {MAX_CLAIMS} claims"));
    }
    for (name, value) in claims {
        if !plain(name) {
            return Err(format!("the claim name {name:?} is empty, too long or has control characters"));
        }
        let ok = match value {
            Value::String(s) => plain(s),
            Value::Array(list) => {
                !list.is_empty()
                    && list.len() <= MAX_CLAIMS
                    && list.iter().all(|v| v.as_str().is_some_and(plain))
            }
            Value::Object(_) => match (name.as_str(), file_of(value)) {
                ("workflow_ref", Some(f)) => {
                    plain(f) && !f.contains('/') && claims.get("repository").and_then(Value::as_str).is_some()
                }
                ("ci_config_ref_uri", Some(f)) => {
                    plain(f)
                        && !f.contains('/')
                        && claims.get("project_path").and_then(Value::as_str).is_some()
                }
                _ => false,
            },
            _ => false,
        };
        if !ok {
            return Err(format!(
                "the claim {name:?} must be a string, a list of strings, or {{\"file\": NAME}} (workflow_ref with \
                 repository, ci_config_ref_uri with project_path)"
            ));
        }
    }
    if let Some(missing) = required.iter().find(|r| !claims.contains_key(*r)) {
        return Err(format!(
            "this registry's operator requires every trust for this issuer to constrain the claim {missing:?}"
        ));
    }
    Ok(())
}

/// The host (and port, if any) of an issuer URL.
fn issuer_host(issuer: &str) -> &str {
    let rest = issuer.split_once("://").map_or(issuer, |(_, r)| r);
    rest.split('/').next().unwrap_or_default()
}

fn file_ref_matches(actual: &str, prefix: &str) -> bool {
    actual.strip_prefix(prefix).is_some_and(|r#ref| !r#ref.is_empty() && !r#ref.contains('@'))
}

/// Whether `token` (an ID token's claims, issued by `issuer`) meets every claim the trust
/// requires; the error names the first claim that does not.
pub fn match_claims(
    issuer: &str,
    required: &Map<String, Value>,
    token: &Map<String, Value>,
) -> Result<(), ClaimsError> {
    for (name, want) in required {
        let got = token.get(name);
        let ok = match want {
            Value::String(s) => got.and_then(Value::as_str) == Some(s.as_str()),
            Value::Array(list) => {
                got.and_then(Value::as_array).is_some_and(|have| list.iter().all(|w| have.contains(w)))
            }
            Value::Object(_) => {
                let (Some(file), Some(actual)) = (file_of(want), got.and_then(Value::as_str)) else {
                    return Err(format!("the ID token's {name} does not match the trust"));
                };
                let prefix = match name.as_str() {
                    "workflow_ref" => required
                        .get("repository")
                        .and_then(Value::as_str)
                        .map(|repo| format!("{repo}/.github/workflows/{file}@")),
                    "ci_config_ref_uri" => required
                        .get("project_path")
                        .and_then(Value::as_str)
                        .map(|project| format!("{}/{project}//{file}@", issuer_host(issuer))),
                    _ => None,
                };
                prefix.is_some_and(|p| file_ref_matches(actual, &p))
            }
            _ => false,
        };
        if !ok {
            let shown = got.map_or_else(
                || "absent".to_string(),
                |v| {
                    let s = v.to_string();
                    if s.len() > 120 { format!("{}…", &s[..s.floor_char_boundary(120)]) } else { s }
                },
            );
            return Err(format!("the ID token's claim {name} is {shown}, the trust requires {want}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn npm_github_shapes_match_the_workflow_file_exactly() {
        let trust = map(json!({"repository": "acme/app", "workflow_ref": {"file": "release.yml"}}));
        assert!(validate_claims(&trust, &["repository".into()]).is_ok());
        let token = |wf: &str| map(json!({"repository": "acme/app", "workflow_ref": wf}));
        let iss = "https://token.actions.githubusercontent.com";
        assert!(
            match_claims(iss, &trust, &token("acme/app/.github/workflows/release.yml@refs/heads/main"))
                .is_ok()
        );
        for bad in [
            "acme/app/.github/workflows/release.yml",
            "acme/app/.github/workflows/release.yml@",
            "acme/app/.github/workflows/release.yml.evil@refs/heads/x",
            "acme/app2/.github/workflows/release.yml@refs/heads/main",
            "evil/acme/app/.github/workflows/release.yml@refs/heads/main",
        ] {
            assert!(match_claims(iss, &trust, &token(bad)).is_err(), "{bad}");
        }
        let other_repo = map(
            json!({"repository": "evil/app", "workflow_ref": "acme/app/.github/workflows/release.yml@r"}),
        );
        assert!(match_claims(iss, &trust, &other_repo).is_err());
    }

    #[test]
    fn gitlab_config_refs_name_the_issuer_host() {
        let trust = map(json!({"project_path": "g/p", "ci_config_ref_uri": {"file": ".gitlab-ci.yml"}}));
        let iss = "https://gitlab.example:8443";
        let token = |uri: &str| map(json!({"project_path": "g/p", "ci_config_ref_uri": uri}));
        assert!(
            match_claims(iss, &trust, &token("gitlab.example:8443/g/p//.gitlab-ci.yml@refs/heads/main"))
                .is_ok()
        );
        assert!(match_claims(iss, &trust, &token("gitlab.com/g/p//.gitlab-ci.yml@refs/heads/main")).is_err());
    }

    #[test]
    fn lists_and_refused_shapes() {
        let trust = map(json!({"ctx": ["a", "b"], "sub": "x"}));
        assert!(match_claims("i", &trust, &map(json!({"ctx": ["b", "c", "a"], "sub": "x"}))).is_ok());
        assert!(match_claims("i", &trust, &map(json!({"ctx": ["a"], "sub": "x"}))).is_err());
        assert!(match_claims("i", &trust, &map(json!({"ctx": "a", "sub": "x"}))).is_err());
        assert!(validate_claims(&map(json!({})), &[]).is_err());
        assert!(validate_claims(&map(json!({"n": 1})), &[]).is_err());
        assert!(validate_claims(&map(json!({"sub": {"file": "x"}})), &[]).is_err());
        assert!(
            validate_claims(&map(json!({"workflow_ref": {"file": "x.yml"}})), &[]).is_err(),
            "without repository"
        );
        assert!(validate_claims(&map(json!({"sub": "x"})), &["repository".into()]).is_err());
    }
}
