//! The issuers the operator trusts and their signing keys: each issuer's discovery document
//! (`<issuer>/.well-known/openid-configuration`) names its `jwks_uri`; both are fetched over
//! HTTPS (the Mozilla roots, plus the issuer's own CA file if the operator gave one), bounded in
//! size and time, without redirects. Keys are cached; a token naming a `kid` the cache does not
//! hold refetches the keys once — at most once per `min_refetch` per issuer, so tokens with
//! made-up key ids cannot make the registry hammer an issuer — and key rotation just works.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tapgate_shared::oidc::{Jwk, Jwks};
use tokio::sync::Mutex;

/// Which of npm's `npm trust` shortcuts an issuer answers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerKind {
    GitHub,
    GitLab,
    CircleCi,
    Generic,
}

impl IssuerKind {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "github" => Ok(Self::GitHub),
            "gitlab" => Ok(Self::GitLab),
            "circleci" => Ok(Self::CircleCi),
            "generic" => Ok(Self::Generic),
            other => Err(format!("unknown issuer kind {other:?}: use github, gitlab, circleci or generic")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::GitHub => "github",
            Self::GitLab => "gitlab",
            Self::CircleCi => "circleci",
            Self::Generic => "generic",
        }
    }

    /// The claims a trust must constrain unless the operator says otherwise: enough that a
    /// trust names one repository's one workflow (or one project), never "anyone on GitHub".
    pub fn default_required_claims(self) -> Vec<String> {
        let names: &[&str] = match self {
            Self::GitHub => &["repository", "workflow_ref"],
            Self::GitLab => &["project_path", "ci_config_ref_uri"],
            Self::CircleCi => &["oidc.circleci.com/org-id", "oidc.circleci.com/project-id"],
            Self::Generic => &["sub"],
        };
        names.iter().map(|s| (*s).to_string()).collect()
    }
}

/// One trusted issuer.
#[derive(Debug, Clone)]
pub struct Issuer {
    /// The operator's name for it (`tapgate trust add --issuer NAME`).
    pub name: String,
    /// Exactly the `iss` its tokens carry (an `https://` URL).
    pub url: String,
    pub kind: IssuerKind,
    pub required_claims: Vec<String>,
    http: reqwest::Client,
}

/// The trusted issuers and their cached keys. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct OidcConfig {
    pub issuers: Vec<Issuer>,
    /// The least time between two fetches of one issuer's keys.
    pub min_refetch: Duration,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

#[derive(Debug, Clone)]
struct Cached {
    keys: Vec<Jwk>,
    fetched: Instant,
}

/// Cached keys are refetched after this long even when they hold the `kid`.
const MAX_AGE: Duration = Duration::from_secs(3600);
/// Largest discovery document or key set read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Why an issuer's key could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The issuer publishes no key with this id (after a refetch, or within the refetch limit).
    UnknownKid(String),
    /// The issuer's documents cannot be fetched or read.
    Unavailable(String),
}

