//! Crash safety: a render killed at any step boundary, or by SIGKILL mid-step, resumes without re-running
//! any step that had finished.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::*;

/// 2 scenes × 5 steps + ASSEMBLE.
const SMALL_STEPS: usize = 11;

/// (scene name or "project", step) of every step persisted as succeeded in the data folder's database.
fn succeeded_steps(data: &std::path::Path) -> Vec<(String, String)> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Row;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&database_url_for(data))
            .await
            .unwrap();
        let rows = sqlx::query(
            "SELECT COALESCE(sc.name, 'project') AS scene, st.step AS step FROM steps st
             LEFT JOIN scenes sc ON sc.id = st.scene_id WHERE st.status = 'succeeded'",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let mut v: Vec<(String, String)> = rows
            .iter()
            .map(|r| (r.get("scene"), r.get("step")))
            .collect();
        v.sort();
        pool.close().await;
        v
    })
}

/// Runs marked running whose holder has an unexpired lease.
fn leased_running_runs(data: &std::path::Path) -> usize {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Row;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&database_url_for(data))
            .await
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM runs WHERE status = 'running' AND lease_token IS NOT NULL
               AND lease_expires_at > $1",
        )
        .bind(now)
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("n");
        pool.close().await;
        n as usize
    })
}

/// Number of step outputs stored in the render cache.
fn cached_outputs(data: &std::path::Path) -> usize {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Row;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&database_url_for(data))
            .await
            .unwrap();
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM step_cache")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get("n");
        pool.close().await;
        n as usize
    })
}

/// Step boundaries the real-process crash test kills at: the first, the middle and the last before ASSEMBLE.
/// Every boundary is covered in process (fakes, no ffmpeg) by `pipeline::testkit` tests
/// (`resume_after_an_abort_at_every_step_boundary_runs_only_the_unfinished_steps`).
const BOUNDARIES: [usize; 3] = [1, SMALL_STEPS / 2, SMALL_STEPS - 1];

#[test]
fn abort_at_representative_step_boundaries_then_resume_runs_only_the_unfinished_steps() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("small.toml"), SMALL_PROJECT).unwrap();
    for n in BOUNDARIES {
        let data = tmp.path().join(format!("data-{n}"));
        let d = data.to_str().unwrap();
        let crashed = command(tmp.path(), &["render", "small.toml", "--data", d, "--json"])
            .env("DEVATAR_TEST_ABORT_AFTER_STEPS", n.to_string())
            .output()
            .unwrap();
        assert!(
            !crashed.status.success(),
            "boundary {n}: the render must die"
        );
        assert!(
            crashed.stdout.is_empty(),
            "boundary {n}: no JSON from a dead render"
        );

        let finished_before = succeeded_steps(&data);
        let stored_before = cached_outputs(&data);
        assert!(
            finished_before.len() >= n,
            "boundary {n}: {finished_before:?}"
        );

        let resumed = command(tmp.path(), &["render", "small.toml", "--data", d, "--json"])
            .output()
            .unwrap();
        assert!(
            resumed.status.success(),
            "boundary {n}: {}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        let stderr = String::from_utf8_lossy(&resumed.stderr);
        assert!(
            stderr.contains("Resuming interrupted run"),
            "boundary {n}: {stderr}"
        );
        let doc: serde_json::Value = serde_json::from_slice(&resumed.stdout).unwrap();
        assert_eq!(steps(&doc).len(), SMALL_STEPS);
        let ran_again: Vec<_> = executed(&doc)
            .into_iter()
            .filter(|s| finished_before.contains(s))
            .collect();
        assert!(
            ran_again.is_empty(),
            "boundary {n}: finished steps ran again: {ran_again:?}"
        );
        // A step killed after storing its output but before marking its row is finished too: the cache has it.
        let stored_outputs = stored_before;
        assert!(stored_outputs >= finished_before.len());
        assert_eq!(
            doc["providerCalls"].as_u64().unwrap() as usize,
            SMALL_STEPS - stored_outputs,
            "boundary {n}: exactly the unfinished steps run"
        );
        assert!(data.join("small.mp4").is_file());
    }
}

#[test]
fn sigkill_mid_render_then_rerun_finishes_without_repeating_finished_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    let mut child = command(
        &repo(),
        &[
            "demo",
            "--data",
            d,
            "--out",
            tmp.path().join("demo.mp4").to_str().unwrap(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Plain progress lines (stderr is not a terminal): wait until some steps finished, then kill -9.
    let mut finished = Vec::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some((scene, rest)) = line.strip_prefix('[').and_then(|l| l.split_once("] "))
            && let Some((step, _)) = rest.split_once(" done in ")
        {
            finished.push((scene.to_string(), step.to_string()));
        }
        if finished.iter().any(|(_, s)| s == "VIDEO") {
            break;
        }
    }
    // Keep reading its progress (a closed pipe would end the render early).
    std::thread::spawn(move || for _ in lines {});
    // While it runs, the render holds a lease on its run, and a second render of the project is refused.
    assert!(
        leased_running_runs(&data) >= 1,
        "the running render holds no lease"
    );
    let second = command(
        &repo(),
        &[
            "demo",
            "--data",
            d,
            "--out",
            tmp.path().join("second.mp4").to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    let second_err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{second_err}");
    assert!(
        second_err.contains("being rendered by another process"),
        "{second_err}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(finished.len() >= 4, "killed after {finished:?}");

    let doc = render_json(
        &repo(),
        &[
            "demo",
            "--data",
            d,
            "--out",
            tmp.path().join("demo.mp4").to_str().unwrap(),
            "--json",
        ],
    );
    let all = steps(&doc);
    assert_eq!(all.len(), 16);
    for (scene, step) in &finished {
        let row = all
            .iter()
            .find(|(s, n, _)| s == scene && n == step)
            .unwrap();
        assert!(
            row.2,
            "{scene}/{step} finished before the kill and must not run again"
        );
    }
    // Steps may finish between the last progress line read and the kill; those are reused too.
    let calls = doc["providerCalls"].as_u64().unwrap() as usize;
    assert!(
        calls <= 16 - finished.len() && calls > 0,
        "{calls} steps ran again after {} finished",
        finished.len()
    );
    let cached = all.iter().filter(|(_, _, c)| *c).count();
    assert_eq!(
        cached + calls,
        16,
        "every step either ran once more or came from the cache"
    );
}
