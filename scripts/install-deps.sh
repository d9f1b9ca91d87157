#!/usr/bin/env bash
# Installs, on Debian 12 as root, exactly what invad's build, tests and demo need.
# Idempotent: packages already present are left alone; it prints what it installs.
# See docs/adr/0005-platform.md and ../shared/docs/platform.md (P1: only the OpenMP OpenBLAS).
set -euo pipefail
#   install-deps.sh            everything: build, tests, demo, deploy checks (make test, CI)
#   install-deps.sh --build    toolchain and -dev libraries only (the container build stage)
#   install-deps.sh --runtime  shared libraries of the release binaries only (the container image)
#   install-deps.sh MODE --list  print the packages of MODE, install nothing
mode=${1:---all}

# What the release binaries load (their NEEDED libraries, by package; apt brings the rest).
# tests/deploy/dockerfile_test.py checks this covers `ldd` of every installed binary.
RUNTIME_PACKAGES=(
  libabsl20220623 libgrpc++1.51 libgrpc29 libprotobuf32 libssl3 libtorch1.13
  libopencv-core406 libopencv-imgproc406 libopencv-imgcodecs406 libopencv-videoio406
  libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0
  # P1: OpenMP OpenBLAS; the pthread variant must never be installed
  libopenblas0-openmp
)
BUILD_PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config
  # libraries
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libtorch-dev libopencv-dev libabsl-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev libgoogle-glog-dev libgflags-dev libssl-dev
  libopenblas0-openmp
)
TEST_PACKAGES=(
  clang clang-14 libclang-rt-14-dev clang-format clang-tidy
  # test tooling: TorchScript interop, PIL/torchvision parity, metric cross-checks (sklearn)
  python3 python3-torch python3-torchvision python3-numpy python3-pil python3-sklearn
  # server tests: clients we did not write (Python gRPC), promtool, openssl for TLS certificates
  python3-grpcio prometheus openssl
  # deploy checks: docker-compose config, YAML parsing (kubectl: below)
  docker-compose python3-yaml
)
# INVAD_SKIP_TORCH=1: leave LibTorch (and its BLAS) out, for builds against another LibTorch
# (deploy/docker/Dockerfile.cuda, pytorch.org's CUDA build).
if [[ ${INVAD_SKIP_TORCH:-0} == 1 ]]; then
  RUNTIME_PACKAGES=("${RUNTIME_PACKAGES[@]/libtorch1.13/}")
  BUILD_PACKAGES=("${BUILD_PACKAGES[@]/libtorch-dev/}")
fi
case $mode in
  --runtime) PACKAGES=("${RUNTIME_PACKAGES[@]}") ;;
  --build) PACKAGES=("${BUILD_PACKAGES[@]}") ;;
  --all)
    PACKAGES=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}")
    # `kubectl kustomize` renders deploy/k8s; Debian's kubernetes-client (kubectl 1.20) only
    # when no kubectl is installed (a newer one is kept).
    command -v kubectl >/dev/null 2>&1 || PACKAGES+=(kubernetes-client)
    ;;
  *) echo "usage: $0 [--all|--build|--runtime] [--list]" >&2; exit 2 ;;
esac
if [[ ${2:-} == --list ]]; then  # print the packages of the mode, install nothing
  for p in "${PACKAGES[@]}"; do [[ -n $p ]] && echo "$p"; done
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  SUDO=sudo
else
  SUDO=
fi

missing=()
for p in "${PACKAGES[@]}"; do
  [[ -n $p ]] || continue
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${#missing[@]} package(s): ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [[ $mode == --runtime ]]; then
    $SUDO apt-get clean
    $SUDO rm -rf /var/lib/apt/lists/*
  fi
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
