#!/usr/bin/env bash
# Manual, slow check of the official-checkpoint path at the paper's full size (DiT depth 16, width
# 2048, 1.2 B parameters, random weights): convert an official-layout checkpoint and compare the
# native DiT's eps with PyTorch's. Needs ~15 GB of memory and a few minutes; not part of make test.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=build/release/tests/integration/interop_test
[[ -x $bin ]] || { echo "build first: make build" >&2; exit 2; }
INVAD_SOURCE_DIR=$PWD /usr/bin/time -v "$bin" --gtest_also_run_disabled_tests \
  --gtest_filter='InteropGigantTest.*' 2>&1 | grep -E '^\[|Maximum resident|Elapsed'
