#!/usr/bin/env bash
# Runs the core benchmark variants reported in docs/benchmarks.md and prints markdown tables:
#   1. encoder / one denoiser call / full K=3 scoring at batch 1, 4, 16, 32 (medians of N repetitions)
#      and full scoring ÷ (encoder + K denoiser calls);
#   2. before/after figures: malloc fix (P2), threads 1 vs 2 (P4), bf16 vs fp32, plan cached vs per call.
# Usage: bench/run_core_bench.sh [--quick] [--model=tiny|small] [extra core_bench flags]
# Run on a quiet machine: nothing else compiling. OPENBLAS_CORETYPE is left as the environment sets it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BENCH_BIN:-build/release/bench/core_bench}
REPS=5
MIN_TIME=2
args=()
for a in "$@"; do
  case $a in
    --quick) REPS=3; MIN_TIME=0.2 ;;
    *) args+=("$a") ;;
  esac
done
out=$(mktemp -d)
run() {  # name, then core_bench flags
  local name=$1; shift
  "$BIN" "$@" "${args[@]}" --benchmark_repetitions=$REPS --benchmark_min_time=$MIN_TIME \
    --benchmark_report_aggregates_only=true --benchmark_format=json --benchmark_out="$out/$name.json" \
    --benchmark_out_format=json >/dev/null
}
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
echo "command: bench/run_core_bench.sh $*"
run main --benchmark_filter='BM_(Encoder|DenoiserCall|FullScoring)/'
run no_malloc_fix --malloc_fix=0 --benchmark_filter='BM_(Encoder|DenoiserCall)/16/'
run one_thread --threads=1 --benchmark_filter='BM_(Encoder|DenoiserCall)/16/'
run bf16 --precision=bf16 --benchmark_filter='BM_DenoiserCall/16/'
run plan --benchmark_filter='BM_Plan'
run lattice --benchmark_filter='BM_FilterBankLattice'
# P1: the reference BLAS that libtorch gets without OpenBLAS (Debian's libblas3), via the loader path.
ref_blas=/usr/lib/x86_64-linux-gnu/blas
if [[ -e $ref_blas/libblas.so.3 ]]; then
  LD_LIBRARY_PATH=$ref_blas run reference_blas --benchmark_filter='BM_DenoiserCall/16/'
fi
# Encoder truncated after its last used block: the stand-in EfficientNet-B4 exported both ways.
if /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
  /usr/bin/python3 tools/interop/export_backbone.py --standin --out "$out/trunc.pt" >/dev/null
  /usr/bin/python3 tools/interop/export_backbone.py --standin --full --out "$out/full.pt" >/dev/null
  for i in 1 2 3; do  # alternate: this VM's speed drifts by 10-25 % between runs
    run effnet_truncated_$i --encoder_torchscript="$out/trunc.pt" --benchmark_filter='BM_Encoder/16/'
    run effnet_full_$i --encoder_torchscript="$out/full.pt" --benchmark_filter='BM_Encoder/16/'
  done
fi
/usr/bin/python3 bench/summarize.py "$out"
rm -rf "$out"
