//! Publish approvals: an intent waiting for a maintainer's tap, then a single-use ticket.

use super::{Store, StoreResult, dispatch};
use crate::clock::UnixSeconds;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Approval {
    pub id: String,
    pub package: String,
    pub version: String,
    pub integrity: String,
    pub requested_by: String,
    pub nonce: Vec<u8>,
    pub challenge: Vec<u8>,
    pub auth_state: String,
    pub created_at: UnixSeconds,
    pub expires_at: UnixSeconds,
    pub failed_attempts: i64,
    pub approved_at: Option<UnixSeconds>,
    pub approved_by: Option<String>,
    pub key_id: Option<String>,
    pub ticket_expires_at: Option<UnixSeconds>,
    pub used_at: Option<UnixSeconds>,
    pub credential_id: Option<Vec<u8>>,
    pub credential_public_key: Option<String>,
    pub client_data_json: Option<Vec<u8>>,
    pub authenticator_data: Option<Vec<u8>>,
    pub signature: Option<Vec<u8>>,
    pub user_verified: Option<bool>,
}

macro_rules! select_approvals {
    ($rest:literal) => {
        concat!(
            "SELECT id, package, version, integrity, requested_by, nonce, challenge, auth_state, created_at, \
             expires_at, failed_attempts, approved_at, approved_by, key_id, ticket_expires_at, used_at, \
             credential_id, credential_public_key, client_data_json, authenticator_data, signature, user_verified \
             FROM approvals ",
            $rest
        )
    };
}

/// A new approval request.
#[derive(Debug, Clone)]
pub struct NewApproval<'a> {
    pub id: &'a str,
    pub package: &'a str,
    pub version: &'a str,
    pub integrity: &'a str,
    pub requested_by: &'a str,
    pub nonce: &'a [u8],
    pub challenge: &'a [u8],
    pub auth_state: &'a str,
    pub done_hash: &'a str,
    pub expires_at: UnixSeconds,
}

/// The evidence and secrets recorded when a key approves.
#[derive(Debug, Clone)]
pub struct Approved<'a> {
    pub approved_by: &'a str,
    pub key_id: &'a str,
    pub ticket_hash: &'a str,
    pub ticket_expires_at: UnixSeconds,
    pub code_hash: &'a str,
    pub credential_id: &'a [u8],
    pub credential_public_key: &'a str,
    pub client_data_json: &'a [u8],
    pub authenticator_data: &'a [u8],
    pub signature: &'a [u8],
    pub user_verified: bool,
}

/// What polling npm's done URL for an approval finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DonePoll {
    Pending,
    /// Approved; the new ticket (whose hash the caller passed) now stands for it.
    Ready,
    Gone,
}

impl Store {
    pub async fn create_approval(&self, a: &NewApproval<'_>, now: UnixSeconds) -> StoreResult<()> {
        dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO approvals (id, package, version, integrity, requested_by, nonce, challenge, auth_state, \
                 done_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(a.id)
            .bind(a.package)
            .bind(a.version)
            .bind(a.integrity)
            .bind(a.requested_by)
            .bind(a.nonce)
            .bind(a.challenge)
            .bind(a.auth_state)
            .bind(a.done_hash)
            .bind(now)
            .bind(a.expires_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn approval(&self, id: &str) -> StoreResult<Option<Approval>> {
        let sql = select_approvals!("WHERE id = $1");
        dispatch!(self, pool => Ok(sqlx::query_as::<_, Approval>(sql).bind(id).fetch_optional(pool).await?))
    }

    /// The approval a ticket stands for.
    pub async fn approval_by_ticket(&self, ticket_hash: &str) -> StoreResult<Option<Approval>> {
        let sql = select_approvals!("WHERE ticket_hash = $1");
        dispatch!(self, pool => Ok(sqlx::query_as::<_, Approval>(sql).bind(ticket_hash).fetch_optional(pool).await?))
    }

    /// The approval a typed code stands for: only one approved for exactly this upload.
    pub async fn approval_by_code(
        &self,
        package: &str,
        version: &str,
        integrity: &str,
        requested_by: &str,
        code_hash: &str,
    ) -> StoreResult<Option<Approval>> {
        let sql = select_approvals!(
            "WHERE package = $1 AND version = $2 AND integrity = $3 AND requested_by = $4 AND code_hash = $5"
        );
        dispatch!(self, pool => {
            Ok(sqlx::query_as::<_, Approval>(sql)
                .bind(package)
                .bind(version)
                .bind(integrity)
                .bind(requested_by)
                .bind(code_hash)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Counts a failed approval attempt; returns the new count.
    pub async fn record_approval_failure(&self, id: &str) -> StoreResult<i64> {
        dispatch!(self, pool => {
            sqlx::query("UPDATE approvals SET failed_attempts = failed_attempts + 1 WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
            let (n,): (i64,) = sqlx::query_as("SELECT failed_attempts FROM approvals WHERE id = $1")
                .bind(id)
                .fetch_one(pool)
                .await?;
            Ok(n)
        })
    }

    /// Marks a pending, unexpired approval approved; false if it was not pending any more.
    pub async fn approve(&self, id: &str, a: &Approved<'_>, now: UnixSeconds) -> StoreResult<bool> {
        let n = dispatch!(self, pool => {
            sqlx::query(
                "UPDATE approvals SET approved_at = $1, approved_by = $2, key_id = $3, ticket_hash = $4, \
                 ticket_expires_at = $5, code_hash = $6, credential_id = $7, credential_public_key = $8, \
                 client_data_json = $9, authenticator_data = $10, signature = $11, user_verified = $12 \
                 WHERE id = $13 AND approved_at IS NULL AND expires_at > $1",
            )
            .bind(now)
            .bind(a.approved_by)
            .bind(a.key_id)
            .bind(a.ticket_hash)
            .bind(a.ticket_expires_at)
            .bind(a.code_hash)
            .bind(a.credential_id)
            .bind(a.credential_public_key)
            .bind(a.client_data_json)
            .bind(a.authenticator_data)
            .bind(a.signature)
            .bind(a.user_verified)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// npm polling its done URL: once approved (and not used or stale), a fresh ticket replaces
    /// the one handed to the approver, and the caller gives it to npm.
    pub async fn poll_approval_done(
        &self,
        done_hash: &str,
        new_ticket_hash: &str,
        now: UnixSeconds,
    ) -> StoreResult<DonePoll> {
        let sql =
            "SELECT approved_at, used_at, expires_at, ticket_expires_at FROM approvals WHERE done_hash = $1";
        let row = dispatch!(self, pool => {
            sqlx::query_as::<_, (Option<i64>, Option<i64>, i64, Option<i64>)>(sql).bind(done_hash).fetch_optional(pool).await?
        });
        let Some((approved_at, used_at, expires_at, ticket_expires_at)) = row else {
            return Ok(DonePoll::Gone);
        };
        if used_at.is_some() {
            return Ok(DonePoll::Gone);
        }
        if approved_at.is_none() {
            return Ok(if expires_at > now { DonePoll::Pending } else { DonePoll::Gone });
        }
        if ticket_expires_at.is_none_or(|t| t <= now) {
            return Ok(DonePoll::Gone);
        }
        let n = dispatch!(self, pool => {
            sqlx::query("UPDATE approvals SET ticket_hash = $1 WHERE done_hash = $2 AND used_at IS NULL")
                .bind(new_ticket_hash)
                .bind(done_hash)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(if n == 1 { DonePoll::Ready } else { DonePoll::Gone })
    }
}