impl Issuer {
    /// An issuer; `ca_pem` is an extra CA (PEM) its TLS certificate may chain to.
    pub fn new(
        name: String,
        url: String,
        kind: IssuerKind,
        required_claims: Vec<String>,
        ca_pem: Option<&[u8]>,
    ) -> Result<Issuer, String> {
        let parsed = url::Url::parse(&url).map_err(|e| format!("the issuer URL {url:?} is invalid: {e}"))?;
        if parsed.scheme() != "https" || parsed.host_str().is_none() || parsed.query().is_some() {
            return Err(format!(
                "the issuer URL {url:?} must be https://HOST[/PATH] (its tokens' iss, exactly)"
            ));
        }
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let Some(pem) = ca_pem {
            let mut added = 0;
            use rustls::pki_types::pem::PemObject;
            for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("the CA file of issuer {name} is not PEM: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("the CA file of issuer {name} holds a bad certificate: {e}"))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!("the CA file of issuer {name} holds no certificate"));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS for issuer {name}: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("tapgate-oidc/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client for issuer {name}: {e}"))?;
        Ok(Issuer { name, url, kind, required_claims, http })
    }

    async fn get_json(&self, url: &str, what: &str) -> Result<serde_json::Value, String> {
        let mut resp =
            self.http.get(url).send().await.map_err(|e| format!("cannot fetch {what} at {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{what} at {url} answered {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("cannot read {what} at {url}: {e}"))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("{what} at {url} is larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("{what} at {url} is not JSON: {e}"))
    }

    /// Fetches the issuer's current keys through its discovery document.
    async fn fetch_keys(&self) -> Result<Vec<Jwk>, String> {
        let discovery_url = format!("{}/.well-known/openid-configuration", self.url.trim_end_matches('/'));
        let discovery = self.get_json(&discovery_url, "the discovery document").await?;
        if discovery["issuer"].as_str() != Some(self.url.as_str()) {
            return Err(format!(
                "the discovery document at {discovery_url} names the issuer {}, not {}",
                discovery["issuer"], self.url
            ));
        }
        let jwks_uri = discovery["jwks_uri"]
            .as_str()
            .filter(|u| u.starts_with("https://"))
            .ok_or_else(|| format!("the discovery document at {discovery_url} names no https:// jwks_uri"))?;
        let jwks: Jwks = serde_json::from_value(self.get_json(jwks_uri, "the key set").await?)
            .map_err(|e| format!("the key set at {jwks_uri} is not a JWK Set: {e}"))?;
        Ok(jwks.usable())
    }
}

impl OidcConfig {
    pub fn new(issuers: Vec<Issuer>, min_refetch: Duration) -> Self {
        Self { issuers, min_refetch, cache: Arc::default() }
    }

    /// The issuer whose tokens carry exactly `iss`.
    pub fn issuer(&self, iss: &str) -> Option<&Issuer> {
        self.issuers.iter().find(|i| i.url == iss)
    }

    /// The issuer the operator named `name`.
    pub fn named(&self, name: &str) -> Option<&Issuer> {
        self.issuers.iter().find(|i| i.name == name)
    }

    /// The one issuer of `kind` (npm's `npm trust github` and the like); `Err` when there are
    /// none or several.
    pub fn of_kind(&self, kind: IssuerKind) -> Result<&Issuer, String> {
        let found: Vec<&Issuer> = self.issuers.iter().filter(|i| i.kind == kind).collect();
        match found.as_slice() {
            [one] => Ok(one),
            [] => Err(format!(
                "this registry trusts no {} issuer: its operator lists the issuers it trusts (--oidc-issuer)",
                kind.as_str()
            )),
            _ => Err(format!(
                "this registry trusts several {} issuers: name one with `tapgate trust add --issuer NAME`",
                kind.as_str()
            )),
        }
    }

    /// The issuer's key `kid`: from the cache, or refetched (see the module's rules).
    pub async fn key(&self, issuer: &Issuer, kid: &str) -> Result<Jwk, KeyError> {
        let mut cache = self.cache.lock().await;
        let find = |c: &Cached| c.keys.iter().find(|k| k.kid.as_deref() == Some(kid)).cloned();
        if let Some(cached) = cache.get(&issuer.url) {
            let fresh = cached.fetched.elapsed() < MAX_AGE;
            if let Some(key) = find(cached).filter(|_| fresh) {
                return Ok(key);
            }
            if cached.fetched.elapsed() < self.min_refetch {
                return match find(cached) {
                    Some(key) => Ok(key),
                    None => Err(KeyError::UnknownKid(format!(
                        "the issuer {} publishes no key {kid:?} (its keys were fetched moments ago)",
                        issuer.url
                    ))),
                };
            }
        }
        let keys = issuer.fetch_keys().await.map_err(KeyError::Unavailable)?;
        tracing::info!(issuer = %issuer.url, keys = keys.len(), "OIDC issuer keys fetched");
        let cached = Cached { keys, fetched: Instant::now() };
        let key = find(&cached);
        cache.insert(issuer.url.clone(), cached);
        key.ok_or_else(|| KeyError::UnknownKid(format!("the issuer {} publishes no key {kid:?}", issuer.url)))
    }
}
