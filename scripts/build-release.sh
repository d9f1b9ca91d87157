#!/usr/bin/env bash
# The release build of what ships (no tests or benchmarks), installed under PREFIX:
#   scripts/build-release.sh /opt/invad
# The container build stage runs this after `scripts/install-deps.sh --build`.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:-/opt/invad}
# The release preset in its own build folder, so build/release (make test) keeps its tests.
cmake --preset release -B build/dist -DINVAD_BUILD_TESTS=OFF
cmake --build build/dist
cmake --install build/dist --prefix "$prefix"
