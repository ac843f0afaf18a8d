//! Staged releases: an upload kept aside and served to nobody until a maintainer approves it
//! (the publish of exactly its bytes, through the gate: see [`super::packages`], which marks the
//! stage published in the publish's own transaction) or rejects it (a gated change committed by
//! [`Store::reject_stage`]). A decided or expired stage keeps its row, for the record, but not
//! its tarball.

use super::effects::{Effects, write_effects};
use super::gate::{CommitError, Guard, begin_write, enforce_guard, lock_package};
use super::{Store, StoreError, StoreResult, dispatch};
use crate::clock::UnixSeconds;
use tapgate_shared::stage::{StageActor, StageState};

/// A staged release (without its tarball).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRow {
    pub id: String,
    pub package: String,
    pub version: String,
    pub integrity: String,
    pub shasum: String,
    pub tags: Vec<String>,
    pub size: i64,
    /// The account it acts for (user id), and its name.
    pub staged_by: String,
    pub staged_by_name: String,
    pub actor_type: StageActor,
    /// The CI credential or trust that uploaded it.
    pub actor_ref: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: UnixSeconds,
    pub expires_at: UnixSeconds,
    /// As stored: `expired` is [`StageRow::state_at`]'s to say.
    pub state: StageState,
    pub decided_at: Option<UnixSeconds>,
    pub decided_by_name: Option<String>,
}

impl StageRow {
    /// The state at `now`: a pending stage past its expiry is expired.
    pub fn state_at(&self, now: UnixSeconds) -> StageState {
        match self.state {
            StageState::Pending if self.expires_at <= now => StageState::Expired,
            state => state,
        }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    package: String,
    version: String,
    integrity: String,
    shasum: String,
    tags: String,
    size: i64,
    staged_by: String,
    staged_by_name: String,
    actor_type: String,
    actor_ref: Option<String>,
    client_ip: Option<String>,
    user_agent: Option<String>,
    created_at: UnixSeconds,
    expires_at: UnixSeconds,
    state: String,
    decided_at: Option<UnixSeconds>,
    decided_by_name: Option<String>,
}

impl TryFrom<Row> for StageRow {
    type Error = StoreError;

    fn try_from(r: Row) -> StoreResult<Self> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("stage {}: {what}", r.id));
        Ok(StageRow {
            tags: serde_json::from_str(&r.tags).map_err(|_| corrupt("its tags"))?,
            actor_type: StageActor::parse(&r.actor_type).ok_or_else(|| corrupt("its actor type"))?,
            state: StageState::parse(&r.state).ok_or_else(|| corrupt("its state"))?,
            id: r.id,
            package: r.package,
            version: r.version,
            integrity: r.integrity,
            shasum: r.shasum,
            size: r.size,
            staged_by: r.staged_by,
            staged_by_name: r.staged_by_name,
            actor_ref: r.actor_ref,
            client_ip: r.client_ip,
            user_agent: r.user_agent,
            created_at: r.created_at,
            expires_at: r.expires_at,
            decided_at: r.decided_at,
            decided_by_name: r.decided_by_name,
        })
    }
}

macro_rules! select_stages {
    ($rest:literal) => {
        concat!(
            "SELECT s.id, s.package, s.version, s.integrity, s.shasum, s.tags, s.size, s.staged_by, \
             u.name AS staged_by_name, s.actor_type, s.actor_ref, s.client_ip, s.user_agent, s.created_at, \
             s.expires_at, s.state, s.decided_at, d.name AS decided_by_name \
             FROM stages s JOIN users u ON u.id = s.staged_by LEFT JOIN users d ON d.id = s.decided_by ",
            $rest
        )
    };
}

/// A stage to record.
#[derive(Debug, Clone)]
pub struct NewStage<'a> {
    pub id: &'a str,
    pub package: &'a str,
    pub version: &'a str,
    pub integrity: &'a str,
    pub shasum: &'a str,
    pub tags: &'a [String],
    pub tarball: &'a [u8],
    pub staged_by: &'a str,
    pub actor_type: StageActor,
    pub actor_ref: Option<&'a str>,
    pub client_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub now: UnixSeconds,
    pub expires_at: UnixSeconds,
    /// Pending stages the package may have at once (unexpired ones count).
    pub max_pending: i64,
    /// The notice and audit entry, written with it.
    pub effects: &'a Effects,
    /// For an upload with an OIDC token: the token's hash and trust, spent by the stage.
    pub oidc: Option<(&'a str, &'a str)>,
}

/// What recording a stage came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageCreated {
    Created,
    /// The package has `max_pending` stages waiting.
    TooMany,
    /// The version was published meanwhile.
    VersionExists,
    /// These exact bytes were staged and rejected before: a rejection is not undone by
    /// uploading again.
    Rejected,
    /// The OIDC token that uploaded it was spent or expired meanwhile, or its trust removed.
    TokenSpent,
}

