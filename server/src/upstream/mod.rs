//! The upstream proxy (`--upstream URL`, off by default): names that do not belong to this
//! registry are read from another npm registry, and their tarballs cached here once their
//! SHA-512 matches the upstream's `dist.integrity`.
//!
//! The upstream is just another HTTP server and is trusted with nothing local: it is asked only
//! for names this registry does not hold (published, reserved, unpublished, or in a scope owned
//! here — see [`crate::store::Store::is_local_name`]), only for reads, with no credentials, no
//! redirects followed, bounded time and bounded bodies; its packuments are rebuilt
//! ([`packument::rebuild`]) rather than passed through. A local first publish of a name it
//! served is refused ([`claim_refusal`]).

pub mod packument;

use std::time::Duration;

use serde_json::Value;

use crate::publish::served::Form;

pub use packument::{Rebuilt, Source};

/// How the proxy reaches its upstream.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The upstream registry, e.g. `https://registry.npmjs.org/`.
    pub url: url::Url,
    /// The largest packument read from it.
    pub max_packument_bytes: usize,
    /// The whole of one request to it.
    pub timeout: Duration,
    /// The cached tarballs' total size; the oldest are evicted first.
    pub cache_bytes: i64,
}

pub const DEFAULT_MAX_PACKUMENT_BYTES: usize = 16 * 1024 * 1024;
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30;
pub const DEFAULT_CACHE_BYTES: i64 = 1024 * 1024 * 1024;

/// The upstream registry and the client that talks to it.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub config: UpstreamConfig,
    http: reqwest::Client,
}

/// Why the upstream gave nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream does not have it either.
    #[error("{0}")]
    NotFound(String),
    /// The upstream could not be reached, timed out or failed.
    #[error("{0}")]
    Unavailable(String),
    /// The upstream's answer is malformed, too large, or about something else.
    #[error("{0}")]
    Invalid(String),
    /// The tarball's SHA-512 is not the one the upstream's packument declares.
    #[error("{0}")]
    IntegrityMismatch(String),
}

/// The sentence refusing a local first publish of a name served from the upstream.
pub fn claim_refusal(name: &str) -> String {
    format!(
        "{name} is a public package this registry serves from its upstream registry, so nobody claims it here by \
         publishing; if it should be a local package instead, an administrator reserves it for its owner \
         (`tapgate-server package reserve {name} --owner USER`), and from then on only local versions are served"
    )
}

impl Upstream {
    pub fn new(config: UpstreamConfig) -> Result<Upstream, String> {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS for the upstream: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5).min(config.timeout))
            .timeout(config.timeout)
            .user_agent(concat!("tapgate-upstream/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the upstream client: {e}"))?;
        Ok(Upstream { config, http })
    }

    fn host(&self) -> String {
        self.config.url.host_str().unwrap_or("the upstream").to_string()
    }

    /// The upstream's packument of `name` in `form`, rebuilt to point at `base`.
    pub async fn packument(&self, name: &str, form: Form, base: &str) -> Result<Rebuilt, UpstreamError> {
        let encoded = name.replace('/', "%2f");
        let url = format!("{}/{encoded}", self.config.url.as_str().trim_end_matches('/'));
        let resp = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, form.content_type())
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        match resp.status() {
            s if s.is_success() => {}
            reqwest::StatusCode::NOT_FOUND => {
                return Err(UpstreamError::NotFound(format!(
                    "package {name:?} is neither in this registry nor in its upstream ({})",
                    self.host()
                )));
            }
            s => {
                return Err(UpstreamError::Unavailable(format!(
                    "the upstream registry ({}) answered {s} for {name}; try again later",
                    self.host()
                )));
            }
        }
        let body =
            self.read(resp, self.config.max_packument_bytes, &format!("the packument of {name}")).await?;
        let doc: Value = serde_json::from_slice(&body).map_err(|e| {
            UpstreamError::Invalid(format!("the upstream's packument of {name} is not JSON: {e}"))
        })?;
        packument::rebuild(name, doc, form, &self.config.url, base)
    }

    /// The tarball at `source`, checked against its integrity.
    pub async fn tarball(
        &self,
        what: &str,
        source: &Source,
        max_bytes: usize,
    ) -> Result<Vec<u8>, UpstreamError> {
        let resp = self.http.get(source.tarball.clone()).send().await.map_err(|e| self.unreachable(&e))?;
        if !resp.status().is_success() {
            return Err(UpstreamError::Unavailable(format!(
                "the upstream registry ({}) answered {} for the tarball of {what}",
                self.host(),
                resp.status()
            )));
        }
        let bytes = self.read(resp, max_bytes, &format!("the tarball of {what}")).await?;
        let got = tapgate_shared::intent::sri_sha512(&bytes);
        if got != source.integrity {
            return Err(UpstreamError::IntegrityMismatch(format!(
                "the upstream's tarball of {what} has integrity {got}, but its packument declares {}: \
                 it was altered or corrupted, and is neither served nor cached",
                source.integrity
            )));
        }
        Ok(bytes)
    }

    /// Reads a body of at most `max` bytes.
    async fn read(
        &self,
        mut resp: reqwest::Response,
        max: usize,
        what: &str,
    ) -> Result<Vec<u8>, UpstreamError> {
        let too_large = || {
            UpstreamError::Invalid(format!(
                "{what} from the upstream is larger than this registry reads ({max} bytes)"
            ))
        };
        if resp.content_length().is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.unreachable(&e))? {
            if body.len() + chunk.len() > max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn unreachable(&self, e: &reqwest::Error) -> UpstreamError {
        let why = if e.is_timeout() {
            format!("it did not answer within {} s", self.config.timeout.as_secs())
        } else {
            let mut cur: &dyn std::error::Error = e;
            while let Some(next) = cur.source() {
                cur = next;
            }
            cur.to_string()
        };
        UpstreamError::Unavailable(format!(
            "the upstream registry ({}) cannot be reached: {why}; packages of this registry are not affected",
            self.host()
        ))
    }
}
