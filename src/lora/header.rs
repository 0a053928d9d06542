//! The safetensors header: length prefix, JSON entries and their validation (LORA.md §1–2).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// Largest header accepted.
pub const MAX_HEADER_BYTES: u64 = 8 << 20;

/// One tensor entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Tensor name.
    pub name: String,
    /// dtype name, e.g. `BF16`.
    pub dtype: String,
    /// Shape.
    pub shape: Vec<u64>,
    /// Byte range in the data buffer.
    pub offsets: (u64, u64),
}

/// A parsed header.
#[derive(Debug, Clone, Default)]
pub struct Header {
    /// Tensors sorted by name.
    pub tensors: Vec<Tensor>,
    /// `__metadata__`, string → string.
    pub metadata: BTreeMap<String, String>,
    /// Sum of tensor bytes.
    pub data_bytes: u64,
}

fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "F8_E4M3" | "F8_E5M2" | "I8" | "U8" | "BOOL" => 1,
        _ => return None,
    })
}

/// The header length from the first 8 bytes, checked against the cap.
pub fn header_len(prefix: &[u8]) -> Result<u64, String> {
    let bytes: [u8; 8] = prefix
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or("truncated: fewer than 8 bytes")?;
    let n = u64::from_le_bytes(bytes);
    if n < 2 {
        return Err("not safetensors: header length below 2".into());
    }
    if n > MAX_HEADER_BYTES {
        return Err(format!(
            "header too large: {n} bytes (limit {MAX_HEADER_BYTES})"
        ));
    }
    Ok(n)
}

