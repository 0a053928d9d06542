//! `devatar render` and `devatar demo`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;

use super::CliError;
use super::progress::reporter;
use crate::app::Storage;
use crate::config::Config;
use crate::domain::{RunId, RunStatus, StepName};
use crate::media::{REQUIRED_TOOLS, require_tools};
use crate::pipeline::{Progress, RenderOptions, RenderPlan, RunReport, StepReport};
use crate::project_file::ProjectFile;
use crate::providers::Providers;
use crate::providers::cloud::ProviderChoice;
use crate::storage::db::Db;
use crate::worker::{ClaimError, IdentityPolicy, RunService};

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
    cfg: &Arc<Config>,
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

/// Renders a project file (a preview with the local providers when `--preview`).
pub async fn render(cfg: &Arc<Config>, args: RenderArgs) -> Result<(), CliError> {
    let providers = if args.options.preview {
        if args.providers == "cloud" {
            return Err(CliError::input(
                "--preview renders with the local providers only; drop --providers cloud",
            ));
        }
        cfg.local_providers()
    } else {
        choose_providers(cfg, &args.providers)?
    };
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

/// Renders a validated project file into `out` (default: `<data>/<project>.mp4`) plus its captions.
async fn run(
    cfg: &Arc<Config>,
    file: ProjectFile,
    data: PathBuf,
    out: Option<PathBuf>,
    json: bool,
    options: RenderOptions,
    providers: Providers,
) -> Result<(), CliError> {
    require_tools(&REQUIRED_TOOLS).map_err(CliError::missing_tool)?;
    let out = output_path(&file, &data, out, options.preview)?;
    let storage = Storage::open(cfg, &data).await.map_err(CliError::failed)?;
    let scene_names: Vec<String> = file.scenes.iter().map(|s| s.scene.name.clone()).collect();
    let progress: Arc<dyn Progress> = Arc::from(reporter(&scene_names));
    let service =
        RunService::with_providers(storage.clone(), cfg.clone(), providers, Some(progress));
    let plan = service
        .import(&file, IdentityPolicy::Overwrite)
        .await
        .map_err(CliError::failed)?;
    let (claim, resumed) = service
        .claim_project(&plan.project_id, options.preview)
        .await
        .map_err(|e| match e {
            ClaimError::Held(owner) => CliError::failed(format!(
                "project {:?} is being rendered by another process ({owner})",
                plan.project.name
            )),
            e => CliError::failed(e),
        })?;
    if resumed {
        eprintln!("Resuming interrupted run {}", claim.id);
    }
    let run_id = claim.id.clone();
    let db = &storage.db;
    let report = service
        .clone()
        .execute_leased(&claim, plan.clone(), options, true)
        .await
        .ok_or_else(|| CliError::failed("the run was canceled or taken over by another process"))?;

    if !report.failures.is_empty() {
        return Err(fail_run(db, &plan, &report, &run_id).await);
    }
    let (vtt_out, duration) = write_outputs(&storage, &report, &out).await?;
    db.finish_run(&run_id, RunStatus::Succeeded, None)
        .await
        .map_err(CliError::failed)?;
    print_step_table(&plan, &report);
    eprintln!(
        "Wrote {}{} ({duration:.1} s) with captions {}",
        if options.preview { "the preview " } else { "" },
        out.display(),
        vtt_out.display()
    );
    if json {
        let mut doc = json_report(&storage, &plan, &report, &out, &vtt_out, duration).await;
        doc["preview"] = json!(options.preview);
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    storage.db.close().await;
    Ok(())
}

/// The output video path: `--out`, else `<data>/<project file stem>.mp4` (`…-preview.mp4` for a preview, so a
/// preview never replaces a paid render); it must end in `.mp4`.
fn output_path(
    file: &ProjectFile,
    data: &Path,
    out: Option<PathBuf>,
    preview: bool,
) -> Result<PathBuf, CliError> {
    let suffix = if preview { "-preview" } else { "" };
    let out = out.unwrap_or_else(|| data.join(format!("{}{suffix}.mp4", file.project.file_stem())));
    if out.extension().and_then(|e| e.to_str()) != Some("mp4") {
        return Err(CliError::input(format!(
            "--out {}: the output file must end in .mp4",
            out.display()
        )));
    }
    Ok(out)
}

/// Records a failed run (every failure, `scene step: why`, joined by `; `), prints the step table and returns
/// the error to exit with.
async fn fail_run(db: &Db, plan: &RenderPlan, report: &RunReport, run_id: &RunId) -> CliError {
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

/// One step of `--json`: scene steps carry `identityDistance` (null where nothing was scored), FINALIZE also
/// `identityMedian`.
fn step_json(s: &StepReport) -> serde_json::Value {
    let mut step = json!({ "step": s.step.as_str(), "provider": s.provider, "cached": s.cached, "ms": s.ms,
            "costUsd": s.cost_usd, "startedAt": s.started_at_ms, "finishedAt": s.finished_at_ms });
    if s.scene.is_some() {
        step["identityDistance"] = json!(s.identity_distance);
    }
    if s.step == StepName::Finalize {
        step["identityMedian"] = json!(s.identity_median);
    }
    step
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
        "{:<18} {:<9} {:<16} {:<7} {:>8} {:>8}",
        "scene", "step", "provider", "cached", "ms", "identity"
    );
    for s in &report.steps {
        let scene = s
            .scene
            .map(|i| plan.scenes[i].scene.name.as_str())
            .unwrap_or("(project)");
        eprintln!(
            "{:<18} {:<9} {:<16} {:<7} {:>8} {:>8}",
            scene.chars().take(18).collect::<String>(),
            s.step.as_str(),
            s.provider,
            if s.cached { "yes" } else { "no" },
            s.ms,
            s.identity_distance
                .map(|d| format!("{d:.2}"))
                .unwrap_or_default()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(step: StepName, scene: Option<usize>, distance: Option<f64>) -> StepReport {
        StepReport {
            scene,
            step,
            provider: "p".into(),
            cached: false,
            ms: 1,
            cost_usd: 0.0,
            started_at_ms: 0,
            finished_at_ms: 1,
            identity_distance: distance,
            identity_median: distance.map(|d| d / 2.0),
        }
    }

    #[test]
    fn json_steps_carry_identity_scores_and_null_where_nothing_was_scored() {
        let image = step_json(&report(StepName::Image, Some(0), Some(0.38)));
        assert_eq!(image["identityDistance"], 0.38);
        assert!(image.get("identityMedian").is_none());
        let video = step_json(&report(StepName::Video, Some(0), None));
        assert!(video["identityDistance"].is_null() && video.get("identityDistance").is_some());
        let fin = step_json(&report(StepName::Finalize, Some(0), Some(0.5)));
        assert_eq!(
            (
                fin["identityDistance"].as_f64(),
                fin["identityMedian"].as_f64()
            ),
            (Some(0.5), Some(0.25))
        );
        let assemble = step_json(&report(StepName::Assemble, None, None));
        assert!(assemble.get("identityDistance").is_none());
    }
}
