//! `devatar estimate FILE`: price a project file before rendering it.

use std::path::Path;

use super::CliError;
use crate::config::Config;
use crate::costs::{Route, estimate};
use crate::project_file::ProjectFile;

/// Prints the estimate for `file` (a table, or JSON with `json`).
pub fn run(cfg: &Config, file: &Path, providers: &str, json: bool) -> Result<(), CliError> {
    let route = match providers {
        "local" => Route::Local,
        "cloud" => Route::Cloud,
        "auto" => {
            if cfg.cloud_configured() {
                Route::Cloud
            } else {
                Route::Local
            }
        }
        other => {
            return Err(CliError::input(format!(
                "--providers must be local, cloud or auto (got {other:?})"
            )));
        }
    };
    let prices = &cfg.cloud.prices;
    let parsed = ProjectFile::load(file).map_err(CliError::input)?;
    let scenes: Vec<_> = parsed.scenes.iter().map(|s| s.scene.clone()).collect();
    let est = estimate(prices, &parsed.project, &scenes, route);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&est).map_err(CliError::failed)?
        );
        return Ok(());
    }
    println!(
        "{:<24} {:>7} {:>6} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "scene", "speech", "clip", "AUDIO", "IMAGE", "VIDEO", "LIPSYNC", "total"
    );
    for s in &est.scenes {
        let usd = |step: &str| {
            s.steps
                .iter()
                .find(|x| x.step == step)
                .map_or(0.0, |x| x.usd)
        };
        println!(
            "{:<24} {:>6.1}s {:>5}s {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>9.3}",
            s.name.chars().take(24).collect::<String>(),
            s.speech_seconds,
            s.video_seconds,
            usd("AUDIO"),
            usd("IMAGE"),
            usd("VIDEO"),
            usd("LIPSYNC"),
            s.usd
        );
    }
    println!(
        "total: ${:.2} ({} providers; prices are estimates, see DEVATAR_PRICES)",
        est.total_usd,
        match route {
            Route::Local => "local",
            Route::Cloud => "cloud",
        }
    );
    if let Some(budget) = parsed.project.budget_usd
        && est.total_usd > budget
    {
        println!("warning: the estimate exceeds the project budget of ${budget:.2}");
    }
    Ok(())
}
