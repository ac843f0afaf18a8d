//! One module per command.

pub mod admin;
pub mod approve;
pub mod audit;
pub mod ci;
pub mod dist_tag;
pub mod key;
pub mod keyring;
pub mod login;
pub mod notify;
pub mod owner;
pub mod pending;
pub mod publish;
pub mod reject;
pub mod release;
pub mod stage;
pub mod trust;
pub mod unlock;
pub mod verify;
pub mod whoami;

use anyhow::Result;

use crate::api::Client;
use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::Login(args) => login::run(g, &args).await,
        Command::Logout => login::logout(g).await,
        Command::Whoami => whoami::run(g).await,
        Command::Key(cmd) => key::run(g, cmd).await,
        Command::Publish(args) => publish::run(g, &args).await,
        Command::Approve { approval } => approve::run(g, &approval).await,
        Command::Verify { spec, keyring, server_key, issuer_keys } => {
            verify::run(g, &spec, &keyring, &server_key, &issuer_keys).await
        }
        Command::Trust(cmd) => trust::run(g, cmd).await,
        Command::Ci(cmd) => ci::run(g, cmd).await,
        Command::Pending => pending::run(g).await,
        Command::Reject { approval } => reject::run(g, &approval).await,
        Command::Admin(cmd) => admin::run(g, cmd).await,
        Command::Keyring(cmd) => keyring::run(g, cmd).await,
        Command::Owner(cmd) => owner::run(g, cmd).await,
        Command::DistTag(cmd) => dist_tag::run(g, cmd).await,
        Command::Deprecate { spec, message } => release::deprecate(g, &spec, &message).await,
        Command::Undeprecate { spec } => release::deprecate(g, &spec, "").await,
        Command::Unpublish { spec, all } => release::unpublish(g, &spec, all).await,
        Command::Unlock { package } => unlock::run(g, &package).await,
        Command::Notify(cmd) => notify::run(g, cmd).await,
        Command::Audit(args) => match (args.command, args.package) {
            (Some(crate::cli::AuditCommand::Verify { package }), _) => audit::verify(g, &package).await,
            (None, Some(package)) => audit::list(g, &package).await,
            (None, None) => anyhow::bail!("name a package: tapgate audit NAME, or tapgate audit verify NAME"),
        },
        Command::Webhook(cmd) => notify::webhook(g, cmd).await,
        Command::Stage(cmd) => stage::run(g, cmd).await,
    }
}

/// A client with the saved token, or an error that says how to get one.
pub fn authed_client(g: &crate::cli::Global) -> Result<Client> {
    let token = crate::credentials::token_for(&g.server)?;
    if token.is_none() {
        anyhow::bail!("you are not logged in to {}: run `tapgate login --server {}`", g.server, g.server);
    }
    Client::new(&g.server, token)
}

/// Adds the ticket of an approval to a repeated request.
pub fn with_otp(req: reqwest::RequestBuilder, otp: Option<&str>) -> reqwest::RequestBuilder {
    match otp {
        Some(otp) => req.header("npm-otp", otp),
        None => req,
    }
}

/// A package name as one URL path segment (`@scope/name` → `@scope%2fname`).
pub fn encode_name(name: &str) -> String {
    name.replace('/', "%2f")
}
