//! Saved API tokens, one per registry, in the user's config directory with mode 0600.
//!
//! Location: `$TAPGATE_CONFIG_DIR/credentials.json`, else
//! `$XDG_CONFIG_HOME/tapgate/credentials.json`, else `~/.config/tapgate/credentials.json`.
//! `TAPGATE_TOKEN` overrides the saved token.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
struct CredentialsFile {
    /// Registry URL (normalised, no trailing slash) → token.
    #[serde(default)]
    registries: BTreeMap<String, SavedToken>,
}

#[derive(Serialize, Deserialize)]
pub struct SavedToken {
    pub token: String,
    pub username: String,
}

impl std::fmt::Debug for SavedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedToken").field("token", &"<redacted>").field("username", &self.username).finish()
    }
}

pub fn config_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("TAPGATE_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("tapgate"));
    }
    let home = std::env::var_os("HOME").context("cannot find your home directory: set TAPGATE_CONFIG_DIR")?;
    Ok(PathBuf::from(home).join(".config").join("tapgate"))
}

fn path() -> Result<PathBuf> {
    Ok(config_dir()?.join("credentials.json"))
}

pub fn normalise(server: &str) -> String {
    server.trim_end_matches('/').to_string()
}

fn load() -> Result<CredentialsFile> {
    let path = path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid; delete it and log in again", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CredentialsFile::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn store(file: &CredentialsFile) -> Result<()> {
    let path = path()?;
    let dir = path.parent().context("credentials path has no parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(".credentials.json.tmp");
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(serde_json::to_string_pretty(file)?.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The token to use for `server`: `TAPGATE_TOKEN`, else the saved one.
pub fn token_for(server: &str) -> Result<Option<String>> {
    if let Ok(token) = std::env::var("TAPGATE_TOKEN")
        && !token.is_empty()
    {
        return Ok(Some(token));
    }
    Ok(load()?.registries.remove(&normalise(server)).map(|s| s.token))
}

/// Saves the token for `server` (replacing any other).
pub fn save(server: &str, token: &str, username: &str) -> Result<PathBuf> {
    let mut file = load()?;
    file.registries
        .insert(normalise(server), SavedToken { token: token.to_string(), username: username.to_string() });
    store(&file)?;
    path()
}

/// Forgets the token for `server`; true if there was one.
pub fn forget(server: &str) -> Result<bool> {
    let mut file = load()?;
    let had = file.registries.remove(&normalise(server)).is_some();
    if had {
        store(&file)?;
    }
    Ok(had)
}

/// The username saved for `server`, if any.
pub fn saved_username(server: &str) -> Result<Option<String>> {
    Ok(load()?.registries.remove(&normalise(server)).map(|s| s.username))
}
