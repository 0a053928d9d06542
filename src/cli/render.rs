//! `devatar render` and `devatar demo`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::CliError;
use super::progress::reporter;
use crate::app::Storage;
use crate::config::Config;
use crate::domain::{RunStatus, StepName};
use crate::media::{REQUIRED_TOOLS, require_tools};
use crate::pipeline::{
    Pipeline, PlannedScene, Progress, RenderOptions, RenderPlan, RunReport, StepReport,
};
use crate::project_file::{ProjectFile, image_kind};
use crate::providers::Providers;
use crate::providers::cloud::ProviderChoice;
use crate::storage::db::{AssetInput, Db};
use crate::storage::now_ms;

/// The bundled demo project, used when `examples/demo.toml` is not in the current folder.
const DEMO_TOML: &str = include_str!("../../examples/demo.toml");

/// Arguments of `render`.
pub struct RenderArgs {
    /// Project file.
    pub file: PathBuf,
    /// Data folder.
    pub data: PathBuf,
    /// Output video.
    pub out: Option<PathBuf>,
    /// JSON on stdout.
    pub json: bool,
    /// Caption burning and step parallelism.
    pub options: RenderOptions,
    /// Which providers: local, cloud or auto.
    pub providers: String,
}

/// The providers for `--providers`, with a clear error for a bad value or missing keys.
fn choose_providers(cfg: &Config, choice: &str) -> Result<Providers, CliError> {
    let choice = ProviderChoice::parse(choice)
        .ok_or_else(|| CliError::input("--providers must be local, cloud or auto"))?;
    cfg.providers(choice).map_err(CliError::input)
}

/// Renders `examples/demo.toml` (the copy on disk if present, else the bundled one).
pub async fn demo(
    cfg: &Config,
    data: PathBuf,
    out: Option<PathBuf>,
    json: bool,
    providers: &str,
) -> Result<(), CliError> {
    let providers = choose_providers(cfg, providers)?;
    let on_disk = Path::new("examples/demo.toml");
    let file = if on_disk.is_file() {
        ProjectFile::load(on_disk)
    } else {
        ProjectFile::parse(DEMO_TOML, on_disk, Path::new("."))
    }
    .map_err(CliError::input)?;
    run(
        cfg,
        file,
        data,
        out,
        json,
        RenderOptions::default(),
        providers,
    )
    .await
}

/// Renders a project file.
pub async fn render(cfg: &Config, args: RenderArgs) -> Result<(), CliError> {
    let providers = choose_providers(cfg, &args.providers)?;
    let file = ProjectFile::load(&args.file).map_err(CliError::input)?;
    run(
        cfg,
        file,
        args.data,
        args.out,
        args.json,
        args.options,
        providers,
    )
    .await
}

fn owner_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}", host.trim(), std::process::id())
}

/// True when the run's owner may still be working on it.
fn owner_alive(owner: Option<&str>, heartbeat_at: Option<i64>) -> bool {
    let Some((host, pid)) = owner.and_then(|o| o.rsplit_once(':')) else {
        return false;
    };
    let me = owner_id();
    let my_host = me.rsplit_once(':').map(|(h, _)| h).unwrap_or("");
    if host == my_host {
        // A zombie (state Z/X in /proc/PID/stat) is dead too.
        return pid
            .parse::<u32>()
            .ok()
            .and_then(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
            .and_then(|stat| {
                stat.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().chars().next())
            })
            .is_some_and(|state| !matches!(state, Some('Z' | 'X')));
    }
    heartbeat_at.map(|h| now_ms() - h < 30_000).unwrap_or(false)
}

