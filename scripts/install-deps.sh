#!/usr/bin/env bash
# Installs, on Debian 12 as root, exactly what invad's build, tests and demo need.
# Idempotent: packages already present are left alone; it prints what it installs.
# See docs/adr/0005-platform.md and ../shared/docs/platform.md (P1: only the OpenMP OpenBLAS).
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config
  clang clang-14 libclang-rt-14-dev clang-format clang-tidy
  # libraries
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libtorch-dev libopencv-dev libabsl-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev libgoogle-glog-dev libgflags-dev libssl-dev
  # P1: OpenMP OpenBLAS; the pthread variant must never be installed
  libopenblas0-openmp
  # test tooling: TorchScript interop, PIL/torchvision parity, metric cross-checks (sklearn)
  python3 python3-torch python3-torchvision python3-numpy python3-pil python3-sklearn
  # server tests: clients we did not write (Python gRPC), promtool, openssl for TLS certificates
  python3-grpcio prometheus openssl
)

if [[ $(id -u) -ne 0 ]]; then
  SUDO=sudo
else
  SUDO=
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${#missing[@]} package(s): ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
fi

# P1: the pthread OpenBLAS ignores at::set_num_threads; never keep it as the BLAS.
if dpkg-query -W -f='${Status}' libopenblas0-pthread 2>/dev/null | grep -q "install ok installed"; then
  echo "install-deps: libopenblas0-pthread present; pointing libblas/liblapack at the OpenMP variant"
fi
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for lib in libblas.so.3 liblapack.so.3; do
  target=/usr/lib/$arch/openblas-openmp/$lib
  if [[ -e $target ]] && update-alternatives --query "$lib-$arch" >/dev/null 2>&1; then
    current=$(update-alternatives --query "$lib-$arch" | awk '/^Value:/{print $2}')
    if [[ $current != "$target" ]]; then
      echo "install-deps: setting $lib-$arch -> $target (was $current)"
      $SUDO update-alternatives --set "$lib-$arch" "$target"
    fi
  fi
done
echo "install-deps: done"
