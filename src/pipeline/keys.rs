//! Content keys: what a step's output depends on, hashed.
//!
//! A key holds the step, provider, model/parameters and the content addresses of its input artifacts —
//! never file paths, project/run ids or the output location — so equal inputs anywhere reuse one output.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Bump to invalidate every cached output when the meaning of outputs changes.
const KEY_VERSION: u32 = 1;

/// The hash of one step's inputs.
pub fn content_key(step: &str, provider: &str, params: &Value, inputs: &[&str]) -> String {
    // Canonical as a whole: object keys sorted at every level, whether or not serde_json preserves insertion
    // order (a dependency can switch that feature on, as the test build's dev-dependencies do).
    let doc = canonical(&json!({
        "v": KEY_VERSION,
        "step": step,
        "provider": provider,
        "params": params,
        "inputs": inputs,
    }));
    hex::encode(Sha256::digest(doc.to_string().as_bytes()))
}

/// Sorts object keys recursively so equal values hash equally (and serialise in one order).
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

pub use crate::domain::duration_bucket;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ignores_param_order_but_not_values_or_inputs() {
        let a = content_key(
            "AUDIO",
            "espeak-ng",
            &json!({"voice": "en-us", "rate": 165}),
            &["x"],
        );
        let b = content_key(
            "AUDIO",
            "espeak-ng",
            &json!({"rate": 165, "voice": "en-us"}),
            &["x"],
        );
        assert_eq!(a, b);
        assert_ne!(
            a,
            content_key(
                "AUDIO",
                "espeak-ng",
                &json!({"voice": "en-us", "rate": 166}),
                &["x"]
            )
        );
        assert_ne!(
            a,
            content_key(
                "AUDIO",
                "espeak-ng",
                &json!({"voice": "en-us", "rate": 165}),
                &["y"]
            )
        );
        assert_ne!(
            a,
            content_key(
                "AUDIO",
                "elevenlabs",
                &json!({"voice": "en-us", "rate": 165}),
                &["x"]
            )
        );
        assert_ne!(
            a,
            content_key(
                "IMAGE",
                "espeak-ng",
                &json!({"voice": "en-us", "rate": 165}),
                &["x"]
            )
        );
    }

    #[test]
    fn buckets_are_multiples_of_five() {
        assert_eq!(duration_bucket(0.4), 5);
        assert_eq!(duration_bucket(5.0), 5);
        assert_eq!(duration_bucket(5.01), 10);
        assert_eq!(duration_bucket(9.9), 10);
        assert_eq!(duration_bucket(23.0), 25);
    }
}
