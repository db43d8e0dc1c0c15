#!/usr/bin/env bash
# The Heed.Runtime.Cuda13 package, verified on a GPU machine that has nvcc but no .NET SDK.
#
#   tests/gpu/cuda-package.sh prepare   here, with the .NET SDK: writes .gpu-carry/cuda-package/ (git-ignored,
#                                  about 15 MB): the llama.cpp source, the package's metadata (packed by
#                                  dotnet from the real csproj with a stand-in library) and a trimmed
#                                  self-contained publish of examples/QuickStart.
#   tests/gpu/cuda-package.sh device    on the GPU machine, from the repository root with that folder carried:
#                                  ./build.sh cuda (llama.cpp + libheed with CUDA and every CPU variant),
#                                  assembles the package from the metadata and the built libraries, lays it
#                                  out as a restore and publish would, and runs the app: it must report
#                                  backend CUDA and rerank on the GPU, and fall back to the CPU, saying
#                                  why, when no GPU is visible. Exits nonzero when any of that fails.
# HEED_MODEL overrides the model (default: the shipped one).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
carry="$root/.gpu-carry/cuda-package"
model="${HEED_MODEL:-$root/models/heed-tiny.gguf}"
package="Heed.Runtime.Cuda13"
version="0.1.0"

prepare() {
  rm -rf "$carry" && mkdir -p "$carry"
  local llama_src work
  llama_src="$("$root/native/fetch-llama.sh")"
  # Only the CPU and CUDA backends are built there; the others stay behind to keep the carry small.
  (cd "$llama_src" && tar cf - CMakeLists.txt cmake include src licenses LICENSE vendor common \
      ggml/CMakeLists.txt ggml/cmake ggml/include ggml/src/*.* ggml/src/ggml-cpu ggml/src/ggml-cuda) \
    | xz -T2 -6 >"$carry/llama.tar.xz"

  work="$(mktemp -d)"
  # The package's metadata, from dotnet pack of the real project over a stand-in library.
  mkdir -p "$work/standin/cuda13/linux-x64"
  echo stand-in >"$work/standin/cuda13/linux-x64/libggml-cuda.so"
  dotnet pack "$root/bindings/$package" -c Release -nologo -v quiet -o "$carry" \
    -p:HeedRuntimeNativeRoot="$work/standin/" -p:IntermediateOutputPath="$work/obj-cuda/"
  # The app: Heed from a local feed, published trimmed and self-contained (its own native files
  # are left out: on the GPU machine they come from the CUDA package).
  for project in bindings/Heed.Interop src/Heed bindings/Heed.Runtime.Cpu; do
    dotnet pack "$root/$project" -c Release -nologo -v quiet -o "$work/feed" -p:IntermediateOutputPath="$work/obj-$(basename "$project")/"
  done
  mkdir -p "$work/app-src"
  cp "$root/examples/QuickStart/Program.cs" "$root/examples/QuickStart/QuickStart.csproj" "$work/app-src/"
  printf '<configuration><packageSources><add key="heed-local" value="%s" /></packageSources><config><add key="globalPackagesFolder" value="%s" /></config></configuration>\n' \
    "$work/feed" "$work/packages" >"$work/app-src/nuget.config"
  dotnet publish "$work/app-src" -c Release -r linux-x64 --self-contained -p:PublishTrimmed=true -nologo -v quiet -o "$work/app"
  # Only Heed's own native files go: the .NET runtime's (libcoreclr.so, libhostfxr.so, …) must stay.
  find "$work/app" -maxdepth 1 \( -name 'libheed*.so' -o -name '*.pdb' \) -delete
  tar cf - -C "$work" app | xz -T2 -9 >"$carry/app.tar.xz"
  rm -rf "$work"
  ls -l "$carry"
}

device() {
  local work="${HEED_GPU_WORK:-/tmp/heed-cuda-package}"
  rm -rf "$work" && mkdir -p "$work/llama"
  tar xJf "$carry/llama.tar.xz" -C "$work/llama"
  tar xJf "$carry/app.tar.xz" -C "$work"
  nvidia-smi -L
  nvcc --version | tail -n 2

  echo "== CUDA build (./build.sh cuda)"
  local started=$SECONDS
  HEED_LLAMA_SOURCE_DIR="$work/llama" HEED_BUILD_DIR="$work/build" "$root/build.sh" cuda
  echo "built in $((SECONDS - started)) s"

  echo "== assembling $package $version"
  local nupkg="$work/feed/$package.$version.nupkg"
  mkdir -p "$work/feed"
  python3 - "$carry/$package.$version.nupkg" "$root/artifacts/native/cuda13/linux-x64" "$nupkg" <<'EOF'
import os, sys, zipfile
metadata, natives, out = sys.argv[1:]
with zipfile.ZipFile(metadata) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
    for entry in src.infolist():
        if not entry.filename.startswith("runtimes/"):  # the stand-in library is replaced below
            dst.writestr(entry, src.read(entry))
    for name in sorted(os.listdir(natives)):
        if name.endswith(".so"):  # the csproj's glob
            dst.write(os.path.join(natives, name), "runtimes/linux-x64/native/" + name)
EOF
  python3 -c 'import sys, zipfile; [print(f"  {i.file_size:>11} {i.filename}") for i in zipfile.ZipFile(sys.argv[1]).infolist()]' "$nupkg"

  echo "== laid out as a restore (packages/) and a linux-x64 publish (native files next to the app) would"
  local restored="$work/packages/${package,,}/$version"
  mkdir -p "$restored"
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$nupkg" "$restored"
  cp "$restored"/runtimes/linux-x64/native/*.so "$work/app/"

  local failed=0
  echo "== the app on the GPU"
  "$work/app/QuickStart" "$model" | tee "$work/gpu.log"
  grep -q "^backend: CUDA" "$work/gpu.log" || { echo "FAIL: backend is not CUDA"; failed=1; }
  grep -q "ICR on Cuda: top passage \[2\]" "$work/gpu.log" || { echo "FAIL: ICR did not rank on the GPU or ranked wrong"; failed=1; }
  grep -q "best evidence: .*71432" "$work/gpu.log" || { echo "FAIL: InfiniRetri did not find the pass key"; failed=1; }
  echo "== the same app with no GPU visible (CUDA_VISIBLE_DEVICES empty)"
  CUDA_VISIBLE_DEVICES="" "$work/app/QuickStart" "$model" | tee "$work/cpu.log"
  grep -q "^backend: CPU" "$work/cpu.log" || { echo "FAIL: no fallback to the CPU"; failed=1; }
  [[ "$(grep -c "Heed falls back to the CPU" "$work/cpu.log")" == 1 ]] || { echo "FAIL: the fallback is not logged exactly once"; failed=1; }
  ((failed == 0)) && echo "cuda-package: PASS" || { echo "cuda-package: FAIL"; exit 1; }
}

case "${1:-}" in
  prepare) prepare ;;
  device) device ;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
