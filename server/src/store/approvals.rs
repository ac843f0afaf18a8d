//! Approvals: a gated intent waiting for the taps its policy demands, then a single-use ticket
//! bound to the intent's digest. Each tap is a row of `approval_signatures`, kept as the change's
//! record.

use super::gate::begin_write;
use super::{Store, StoreError, StoreResult, dispatch};
use crate::clock::UnixSeconds;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Approval {
    pub id: String,
    /// The package (or, for key changes, the account id) the intent changes.
    pub package: String,
    /// For publishes: the version and tarball integrity; empty for other changes.
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
    pub ticket_expires_at: Option<UnixSeconds>,
    pub used_at: Option<UnixSeconds>,
    /// 1: a publish approved under `tapgate-intent-v1`; 2: a [`GateIntent`](tapgate_shared::gate_intent::GateIntent).
    pub format: i32,
    pub action: String,
    pub intent: Option<String>,
    pub intent_digest: Option<String>,
    pub payload: Option<String>,
    pub required_taps: i32,
    pub policy: Option<String>,
    /// What the approver is shown besides the intent (`ApprovalDetails` JSON); informational.
    pub details: Option<String>,
    /// The requester's own tap must be among the signatures.
    pub requester_must_sign: bool,
    /// Set when a maintainer rejected the change: the approval is void.
    pub rejected_at: Option<UnixSeconds>,
    pub rejected_by: Option<String>,
}

macro_rules! select_approvals {
    ($rest:literal) => {
        concat!(
            "SELECT id, package, version, integrity, requested_by, nonce, challenge, auth_state, created_at, \
             expires_at, failed_attempts, approved_at, ticket_expires_at, used_at, format, action, intent, \
             intent_digest, payload, required_taps, policy, details, requester_must_sign, rejected_at, rejected_by \
             FROM approvals ",
            $rest
        )
    };
}

pub(super) use select_approvals;

/// A new approval request.
#[derive(Debug, Clone)]
pub struct NewApproval<'a> {
    pub id: &'a str,
    pub subject: &'a str,
    pub version: &'a str,
    pub integrity: &'a str,
    pub requested_by: &'a str,
    pub action: &'a str,
    /// The intent JSON and the hex digest of its canonical form.
    pub intent: &'a str,
    pub intent_digest: &'a str,
    pub payload: Option<&'a str>,
    pub required_taps: i32,
    pub requester_must_sign: bool,
    pub policy: Option<&'a str>,
    pub nonce: &'a [u8],
    pub challenge: &'a [u8],
    pub auth_state: &'a str,
    pub done_hash: &'a str,
    pub expires_at: UnixSeconds,
    /// `ApprovalDetails` JSON.
    pub details: Option<&'a str>,
}

/// One key's tap on an approval, kept as evidence for offline verification.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApprovalSignature {
    pub approval_id: String,
    pub user_id: String,
    pub key_id: String,
    pub credential_id: Vec<u8>,
    /// The credential's public key (webauthn-rs COSE JSON form).
    pub credential_public_key: String,
    pub client_data_json: Vec<u8>,
    pub authenticator_data: Vec<u8>,
    pub signature: Vec<u8>,
    pub user_verified: bool,
    pub signed_at: UnixSeconds,
}

/// The secrets an approval hands out once its last required tap arrives.
#[derive(Debug, Clone)]
pub struct TicketHashes<'a> {
    pub ticket_hash: &'a str,
    pub code_hash: &'a str,
    pub ticket_expires_at: UnixSeconds,
}

