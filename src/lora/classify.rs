//! What a header says about the LoRA: family, naming convention, rank, alpha, trigger word (LORA.md §4–7).

use std::collections::BTreeMap;

use super::header::Header;

/// The classification of a LoRA header.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// `flux`, `flux2`, `sdxl`, `sd1`, `sd2` or `unknown`.
    pub family: &'static str,
    /// `diffusers`, `kohya` or `other`.
    pub convention: &'static str,
    /// A LyCORIS variant (LoHa, LoKr, …).
    pub lycoris: Option<&'static str>,
    /// Any tensor looks like a LoRA factor.
    pub is_lora: bool,
    /// Most common rank.
    pub rank: Option<u32>,
    /// Ranks differ between layers.
    pub rank_varies: bool,
    /// Alpha from metadata.
    pub alpha: Option<f64>,
    /// dtypes used.
    pub dtypes: Vec<String>,
}

fn any(h: &Header, f: impl Fn(&str) -> bool) -> bool {
    h.tensors.iter().any(|t| f(&t.name))
}

/// Input width of the first down/A factor whose name matches.
fn width_of(h: &Header, f: impl Fn(&str) -> bool) -> Option<u64> {
    h.tensors
        .iter()
        .find(|t| {
            f(&t.name)
                && (t.name.ends_with("lora_down.weight") || t.name.ends_with("lora_A.weight"))
        })
        .and_then(|t| t.shape.get(1).copied())
}

/// Classifies a parsed header.
pub fn classify(h: &Header) -> Classification {
    let lycoris = lycoris_variant(h);
    let is_lora = lycoris.is_some() || any(h, |n| n.contains("lora") || n.ends_with(".alpha"));
    let (family, convention) = family_and_convention(h);
    let convention = if lycoris.is_some() {
        "other"
    } else {
        convention
    };
    let ranks = rank_counts(h);
    let rank = ranks
        .iter()
        .max_by_key(|(r, n)| (**n, **r))
        .map(|(r, _)| *r as u32);
    let alpha = h
        .metadata
        .get("ss_network_alpha")
        .and_then(|a| a.trim().parse::<f64>().ok())
        .filter(|a| a.is_finite());
    let mut dtypes: Vec<String> = h.tensors.iter().map(|t| t.dtype.clone()).collect();
    dtypes.sort();
    dtypes.dedup();
    Classification {
        family,
        convention,
        lycoris,
        is_lora,
        rank,
        rank_varies: ranks.len() > 1,
        alpha,
        dtypes,
    }
}

/// The LyCORIS variant whose factor names appear (LoHa before LoKr), if any.
fn lycoris_variant(h: &Header) -> Option<&'static str> {
    if any(h, |n| n.contains("hada_w")) {
        Some("LoHa")
    } else if any(h, |n| n.contains("lokr_w")) {
        Some("LoKr")
    } else {
        None
    }
}

/// Family and naming convention from the layer names: Flux-like first, then SDXL, then SD 1/2.
fn family_and_convention(h: &Header) -> (&'static str, &'static str) {
    let kohya_flux = any(h, |n| {
        n.starts_with("lora_unet_double_blocks_") || n.starts_with("lora_unet_single_blocks_")
    });
    let diffusers_flux = any(h, |n| {
        n.contains("transformer.transformer_blocks.")
            || n.contains("transformer.single_transformer_blocks.")
    });
    let bfl_flux = any(h, |n| {
        n.contains("double_blocks.") || n.contains("single_blocks.")
    });
    if kohya_flux || diffusers_flux || bfl_flux {
        let conv = if kohya_flux {
            "kohya"
        } else if diffusers_flux {
            "diffusers"
        } else {
            "other"
        };
        (flux_generation(h), conv)
    } else if any(h, is_sdxl_name) {
        ("sdxl", prefix_convention(h))
    } else if any(h, is_sd_name) {
        (sd_version(h), prefix_convention(h))
    } else {
        ("unknown", "other")
    }
}

/// Layer names only SDXL LoRAs have (its UNet blocks and second text encoder).
fn is_sdxl_name(n: &str) -> bool {
    n.starts_with("lora_unet_input_blocks_")
        || n.starts_with("lora_unet_output_blocks_")
        || n.starts_with("lora_unet_middle_block_")
        || n.starts_with("lora_te2_")
        || n.starts_with("text_encoder_2.")
}

/// Layer names of SD 1.x/2.x UNet blocks.
fn is_sd_name(n: &str) -> bool {
    n.starts_with("lora_unet_down_blocks_")
        || n.starts_with("lora_unet_up_blocks_")
        || n.contains("unet.down_blocks")
}

/// `flux` when the attention width is Flux.1's 3072; Flux-like names without that width are another DiT (`flux2`).
fn flux_generation(h: &Header) -> &'static str {
    let flux1 = width_of(h, |n| {
        n.contains("attn") || n.contains("qkv") || n.contains("to_q")
    }) == Some(3072);
    if flux1 { "flux" } else { "flux2" }
}

/// `sd2` when the cross-attention key/value width is 1024 (OpenCLIP), else `sd1`.
fn sd_version(h: &Header) -> &'static str {
    let cross = width_of(h, |n| {
        n.contains("attn2") && (n.contains("to_k") || n.contains("to_v"))
    });
    if cross == Some(1024) { "sd2" } else { "sd1" }
}

/// `kohya` when any name has the `lora_` prefix, else `diffusers`.
fn prefix_convention(h: &Header) -> &'static str {
    if any(h, |n| n.starts_with("lora_")) {
        "kohya"
    } else {
        "diffusers"
    }
}

/// How many down/A factors have each rank (their first dimension).
fn rank_counts(h: &Header) -> BTreeMap<u64, usize> {
    let mut ranks: BTreeMap<u64, usize> = BTreeMap::new();
    for t in &h.tensors {
        if (t.name.ends_with("lora_down.weight") || t.name.ends_with("lora_A.weight"))
            && !t.shape.is_empty()
        {
            *ranks.entry(t.shape[0]).or_default() += 1;
        }
    }
    ranks
}

/// Metadata fields that may carry the training trigger word.
const TRIGGER_FIELDS: [&str; 6] = [
    "modelspec.trigger_phrase",
    "ss_tag_frequency",
    "ss_dataset_dirs",
    "ss_output_name",
    "modelspec.title",
    "name",
];

/// `Some(true/false)` when the metadata names training captions/concepts, `None` when it has none.
pub fn trigger_word_found(metadata: &BTreeMap<String, String>, trigger: &str) -> Option<bool> {
    let fields: Vec<&String> = TRIGGER_FIELDS
        .iter()
        .filter_map(|f| metadata.get(*f))
        .collect();
    if fields.is_empty() {
        return None;
    }
    let needle = trigger.trim().to_lowercase();
    if needle.is_empty() {
        return Some(false);
    }
    Some(fields.iter().any(|text| {
        text.to_lowercase()
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|word| word == needle)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_word_is_a_whole_word_match() {
        let mut m = BTreeMap::new();
        assert_eq!(trigger_word_found(&m, "TOK_DEVEN"), None);
        m.insert(
            "ss_tag_frequency".into(),
            r#"{"10_tok_deven man": {"tok_deven": 25, "smiling": 3}}"#.into(),
        );
        assert_eq!(trigger_word_found(&m, "TOK_DEVEN"), Some(true));
        assert_eq!(trigger_word_found(&m, "TOK_DEV"), Some(false));
    }
}
