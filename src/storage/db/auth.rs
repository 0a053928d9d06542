//! Admin password, sessions and API tokens. Only hashes are stored.

use sqlx::Row;

use super::{Db, DbError};
use crate::storage::{new_id, now_ms};

/// A stored API token (never its secret).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// Id.
    pub id: String,
    /// Name given at creation.
    pub name: String,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Last use, epoch ms.
    pub last_used_at: Option<i64>,
    /// Revocation time, epoch ms.
    pub revoked_at: Option<i64>,
}

impl Db {
    /// The stored admin password hash.
    pub async fn admin_password_hash(&self) -> Result<Option<String>, DbError> {
        let row = sqlx::query("SELECT password_hash FROM admin_credentials WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("password_hash")).transpose()?)
    }

    /// Stores (replaces) the admin password hash and ends every session.
    pub async fn set_admin_password_hash(&self, hash: &str) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO admin_credentials (id, password_hash, updated_at) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET password_hash = $1, updated_at = $2",
        )
        .bind(hash)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        sqlx::query("DELETE FROM sessions")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a session by the hash of its id.
    pub async fn create_session(
        &self,
        id_hash: &str,
        csrf: &str,
        ttl_ms: i64,
    ) -> Result<(), DbError> {
        let now = now_ms();
        sqlx::query("INSERT INTO sessions (id_hash, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(id_hash)
            .bind(csrf)
            .bind(now)
            .bind(now + ttl_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The CSRF token of a live session.
    pub async fn session_csrf(&self, id_hash: &str) -> Result<Option<String>, DbError> {
        let row =
            sqlx::query("SELECT csrf_token FROM sessions WHERE id_hash = $1 AND expires_at > $2")
                .bind(id_hash)
                .bind(now_ms())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.try_get("csrf_token")).transpose()?)
    }

    /// Ends a session.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores a new token's hash; returns its id.
    pub async fn create_token(&self, name: &str, token_hash: &str) -> Result<String, DbError> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO api_tokens (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&id)
        .bind(name)
        .bind(token_hash)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// True (and records the use) when the hash belongs to a live token.
    pub async fn use_token(&self, token_hash: &str) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(token_hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every token, newest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, DbError> {
        let rows = sqlx::query("SELECT id, name, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY id DESC")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenInfo {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                    last_used_at: r.try_get("last_used_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// Revokes a token by id or name; true when one was revoked.
    pub async fn revoke_token(&self, id_or_name: &str) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE (id = $2 OR name = $2) AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(id_or_name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
