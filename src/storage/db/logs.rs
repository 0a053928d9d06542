//! Log rows: what every step and run wrote, filtered queries, payloads and the live tail.

use std::collections::HashMap;

use sqlx::Row;

use super::{Db, DbError, opt_id_col};
use crate::domain::{ProjectId, RunId, SceneId};
use crate::storage::{new_id, now_ms};

/// One stored log row.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogRow {
    /// Id (time-ordered; also the paging cursor).
    pub id: String,
    /// Run.
    #[schema(value_type = Option<String>)]
    pub run_id: Option<RunId>,
    /// Project.
    #[schema(value_type = Option<String>)]
    pub project_id: Option<ProjectId>,
    /// Scene.
    #[schema(value_type = Option<String>)]
    pub scene_id: Option<SceneId>,
    /// Guide step name.
    pub step: String,
    /// Level.
    pub level: String,
    /// Provider.
    pub provider: Option<String>,
    /// Message.
    pub message: String,
    /// Duration, ms.
    pub duration_ms: Option<i64>,
    /// Time, epoch ms.
    pub created_at: i64,
}

/// Filters of the log query.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// Project id.
    pub project: Option<ProjectId>,
    /// Scene id.
    pub scene: Option<SceneId>,
    /// Guide step name.
    pub step: Option<String>,
    /// Level: rows of this level and above (`WARN` includes `ERROR`).
    pub level: Option<String>,
    /// Only rows older than this id (newest first paging).
    pub before: Option<String>,
    /// Page size.
    pub limit: i64,
}

/// One log row to write.
#[derive(Debug, Clone, Default)]
pub struct LogInput {
    /// Run.
    pub run_id: Option<RunId>,
    /// Project.
    pub project_id: Option<ProjectId>,
    /// Scene.
    pub scene_id: Option<SceneId>,
    /// Guide step name, e.g. `IDENTITY_ANCHOR`.
    pub step: String,
    /// `DEBUG`…`ERROR`.
    pub level: String,
    /// Provider label.
    pub provider: Option<String>,
    /// Message (never a secret).
    pub message: String,
    /// Duration of the logged operation.
    pub duration_ms: Option<i64>,
    /// Redacted payload JSON.
    pub payload: Option<String>,
}

/// One `logs` row (the columns of `SELECT id, run_id, project_id, scene_id, step, level, provider, message,
/// duration_ms, created_at`).
pub(super) fn log_row(r: &sqlx::any::AnyRow) -> Result<LogRow, DbError> {
    Ok(LogRow {
        id: r.try_get("id")?,
        run_id: opt_id_col(r, "run_id")?,
        project_id: opt_id_col(r, "project_id")?,
        scene_id: opt_id_col(r, "scene_id")?,
        step: r.try_get("step")?,
        level: r.try_get("level")?,
        provider: r.try_get("provider")?,
        message: r.try_get("message")?,
        duration_ms: r.try_get("duration_ms")?,
        created_at: r.try_get("created_at")?,
    })
}

/// The levels above `level` (padded with `level` itself), so `level IN (level, a, b, c)` means "this level
/// and above".
fn levels_above(level: Option<&str>) -> [String; 3] {
    const ORDER: [&str; 4] = ["DEBUG", "INFO", "WARN", "ERROR"];
    let level = level.unwrap_or("");
    let above: Vec<&str> = match ORDER.iter().position(|l| *l == level) {
        Some(i) => ORDER[i + 1..].to_vec(),
        None => Vec::new(),
    };
    std::array::from_fn(|i| above.get(i).copied().unwrap_or(level).to_string())
}

impl Db {
    /// Appends a log row.
    pub async fn insert_log(&self, l: &LogInput) -> Result<(), DbError> {
        self.insert_logs(std::slice::from_ref(l)).await
    }

