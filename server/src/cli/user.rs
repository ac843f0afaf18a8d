//! `tapgate-server user …`

use clap::Subcommand;

use super::{Fatal, origin_for_links};
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::config::Settings;
use crate::names::validate_username;
use crate::store::{Store, StoreError};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user and print a single-use invite URL (valid 7 days) to enroll their first key.
    Add {
        /// Username: lowercase letters, digits, '-', '_' and '.'; 1 to 64 characters.
        name: String,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        /// Print {"user", "invite_url", "invite_token"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Issue a new invite for an existing user (e.g. one who lost every key); their older
    /// unused invites stop working.
    Invite {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: their tokens are revoked and they can no longer sign in.
    Disable { name: String },
    /// Enable a disabled user again; the tokens revoked when they were disabled stay revoked.
    Enable { name: String },
}

pub async fn run(cmd: UserCommand, settings: &Settings, store: &Store) -> Result<(), Fatal> {
    let now = SystemClock.now();
    match cmd {
        UserCommand::Add { name, admin, json } => {
            validate_username(&name)?;
            let user = store.create_user(&name, admin, now).await.map_err(|e| match e {
                StoreError::Conflict(msg) => Fatal(msg),
                other => Fatal::from(other),
            })?;
            print_invite(settings, store, &user.id, &user.name, json, now).await
        }
        UserCommand::Invite { name, json } => {
            let user =
                store.user_by_name(&name).await?.ok_or_else(|| Fatal(format!("no user named {name:?}")))?;
            if user.disabled {
                return Err(Fatal(format!(
                    "user {name:?} is disabled: `tapgate-server user enable {name}` first"
                )));
            }
            print_invite(settings, store, &user.id, &user.name, json, now).await
        }
        UserCommand::List { json } => {
            let users = store.list_users().await?;
            if json {
                let rows: Vec<_> = users
                    .iter()
                    .map(|u| {
                        serde_json::json!({
                            "user": u.name, "admin": u.admin, "disabled": u.disabled,
                            "created_at": rfc3339(u.created_at),
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else {
                for u in users {
                    let flags = match (u.admin, u.disabled) {
                        (_, true) => " (disabled)",
                        (true, false) => " (admin)",
                        (false, false) => "",
                    };
                    println!("{}{flags}", u.name);
                }
            }
            Ok(())
        }
        UserCommand::Disable { name } => {
            if store.disable_user(&name, now).await? {
                println!("disabled {name}; their tokens are revoked");
                Ok(())
            } else {
                Err(Fatal(format!("no user named {name:?}")))
            }
        }
        UserCommand::Enable { name } => {
            if store.enable_user(&name).await? {
                println!("enabled {name}; their old tokens stay revoked: they sign in again with their key");
                Ok(())
            } else {
                Err(Fatal(format!("no user named {name:?}")))
            }
        }
    }
}

async fn print_invite(
    settings: &Settings,
    store: &Store,
    user_id: &str,
    name: &str,
    json: bool,
    now: i64,
) -> Result<(), Fatal> {
    let origin = origin_for_links(settings, store).await?;
    let token = store.create_invite(user_id, now).await?;
    let url = format!("{}/enroll?invite={token}", origin.as_str().trim_end_matches('/'));
    if json {
        println!("{}", serde_json::json!({ "user": name, "invite_url": url, "invite_token": token }));
    } else {
        println!(
            "Created an invite for {name}. It works once, expires in 7 days, and voids their older ones:\n{url}"
        );
    }
    Ok(())
}
