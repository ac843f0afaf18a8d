//! `tapgate owner ls|add|rm`

use anyhow::Result;
use reqwest::Method;
use tapgate_shared::api::Maintainers;
use tapgate_shared::gate_intent::Change;

use super::{encode_name, with_otp};
use crate::api::Client;
use crate::cli::{Global, OwnerCommand};
use crate::gated::{self, Expected};
use crate::output::emit;

pub async fn run(g: &Global, cmd: OwnerCommand) -> Result<()> {
    let list = match cmd {
        OwnerCommand::Ls { package } => {
            let client = Client::new(&g.server, crate::credentials::token_for(&g.server)?)?;
            client
                .get::<Maintainers>(&format!("/api/v1/packages/{}/maintainers", encode_name(&package)))
                .await?
        }
        OwnerCommand::Add { user, package } => {
            change(g, Method::PUT, &package, &user, Change::MaintainerAdd { user: user.clone() }).await?
        }
        OwnerCommand::Rm { user, package } => {
            change(g, Method::DELETE, &package, &user, Change::MaintainerRemove { user: user.clone() })
                .await?
        }
    };
    emit(g.json, &list, || list.maintainers.join("\n"));
    Ok(())
}

async fn change(
    g: &Global,
    method: Method,
    package: &str,
    user: &str,
    change: Change,
) -> Result<Maintainers> {
    let client = super::authed_client(g)?;
    let path = format!("/api/v1/packages/{}/maintainers/{user}", encode_name(package));
    let expected = Expected::new(package, change);
    let resp =
        gated::send(g, &client, Some(&expected), |otp| with_otp(client.request(method.clone(), &path), otp))
            .await?;
    Ok(resp.json().await?)
}
