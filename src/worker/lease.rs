//! The one run-ownership protocol: whoever executes a run — a `devatar worker`, the server's in-process worker
//! or a CLI render — holds a lease on it, renews it every third of its length and stops when it is lost. A run
//! whose lease expired (or whose holder is a dead process on this host) may be taken over; its finished steps
//! stay cached.

use std::time::Duration;

use crate::domain::ProjectId;
use crate::storage::db::{ClaimedRun, Db, DbError, RunRow};
use crate::storage::now_ms;

/// `host:pid` of this process: the owner name written on the runs it holds.
pub fn owner_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}", host.trim(), std::process::id())
}

/// True when `owner` names a process on this host that no longer runs (so its lease can be taken at once
/// instead of waiting for it to expire).
fn owner_is_dead_here(owner: Option<&str>) -> bool {
    let Some((host, pid)) = owner.and_then(|o| o.rsplit_once(':')) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    let me = owner_id();
    let my_host = me.rsplit_once(':').map(|(h, _)| h).unwrap_or_default();
    if host != my_host || pid == std::process::id() {
        return false;
    }
    // Running unless gone or a zombie (an exited child its parent has not reaped yet).
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .map(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
        });
    !state.is_some_and(|state| !matches!(state, Some('Z' | 'X')))
}

/// Whether someone still holds `run`: its lease has not expired and its holder is not a dead local process.
/// Runs written before leases (no expiry) count as held while their heartbeat is under 30 s old.
pub fn is_held(run: &RunRow) -> bool {
    if owner_is_dead_here(run.owner.as_deref()) {
        return false;
    }
    match run.lease_expires_at {
        Some(expires) => expires > now_ms(),
        None => run.heartbeat_at.is_some_and(|h| now_ms() - h < 30_000),
    }
}

/// Why a foreground render could not take its project's run.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Another live process holds the project's unfinished run.
    #[error("the project is being rendered by another process ({0})")]
    Held(String),
    /// Another process took the interrupted run over first.
    #[error("another process took over the interrupted run; try again")]
    Lost,
    /// Database failure.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The run a foreground render of `project_id` executes, leased to `owner`: the project's interrupted run of the
/// same kind (preview or not; taken over when nobody holds it), else a new one. Returns the claim and whether it
/// resumes a run.
pub async fn claim_project_run(
    db: &Db,
    project_id: &ProjectId,
    owner: &str,
    lease: Duration,
    preview: bool,
) -> Result<(ClaimedRun, bool), ClaimError> {
    let lease_ms = lease.as_millis() as i64;
    match db.unfinished_run(project_id, None, preview).await? {
        Some(run) if is_held(&run) => Err(ClaimError::Held(run.owner.unwrap_or_default())),
        Some(run) => match db.adopt_run(&run, owner, lease_ms).await? {
            Some(claim) => Ok((claim, true)),
            None => Err(ClaimError::Lost),
        },
        None => Ok((
            db.create_leased_run(project_id, None, owner, lease_ms, preview)
                .await?,
            false,
        )),
    }
}

/// Renews `claim`'s lease every third of `lease` until it is lost (taken over, or the run was canceled or
/// finished elsewhere); returns then. Renewal errors are logged and retried.
pub async fn hold_lease(db: Db, claim: ClaimedRun, lease: Duration) {
    loop {
        tokio::time::sleep(lease / 3).await;
        crate::failpoint::hit(crate::failpoint::MID_LEASE_RENEWAL);
        match db
            .renew_lease(&claim.id, &claim.token, lease.as_millis() as i64)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => tracing::warn!(run = %claim.id, "lease renewal failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        owner: Option<&str>,
        lease_expires_at: Option<i64>,
        heartbeat_at: Option<i64>,
    ) -> RunRow {
        RunRow {
            id: "r".into(),
            project_id: "p".into(),
            scene_id: None,
            status: crate::domain::RunStatus::Running,
            error: None,
            created_at: 0,
            finished_at: None,
            owner: owner.map(String::from),
            heartbeat_at,
            lease_expires_at,
            preview: false,
        }
    }

    #[test]
    fn a_run_is_held_until_its_lease_expires_or_its_local_holder_dies() {
        let me = owner_id();
        let later = Some(now_ms() + 60_000);
        assert!(is_held(&run(Some(&me), later, None)), "my own live lease");
        assert!(
            !is_held(&run(Some(&me), Some(now_ms() - 1), None)),
            "expired"
        );
        let host = me.rsplit_once(':').unwrap().0;
        // PID 4194304 is above Linux's maximum: no such process.
        let dead = format!("{host}:4194304");
        assert!(
            !is_held(&run(Some(&dead), later, None)),
            "dead local holder"
        );
        assert!(
            is_held(&run(Some("elsewhere:1"), later, None)),
            "remote holder"
        );
        assert!(
            is_held(&run(Some("elsewhere:1"), None, Some(now_ms()))),
            "legacy heartbeat"
        );
        assert!(!is_held(&run(
            Some("elsewhere:1"),
            None,
            Some(now_ms() - 60_000)
        )));
    }
}
