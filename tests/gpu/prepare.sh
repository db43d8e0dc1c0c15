#!/usr/bin/env bash
# Packs, on a development machine, what the GPU run (tests/gpu/run.sh) needs and the GPU machine
# lacks: the pinned llama.cpp source (trimmed to the CPU and CUDA backends) and self-contained
# publishes of the GPU tests and the heed CLI (that machine has no .NET SDK). Output: .gpu-carry/
# in the repository root (git-ignored): llama.tar.xz, tests.tar.xz, cli.tar.xz, models.tar.xz (the test
# model writer, for the 1B-class random model); carry what a call needs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$root/.gpu-carry"
rm -rf "$out" && mkdir -p "$out"

llama_src="$("$root/native/fetch-llama.sh")"
# Backends other than CPU and CUDA are never built there; leaving them out keeps the carry small.
(cd "$llama_src" && tar cf - CMakeLists.txt cmake include src licenses LICENSE vendor common \
    ggml/CMakeLists.txt ggml/cmake ggml/include \
    $(ls -d ggml/src/* | grep -vE '/ggml-(cann|sycl|vulkan|opencl|metal|hexagon|webgpu|openvino|virtgpu|et|musa|hip|rpc|zdnn|zendnn|blas)$')) \
  | xz -T2 -6 >"$out/llama.tar.xz"

publish="$(mktemp -d)"
# Trimmed, so that they travel; the test project's trim warnings come from xunit's reflection,
# which partial trimming leaves intact (it trims framework assemblies only). One tarball per app:
# the tree that travels is limited, and a call needs only the app it runs.
for app in tests:tests/Heed.Gpu.Tests cli:src/Heed.Cli models:tests/Heed.TestModels; do
  name="${app%%:*}" project="${app#*:}"
  dotnet publish "$root/$project" -c Release -r linux-x64 --self-contained -nologo -v quiet \
    -p:PublishTrimmed=true -p:TrimMode=partial -p:TreatWarningsAsErrors=false -p:NoWarn=IL2104 -o "$publish/app-$name"
  # The GPU run points HEED_NATIVE_DIR at its CUDA build: the CPU build's libraries need not travel.
  find "$publish/app-$name" -maxdepth 1 \( -name 'libheed*.so' -o -name 'lib*llama*.so' -o -name 'lib*ggml*.so' \) -delete
  tar cf - -C "$publish" "app-$name" | xz -T2 -9 >"$out/$name.tar.xz"
done
rm -rf "$publish"
ls -l "$out"
