#!/usr/bin/env bash
# Benchmark (not a test): how much of a LoRA devatar downloads to check it. Writes a kohya-convention Flux LoRA
# at rank RANK (912 tensors, the real header; the tensor data a sparse file of zeros), serves it on 127.0.0.1 with
# HTTP Range support, runs `devatar lora inspect URL` (release build) and prints the bytes it read and the requests
# it made against the file's size. Goal: the header only — well under 1 % of the file, in at most a few requests.
# Usage: bash bench/lora.sh [RANK]   (default 32: a ~340 MB file)
set -euo pipefail
cd "$(dirname "$0")/.."
rank="${1:-32}"
bash scripts/install-deps.sh >&2
cargo build --release --locked >&2
bin=$PWD/target/release/devatar
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

python3 - "$tmp/twin.safetensors" "$rank" <<'PY'
import json, struct, sys
path, rank = sys.argv[1], int(sys.argv[2])
double = {"img_attn_qkv": (3072, 9216), "img_attn_proj": (3072, 3072), "img_mlp_0": (3072, 12288),
          "img_mlp_2": (12288, 3072), "img_mod_lin": (3072, 18432), "txt_attn_qkv": (3072, 9216),
          "txt_attn_proj": (3072, 3072), "txt_mlp_0": (3072, 12288), "txt_mlp_2": (12288, 3072),
          "txt_mod_lin": (3072, 18432)}
single = {"linear1": (3072, 21504), "linear2": (15360, 3072), "modulation_lin": (3072, 9216)}
modules = [(f"lora_unet_double_blocks_{b}_{m}", d) for b in range(19) for m, d in double.items()]
modules += [(f"lora_unet_single_blocks_{b}_{m}", d) for b in range(38) for m, d in single.items()]
header, offset = {}, 0
def add(name, shape):
    global offset
    size = 2 * (shape[0] * shape[1] if shape else 1)
    header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
    offset += size
for name, (fan_in, fan_out) in modules:
    add(f"{name}.lora_down.weight", [rank, fan_in])
    add(f"{name}.lora_up.weight", [fan_out, rank])
    add(f"{name}.alpha", [])
header["__metadata__"] = {"ss_network_dim": str(rank), "ss_base_model_version": "flux1",
                          "ss_tag_frequency": json.dumps({"img": {"TOK_BENCH": 20}})}
text = json.dumps(header).encode()
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text)
    f.truncate(8 + len(text) + offset)
PY

port=$((20000 + RANDOM % 10000))
python3 - "$tmp" "$port" >"$tmp/server.log" 2>&1 <<'PY' &
import http.server, os, sys
root, port = sys.argv[1], int(sys.argv[2])
class Ranged(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self): self.answer(False)
    def do_GET(self): self.answer(True)
    def answer(self, body):
        path = os.path.join(root, os.path.basename(self.path))
        size = os.path.getsize(path)
        start, end, status = 0, size - 1, 200
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start, end, status = int(a), min(int(b) if b else size - 1, size - 1), 206
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if body:
            with open(path, "rb") as f:
                f.seek(start)
                left = end - start + 1
                while left > 0:
                    chunk = f.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)
http.server.ThreadingHTTPServer(("127.0.0.1", port), Ranged).serve_forever()
PY
pids+=($!)
for _ in $(seq 50); do curl -fsS -o /dev/null -r 0-0 "http://127.0.0.1:$port/twin.safetensors" 2>/dev/null && break; sleep 0.1; done

size=$(stat -c %s "$tmp/twin.safetensors")
report=$(DEVATAR_ALLOW_PRIVATE_URLS=1 "$bin" lora inspect "http://127.0.0.1:$port/twin.safetensors" \
  --trigger TOK_BENCH --json 2>"$tmp/inspect.err") || { cat "$tmp/inspect.err" >&2; echo "$report" >&2; exit 1; }
python3 - "$size" "$report" <<'PY'
import json, sys
size, report = int(sys.argv[1]), json.loads(sys.argv[2])
read, requests = report["bytesRead"], report["requests"]
print(f"LoRA file {size / 1e6:.1f} MB, {report['tensorCount']} tensors, rank {report.get('rank')}")
print(f"bytes read {read} in {requests} request(s) = {read / size:.5f} of the file   (goal: the header only, < 0.01)")
PY
