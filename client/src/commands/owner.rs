//! `tapgate owner ls|add|rm`

use anyhow::Result;
use reqwest::Method;
use tapgate_shared::api::Maintainers;

use super::encode_name;
use super::key::with_fresh_login;
use crate::api::Client;
use crate::cli::{Global, OwnerCommand};
use crate::output::emit;

pub async fn run(g: &Global, cmd: OwnerCommand) -> Result<()> {
    let list = match cmd {
        OwnerCommand::Ls { package } => {
            let client = Client::new(&g.server, crate::credentials::token_for(&g.server)?)?;
            client
                .get::<Maintainers>(&format!("/api/v1/packages/{}/maintainers", encode_name(&package)))
                .await?
        }
        OwnerCommand::Add { user, package } => change(g, Method::PUT, &package, &user).await?,
        OwnerCommand::Rm { user, package } => change(g, Method::DELETE, &package, &user).await?,
    };
    emit(g.json, &list, || list.maintainers.join("\n"));
    Ok(())
}

async fn change(g: &Global, method: Method, package: &str, user: &str) -> Result<Maintainers> {
    let path = format!("/api/v1/packages/{}/maintainers/{user}", encode_name(package));
    with_fresh_login(g, |client: Client| {
        let (method, path) = (method.clone(), path.clone());
        async move { client.send(client.request(method, &path)).await }
    })
    .await
}
