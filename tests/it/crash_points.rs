//! The short crash-point pass (`bench/crashpoints.sh` runs every point): a real `devatar render` kills itself at
//! a named crash point on the provider sandbox, and the next render finishes without paying for anything twice.

use std::path::Path;
use std::process::Output;

use devatar::fakes::LatencyProfile;

use crate::common::cloud::{self, VOICE, cloud_env};
use crate::common::command;

const PROJECT: &str = r#"
[project]
name = "Crash point"

[[identities]]
name = "crash"
display_name = "Crash"
trigger_word = "TOK_CRASH"

[[scenes]]
name = "one"
dialogue = "One scene survives a crash."
"#;

async fn render(dir: &Path, base: &str, failpoint: Option<&str>) -> Output {
    let mut cmd = command(
        dir,
        &["render", "p.toml", "--data", "data", "--providers", "cloud"],
    );
    cloud_env(&mut cmd, base).env("ELEVENLABS_VOICE_ID", VOICE);
    if let Some(point) = failpoint {
        cmd.env("DEVATAR_FAILPOINT", point);
    }
    tokio::process::Command::from(cmd).output().await.unwrap()
}

/// Killed after Kling accepted the video job but before its task id was stored (the second paid submit of a
/// one-scene render: Flux, then Kling): the next render finds the task by its external id instead of paying again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_killed_between_submit_and_record_resumes_without_paying_twice() {
    let fake = cloud::fakes(LatencyProfile::Fast, 0.05).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), PROJECT).unwrap();
    let killed = render(
        dir.path(),
        &fake.base_url(),
        Some("after-submit-before-record:2"),
    )
    .await;
    let stderr = String::from_utf8_lossy(&killed.stderr);
    assert_eq!(killed.status.code(), None, "killed by a signal: {stderr}");
    assert!(
        stderr.contains("DEVATAR_FAILPOINT=after-submit-before-record:2"),
        "{stderr}"
    );
    assert_eq!(
        fake.stats()["kling.submit"],
        1,
        "Kling accepted the job before the kill"
    );

    let again = render(dir.path(), &fake.base_url(), None).await;
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let stats = fake.stats();
    for submit in ["fal.submit", "kling.submit", "sync.submit"] {
        assert_eq!(stats[submit], 1, "{submit} paid once: {stats:?}");
    }
}