/// Renders a validated project file into `out` (default: `<data>/<project>.mp4`) plus its captions.
async fn run(
    cfg: &Config,
    file: ProjectFile,
    data: PathBuf,
    out: Option<PathBuf>,
    json: bool,
    options: RenderOptions,
    providers: Providers,
) -> Result<(), CliError> {
    require_tools(&REQUIRED_TOOLS).map_err(CliError::missing_tool)?;
    let out = output_path(&file, &data, out)?;
    let storage = Storage::open(cfg, &data).await.map_err(CliError::failed)?;
    let plan = store_project(&storage, &file)
        .await
        .map_err(CliError::failed)?;

    let owner = owner_id();
    let db = &storage.db;
    let run_id = claim_run(db, &plan, &owner).await?;
    let heartbeat = spawn_heartbeat(db, &run_id, &owner);
    let report = execute_pipeline(cfg, &storage, &plan, &run_id, options, providers).await;
    heartbeat.abort();
    let _ = tokio::fs::remove_dir_all(storage.work_dir().join(&run_id)).await;

    if !report.failures.is_empty() {
        return Err(fail_run(db, &plan, &report, &run_id).await);
    }
    let (vtt_out, duration) = write_outputs(&storage, &report, &out).await?;
    db.finish_run(&run_id, RunStatus::Succeeded, None)
        .await
        .map_err(CliError::failed)?;
    print_step_table(&plan, &report);
    eprintln!(
        "Wrote {} ({duration:.1} s) with captions {}",
        out.display(),
        vtt_out.display()
    );
    if json {
        let doc = json_report(&storage, &plan, &report, &out, &vtt_out, duration).await;
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    storage.db.close().await;
    Ok(())
}

/// The output video path: `--out`, else `<data>/<project file stem>.mp4`; it must end in `.mp4`.
fn output_path(file: &ProjectFile, data: &Path, out: Option<PathBuf>) -> Result<PathBuf, CliError> {
    let out = out.unwrap_or_else(|| data.join(format!("{}.mp4", file.project.file_stem())));
    if out.extension().and_then(|e| e.to_str()) != Some("mp4") {
        return Err(CliError::input(format!(
            "--out {}: the output file must end in .mp4",
            out.display()
        )));
    }
    Ok(out)
}

/// The run to work on: the project's interrupted run (adopted when its owner is gone), else a new one.
/// Refused while another live process renders the project.
async fn claim_run(db: &Db, plan: &RenderPlan, owner: &str) -> Result<String, CliError> {
    match db
        .unfinished_run(&plan.project_id, "")
        .await
        .map_err(CliError::failed)?
    {
        Some(run) if owner_alive(run.owner.as_deref(), run.heartbeat_at) => {
            Err(CliError::failed(format!(
                "project {:?} is being rendered by another process ({})",
                plan.project.name,
                run.owner.unwrap_or_default()
            )))
        }
        Some(run) => {
            if db
                .adopt_run(&run.id, run.owner.as_deref(), owner)
                .await
                .map_err(CliError::failed)?
            {
                eprintln!("Resuming interrupted run {}", run.id);
                Ok(run.id)
            } else {
                Err(CliError::failed(
                    "another process took over the interrupted run; try again",
                ))
            }
        }
        None => db
            .create_run(&plan.project_id, "", owner)
            .await
            .map_err(CliError::failed),
    }
}

/// Marks the run as alive every 5 seconds until the returned task is aborted.
fn spawn_heartbeat(db: &Db, run_id: &str, owner: &str) -> tokio::task::JoinHandle<()> {
    let (db, run_id, owner) = (db.clone(), run_id.to_string(), owner.to_string());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let _ = db.heartbeat(&run_id, &owner).await;
        }
    })
}

/// Runs the pipeline for the plan with a per-scene progress display.
async fn execute_pipeline(
    cfg: &Config,
    storage: &Storage,
    plan: &RenderPlan,
    run_id: &str,
    options: RenderOptions,
    providers: Providers,
) -> RunReport {
    let scene_names: Vec<String> = plan.scenes.iter().map(|s| s.scene.name.clone()).collect();
    let progress: Arc<dyn Progress> = Arc::from(reporter(&scene_names));
    let pipeline = Arc::new(Pipeline::new(
        storage.db.clone(),
        storage.objects.clone(),
        providers,
        storage.work_dir(),
        progress,
        cfg.pipeline_settings(),
    ));
    pipeline.execute(run_id, plan.clone(), options, true).await
}

