//! Builds safetensors files in code for the LoRA tests.

use serde_json::{Value, json};

/// Writes a safetensors file: 8-byte LE length, JSON header, zeroed data.
pub fn safetensors(tensors: &[(&str, &str, Vec<u64>)], metadata: Option<Value>) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0u64;
    for (name, dtype, shape) in tensors {
        let size = match *dtype {
            "F32" => 4,
            "BF16" | "F16" => 2,
            _ => 1,
        } * shape.iter().product::<u64>();
        header.insert(
            name.to_string(),
            json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}),
        );
        offset += size;
    }
    if let Some(m) = metadata {
        header.insert("__metadata__".into(), m);
    }
    let text = Value::Object(header).to_string();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.resize(out.len() + offset as usize, 0);
    out
}

/// The tensors of a kohya-convention Flux LoRA of `rank`.
pub fn kohya_flux(rank: u64) -> Vec<(&'static str, &'static str, Vec<u64>)> {
    vec![
        (
            "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight",
            "BF16",
            vec![rank, 3072],
        ),
        (
            "lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight",
            "BF16",
            vec![9216, rank],
        ),
        (
            "lora_unet_double_blocks_0_img_attn_qkv.alpha",
            "BF16",
            vec![],
        ),
        (
            "lora_unet_single_blocks_0_linear1.lora_down.weight",
            "BF16",
            vec![rank, 3072],
        ),
        (
            "lora_unet_single_blocks_0_linear1.lora_up.weight",
            "BF16",
            vec![21504, rank],
        ),
    ]
}
