//! Secrets the server keeps for itself (e.g. the key that derives decoy credentials for unknown
//! users). Created once, shared by every instance.

use rand::RngCore;

use super::{Store, StoreError, StoreResult, dispatch};

impl Store {
    /// The 32-byte secret called `name`, created on first use. Safe under concurrent first use.
    pub async fn server_secret(&self, name: &str) -> StoreResult<Vec<u8>> {
        let mut fresh = vec![0u8; 32];
        rand::rng().fill_bytes(&mut fresh);
        dispatch!(self, pool => {
            sqlx::query("INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(&fresh)
                .execute(pool)
                .await?;
            let (value,): (Vec<u8>,) = sqlx::query_as("SELECT value FROM server_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(pool)
                .await?;
            if value.len() != 32 {
                return Err(StoreError::Corrupt(format!("server secret {name} has the wrong length")));
            }
            Ok(value)
        })
    }
}
