#!/usr/bin/env bash
# Prints the time the face engine takes to score one 1280×720 still (HOG detection + 5 landmarks + 128-d embedding,
# plus sharpness and pose), release build, averaged over RUNS runs after a warm-up; model loading and decoding are
# timed separately. Goal: ≤ 150 ms on the 2-core development machine.
# Usage: bench/face.sh [RUNS]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-10}"
bash scripts/install-deps.sh --test >&2
cargo build --release --locked >&2
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# A 1280×720 frame with the astronaut's portrait in it (the face about 200 px wide, as in a talking-head shot).
ffmpeg -v error -y -i /usr/local/share/devatar/test-photos/astronaut.png \
  -vf "scale=-2:720,pad=1280:720:(ow-iw)/2:0:color=gray" "$tmp/still.png"
target/release/devatar face inspect --bench-runs "$RUNS" "$tmp/still.png" 2>&1 >/dev/null | grep '^face-bench'
