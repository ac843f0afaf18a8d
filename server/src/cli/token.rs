//! `tapgate-server token issue|list|revoke`

use clap::Subcommand;
use tapgate_shared::api::Scope;

use super::Fatal;
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::store::Store;
use crate::store::tokens::{TokenRecord, TokenSource};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue an API token for a user and print it (shown once).
    Issue {
        name: String,
        /// Scopes: read, publish, admin (repeat or comma-separate).
        #[arg(long, value_delimiter = ',', default_value = "read,publish")]
        scope: Vec<String>,
        /// Lifetime in days; no expiry when omitted.
        #[arg(long)]
        expires_days: Option<u32>,
        /// A label to recognise the token by.
        #[arg(long, default_value = "cli")]
        label: String,
        #[arg(long)]
        json: bool,
    },
    /// List live tokens (neither revoked nor expired): everyone's, or one user's.
    List {
        /// Only this user's tokens.
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its public id (`tok_…`, see `token list`), and every token derived
    /// from it.
    Revoke { id: String },
}

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
        TokenCommand::List { user, json } => {
            let users = store.list_users().await?;
            let tokens = match &user {
                Some(name) => {
                    let user = users
                        .iter()
                        .find(|u| &u.name == name)
                        .ok_or_else(|| Fatal(format!("no user named {name:?}")))?;
                    store.list_tokens(&user.id, now).await?
                }
                None => store.list_all_tokens(now).await?,
            };
            let owner = |t: &TokenRecord| {
                users.iter().find(|u| u.id == t.user_id).map_or_else(|| t.user_id.clone(), |u| u.name.clone())
            };
            if json {
                let rows: Vec<_> = tokens
                    .iter()
                    .map(|t| {
                        serde_json::json!({
                            "id": t.id, "user": owner(t), "label": t.name, "scopes": t.scopes,
                            "created_at": rfc3339(t.created_at),
                            "expires_at": t.expires_at.map(rfc3339),
                            "last_used_at": t.last_used_at.map(rfc3339),
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else {
                for t in &tokens {
                    let scopes: Vec<&str> = t.scopes.iter().map(|s| s.as_str()).collect();
                    let used = t
                        .last_used_at
                        .map_or_else(|| "never used".into(), |at| format!("used {}", rfc3339(at)));
                    println!(
                        "{}  {}  {}  [{}]  created {}, {used}",
                        t.id,
                        owner(t),
                        t.name,
                        scopes.join(","),
                        rfc3339(t.created_at)
                    );
                }
            }
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            if store.revoke_token(&id, None, now).await? {
                println!("revoked token {id} and the tokens derived from it");
                Ok(())
            } else {
                Err(Fatal(format!("no live token {id:?}: see `tapgate-server token list`")))
            }
        }
    }
}