/// What a tap did to an approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignOutcome {
    /// The policy is satisfied; the ticket whose hash was passed stands for the approval.
    Approved,
    /// Recorded; `signers` distinct people have tapped, more are needed.
    Pending { signers: i64 },
    /// The approval is no longer pending (approved meanwhile, expired or void).
    Gone,
    /// This key already tapped this approval.
    AlreadySigned,
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
                 done_hash, created_at, expires_at, format, action, intent, intent_digest, payload, required_taps, policy, \
                 details, requester_must_sign) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 2, $12, $13, $14, $15, $16, $17, $18, $19)",
            )
            .bind(a.id)
            .bind(a.subject)
            .bind(a.version)
            .bind(a.integrity)
            .bind(a.requested_by)
            .bind(a.nonce)
            .bind(a.challenge)
            .bind(a.auth_state)
            .bind(a.done_hash)
            .bind(now)
            .bind(a.expires_at)
            .bind(a.action)
            .bind(a.intent)
            .bind(a.intent_digest)
            .bind(a.payload)
            .bind(a.required_taps)
            .bind(a.policy)
            .bind(a.details)
            .bind(a.requester_must_sign)
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

    /// The approval a typed code stands for: only one approving exactly this intent for this
    /// requester.
    pub async fn approval_by_code(
        &self,
        intent_digest: &str,
        requested_by: &str,
        code_hash: &str,
    ) -> StoreResult<Option<Approval>> {
        let sql = select_approvals!("WHERE intent_digest = $1 AND requested_by = $2 AND code_hash = $3");
        dispatch!(self, pool => {
            Ok(sqlx::query_as::<_, Approval>(sql)
                .bind(intent_digest)
                .bind(requested_by)
                .bind(code_hash)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Approvals waiting for taps.
    pub async fn count_pending_approvals(&self, now: UnixSeconds) -> StoreResult<i64> {
        let sql = "SELECT COUNT(*) FROM approvals WHERE approved_at IS NULL AND used_at IS NULL AND expires_at > $1";
        let (n,): (i64,) = dispatch!(self, pool => sqlx::query_as(sql).bind(now).fetch_one(pool).await?);
        Ok(n)
    }

    /// The taps recorded on an approval, in order.
    pub async fn approval_signatures(&self, approval_id: &str) -> StoreResult<Vec<ApprovalSignature>> {
        let sql = "SELECT approval_id, user_id, key_id, credential_id, credential_public_key, client_data_json, \
                   authenticator_data, signature, user_verified, signed_at FROM approval_signatures \
                   WHERE approval_id = $1 ORDER BY signed_at, key_id";
        dispatch!(self, pool => Ok(sqlx::query_as::<_, ApprovalSignature>(sql).bind(approval_id).fetch_all(pool).await?))
    }

    /// Counts a failed approval attempt; returns the new count.
    pub async fn record_approval_failure(&self, id: &str) -> StoreResult<i64> {
        dispatch!(self, pool => {
            let row: Option<(i64,)> = sqlx::query_as(
                "UPDATE approvals SET failed_attempts = failed_attempts + 1 WHERE id = $1 RETURNING failed_attempts",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?;
            Ok(row.map_or(0, |(n,)| n))
        })
    }

    /// Records a tap on a pending approval. When the distinct signers reach the approval's
    /// `required_taps` (with the requester among them if `requester_must_sign`), it becomes
    /// approved and `ticket` stands for it. `max_failures`: an approval with that many failed
    /// taps is void; so is a rejected one.
    pub async fn add_signature(
        &self,
        sig: &ApprovalSignature,
        ticket: &TicketHashes<'_>,
        max_failures: i64,
        now: UnixSeconds,
    ) -> StoreResult<SignOutcome> {
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            let pending: Option<(i32, bool, String)> = sqlx::query_as(
                "SELECT required_taps, requester_must_sign, requested_by FROM approvals WHERE id = $1 \
                 AND approved_at IS NULL AND used_at IS NULL AND rejected_at IS NULL \
                 AND expires_at > $2 AND failed_attempts < $3",
            )
            .bind(&sig.approval_id)
            .bind(now)
            .bind(max_failures)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((required, must_sign, requester)) = pending else {
                return Ok(SignOutcome::Gone);
            };
            let inserted = sqlx::query(
                "INSERT INTO approval_signatures (approval_id, user_id, key_id, credential_id, credential_public_key, \
                 client_data_json, authenticator_data, signature, user_verified, signed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&sig.approval_id)
            .bind(&sig.user_id)
            .bind(&sig.key_id)
            .bind(&sig.credential_id)
            .bind(&sig.credential_public_key)
            .bind(&sig.client_data_json)
            .bind(&sig.authenticator_data)
            .bind(&sig.signature)
            .bind(sig.user_verified)
            .bind(now)
            .execute(&mut *tx)
            .await;
            match inserted.map_err(StoreError::from) {
                Ok(_) => {}
                Err(StoreError::Conflict(_)) => return Ok(SignOutcome::AlreadySigned),
                Err(e) => return Err(e),
            }
            crate::failpoint!("approval.signature_recorded");
            let (signers,): (i64,) =
                sqlx::query_as("SELECT COUNT(DISTINCT user_id) FROM approval_signatures WHERE approval_id = $1")
                    .bind(&sig.approval_id)
                    .fetch_one(&mut *tx)
                    .await?;
            let requester_signed = !must_sign || {
                let found: Option<(String,)> = sqlx::query_as(
                    "SELECT user_id FROM approval_signatures WHERE approval_id = $1 AND user_id = $2",
                )
                .bind(&sig.approval_id)
                .bind(&requester)
                .fetch_optional(&mut *tx)
                .await?;
                found.is_some()
            };
            if signers < i64::from(required) || !requester_signed {
                tx.commit().await?;
                // Without the requester's own tap the approval is one short, however many others
                // tapped.
                let counted = if requester_signed { signers } else { signers.min(i64::from(required) - 1) };
                return Ok(SignOutcome::Pending { signers: counted });
            }
            let n = sqlx::query(
                "UPDATE approvals SET approved_at = $1, approved_by = $2, key_id = $3, ticket_hash = $4, \
                 ticket_expires_at = $5, code_hash = $6 WHERE id = $7 AND approved_at IS NULL",
            )
            .bind(now)
            .bind(&sig.user_id)
            .bind(&sig.key_id)
            .bind(ticket.ticket_hash)
            .bind(ticket.ticket_expires_at)
            .bind(ticket.code_hash)
            .bind(&sig.approval_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n != 1 {
                return Ok(SignOutcome::Gone);
            }
            crate::failpoint!("approval.approved");
            tx.commit().await?;
            Ok(SignOutcome::Approved)
        })
    }

    /// npm polling its done URL: once approved (and not used or stale), a fresh ticket replaces
    /// the one handed to the approver, and the caller gives it to npm.
    pub async fn poll_approval_done(
        &self,
        done_hash: &str,
        new_ticket_hash: &str,
        now: UnixSeconds,
    ) -> StoreResult<DonePoll> {
        let sql = "SELECT approved_at, used_at, expires_at, ticket_expires_at, rejected_at FROM approvals \
                   WHERE done_hash = $1";
        type Row = (Option<i64>, Option<i64>, i64, Option<i64>, Option<i64>);
        let row = dispatch!(self, pool => {
            sqlx::query_as::<_, Row>(sql).bind(done_hash).fetch_optional(pool).await?
        });
        let Some((approved_at, used_at, expires_at, ticket_expires_at, rejected_at)) = row else {
            return Ok(DonePoll::Gone);
        };
        if used_at.is_some() || rejected_at.is_some() {
            return Ok(DonePoll::Gone);
        }
        if approved_at.is_none() {
            return Ok(if expires_at > now { DonePoll::Pending } else { DonePoll::Gone });
        }
        if ticket_expires_at.is_none_or(|t| t <= now) {
            return Ok(DonePoll::Gone);
        }
        let n = dispatch!(self, pool => {
            sqlx::query("UPDATE approvals SET ticket_hash = $1 WHERE done_hash = $2 AND used_at IS NULL AND rejected_at IS NULL")
                .bind(new_ticket_hash)
                .bind(done_hash)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(if n == 1 { DonePoll::Ready } else { DonePoll::Gone })
    }
}
