#!/usr/bin/env bash
# The GPU run, on a machine with an NVIDIA GPU and nvcc (no .NET SDK needed), from the repository
# root, with .gpu-carry/ from tests/gpu/prepare.sh beside the tree:
#   tests/gpu/run.sh build         CUDA build of llama.cpp + libheed (sm_90 unless CMAKE_CUDA_ARCHITECTURES)
#   tests/gpu/run.sh test          ctest (CPU and cuda labels) and the .NET GPU tests (Category=Cuda)
#   tests/gpu/run.sh heed ARGS...  the heed CLI on the CUDA build (e.g. bench needle --gpu-layers -1)
#   tests/gpu/run.sh model ARGS... the test model writer (e.g. --llama-1b /tmp/heed-gpu/llama-1b.gguf)
# Each step reuses what the previous ones left on the machine.
set -euo pipefail
root="$(pwd)"
work="${HEED_GPU_WORK:-/tmp/heed-gpu}"
build="$work/build"
mkdir -p "$work"

# unpack llama | tests | cli | models: each from its tarball in .gpu-carry/, once per machine.
unpack() {
  case "$1" in
    llama) [[ -d "$work/llama" ]] || { mkdir -p "$work/llama" && tar xJf "$root/.gpu-carry/llama.tar.xz" -C "$work/llama"; } ;;
    *) [[ -d "$work/app-$1" ]] || tar xJf "$root/.gpu-carry/$1.tar.xz" -C "$work" ;;
  esac
}

case "${1:-}" in
  build)
    unpack llama
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHEED_CUDA=ON \
      -DHEED_LLAMA_SOURCE_DIR="$work/llama" -DCMAKE_CUDA_ARCHITECTURES="${CMAKE_CUDA_ARCHITECTURES:-90}" >"$work/configure.log" 2>&1 \
      || { tail -40 "$work/configure.log"; exit 1; }
    time cmake --build "$build" -j "$(nproc)" >"$work/build.log" 2>&1 || { grep -A3 error "$work/build.log" | head -60; exit 1; }
    echo "built: $(ls "$build/bin" | tr '\n' ' ')"
    ;;
  test)
    unpack tests
    nvidia-smi -L
    ctest --test-dir "$build" --output-on-failure -j 8
    HEED_REPO_ROOT="$root" HEED_NATIVE_DIR="$build/bin" "$work/app-tests/Heed.Gpu.Tests" -trait "Category=Cuda"
    ;;
  heed)
    unpack cli
    shift
    HEED_NATIVE_DIR="$build/bin" "$work/app-cli/Heed.Cli" "$@"
    ;;
  model)
    unpack models
    shift
    "$work/app-models/Heed.TestModels" "$@"
    ;;
  *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
