//! Configuration: command-line flags, each also readable from a `TAPGATE_*` environment
//! variable, over an optional TOML file, over built-in defaults.

pub mod limits;
pub mod notify;
pub mod oidc;
mod trust;
pub mod upstream;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use url::Url;

/// tapgate registry server: an npm registry where publishing takes a tap on a security key.
#[derive(Debug, Parser)]
#[command(name = "tapgate-server", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options shared by every subcommand: where the data lives.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// TOML configuration file; flags and environment variables override it.
    #[arg(long, env = "TAPGATE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Directory for the embedded database and other state [default: ./tapgate-data]
    #[arg(long, env = "TAPGATE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB [default: SQLite file in the data directory]
    #[arg(long, env = "TAPGATE_DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Public origin of the registry, e.g. https://registry.example.com; also the WebAuthn
    /// relying-party id [default: http://localhost:PORT]
    #[arg(long, env = "TAPGATE_ORIGIN", global = true)]
    pub origin: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8080]; admin commands read it too, for the
    /// origin their links use when --origin is not set.
    #[arg(long, env = "TAPGATE_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,
    /// Log lines as `text` (for people) or `json` (one object per line, for log shippers)
    #[arg(long, env = "TAPGATE_LOG_FORMAT", global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the registry (the default when no subcommand is given).
    Serve(ServeArgs),
    /// Manage user accounts.
    #[command(subcommand)]
    User(crate::cli::user::UserCommand),
    /// Issue, list and revoke API tokens.
    #[command(subcommand)]
    Token(crate::cli::token::TokenCommand),
    /// A user's security keys: list them, revoke a lost or stolen one.
    #[command(subcommand)]
    Key(crate::cli::key::KeyCommand),
    /// Give scopes (`@acme`) to users: only a scope's owners publish new packages in it.
    #[command(subcommand)]
    Scope(crate::cli::names::ScopeCommand),
    /// Reserve package names, with their policy and first maintainers, before their first publish.
    #[command(subcommand)]
    Package(crate::cli::names::PackageCommand),
    /// The registry's Ed25519 keys that sign deploy keys: rotate or list them.
    #[command(subcommand, name = "signing-key")]
    SigningKey(crate::cli::signing_key::SigningKeyCommand),
    /// See and push notification deliveries (emails, webhooks).
    #[command(subcommand)]
    Outbox(OutboxCommand),
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List deliveries not delivered yet (due, retrying, given up), newest first.
    List {
        /// Delivered ones too.
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Make a delivery (or, with --all, every undelivered one) due now, also when given up.
    Retry {
        /// The delivery id (see `outbox list`).
        id: Option<i64>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
}

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Largest accepted JSON request body, in bytes [default: 1048576]
    #[arg(long, env = "TAPGATE_MAX_JSON_BYTES")]
    pub max_json_bytes: Option<usize>,
    /// Policy for packages that have none yet: `security-key` (every publish needs a key tap) or
    /// `none` [default: security-key]
    #[arg(long, env = "TAPGATE_DEFAULT_POLICY")]
    pub default_policy: Option<String>,
    /// Largest accepted tarball, in bytes [default: 52428800]
    #[arg(long, env = "TAPGATE_MAX_TARBALL_BYTES")]
    pub max_tarball_bytes: Option<usize>,
    /// Attestation CA certificates (PEM): a file, or a directory of *.pem / *.crt files. Keys whose
    /// attestation chains to one of them are recorded as attested.
    #[arg(long, env = "TAPGATE_ATTESTATION_CA")]
    pub attestation_ca: Option<PathBuf>,
    /// Only these authenticator models (AAGUIDs) count as attested; repeat or comma-separate.
    #[arg(long = "attestation-aaguid", env = "TAPGATE_ATTESTATION_AAGUIDS", value_delimiter = ',')]
    pub attestation_aaguids: Vec<uuid::Uuid>,
    /// Also trust attestation roots shipped with tapgate (server/trust/fido-roots): `yubico`.
    /// Repeat or comma-separate.
    #[arg(long = "attestation-ca-builtin", env = "TAPGATE_ATTESTATION_CA_BUILTIN", value_delimiter = ',')]
    pub attestation_ca_builtin: Vec<String>,
    /// A FIDO Metadata Service (MDS3) BLOB file: the authenticator models it certifies count as
    /// attested. Refused at start-up when expired, not validly signed, or older than the last one.
    #[arg(long, env = "TAPGATE_FIDO_MDS")]
    pub fido_mds: Option<PathBuf>,
    /// PEM file of the root(s) the --fido-mds BLOB must chain to [default: the FIDO Alliance's
    /// GlobalSign roots shipped in server/trust/fido-mds-roots, signer under fidoalliance.org]
    #[arg(long, env = "TAPGATE_FIDO_MDS_ROOT")]
    pub fido_mds_root: Option<PathBuf>,
    /// How long a change waits for its approvals, in minutes: with several approvers (N of M)
    /// the others need time to see it [default: 10]
    #[arg(long, env = "TAPGATE_APPROVAL_TTL_MINUTES")]
    pub approval_ttl_minutes: Option<u32>,
    #[command(flatten)]
    pub limits: Box<limits::LimitArgs>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (addresses or CIDR ranges);
    /// repeat or comma-separate. Without it, the connection's address is the client's.
    #[arg(long = "trusted-proxy", env = "TAPGATE_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    #[command(flatten)]
    pub notify: Box<notify::NotifyArgs>,
    #[command(flatten)]
    pub upstream: Box<upstream::UpstreamArgs>,
    #[command(flatten)]
    pub oidc: Box<oidc::OidcArgs>,
}

