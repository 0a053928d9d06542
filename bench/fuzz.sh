#!/usr/bin/env bash
# Fuzzes every target for SECONDS each (default 300) and prints one line per target. Targets are arbtest
# properties (`fuzz_*` tests beside the parsers they exercise: safetensors header, project file, captions, Fal,
# Kling and Sync answers, error reasons and URL redaction, sandbox fault specs; src/fuzz.rs explains the harness).
# A failure's seed is appended to fuzz/regressions.txt, which every test run replays, so commit that file after
# fixing the bug. Test profile on purpose: overflow checks and debug assertions stay on.
# Usage: bench/fuzz.sh [SECONDS] [NAME_FILTER]
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-300}"
FILTER="${2:-}"
cargo test --locked --lib --no-run >&2 || exit 1
mapfile -t tests < <(cargo test --locked --lib -q -- --list 2>/dev/null | sed -n 's/^\(.*::fuzz::fuzz_[a-z_]*\): test$/\1/p' |
  grep -- "$FILTER")
echo "fuzz: ${#tests[@]} targets, ${SECONDS_EACH}s each, $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null)"
failed=0
for t in "${tests[@]}"; do
  name="${t##*::fuzz_}"
  log="$(mktemp)"
  start=$(date +%s)
  if ARBTEST_BUDGET_MS=$((SECONDS_EACH * 1000)) cargo test --locked --lib -q -- --exact "$t" >"$log" 2>&1; then
    printf '%-28s %5ss  ok\n' "$name" "$(($(date +%s) - start))"
  else
    failed=1
    seed="$(sed 's/\x1b\[[0-9;]*m//g' "$log" | sed -n 's/^ *Seed: \(0x[0-9a-f]*\).*/\1/p' | head -1)"
    why="$(grep -m1 'panicked at' -A1 "$log" | tail -1)"
    printf '%-28s %5ss  FAILED seed %s: %s\n' "$name" "$(($(date +%s) - start))" "${seed:-?}" "$why"
    if [ -n "$seed" ]; then echo "$name $seed" >>fuzz/regressions.txt; fi
  fi
  rm -f "$log"
done
exit "$failed"
