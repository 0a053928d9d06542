//! Fuzzing on the stable toolchain (test builds only): property-based targets run by `arbtest`, one per parser
//! that reads outside input (the safetensors header, the project file, captions, provider responses, the
//! sandbox's fault specs). Each target is a `#[test] fn fuzz_<name>` beside the code it exercises and calls
//! [`target`].
//!
//! - A normal test run gives every target arbtest's short default budget (a fraction of a second: the short pass
//!   CI runs); `ARBTEST_BUDGET_MS` lengthens it — `bench/fuzz.sh SECONDS` runs each target that long.
//! - A failure prints arbtest's seed. `bench/fuzz.sh` appends `NAME SEED` to `fuzz/regressions.txt` (committed),
//!   and every later run replays those seeds first, so a crash once found stays a regression test.

use arbtest::arbitrary::{Result, Unstructured};
use serde_json::{Map, Value};

/// The recorded failures: `NAME SEED` per line (`#` starts a comment).
const REGRESSIONS: &str = include_str!("../fuzz/regressions.txt");

/// The seeds recorded for target `name`.
fn regressions(name: &str) -> Vec<u64> {
    REGRESSIONS
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter_map(|l| l.split_once(char::is_whitespace))
        .filter(|(n, _)| *n == name)
        .filter_map(|(_, seed)| {
            let seed = seed.trim();
            u64::from_str_radix(seed.trim_start_matches("0x"), 16).ok()
        })
        .collect()
}

/// Runs fuzz target `name`: its recorded regressions first, then fresh random inputs for the budget.
pub(crate) fn target(name: &str, mut property: impl FnMut(&mut Unstructured<'_>) -> Result<()>) {
    for seed in regressions(name) {
        arbtest::arbtest(&mut property).seed(seed).run();
    }
    arbtest::arbtest(property).run();
}

/// Text built mostly from `pieces` (tokens a parser cares about), with arbitrary characters mixed in, so random
/// inputs get past the first check often.
pub(crate) fn text_from(u: &mut Unstructured<'_>, pieces: &[&str]) -> Result<String> {
    let mut s = String::new();
    for _ in 0..u.int_in_range(0..=24)? {
        if u.ratio(4, 5)? {
            s.push_str(u.choose(pieces)?);
        } else {
            s.push(u.arbitrary()?);
        }
    }
    Ok(s)
}

/// A JSON value up to `depth` levels deep whose object keys come mostly from `keys` (the fields a decoder reads)
/// and whose strings mostly from `strings`.
pub(crate) fn json_value(
    u: &mut Unstructured<'_>,
    keys: &[&str],
    strings: &[&str],
    depth: u32,
) -> Result<Value> {
    let kind = if depth == 0 {
        u.int_in_range(0..=4)?
    } else {
        u.int_in_range(0..=6)?
    };
    Ok(match kind {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => {
            let n: f64 = u.arbitrary()?;
            serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
        }
        3 => Value::from(u.arbitrary::<i64>()?),
        4 => Value::String(if u.ratio(3, 4)? {
            (*u.choose(strings)?).to_string()
        } else {
            u.arbitrary()?
        }),
        5 => Value::Array(
            (0..u.int_in_range(0..=3)?)
                .map(|_| json_value(u, keys, strings, depth - 1))
                .collect::<Result<_>>()?,
        ),
        _ => {
            let mut map = Map::new();
            for _ in 0..u.int_in_range(0..=5)? {
                let key = if u.ratio(4, 5)? {
                    (*u.choose(keys)?).to_string()
                } else {
                    u.arbitrary()?
                };
                map.insert(key, json_value(u, keys, strings, depth - 1)?);
            }
            Value::Object(map)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_seeds_are_read_per_target() {
        assert!(regressions("no-such-target").is_empty());
        for line in REGRESSIONS.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (name, seed) = line.split_once(char::is_whitespace).expect("NAME SEED");
            assert!(
                u64::from_str_radix(seed.trim().trim_start_matches("0x"), 16).is_ok(),
                "bad seed in fuzz/regressions.txt: {line}"
            );
            assert!(!regressions(name).is_empty());
        }
    }
}
