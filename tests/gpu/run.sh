#!/usr/bin/env bash
# The GPU run, on a machine with an NVIDIA GPU and nvcc (no .NET SDK needed), from the repository
# root, with .gpu-carry/ from tests/gpu/prepare.sh beside the tree:
#   tests/gpu/run.sh build         CUDA build of llama.cpp + libheed (sm_90 unless CMAKE_CUDA_ARCHITECTURES)
#   tests/gpu/run.sh test          ctest (CPU and cuda labels) and the .NET GPU tests (Category=Cuda)
#   tests/gpu/run.sh heed ARGS...  the heed CLI on the CUDA build (e.g. bench needle --gpu-layers -1)
# Each step reuses what the previous ones left on the machine.
set -euo pipefail
root="$(pwd)"
work="${HEED_GPU_WORK:-/tmp/heed-gpu}"
build="$work/build"
app="$work/app"
mkdir -p "$work"

unpack() {
  [[ -d "$work/llama" ]] || { mkdir -p "$work/llama" && tar xJf "$root/.gpu-carry/llama.tar.xz" -C "$work/llama"; }
  [[ -d "$app" ]] || tar xJf "$root/.gpu-carry/dotnet.tar.xz" -C "$work"
}

case "${1:-}" in
  build)
    unpack
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHEED_CUDA=ON \
      -DHEED_LLAMA_SOURCE_DIR="$work/llama" -DCMAKE_CUDA_ARCHITECTURES="${CMAKE_CUDA_ARCHITECTURES:-90}" >"$work/configure.log" 2>&1 \
      || { tail -40 "$work/configure.log"; exit 1; }
    time cmake --build "$build" -j "$(nproc)" >"$work/build.log" 2>&1 || { grep -A3 error "$work/build.log" | head -60; exit 1; }
    echo "built: $(ls "$build/bin" | tr '\n' ' ')"
    ;;
  test)
    unpack
    nvidia-smi -L
    ctest --test-dir "$build" --output-on-failure -j 8
    HEED_NATIVE_DIR="$build/bin" "$app/Heed.Gpu.Tests" -trait "Category=Cuda"
    ;;
  heed)
    unpack
    shift
    HEED_NATIVE_DIR="$build/bin" "$app/Heed.Cli" "$@"
    ;;
  *) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
