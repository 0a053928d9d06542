#!/usr/bin/env bash
# Runs every benchmark once and writes their output, with the machine's description, to
# bench/results/<date>-<commit>.md (commit the newest; README shows its summary table).
#
# Each benchmark prints its own figure against its goal; this script only collects them. It takes roughly
# 30–40 minutes on 2 cores (the makespan runs are about 4 minutes at time scale 0.25 and 1.5 at 0.1; the sequential
# makespan baseline is skipped). Usage: bench/all.sh [SKIP...]  e.g. `bench/all.sh fuzz crashpoints` skips those two.
set -euo pipefail
cd "$(dirname "$0")/.."
skip=" $* "
commit=$(git rev-parse --short HEAD)
day=$(date -u +%Y-%m-%d)
mkdir -p bench/results
out="bench/results/$day-$commit.md"
cargo build --release --locked >&2

{
  echo "# Benchmarks at $commit ($day)"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr);"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg). Release build; one run each."
  echo
} >"$out"

# run NAME COMMAND...: appends the benchmark's output (stdout and stderr's last lines on failure) to the file.
run() {
  local name="$1"
  shift
  if [[ "$skip" == *" $name "* ]]; then
    printf '## %s\n\nskipped\n\n' "$name" >>"$out"
    return
  fi
  echo "== $name" >&2
  local started log status=0
  started=$(date +%s)
  log=$(mktemp)
  "$@" >"$log" 2>"$log.err" || status=$?
  {
    printf '## %s\n\n`%s` — %ss, exit %s\n\n```\n' "$name" "$*" "$(($(date +%s) - started))" "$status"
    cat "$log"
    [ "$status" = 0 ] || tail -n 20 "$log.err"
    printf '```\n\n'
  } >>"$out"
  rm -f "$log" "$log.err"
}

run render bash bench/render.sh
run face bash bench/face.sh
run lora bash bench/lora.sh
run api bash bench/api.sh 500 10
run makespan env SEQUENTIAL=0 bash bench/makespan.sh 12 0.25
run makespan-0.1 env SEQUENTIAL=0 bash bench/makespan.sh 12 0.1
run scenes bash bench/scenes.sh 1000
run workers bash bench/workers.sh
run crashpoints bash bench/crashpoints.sh
run fuzz bash bench/fuzz.sh 30

echo "wrote $out" >&2
echo "$out"
