//! `tapgate-server outbox list|retry`: see notification deliveries that have not arrived (and
//! why), and push them again.

use super::Fatal;
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::config::OutboxCommand;
use crate::store::Store;

pub async fn run(cmd: OutboxCommand, store: &Store) -> Result<(), Fatal> {
    let now = SystemClock.now();
    match cmd {
        OutboxCommand::List { all, limit, json } => {
            let rows = store.deliveries(!all, limit).await?;
            if json {
                let text = serde_json::to_string_pretty(&rows).map_err(|e| Fatal(e.to_string()))?;
                println!("{text}");
                return Ok(());
            }
            if rows.is_empty() {
                println!("{}", if all { "no deliveries" } else { "every notification was delivered" });
            }
            for d in rows {
                let status = match (d.delivered_at, d.failed_at) {
                    (Some(at), _) => format!("delivered {}", rfc3339(at)),
                    (None, Some(at)) => format!("GAVE UP {}", rfc3339(at)),
                    (None, None) => format!("due {}", rfc3339(d.next_attempt_at)),
                };
                println!(
                    "{}\t{}\t{}\t{}\t{} attempt(s)\t{status}\t{}",
                    d.id,
                    d.kind,
                    d.package.as_deref().unwrap_or("-"),
                    format_args!("{} {}", d.channel, d.target),
                    d.attempts,
                    d.last_error.as_deref().unwrap_or(""),
                );
            }
        }
        OutboxCommand::Retry { id, all } => {
            if id.is_none() && !all {
                return Err(Fatal("name a delivery id (see `outbox list`) or pass --all".into()));
            }
            let n = store.retry_deliveries(id, now).await?;
            println!("{n} deliver{} due now", if n == 1 { "y is" } else { "ies are" });
        }
    }
    Ok(())
}
