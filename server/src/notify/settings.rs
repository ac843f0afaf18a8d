//! Each user's alert address (verified by a link sent to it) and the events they chose. A new
//! address does not replace the verified one until its link is opened, and the old address is
//! told of the change: a stolen token cannot quietly redirect a maintainer's alerts.

use crate::client_info::ClientInfo;
use crate::secrets::{self, SecretKind};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::users::User;

/// How long a verification link works.
pub const VERIFY_TTL_SECONDS: i64 = 86_400;

/// Why a setting was refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Asks for `address` to become `user`'s alert address: sends it the verification link, and
/// tells the current address.
pub async fn set_email(
    state: &AppState,
    user: &User,
    address: &str,
    client: &ClientInfo,
) -> Result<(), SettingsError> {
    let address = address.trim();
    if !super::email::valid_address(address) {
        return Err(SettingsError::Invalid(format!("{address:?} is not an email address")));
    }
    if state.config.notify.smtp_url.is_none() {
        return Err(SettingsError::Invalid(
            "this registry sends no email (its operator configured no SMTP server): use package webhooks"
                .into(),
        ));
    }
    let token = secrets::generate(SecretKind::Session);
    let now = state.now();
    let current = state.store.user_email(&user.id).await?;
    state.store.set_pending_email(&user.id, address, &token.hash, now + VERIFY_TTL_SECONDS).await?;
    let link = state.config.url(&format!("/-/email/verify/{}", token.plaintext));
    let payload = super::events::verify_email(state, &user.name, address, &link);
    state.store.enqueue_email("email-verify", &user.id, address, &payload, now).await?;
    if let Some(old) = current.and_then(|c| c.address.filter(|_| c.verified_at.is_some()))
        && old != address
    {
        let note = super::events::email_change_note(state, &user.name, address, client);
        state.store.enqueue_email("email-changing", &user.id, &old, &note, now).await?;
    }
    tracing::info!(user = %user.name, "alert address change asked; verification link sent");
    Ok(())
}

/// Opens a verification link; answers the address now verified.
pub async fn verify(state: &AppState, token: &str) -> Result<Option<String>, StoreError> {
    if !secrets::has_prefix(token, SecretKind::Session) {
        return Ok(None);
    }
    let verified = state.store.verify_email(&secrets::hash(token), state.now()).await?;
    Ok(verified.map(|(_, address)| address))
}

/// Sets the events `user` wants besides lock alerts.
pub async fn set_events(state: &AppState, user: &User, events: &[String]) -> Result<String, SettingsError> {
    let mut chosen: Vec<&str> = events.iter().map(|e| e.trim()).filter(|e| !e.is_empty()).collect();
    chosen.sort_unstable();
    chosen.dedup();
    let stored = if chosen.contains(&"all") {
        "all".to_string()
    } else {
        if let Some(unknown) = chosen.iter().find(|e| !super::TOPICS.contains(e)) {
            return Err(SettingsError::Invalid(format!(
                "unknown event {unknown:?}: choose among all, {}",
                super::TOPICS.join(", ")
            )));
        }
        chosen.join(",")
    };
    state.store.set_email_events(&user.id, &stored).await?;
    Ok(stored)
}
