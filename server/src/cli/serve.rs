//! `tapgate-server serve`.

use std::sync::Arc;

use tokio::net::TcpListener;

use super::{Fatal, open_store};
use crate::clock::SystemClock;
use crate::config::{GlobalArgs, ServeArgs, Settings, default_origin};
use crate::state::{AppConfig, AppState};
use crate::webauthn::RelyingParty;

pub async fn run(global: &GlobalArgs, args: &ServeArgs) -> Result<(), Fatal> {
    let settings = Settings::resolve(global, args)?;
    tracing::debug!(?settings, "starting");
    let mut trust = settings.attestation_trust()?;
    let mds = settings.fido_mds(std::time::SystemTime::now())?;
    let store = open_store(&settings).await?;
    if let Some(mds) = mds {
        trust = trust.with_mds(accept_fido_mds(&store, &settings, mds).await?);
    }
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| Fatal(format!("cannot listen on {}: {e}", settings.listen)))?;
    let bound =
        listener.local_addr().map_err(|e| Fatal(format!("cannot read the listening address: {e}")))?;
    let origin = match &settings.origin {
        Some(origin) => origin.clone(),
        None => default_origin(bound)?,
    };
    let config = AppConfig {
        origin: origin.clone(),
        max_json_bytes: settings.max_json_bytes,
        default_policy: settings.default_policy,
        max_tarball_bytes: settings.max_tarball_bytes,
        approval_ttl_seconds: settings.approval_ttl_seconds,
        connections: settings.connections.clone(),
        rate_limits: settings.rate_limits.clone(),
        trusted_proxies: settings.trusted_proxies.clone(),
        notify: settings.notify.clone(),
        upstream: match settings.upstream.clone() {
            Some(c) => Some(Arc::new(crate::upstream::Upstream::new(c).map_err(Fatal)?)),
            None => None,
        },
        oidc: settings.oidc.clone(),
        default_ci: settings.default_ci.clone(),
    };
    if super::origin_is_ip(&origin) {
        tracing::warn!(origin = %origin, "{}", super::ip_origin_warning(&origin));
    }
    store
        .record_served_origin(origin.as_str().trim_end_matches('/'), crate::clock::Clock::now(&SystemClock))
        .await?;
    let rp = RelyingParty::new(&origin, trust)?;
    tracing::info!(
        rp_id = %rp.rp_id,
        attestation_cas = rp.trust.ca_count(),
        fido_mds_models = rp.trust.mds().map_or(0, |m| m.certified),
        "WebAuthn relying party {}", rp.rp_id
    );
    let state = AppState::new(store.clone(), Arc::new(SystemClock), config, rp);
    let shown_origin = origin.as_str().trim_end_matches('/');
    tracing::info!(
        listen = %bound,
        origin = %shown_origin,
        backend = ?store.backend(),
        "tapgate-server listening on http://{bound} (origin {shown_origin})"
    );
    let purger = tokio::spawn(purge_periodically(store.clone()));
    let senders = crate::notify::worker::Senders::new(&settings.notify)?;
    let deliverer = tokio::spawn(crate::notify::worker::run(state.clone(), senders));
    let signing = tokio::spawn(crate::audit::run_signer(state.clone(), std::time::Duration::from_secs(60)));
    crate::serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| Fatal(format!("server error: {e}")))?;
    purger.abort();
    deliverer.abort();
    signing.abort();
    store.close().await;
    tracing::info!("tapgate-server stopped");
    Ok(())
}

/// Records the verified BLOB as the last one accepted, refusing it when an older serial than
/// one accepted before (a replay of older metadata).
async fn accept_fido_mds(
    store: &crate::store::Store,
    settings: &Settings,
    mds: crate::webauthn::mds::MdsTrust,
) -> Result<crate::webauthn::mds::MdsTrust, Fatal> {
    use crate::clock::Clock;
    let file = settings.fido_mds.as_deref().map(|p| p.display().to_string()).unwrap_or_default();
    let next_update = mds.next_update.to_string();
    let record = crate::store::fido_mds::MdsBlobRecord {
        serial: i64::from(mds.serial),
        next_update: &next_update,
        blob_sha256: &mds.sha256,
    };
    if let Err(last) = store.accept_fido_mds(&record, SystemClock.now()).await? {
        return Err(Fatal(format!(
            "the FIDO metadata BLOB {file} is refused: its serial number {} is lower than {last}, \
             the last one this registry accepted (an older BLOB replayed); use the current BLOB",
            mds.serial
        )));
    }
    tracing::info!(
        serial = mds.serial,
        next_update = %next_update,
        certified_models = mds.certified,
        skipped_entries = mds.skipped,
        signer = %mds.signer,
        "FIDO metadata BLOB {file} accepted: serial {}, {} certified models trusted, valid until {next_update}",
        mds.serial,
        mds.certified
    );
    Ok(mds)
}

/// Every 15 minutes, deletes expired ceremonies, logins, unused approvals and past rate-limit
/// windows.
async fn purge_periodically(store: crate::store::Store) {
    use crate::clock::Clock;
    let mut every = tokio::time::interval(std::time::Duration::from_secs(15 * 60));
    loop {
        every.tick().await;
        match store.purge_expired(SystemClock.now()).await {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "purged expired ceremonies, approvals and rate-limit counters"),
            Err(e) => tracing::warn!(error = %e, "purging expired rows failed"),
        }
        // Delivered notifications are kept 30 days (for `outbox list --all`).
        match store.purge_delivered(SystemClock.now() - 30 * 86_400).await {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "purged delivered notifications"),
            Err(e) => tracing::warn!(error = %e, "purging delivered notifications failed"),
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
