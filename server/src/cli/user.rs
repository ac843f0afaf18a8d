//! `tapgate-server user …`

use super::{Fatal, origin_for_links};
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::config::{Settings, UserCommand};
use crate::names::validate_username;
use crate::store::{Store, StoreError};

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
                return Err(Fatal(format!("user {name:?} is disabled")));
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
    let token = store.create_invite(user_id, now).await?;
    let origin = origin_for_links(settings)?;
    let url = format!("{}/enroll?invite={token}", origin.as_str().trim_end_matches('/'));
    if json {
        println!("{}", serde_json::json!({ "user": name, "invite_url": url, "invite_token": token }));
    } else {
        println!("Created an invite for {name}. It works once and expires in 7 days:\n{url}");
    }
    Ok(())
}
