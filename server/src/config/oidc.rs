//! Flags for trusted publishing: the OIDC issuers the registry trusts (none by default), and the
//! CI ways of new packages' policy. Each is also a `TAPGATE_*` environment variable and a key of
//! the config file (`[oidc]` table; `default_ci` at the top level).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use tapgate_shared::api::CiMethod;

use crate::oidc::{Issuer, IssuerKind, OidcConfig};

#[derive(Debug, Clone, Default, Args)]
pub struct OidcArgs {
    /// An OIDC issuer whose ID tokens trusted publishing accepts:
    /// `NAME=URL[;kind=github|gitlab|circleci|generic][;ca=PEM_FILE][;require=CLAIM+CLAIM…]`, the URL
    /// exactly its tokens' `iss` (https). `kind` (default: NAME when it is one of npm's
    /// providers, else generic) picks what `npm trust github|gitlab|circleci` maps to; `ca` adds
    /// a CA its TLS certificate may chain to; `require` lists the claims every trust must
    /// constrain [default per kind: github repository+workflow_ref, gitlab
    /// project_path+ci_config_ref_uri, circleci org-id+project-id, generic sub]. Repeat or
    /// comma-separate. None is trusted unless listed.
    #[arg(long = "oidc-issuer", env = "TAPGATE_OIDC_ISSUERS", value_delimiter = ',')]
    pub oidc_issuers: Vec<String>,
    /// Least seconds between two fetches of one issuer's keys, when a token names a key id they
    /// lack [default: 30]
    #[arg(long, env = "TAPGATE_OIDC_REFETCH_SECONDS")]
    pub oidc_refetch_seconds: Option<u64>,
    /// The CI ways (`"ci"`) of the policy new packages get: deploy-key, stage, oidc; repeat or
    /// comma-separate [default: none]. A pending trusted publisher (a trust for a name before
    /// its first publish) publishes only where this lists oidc.
    #[arg(long = "default-ci", env = "TAPGATE_DEFAULT_CI", value_delimiter = ',')]
    pub default_ci: Vec<String>,
}

/// One issuer in the config file's `[oidc]` table (`[[oidc.issuers]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerFile {
    pub name: String,
    pub url: String,
    pub kind: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub required_claims: Option<Vec<String>>,
}

/// The config file's `[oidc]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcFile {
    pub issuers: Option<Vec<IssuerFile>>,
    pub refetch_seconds: Option<u64>,
}

fn parse_spec(spec: &str) -> Result<IssuerFile, String> {
    let bad = |why: &str| format!("invalid --oidc-issuer {spec:?}: {why}");
    let mut items = spec.split(';');
    let (name, url) =
        items.next().and_then(|first| first.split_once('=')).ok_or_else(|| bad("start with NAME=URL"))?;
    let mut issuer = IssuerFile {
        name: name.trim().to_string(),
        url: url.trim().to_string(),
        kind: None,
        ca_file: None,
        required_claims: None,
    };
    for item in items {
        match item.split_once('=') {
            Some(("kind", k)) => issuer.kind = Some(k.to_string()),
            Some(("ca", f)) => issuer.ca_file = Some(PathBuf::from(f)),
            Some(("require", r)) => {
                issuer.required_claims =
                    Some(r.split('+').filter(|c| !c.is_empty()).map(str::to_string).collect());
            }
            _ => return Err(bad(&format!("unknown item {item:?}: use kind=, ca= or require="))),
        }
    }
    Ok(issuer)
}

fn build(issuer: IssuerFile) -> Result<Issuer, String> {
    let name = issuer.name;
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid_name {
        return Err(format!("invalid OIDC issuer name {name:?}: lowercase letters, digits, '-' and '_'"));
    }
    let kind = match issuer.kind.as_deref() {
        Some(k) => IssuerKind::parse(k)?,
        None => IssuerKind::parse(&name).unwrap_or(IssuerKind::Generic),
    };
    let ca = match &issuer.ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| format!("cannot read the CA file {} of issuer {name}: {e}", path.display()))?,
        ),
        None => None,
    };
    let required = issuer.required_claims.unwrap_or_else(|| kind.default_required_claims());
    Issuer::new(name, issuer.url, kind, required, ca.as_deref())
}

/// Merges flags over the file: the trusted issuers, and the default policy's CI ways.
pub fn resolve(
    args: &OidcArgs,
    file: OidcFile,
    file_default_ci: Option<Vec<String>>,
) -> Result<(OidcConfig, Vec<CiMethod>), String> {
    let specs = if args.oidc_issuers.is_empty() {
        file.issuers.unwrap_or_default()
    } else {
        args.oidc_issuers.iter().map(|s| parse_spec(s)).collect::<Result<_, _>>()?
    };
    let mut issuers: Vec<Issuer> = Vec::new();
    for spec in specs {
        let issuer = build(spec)?;
        if issuers.iter().any(|i| i.name == issuer.name || i.url == issuer.url) {
            return Err(format!("the OIDC issuer {} ({}) is listed twice", issuer.name, issuer.url));
        }
        issuers.push(issuer);
    }
    let refetch = args.oidc_refetch_seconds.or(file.refetch_seconds).unwrap_or(30);
    let listed = if args.default_ci.is_empty() {
        file_default_ci.unwrap_or_default()
    } else {
        args.default_ci.clone()
    };
    let default_ci = listed
        .iter()
        .map(|m| {
            serde_json::from_value::<CiMethod>(serde_json::Value::String(m.clone()))
                .map_err(|_| format!("invalid --default-ci {m:?}: use deploy-key, stage or oidc"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((OidcConfig::new(issuers, Duration::from_secs(refetch)), default_ci))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_kind_ca_and_required_claims() {
        let spec = parse_spec("forgejo=https://code.example/api/actions;require=repository+ref")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((spec.name.as_str(), spec.url.as_str()), ("forgejo", "https://code.example/api/actions"));
        assert_eq!(spec.required_claims, Some(vec!["repository".to_string(), "ref".to_string()]));
        let issuer = build(spec).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(issuer.kind, IssuerKind::Generic);
        let github = build(
            parse_spec("github=https://token.actions.githubusercontent.com")
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((github.kind, github.required_claims.len()), (IssuerKind::GitHub, 2));
        assert!(parse_spec("nope").is_err());
        assert!(parse_spec("a=https://x;color=blue").is_err());
        assert!(
            build(parse_spec("plain=http://insecure.example").unwrap_or_else(|e| panic!("{e}"))).is_err()
        );
        let none = resolve(&OidcArgs::default(), OidcFile::default(), None).unwrap_or_else(|e| panic!("{e}"));
        assert!(none.0.issuers.is_empty(), "no issuer is trusted by default");
        assert!(none.1.is_empty());
    }
}
