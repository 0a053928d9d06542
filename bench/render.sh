#!/usr/bin/env bash
# Benchmark (not a test): offline demo render speed, measured in one run on this machine.
# Prints: render wall time / output media duration (target on 2 cores: <= 0.35), and the
# cached re-render time as a fraction of the first render.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --locked >&2
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
bin=target/release/devatar

t0=$(date +%s.%N)
$bin demo --data "$data" --out "$data/demo.mp4" --json > "$data/first.json" 2>/dev/null
t1=$(date +%s.%N)
$bin demo --data "$data" --out "$data/demo.mp4" --json > "$data/second.json" 2>/dev/null
t2=$(date +%s.%N)

python3 - "$data" "$t0" "$t1" "$t2" <<'PY'
import json, sys
data, t0, t1, t2 = sys.argv[1], *map(float, sys.argv[2:])
first = json.load(open(f"{data}/first.json"))
media = first["durationSeconds"]
wall, cached = t1 - t0, t2 - t1
print(f"output media duration     {media:7.2f} s")
print(f"first render wall time    {wall:7.2f} s")
print(f"render wall / media       {wall / media:7.3f}   (target <= 0.35)")
print(f"cached re-render          {cached:7.2f} s = {cached / wall:.3f} of the first render (target < 0.2)")
steps = [(s["name"], t["step"], t["ms"]) for s in first["scenes"] for t in s["steps"]] + [("project", t["step"], t["ms"]) for t in first["steps"]]
for name, step, ms in steps:
    print(f"  {name:<14} {step:<9} {ms:>6} ms")
PY
