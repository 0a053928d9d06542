#!/usr/bin/env bash
# Benchmark (not a test): scenes per minute with 1, 2 and 4 `devatar worker` processes against the provider
# sandbox (realistic latencies, time-scaled), printed as speed-up ratios measured in this one run.
# The work is latency-bound (providers), so the target is near-linear speed-up until provider caps bind.
# The caps (DEVATAR_PROVIDER_LIMITS, held across the workers through the database) default to 16 per provider
# here so that they do not bind; set LIMITS=kling=2 (say) to watch them bind.
# Usage: [LIMITS=…] bash bench/workers.sh [SCENES] [TIME_SCALE]
set -euo pipefail
cd "$(dirname "$0")/.."
scenes="${1:-12}"
scale="${2:-0.02}"
bash scripts/install-deps.sh >&2
cargo build --locked >&2
bin=target/debug/devatar
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

export FAL_KEY=k ELEVENLABS_API_KEY=k KLING_ACCESS_KEY=a KLING_SECRET_KEY=s SYNCLABS_API_KEY=k
fport=$((20000 + RANDOM % 10000))
"$bin" fakes --bind "127.0.0.1:$fport" --latency realistic --time-scale "$scale" 2>"$tmp/fakes.log" &
pids+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$fport/__health" >/dev/null 2>&1 && break; sleep 0.1; done
export FAL_BASE_URL="http://127.0.0.1:$fport" ELEVENLABS_BASE_URL="http://127.0.0.1:$fport"
export KLING_BASE_URL="http://127.0.0.1:$fport" SYNCLABS_BASE_URL="http://127.0.0.1:$fport"
export DEVATAR_ALLOW_PRIVATE_URLS=1 DEVATAR_PROVIDER_TIME_SCALE="$scale" DEVATAR_ADMIN_PASSWORD=bench-password
export DEVATAR_PROVIDER_LIMITS="${LIMITS:-elevenlabs=16,fal=16,kling=16,sync=16}"
echo "limits: $DEVATAR_PROVIDER_LIMITS" >&2

declare -A rate
for workers in ${WORKER_COUNTS:-1 2 4}; do
  data="$tmp/data-$workers"
  mkdir -p "$data"
  # Each round renders the same scenes: make the sandbox forget the last round's jobs, or Kling's
  # external_task_id and Sync's Idempotency-Key would hand this round finished jobs for free.
  curl -fsS -X POST "http://127.0.0.1:$fport/__reset" >/dev/null
  port=$((30000 + RANDOM % 10000))
  "$bin" serve --bind "127.0.0.1:$port" --data "$data" --no-worker 2>"$data/serve.log" &
  pids+=($!)
  for _ in $(seq 100); do grep -q listening "$data/serve.log" 2>/dev/null && break; sleep 0.1; done
  token=$("$bin" token create --name bench --data "$data" 2>/dev/null | tail -n 1)
  started=$(date +%s.%N)
  for _ in $(seq "$workers"); do
    "$bin" worker --data "$data" --slots 1 2>>"$data/workers.log" &
    pids+=($!)
  done
  seconds=$(python3 - "$port" "$token" "$scenes" "$workers" <<'PY'
import json, sys, time, urllib.request
port, token, n, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def call(method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
call("POST", "/api/identities", {"name": "bench", "displayName": "Bench", "triggerWord": "TOK_BENCH",
                                  "voiceId": "21m00Tcm4TlvDq8ikWAM"})
p = call("POST", "/api/projects", {"name": f"bench-{workers}", "aspectRatio": "1:1"})["id"]
t0 = time.time()
runs = []
for i in range(n):
    s = call("POST", "/api/scenes", {"projectId": p, "name": f"s{i}", "environment": f"room {i}",
                                     "dialogue": ("Scene " + "word " * (i + 2)).strip()})
    runs.append(call("POST", f"/api/scenes/{s['id']}/generate", {})["runId"])
while True:
    docs = [call("GET", f"/api/runs/{r}") for r in runs]
    if all(d["status"] not in ("queued", "running") for d in docs):
        break
    time.sleep(0.2)
bad = [d.get("error") for d in docs if d["status"] != "succeeded"]
if bad:
    sys.exit(f"runs failed: {bad}")
print(f"{time.time() - t0:.2f}")
PY
)
  for p in "${pids[@]:1}"; do kill "$p" 2>/dev/null || true; done
  pids=("${pids[@]:0:1}")
  rate[$workers]=$(python3 -c "print(f'{$scenes * 60 / $seconds:.1f}')")
  echo "workers=$workers scenes=$scenes seconds=$seconds scenes_per_minute=${rate[$workers]}"
done
python3 - "${rate[1]}" "${rate[2]}" "${rate[4]}" <<'PY'
import sys
r1, r2, r4 = map(float, sys.argv[1:])
print(f"speed-up: 2 workers {r2 / r1:.2f}x, 4 workers {r4 / r1:.2f}x (linear would be 2.00x and 4.00x)")
PY
