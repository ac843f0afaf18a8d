//! One module per command.

pub mod key;
pub mod login;
pub mod whoami;

use anyhow::Result;

use crate::api::Client;
use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::Login(args) => login::run(g, &args).await,
        Command::Logout => login::logout(g),
        Command::Whoami => whoami::run(g).await,
        Command::Key(cmd) => key::run(g, cmd).await,
    }
}

/// A client with the saved token, or an error that says how to get one.
pub fn authed_client(g: &crate::cli::Global) -> Result<Client> {
    let token = crate::credentials::token_for(&g.server)?;
    if token.is_none() {
        anyhow::bail!(
            "you are not logged in to {}: run `tapgate login --server {}`",
            g.server,
            g.server
        );
    }
    Client::new(&g.server, token)
}
