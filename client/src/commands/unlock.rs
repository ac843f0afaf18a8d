//! `tapgate unlock NAME`: lift the lock repeated failed attempts put on a package, with a tap
//! (under an N-of-M policy, the other maintainers tap on the page the command prints).

use anyhow::Result;
use reqwest::Method;
use tapgate_shared::api::LockStatus;
use tapgate_shared::gate_intent::Change;

use super::{encode_name, with_otp};
use crate::cli::Global;
use crate::gated::{self, Expected};
use crate::output::emit;

pub async fn run(g: &Global, package: &str) -> Result<()> {
    let client = super::authed_client(g)?;
    let status: LockStatus = client.get(&format!("/api/v1/packages/{}/lock", encode_name(package))).await?;
    let Some(lock) = status.lock else {
        emit(g.json, &status, || format!("{package} is not locked"));
        return Ok(());
    };
    eprintln!(
        "{package} was locked at {} after {} failed second-factor attempts (lock {}).",
        lock.locked_at, lock.failures, lock.lock_id
    );
    eprintln!("Unlock it only once you know what happened: check the alert your registry sent.");
    // The key approves lifting exactly the lock shown here, no later one.
    let expected = Expected::new(
        package,
        Change::Unlock { lock_id: lock.lock_id.clone(), locked_at: lock.locked_at.clone() },
    );
    let path = format!("/api/v1/packages/{}/unlock", encode_name(package));
    let resp =
        gated::send(g, &client, Some(&expected), |otp| with_otp(client.request(Method::POST, &path), otp))
            .await?;
    let after: LockStatus = resp.json().await?;
    emit(g.json, &after, || format!("{package} is unlocked: its maintainers can change it again"));
    Ok(())
}
