#!/usr/bin/env bash
# Benchmark (not a test): how close a 12-scene cloud render comes to its critical-path bound.
# The provider sandbox runs with realistic latencies × TIME_SCALE; the bound is computed from the latencies it
# reports (GET /__latency) and the provider concurrency caps (DEVATAR_PROVIDER_LIMITS):
#   bound = max( longest scene chain max(speech, still) + video + lip-sync,
#                for each provider: shortest work before it + its jobs' total time / its cap + shortest work after )
# Prints makespan / bound for the normal (parallel) render — goal <= 1.03 at time scale 0.25, <= 1.06 at 0.1 — and for a strictly sequential
# baseline (`render --max-parallel-steps 1`), both measured in this one run.
# The release build is measured; the render listens for the sandbox's job webhooks (DEVATAR_CALLBACK_LISTEN), so a
# finished provider job is seen at once rather than at the next poll (HOOKS=0 renders with polling alone).
# Usage: bash bench/makespan.sh [SCENES] [TIME_SCALE] [LIMITS]
set -euo pipefail
cd "$(dirname "$0")/.."
scenes="${1:-12}"
scale="${2:-0.1}"
limits="${3:-fal=4,kling=4,sync=4,elevenlabs=4}"
bash scripts/install-deps.sh >&2
cargo build --release --locked >&2
bin=$PWD/target/release/devatar
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -n "${KEEP:-}" ] || rm -rf "$tmp"; }
trap cleanup EXIT

export FAL_KEY=k ELEVENLABS_API_KEY=k KLING_ACCESS_KEY=a KLING_SECRET_KEY=s SYNCLABS_API_KEY=k
export ELEVENLABS_VOICE_ID=21m00Tcm4TlvDq8ikWAM
fport=$((20000 + RANDOM % 10000))
"$bin" fakes --bind "127.0.0.1:$fport" --latency realistic --time-scale "$scale" 2>"$tmp/fakes.log" &
pids+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$fport/__health" >/dev/null 2>&1 && break; sleep 0.1; done
export FAL_BASE_URL="http://127.0.0.1:$fport" ELEVENLABS_BASE_URL="http://127.0.0.1:$fport"
export KLING_BASE_URL="http://127.0.0.1:$fport" SYNCLABS_BASE_URL="http://127.0.0.1:$fport"
export DEVATAR_ALLOW_PRIVATE_URLS=1 DEVATAR_PROVIDER_TIME_SCALE="$scale" DEVATAR_PROVIDER_LIMITS="$limits"
if [ "${HOOKS:-1}" != 0 ]; then export DEVATAR_CALLBACK_LISTEN=127.0.0.1:0; fi

python3 - "$tmp/project.toml" "$scenes" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
out = ['[project]\nname = "Makespan"\naspect_ratio = "16:9"\n',
       '[[identities]]\nname = "bench"\ndisplay_name = "Bench"\ntrigger_word = "TOK_BENCH"\n']
for i in range(n):
    # Short lines (one 5-second clip each); every scene differs, so nothing is shared through the cache.
    out.append(f'[[scenes]]\nname = "s{i:02}"\ndialogue = "Scene {i} of the makespan benchmark."\n'
               f'environment = "room {i}"\ncamera = "medium shot"\n')
open(path, "w").write("\n".join(out))
PY
curl -fsS "http://127.0.0.1:$fport/__latency" > "$tmp/latency.json"

