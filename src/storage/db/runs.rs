//! Runs, their steps, the step cache and log rows.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{ClaimedRun, Db, DbError, flag};
use crate::domain::{RunStatus, StepName, StepStatus};
use crate::storage::{new_id, now_ms};

/// A stored step.
#[derive(Debug, Clone)]
pub struct StepRow {
    /// Id.
    pub id: String,
    /// Scene id; `None` for the project's ASSEMBLE.
    pub scene_id: Option<String>,
    /// `AUDIO`, `IMAGE`, …
    pub step: StepName,
    /// Where the step is in its lifecycle.
    pub status: StepStatus,
    /// Executions started.
    pub attempts: i64,
    /// Provider id.
    pub provider: Option<String>,
    /// Content key.
    pub content_key: Option<String>,
    /// Output manifest JSON.
    pub output: Option<String>,
    /// Served from the cache.
    pub cached: bool,
    /// Estimated cost.
    pub cost_usd: f64,
    /// Failure reason.
    pub error: Option<String>,
    /// Start, epoch ms.
    pub started_at: Option<i64>,
    /// End, epoch ms.
    pub finished_at: Option<i64>,
}

/// One log row to write.
#[derive(Debug, Clone, Default)]
pub struct LogInput {
    /// Run.
    pub run_id: Option<String>,
    /// Project.
    pub project_id: Option<String>,
    /// Scene.
    pub scene_id: Option<String>,
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

/// A stored scene reference: `""` (the column is NOT NULL) stands for "the whole project".
pub(super) fn scene_ref(stored: String) -> Option<String> {
    (!stored.is_empty()).then_some(stored)
}

fn step_row(r: &AnyRow) -> Result<StepRow, DbError> {
    Ok(StepRow {
        id: r.try_get("id")?,
        scene_id: scene_ref(r.try_get("scene_id")?),
        step: StepName::parse(&r.try_get::<String, _>("step")?)
            .ok_or_else(|| DbError::Corrupt("steps.step".into()))?,
        status: StepStatus::parse(&r.try_get::<String, _>("status")?)
            .ok_or_else(|| DbError::Corrupt("steps.status".into()))?,
        attempts: r.try_get("attempts")?,
        provider: r.try_get("provider")?,
        content_key: r.try_get("content_key")?,
        output: r.try_get("output")?,
        cached: flag(r.try_get("cached")?),
        cost_usd: r.try_get("cost_usd")?,
        error: r.try_get("error")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

/// Columns read into a [`StepRow`].
macro_rules! step_columns {
    () => {
        "id, scene_id, step, status, attempts, provider, content_key, output, cached, cost_usd, error, started_at, finished_at"
    };
}

impl Db {
    /// The newest unfinished run of a project (`scene_id` `""`) or of one scene, if any.
    pub async fn unfinished_run(
        &self,
        project_id: &str,
        scene_id: &str,
    ) -> Result<Option<RunRow>, DbError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs
             WHERE project_id = $1 AND scene_id = $2 AND status = 'running' ORDER BY created_at DESC, id DESC LIMIT 1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project_id)
            .bind(scene_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_row).transpose()
    }

    /// Starts a run of a project (`scene_id` `""`) or one scene that `owner` executes at once under a lease
    /// of `lease_ms` (the same lease a worker holds on a claimed run).
    pub async fn create_leased_run(
        &self,
        project_id: &str,
        scene_id: &str,
        owner: &str,
        lease_ms: i64,
    ) -> Result<ClaimedRun, DbError> {
        let (id, token, now) = (new_id(), new_id(), now_ms());
        sqlx::query(
            "INSERT INTO runs (id, project_id, scene_id, status, owner, lease_token, lease_expires_at, heartbeat_at,
                               created_at)
             VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $7)",
        )
        .bind(&id)
        .bind(project_id)
        .bind(scene_id)
        .bind(owner)
        .bind(&token)
        .bind(now + lease_ms)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(ClaimedRun {
            id,
            project_id: project_id.into(),
            scene_id: scene_id.into(),
            token,
        })
    }