/// The TOML configuration file. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub origin: Option<String>,
    pub max_json_bytes: Option<usize>,
    pub attestation_ca: Option<PathBuf>,
    pub attestation_aaguids: Option<Vec<uuid::Uuid>>,
    pub attestation_ca_builtin: Option<Vec<String>>,
    pub fido_mds: Option<PathBuf>,
    pub fido_mds_root: Option<PathBuf>,
    pub default_policy: Option<String>,
    pub max_tarball_bytes: Option<usize>,
    pub approval_ttl_minutes: Option<u32>,
    /// Connections, timeouts and rate limits.
    pub limits: Option<limits::LimitsFile>,
    pub trusted_proxies: Option<Vec<String>>,
    /// Email, webhooks and delivery retries.
    pub notify: Option<notify::NotifyFile>,
    /// The upstream proxy.
    pub upstream: Option<upstream::UpstreamFile>,
    /// Trusted publishing: the OIDC issuers trusted.
    pub oidc: Option<oidc::OidcFile>,
    /// The CI ways of new packages' policy.
    pub default_ci: Option<Vec<String>>,
}

/// Resolved settings.
#[derive(Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// Whether `listen` was configured (flag, environment or file) rather than the default.
    pub listen_configured: bool,
    pub data_dir: PathBuf,
    pub database_url: String,
    /// `None` until the listener is bound, when it defaults to `http://localhost:PORT`.
    pub origin: Option<Url>,
    pub max_json_bytes: usize,
    pub attestation_ca: Option<PathBuf>,
    /// Empty: any AAGUID chaining to a trusted CA counts.
    pub attestation_aaguids: Vec<uuid::Uuid>,
    /// Names of built-in root sets to trust.
    pub attestation_ca_builtin: Vec<String>,
    pub fido_mds: Option<PathBuf>,
    /// `None`: the built-in FIDO metadata roots.
    pub fido_mds_root: Option<PathBuf>,
    pub default_policy: tapgate_shared::api::SecondFactor,
    pub max_tarball_bytes: usize,
    /// How long a change waits for its approvals.
    pub approval_ttl_seconds: i64,
    pub connections: crate::connections::ConnectionLimits,
    pub rate_limits: crate::limits::RateLimits,
    pub trusted_proxies: Vec<crate::observe::IpRange>,
    pub notify: crate::notify::NotifyConfig,
    pub upstream: Option<crate::upstream::UpstreamConfig>,
    pub oidc: crate::oidc::OidcConfig,
    pub default_ci: Vec<tapgate_shared::api::CiMethod>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &crate::store::redact_url(&self.database_url))
            .field("origin", &self.origin.as_ref().map(Url::as_str))
            .field("max_json_bytes", &self.max_json_bytes)
            .field("attestation_ca", &self.attestation_ca)
            .field("attestation_aaguids", &self.attestation_aaguids)
            .field("attestation_ca_builtin", &self.attestation_ca_builtin)
            .field("fido_mds", &self.fido_mds)
            .field("fido_mds_root", &self.fido_mds_root)
            .field("default_policy", &self.default_policy)
            .field("max_tarball_bytes", &self.max_tarball_bytes)
            .field("approval_ttl_seconds", &self.approval_ttl_seconds)
            .field("connections", &self.connections)
            .field("rate_limits", &self.rate_limits)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("notify", &self.notify)
            .field("upstream", &self.upstream)
            .field("oidc_issuers", &self.oidc.issuers.iter().map(|i| &i.url).collect::<Vec<_>>())
            .field("default_ci", &self.default_ci)
            .finish()
    }
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./tapgate-data";
pub const DEFAULT_MAX_JSON_BYTES: usize = 1024 * 1024;
pub const DEFAULT_MAX_TARBALL_BYTES: usize = 50 * 1024 * 1024;
pub const DEFAULT_APPROVAL_TTL_MINUTES: u32 = 10;
/// A week: approvals that wait longer are better started again.
pub const MAX_APPROVAL_TTL_MINUTES: u32 = 7 * 24 * 60;