render() { # name, extra args…
  local name=$1; shift
  local t0 t1
  # Forget the sandbox's jobs: Kling's external_task_id and Sync's Idempotency-Key would otherwise hand the
  # second render the first one's finished jobs.
  curl -fsS -X POST "http://127.0.0.1:$fport/__reset" >/dev/null
  t0=$(date +%s.%N)
  "$bin" render "$tmp/project.toml" --data "$tmp/data-$name" --providers cloud --json "$@" \
    > "$tmp/$name.json" 2> "$tmp/$name.log" || { tail -n 20 "$tmp/$name.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  python3 -c "print($t1 - $t0)" > "$tmp/$name.wall"
  curl -fsS "http://127.0.0.1:$fport/__stats" > "$tmp/$name.stats"
}
render parallel
# SEQUENTIAL=0 skips the (slow) baseline, e.g. to try larger time scales.
if [ "${SEQUENTIAL:-1}" != 0 ]; then render sequential --max-parallel-steps 1; fi

python3 - "$tmp" "$limits" "$scale" <<'PY'
import json, sys
tmp, limits, scale = sys.argv[1], sys.argv[2], float(sys.argv[3])
lat = json.load(open(f"{tmp}/latency.json"))
caps = dict(part.split("=") for part in limits.split(","))
caps = {k: int(v) for k, v in caps.items()}

def makespan(doc):
    steps = doc["steps"] + [t for s in doc["scenes"] for t in s["steps"]]
    return (max(t["finishedAt"] for t in steps) - min(t["startedAt"] for t in steps)) / 1000

import os
par = json.load(open(f"{tmp}/parallel.json"))
seq = json.load(open(f"{tmp}/sequential.json")) if os.path.exists(f"{tmp}/sequential.json") else None
for doc in [d for d in (par, seq) if d]:
    providers = {t["step"]: t["provider"] for s in doc["scenes"] for t in s["steps"]}
    assert providers == {"AUDIO": "elevenlabs", "IMAGE": "fal-ai/flux-lora", "VIDEO": "kling",
                         "LIPSYNC": "synclabs", "FINALIZE": "ffmpeg"}, providers
    cached = [(s["name"], t["step"]) for s in doc["scenes"] for t in s["steps"] if t["cached"]]
    assert not cached, f"served from the cache: {cached}"

# Per scene: speech (by its characters), still, clip (5 or 10 s by the speech), lip-sync.
import re
toml = open(f"{tmp}/project.toml").read()
dialogues = re.findall(r'dialogue = "(.*)"', toml)
jobs = []
for s, text in zip(par["scenes"], dialogues):
    speech = lat["ttsBase"] + lat["ttsPerChar"] * len(text)
    clip = lat["klingVideo5s"] if s["speechSeconds"] <= 5 else lat["klingVideo10s"]
    jobs.append({"elevenlabs": speech, "fal": lat["falImage"], "kling": clip, "sync": lat["syncLipSync2"]})
head = [max(j["elevenlabs"], j["fal"]) for j in jobs]
chain = max(h + j["kling"] + j["sync"] for h, j in zip(head, jobs))
bounds = {"chain": chain}
bounds["elevenlabs"] = sum(j["elevenlabs"] for j in jobs) / caps["elevenlabs"] + min(j["kling"] + j["sync"] for j in jobs)
bounds["fal"] = sum(j["fal"] for j in jobs) / caps["fal"] + min(j["kling"] + j["sync"] for j in jobs)
bounds["kling"] = min(head) + sum(j["kling"] for j in jobs) / caps["kling"] + min(j["sync"] for j in jobs)
bounds["sync"] = min(h + j["kling"] for h, j in zip(head, jobs)) + sum(j["sync"] for j in jobs) / caps["sync"]
bound = max(bounds.values())
binding = max(bounds, key=bounds.get)

p = makespan(par)
pw = float(open(f"{tmp}/parallel.wall").read())
print(f"scenes={len(jobs)} time_scale={scale} limits={limits}")
print("bounds (s): " + ", ".join(f"{k} {v:.1f}" for k, v in bounds.items()) + f"  -> {bound:.1f} ({binding})")
print(f"parallel   makespan {p:7.1f} s (process wall {pw:7.1f} s)  makespan / bound = {p / bound:.3f}  (goal <= 1.03 at time scale 0.25, <= 1.06 at 0.1)")
# What the bound leaves out: local ffmpeg work after the last provider job (the last FINALIZE and ASSEMBLE).
steps = par["steps"] + [t for s in par["scenes"] for t in s["steps"]]
last_paid = max(t["finishedAt"] for t in steps if t["step"] in ("VIDEO", "LIPSYNC"))
tail = (max(t["finishedAt"] for t in steps) - last_paid) / 1000
print(f"           of which local work after the last provider job: {tail:.1f} s")
stats = json.load(open(f"{tmp}/parallel.stats"))
print(f"           provider part (to the last provider job's end) / bound = {(p - tail) / bound:.3f}; "
      f"job webhooks that woke a poller: {stats.get('webhooks.sent', 0)} "
      f"(late or refused: {stats.get('webhooks.failed', 0) + stats.get('webhooks.refused', 0)})")
if seq:
    q = makespan(seq)
    qw = float(open(f"{tmp}/sequential.wall").read())
    print(f"sequential makespan {q:7.1f} s (process wall {qw:7.1f} s)  makespan / bound = {q / bound:.3f}")
    print(f"parallel speed-up over sequential: {q / p:.2f}x")
PY
