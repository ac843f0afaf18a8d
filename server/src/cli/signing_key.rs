//! `tapgate-server signing-key rotate|list`: the registry's Ed25519 keys that sign deploy keys.
//! Rotating makes a new key current and ends the old one's period; the old one stays listed at
//! `/.well-known/tapgate-keys` so that what it signed stays verifiable.

use clap::Subcommand;

use super::Fatal;
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum SigningKeyCommand {
    /// Make a new signing key current; the old one keeps verifying what it signed.
    Rotate {
        #[arg(long)]
        json: bool,
    },
    /// List the signing keys with their periods.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: SigningKeyCommand, store: &Store) -> Result<(), Fatal> {
    let now = SystemClock.now();
    match cmd {
        SigningKeyCommand::Rotate { json } => {
            let (kid, retired) = crate::signing::rotate(store, now).await?;
            if json {
                println!("{}", serde_json::json!({ "kid": kid, "retired": retired }));
            } else {
                println!("{kid}");
                match retired {
                    Some(old) => eprintln!("{kid} signs from now on; {old} stays listed for what it signed"),
                    None => eprintln!("{kid} signs from now on"),
                }
            }
        }
        SigningKeyCommand::List { json } => {
            let keys = crate::signing::published(store, now).await?;
            if json {
                println!("{}", serde_json::to_string(&keys).map_err(|e| Fatal(e.to_string()))?);
            } else {
                for k in keys.keys {
                    let until = k.not_after.map(rfc3339).unwrap_or_else(|| "now (current)".into());
                    println!(
                        "{} {} {} from {} until {until}",
                        k.kid,
                        k.alg,
                        k.public_key,
                        rfc3339(k.not_before)
                    );
                }
            }
        }
    }
    Ok(())
}
