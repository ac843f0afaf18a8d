//! Flags for the upstream proxy. Each is also a `TAPGATE_*` environment variable and a key of the
//! config file's `[upstream]` table (`url`, `max_packument_bytes`, `timeout_seconds`,
//! `cache_bytes`).

use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use crate::upstream::{
    DEFAULT_CACHE_BYTES, DEFAULT_MAX_PACKUMENT_BYTES, DEFAULT_TIMEOUT_SECONDS, UpstreamConfig,
};

#[derive(Debug, Clone, Default, Args)]
pub struct UpstreamArgs {
    /// An npm registry to read names from that this registry does not hold, e.g.
    /// https://registry.npmjs.org/ [default: none, no proxy]. Names published, reserved or in a
    /// scope owned here are never read from it.
    #[arg(long = "upstream", env = "TAPGATE_UPSTREAM")]
    pub upstream: Option<String>,
    /// The largest packument read from the upstream, in bytes [default: 16777216]
    #[arg(long, env = "TAPGATE_UPSTREAM_MAX_PACKUMENT_BYTES")]
    pub upstream_max_packument_bytes: Option<usize>,
    /// The longest one request to the upstream may take, in seconds [default: 30]
    #[arg(long, env = "TAPGATE_UPSTREAM_TIMEOUT_SECONDS")]
    pub upstream_timeout_seconds: Option<u64>,
    /// The total size of the upstream tarballs kept in the database, in bytes; the oldest are
    /// evicted first [default: 1073741824]
    #[arg(long, env = "TAPGATE_UPSTREAM_CACHE_BYTES")]
    pub upstream_cache_bytes: Option<i64>,
}

/// The config file's `[upstream]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    pub url: Option<String>,
    pub max_packument_bytes: Option<usize>,
    pub timeout_seconds: Option<u64>,
    pub cache_bytes: Option<i64>,
}

/// Merges flags over the file; `None` when no upstream is configured.
pub fn resolve(args: &UpstreamArgs, file: UpstreamFile) -> Result<Option<UpstreamConfig>, String> {
    let Some(raw) = args.upstream.clone().or(file.url) else {
        return Ok(None);
    };
    let url = url::Url::parse(&raw).map_err(|e| format!("invalid --upstream {raw:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("invalid --upstream {raw:?}: use https://HOST[/PATH]"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        return Err(format!(
            "invalid --upstream {raw:?}: no credentials or query; the upstream is read anonymously"
        ));
    }
    let max_packument_bytes =
        args.upstream_max_packument_bytes.or(file.max_packument_bytes).unwrap_or(DEFAULT_MAX_PACKUMENT_BYTES);
    let timeout = args.upstream_timeout_seconds.or(file.timeout_seconds).unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    let cache_bytes = args.upstream_cache_bytes.or(file.cache_bytes).unwrap_or(DEFAULT_CACHE_BYTES);
    if max_packument_bytes == 0 || timeout == 0 || cache_bytes < 0 {
        return Err("--upstream-max-packument-bytes and --upstream-timeout-seconds must be at least 1, \
                    --upstream-cache-bytes at least 0"
            .into());
    }
    Ok(Some(UpstreamConfig { url, max_packument_bytes, timeout: Duration::from_secs(timeout), cache_bytes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_refuses_credentials() {
        assert!(resolve(&UpstreamArgs::default(), UpstreamFile::default()).ok().flatten().is_none());
        let args =
            UpstreamArgs { upstream: Some("https://u:p@registry.example/".into()), ..Default::default() };
        assert!(resolve(&args, UpstreamFile::default()).is_err());
        let args = UpstreamArgs { upstream: Some("file:///etc".into()), ..Default::default() };
        assert!(resolve(&args, UpstreamFile::default()).is_err());
        let file = UpstreamFile { url: Some("https://registry.npmjs.org/".into()), ..Default::default() };
        let c = resolve(&UpstreamArgs::default(), file).ok().flatten();
        assert_eq!(c.map(|c| c.cache_bytes), Some(DEFAULT_CACHE_BYTES));
    }
}
