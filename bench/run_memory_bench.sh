#!/usr/bin/env bash
# Memory per model size (docs/benchmarks.md): invad-server's resident memory (VmRSS, and VmHWM, the
# peak) with one model of each configuration loaded and warmed up, then after 200 requests from 16
# closed-loop clients (full batches). Bundles are written by invad-train (a few steps: only size
# matters). Usage: bench/run_memory_bench.sh   (after `make build`)
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/release
out=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$out"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; $(date -u +%F)"
"$B/tools/datagen/invad-datagen" --out "$out/data" --categories grid --train 40 --test_good 1 \
  --test_per_defect 1 >/dev/null
echo "| configuration | invad-train flags | bundle MiB | RSS loaded, warmed up MiB | RSS after 200 requests (16 clients) MiB | peak (VmHWM) MiB |"
echo "|---|---|---|---|---|---|"
for c in compact default large; do
  case $c in
    default) flags=() ;;
    compact) flags=(--image_size 128 --latent_size 8 --precision bf16) ;;
    large) flags=(--dit_hidden 256) ;;
  esac
  "$B/tools/train/invad-train" --data "$out/data/grid" --out "$out/models/$c/$c" --steps 5 \
    --progress=false "${flags[@]}" >/dev/null 2>&1
  weights=$(du -sk "$out/models/$c/$c/1" | cut -f1)
  "$B/server/invad-server" --model_repository="$out/models/$c" --grpc_address=127.0.0.1:0 \
    --metrics_address=127.0.0.1:0 --max_batch_size=16 2> "$out/$c.log" &
  pid=$!
  port=
  for _ in $(seq 600); do
    port=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$out/$c.log" | head -1)
    [[ -n $port ]] && "$B/client/invad" health --target=127.0.0.1:$port >/dev/null 2>&1 && break
    sleep 0.1
  done
  rss() { awk -v k="$1:" '$1 == k {printf "%.1f", $2 / 1024}' /proc/$pid/status; }
  loaded=$(rss VmRSS)
  "$B/client/invad" bench --target=127.0.0.1:$port --concurrency=16 --requests=200 --warmup=0 \
    >/dev/null
  echo "| $c | ${flags[*]:-(defaults)} | $(awk -v k=$weights 'BEGIN {printf "%.1f", k / 1024}') | $loaded | $(rss VmRSS) | $(rss VmHWM) |"
  kill -TERM $pid; wait $pid || true
done