impl Settings {
    /// Merges flags/environment over the config file over defaults.
    pub fn resolve(global: &GlobalArgs, serve: &ServeArgs) -> Result<Self, String> {
        let file = match &global.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let listen_configured = global.listen.is_some() || file.listen.is_some();
        let listen = match global.listen.or(file.listen) {
            Some(addr) => addr,
            None => DEFAULT_LISTEN.parse().map_err(|e| format!("bad default listen address: {e}"))?,
        };
        let data_dir =
            global.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = match global.database_url.clone().or(file.database_url) {
            Some(url) => url,
            None => sqlite_url(&data_dir),
        };
        let origin = match global.origin.clone().or(file.origin) {
            Some(origin) => Some(parse_origin(&origin)?),
            None => None,
        };
        let max_json_bytes = serve.max_json_bytes.or(file.max_json_bytes).unwrap_or(DEFAULT_MAX_JSON_BYTES);
        let attestation_ca = serve.attestation_ca.clone().or(file.attestation_ca);
        let attestation_aaguids = if serve.attestation_aaguids.is_empty() {
            file.attestation_aaguids.unwrap_or_default()
        } else {
            serve.attestation_aaguids.clone()
        };
        let attestation_ca_builtin = if serve.attestation_ca_builtin.is_empty() {
            file.attestation_ca_builtin.unwrap_or_default()
        } else {
            serve.attestation_ca_builtin.clone()
        };
        for name in &attestation_ca_builtin {
            crate::webauthn::builtin::ca_set(name)?;
        }
        let fido_mds = serve.fido_mds.clone().or(file.fido_mds);
        let fido_mds_root = serve.fido_mds_root.clone().or(file.fido_mds_root);
        if fido_mds_root.is_some() && fido_mds.is_none() {
            return Err("--fido-mds-root (fido_mds_root) is set without --fido-mds (fido_mds): name the BLOB file too".into());
        }
        let default_policy = match serve.default_policy.clone().or(file.default_policy).as_deref() {
            None | Some("security-key") => tapgate_shared::api::SecondFactor::SecurityKey,
            Some("none") => tapgate_shared::api::SecondFactor::None,
            Some(other) => {
                return Err(format!("invalid --default-policy {other:?}: use security-key or none"));
            }
        };
        let max_tarball_bytes =
            serve.max_tarball_bytes.or(file.max_tarball_bytes).unwrap_or(DEFAULT_MAX_TARBALL_BYTES);
        let approval_ttl_minutes =
            serve.approval_ttl_minutes.or(file.approval_ttl_minutes).unwrap_or(DEFAULT_APPROVAL_TTL_MINUTES);
        if !(1..=MAX_APPROVAL_TTL_MINUTES).contains(&approval_ttl_minutes) {
            return Err(format!(
                "invalid --approval-ttl-minutes {approval_ttl_minutes}: use 1 to {MAX_APPROVAL_TTL_MINUTES} (a week)"
            ));
        }
        let (connections, rate_limits) = limits::resolve(&serve.limits, file.limits.unwrap_or_default())?;
        let proxies = if serve.trusted_proxies.is_empty() {
            file.trusted_proxies.unwrap_or_default()
        } else {
            serve.trusted_proxies.clone()
        };
        let trusted_proxies = proxies
            .iter()
            .map(|p| crate::observe::IpRange::parse(p).map_err(|e| format!("invalid --trusted-proxy: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let notify = notify::resolve(&serve.notify, file.notify.unwrap_or_default())?;
        let upstream = upstream::resolve(&serve.upstream, file.upstream.unwrap_or_default())?;
        let (oidc, default_ci) = oidc::resolve(&serve.oidc, file.oidc.unwrap_or_default(), file.default_ci)?;
        Ok(Settings {
            upstream,
            oidc,
            default_ci,
            notify,
            trusted_proxies,
            approval_ttl_seconds: i64::from(approval_ttl_minutes) * 60,
            connections,
            rate_limits,
            default_policy,
            max_tarball_bytes,
            listen,
            listen_configured,
            data_dir,
            database_url,
            origin,
            max_json_bytes,
            attestation_ca,
            attestation_aaguids,
            attestation_ca_builtin,
            fido_mds,
            fido_mds_root,
        })
    }

    /// Whether the database lives in the data directory (so the directory must exist).
    pub fn uses_embedded_database(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

fn load_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("invalid config file {}: {}", path.display(), e.message()))
}

/// The embedded database's URL for a data directory.
pub fn sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("tapgate.db").display())
}

/// Parses and checks a public origin: scheme and host, no path.
pub fn parse_origin(origin: &str) -> Result<Url, String> {
    let url = Url::parse(origin).map_err(|e| format!("invalid --origin {origin:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("invalid --origin {origin:?}: use http(s)://HOST[:PORT]"));
    }
    if url.path() != "/" || url.query().is_some() {
        return Err(format!("invalid --origin {origin:?}: an origin has no path or query"));
    }
    Ok(url)
}

/// `http://localhost:PORT`, the default origin (browsers refuse IP addresses as WebAuthn rp ids).
pub fn default_origin(bound: SocketAddr) -> Result<Url, String> {
    parse_origin(&format!("http://localhost:{}", bound.port()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("tapgate.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\norigin = \"https://reg.example\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let global = GlobalArgs { config: Some(path), ..Default::default() };
        let s = Settings::resolve(&global, &ServeArgs::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.origin.as_ref().map(Url::as_str), Some("https://reg.example/"));
        assert!(s.database_url.ends_with("tapgate-data/tapgate.db"));

        let flagged = GlobalArgs {
            listen: Some("127.0.0.1:9001".parse().unwrap_or_else(|e| panic!("{e}"))),
            ..global.clone()
        };
        let s = Settings::resolve(&flagged, &ServeArgs::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.listen.port(), 9001);
        assert_eq!(s.approval_ttl_seconds, 600, "ten minutes unless configured");
        let serve = ServeArgs { approval_ttl_minutes: Some(0), ..Default::default() };
        assert!(Settings::resolve(&global, &serve).is_err());
        let serve = ServeArgs { approval_ttl_minutes: Some(1440), ..Default::default() };
        let s = Settings::resolve(&global, &serve).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.approval_ttl_seconds, 86_400);
    }

    #[test]
    fn unknown_config_keys_and_bad_origins_are_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("tapgate.toml");
        std::fs::write(&path, "lisen = \"127.0.0.1:9000\"\n").unwrap_or_else(|e| panic!("{e}"));
        let global = GlobalArgs { config: Some(path), ..Default::default() };
        let err = Settings::resolve(&global, &ServeArgs::default()).err().unwrap_or_default();
        assert!(err.contains("lisen"), "{err}");
        assert!(parse_origin("https://reg.example/path").is_err());
        assert!(parse_origin("ftp://reg.example").is_err());
    }

    #[test]
    fn debug_never_shows_database_passwords() {
        let global =
            GlobalArgs { database_url: Some("postgres://u:s3cret@db/x".into()), ..Default::default() };
        let s = Settings::resolve(&global, &ServeArgs::default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{s:?}").contains("s3cret"));
    }
}