/// A JSON object that refuses duplicate keys.
struct UniqueMap(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for UniqueMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<UniqueMap, A::Error> {
                let mut seen = std::collections::HashSet::new();
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Value>()? {
                    if !seen.insert(k.clone()) {
                        return Err(serde::de::Error::custom(format!("duplicate key {k:?}")));
                    }
                    out.push((k, v));
                }
                Ok(UniqueMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Parses and validates the JSON header; `file_size` (when known) checks the layout against the file.
pub fn parse(json: &[u8], header_len: u64, file_size: Option<u64>) -> Result<Header, String> {
    let text = std::str::from_utf8(json).map_err(|_| "malformed header: not UTF-8".to_string())?;
    if !text.trim_start().starts_with('{') {
        return Err("not safetensors: header is not a JSON object".into());
    }
    let map: UniqueMap =
        serde_json::from_str(text.trim_end()).map_err(|e| format!("malformed header JSON: {e}"))?;
    let mut header = Header::default();
    for (name, v) in map.0 {
        if name == "__metadata__" {
            add_metadata(&v, &mut header.metadata)?;
            continue;
        }
        header.tensors.push(tensor_entry(name, &v)?);
    }
    header.data_bytes = check_layout(&header.tensors, header_len, file_size)?;
    header.tensors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(header)
}

/// Copies `__metadata__` (string values only, each cut to 65,536 characters) into `metadata`.
fn add_metadata(v: &Value, metadata: &mut BTreeMap<String, String>) -> Result<(), String> {
    let obj = v
        .as_object()
        .ok_or("malformed header: __metadata__ is not an object")?;
    for (k, v) in obj {
        let s = v
            .as_str()
            .ok_or_else(|| format!("malformed header: metadata {k:?} is not a string"))?;
        metadata.insert(k.clone(), s.chars().take(65_536).collect());
    }
    Ok(())
}

/// One tensor entry: known dtype, shape, and data offsets spanning exactly the bytes its shape needs.
fn tensor_entry(name: String, v: &Value) -> Result<Tensor, String> {
    let bad = |what: &str| format!("malformed header: tensor {name:?} {what}");
    let dtype = v["dtype"]
        .as_str()
        .ok_or_else(|| bad("has no dtype"))?
        .to_string();
    let size = dtype_size(&dtype).ok_or_else(|| bad(&format!("has unsupported dtype {dtype}")))?;
    let shape: Vec<u64> = v["shape"]
        .as_array()
        .ok_or_else(|| bad("has no shape"))?
        .iter()
        .map(|d| d.as_u64().ok_or_else(|| bad("has a bad shape")))
        .collect::<Result<_, _>>()?;
    let offs = v["data_offsets"]
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or_else(|| bad("has bad data_offsets"))?;
    let (begin, end) = (
        offs[0]
            .as_u64()
            .ok_or_else(|| bad("has bad data_offsets"))?,
        offs[1]
            .as_u64()
            .ok_or_else(|| bad("has bad data_offsets"))?,
    );
    if begin > end {
        return Err(bad("has data_offsets with begin > end"));
    }
    let expected = shape
        .iter()
        .try_fold(size, |acc, d| acc.checked_mul(*d))
        .ok_or_else(|| bad("has a shape that overflows"))?;
    if end - begin != expected {
        return Err(format!(
            "offsets inconsistent: tensor {name:?} spans {} bytes, its shape needs {expected}",
            end - begin
        ));
    }
    Ok(Tensor {
        name,
        dtype,
        shape,
        offsets: (begin, end),
    })
}

/// Checks the tensors tile the data buffer without gap or overlap and, when `file_size` is known, that the
/// file is exactly prefix + header + data; returns the data buffer's size.
fn check_layout(
    tensors: &[Tensor],
    header_len: u64,
    file_size: Option<u64>,
) -> Result<u64, String> {
    let mut ranges: Vec<(u64, u64)> = tensors.iter().map(|t| t.offsets).collect();
    ranges.sort();
    let mut pos = 0;
    for (b, e) in &ranges {
        if *b != pos {
            return Err(format!(
                "offsets inconsistent: gap or overlap at byte {pos} of the data buffer"
            ));
        }
        pos = *e;
    }
    if let Some(size) = file_size {
        // Checked: offsets near u64::MAX (a hostile header) must be refused, not overflow.
        let expected = header_len.checked_add(8).and_then(|n| n.checked_add(pos));
        if expected != Some(size) {
            let said = expected.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string());
            return Err(format!(
                "offsets inconsistent with the file size: header says {said} bytes, file has {size}"
            ));
        }
    }
    Ok(pos)
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fuzz::{json_value, target};
    use arbtest::arbitrary::{Result, Unstructured};
    use serde_json::json;

    const DTYPES: &[&str] = &["F32", "BF16", "F16", "U8", "I64", "F64", "F8_E4M3", "Q4"];

    /// A number that is often at an edge (0, 1, small, near `u64::MAX`).
    fn edgy(u: &mut Unstructured<'_>) -> Result<u64> {
        Ok(match u.int_in_range(0..=4)? {
            0 => 0,
            1 => u.int_in_range(1..=64)?,
            2 => u64::MAX - u.int_in_range(0..=16)?,
            3 => 1 << u.int_in_range(0..=63)?,
            _ => u.arbitrary()?,
        })
    }

    /// A header whose entries are mostly well-formed, so the layout checks are reached.
    fn header_json(u: &mut Unstructured<'_>) -> Result<Value> {
        let mut map = serde_json::Map::new();
        let mut pos = 0u64;
        for i in 0..u.int_in_range(0..=4)? {
            let entry = if u.ratio(1, 6)? {
                json_value(u, &["dtype", "shape", "data_offsets"], DTYPES, 2)?
            } else {
                let dtype = *u.choose(DTYPES)?;
                let shape: Vec<u64> = (0..u.int_in_range(0..=3)?)
                    .map(|_| edgy(u))
                    .collect::<Result<_>>()?;
                // Mostly offsets that tile the buffer so far, sized by the shape, so the layout checks are reached.
                let bytes = shape
                    .iter()
                    .try_fold(dtype_size(dtype).unwrap_or(1), |a, d| a.checked_mul(*d));
                let offsets = match (u.ratio(3, 4)?, bytes) {
                    (true, Some(n)) => [pos, pos.wrapping_add(n)],
                    _ => [edgy(u)?, edgy(u)?],
                };
                pos = offsets[1];
                json!({"dtype": dtype, "shape": shape, "data_offsets": offsets})
            };
            map.insert(format!("t{i}"), entry);
        }
        if u.ratio(1, 3)? {
            map.insert(
                "__metadata__".into(),
                json_value(
                    u,
                    &["ss_base_model_version", "ss_tag_frequency"],
                    &["flux"],
                    1,
                )?,
            );
        }
        Ok(Value::Object(map))
    }

    /// Any prefix and header bytes are refused with a reason or parsed into a layout that fits the file.
    #[test]
    fn fuzz_safetensors_header() {
        target("safetensors_header", |u| {
            let json = if u.ratio(3, 4)? {
                serde_json::to_vec(&header_json(u)?).unwrap_or_default()
            } else {
                u.arbitrary::<Vec<u8>>()?
            };
            let declared = if u.ratio(3, 4)? {
                json.len() as u64
            } else {
                edgy(u)?
            };
            let mut prefix = declared.to_le_bytes().to_vec();
            if u.ratio(1, 10)? {
                prefix.truncate(u.int_in_range(0..=7)?);
            }
            let Ok(len) = header_len(&prefix) else {
                return Ok(());
            };
            let file_size = match u.int_in_range(0..=2)? {
                0 => None,
                1 => Some(edgy(u)?),
                _ => Some((8 + json.len() as u64).wrapping_add(edgy(u)?)),
            };
            if let Ok(h) = parse(&json, len, file_size) {
                let end = h.tensors.iter().map(|t| t.offsets.1).max().unwrap_or(0);
                assert_eq!(h.data_bytes, end);
                if let Some(size) = file_size {
                    assert_eq!(Some(size), (8 + len).checked_add(h.data_bytes));
                }
            }
            Ok(())
        });
    }
}
