//! `devatar face inspect|compare`: the face engine on photos (see `crate::face`).
//!
//! Exit codes: 0 done (inspect: any number of faces; compare: one face in each photo, whatever the verdict), 1 compare
//! found no face or several in a photo, 2 a photo cannot be read or decoded, 3 the face models are missing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Subcommand;
use serde_json::{Value, json};

use super::CliError;
use crate::config::Config;
use crate::face::{self, FaceEngine, FaceError, Photo, PhotoFaces, Verdict};

/// `devatar face …`.
#[derive(Subcommand)]
pub(super) enum FaceCommand {
    /// Detect faces: box, 5 landmarks, sharpness and head pose of every face in each photo (PNG or JPEG).
    Inspect {
        /// The photos.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
        /// Benchmark: analyse each photo this many more times and print the timings to stderr.
        #[arg(long, hide = true, value_name = "N")]
        bench_runs: Option<u32>,
    },
    /// Compare the faces of two photos (each must show exactly one): distance and same-person verdict.
    Compare {
        /// The first photo.
        a: PathBuf,
        /// The second photo.
        b: PathBuf,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `face` command.
pub(super) async fn run(cfg: &Config, command: FaceCommand) -> Result<(), CliError> {
    match command {
        FaceCommand::Inspect {
            images,
            json,
            bench_runs,
        } => inspect(cfg, images, json, bench_runs).await,
        FaceCommand::Compare { a, b, json } => compare(cfg, a, b, json).await,
    }
}

/// The exit code of a face error: 3 for the installation, 2 for a photo, 1 otherwise.
fn cli_error(e: FaceError) -> CliError {
    match e {
        FaceError::ModelsMissing { .. } | FaceError::ModelLoad { .. } => {
            CliError::missing_tool(e.to_string())
        }
        FaceError::Unreadable { .. } | FaceError::Undecodable { .. } => {
            CliError::input(e.to_string())
        }
        FaceError::Task(_) => CliError::failed(e.to_string()),
    }
}

/// Decodes every photo (bad input is reported before the models are loaded), then loads the engine.
async fn open_all(
    cfg: &Config,
    paths: Vec<PathBuf>,
) -> Result<(Vec<Photo>, Arc<FaceEngine>), CliError> {
    let mut photos = Vec::with_capacity(paths.len());
    for path in paths {
        photos.push(face::open_photo(path).await.map_err(cli_error)?);
    }
    let engine = face::load_engine(&cfg.face).await.map_err(cli_error)?;
    Ok((photos, engine))
}

async fn inspect(
    cfg: &Config,
    images: Vec<PathBuf>,
    json: bool,
    bench_runs: Option<u32>,
) -> Result<(), CliError> {
    let started = Instant::now();
    let (photos, engine) = open_all(cfg, images).await?;
    let ready = started.elapsed();
    let mut reports = Vec::with_capacity(photos.len());
    for photo in photos {
        if let Some(runs) = bench_runs {
            bench(Arc::clone(&engine), photo.clone(), runs, ready).await?;
        }
        reports.push(
            face::analyse(Arc::clone(&engine), photo)
                .await
                .map_err(cli_error)?,
        );
    }
    if json {
        let images: Vec<Value> = reports.iter().map(photo_json).collect();
        println!("{}", json!({ "images": images }));
    } else {
        for report in &reports {
            print_photo(report);
        }
    }
    Ok(())
}

async fn compare(cfg: &Config, a: PathBuf, b: PathBuf, json: bool) -> Result<(), CliError> {
    let (mut photos, engine) = open_all(cfg, vec![a, b]).await?;
    let (Some(photo_b), Some(photo_a)) = (photos.pop(), photos.pop()) else {
        return Err(CliError::failed("compare needs two photos"));
    };
    let fa = face::analyse(Arc::clone(&engine), photo_a)
        .await
        .map_err(cli_error)?;
    let fb = face::analyse(engine, photo_b).await.map_err(cli_error)?;
    let (ea, eb) = match (fa.faces.as_slice(), fb.faces.as_slice()) {
        ([one_a], [one_b]) => (&one_a.embedding, &one_b.embedding),
        _ => {
            let message = format!(
                "compare needs exactly one face in each photo: {} shows {}, {} shows {}",
                fa.path.display(),
                faces_text(fa.faces.len()),
                fb.path.display(),
                faces_text(fb.faces.len()),
            );
            if json {
                println!(
                    "{}",
                    json!({ "error": message, "faces": [fa.faces.len(), fb.faces.len()] })
                );
            }
            return Err(CliError::failed(message));
        }
    };
    let verdict = Verdict::new(ea, eb, cfg.face.threshold);
    if json {
        println!(
            "{}",
            json!({
                "distance": round(verdict.distance, 4),
                "samePerson": verdict.same_person,
                "threshold": verdict.threshold,
            })
        );
    } else {
        println!(
            "{}: distance {:.3} (threshold {})",
            if verdict.same_person {
                "same person"
            } else {
                "different people"
            },
            verdict.distance,
            verdict.threshold
        );
    }
    Ok(())
}

/// Times the analysis of one photo (after the models are loaded) and prints it to stderr.
async fn bench(
    engine: Arc<FaceEngine>,
    photo: Photo,
    runs: u32,
    ready: std::time::Duration,
) -> Result<(), CliError> {
    let (w, h) = (photo.width(), photo.height());
    let path = photo.path.display().to_string();
    let times = tokio::task::spawn_blocking(move || {
        engine.analyse(&photo.rgb); // warm-up
        (0..runs.max(1))
            .map(|_| {
                let t = Instant::now();
                engine.analyse(&photo.rgb);
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect::<Vec<f64>>()
    })
    .await
    .map_err(|e| CliError::failed(format!("benchmark task failed: {e}")))?;
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    eprintln!(
        "face-bench {path} {w}x{h}: detect+landmarks+embed mean {mean:.1} ms, min {min:.1} ms over {} runs \
         (decode + model load before: {:.0} ms)",
        times.len(),
        ready.as_secs_f64() * 1000.0
    );
    Ok(())
}

fn faces_text(n: usize) -> String {
    match n {
        0 => "no face".into(),
        1 => "one face".into(),
        n => format!("{n} faces"),
    }
}

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

fn photo_json(p: &PhotoFaces) -> Value {
    let faces: Vec<Value> = p
        .faces
        .iter()
        .map(|f| {
            json!({
                "box": f.bbox,
                "landmarks": f.landmarks.iter().map(|&(x, y)| [x, y]).collect::<Vec<_>>(),
                "sharpness": round(f.sharpness, 1),
                "yaw": f.pose.map(|p| round(p.yaw, 1)),
                "pitch": f.pose.map(|p| round(p.pitch, 1)),
            })
        })
        .collect();
    json!({
        "path": p.path.display().to_string(),
        "width": p.width,
        "height": p.height,
        "faces": faces,
    })
}

fn print_photo(p: &PhotoFaces) {
    println!(
        "{} ({}×{}): {}",
        p.path.display(),
        p.width,
        p.height,
        faces_text(p.faces.len())
    );
    for (i, f) in p.faces.iter().enumerate() {
        let pose = f.pose.map_or_else(
            || "pose unknown".to_string(),
            |p| format!("yaw {:+.0}°, pitch {:+.0}°", p.yaw, p.pitch),
        );
        println!(
            "  face {}: {}×{} at ({}, {}), sharpness {:.0}, {pose}",
            i + 1,
            f.bbox.w,
            f.bbox.h,
            f.bbox.x,
            f.bbox.y,
            f.sharpness
        );
    }
}