    /// Appends log rows in one statement (ids in the order given).
    pub async fn insert_logs(&self, rows: &[LogInput]) -> Result<(), DbError> {
        const COLUMNS: usize = 11;
        if rows.is_empty() {
            return Ok(());
        }
        // Placeholders are numbers we make, not input.
        let values: Vec<String> = (0..rows.len())
            .map(|r| {
                let p = |c: usize| r * COLUMNS + c;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, CAST(${} AS BIGINT), ${}, ${})",
                    p(1),
                    p(2),
                    p(3),
                    p(4),
                    p(5),
                    p(6),
                    p(7),
                    p(8),
                    p(9),
                    p(10),
                    p(11)
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO logs (id, run_id, project_id, scene_id, step, level, provider, message, duration_ms, payload, created_at)
             VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        let now = now_ms();
        for l in rows {
            query = query
                .bind(new_id())
                .bind(l.run_id.as_deref())
                .bind(l.project_id.as_deref())
                .bind(l.scene_id.as_deref())
                .bind(&l.step)
                .bind(&l.level)
                .bind(&l.provider)
                .bind(&l.message)
                .bind(l.duration_ms)
                .bind(&l.payload)
                .bind(now);
        }
        query.execute(&self.writes).await?;
        Ok(())
    }

    /// Log rows matching the filter, newest first.
    pub async fn query_logs(&self, f: &LogFilter) -> Result<Vec<LogRow>, DbError> {
        let q = sqlx::query(
            "SELECT id, run_id, project_id, scene_id, step, level, provider, message, duration_ms, created_at FROM logs
             WHERE ($1 = '' OR project_id = $1) AND ($2 = '' OR scene_id = $2) AND ($3 = '' OR step = $3)
               AND ($4 = '' OR level IN ($4, $7, $8, $9)) AND ($5 = '' OR id < $5)
             ORDER BY id DESC LIMIT $6",
        )
        .bind(f.project.as_deref().unwrap_or(""))
        .bind(f.scene.as_deref().unwrap_or(""))
        .bind(f.step.as_deref().unwrap_or(""))
        .bind(f.level.as_deref().unwrap_or(""))
        .bind(f.before.as_deref().unwrap_or(""))
        .bind(f.limit);
        let [a, b, c] = levels_above(f.level.as_deref());
        let rows = q.bind(a).bind(b).bind(c).fetch_all(&self.pool).await?;
        rows.iter().map(log_row).collect()
    }

    /// The log rows one run wrote, oldest first (at most `limit`).
    pub async fn ui_run_logs(&self, run_id: &RunId, limit: i64) -> Result<Vec<LogRow>, DbError> {
        let rows = sqlx::query(
            "SELECT id, run_id, project_id, scene_id, step, level, provider, message, duration_ms, created_at FROM logs
             WHERE run_id = $1 ORDER BY id LIMIT $2",
        )
        .bind(run_id.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(log_row).collect()
    }

    /// The log rows of run `run_id` under `step` newer than `after` (a log id; `""` = from the first), oldest
    /// first, at most `limit` (the live progress of a training).
    pub async fn run_logs_after(
        &self,
        run_id: &RunId,
        step: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<LogRow>, DbError> {
        let rows = sqlx::query(
            "SELECT id, run_id, project_id, scene_id, step, level, provider, message, duration_ms, created_at FROM logs
             WHERE run_id = $1 AND step = $2 AND id > $3 ORDER BY id LIMIT $4",
        )
        .bind(run_id.as_str())
        .bind(step)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(log_row).collect()
    }

    /// The stored (redacted) payloads of these log rows, by id; rows without one are left out.
    pub async fn ui_log_payloads(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, String>, DbError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, payload FROM logs WHERE payload IS NOT NULL AND id IN ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("payload")?)))
            .collect()
    }

    /// Log rows newer than `after` (a log id) matching the filter, oldest first (the live tail).
    pub async fn ui_logs_after(&self, f: &LogFilter, after: &str) -> Result<Vec<LogRow>, DbError> {
        let q = sqlx::query(
            "SELECT id, run_id, project_id, scene_id, step, level, provider, message, duration_ms, created_at FROM logs
             WHERE ($1 = '' OR project_id = $1) AND ($2 = '' OR scene_id = $2) AND ($3 = '' OR step = $3)
               AND ($4 = '' OR level IN ($4, $7, $8, $9)) AND id > $5
             ORDER BY id LIMIT $6",
        )
        .bind(f.project.as_deref().unwrap_or(""))
        .bind(f.scene.as_deref().unwrap_or(""))
        .bind(f.step.as_deref().unwrap_or(""))
        .bind(f.level.as_deref().unwrap_or(""))
        .bind(after)
        .bind(f.limit);
        let [a, b, c] = levels_above(f.level.as_deref());
        let rows = q.bind(a).bind(b).bind(c).fetch_all(&self.pool).await?;
        rows.iter().map(log_row).collect()
    }
}