    /// Takes over a running run whose holder is gone (lease expired, or its process is dead), only if it still
    /// has the owner we saw: a new lease for `owner`. Steps left executing go back to pending.
    pub async fn adopt_run(
        &self,
        run: &RunRow,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Option<ClaimedRun>, DbError> {
        let (token, now) = (new_id(), now_ms());
        let done = sqlx::query(
            "UPDATE runs SET owner = $1, lease_token = $2, lease_expires_at = $3, heartbeat_at = $4
             WHERE id = $5 AND status = 'running' AND COALESCE(owner, '') = COALESCE(CAST($6 AS TEXT), '')",
        )
        .bind(owner)
        .bind(&token)
        .bind(now + lease_ms)
        .bind(now)
        .bind(&run.id)
        .bind(run.owner.as_deref())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        // Steps that were executing when the holder died start again (their outputs were never recorded).
        sqlx::query("UPDATE steps SET status = 'pending' WHERE run_id = $1 AND status = 'running'")
            .bind(&run.id)
            .execute(&self.pool)
            .await?;
        Ok(Some(ClaimedRun {
            id: run.id.clone(),
            project_id: run.project_id.clone(),
            scene_id: run.scene_id.clone().unwrap_or_default(),
            token,
        }))
    }

    /// Marks a run and its unfinished steps canceled, and its generating scenes too.
    pub async fn cancel_run(&self, run_id: &str) -> Result<(), DbError> {
        let now = now_ms();
        sqlx::query(
            "UPDATE steps SET status = 'canceled', finished_at = $2 WHERE run_id = $1 AND status IN ('pending', 'running')",
        )
        .bind(run_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        sqlx::query(
            "UPDATE scenes SET status = 'canceled'
             WHERE status = 'generating' AND project_id = (SELECT project_id FROM runs WHERE id = $1)",
        )
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        sqlx::query("UPDATE runs SET status = 'canceled', finished_at = $2 WHERE id = $1 AND status IN ('queued', 'running')")
            .bind(run_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a run.
    pub async fn finish_run(
        &self,
        run_id: &str,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE runs SET status = $2, error = $3, finished_at = $4, lease_token = NULL, lease_expires_at = NULL
             WHERE id = $1 AND status IN ('queued', 'running')",
        )
            .bind(run_id)
            .bind(status.as_str())
            .bind(error)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The step row of (run, scene, step), created pending if missing.
    pub async fn ensure_step(
        &self,
        run_id: &str,
        scene_id: &str,
        step: &str,
    ) -> Result<StepRow, DbError> {
        sqlx::query(
            "INSERT INTO steps (id, run_id, scene_id, step, status) VALUES ($1, $2, $3, $4, 'pending')
             ON CONFLICT (run_id, scene_id, step) DO NOTHING",
        )
        .bind(new_id())
        .bind(run_id)
        .bind(scene_id)
        .bind(step)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            step_columns!(),
            " FROM steps WHERE run_id = $1 AND scene_id = $2 AND step = $3"
        ))
        .bind(run_id)
        .bind(scene_id)
        .bind(step)
        .fetch_one(&self.pool)
        .await?;
        step_row(&row)
    }

    /// All steps of a run.
    pub async fn run_steps(&self, run_id: &str) -> Result<Vec<StepRow>, DbError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            step_columns!(),
            " FROM steps WHERE run_id = $1 ORDER BY id"
        ))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(step_row).collect()
    }

    /// Marks a step as executing (one more attempt).
    pub async fn step_started(
        &self,
        step_id: &str,
        provider: &str,
        content_key: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE steps SET status = 'running', attempts = attempts + 1, provider = $2, content_key = $3,
                started_at = $4, finished_at = NULL, error = NULL WHERE id = $1",
        )
        .bind(step_id)
        .bind(provider)
        .bind(content_key)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a finished step; `started_at` is kept when the step was executed, set to now when cached.
    pub async fn step_succeeded(
        &self,
        step_id: &str,
        provider: &str,
        content_key: &str,
        output: &str,
        cached: bool,
        cost_usd: f64,
    ) -> Result<(), DbError> {
        let now = now_ms();
        sqlx::query(
            "UPDATE steps SET status = 'succeeded', provider = $2, content_key = $3, output = $4, cached = $5,
                cost_usd = $6, started_at = COALESCE(started_at, $7), finished_at = $7, error = NULL WHERE id = $1",
        )
        .bind(step_id)
        .bind(provider)
        .bind(content_key)
        .bind(output)
        .bind(i64::from(cached))
        .bind(cost_usd)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a failed or skipped step.
    pub async fn step_ended_without_output(
        &self,
        step_id: &str,
        status: &str,
        error: &str,
    ) -> Result<(), DbError> {
        sqlx::query("UPDATE steps SET status = $2, error = $3, finished_at = $4 WHERE id = $1")
            .bind(step_id)
            .bind(status)
            .bind(error)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The cached output manifest for a content key.
    pub async fn cached_output(&self, content_key: &str) -> Result<Option<String>, DbError> {
        let row = sqlx::query("SELECT output FROM step_cache WHERE content_key = $1")
            .bind(content_key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("output")).transpose()?)
    }

    /// Drops a cache entry whose objects have gone missing.
    pub async fn forget_cached(&self, content_key: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM step_cache WHERE content_key = $1")
            .bind(content_key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores a finished output under its content key (first writer wins; the content is the same).
    pub async fn cache_output(
        &self,
        content_key: &str,
        step: &str,
        provider: &str,
        output: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO step_cache (content_key, step, provider, output, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (content_key) DO NOTHING",
        )
        .bind(content_key)
        .bind(step)
        .bind(provider)
        .bind(output)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Appends a log row.
    pub async fn insert_log(&self, l: &LogInput) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO logs (id, run_id, project_id, scene_id, step, level, provider, message, duration_ms, payload, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CAST($9 AS BIGINT), $10, $11)",
        )
        .bind(new_id())
        .bind(&l.run_id)
        .bind(&l.project_id)
        .bind(&l.scene_id)
        .bind(&l.step)
        .bind(&l.level)
        .bind(&l.provider)
        .bind(&l.message)
        .bind(l.duration_ms)
        .bind(&l.payload)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One run's record.
    pub async fn get_run(&self, id: &str) -> Result<Option<RunRow>, DbError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(run_row).transpose()
    }
}

/// A stored run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// Run id.
    pub id: String,
    /// Its project.
    pub project_id: String,
    /// The scene a scene run renders; `None` for a whole-project run.
    pub scene_id: Option<String>,
    /// Where it is in its lifecycle.
    pub status: RunStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// End time, epoch ms.
    pub finished_at: Option<i64>,
    /// `host:pid` of the process executing it.
    pub owner: Option<String>,
    /// The holder's last lease renewal, epoch ms.
    pub heartbeat_at: Option<i64>,
    /// When the holder's lease ends (epoch ms); `None` for runs that were never leased.
    pub lease_expires_at: Option<i64>,
}

const RUN_COLUMNS: &str = "id, project_id, scene_id, status, error, created_at, finished_at, owner, heartbeat_at, lease_expires_at";

fn run_row(r: &AnyRow) -> Result<RunRow, DbError> {
    let status: String = r.try_get("status")?;
    Ok(RunRow {
        id: r.try_get("id")?,
        project_id: r.try_get("project_id")?,
        scene_id: scene_ref(r.try_get("scene_id")?),
        status: RunStatus::parse(&status).ok_or_else(|| DbError::Corrupt("runs.status".into()))?,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        finished_at: r.try_get("finished_at")?,
        owner: r.try_get("owner")?,
        heartbeat_at: r.try_get("heartbeat_at")?,
        lease_expires_at: r.try_get("lease_expires_at")?,
    })
}
