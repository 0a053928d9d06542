#!/usr/bin/env bash
# Runs the whole test suite (unit + integration, real ffmpeg/espeak-ng/SQLite), plus fmt and clippy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
