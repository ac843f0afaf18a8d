//! The `tapgate-server` command line: `serve` (the default) and the admin commands, which work
//! directly on the same database, also while `serve` runs. Both resolve the data directory,
//! database and origin from the same flags, environment and config file; only `serve` creates
//! a database, and admin commands refuse to run without one.

pub mod key;
pub mod names;
mod outbox;
mod serve;
pub mod signing_key;
pub mod token;
pub mod user;

use crate::config::{Cli, Command, ServeArgs, Settings};
use crate::store::Store;

/// A failure worth one sentence on stderr and a non-zero exit.
#[derive(Debug)]
pub struct Fatal(pub String);

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Fatal {
    fn from(s: String) -> Self {
        Fatal(s)
    }
}

impl From<crate::store::StoreError> for Fatal {
    fn from(e: crate::store::StoreError) -> Self {
        Fatal(e.to_string())
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), Fatal> {
    match cli.command {
        None => serve::run(&cli.global, &ServeArgs::default()).await,
        Some(Command::Serve(args)) => serve::run(&cli.global, &args).await,
        Some(Command::User(cmd)) => {
            let (settings, store) = open(&cli.global).await?;
            user::run(cmd, &settings, &store).await
        }
        Some(Command::Token(cmd)) => {
            let (_, store) = open(&cli.global).await?;
            token::run(cmd, &store).await
        }
        Some(Command::Key(cmd)) => {
            let (settings, store) = open(&cli.global).await?;
            key::run(cmd, &settings, &store).await
        }
        Some(Command::Scope(cmd)) => {
            let (_, store) = open(&cli.global).await?;
            names::run_scope(cmd, &store).await
        }
        Some(Command::SigningKey(cmd)) => {
            let (_, store) = open(&cli.global).await?;
            signing_key::run(cmd, &store).await
        }
        Some(Command::Package(cmd)) => {
            let (_, store) = open(&cli.global).await?;
            names::run_package(cmd, &store).await
        }
        Some(Command::Outbox(cmd)) => {
            let (_, store) = open(&cli.global).await?;
            outbox::run(cmd, &store).await
        }
    }
}

/// Resolves settings as `serve` does and opens the server's database, refusing when there is
/// none: an admin command never creates one.
pub(crate) async fn open(global: &crate::config::GlobalArgs) -> Result<(Settings, Store), Fatal> {
    let settings = Settings::resolve(global, &ServeArgs::default())?;
    let hint = "admin commands work on the server's database and never create one: run this \
                with the same --config, --data-dir (TAPGATE_DATA_DIR) or --database-url \
                (TAPGATE_DATABASE_URL) as `tapgate-server serve`, or start the server once to \
                create its database";
    if settings.uses_embedded_database() && !settings.data_dir.is_dir() {
        return Err(Fatal(format!(
            "there is no data directory {} ({}): {hint}",
            shown_path(&settings.data_dir),
            relative_note(&settings.data_dir)
        )));
    }
    let store = Store::open_existing(&settings.database_url).await.map_err(|e| match e {
        crate::store::StoreError::Config(m) => Fatal(format!("{m}: {hint}")),
        other => Fatal::from(other),
    })?;
    Ok((settings, store))
}

/// `path` made absolute, so that a message says which directory was looked at.
fn shown_path(path: &std::path::Path) -> String {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

fn relative_note(path: &std::path::Path) -> &'static str {
    if path.is_relative() { "relative to the current directory" } else { "absolute" }
}

/// Creates the server's data directory (owner only) and checks that it is writable.
pub(crate) async fn open_store(settings: &Settings) -> Result<Store, Fatal> {
    if settings.uses_embedded_database() {
        prepare_data_dir(&settings.data_dir)?;
    }
    Ok(Store::connect(&settings.database_url).await?)
}

/// Creates the data directory and checks that it is writable.
fn prepare_data_dir(dir: &std::path::Path) -> Result<(), Fatal> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Fatal(format!("cannot create data directory {}: {e}", dir.display())))?;
    let probe = dir.join(".tapgate-write-check");
    std::fs::write(&probe, b"ok")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| Fatal(format!("data directory {} is not writable: {e}", dir.display())))
}

/// The origin admin commands print links for: the one the server last started with (recorded
/// in the database), else the one this command's settings give (`--origin`, or
/// `http://localhost:PORT` of `--listen`). Says so on stderr when this command's settings name
/// another one.
pub(crate) async fn origin_for_links(settings: &Settings, store: &Store) -> Result<url::Url, Fatal> {
    let configured = match &settings.origin {
        Some(origin) => origin.clone(),
        None => crate::config::default_origin(settings.listen)?,
    };
    let Some((served, since)) = store.served_origin().await? else {
        warn_if_ip_origin(&configured);
        return Ok(configured);
    };
    let served = crate::config::parse_origin(&served)?;
    let says_where = settings.origin.is_some() || settings.listen_configured;
    if says_where && served != configured {
        eprintln!(
            "note: the server last started ({}) with origin {}; links use it, not {} from this \
             command's settings",
            crate::clock::rfc3339(since),
            served.as_str().trim_end_matches('/'),
            configured.as_str().trim_end_matches('/'),
        );
    }
    warn_if_ip_origin(&served);
    Ok(served)
}

/// Whether browsers refuse `origin`'s host as a WebAuthn relying-party id (an IP address).
pub(crate) fn origin_is_ip(origin: &url::Url) -> bool {
    matches!(origin.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)))
}

fn warn_if_ip_origin(origin: &url::Url) {
    if origin_is_ip(origin) {
        eprintln!("warning: {}", ip_origin_warning(origin));
    }
}

/// The sentence said when the origin is an IP address.
pub(crate) fn ip_origin_warning(origin: &url::Url) -> String {
    format!(
        "the origin {} is an IP address, which browsers refuse as a WebAuthn relying-party id: \
         security keys cannot enroll or sign in on its pages. Use a host name (--origin \
         http://localhost:PORT, or a DNS name)",
        origin.as_str().trim_end_matches('/')
    )
}
