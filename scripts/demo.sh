#!/usr/bin/env bash
# Renders the bundled three-scene demo offline: no API keys, no network.
# Output: devatar-data/devatar-demo.mp4 (+ .srt and .vtt beside it). Extra arguments go to `devatar demo`.
# Installers and the build write to stderr only, so stdout carries devatar's own output (`--json`: one document).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >&2
cargo build --release --locked >&2
exec target/release/devatar demo "$@"
