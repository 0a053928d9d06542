//! Projects, their outputs, and the dashboard's counts.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, DbError, id_col, nullable_f64, opt_id_col};
use crate::domain::{AspectRatio, IdentityGate, IdentityId, Project, ProjectId, ProjectStatus};
use crate::storage::now_ms;

/// A stored project.
#[derive(Debug, Clone)]
pub struct ProjectRecord {
    /// Id.
    pub id: ProjectId,
    /// The project.
    pub project: Project,
    /// Default identity for its scenes.
    pub default_identity_id: Option<IdentityId>,
    /// Whether its assembled video is recorded.
    pub status: ProjectStatus,
    /// Assembled video object.
    pub final_object: Option<String>,
    /// Project captions (VTT) object.
    pub captions_object: Option<String>,
    /// Assembled video length.
    pub duration_seconds: Option<f64>,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Last change, epoch ms.
    pub updated_at: i64,
    /// Fingerprint of the scenes its assembled video was made from (`pipeline::fingerprint`).
    pub rendered_inputs: Option<String>,
}

const PROJECT_COLUMNS: &str = "id, name, description, aspect_ratio, default_identity_id, budget_usd, status, \
    final_object, captions_object, duration_seconds, created_at, updated_at, identity_gate, identity_retries, \
    rendered_inputs";

fn project_record(r: &AnyRow) -> Result<ProjectRecord, DbError> {
    let aspect: String = r.try_get("aspect_ratio")?;
    let gate: String = r.try_get("identity_gate")?;
    Ok(ProjectRecord {
        id: id_col(r, "id")?,
        project: Project {
            name: r.try_get("name")?,
            description: r.try_get("description")?,
            aspect_ratio: AspectRatio::parse(&aspect)
                .ok_or_else(|| DbError::Corrupt("projects.aspect_ratio".into()))?,
            budget_usd: r.try_get("budget_usd")?,
            identity_gate: IdentityGate::parse(&gate)
                .ok_or_else(|| DbError::Corrupt("projects.identity_gate".into()))?,
            identity_retries: u32::try_from(r.try_get::<i64, _>("identity_retries")?)
                .map_err(|_| DbError::Corrupt("projects.identity_retries".into()))?,
        },
        default_identity_id: opt_id_col(r, "default_identity_id")?,
        status: ProjectStatus::parse(&r.try_get::<String, _>("status")?)
            .ok_or_else(|| DbError::Corrupt("projects.status".into()))?,
        final_object: r.try_get("final_object")?,
        captions_object: r.try_get("captions_object")?,
        duration_seconds: r.try_get("duration_seconds")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        rendered_inputs: r.try_get("rendered_inputs")?,
    })
}

/// How many of each thing exist (the dashboard's counters).
#[derive(Debug, Clone, Copy, Default)]
pub struct UiCounts {
    /// Projects.
    pub projects: i64,
    /// Scenes.
    pub scenes: i64,
    /// Identities.
    pub identities: i64,
    /// Uploaded assets.
    pub assets: i64,
    /// Runs queued or in progress.
    pub running: i64,
}

impl Db {
    /// Every project, newest first.
    pub async fn list_projects(&self) -> Result<Vec<ProjectRecord>, DbError> {
        let sql =
            format!("SELECT {PROJECT_COLUMNS} FROM projects ORDER BY created_at DESC, id DESC");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(project_record).collect()
    }

    /// One project.
    pub async fn get_project(&self, id: &ProjectId) -> Result<Option<ProjectRecord>, DbError> {
        let sql = format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(project_record).transpose()
    }

    /// True when another project has this name.
    pub async fn project_name_taken(
        &self,
        name: &str,
        except_id: Option<&ProjectId>,
    ) -> Result<bool, DbError> {
        let row = sqlx::query("SELECT id FROM projects WHERE name = $1 AND id <> $2")
            .bind(name)
            .bind(except_id.map_or("", |id| id.as_str()))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Creates or updates the project with this name; returns its id.
    pub async fn upsert_project(
        &self,
        p: &Project,
        default_identity_id: Option<&IdentityId>,
    ) -> Result<ProjectId, DbError> {
        let now = now_ms();
        let existing = sqlx::query("SELECT id FROM projects WHERE name = $1")
            .bind(&p.name)
            .fetch_optional(&self.pool)
            .await?;
        let id = match existing {
            Some(row) => id_col(&row, "id")?,
            None => ProjectId::generate(),
        };
        sqlx::query(
            "INSERT INTO projects (id, name, description, aspect_ratio, default_identity_id, budget_usd, created_at, updated_at,
                identity_gate, identity_retries)
             VALUES ($1, $2, $3, $4, $5, CAST($6 AS DOUBLE PRECISION), $7, $7, $8, $9)
             ON CONFLICT (id) DO UPDATE SET description = $3, aspect_ratio = $4, default_identity_id = $5,
                budget_usd = CAST($6 AS DOUBLE PRECISION), updated_at = $7, identity_gate = $8, identity_retries = $9",
        )
        .bind(id.as_str())
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.aspect_ratio.as_str())
        .bind(default_identity_id.map(|i| i.as_str()))
        .bind(nullable_f64(p.budget_usd))
        .bind(now)
        .bind(p.identity_gate.as_str())
        .bind(i64::from(p.identity_retries))
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Renames/updates a project by id; false when missing.
    pub async fn update_project(
        &self,
        id: &ProjectId,
        p: &Project,
        default_identity_id: Option<&IdentityId>,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE projects SET name = $2, description = $3, aspect_ratio = $4, default_identity_id = $5,
                budget_usd = CAST($6 AS DOUBLE PRECISION), updated_at = $7, identity_gate = $8, identity_retries = $9
             WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.aspect_ratio.as_str())
        .bind(default_identity_id.map(|i| i.as_str()))
        .bind(nullable_f64(p.budget_usd))
        .bind(now_ms())
        .bind(p.identity_gate.as_str())
        .bind(i64::from(p.identity_retries))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a project and its scenes and runs.
    pub async fn delete_project(&self, id: &ProjectId) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM scenes WHERE project_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM steps WHERE run_id IN (SELECT id FROM runs WHERE project_id = $1)",
        )
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM runs WHERE project_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM projects WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the project's assembled video and the fingerprint of the scenes it was made from (`inputs`).
    pub async fn set_project_output(
        &self,
        project_id: &ProjectId,
        status: ProjectStatus,
        final_object: Option<&str>,
        captions_object: Option<&str>,
        duration: Option<f64>,
        inputs: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE projects SET status = $2, final_object = COALESCE(CAST($3 AS TEXT), final_object),
                captions_object = COALESCE(CAST($4 AS TEXT), captions_object), duration_seconds = COALESCE(CAST($5 AS DOUBLE PRECISION), duration_seconds),
                rendered_inputs = $7, updated_at = $6 WHERE id = $1",
        )
        .bind(project_id.as_str())
        .bind(status.as_str())
        .bind(final_object)
        .bind(captions_object)
        .bind(nullable_f64(duration))
        .bind(now_ms())
        .bind(inputs)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Counters for the dashboard, in one round trip.
    pub async fn ui_counts(&self) -> Result<UiCounts, DbError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM projects) AS p, (SELECT COUNT(*) FROM scenes) AS s,
                    (SELECT COUNT(*) FROM identities) AS i, (SELECT COUNT(*) FROM assets) AS a,
                    (SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running')) AS r",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(UiCounts {
            projects: row.try_get("p")?,
            scenes: row.try_get("s")?,
            identities: row.try_get("i")?,
            assets: row.try_get("a")?,
            running: row.try_get("r")?,
        })
    }
}
