#!/usr/bin/env bash
# Benchmark (not a test): many scenes in flight in one process. Renders an N-scene cloud project (default 1,000)
# on the provider sandbox with generous provider caps. The sandbox runs with latency `none` (every job is done at
# its first poll) and `--premade-media` (each kind of speech or clip is made once and copied per job with a mark
# of its own; stills are drawn in process; clips come flat grey at 1280x720 with every frame a keyframe, so
# FINALIZE stream-copies them), so neither the sandbox's media work nor 1,000 x264 encodes are what is measured:
# with made media, the sandbox spent ~0.95 s and devatar's tools ~1.7 s of CPU per scene, which on 2 cores
# cannot fit 1,000 scenes in 10 minutes (PREMADE= turns pre-made media off). It reports:
#   - peak RSS of the devatar process (VmHWM; its ffmpeg children not included)   goal <= 150 MB
#   - devatar's own CPU time per executed step (utime + stime of the process, children excluded): an upper
#     bound on the scheduler's overhead per step, which also holds HTTP, hashing and storage   goal <= 5 ms
#   - the CPU time of devatar with its tools and of the sandbox with its tools (where the rest of the time goes)
#   - the time to import and plan (process start -> run created) and to schedule (run created -> first step
#     started), the database waits the render logged (sqlx's slow pool acquires and statements) and the rows
#     it left.
# Usage: bench/scenes.sh [SCENES] [LIMITS]   (release build; SCENES=1000, LIMITS fal=64,kling=64,sync=64,elevenlabs=64)
# KEEP=1 keeps the temporary folder (render.log, fakes.log, stats.json = the sandbox's /__stats, the database).
set -euo pipefail
cd "$(dirname "$0")/.."
scenes="${1:-1000}"
limits="${2:-fal=64,kling=64,sync=64,elevenlabs=64}"
bash scripts/install-deps.sh >&2
# PROFILE=debug measures the debug build (for trying the script); figures are for release.
profile="${PROFILE:-release}"
if [ "$profile" = release ]; then cargo build --release --locked >&2; else cargo build --locked >&2; fi
bin=$PWD/target/$profile/devatar
tmp=$(mktemp -d)
[ -z "${KEEP:-}" ] || echo "keeping $tmp" >&2
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -n "${KEEP:-}" ] || rm -rf "$tmp"; }
trap cleanup EXIT

export FAL_KEY=k ELEVENLABS_API_KEY=k KLING_ACCESS_KEY=a KLING_SECRET_KEY=s SYNCLABS_API_KEY=k
export ELEVENLABS_VOICE_ID=21m00Tcm4TlvDq8ikWAM
fport=$((20000 + RANDOM % 10000))
"$bin" fakes --bind "127.0.0.1:$fport" --latency none ${PREMADE---premade-media} 2>"$tmp/fakes.log" &
fakes_pid=$!
pids+=($fakes_pid)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$fport/__health" >/dev/null 2>&1 && break; sleep 0.1; done
export FAL_BASE_URL="http://127.0.0.1:$fport" ELEVENLABS_BASE_URL="http://127.0.0.1:$fport"
export KLING_BASE_URL="http://127.0.0.1:$fport" SYNCLABS_BASE_URL="http://127.0.0.1:$fport"
# Time scale 0.2: polls come quickly, while the scaled deadlines (Flux 10 min → 2 min) still allow for a sandbox
# making media for 64 jobs at once (at 0.02 a Flux job's 12 s deadline cut some off).
export DEVATAR_ALLOW_PRIVATE_URLS=1 DEVATAR_PROVIDER_LIMITS="$limits" DEVATAR_PROVIDER_TIME_SCALE=0.2

python3 - "$tmp/project.toml" "$scenes" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
out = ['[project]\nname = "Many scenes"\naspect_ratio = "16:9"\n',
       '[[identities]]\nname = "bench"\ndisplay_name = "Bench"\ntrigger_word = "TOK_BENCH"\n']
for i in range(n):
    # Short lines, every scene different (nothing shared through the cache).
    out.append(f'[[scenes]]\nname = "s{i:04}"\ndialogue = "Line {i}."\nenvironment = "room {i}"\n')
open(path, "w").write("\n".join(out))
PY

python3 - "$bin" "$tmp" "$fakes_pid" "http://127.0.0.1:$fport" <<'PY'
import json, os, resource, sqlite3, subprocess, sys, time, urllib.request
bin, tmp, fakes_pid, fakes_url = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

def tree_cpu(pid):
    """utime + stime + reaped children's, seconds."""
    stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in stat[11:15]) / os.sysconf("SC_CLK_TCK")

fakes_cpu0 = tree_cpu(fakes_pid)
tick = os.sysconf("SC_CLK_TCK")
t0 = time.time()
p = subprocess.Popen([bin, "render", f"{tmp}/project.toml", "--data", f"{tmp}/data", "--providers", "cloud",
                      "--json"], stdout=open(f"{tmp}/report.json", "w"), stderr=open(f"{tmp}/render.log", "w"))
cpu, hwm = 0.0, 0
while p.poll() is None:
    try:
        stat = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
        cpu = (int(stat[11]) + int(stat[12])) / tick
        for line in open(f"/proc/{p.pid}/status"):
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError):
        pass
    time.sleep(0.2)
p.wait()
wall = time.time() - t0
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
tree = kids.ru_utime + kids.ru_stime
fakes_cpu = tree_cpu(fakes_pid) - fakes_cpu0
stats = json.load(urllib.request.urlopen(f"{fakes_url}/__stats"))
json.dump(stats, open(f"{tmp}/stats.json", "w"), indent=1)
if p.returncode != 0:
    sys.exit("render failed:\n" + open(f"{tmp}/render.log").read()[-2000:])
# The report goes to a file: through a pipe nobody reads while the render runs, a 1,000-scene report (about
# 1.7 MB) filled the pipe and the render blocked on its last write.
report = json.load(open(f"{tmp}/report.json"))
db = sqlite3.connect(f"{tmp}/data/devatar.db")
rows = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
        for t in ("scenes", "runs", "steps", "step_cache", "logs", "provider_jobs")}
created, first = db.execute(
    "SELECT r.created_at, MIN(s.started_at) FROM runs r JOIN steps s ON s.run_id = r.id").fetchone()
executed = report.get("providerCalls") or sum(1 for s in report.get("steps", []) if not s.get("cached"))
n = rows["scenes"]
print(f"scenes {n}, executed steps {executed}, wall {wall:.1f} s")
print(f"peak RSS (devatar, VmHWM)        {hwm / 1024:7.1f} MB   (goal <= 150 MB)")
print(f"devatar CPU time per step        {cpu * 1000 / max(executed, 1):7.2f} ms   (goal <= 5 ms; {cpu:.1f} s in all, children excluded)")
print(f"CPU: devatar with its tools {tree:.1f} s, sandbox with its tools {fakes_cpu:.1f} s")
print(f"import + plan (start -> run)     {created / 1000 - t0:7.2f} s")
print(f"schedule (run -> first step)     {(first - created) / 1000:7.3f} s")
log = open(f"{tmp}/render.log", errors="replace").read()
print(f"database waits: {log.count('time to acquire exceeded slow threshold')} slow pool acquires (> 2 s), "
      f"{log.count('slow statement')} slow statements (> 1 s)")
print("database rows: " + ", ".join(f"{k} {v}" for k, v in rows.items()))
PY
