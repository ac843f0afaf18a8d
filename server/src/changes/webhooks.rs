//! Setting where a package's alerts go: its webhook URLs. Security-relevant (a thief who could
//! move them would silence the alarm), so a gated change that always needs a maintainer's tap.

use tapgate_shared::gate_intent::Change;

use super::{Actor, admit, log_accepted};
use crate::gate::roles::Asking;
use crate::gate::{GateError, committed};
use crate::secrets;
use crate::state::AppState;

/// Webhooks one package may have.
pub const MAX_WEBHOOKS: usize = 10;

/// Replaces the webhooks of `package` with `urls`; answers each URL with its secret when new.
pub async fn set(
    state: &AppState,
    actor: &Actor,
    package: &str,
    urls: &[String],
    otp: Option<&str>,
) -> Result<Vec<(String, Option<String>)>, GateError> {
    let mut new: Vec<String> = urls.iter().map(|u| u.trim().to_string()).collect();
    new.sort();
    new.dedup();
    if new.len() > MAX_WEBHOOKS {
        return Err(GateError::Invalid(format!("a package has at most {MAX_WEBHOOKS} webhooks")));
    }
    for url in &new {
        crate::notify::webhook::check_url(url, state.config.notify.allow_http_webhooks)
            .map_err(GateError::Invalid)?;
    }
    let mut old: Vec<String> = state.store.webhooks(package).await?.into_iter().map(|w| w.url).collect();
    old.sort();
    if old == new {
        return Err(GateError::Conflict(format!("{package} already has these webhooks: nothing to change")));
    }
    let admitted = admit(
        state,
        actor,
        package,
        Asking::Release,
        Change::WebhookSet { old: old.clone(), new: new.clone() },
        otp,
    )
    .await?;
    let fresh: Vec<(String, String, String)> = new
        .iter()
        .filter(|u| !old.contains(u))
        .map(|u| (u.clone(), secrets::public_id("whk_"), webhook_secret()))
        .collect();
    let guard = admitted.guard(actor, state.now());
    committed(state.store.set_webhooks(package, &new, &fresh, &guard).await, package)?;
    log_accepted(&admitted, actor);
    Ok(new
        .into_iter()
        .map(|url| {
            let secret = fresh.iter().find(|(u, _, _)| *u == url).map(|(_, _, s)| s.clone());
            (url, secret)
        })
        .collect())
}

/// A webhook's signing secret: 256 random bits, `whsec_…`. Kept in clear (the server signs with
/// it), shown to the maintainer once.
fn webhook_secret() -> String {
    let random = secrets::generate(secrets::SecretKind::Session).plaintext;
    format!("whsec_{}", random.trim_start_matches(secrets::SecretKind::Session.prefix()))
}
