#!/usr/bin/env bash
# The GPU check (issue 9), one script for a lent GPU machine (15 minutes in all) and its CPU dry run.
#
#   Here, before the run (CPU):
#     bash bench/fetch_gpu_deps.sh                 # Debian's Abseil .debs -> out/gpu-deps
#     bash bench/gpu_check.sh --prepare            # inputs as raw files   -> out/gpu-data
#     bash bench/gpu_check.sh --dry_run            # the same steps on CPU, tiny sizes
#   On the GPU machine (device tool, carry out/gpu-deps and out/gpu-data):
#     bash bench/gpu_check.sh [--device cuda:0] [--time_limit 420]
#   A rehearsal of that build and run here (Debian's CPU LibTorch, tiny sweeps):
#     bash bench/gpu_check.sh --device cpu --torch_dir /usr/lib/x86_64-linux-gnu/cmake/Torch
#
# Steps: (1) build invad-gpu-bench against the machine's CUDA LibTorch (bench/gpu/CMakeLists.txt;
# a PyTorch install's Torch_DIR); (2) agreement: z_T of the prepared latents on the device in bf16
# against the CPU fp32 z_T (relative error <= 2x the CPU bf16-vs-fp32 error measured in prepare,
# verdicts agree on >= 99 %, no flip farther from the threshold than the stated margin); (3) the
# dense bf16 matmul rate; (4) batch sweeps 1..256 at K = 3 for the default model and the paper's
# DiT: images/s, p50/p99, memory, FLOP/s and its fraction of the matmul rate; (5) one table.
# --dry_run reuses the release build tree (build/release/bench/invad-gpu-bench) and tiny sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode=gpu device=cuda:0 build_dir=build/release work=out/gpu-check time_limit=420
deps=out/gpu-deps data=out/gpu-data torch_dir=
while [[ $# -gt 0 ]]; do
  case $1 in
    --dry_run) mode=dry ;;
    --prepare) mode=prepare ;;
    --device) device=$2; shift ;;
    --build_dir) build_dir=$2; shift ;;
    --work) work=$2; shift ;;
    --deps) deps=$2; shift ;;
    --data) data=$2; shift ;;
    --torch_dir) torch_dir=$2; shift ;;
    --time_limit) time_limit=$2; shift ;;
    -h|--help) sed -n 2,22p "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$work"
results=$work/results.txt
: > "$results"
start=$(date +%s)
stamp() { echo "=== gpu_check: $* (+$(( $(date +%s) - start )) s)"; }
run() {  # runs the bench, keeping its result lines
  "$bench" "$@" | tee -a "$results"
}
matmul_flops() {  # the FLOP/s of the matmul line in the results
  awk '/^matmul/ {for (i=1;i<=NF;i++) if ($i ~ /^flops=/) {sub("flops=","",$i); print $i}}' "$results"
}

case $mode in
  prepare|dry)
    bench=$build_dir/bench/invad-gpu-bench
    [[ -x $bench ]] || { echo "gpu_check: no $bench (build the release tree first: make build)" >&2; exit 2; }
    ;;
  gpu)
    stamp "machine: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi'); $(nproc) cores"
    if [[ -z $torch_dir ]]; then
      torch_dir=$(python3 -c 'import torch, os; print(os.path.join(torch.utils.cmake_prefix_path, "Torch"))')
      stamp "torch $(python3 -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)') at $torch_dir"
    fi
    [[ -d $deps/usr ]] || { echo "gpu_check: no $deps/usr (run bench/fetch_gpu_deps.sh here and carry it)" >&2; exit 2; }
    [[ -f $data/meta.txt ]] || { echo "gpu_check: no $data/meta.txt (run --prepare here and carry it)" >&2; exit 2; }
    generator=(); command -v ninja >/dev/null && generator=(-G Ninja)
    cmake -S bench/gpu -B "$work/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
      -DTorch_DIR="$torch_dir" -DCMAKE_PREFIX_PATH="$root/$deps/usr" > "$work/cmake.log" 2>&1 \
      || { tail -30 "$work/cmake.log"; exit 1; }
    grep "invad gpu check" "$work/cmake.log" || true
    cmake --build "$work/build" -j "$(nproc)" > "$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
    export LD_LIBRARY_PATH=$root/$deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    bench=$work/build/invad-gpu-bench
    stamp "built $bench"
    ;;
esac

