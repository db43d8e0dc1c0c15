#!/usr/bin/env bash
# Heed's one entry point. On a fresh machine:
#   ./build.sh demo    set up everything and run the main job on the shipped model
#   ./build.sh test    set up everything and run all tests (ctest + dotnet test)
# Other steps: setup | native | dotnet | pack | clean. HEED_CUDA=AUTO|ON|OFF picks the
# CUDA build (AUTO: when nvcc is found); CMAKE_CUDA_ARCHITECTURES overrides sm_90.
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

mkdir -p "$root/artifacts"
case "${1:-}" in
  setup) setup ;;
  native) setup; native ;;
  dotnet) dotnet_build ;;
  test) setup; native; dotnet_build; run_tests ;;
  demo) setup; native; dotnet_build; demo ;;
  pack) setup; native; dotnet pack "$root/SDK.sln" -c Release -nologo -o "$root/artifacts/packages" ;;
  clean) rm -rf "$build_dir" "$build_dir-asan" "$root/artifacts" ;;
  *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