/// Which stages a listing shows.
#[derive(Debug, Clone, Copy)]
pub enum StageScope<'a> {
    /// Every stage (administrators).
    All,
    /// The stages of the packages this user maintains.
    MaintainedBy(&'a str),
    /// What one CI credential staged.
    Credential(&'a str),
}

impl Store {
    /// Records a stage with its tarball, its notice and its audit entry, unless (nothing is
    /// written then) the package has `max_pending` stages waiting, the version exists, or these
    /// bytes were rejected before.
    pub async fn create_stage(&self, s: &NewStage<'_>) -> StoreResult<StageCreated> {
        let tags = serde_json::to_string(s.tags).unwrap_or_else(|_| "[]".into());
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            // Concurrent stages of one package queue on its row, so the count below holds.
            sqlx::query(lock_package(pool)).bind(s.package).fetch_optional(&mut *tx).await?;
            let (waiting,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM stages WHERE package = $1 AND state = 'pending' AND expires_at > $2",
            )
            .bind(s.package)
            .bind(s.now)
            .fetch_one(&mut *tx)
            .await?;
            if waiting >= s.max_pending {
                return Ok(StageCreated::TooMany);
            }
            let published: Option<(String,)> =
                sqlx::query_as("SELECT version FROM versions WHERE package = $1 AND version = $2")
                    .bind(s.package)
                    .bind(s.version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if published.is_some() {
                return Ok(StageCreated::VersionExists);
            }
            let rejected: Option<(String,)> =
                sqlx::query_as("SELECT id FROM stages WHERE package = $1 AND integrity = $2 AND state = 'rejected'")
                    .bind(s.package)
                    .bind(s.integrity)
                    .fetch_optional(&mut *tx)
                    .await?;
            if rejected.is_some() {
                return Ok(StageCreated::Rejected);
            }
            sqlx::query(
                "INSERT INTO stages (id, package, version, integrity, shasum, tags, size, staged_by, actor_type, \
                 actor_ref, client_ip, user_agent, created_at, expires_at, state) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'pending')",
            )
            .bind(s.id)
            .bind(s.package)
            .bind(s.version)
            .bind(s.integrity)
            .bind(s.shasum)
            .bind(&tags)
            .bind(i64::try_from(s.tarball.len()).unwrap_or(i64::MAX))
            .bind(s.staged_by)
            .bind(s.actor_type.as_str())
            .bind(s.actor_ref)
            .bind(s.client_ip)
            .bind(s.user_agent)
            .bind(s.now)
            .bind(s.expires_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO stage_tarballs (stage_id, bytes) VALUES ($1, $2)")
                .bind(s.id)
                .bind(s.tarball)
                .execute(&mut *tx)
                .await?;
            if let Some((hash, trust)) = s.oidc {
                // Single use, like a publish's; recorded as `stage:<id>` so it is never taken for
                // a version's record.
                let spent = sqlx::query(
                    "UPDATE oidc_tokens SET spent_at = $1, version = $2 WHERE hash = $3 AND trust_id = $4 \
                     AND package = $5 AND spent_at IS NULL AND expires_at > $1 \
                     AND EXISTS (SELECT 1 FROM trusts t WHERE t.id = oidc_tokens.trust_id AND t.removed_at IS NULL \
                     AND t.package = oidc_tokens.package AND t.created_by = $6)",
                )
                .bind(s.now)
                .bind(format!("stage:{}", s.id))
                .bind(hash)
                .bind(trust)
                .bind(s.package)
                .bind(s.staged_by)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if spent != 1 {
                    return Ok(StageCreated::TokenSpent);
                }
            }
            write_effects!(pool, tx, Some(s.effects), s.now);
            tx.commit().await?;
            Ok(StageCreated::Created)
        })
    }

    pub async fn stage(&self, id: &str) -> StoreResult<Option<StageRow>> {
        let row = dispatch!(self, pool => {
            sqlx::query_as::<_, Row>(select_stages!("WHERE s.id = $1")).bind(id).fetch_optional(pool).await?
        });
        row.map(StageRow::try_from).transpose()
    }

    /// A pending stage's tarball (decided and expired stages have none).
    pub async fn stage_tarball(&self, id: &str) -> StoreResult<Option<Vec<u8>>> {
        let row = dispatch!(self, pool => {
            sqlx::query_as::<_, (Vec<u8>,)>("SELECT bytes FROM stage_tarballs WHERE stage_id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(b,)| b))
    }

    /// A page of stages in `scope` (optionally of one package), newest first, and how many
    /// there are in all.
    pub async fn stages(
        &self,
        scope: StageScope<'_>,
        package: Option<&str>,
        state: Option<StageState>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<StageRow>, i64)> {
        let (all, maintainer, only) = match scope {
            StageScope::All => (true, "", ""),
            StageScope::MaintainedBy(user) => (false, user, ""),
            StageScope::Credential(id) => (false, "", id),
        };
        let filter = package.unwrap_or("");
        let state = state.map_or("", StageState::as_str);
        let (rows, total) = dispatch!(self, pool => {
            let rows = sqlx::query_as::<_, Row>(select_stages!(
                "WHERE ($1 OR s.actor_ref = $3 OR s.package IN (SELECT package FROM package_maintainers WHERE user_id = $2)) \
                 AND ($4 = '' OR s.package = $4) AND ($7 = '' OR s.state = $7) \
                 ORDER BY s.created_at DESC, s.id LIMIT $5 OFFSET $6"
            ))
            .bind(all)
            .bind(maintainer)
            .bind(only)
            .bind(filter)
            .bind(limit)
            .bind(offset)
            .bind(state)
            .fetch_all(pool)
            .await?;
            let (total,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM stages s WHERE ($1 OR s.actor_ref = $3 OR s.package IN \
                 (SELECT package FROM package_maintainers WHERE user_id = $2)) AND ($4 = '' OR s.package = $4) \
                 AND ($5 = '' OR s.state = $5)",
            )
            .bind(all)
            .bind(maintainer)
            .bind(only)
            .bind(filter)
            .bind(state)
            .fetch_one(pool)
            .await?;
            (rows, total)
        });
        let rows = rows.into_iter().map(StageRow::try_from).collect::<StoreResult<Vec<_>>>()?;
        Ok((rows, total))
    }

    /// Rejects a pending, unexpired stage under the guard of the tap that approved the
    /// rejection, deletes its tarball, and voids every open approval to publish these bytes as
    /// this version (a publish intent names the bytes, not the stage: without this, a tap still
    /// pending on the rejected release could publish it later).
    pub async fn reject_stage(&self, stage: &StageRow, guard: &Guard<'_>) -> Result<(), CommitError> {
        let id = stage.id.as_str();
        dispatch!(self, pool => {
            let mut tx = pool.begin_with(begin_write(pool)).await?;
            enforce_guard!(pool, tx, guard);
            let decided = sqlx::query(
                "UPDATE stages SET state = 'rejected', decided_at = $1, decided_by = $2 \
                 WHERE id = $3 AND state = 'pending' AND expires_at > $1",
            )
            .bind(guard.now)
            .bind(guard.actor)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if decided != 1 {
                return Err(CommitError::StageClosed(format!(
                    "the staged release {id} was published, rejected or superseded meanwhile, or it expired"
                )));
            }
            sqlx::query("DELETE FROM stage_tarballs WHERE stage_id = $1").bind(id).execute(&mut *tx).await?;
            sqlx::query(
                "UPDATE approvals SET rejected_at = $1, rejected_by = $2 WHERE package = $3 AND version = $4 \
                 AND integrity = $5 AND action = 'publish' AND used_at IS NULL AND rejected_at IS NULL",
            )
            .bind(guard.now)
            .bind(guard.actor)
            .bind(&stage.package)
            .bind(&stage.version)
            .bind(&stage.integrity)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes the tarballs of stages that expired undecided (their rows stay, for the
    /// record); answers how many.
    pub async fn purge_expired_stages(&self, now: UnixSeconds) -> StoreResult<u64> {
        dispatch!(self, pool => {
            Ok(sqlx::query(
                "DELETE FROM stage_tarballs WHERE stage_id IN \
                 (SELECT id FROM stages WHERE state = 'pending' AND expires_at <= $1)",
            )
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected())
        })
    }
}

/// Inside a publish's transaction `$tx`: marks the stage `$stage` (if any) published by
/// `$actor` at `$now` — failing the commit when it is no longer pending — and every other
/// pending stage of the same version superseded, deleting their tarballs.
macro_rules! settle_stages {
    ($tx:expr, $stage:expr, $package:expr, $version:expr, $actor:expr, $now:expr) => {{
        let stage: Option<&str> = $stage;
        if let Some(id) = stage {
            let published = sqlx::query(
                "UPDATE stages SET state = 'published', decided_at = $1, decided_by = $2 \
                 WHERE id = $3 AND package = $4 AND version = $5 AND state = 'pending' AND expires_at > $1",
            )
            .bind($now)
            .bind($actor)
            .bind(id)
            .bind($package)
            .bind($version)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
            if published != 1 {
                return Err($crate::store::gate::CommitError::StageClosed(format!(
                    "the staged release {id} was rejected or superseded meanwhile, or it expired"
                )));
            }
        }
        sqlx::query(
            "UPDATE stages SET state = 'superseded', decided_at = $1 \
             WHERE package = $2 AND version = $3 AND state = 'pending'",
        )
        .bind($now)
        .bind($package)
        .bind($version)
        .execute(&mut *$tx)
        .await?;
        sqlx::query(
            "DELETE FROM stage_tarballs WHERE stage_id IN (SELECT id FROM stages WHERE package = $1 \
             AND version = $2 AND state <> 'pending')",
        )
        .bind($package)
        .bind($version)
        .execute(&mut *$tx)
        .await?;
    }};
}
pub(crate) use settle_stages;
