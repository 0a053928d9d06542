#!/usr/bin/env bash
# Benchmark (not a test): API latency at a fixed request rate, on SQLite and on PostgreSQL.
#
# For each backend: `devatar serve` (release build) with 10,000 scenes, then
#   - the scene list (a page of 50 from the middle) and a write route (POST /api/scenes) driven OPEN LOOP at
#     RATE req/s for SECONDS s by bench/openloop.py (request i is due at i/RATE whatever the earlier answers did;
#     latency counts from the due time) → p50 / p99 / p99.9;
#   - the scene list's saturation throughput, closed loop (wrk, 8 connections, 10 s);
#   - the server's RSS idle and after the load.
# Goal: p99 <= 10 ms at 500 req/s on SQLite.
# Usage: bench/api.sh [RATE] [SECONDS] [BACKENDS]   (defaults 500 10 "sqlite postgres"; PostgreSQL needs
# DEVATAR_BENCH_DATABASE_URL or DEVATAR_TEST_DATABASE_URL, a server URL whose user may create databases)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-500}"
SECONDS_PER_RUN="${2:-10}"
BACKENDS="${3:-sqlite postgres}"
PG_URL="${DEVATAR_BENCH_DATABASE_URL:-${DEVATAR_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}"
bash scripts/install-deps.sh >&2
command -v wrk >/dev/null 2>&1 || { sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo; $sudo apt-get install -y -qq wrk >&2; }
cargo build --release --locked >&2

# seed PORT TOKEN: creates an identity, a project with 10,000 scenes and an empty project for writes; prints
# "LIST_PROJECT WRITE_PROJECT".
seed() {
  python3 - "$1" "$2" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
port, token = sys.argv[1], sys.argv[2]
def call(method, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
call("POST", "/api/identities", {"name": "bench", "displayName": "Bench", "triggerWord": "TOK_BENCH"})
p = call("POST", "/api/projects", {"name": "bench"})["id"]
w = call("POST", "/api/projects", {"name": "bench-writes"})["id"]
with ThreadPoolExecutor(8) as pool:
    list(pool.map(lambda i: call("POST", "/api/scenes", {"projectId": p, "name": f"s{i}", "dialogue": f"Scene {i}."}), range(10000)))
print(p, w)
PY
}

# run_backend NAME DATABASE_URL_OR_EMPTY
run_backend() {
  local name="$1" url="$2" data port server token rss_idle rss_after ids list write
  data=$(mktemp -d)
  port=$((20000 + RANDOM % 20000))
  if [ -n "$url" ]; then export DATABASE_URL="$url"; else unset DATABASE_URL; fi
  DEVATAR_ADMIN_PASSWORD=bench-password target/release/devatar serve --bind "127.0.0.1:$port" --data "$data" \
    2>"$data/server.log" &
  server=$!
  for _ in $(seq 100); do grep -q listening "$data/server.log" 2>/dev/null && break; sleep 0.1; done
  token=$(target/release/devatar token create --name bench --data "$data" 2>/dev/null | tail -n 1)
  ids=$(seed "$port" "$token")
  list="http://127.0.0.1:$port/api/scenes?project=${ids% *}&limit=50&cursor=5000"
  write="http://127.0.0.1:$port/api/scenes"
  items=$(curl -s -H "Authorization: Bearer $token" "$list" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["items"]))')
  [ "$items" = 50 ] || { echo "expected a page of 50 scenes, got $items" >&2; kill "$server"; exit 1; }
  rss_idle=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
  local read_json write_json sat
  read_json=$(python3 bench/openloop.py "$list" "$RATE" "$SECONDS_PER_RUN" --header "Authorization: Bearer $token")
  write_json=$(python3 bench/openloop.py "$write" "$RATE" "$SECONDS_PER_RUN" --method POST \
    --header "Authorization: Bearer $token" --body "{\"projectId\": \"${ids#* }\", \"name\": \"w{i}\", \"dialogue\": \"Write {i}.\"}")
  sat=$(wrk -t2 -c8 -d10s -H "Authorization: Bearer $token" "$list" | awk '/Requests\/sec/ {print $2}')
  rss_after=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
  kill "$server"; wait "$server" 2>/dev/null || true
  rm -rf "$data"
  python3 - "$name" "$RATE" "$read_json" "$write_json" "$sat" "$rss_idle" "$rss_after" <<'PY'
import json, sys
name, rate, r, w, sat, idle, after = sys.argv[1:]
r, w = json.loads(r), json.loads(w)
def line(what, d):
    return (f"{name:8} {what:32} p50 {d['p50_ms']:6.2f} ms  p99 {d['p99_ms']:6.2f} ms  p99.9 {d['p999_ms']:6.2f} ms"
            f"  ({d['ok']}/{d['sent']} ok, {d['achieved_rate']} req/s offered)")
print(line(f"scene list @ {rate} req/s", r))
print(line(f"POST /api/scenes @ {rate} req/s", w))
print(f"{name:8} scene list saturation (wrk -c8)  {float(sat):.0f} req/s;  RSS idle {int(idle)//1024} MB, after {int(after)//1024} MB")
verdict = "meets" if r["p99_ms"] <= 10 else "misses"
print(f"{name:8} scene-list p99 / goal 10 ms = {r['p99_ms'] / 10:.2f} ({verdict} the goal)")
PY
}

for backend in $BACKENDS; do
  case "$backend" in
    sqlite) run_backend sqlite "" ;;
    postgres)
      db="devatar_bench_$$"
      psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db" >/dev/null
      psql "$PG_URL" -qc "CREATE DATABASE $db" >/dev/null
      run_backend postgres "${PG_URL%/*}/$db"
      psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db" >/dev/null
      ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
done
