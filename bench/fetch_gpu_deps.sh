#!/usr/bin/env bash
# Fetches what the GPU check's build needs and a GPU machine lacks (Abseil; the machine has PyTorch,
# CMake, ninja and nvcc) as Debian 12 .deb files, and unpacks them into a folder that travels with
# the tree to the device machine (`carry`). Not part of `make test`: it needs the package mirror.
#   bash bench/fetch_gpu_deps.sh [OUT_DIR]     (default out/gpu-deps; then OUT_DIR/usr is the prefix)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/gpu-deps}
packages=(libabsl-dev libabsl20220623)
rm -rf "$out" && mkdir -p "$out/debs"
(cd "$out/debs" && apt-get download "${packages[@]}")
for deb in "$out"/debs/*.deb; do dpkg-deb -x "$deb" "$out"; done
rm -rf "$out/debs" "$out/usr/share/doc"
# Debian's absl CMake files locate the libraries relative to themselves, so the prefix moves.
test -f "$out/usr/lib/x86_64-linux-gnu/cmake/absl/abslConfig.cmake"
echo "fetch_gpu_deps: $(du -sh "$out" | cut -f1) in $out ($(dpkg-query -W -f='${Version}' libabsl-dev 2>/dev/null || echo '?')); use -DCMAKE_PREFIX_PATH=$PWD/$out/usr"
