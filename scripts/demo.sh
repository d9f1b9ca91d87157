#!/usr/bin/env bash
# make demo (after `make build`). Until the training tools land (issue 3), the demo is the core
# benchmark on a tiny model: encoder, one denoiser call and full K=3 scoring at batch 1..32.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "invad demo: core benchmark (tiny model, random weights); the train/serve loop arrives with invad-train"
build/release/bench/core_bench --model=tiny --benchmark_min_time=0.2 \
  --benchmark_filter='BM_(Encoder|DenoiserCall|FullScoring)/'
