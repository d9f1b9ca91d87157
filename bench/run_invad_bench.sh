#!/usr/bin/env bash
# Concurrency curves measured end to end with `invad bench` against the invad-server binary, for
# docs/benchmarks.md ("invad bench"). Trains the default and compact configurations for a few
# steps (only cost matters), serves each with --max_batch_size=16 and sweeps 1..32 clients.
# Usage: bench/run_invad_bench.sh [--duration=5s]   (run on a quiet machine)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build/release}
DURATION=5s
for a in "$@"; do
  case $a in
    --duration=*) DURATION=${a#--duration=} ;;
    *) echo "unknown argument $a" >&2; exit 2 ;;
  esac
done
out=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$out"' EXIT
SERVER=
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
echo "command: bench/run_invad_bench.sh $*"
"$BUILD/tools/datagen/invad-datagen" --out "$out/data" --categories grid --train 40 --test_good 1 \
  --test_per_defect 1 >/dev/null
for c in default compact; do
  flags=()
  [[ $c == compact ]] && flags=(--image_size 128 --latent_size 8 --precision bf16)
  "$BUILD/tools/train/invad-train" --data "$out/data/grid" --out "$out/models/$c/$c" --steps 20 \
    --progress=false "${flags[@]}" >/dev/null 2>&1
  "$BUILD/server/invad-server" --model_repository="$out/models/$c" --grpc_address=127.0.0.1:0 \
    --metrics_address= --max_batch_size=16 2>"$out/server_$c.log" &
  SERVER=$!
  port=
  until [[ -n $port ]]; do
    sleep 0.2
    port=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$out/server_$c.log" | head -1)
  done
  until "$BUILD/client/invad" health --target=127.0.0.1:$port >/dev/null 2>&1; do sleep 0.2; done
  echo
  echo "### \`$c\` (invad-train ${flags[*]:-defaults}), max_batch_size 16, $DURATION per level"
  echo
  "$BUILD/client/invad" bench --target=127.0.0.1:$port --concurrency=1,2,4,8,16,32 \
    --duration="$DURATION" --warmup=20 --json >"$out/$c.jsonl"
  /usr/bin/python3 - "$out/$c.jsonl" <<'PY'
import json, sys
print("| clients | req/s | p50 ms | p90 ms | p99 ms | server queue ms | server compute ms | codes |")
print("|---|---|---|---|---|---|---|---|")
for line in open(sys.argv[1]):
    r = json.loads(line)
    codes = " ".join(f"{k} {v}" for k, v in r["codes"].items())
    print(f"| {r['concurrency']} | {r['throughput']:.1f} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | "
          f"{r['p99_ms']:.1f} | {r['server_queue_ms']:.1f} | {r['server_compute_ms']:.1f} | {codes} |")
PY
  kill -TERM $SERVER
  wait $SERVER || true
done
