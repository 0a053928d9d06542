//! Fake `fal-ai/flux-lora-fast-training` (PROVIDERS.md §2.8) on the Fal queue: the body is validated like Fal's
//! (`images_data_url` required; `trigger_word`, `steps`, `create_masks`, `is_style`,
//! `is_input_format_already_preprocessed`, `data_archive_format`; anything else 422). The job takes the
//! `falTraining` latency (scaled like every fake), its status logs tell the training's progress (`Preparing
//! dataset`, `Training step N/STEPS`, `Saving LoRA weights`), and at the end it fetches the zip (from the fake
//! storage or any URL) and trains: a broken zip or fewer than 4 images fail the request (its result answers 422
//! with Fal's reason), as does the job fate `training_failed`. A trained LoRA is a small but valid Flux LoRA
//! (real safetensors header, diffusers naming, the trigger word in `__metadata__`), served from the fake storage
//! (`/__fal-files/…`, so Flux counts it as `fal.lora.storage`), and stands for the person of its training photos:
//! the fake Flux answers a request with that LoRA with one of them (by URL and by content hash).

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::faces::{LoraFace, sha256_hex};
use super::jobs::{InputFailure, InputRef, OutputSpec, Produced};
use super::server::{Shared, lock};
use super::util::{Checker, UrlRules, loc};
use crate::training::zip;

/// The input fields Fal's schema has.
const FIELDS: &[&str] = &[
    "images_data_url",
    "trigger_word",
    "steps",
    "create_masks",
    "is_style",
    "is_input_format_already_preprocessed",
    "data_archive_format",
];

/// The fewest images the fake trains on.
const MIN_IMAGES: usize = 4;

/// Fal's default training steps.
const DEFAULT_STEPS: i64 = 1000;

/// Validates a training body: the output recipe, or the problems.
pub(crate) fn spec(map: &Map<String, Value>, rules: UrlRules) -> Result<OutputSpec, Checker> {
    let mut c = Checker::default();
    let base = loc(&["body"]);
    c.unknown_fields(map, &base, FIELDS);
    let url = c
        .url(map, &base, "images_data_url", true, rules)
        .map(String::from);
    let trigger = c
        .string(map, &base, "trigger_word", false)
        .unwrap_or("TOK")
        .to_string();
    let steps = c
        .integer(map, &base, "steps", 1, 10_000)
        .unwrap_or(DEFAULT_STEPS);
    for flag in [
        "create_masks",
        "is_style",
        "is_input_format_already_preprocessed",
    ] {
        c.boolean(map, &base, flag);
    }
    c.string(map, &base, "data_archive_format", false);
    match (c.ok(), url) {
        (true, Some(url)) => Ok(OutputSpec::Training {
            zip: InputRef::Url(url),
            trigger,
            steps: steps as u32,
        }),
        _ => Err(c),
    }
}

/// The status logs of a training that has run `fraction` (0–1) of its time.
pub(crate) fn log_lines(fraction: f64, steps: u32, now: &str) -> Value {
    let line =
        |m: String| json!({"message": m, "level": "INFO", "source": "user", "timestamp": now});
    let mut lines = vec![line("Preparing dataset: captions and face masks".into())];
    let done = (fraction.clamp(0.0, 1.0) * f64::from(steps)) as u32;
    for quarter in 1..=4u32 {
        let step = steps * quarter / 4;
        if done >= step && step > 0 {
            lines.push(line(format!("Training step {step}/{steps}")));
        }
    }
    if done >= steps {
        lines.push(line("Saving LoRA weights".into()));
    }
    Value::Array(lines)
}

fn fail(reason: String) -> InputFailure {
    InputFailure {
        field: "images_data_url",
        reason: format!("Training failed: {reason}"),
    }
}

/// Trains on the zip at `zip`: the LoRA stored in the fake storage (its token path as the output name) and
/// mapped to the person of the photos.
pub(crate) async fn produce(
    shared: &Shared,
    zip_ref: &InputRef,
    trigger: &str,
    steps: u32,
) -> Result<Produced, InputFailure> {
    let bytes = match zip_ref {
        InputRef::Url(url) => super::media::fetch_capped(&shared.http, url)
            .await
            .ok_or_else(|| fail("could not download images_data_url".into()))?,
        InputRef::Bytes(b) => b.clone(),
    };
    let entries = zip::read_stored(&bytes).map_err(|e| fail(format!("the zip is broken: {e}")))?;
    let images: Vec<(String, Vec<u8>)> = entries
        .into_iter()
        .filter(|(name, _)| {
            let n = name.to_ascii_lowercase();
            n.ends_with(".jpg") || n.ends_with(".jpeg") || n.ends_with(".png")
        })
        .collect();
    if images.len() < MIN_IMAGES {
        return Err(fail(format!(
            "at least {MIN_IMAGES} images are needed, the zip holds {}",
            images.len()
        )));
    }
    let set_hash = hex::encode(Sha256::digest(&bytes));
    let lora = flux_lora(trigger, steps, &set_hash);
    let lora_sha = sha256_hex(&lora);
    let size = lora.len() as u64;
    let name = lock(&shared.fal_files).insert_ready(
        "pytorch_lora_weights.safetensors",
        "application/octet-stream",
        lora.into(),
    );
    let url = format!("{}/__fal-files/{name}", base_of(shared));
    learn_face(shared, &url, &lora_sha, images).await?;
    shared.count("fal.training.trained");
    Ok(Produced {
        name,
        duration: None,
        w: 0,
        h: 0,
        content_type: "application/octet-stream",
        size,
    })
}

