//! `tapgate whoami`

use anyhow::Result;
use tapgate_shared::api::Whoami;

use crate::cli::Global;
use crate::output::emit;

pub async fn run(g: &Global) -> Result<()> {
    let client = super::authed_client(g)?;
    let who: Whoami = client.get("/api/v1/whoami").await?;
    emit(g.json, &who, || who.username.clone());
    Ok(())
}
