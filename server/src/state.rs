//! What every handler can reach.

use std::sync::Arc;

use url::Url;

use crate::clock::Clock;
use crate::store::Store;
use crate::webauthn::RelyingParty;

/// Shared application state. Holds no ceremony or session data: that lives in the database, so
/// any instance can finish what another started.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<AppConfig>,
    pub rp: Arc<RelyingParty>,
    /// Serialized packuments, by package revision.
    pub packuments: Arc<crate::publish::cache::PackumentCache>,
}

/// The parts of the configuration handlers need.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Public origin, e.g. `http://localhost:8080`; no trailing slash when formatted with
    /// [`AppConfig::url`].
    pub origin: Url,
    pub max_json_bytes: usize,
    /// Policy for packages that have none yet.
    pub default_policy: tapgate_shared::api::SecondFactor,
    pub max_tarball_bytes: usize,
    /// How long a change waits for its approvals (`--approval-ttl-minutes`).
    pub approval_ttl_seconds: i64,
    /// Connections at once and how long a client may take.
    pub connections: crate::connections::ConnectionLimits,
    /// Rate limits on sign-ins, second factors and invites.
    pub rate_limits: crate::limits::RateLimits,
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<crate::observe::IpRange>,
    /// How notifications are delivered.
    pub notify: crate::notify::NotifyConfig,
    /// The registry names this one does not hold are read from (`--upstream`), if any.
    pub upstream: Option<Arc<crate::upstream::Upstream>>,
    /// The OIDC issuers trusted publishing accepts (none unless the operator lists them).
    pub oidc: crate::oidc::OidcConfig,
    /// The CI ways (`"ci"`) of the policy of packages that have none yet.
    pub default_ci: Vec<tapgate_shared::api::CiMethod>,
}

impl AppConfig {
    /// An absolute URL on this registry for `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.origin.as_str().trim_end_matches('/'), path)
    }
}

impl AppState {
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: AppConfig, rp: RelyingParty) -> Self {
        let packuments =
            Arc::new(crate::publish::cache::PackumentCache::new(crate::publish::cache::DEFAULT_BYTES));
        Self { store, clock, config: Arc::new(config), rp: Arc::new(rp), packuments }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}
