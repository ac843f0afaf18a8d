//! `tapgate-server key list|revoke`: an operator's view of a user's security keys, and the
//! revocation of one that was lost or stolen.
//!
//! Why an operator may revoke a key without the gate while the HTTP API may not: over HTTP the
//! caller is whoever holds a token, and a token only identifies, so removing a key there needs
//! a tap of one of the account's keys (`changes::keys::remove_key`). The operator here holds the
//! database itself: a tap could not stop them (they could change the rows directly), and would
//! stop exactly the case this is for, a user whose key is gone and cannot tap. Revoking only
//! takes a credential away, it never grants one (enrolling a new key still takes an invite or a
//! tap), and the act is not silent: it is appended to the registry's audit chain and the user is
//! alerted, in the transaction that suspends the key.

use clap::Subcommand;

use super::{Fatal, origin_for_links};
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::config::Settings;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List a user's security keys (ids for `key revoke`).
    List {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a user's lost or stolen security key: it can no longer sign in or approve, and
    /// pending changes it approved do not commit. Recorded in the audit log; the user is alerted.
    Revoke {
        user: String,
        /// The key's id (`key_…`, see `key list`).
        key_id: String,
        /// Why, for the audit log and the user's alert.
        #[arg(long, default_value = "reported lost or stolen")]
        reason: String,
    },
}

pub async fn run(cmd: KeyCommand, settings: &Settings, store: &Store) -> Result<(), Fatal> {
    match cmd {
        KeyCommand::List { user, json } => {
            let user =
                store.user_by_name(&user).await?.ok_or_else(|| Fatal(format!("no user named {user:?}")))?;
            let keys = store.keys_of_user(&user.id).await?;
            if json {
                let rows: Vec<_> = keys
                    .iter()
                    .map(|k| {
                        serde_json::json!({
                            "id": k.id, "name": k.name, "attested": k.attested,
                            "created_at": rfc3339(k.created_at),
                            "last_used_at": k.last_used_at.map(rfc3339),
                            "suspended_at": k.suspended_at.map(rfc3339),
                            "suspended_reason": k.suspended_reason,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else {
                for k in &keys {
                    let state = match (&k.suspended_at, &k.suspended_reason) {
                        (Some(at), reason) => {
                            format!(
                                " (suspended {}: {})",
                                rfc3339(*at),
                                reason.as_deref().unwrap_or("no reason")
                            )
                        }
                        (None, _) => String::new(),
                    };
                    println!("{}  {}  enrolled {}{state}", k.id, k.name, rfc3339(k.created_at));
                }
            }
            Ok(())
        }
        KeyCommand::Revoke { user, key_id, reason } => {
            if reason.trim().is_empty() || reason.len() > 500 {
                return Err(Fatal("--reason must say why, in at most 500 characters".into()));
            }
            let user =
                store.user_by_name(&user).await?.ok_or_else(|| Fatal(format!("no user named {user:?}")))?;
            let key = store.key_by_id(&key_id).await?.filter(|k| k.user_id == user.id).ok_or_else(|| {
                Fatal(format!(
                    "{} has no key {key_id:?}: see `tapgate-server key list {}`",
                    user.name, user.name
                ))
            })?;
            if key.suspended_at.is_some() {
                return Err(Fatal(format!("key {key_id} of {} is already suspended", user.name)));
            }
            let now = SystemClock.now();
            let origin = origin_for_links(settings, store).await?;
            let registry = origin.as_str().trim_end_matches('/');
            let effects =
                crate::notify::operator::key_revoked(registry, &user.name, &user.id, &key, &reason, now);
            if !store
                .revoke_key(&user.id, &key.id, &format!("revoked by an operator: {reason}"), &effects, now)
                .await?
            {
                return Err(Fatal(format!("key {key_id} of {} was suspended meanwhile", user.name)));
            }
            let usable =
                store.keys_of_user(&user.id).await?.iter().filter(|k| k.suspended_at.is_none()).count();
            println!(
                "revoked key {} ({}) of {}; recorded in the audit log, {} alerted",
                key.id, key.name, user.name, user.name
            );
            if usable == 0 {
                println!(
                    "{} has no usable key left: `tapgate-server user invite {}` lets them enroll a new one",
                    user.name, user.name
                );
            }
            Ok(())
        }
    }
}