/// Maps the LoRA (by URL and content hash) to the training photos.
async fn learn_face(
    shared: &Shared,
    url: &str,
    sha: &str,
    images: Vec<(String, Vec<u8>)>,
) -> Result<(), InputFailure> {
    let dir = tempfile::tempdir().map_err(|e| fail(e.to_string()))?;
    let mut paths = Vec::with_capacity(images.len());
    for (name, bytes) in images {
        let plain: String = name
            .rsplit('/')
            .next()
            .unwrap_or("photo.jpg")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .collect();
        let path = dir.path().join(format!("{}-{plain}", paths.len()));
        std::fs::write(&path, bytes).map_err(|e| fail(e.to_string()))?;
        paths.push(path);
    }
    let loras = vec![LoraFace::new(url, paths.clone()), LoraFace::new(sha, paths)];
    shared
        .set_faces(loras, Vec::new(), true)
        .await
        .map_err(|e| fail(format!("an image could not be read: {e}")))
}

/// The sandbox's own address, as the URLs of trained LoRAs name it.
fn base_of(shared: &Shared) -> String {
    format!("http://{}", shared.addr)
}

/// The result body: the LoRA file and its training config, as Fal answers them.
pub(crate) fn result_body(shared: &Shared, produced: &Produced) -> Value {
    let url = format!("{}/__fal-files/{}", base_of(shared), produced.name);
    json!({
        "diffusers_lora_file": {
            "url": url,
            "content_type": produced.content_type,
            "file_name": "pytorch_lora_weights.safetensors",
            "file_size": produced.size,
        },
        "config_file": {
            "url": format!("{url}.config.json"),
            "content_type": "application/octet-stream",
            "file_name": "config.json",
        },
    })
}

/// A small Flux LoRA in diffusers naming (rank 4, zero BF16 weights on two double and one single block), with
/// the trigger word, the steps and the training set's hash in its metadata.
pub(crate) fn flux_lora(trigger: &str, steps: u32, set_hash: &str) -> Vec<u8> {
    const RANK: u64 = 4;
    let mut tensors: Vec<(String, Vec<u64>)> = Vec::new();
    for block in [
        "transformer.transformer_blocks.0",
        "transformer.transformer_blocks.1",
    ] {
        for proj in ["to_q", "to_k", "to_v"] {
            let at = format!("{block}.attn.{proj}");
            tensors.push((format!("{at}.lora_A.weight"), vec![RANK, 3072]));
            tensors.push((format!("{at}.lora_B.weight"), vec![3072, RANK]));
        }
    }
    let single = "transformer.single_transformer_blocks.0.attn.to_q";
    tensors.push((format!("{single}.lora_A.weight"), vec![RANK, 3072]));
    tensors.push((format!("{single}.lora_B.weight"), vec![3072, RANK]));
    let mut header = Map::new();
    let mut offset = 0u64;
    for (name, shape) in &tensors {
        let size = 2 * shape.iter().product::<u64>();
        header.insert(
            name.clone(),
            json!({"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}),
        );
        offset += size;
    }
    header.insert(
        "__metadata__".into(),
        json!({
            "format": "pt",
            "modelspec.trigger_phrase": trigger,
            "name": format!("{trigger} flux-lora-fast-training"),
            "training_steps": steps.to_string(),
            "training_set_sha256": set_hash,
            "base_model": "flux-dev",
        }),
    );
    let text = Value::Object(header).to_string();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.resize(out.len() + offset as usize, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trained_lora_is_a_flux_lora_in_diffusers_naming_with_the_trigger_word() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.safetensors");
        std::fs::write(&path, flux_lora("TOK_EILEEN", 1000, "ab")).unwrap();
        let opts = crate::lora::InspectOptions {
            trigger_word: Some("TOK_EILEEN".into()),
            base_model: Some("flux-dev".into()),
        };
        let report = crate::lora::inspect_file(&path, &opts).unwrap();
        assert!(report.ok(), "{report:?}");
        assert_eq!(
            (report.family.as_str(), report.convention.as_str()),
            ("flux", "diffusers")
        );
        assert_eq!(report.rank, Some(4));
        assert_eq!(report.trigger_word_found, Some(true));
    }

    #[test]
    fn logs_follow_the_training() {
        let early = log_lines(0.1, 1000, "t");
        assert_eq!(early.as_array().unwrap().len(), 1);
        let done = log_lines(1.0, 1000, "t");
        let text = done.to_string();
        assert!(text.contains("Training step 1000/1000") && text.contains("Saving LoRA weights"));
    }
}
