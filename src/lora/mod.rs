//! LoRA inspection (being written).
