//! `devatar identity consent NAME …` and `devatar identity train NAME …` (see `crate::training`).
//!
//! Exit codes: 0 done (the identity has its LoRA); 1 training refused (no consent, too few usable photos, the
//! price above `--max-usd`, the price declined) or failed (Fal's reason); 2 bad input (unknown identity, bad
//! settings, consent without a file or note, no `FAL_KEY`, no terminal to confirm on and no `--yes`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use serde_json::json;

use super::CliError;
use super::photos::{identity_named, open};
use crate::config::Config;
use crate::training::consent::{self, ConsentError, ConsentInput};
use crate::training::{DEFAULT_STEPS, Outcome, TrainError, TrainOptions, Trainer};

/// `devatar identity consent NAME --by PERSON [--file PATH] [--note TEXT]`.
#[derive(Args)]
pub(super) struct ConsentArgs {
    /// The identity's name.
    name: String,
    /// Who consented (the person, or who recorded it for them).
    #[arg(long)]
    by: String,
    /// A statement or recording of the consent, stored as an asset of kind `consent`.
    #[arg(long)]
    file: Option<PathBuf>,
    /// How consent was given.
    #[arg(long)]
    note: Option<String>,
    /// Data folder.
    #[arg(long, default_value = "devatar-data")]
    data: PathBuf,
}

/// `devatar identity train NAME [--steps N] [--max-usd X] [--yes] [--force]`.
#[derive(Args)]
pub(super) struct TrainArgs {
    /// The identity's name.
    name: String,
    /// Training steps.
    #[arg(long, default_value_t = DEFAULT_STEPS)]
    steps: u32,
    /// Refuse (before anything is submitted) when the estimated price is above this many USD.
    #[arg(long)]
    max_usd: Option<f64>,
    /// Confirm the price without asking.
    #[arg(long)]
    yes: bool,
    /// Train anew even when the same photos and settings were trained before.
    #[arg(long)]
    force: bool,
    /// Data folder.
    #[arg(long, default_value = "devatar-data")]
    data: PathBuf,
    /// Print one JSON document at the end.
    #[arg(long)]
    json: bool,
}

fn consent_error(e: ConsentError) -> CliError {
    match e {
        ConsentError::Invalid(m) => CliError::input(m),
        other => CliError::failed(other),
    }
}

/// Runs `identity consent`.
pub(super) async fn consent(cfg: &Config, args: ConsentArgs) -> Result<(), CliError> {
    let input = ConsentInput {
        by: args.by,
        note: args.note,
        asset_id: None,
    };
    let mut input = consent::validate(&input, args.file.is_some()).map_err(consent_error)?;
    if let Some(file) = &args.file
        && !file.is_file()
    {
        return Err(CliError::input(format!(
            "{} is not a readable file",
            file.display()
        )));
    }
    let storage = open(cfg, &args.data).await?;
    let identity = identity_named(&storage, &args.name, &args.data).await?;
    if let Some(file) = &args.file {
        input.asset_id = Some(
            consent::store_file(&storage, file)
                .await
                .map_err(consent_error)?,
        );
    }
    let record = consent::record(&storage, &identity.id, &input)
        .await
        .map_err(consent_error)?;
    let how: Vec<String> = [
        record
            .asset_id
            .as_ref()
            .map(|a| format!("file stored as asset {a}")),
        record.note.as_ref().map(|n| format!("note: {n}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    println!(
        "consent recorded for {}: by {} ({})",
        identity.identity.name,
        record.consented_by,
        how.join("; ")
    );
    Ok(())
}

fn train_error(e: TrainError) -> CliError {
    match e {
        TrainError::Invalid(_) | TrainError::NoTrainer => CliError::input(e),
        other => CliError::failed(other),
    }
}

/// Asks on the terminal whether to pay `usd`; without a terminal, `--yes` is needed.
fn confirm(name: &str, photos: usize, usd: f64) -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::input(format!(
            "training {name} costs about ${usd:.2}: confirm with --yes (no terminal to ask on)"
        )));
    }
    eprint!("Train {name}'s digital twin on {photos} photos for about ${usd:.2}? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::failed(format!("cannot read the answer: {e}")))?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CliError::failed("training declined; nothing was submitted"))
    }
}

/// Runs `identity train`.
pub(super) async fn train(cfg: &Config, args: TrainArgs) -> Result<(), CliError> {
    let opts = TrainOptions {
        steps: args.steps,
        max_usd: args.max_usd,
        force: args.force,
    };
    let storage = open(cfg, &args.data).await?;
    let identity = identity_named(&storage, &args.name, &args.data).await?;
    let name = identity.identity.name.clone();
    let trainer = Trainer::new(&storage, cfg).map_err(train_error)?;
    let plan = trainer.plan(identity, opts).await.map_err(train_error)?;
    for line in &plan.left_out {
        eprintln!("left out: {line}");
    }
    if plan.reuse.is_none() {
        eprintln!(
            "estimate: ${:.2} for {} steps on {} photos",
            plan.estimate_usd,
            plan.steps,
            plan.photos.len()
        );
        if !args.yes {
            confirm(&name, plan.photos.len(), plan.estimate_usd)?;
        }
    }
    let progress = Arc::new(|line: &str| eprintln!("training: {line}"));
    let outcome = trainer.run(&plan, progress).await.map_err(train_error)?;
    print_outcome(&args.data, &name, &outcome, args.json);
    Ok(())
}

fn print_outcome(data: &Path, name: &str, o: &Outcome, as_json: bool) {
    if as_json {
        let doc = json!({
            "identity": name,
            "trainingId": o.training_id,
            "reused": o.reused,
            "loraUrl": o.trained.lora_url,
            "loraObject": o.trained.lora_object,
            "loraAssetId": o.trained.lora_asset_id,
            "costUsd": if o.reused { 0.0 } else { o.trained.cost_usd },
            "testImage": o.trained.test_image,
            "score": o.trained.score,
            "verdict": o.verdict(),
            "lora": o.lora,
        });
        println!("{doc}");
        return;
    }
    let l = &o.lora;
    println!("LoRA: {}", o.trained.lora_url);
    println!(
        "  stored as {} in {}; {} {} rank {}, trigger word {}",
        o.trained.lora_object,
        data.display(),
        l.family,
        l.convention,
        l.rank.map_or("?".into(), |r| r.to_string()),
        match l.trigger_word_found {
            Some(true) => "found",
            Some(false) => "not found",
            None => "not named in its metadata",
        }
    );
    if o.reused {
        println!("  reused an earlier training of the same photos and settings ($0.00)");
    } else {
        println!("  cost about ${:.2}", o.trained.cost_usd);
    }
    println!("{}", o.verdict());
}