/// Records a failed run (every failure, `scene step: why`, joined by `; `), prints the step table and returns
/// the error to exit with.
async fn fail_run(db: &Db, plan: &RenderPlan, report: &RunReport, run_id: &str) -> CliError {
    let reasons: Vec<String> = report
        .failures
        .iter()
        .map(|((scene, step), why)| {
            let scene = scene
                .map(|i| plan.scenes[i].scene.name.as_str())
                .unwrap_or("project");
            format!("{scene} {}: {why}", step.as_str())
        })
        .collect();
    let message = reasons.join("; ");
    let _ = db
        .finish_run(run_id, RunStatus::Failed, Some(&message))
        .await;
    print_step_table(plan, report);
    CliError::failed(format!("render failed: {message}"))
}

/// Downloads the assembled video and its VTT and SRT captions next to `out`; returns the VTT path and the
/// video's duration in seconds.
async fn write_outputs(
    storage: &Storage,
    report: &RunReport,
    out: &Path,
) -> Result<(PathBuf, f64), CliError> {
    let assembled = report.assembled().cloned().unwrap_or_default();
    let (video, vtt, srt) = match (
        assembled.object("video"),
        assembled.object("vtt"),
        assembled.object("srt"),
    ) {
        (Some(v), Some(t), Some(s)) => (v.to_string(), t.to_string(), s.to_string()),
        _ => return Err(CliError::failed("the project video was not produced")),
    };
    let out = out.to_path_buf();
    let vtt_out = out.with_extension("vtt");
    let srt_out = out.with_extension("srt");
    for (key, dest) in [(&video, &out), (&vtt, &vtt_out), (&srt, &srt_out)] {
        storage
            .objects
            .download(key, dest)
            .await
            .map_err(|e| CliError::failed(format!("writing {}: {e}", dest.display())))?;
    }
    Ok((vtt_out, assembled.duration_seconds.unwrap_or(0.0)))
}

