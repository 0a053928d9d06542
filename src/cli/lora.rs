//! `devatar lora inspect`: the LoRA report for a URL or a local file.

use std::path::Path;

use super::CliError;
use crate::app::Storage;
use crate::config::Config;
use crate::identity_check::{VoiceDirectory, reference_photo_checks, test_identity, test_render};
use crate::lora::{InspectOptions, LoraReport, inspect_file, inspect_url};

/// Inspects `target` (URL or path); exit 1 when the report has blocking errors, 2 when it cannot be read.
pub async fn inspect(
    cfg: &Config,
    target: &str,
    trigger: Option<String>,
    base_model: &str,
    json: bool,
) -> Result<(), CliError> {
    if crate::domain::BaseModel::parse(base_model).is_none() {
        return Err(CliError::input(
            "--base-model must be flux-dev or flux-schnell",
        ));
    }
    let opts = InspectOptions {
        trigger_word: trigger,
        base_model: Some(base_model.to_string()),
    };
    let t = target.trim();
    let report: LoraReport = if t.starts_with("http://") || t.starts_with("https://") {
        inspect_url(&cfg.fetch_guard(), t, &opts)
            .await
            .map_err(CliError::input)?
    } else {
        inspect_file(Path::new(t), &opts).map_err(CliError::input)?
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print_report(&report);
    }
    if report.ok() {
        Ok(())
    } else {
        Err(CliError::failed(format!(
            "the LoRA has {} blocking problem(s)",
            report.errors.len()
        )))
    }
}

/// Prints a LoRA report for people.
fn print_report(report: &LoraReport) {
    println!(
        "family:      {} ({})",
        report.family,
        if report.compatible {
            "compatible"
        } else {
            "NOT compatible"
        }
    );
    println!("convention:  {}", report.convention);
    println!(
        "rank:        {}{}",
        report.rank.map_or("?".into(), |r| r.to_string()),
        if report.rank_varies { " (varies)" } else { "" }
    );
    println!(
        "alpha:       {}",
        report
            .alpha
            .map_or("not in metadata".into(), |a| a.to_string())
    );
    println!("dtypes:      {}", report.dtypes.join(", "));
    println!("tensors:     {}", report.tensor_count);
    println!(
        "file size:   {}",
        report
            .file_size_bytes
            .map_or("unknown".into(), |s| format!("{s} bytes"))
    );
    println!(
        "read:        {} bytes in {} request(s)",
        report.bytes_read, report.requests
    );
    println!(
        "trigger:     {}",
        match report.trigger_word_found {
            Some(true) => "found",
            Some(false) => "not found",
            None => "no training metadata",
        }
    );
    for e in &report.errors {
        println!("ERROR:   {e}");
    }
    for w in &report.warnings {
        println!("warning: {w}");
    }
}

/// `devatar identity test NAME`: runs the identity test, stores the result, exits 1 when a check fails.
pub async fn identity_test(
    cfg: &Config,
    data: &Path,
    name: &str,
    json: bool,
    render: bool,
) -> Result<(), CliError> {
    let storage = Storage::open(cfg, data).await.map_err(CliError::failed)?;
    let db = &storage.db;
    let record = super::photos::identity_named(&storage, name, data).await?;
    let mut report = test_identity(
        &record.identity,
        &cfg.fetch_guard(),
        VoiceDirectory::configured(&cfg.cloud).as_ref(),
    )
    .await;
    let photos = crate::identity_photos::Photos::new(&storage, &cfg.face);
    report.extend(reference_photo_checks(&photos, &record.identity.name, &record.id).await);
    if render {
        let work = storage.work_dir().join("identity-test");
        let image = cfg.configured_providers().image;
        test_render(
            &mut report,
            &record.identity,
            image.as_ref(),
            &storage.objects,
            &work,
        )
        .await;
        let _ = tokio::fs::remove_dir_all(&work).await;
    }
    let stored = serde_json::to_string(&report).map_err(CliError::failed)?;
    db.record_identity_test(&record.id, report.ok, &stored)
        .await
        .map_err(CliError::failed)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(CliError::failed)?
        );
    } else {
        for c in &report.checks {
            println!(
                "{} {:<14} {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        if let Some(lora) = &report.lora {
            println!();
            print_report(lora);
        }
    }
    if report.ok {
        Ok(())
    } else {
        Err(CliError::failed(format!(
            "identity {} failed {} check(s)",
            record.identity.name,
            report.checks.iter().filter(|c| !c.ok).count()
        )))
    }
}
