//! `tapgate dist-tag ls|add|rm`

use std::collections::BTreeMap;

use anyhow::Result;
use reqwest::Method;
use tapgate_shared::gate_intent::Change;

use super::{encode_name, with_otp};
use crate::api::Client;
use crate::cli::{DistTagCommand, Global};
use crate::gated::{self, Expected};
use crate::output::emit;

pub async fn run(g: &Global, cmd: DistTagCommand) -> Result<()> {
    let (package, tags) = match cmd {
        DistTagCommand::Ls { package } => {
            let client = Client::new(&g.server, crate::credentials::token_for(&g.server)?)?;
            let tags: BTreeMap<String, String> = client.get(&tags_path(&package)).await?;
            (package, tags)
        }
        DistTagCommand::Add { spec, tag } => {
            let (package, version) = super::verify::split_spec(&spec)?;
            let client = super::authed_client(g)?;
            let path = format!("{}/{tag}", tags_path(&package));
            let expected = Expected::new(
                &package,
                Change::DistTagSet { tag: tag.clone(), version: version.clone(), previous: None },
            );
            let body = serde_json::Value::String(version);
            let resp = gated::send(g, &client, Some(&expected), |otp| {
                with_otp(client.request(Method::PUT, &path).json(&body), otp)
            })
            .await?;
            (package, resp.json().await?)
        }
        DistTagCommand::Rm { package, tag } => {
            let client = super::authed_client(g)?;
            let path = format!("{}/{tag}", tags_path(&package));
            let expected =
                Expected::new(&package, Change::DistTagRemove { tag: tag.clone(), version: String::new() });
            let resp = gated::send(g, &client, Some(&expected), |otp| {
                with_otp(client.request(Method::DELETE, &path), otp)
            })
            .await?;
            (package, resp.json().await?)
        }
    };
    emit(g.json, &serde_json::json!({ "package": package, "dist-tags": tags }), || {
        tags.iter().map(|(t, v)| format!("{t}: {v}")).collect::<Vec<_>>().join("\n")
    });
    Ok(())
}

fn tags_path(package: &str) -> String {
    format!("/-/package/{}/dist-tags", encode_name(package))
}