/// Imports headshots and upserts identities, the project and its scenes; returns the plan.
async fn store_project(storage: &Storage, file: &ProjectFile) -> anyhow::Result<RenderPlan> {
    use anyhow::Context;
    let db = &storage.db;
    let mut identity_ids = std::collections::HashMap::new();
    let mut identity_headshots = std::collections::HashMap::new();
    for fi in &file.identities {
        let headshot = match &fi.headshot {
            Some(path) => Some(import_headshot(storage, path).await?),
            None => None,
        };
        let id = db
            .upsert_identity(&fi.identity, headshot.as_ref().map(|(id, _)| id.as_str()))
            .await
            .with_context(|| format!("storing identity {}", fi.identity.name))?;
        identity_ids.insert(fi.identity.name.clone(), id);
        identity_headshots.insert(fi.identity.name.clone(), headshot.map(|(_, key)| key));
    }
    let default_id = identity_ids.get(&file.default_identity).map(String::as_str);
    let project_id = db
        .upsert_project(&file.project, default_id)
        .await
        .context("storing the project")?;
    let mut inputs = Vec::new();
    let mut scene_headshots = Vec::new();
    for fs in &file.scenes {
        let headshot = match &fs.headshot {
            Some(path) => Some(import_headshot(storage, path).await?),
            None => None,
        };
        let identity_id = identity_ids
            .get(&fs.scene.identity)
            .cloned()
            .context("scene identity not stored")?;
        inputs.push(crate::storage::db::SceneInput {
            scene: fs.scene.clone(),
            identity_id,
            headshot_asset_id: headshot.as_ref().map(|(id, _)| id.clone()),
        });
        scene_headshots.push(headshot.map(|(_, key)| key));
    }
    let scene_ids = db
        .sync_scenes(&project_id, &inputs)
        .await
        .context("storing the scenes")?;
    let scenes = file
        .scenes
        .iter()
        .zip(scene_ids)
        .zip(scene_headshots)
        .map(|((fs, id), scene_headshot)| {
            let identity = file
                .identities
                .iter()
                .find(|i| i.identity.name == fs.scene.identity)
                .map(|i| i.identity.clone())
                .context("scene identity missing")?;
            Ok(PlannedScene {
                id,
                scene: fs.scene.clone(),
                identity_headshot: identity_headshots.get(&identity.name).cloned().flatten(),
                identity,
                scene_headshot,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(RenderPlan {
        project_id,
        project: file.project.clone(),
        scenes,
    })
}

/// Stores a headshot image (content-addressed) and registers it as an asset; returns (asset id, object key).
async fn import_headshot(storage: &Storage, path: &Path) -> anyhow::Result<(String, String)> {
    use anyhow::Context;
    let head = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (ext, mime) =
        image_kind(&head).with_context(|| format!("{} is not a PNG or JPEG", path.display()))?;
    let stored = storage
        .objects
        .put_file(path, ext)
        .await
        .context("storing a headshot")?;
    let id = storage
        .db
        .upsert_asset(&AssetInput {
            kind: "headshot".into(),
            object_key: stored.key.clone(),
            sha256: stored.sha256,
            size_bytes: stored.size as i64,
            mime: mime.into(),
            width: None,
            height: None,
            original_name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        })
        .await?;
    Ok((id, stored.key))
}

fn step_json(s: &StepReport) -> serde_json::Value {
    json!({ "step": s.step.as_str(), "provider": s.provider, "cached": s.cached, "ms": s.ms, "costUsd": s.cost_usd,
            "startedAt": s.started_at_ms, "finishedAt": s.finished_at_ms })
}

async fn json_report(
    storage: &Storage,
    plan: &RenderPlan,
    report: &RunReport,
    out: &Path,
    vtt: &Path,
    duration: f64,
) -> serde_json::Value {
    let mut scenes = Vec::new();
    for (i, s) in plan.scenes.iter().enumerate() {
        let fin = report.outputs.get(&(Some(i), StepName::Finalize));
        let output = match fin.and_then(|f| f.object("video")) {
            Some(key) => storage
                .objects
                .local_path(key)
                .await
                .ok()
                .map(|p| p.display().to_string()),
            None => None,
        };
        let mode = report
            .outputs
            .get(&(Some(i), StepName::Image))
            .and_then(|o| o.mode.clone());
        scenes.push(json!({
            "name": s.scene.name,
            "mode": mode,
            "output": output,
            "durationSeconds": fin.and_then(|f| f.duration_seconds),
            "speechSeconds": report.outputs.get(&(Some(i), StepName::Audio)).and_then(|a| a.duration_seconds),
            "steps": report.steps.iter().filter(|r| r.scene == Some(i)).map(step_json).collect::<Vec<_>>(),
        }));
    }
    json!({
        "output": out.display().to_string(),
        "durationSeconds": duration,
        "captions": vtt.display().to_string(),
        "costUsd": report.steps.iter().map(|s| s.cost_usd).sum::<f64>(),
        "providerCalls": report.steps.iter().filter(|s| !s.cached).count(),
        "steps": report.steps.iter().filter(|r| r.scene.is_none()).map(step_json).collect::<Vec<_>>(),
        "scenes": scenes,
    })
}

fn print_step_table(plan: &RenderPlan, report: &RunReport) {
    eprintln!(
        "{:<18} {:<9} {:<16} {:<7} {:>8}",
        "scene", "step", "provider", "cached", "ms"
    );
    for s in &report.steps {
        let scene = s
            .scene
            .map(|i| plan.scenes[i].scene.name.as_str())
            .unwrap_or("(project)");
        eprintln!(
            "{:<18} {:<9} {:<16} {:<7} {:>8}",
            scene.chars().take(18).collect::<String>(),
            s.step.as_str(),
            s.provider,
            if s.cached { "yes" } else { "no" },
            s.ms
        );
    }
}
