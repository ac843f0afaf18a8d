//! Pending approvals as the maintainers who may tap them see them, and rejections: a tap by a
//! maintainer that voids an approval, kept as evidence.

use super::approvals::{Approval, select_approvals};
use super::gate::begin_write;
use super::{Store, StoreResult, dispatch};
use crate::clock::UnixSeconds;

/// The tap that rejects an approval (over the intent's reject challenge).
#[derive(Debug, Clone)]
pub struct Rejection<'a> {
    pub approval_id: &'a str,
    pub user_id: &'a str,
    pub key_id: &'a str,
    pub credential_id: &'a [u8],
    pub challenge: &'a [u8],
    pub client_data_json: &'a [u8],
    pub authenticator_data: &'a [u8],
    pub signature: &'a [u8],
    pub user_verified: bool,
}

/// What a rejection did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectOutcome {
    /// The approval is void from now on.
    Rejected,
    /// It was used, expired or rejected meanwhile.
    Gone,
}

impl Store {
    /// Approvals still waiting for taps on the packages `user_id` maintains, and the ones they
    /// asked for themselves, oldest first.
    pub async fn pending_approvals_for(
        &self,
        user_id: &str,
        now: UnixSeconds,
        max_failures: i64,
        limit: i64,
    ) -> StoreResult<Vec<Approval>> {
        let sql = select_approvals!(
            "WHERE format = 2 AND approved_at IS NULL AND used_at IS NULL AND rejected_at IS NULL \
             AND expires_at > $2 AND failed_attempts < $3 \
             AND (requested_by = $1 OR package IN (SELECT package FROM package_maintainers WHERE user_id = $1)) \
             ORDER BY created_at, id LIMIT $4"
        );
        dispatch!(self, pool => {
            Ok(sqlx::query_as::<_, Approval>(sql)
                .bind(user_id)
                .bind(now)
                .bind(max_failures)
                .bind(limit)
                .fetch_all(pool)
                .await?)
        })
    }

    /// Voids an approval that is still pending (or approved and not used yet), and records the
    /// tap that rejected it, in one transaction.
    pub async fn reject_approval(
        &self,
        r: &Rejection<'_>,
        max_failures: i64,
        now: UnixSeconds,
    ) -> StoreResult<RejectOutcome> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            let n = sqlx::query(
                "UPDATE approvals SET rejected_at = $1, rejected_by = $2 WHERE id = $3 AND rejected_at IS NULL \
                 AND used_at IS NULL AND ((approved_at IS NULL AND expires_at > $1 AND failed_attempts < $4) \
                 OR (approved_at IS NOT NULL AND ticket_expires_at > $1))",
            )
            .bind(now)
            .bind(r.user_id)
            .bind(r.approval_id)
            .bind(max_failures)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Ok(RejectOutcome::Gone);
            }
            sqlx::query(
                "INSERT INTO approval_rejections (approval_id, user_id, key_id, credential_id, challenge, \
                 client_data_json, authenticator_data, signature, user_verified, rejected_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(r.approval_id)
            .bind(r.user_id)
            .bind(r.key_id)
            .bind(r.credential_id)
            .bind(r.challenge)
            .bind(r.client_data_json)
            .bind(r.authenticator_data)
            .bind(r.signature)
            .bind(r.user_verified)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(RejectOutcome::Rejected)
        })
    }
}
