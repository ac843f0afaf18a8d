//! API tokens.

use sqlx::Row;
use tapgate_shared::api::Scope;

use super::{Store, StoreError, StoreResult, dispatch};
use crate::clock::UnixSeconds;
use crate::secrets::{self, SecretKind};

/// How a token came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// Issued by an administrator on the server's command line.
    Issued,
    /// Derived from another token through the API.
    Derived,
    /// Issued by signing in with a security key in the browser or the CLI.
    Login,
    /// Collected by `npm login` after a sign-in on its login page. Never counts as a fresh
    /// sign-in: whoever started the `npm login` holds it, and that may not be the person who
    /// tapped (a phished login link).
    NpmLogin,
}

impl TokenSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issued => "issued",
            Self::Derived => "derived",
            Self::Login => "login",
            Self::NpmLogin => "npm-login",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "login" => Self::Login,
            "npm-login" => Self::NpmLogin,
            "derived" => Self::Derived,
            _ => Self::Issued,
        }
    }
}

/// How fresh a token's `last_used_at` is kept: a request writes it only when it is older.
pub const LAST_USED_RESOLUTION_SECONDS: i64 = 3600;

/// A token's stored facts (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: UnixSeconds,
    pub expires_at: Option<UnixSeconds>,
    pub last_used_at: Option<UnixSeconds>,
}

/// The user and token behind a valid bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub token_id: String,
    pub user_id: String,
    pub username: String,
    pub admin: bool,
    pub scopes: Vec<Scope>,
    pub source: TokenSource,
    pub created_at: UnixSeconds,
    pub expires_at: Option<UnixSeconds>,
}

