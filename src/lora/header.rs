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
        let expected = 8 + header_len + pos;
        if expected != size {
            return Err(format!(
                "offsets inconsistent with the file size: header says {expected} bytes, file has {size}"
            ));
        }
    }
    Ok(pos)
}
