#!/usr/bin/env bash
# Benchmark (not a test): scene-list latency and throughput of `devatar serve` with 10,000 scenes in SQLite,
# measured with wrk over loopback, plus the server's idle RSS. Targets: p99 <= 10 ms at 500 req/s; RSS <= 40 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
command -v wrk >/dev/null 2>&1 || { sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo; $sudo apt-get install -y -qq wrk >&2; }
cargo build --release --locked >&2
data=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
DEVATAR_ADMIN_PASSWORD=bench-password target/release/devatar serve --bind "127.0.0.1:$port" --data "$data" 2>"$data/server.log" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 50); do grep -q listening "$data/server.log" 2>/dev/null && break; sleep 0.1; done
token=$(target/release/devatar token create --name bench --data "$data" 2>/dev/null | tail -n 1)
rss_idle=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")

project=$(python3 - "$port" "$token" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
port, token = sys.argv[1], sys.argv[2]
def call(method, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
call("POST", "/api/identities", {"name": "bench", "displayName": "Bench", "triggerWord": "TOK_BENCH"})
p = call("POST", "/api/projects", {"name": "bench"})["id"]
with ThreadPoolExecutor(8) as pool:
    list(pool.map(lambda i: call("POST", "/api/scenes", {"projectId": p, "name": f"s{i}", "dialogue": f"Scene {i}."}), range(10000)))
print(p)
PY
)
echo "10,000 scenes created; idle RSS before load: $((rss_idle / 1024)) MB"
# The measured page must be a real one: 50 scenes.
items=$(curl -s -H "Authorization: Bearer $token" \
  "http://127.0.0.1:$port/api/scenes?project=$project&limit=50&cursor=5000" |
  python3 -c 'import json, sys; print(len(json.load(sys.stdin)["items"]))')
[ "$items" = 50 ] || { echo "expected a page of 50 scenes, got $items" >&2; exit 1; }
wrk -t2 -c8 -d10s --latency -H "Authorization: Bearer $token" \
  "http://127.0.0.1:$port/api/scenes?project=$project&limit=50&cursor=5000" | sed -n '1,20p'
rss_after=$(awk '/VmRSS/ {print $2}' "/proc/$server/status")
echo "RSS after load: $((rss_after / 1024)) MB"
