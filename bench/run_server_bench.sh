#!/usr/bin/env bash
# End-to-end gRPC cost against the bare core, for docs/benchmarks.md ("Serving: gRPC vs core").
# Trains the default configuration for a few steps (only cost matters), serves it in-process and
# runs bench/server_bench.cc: closed loops of 1, 16 and 32 clients straight into the scheduler and
# through gRPC (raw pixels and PNG), same model, same scheduler options, one run.
# Usage: bench/run_server_bench.sh [--max_batch=16]   (run on a quiet machine)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build/release}
MAX_BATCH=16
for a in "$@"; do
  case $a in
    --max_batch=*) MAX_BATCH=${a#--max_batch=} ;;
    *) echo "unknown argument $a" >&2; exit 2 ;;
  esac
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
echo "command: bench/run_server_bench.sh $*"
"$BUILD/tools/datagen/invad-datagen" --out "$out/data" --categories grid --train 40 --test_good 1 \
  --test_per_defect 1 >/dev/null
"$BUILD/tools/train/invad-train" --data "$out/data/grid" --out "$out/models/default" --steps 20 \
  --progress=false >/dev/null 2>&1
"$BUILD/bench/server_bench" --repo="$out/models" --model=default --max_batch="$MAX_BATCH" \
  --benchmark_out="$out/server.json" --benchmark_out_format=json >/dev/null 2>"$out/log.txt" ||
  { cat "$out/log.txt" >&2; exit 1; }
/usr/bin/python3 - "$out/server.json" "$MAX_BATCH" <<'PY'
import json, re, sys
rows = json.load(open(sys.argv[1]))["benchmarks"]
r = {}
for b in rows:
    a = dict(re.findall(r"(\w+):(\d+)", b["name"]))
    kind = "core" if b["name"].startswith("BM_Core") else ("png" if a.get("png") == "1" else "raw")
    r[(kind, int(a["clients"]))] = b
print(f"\nmax_batch_size {sys.argv[2]}, K = 3, 4 s per point (tasks/s, p50 / p99 ms)\n")
print("| clients | bare core | gRPC, raw pixels | gRPC, PNG | raw ÷ core | PNG ÷ core |")
print("|---|---|---|---|---|---|")
for c in sorted({k[1] for k in r}):
    def cell(k):
        b = r.get((k, c))
        return f"{b['tasks_per_s']:.1f} ({b['p50_ms']:.1f} / {b['p99_ms']:.1f})" if b else "–"
    def ratio(k):
        b, core = r.get((k, c)), r.get(("core", c))
        return f"{b['tasks_per_s'] / core['tasks_per_s']:.2f}" if b and core else "–"
    print(f"| {c} | {cell('core')} | {cell('raw')} | {cell('png')} | {ratio('raw')} | {ratio('png')} |")
one = {k: r[(k, 1)]["p50_ms"] for k in ("core", "raw", "png") if (k, 1) in r}
if "core" in one:
    print(f"\nPer-request overhead at 1 client (p50 difference): raw pixels "
          f"{one.get('raw', 0) - one['core']:.2f} ms, PNG {one.get('png', 0) - one['core']:.2f} ms")
PY