case $mode in
  prepare)
    mkdir -p "$data"
    run prepare --out="$data"
    ls -l "$data"
    exit 0
    ;;
  dry)
    # Tiny sizes on CPU: the same commands, a model small enough for seconds.
    # One LibTorch thread: make test runs it beside other tests (ctest -j2).
    data=$work/data; mkdir -p "$data"
    run prepare --out="$data" --tiny --threads=1
    run check --data="$data" --device=cpu --precision=bf16 --threads=1
    run check --data="$data" --device=cpu --precision=fp32 --threads=1
    run matmul --device=cpu --precision=bf16 --n=256 --reps=3 --threads=1
    peak=$(matmul_flops)
    run sweep --device=cpu --precision=bf16 --model=tiny --batches=1,2,4 --reps=3 --peak_flops="$peak" --threads=1
    run sweep --device=cpu --precision=bf16 --model=tiny_paper --batches=1,2 --reps=3 --peak_flops="$peak" --threads=1
    ;;
  gpu)
    run check --data="$data" --device="$device" --precision=bf16
    run check --data="$data" --device="$device" --precision=fp32 || true  # reported, not gated (TF32)
    if [[ $device == cpu ]]; then
      # A rehearsal of the GPU machine's build and steps on this machine: tiny sweeps only.
      run matmul --device=cpu --precision=bf16 --n=256 --reps=3
      peak=$(matmul_flops)
      run sweep --device=cpu --precision=bf16 --model=tiny --batches=1,2,4 --reps=3 --peak_flops="$peak"
    else
    run matmul --device="$device" --precision=bf16 --n=8192 --reps=50
    peak=$(matmul_flops)
    left=$(( time_limit - ($(date +%s) - start) ))
    run sweep --device="$device" --precision=bf16 --model=default --batches=1,2,4,8,16,32,64,128,256 \
      --reps=30 --peak_flops="$peak" --time_limit=$(( left / 4 ))
    left=$(( time_limit - ($(date +%s) - start) ))
    run sweep --device="$device" --precision=bf16 --model=paper --batches=1,2,4,8,16,32,64,128,256 \
      --reps=10 --peak_flops="$peak" --time_limit=$(( left > 60 ? left - 30 : 30 ))
    fi
    ;;
esac

stamp "table"
python3 - "$results" <<'PY'
import sys
rows = [dict(kv.split("=", 1) for kv in line.split()[1:]) | {"_": line.split()[0]}
        for line in open(sys.argv[1]) if "=" in line]
for r in rows:
    if r["_"] == "check":
        print(f"check  {r['device']:7} {r['precision']:5} rel_err {float(r['rel_err']):.3g} "
              f"(bound {float(r['bound']):.3g})  agreement {float(r['agreement']):.2%}  "
              f"worst flip {float(r['worst_flip_distance']):.3g} (margin {float(r['margin']):.3g})  {r['result']}")
    elif r["_"] == "matmul":
        print(f"matmul {r['device']:7} {r['precision']:5} n={r['n']}  {float(r['flops'])/1e12:.3f} TFLOP/s")
print(f"{'model':10} {'batch':>5} {'images/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'mem MiB':>8} "
      f"{'TFLOP/s':>8} {'of matmul':>9}")
best = {}
for r in rows:
    if r["_"] != "sweep" or "skipped" in r:
        continue
    print(f"{r['model']:10} {r['batch']:>5} {float(r['images_per_s']):>10.1f} {float(r['p50_ms']):>9.3f} "
          f"{float(r['p99_ms']):>9.3f} {float(r['mem_mib']):>8.0f} {float(r['flops'])/1e12:>8.3f} "
          f"{float(r['frac_of_matmul']):>9.1%}")
    if float(r["images_per_s"]) > float(best.get(r["model"], {}).get("images_per_s", 0)):
        best[r["model"]] = r
for m, r in best.items():
    print(f"best {m}: batch {r['batch']}, {float(r['images_per_s']):.1f} images/s, "
          f"{float(r['frac_of_matmul']):.1%} of the measured matmul rate")
PY

fail=0
grep -q "^check .*precision=bf16 .*result=PASS" "$results" || { echo "gpu_check: the bf16 agreement check failed"; fail=1; }
grep -q "^sweep " "$results" || { echo "gpu_check: no sweep results"; fail=1; }
stamp "done (exit $fail)"
exit $fail
