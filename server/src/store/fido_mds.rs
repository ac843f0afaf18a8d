//! The last FIDO Metadata Service BLOB the registry accepted, so that an older one (a lower
//! serial number) is refused even after a restart, and by every instance sharing the database.

use super::{Store, StoreResult, dispatch};
use crate::clock::UnixSeconds;

/// A BLOB about to be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdsBlobRecord<'a> {
    pub serial: i64,
    /// `YYYY-MM-DD`
    pub next_update: &'a str,
    pub blob_sha256: &'a str,
}

impl Store {
    /// Records `blob` as the last accepted one unless a BLOB with a higher serial was accepted
    /// before; then returns that serial instead. The same serial is accepted again (a restart).
    /// One atomic upsert, so two instances starting at once cannot both move the serial back.
    pub async fn accept_fido_mds(
        &self,
        blob: &MdsBlobRecord<'_>,
        now: UnixSeconds,
    ) -> StoreResult<Result<(), i64>> {
        let sql = "INSERT INTO fido_mds_state (id, serial, next_update, blob_sha256, accepted_at) \
                   VALUES (1, $1, $2, $3, $4) \
                   ON CONFLICT (id) DO UPDATE SET serial = excluded.serial, \
                       next_update = excluded.next_update, blob_sha256 = excluded.blob_sha256, \
                       accepted_at = excluded.accepted_at \
                   WHERE fido_mds_state.serial <= excluded.serial \
                   RETURNING serial";
        dispatch!(self, pool => {
            let accepted = sqlx::query_as::<_, (i64,)>(sql)
                .bind(blob.serial)
                .bind(blob.next_update)
                .bind(blob.blob_sha256)
                .bind(now)
                .fetch_optional(pool)
                .await?;
            if accepted.is_some() {
                return Ok(Ok(()));
            }
            let (last,): (i64,) = sqlx::query_as("SELECT serial FROM fido_mds_state WHERE id = 1")
                .fetch_one(pool)
                .await?;
            Ok(Err(last))
        })
    }

    /// The serial of the last accepted BLOB, if any.
    pub async fn last_fido_mds_serial(&self) -> StoreResult<Option<i64>> {
        dispatch!(self, pool => {
            let row: Option<(i64,)> = sqlx::query_as("SELECT serial FROM fido_mds_state WHERE id = 1")
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|(serial,)| serial))
        })
    }
}
