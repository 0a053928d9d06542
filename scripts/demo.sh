#!/usr/bin/env bash
# Renders the bundled three-scene demo offline: no API keys, no network.
# Output: devatar-data/devatar-demo.mp4 (+ .srt and .vtt beside it). Extra arguments go to `devatar demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --locked
exec target/release/devatar demo "$@"