fn encode_scopes(scopes: &[Scope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

fn decode_scopes(stored: &str) -> StoreResult<Vec<Scope>> {
    stored
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| Scope::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown scope {s:?}"))))
        .collect()
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: String,
    user_id: String,
    name: String,
    scopes: String,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
}

impl TryFrom<TokenRow> for TokenRecord {
    type Error = StoreError;
    fn try_from(row: TokenRow) -> StoreResult<Self> {
        Ok(TokenRecord {
            id: row.id,
            user_id: row.user_id,
            name: row.name,
            scopes: decode_scopes(&row.scopes)?,
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
        })
    }
}

impl Store {
    /// Issues a token; returns its record and the secret (shown once).
    pub async fn issue_token(
        &self,
        user_id: &str,
        name: &str,
        scopes: &[Scope],
        expires_at: Option<UnixSeconds>,
        source: TokenSource,
        now: UnixSeconds,
    ) -> StoreResult<(TokenRecord, String)> {
        self.insert_token(user_id, name, scopes, expires_at, source, None, now).await
    }

    /// Issues a token derived from token `parent_id` (the caller caps its expiry at the
    /// parent's): it stops working when the parent is revoked or expires.
    pub async fn issue_derived_token(
        &self,
        parent_id: &str,
        user_id: &str,
        name: &str,
        scopes: &[Scope],
        expires_at: Option<UnixSeconds>,
        now: UnixSeconds,
    ) -> StoreResult<(TokenRecord, String)> {
        self.insert_token(user_id, name, scopes, expires_at, TokenSource::Derived, Some(parent_id), now).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_token(
        &self,
        user_id: &str,
        name: &str,
        scopes: &[Scope],
        expires_at: Option<UnixSeconds>,
        source: TokenSource,
        parent_id: Option<&str>,
        now: UnixSeconds,
    ) -> StoreResult<(TokenRecord, String)> {
        let secret = secrets::generate(SecretKind::ApiToken);
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let record = TokenRecord {
            id: secrets::public_id("tok_"),
            user_id: user_id.to_string(),
            name: name.to_string(),
            scopes,
            created_at: now,
            expires_at,
            last_used_at: None,
        };
        let scopes_text = encode_scopes(&record.scopes);
        dispatch!(self, pool => {
            sqlx::query(
                "INSERT INTO api_tokens (id, token_hash, user_id, name, scopes, created_at, expires_at, source, parent_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&record.id)
            .bind(&secret.hash)
            .bind(&record.user_id)
            .bind(&record.name)
            .bind(&scopes_text)
            .bind(record.created_at)
            .bind(record.expires_at)
            .bind(source.as_str())
            .bind(parent_id)
            .execute(pool)
            .await?;
        });
        Ok((record, secret.plaintext))
    }

    /// Resolves a bearer token. `None` for anything not currently valid: unknown, revoked,
    /// expired, belonging to a disabled user, or derived from a token that is revoked or
    /// expired. Marks the token as used (to the hour).
    pub async fn authenticate_token(
        &self,
        token: &str,
        now: UnixSeconds,
    ) -> StoreResult<Option<Authenticated>> {
        if !secrets::has_prefix(token, SecretKind::ApiToken) {
            return Ok(None);
        }
        let hash = secrets::hash(token);
        let sql = "SELECT t.id, t.token_hash, t.scopes, t.expires_at, t.revoked_at, t.source, t.created_at, u.id AS user_id, \
                   u.name AS username, u.admin, u.disabled, t.parent_id, t.last_used_at, p.id AS parent_found, \
                   p.revoked_at AS parent_revoked_at, p.expires_at AS parent_expires_at \
                   FROM api_tokens t JOIN users u ON u.id = t.user_id LEFT JOIN api_tokens p ON p.id = t.parent_id \
                   WHERE t.token_hash = $1";
        let mut stale_use = false;
        let found = dispatch!(self, pool => {
            let row = sqlx::query(sql).bind(&hash).fetch_optional(pool).await?;
            match row {
                None => None,
                Some(row) => {
                    let last_used_at: Option<i64> = row.try_get("last_used_at")?;
                    stale_use = last_used_at.is_none_or(|at| now - at >= LAST_USED_RESOLUTION_SECONDS);
                    let stored_hash: String = row.try_get("token_hash")?;
                    let expires_at: Option<i64> = row.try_get("expires_at")?;
                    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
                    let disabled: bool = row.try_get("disabled")?;
                    let parent_id: Option<String> = row.try_get("parent_id")?;
                    let parent_found: Option<String> = row.try_get("parent_found")?;
                    let parent_revoked_at: Option<i64> = row.try_get("parent_revoked_at")?;
                    let parent_expires_at: Option<i64> = row.try_get("parent_expires_at")?;
                    let parent_live = parent_id.is_none()
                        || (parent_found.is_some()
                            && parent_revoked_at.is_none()
                            && parent_expires_at.is_none_or(|at| at > now));
                    let valid = secrets::hashes_equal(&stored_hash, &hash)
                        && revoked_at.is_none()
                        && !disabled
                        && expires_at.is_none_or(|at| at > now)
                        && parent_live;
                    if valid {
                        let scopes: String = row.try_get("scopes")?;
                        Some(Authenticated {
                            token_id: row.try_get("id")?,
                            user_id: row.try_get("user_id")?,
                            username: row.try_get("username")?,
                            admin: row.try_get("admin")?,
                            scopes: decode_scopes(&scopes)?,
                            source: TokenSource::parse(&row.try_get::<String, _>("source")?),
                            created_at: row.try_get("created_at")?,
                            expires_at,
                        })
                    } else {
                        None
                    }
                }
            }
        });
        // Recording use is a write: done at most once per LAST_USED_RESOLUTION_SECONDS per token,
        // not on every request.
        if let Some(auth) = found.as_ref().filter(|_| stale_use) {
            dispatch!(self, pool => {
                sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(&auth.token_id)
                    .execute(pool)
                    .await?;
            });
        }
        Ok(found)
    }

    /// The user's tokens that are neither revoked nor expired.
    pub async fn list_tokens(&self, user_id: &str, now: UnixSeconds) -> StoreResult<Vec<TokenRecord>> {
        let sql = "SELECT id, user_id, name, scopes, created_at, expires_at, last_used_at FROM api_tokens \
                   WHERE user_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) \
                   ORDER BY created_at, id";
        let rows = dispatch!(self, pool => {
            sqlx::query_as::<_, TokenRow>(sql).bind(user_id).bind(now).fetch_all(pool).await?
        });
        rows.into_iter().map(TokenRecord::try_from).collect()
    }

    /// Every user's tokens that are neither revoked nor expired, for the admin CLI.
    pub async fn list_all_tokens(&self, now: UnixSeconds) -> StoreResult<Vec<TokenRecord>> {
        let sql = "SELECT id, user_id, name, scopes, created_at, expires_at, last_used_at FROM api_tokens \
                   WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1) \
                   ORDER BY created_at, id";
        let rows = dispatch!(self, pool => {
            sqlx::query_as::<_, TokenRow>(sql).bind(now).fetch_all(pool).await?
        });
        rows.into_iter().map(TokenRecord::try_from).collect()
    }

    /// The id of the live token whose secret is `token`, if it belongs to `user_id`.
    pub async fn token_id_of_secret(&self, token: &str, user_id: &str) -> StoreResult<Option<String>> {
        if !secrets::has_prefix(token, SecretKind::ApiToken) {
            return Ok(None);
        }
        let hash = secrets::hash(token);
        let sql = "SELECT id FROM api_tokens WHERE token_hash = $1 AND user_id = $2 AND revoked_at IS NULL";
        let row = dispatch!(self, pool => sqlx::query_as::<_, (String,)>(sql).bind(&hash).bind(user_id).fetch_optional(pool).await?);
        Ok(row.map(|(id,)| id))
    }

    /// The account a token secret belongs to, live or not (for counting its second-factor
    /// attempts).
    pub async fn token_owner(&self, token: &str) -> StoreResult<Option<String>> {
        if !secrets::has_prefix(token, SecretKind::ApiToken) {
            return Ok(None);
        }
        let hash = secrets::hash(token);
        let sql = "SELECT user_id FROM api_tokens WHERE token_hash = $1";
        let row = dispatch!(self, pool => sqlx::query_as::<_, (String,)>(sql).bind(&hash).fetch_optional(pool).await?);
        Ok(row.map(|(id,)| id))
    }

    /// Revokes token `id` if it belongs to `user_id` (any user's, when `user_id` is `None`),
    /// and every token derived from it, however indirectly. Returns false if no such live token
    /// exists.
    pub async fn revoke_token(&self, id: &str, user_id: Option<&str>, now: UnixSeconds) -> StoreResult<bool> {
        let affected = dispatch!(self, pool => {
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL \
                 AND ($3 IS NULL OR user_id = $3)",
            )
            .bind(now)
            .bind(id)
            .bind(user_id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if affected == 1 {
            self.revoke_descendants(id, now).await?;
        }
        Ok(affected == 1)
    }

    /// Revokes every live token derived, directly or not, from token `id`.
    async fn revoke_descendants(&self, id: &str, now: UnixSeconds) -> StoreResult<u64> {
        let sql = "WITH RECURSIVE tree(id) AS ( \
                       SELECT id FROM api_tokens WHERE parent_id = $2 \
                       UNION SELECT t.id FROM api_tokens t JOIN tree ON t.parent_id = tree.id) \
                   UPDATE api_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND id IN (SELECT id FROM tree)";
        let affected = dispatch!(self, pool => {
            sqlx::query(sql).bind(now).bind(id).execute(pool).await?.rows_affected()
        });
        Ok(affected)
    }
}
