//! The `tapgate-server` command line: `serve` (the default) and the admin commands, which work
//! directly on the same database, also while `serve` runs.

pub mod names;
mod outbox;
mod serve;
pub mod signing_key;
mod token;
mod user;

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

/// Resolves settings and opens the database, creating the data directory when the embedded
/// database is used.
pub(crate) async fn open(global: &crate::config::GlobalArgs) -> Result<(Settings, Store), Fatal> {
    let settings = Settings::resolve(global, &ServeArgs::default())?;
    let store = open_store(&settings).await?;
    Ok((settings, store))
}

pub(crate) async fn open_store(settings: &Settings) -> Result<Store, Fatal> {
    if settings.uses_embedded_database() {
        prepare_data_dir(&settings.data_dir)?;
    }
    Ok(Store::connect(&settings.database_url).await?)
}

/// Creates the data directory and checks that it is writable.
fn prepare_data_dir(dir: &std::path::Path) -> Result<(), Fatal> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Fatal(format!("cannot create data directory {}: {e}", dir.display())))?;
    let probe = dir.join(".tapgate-write-check");
    std::fs::write(&probe, b"ok")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| Fatal(format!("data directory {} is not writable: {e}", dir.display())))
}

/// The origin admin commands print URLs for: configured, or `http://localhost:PORT`.
pub(crate) fn origin_for_links(settings: &Settings) -> Result<url::Url, Fatal> {
    match &settings.origin {
        Some(origin) => Ok(origin.clone()),
        None => Ok(crate::config::default_origin(settings.listen)?),
    }
}
