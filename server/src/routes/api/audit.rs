//! `GET /api/v1/packages/{name}/audit?after=SEQ&limit=N`: a package's audit log, oldest first,
//! with the latest head the server signed and its public key; `GET /api/v1/audit/registry`: the
//! registry's own chain (accounts' keys). Public: anyone may verify them
//! (`tapgate audit verify NAME`).

use std::collections::HashMap;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tapgate_shared::ErrorCode;
use tapgate_shared::audit::{AuditEntry, AuditPage, SignedHead, package_chain};

use crate::clock::rfc3339;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::routes::npm::packages::package_not_found;
use crate::state::AppState;
use crate::store::StoreError;

/// Entries in one page at most.
pub const MAX_PAGE: i64 = 1000;

pub fn routes() -> Router<AppState> {
    Router::new().route("/packages/{name}/audit", get(page)).route("/audit/registry", get(registry))
}

fn number(params: &HashMap<String, String>, name: &str, default: i64) -> ApiResult<i64> {
    match params.get(name) {
        None => Ok(default),
        Some(v) => v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::bad_request(ErrorCode::BadRequest, format!("{name} must be a whole number, not {v:?}"))
        }),
    }
}

async fn page(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<AuditPage>> {
    let chain = package_chain(&name);
    let (head_seq, _) = state.store.audit_head(&chain).await?;
    if head_seq == 0 && state.store.package(&name).await?.is_none() {
        return Err(package_not_found(&name));
    }
    serve_chain(&state, chain, query).await
}

async fn registry(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Json<AuditPage>> {
    serve_chain(&state, crate::audit::REGISTRY_CHAIN.to_string(), query).await
}

async fn serve_chain(state: &AppState, chain: String, query: Option<String>) -> ApiResult<Json<AuditPage>> {
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    let after = number(&params, "after", 0)?;
    let limit = number(&params, "limit", MAX_PAGE)?.clamp(1, MAX_PAGE);
    let (head_seq, _) = state.store.audit_head(&chain).await?;
    let entries = state
        .store
        .audit_entries(&chain, after, limit)
        .await?
        .into_iter()
        .map(|r| AuditEntry {
            seq: u64::try_from(r.seq).unwrap_or(0),
            entry: r.entry,
            prev_hash: r.prev_hash,
            hash: r.hash,
        })
        .collect();
    let signed_head = match state.store.latest_signed_head(&chain).await? {
        Some(h) => {
            let key = state.store.signing_key(&h.key_id).await?.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "the audit head of {} names an unknown key {}",
                    h.chain, h.key_id
                ))
            })?;
            Some(SignedHead {
                chain: h.chain,
                seq: u64::try_from(h.seq).unwrap_or(0),
                hash: h.hash,
                signed_at: rfc3339(h.signed_at),
                key_id: h.key_id,
                signature: h.signature,
                public_key: URL_SAFE_NO_PAD.encode(&key.public_key),
            })
        }
        None => None,
    };
    Ok(Json(AuditPage { chain, entries, head_seq: u64::try_from(head_seq).unwrap_or(0), signed_head }))
}
