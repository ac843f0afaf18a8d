//! `tapgate-server token issue …`

use tapgate_shared::api::Scope;

use super::Fatal;
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::config::TokenCommand;
use crate::store::Store;
use crate::store::tokens::TokenSource;

pub async fn run(cmd: TokenCommand, store: &Store) -> Result<(), Fatal> {
    let now = SystemClock.now();
    match cmd {
        TokenCommand::Issue { name, scope, expires_days, label, json } => {
            let scopes = scope
                .iter()
                .map(|s| {
                    Scope::parse(s.trim())
                        .ok_or_else(|| Fatal(format!("unknown scope {s:?}: use read, publish or admin")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let user =
                store.user_by_name(&name).await?.ok_or_else(|| Fatal(format!("no user named {name:?}")))?;
            if user.disabled {
                return Err(Fatal(format!("user {name:?} is disabled")));
            }
            if scopes.contains(&Scope::Admin) && !user.admin {
                return Err(Fatal(format!(
                    "{name} is not an administrator; an admin-scoped token needs one"
                )));
            }
            let expires_at = expires_days.map(|d| now + i64::from(d) * 86_400);
            let (record, secret) =
                store.issue_token(&user.id, &label, &scopes, expires_at, TokenSource::Issued, now).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "id": record.id, "token": secret, "username": user.name,
                        "scopes": record.scopes, "expires_at": record.expires_at.map(rfc3339),
                    })
                );
            } else {
                println!("{secret}");
            }
            Ok(())
        }
    }
}
