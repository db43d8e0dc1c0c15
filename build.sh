#!/usr/bin/env bash
# Heed's one entry point. On a fresh machine:
#   ./build.sh demo    set up everything and run the main job on the shipped model
#   ./build.sh test    set up everything and run all tests (ctest + dotnet test)
# Other steps: setup | native | dotnet | qemu | arm64-app | aot-bench | cuda | pack | clean.
# HEED_CUDA=AUTO|ON|OFF picks the CUDA build (AUTO: when nvcc is found); CMAKE_CUDA_ARCHITECTURES
# overrides sm_90. qemu: x86-64 CPU levels and linux-arm64 native tests under emulation (CI runs
# it). arm64-app: the QuickStart published for linux-arm64, run under qemu. aot-bench: NativeAOT
# vs JIT QuickStart, size and start-up. cuda: the CUDA build for the package. pack: both RIDs
# with every CPU variant, and Heed.Runtime.Cuda13 where nvcc is found.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build_dir="${HEED_BUILD_DIR:-$root/build}"
rid="linux-x64"
stage="$root/artifacts/native/$rid"
jobs="${HEED_JOBS:-$(nproc)}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

setup() {
  local need=()
  command -v cmake >/dev/null || need+=(cmake)
  command -v g++ >/dev/null || need+=(g++)
  command -v git >/dev/null || need+=(git)
  command -v npm >/dev/null || need+=(nodejs npm)
  command -v make >/dev/null || need+=(make)
  # Deploying: emulated x86 levels and linux-arm64, and the arm64 cross compilers.
  command -v qemu-x86_64-static >/dev/null || need+=(qemu-user-static)
  command -v aarch64-linux-gnu-g++ >/dev/null || need+=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu)
  [[ -f /usr/src/googletest/CMakeLists.txt ]] || need+=(googletest)
  [[ -f /usr/include/gtest/gtest.h ]] || need+=(libgtest-dev)
  [[ -x /usr/lib/postgresql/15/bin/initdb ]] || need+=(postgresql-15)
  [[ -x /usr/lib/postgresql/15/bin/pg_config ]] && [[ -d /usr/include/postgresql/15/server ]] || need+=(postgresql-server-dev-15)
  if ((${#need[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
      echo "missing: ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
      exit 1
    fi
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if ! command -v dotnet >/dev/null; then
    echo "the .NET 10 SDK is needed (dotnet on PATH); install it, then run ./build.sh again" >&2
    exit 1
  fi
  pgvector
}

# pgvector for the PostgreSQL store's tests, built from the vendored source with PGXS.
pgvector() {
  local pg_config=/usr/lib/postgresql/15/bin/pg_config tarball="$root/../shared/vendor/pgvector-0.8.6.tar.gz"
  [[ -f "$($pg_config --sharedir)/extension/vector.control" ]] && return 0
  if [[ ! -f "$tarball" ]]; then
    echo "pgvector is not installed and its source is missing (expected $tarball)" >&2
    exit 1
  fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "pgvector is not installed; run ./build.sh setup as root to build it from $tarball" >&2
    exit 1
  fi
  say "building pgvector 0.8.6 from the vendored source"
  local work
  work="$(mktemp -d)"
  tar -xzf "$tarball" -C "$work"
  # OPTFLAGS="" keeps -march=native out: the extension must load on any x86-64 host.
  if ! make -C "$work"/pgvector-* PG_CONFIG="$pg_config" OPTFLAGS="" -j "$jobs" >"$root/artifacts/pgvector-build.log" 2>&1 ||
     ! make -C "$work"/pgvector-* PG_CONFIG="$pg_config" install >>"$root/artifacts/pgvector-build.log" 2>&1; then
    tail -n 30 "$root/artifacts/pgvector-build.log" >&2; rm -rf "$work"; exit 1
  fi
  rm -rf "$work"
}

native() {
  local llama_src
  llama_src="$("$root/native/fetch-llama.sh")"
  say "building llama.cpp v0.5.0 and libheed (HEED_CUDA=${HEED_CUDA:-AUTO})"
  local args=(-S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release
              -DHEED_LLAMA_SOURCE_DIR="$llama_src" -DHEED_CUDA="${HEED_CUDA:-AUTO}")
  [[ -n "${CMAKE_CUDA_ARCHITECTURES:-}" ]] && args+=(-DCMAKE_CUDA_ARCHITECTURES="$CMAKE_CUDA_ARCHITECTURES")
  [[ -n "${HEED_SANITIZE:-}" ]] && args+=(-DHEED_SANITIZE="$HEED_SANITIZE")
  cmake "${args[@]}" >"$root/artifacts/cmake-configure.log" 2>&1 || {
    tail -n 40 "$root/artifacts/cmake-configure.log" >&2; exit 1; }
  if ! cmake --build "$build_dir" -j "$jobs" >"$root/artifacts/cmake-build.log" 2>&1; then
    grep -E -A3 "error" "$root/artifacts/cmake-build.log" | head -n 60 >&2
    echo "native build failed; the full log is artifacts/cmake-build.log" >&2
    exit 1
  fi
  rm -rf "$stage" && mkdir -p "$stage"
  # Libraries only, as plain files: the loader finds them next to each other ($ORIGIN).
  find "$build_dir/bin" -maxdepth 1 -name 'lib*.so' -exec cp -L {} "$stage/" \;
  say "native libraries staged in ${stage#$root/}: $(cd "$stage" && ls | tr '\n' ' ')"
}

dotnet_build() {
  say "building the .NET solution"
  dotnet build "$root/SDK.sln" -c Release -nologo -v quiet -clp:ErrorsOnly
}

run_tests() {
  say "native tests (ctest)"
  local label_args=() dotnet_filter=()
  # Without a GPU the CUDA cases cannot run: leave them out rather than count them as passed.
  if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
    label_args=(-LE cuda); dotnet_filter=(--filter "Category!=Cuda")
  fi
  ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" "${label_args[@]}"
  say "native tests under AddressSanitizer, LeakSanitizer and UBSan (libheed kernels, no llama.cpp)"
  local asan_dir="$build_dir-asan"
  cmake -S "$root" -B "$asan_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHEED_WITH_LLAMA=OFF -DHEED_CUDA=OFF \
    -DHEED_SANITIZE=ON >"$root/artifacts/cmake-asan.log" 2>&1 && cmake --build "$asan_dir" -j "$jobs" >>"$root/artifacts/cmake-asan.log" 2>&1 || {
    tail -n 40 "$root/artifacts/cmake-asan.log" >&2; exit 1; }
  ASAN_OPTIONS=detect_leaks=1 ctest --test-dir "$asan_dir" --output-on-failure -j "$jobs"
  say ".NET tests (dotnet test)"
  dotnet test "$root/SDK.sln" -c Release -nologo --no-build "${dotnet_filter[@]}"
}

demo() {
  local model="${HEED_DEMO_MODEL:-$root/models/heed-tiny.gguf}"
  local cli=(dotnet "$root/src/Heed.Cli/bin/Release/net10.0/Heed.Cli.dll")
  if [[ ! -f "$model" ]]; then
    model="$root/artifacts/demo/tiny-random.gguf"
    say "no shipped model yet: generating a tiny random-weight model at ${model#$root/} (its answers are noise)"
    dotnet "$root/tests/Heed.TestModels/bin/Release/net10.0/Heed.TestModels.dll" "$model"
  fi
  # A document far longer than the model's context, with one pass key in the middle.
  local haystack="$root/artifacts/demo/haystack.txt"
  mkdir -p "$(dirname "$haystack")"
  {
    for i in $(seq 1 900); do
      echo "The package manager keeps track of installed files. The manual page lists the options of each command."
      [[ $i -eq 450 ]] && echo "The pass key is 71432. Remember it. 71432 is the pass key."
    done
  } >"$haystack"
  say "model"
  "${cli[@]}" info --model "$model"
  say "InfiniRetri: find the pass key in a $(wc -c <"$haystack")-byte document"
  "${cli[@]}" ask --model "$model" --file "$haystack" --question "What is the pass key?" --show-evidence
  say "in-context re-ranking of examples/data/docs.jsonl"
  "${cli[@]}" rerank --model "$model" --query "What is the pass key of the staging server?" --docs "$root/examples/data/docs.jsonl" --top 3
}

# --- Deploying (issue 13): every x86-64 level, linux-arm64, the CUDA runtime package ----------
# Each target has a build folder of its own next to $build_dir; libraries are referred to by glob
# (lib*.so), so renaming them needs no change here. The shipped model, for the smoke runs:
shipped_model="$root/models/heed-tiny.gguf"
variants_dir="$build_dir-variants"
arm64_dir="$build_dir-arm64"
cuda_dir="$build_dir-cuda"
# ggml's CPU variants the qemu tests load: x64 (SSE2), sse42 and sandybridge (AVX, no AVX2), the
# ones the full set would pick on those CPUs too. The qemu step builds only these; pack builds all.
test_variants=(x64 sse42 sandybridge)

configure() { # DIR LOG CMAKE_ARGS...
  local dir="$1" log="$root/artifacts/$2"; shift 2
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DHEED_LLAMA_SOURCE_DIR="$("$root/native/fetch-llama.sh")" \
    "$@" >"$log" 2>&1 || { tail -n 40 "$log" >&2; exit 1; }
}

build_targets() { # DIR LOG [TARGET/fast...]; no targets: everything
  local dir="$1" log="$root/artifacts/$2"; shift 2
  local ok=1
  if (($#)); then
    # "/fast" builds one target without its dependencies (so ggml does not pull in every
    # variant); the list is in dependency order, object libraries (…-feats) included.
    for target in "$@"; do make -C "$dir" -j "$jobs" "$target" >>"$log" 2>&1 || { ok=0; break; }; done
  else
    cmake --build "$dir" -j "$jobs" >"$log" 2>&1 || ok=0
  fi
  ((ok)) || { grep -iE -A3 "error|no rule" "$log" | head -n 60 >&2 || true; echo "build failed; the log is ${log#$root/}" >&2; exit 1; }
}

stage_libraries() { # BUILD_DIR DEST
  rm -rf "$2" && mkdir -p "$2"
  find "$1/bin" -maxdepth 1 -name 'lib*.so' -exec cp -L {} "$2/" \;
  say "staged ${2#$root/}: $(cd "$2" && ls | tr '\n' ' ')"
}

native_variants() { # all | test
  say "x86-64 CPU variants of ggml ($1)"
  configure "$variants_dir" cmake-variants.log -G "Unix Makefiles" -DHEED_CUDA=OFF -DHEED_CPU_ALL_VARIANTS=ON
  if [[ "$1" == all ]]; then
    build_targets "$variants_dir" build-variants.log
  else
    : >"$root/artifacts/build-variants.log"
    local targets=(ggml-base/fast) v
    for v in "${test_variants[@]}"; do targets+=("ggml-cpu-$v-feats/fast" "ggml-cpu-$v/fast"); done
    build_targets "$variants_dir" build-variants.log "${targets[@]}" ggml/fast llama/fast \
      heed/fast heed_example_attention_mass/fast heed_llama_peer/fast heed_cpu_variant_probe/fast
  fi
}

native_arm64() { # all (llama.cpp and libheed, for the package) | kernels (libheed, its tests, the C example)
  command -v aarch64-linux-gnu-g++ >/dev/null || { echo "g++-aarch64-linux-gnu is needed (./build.sh setup installs it)" >&2; exit 1; }
  say "linux-arm64 cross build ($1)"
  local dir="$arm64_dir" with_llama=ON
  [[ "$1" == kernels ]] && { dir="$arm64_dir-kernels"; with_llama=OFF; }
  configure "$dir" "cmake-arm64-$1.log" -DCMAKE_TOOLCHAIN_FILE="$root/native/toolchains/aarch64-linux-gnu.cmake" \
    -DHEED_CUDA=OFF -DHEED_WITH_LLAMA="$with_llama" -DHEED_BUILD_TESTS="$([[ $1 == kernels ]] && echo ON || echo OFF)" \
    -DHEED_GTEST_SOURCE_DIR=/usr/src/googletest
  build_targets "$dir" "build-arm64-$1.log"
}

native_cuda() {
  say "CUDA build for the Heed.Runtime.Cuda13 package (sm ${CMAKE_CUDA_ARCHITECTURES:-90})"
  configure "$cuda_dir" cmake-cuda.log -DHEED_CUDA=ON -DHEED_CPU_ALL_VARIANTS=ON \
    -DCMAKE_CUDA_ARCHITECTURES="${CMAKE_CUDA_ARCHITECTURES:-90}" -DHEED_BUILD_TESTS=OFF
  build_targets "$cuda_dir" build-cuda.log
}

# As x86-64 CPU model $1 under qemu: which CPU variant ggml loads (must be $2), the C example, and
# greedy generation with llama.cpp on the shipped model.
qemu_x86_level() { # CPU_MODEL EXPECTED_VARIANT
  local out="$root/artifacts/qemu-$1.log" bin="$variants_dir/bin" loaded continuation
  run_logged() { qemu-x86_64-static -cpu "$1" "${@:2}" >>"$out" 2>&1 || { cat "$out" >&2; echo "failed as $1: ${*:2}" >&2; exit 1; }; }
  : >"$out"
  run_logged "$1" "$bin/heed_cpu_variant_probe" "$bin"
  run_logged "$1" "$bin/heed_example_attention_mass"
  run_logged "$1" "$bin/heed_llama_peer" "$shipped_model" "The pass key is 71432. Remember it. The pass key is" 4
  loaded="$(grep -o 'loaded CPU backend from [^ ]*' "$out" | sed 's|.*/||' || true)"
  continuation="$(grep -o '"continuation":\[[0-9][^]]*\]' "$out" || true)"
  echo "$1: CPU variant ${loaded:-none}; C example: $(grep -c '^total .*(expected' "$out") check passed; generation: $continuation"
  [[ "$loaded" == *"ggml-cpu-$2.so" ]] || { echo "expected the $2 variant on $1" >&2; exit 1; }
  [[ -n "$continuation" ]] || { echo "no generated tokens on $1" >&2; exit 1; }
  # Greedy tokens from every level must agree: a variant that computes wrong would differ.
  first_continuation="${first_continuation:-$continuation}"
  [[ "$continuation" == "$first_continuation" ]] || { echo "generation on $1 differs from the first level's ($first_continuation)" >&2; exit 1; }
}

qemu_tests() {
  command -v qemu-x86_64-static >/dev/null || { echo "qemu-user-static is needed (./build.sh setup installs it)" >&2; exit 1; }
  say "x86-64 levels under qemu-x86_64: SSE2 only (qemu64), SSE4.2 without AVX (Nehalem), AVX without AVX2 (SandyBridge)"
  qemu_x86_level qemu64 x64
  qemu_x86_level Nehalem sse42
  qemu_x86_level SandyBridge sandybridge
  say "linux-arm64 under qemu-aarch64: the kernel tests and the C example (ctest runs them through the emulator)"
  ctest --test-dir "$arm64_dir-kernels" --output-on-failure -j "$jobs"
}

# The qemu step with the time of each part (CI prints it; the README quotes it).
qemu_step() {
  local t0=$SECONDS t1 t2
  native_variants test; t1=$SECONDS
  native_arm64 kernels; t2=$SECONDS
  qemu_tests
  say "qemu step: $((SECONDS - t0)) s (x86 variants build $((t1 - t0)) s, arm64 build $((t2 - t1)) s, emulated runs $((SECONDS - t2)) s; load $(cut -d' ' -f1-3 /proc/loadavg))"
}

pack() {
  native_variants all
  stage_libraries "$variants_dir" "$root/artifacts/native/linux-x64"
  native_arm64 all
  stage_libraries "$arm64_dir" "$root/artifacts/native/linux-arm64"
  rm -rf "$root/artifacts/native/cuda13"
  if command -v nvcc >/dev/null; then
    native_cuda
    stage_libraries "$cuda_dir" "$root/artifacts/native/cuda13/linux-x64"
  else
    say "no nvcc: Heed.Runtime.Cuda13 is not packed here"
  fi
  dotnet pack "$root/SDK.sln" -c Release -nologo -o "$root/artifacts/packages"
}
# --- end of Deploying ------------------------------------------------------------------------

mkdir -p "$root/artifacts"
case "${1:-}" in
  setup) setup ;;
  native) setup; native ;;
  dotnet) dotnet_build ;;
  test) setup; native; dotnet_build; run_tests ;;
  demo) setup; native; dotnet_build; demo ;;
  pack) setup; pack ;;
  qemu) setup; qemu_step ;;
  arm64-app) setup; native_arm64 all; stage_libraries "$arm64_dir" "$root/artifacts/native/linux-arm64"
             "$root/tests/deploy/arm64-quickstart.sh" ;;
  aot-bench) setup; native; "$root/tests/deploy/aot-startup.sh" ;;
  cuda) native_cuda; stage_libraries "$cuda_dir" "$root/artifacts/native/cuda13/linux-x64" ;;
  clean) rm -rf "$build_dir" "$build_dir-asan" "$variants_dir" "$arm64_dir" "$arm64_dir-kernels" "$cuda_dir" "$root/artifacts" ;;
  *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
