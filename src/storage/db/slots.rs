//! Provider concurrency slots shared by every process on the database: a provider capped at N jobs has slot
//! rows 0..N-1, each free, held (holder token + expiry) or expired. Taking a slot is one conditional UPDATE,
//! so two workers can never hold the same slot; PostgreSQL skips rows another transaction is taking.

use std::collections::HashSet;

use sqlx::Row;

use super::{Db, DbError};
use crate::storage::now_ms;

/// The PostgreSQL notification channel announcing a freed slot (payload: the provider pool).
pub const SLOTS_CHANNEL: &str = "devatar_slots";

impl Db {
    /// Makes sure slot rows 0..`cap` of `pool` exist (idempotent).
    pub async fn ensure_slots(&self, pool: &str, cap: u32) -> Result<(), DbError> {
        if cap == 0 {
            return Ok(());
        }
        // One statement for all rows (slot numbers are integers we make, not input).
        let rows: Vec<String> = (0..cap).map(|slot| format!("($1, {slot})")).collect();
        let sql = format!(
            "INSERT INTO provider_slots (provider, slot) VALUES {} ON CONFLICT (provider, slot) DO NOTHING",
            rows.join(", ")
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(pool)
            .execute(&self.writes)
            .await?;
        Ok(())
    }

    /// Takes a free or expired slot of `pool` below `cap` (rows made by [`Db::ensure_slots`]) for `holder` until `now + lease_ms`; `None` when all
    /// `cap` slots are held.
    pub async fn try_take_slot(
        &self,
        pool: &str,
        cap: u32,
        holder: &str,
        lease_ms: i64,
    ) -> Result<Option<i64>, DbError> {
        let now = now_ms();
        let lock = if self.is_sqlite {
            ""
        } else {
            " FOR UPDATE SKIP LOCKED"
        };
        let sql = format!(
            "UPDATE provider_slots SET holder = $1, expires_at = $2
             WHERE provider = $3 AND (holder IS NULL OR expires_at < $4) AND slot = (
                 SELECT slot FROM provider_slots
                 WHERE provider = $3 AND slot < $5 AND (holder IS NULL OR expires_at < $4)
                 ORDER BY slot LIMIT 1{lock})
             RETURNING slot"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(holder)
            .bind(now + lease_ms)
            .bind(pool)
            .bind(now)
            .bind(i64::from(cap))
            .fetch_optional(&self.writes)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get::<i64, _>("slot")?),
            None => None,
        })
    }

    /// Extends a held slot; false when it was lost (expired and taken by another holder).
    pub async fn renew_slot(
        &self,
        pool: &str,
        slot: i64,
        holder: &str,
        lease_ms: i64,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE provider_slots SET expires_at = $1 WHERE provider = $2 AND slot = $3 AND holder = $4",
        )
        .bind(now_ms() + lease_ms)
        .bind(pool)
        .bind(slot)
        .bind(holder)
        .execute(&self.writes)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Extends every slot whose holder token starts with `prefix` (one process's slots, renewed in one
    /// statement; the prefix holds no LIKE wildcard `%` or `_`); returns the holders renewed — a holder missing
    /// from it lost its slot (or freed it meanwhile).
    pub async fn renew_slots(
        &self,
        prefix: &str,
        lease_ms: i64,
    ) -> Result<HashSet<String>, DbError> {
        debug_assert!(!prefix.contains(['%', '_', '\\']), "{prefix}");
        let rows = sqlx::query(
            "UPDATE provider_slots SET expires_at = $1 WHERE holder LIKE $2 RETURNING holder",
        )
        .bind(now_ms() + lease_ms)
        .bind(format!("{prefix}%"))
        .fetch_all(&self.writes)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("holder")?))
            .collect()
    }

    /// Frees a held slot and, on PostgreSQL, tells waiting processes.
    pub async fn free_slot(&self, pool: &str, slot: i64, holder: &str) -> Result<(), DbError> {
        let done = sqlx::query(
            "UPDATE provider_slots SET holder = NULL, expires_at = NULL
             WHERE provider = $1 AND slot = $2 AND holder = $3",
        )
        .bind(pool)
        .bind(slot)
        .bind(holder)
        .execute(&self.writes)
        .await?;
        if done.rows_affected() == 1 {
            self.notify(SLOTS_CHANNEL, pool).await;
        }
        Ok(())
    }

    /// How many slots of `pool` are held right now (diagnostics and tests).
    pub async fn held_slots(&self, pool: &str) -> Result<i64, DbError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM provider_slots
             WHERE provider = $1 AND holder IS NOT NULL AND expires_at >= $2",
        )
        .bind(pool)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }
}
