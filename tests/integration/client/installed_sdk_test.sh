#!/usr/bin/env bash
# examples/cpp builds against the *installed* SDK: cmake --install into a temporary prefix, then
# configure examples/cpp with only that prefix (find_package(invad-client)), build it, and check
# that pkg-config describes the same library.
#   installed_sdk_test.sh SOURCE_DIR BUILD_DIR WORK_DIR
set -euo pipefail
src=$1 build=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" --component Unspecified >/dev/null
test -f "$work/prefix/include/invad/client/client.h"
test -f "$work/prefix/lib/cmake/invad-client/invad-client-config.cmake"
if grep -rq "pb.h\|grpcpp" "$work/prefix/include/invad/client/"; then
  echo "the installed SDK headers expose generated or gRPC types" >&2
  exit 1
fi
# The example uses the compiler and flags the SDK was built with (a sanitizer build's library
# needs the sanitizer runtime at link time).
cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
cmake -S "$src/examples/cpp" -B "$work/example" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_CXX_COMPILER="$(cache CMAKE_CXX_COMPILER)" \
  -DCMAKE_CXX_FLAGS="$(cache CMAKE_CXX_FLAGS)" \
  -DCMAKE_EXE_LINKER_FLAGS="$(cache CMAKE_EXE_LINKER_FLAGS)" >/dev/null
cmake --build "$work/example" >/dev/null
test -x "$work/example/score_image"
usage=$("$work/example/score_image" 2>&1 || true)
grep -q usage <<<"$usage"
PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags --libs invad-client | grep -q -- "-linvad-client"
echo "installed SDK: OK"
