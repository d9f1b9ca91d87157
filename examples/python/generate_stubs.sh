#!/usr/bin/env bash
# Python stubs for the invad API from proto/ (Debian: protobuf-compiler, protobuf-compiler-grpc,
# python3-grpcio, python3-protobuf).   ./generate_stubs.sh [OUT_DIR]   (default: ./stubs)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
proto=$here/../../proto
out=${1:-$here/stubs}
plugin=$(command -v grpc_python_plugin) || { echo "grpc_python_plugin missing" >&2; exit 1; }
mkdir -p "$out"
protoc -I"$proto" --python_out="$out" --grpc_out="$out" --plugin=protoc-gen-grpc="$plugin" \
  invad/v1/model_config.proto invad/v1/inference.proto
echo "stubs in $out"
