//! Users.

use rand::RngCore;

use super::{Store, StoreError, StoreResult, dispatch};
use crate::clock::UnixSeconds;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    pub id: String,
    pub name: String,
    pub admin: bool,
    pub disabled: bool,
    /// Random handle given to authenticators as the WebAuthn `user.id`.
    pub webauthn_handle: Vec<u8>,
    pub created_at: UnixSeconds,
}

macro_rules! select_users {
    ($rest:literal) => {
        concat!("SELECT id, name, admin, disabled, webauthn_handle, created_at FROM users ", $rest)
    };
}

impl Store {
    /// Creates a user. Fails with [`StoreError::Conflict`] if the name is taken.
    pub async fn create_user(&self, name: &str, admin: bool, now: UnixSeconds) -> StoreResult<User> {
        let mut handle = vec![0u8; 32];
        rand::rng().fill_bytes(&mut handle);
        let user = User {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            admin,
            disabled: false,
            webauthn_handle: handle,
            created_at: now,
        };
        let sql = "INSERT INTO users (id, name, admin, disabled, webauthn_handle, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        let result = dispatch!(self, pool => {
            sqlx::query(sql)
                .bind(&user.id)
                .bind(&user.name)
                .bind(user.admin)
                .bind(user.disabled)
                .bind(&user.webauthn_handle)
                .bind(user.created_at)
                .execute(pool)
                .await
                .map(|_| ())
        });
        match result.map_err(StoreError::from) {
            Ok(_) => Ok(user),
            Err(StoreError::Conflict(_)) => {
                Err(StoreError::Conflict(format!("a user named {name:?} already exists")))
            }
            Err(e) => Err(e),
        }
    }

    pub async fn user_by_name(&self, name: &str) -> StoreResult<Option<User>> {
        let sql = select_users!("WHERE name = $1");
        dispatch!(self, pool => {
            Ok(sqlx::query_as::<_, User>(sql).bind(name).fetch_optional(pool).await?)
        })
    }

    pub async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let sql = select_users!("WHERE id = $1");
        dispatch!(self, pool => {
            Ok(sqlx::query_as::<_, User>(sql).bind(id).fetch_optional(pool).await?)
        })
    }

    pub async fn list_users(&self) -> StoreResult<Vec<User>> {
        let sql = select_users!("ORDER BY name");
        dispatch!(self, pool => {
            Ok(sqlx::query_as::<_, User>(sql).fetch_all(pool).await?)
        })
    }

    /// Disables a user and revokes all of their tokens. Returns false if there is no such user.
    pub async fn disable_user(&self, name: &str, now: UnixSeconds) -> StoreResult<bool> {
        dispatch!(self, pool => {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query("UPDATE users SET disabled = TRUE WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if updated == 1 {
                sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND \
                     user_id = (SELECT id FROM users WHERE name = $2)",
                )
                .bind(now)
                .bind(name)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(updated == 1)
        })
    }

    /// Enables a disabled user again (their revoked tokens stay revoked). Returns false if there
    /// is no such user.
    pub async fn enable_user(&self, name: &str) -> StoreResult<bool> {
        let updated = dispatch!(self, pool => {
            sqlx::query("UPDATE users SET disabled = FALSE WHERE name = $1")
                .bind(name)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(updated == 1)
    }
}
