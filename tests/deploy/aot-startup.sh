#!/usr/bin/env bash
# Size and start-up of examples/QuickStart as a NativeAOT binary beside the same app as a JIT
# (self-contained) app, both published in this run from one local feed and run alternately.
#   tests/deploy/aot-startup.sh [MODEL] [RUNS]      (./build.sh aot-bench builds the natives first)
# The feed: Heed, Heed.Interop and Heed.Runtime.Cpu packed from the libraries staged in
# artifacts/native/linux-x64 (HEED_NATIVE_ROOT: another folder that holds linux-x64/).
# Start-up: process start to the first line, which the app prints once the native backend is
# loaded and checked. Full run: to exit (model load, ICR and InfiniRetri on MODEL). Medians.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
model="$(realpath "${1:-$root/models/heed-tiny.gguf}")"
runs="${2:-7}"
native_root="${HEED_NATIVE_ROOT:-$root/artifacts/native}"
[[ -f "$native_root/linux-x64/libheed.so" ]] || { echo "no linux-x64 libraries in $native_root; run ./build.sh native" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
quiet() { "$@" >"$work/step.log" 2>&1 || { tail -n 40 "$work/step.log" >&2; echo "failed: $*" >&2; exit 1; }; }

# Only linux-x64 in the runtime package: the benchmark needs no other RID.
mkdir -p "$work/native" && cp -r "$native_root/linux-x64" "$work/native/linux-x64"
for project in bindings/Heed.Interop src/Heed bindings/Heed.Runtime.Cpu; do
  quiet dotnet pack "$root/$project" -c Release -nologo -o "$work/feed" -p:HeedRuntimeNativeRoot="$work/native/" \
    -p:IntermediateOutputPath="$work/obj/$(basename "$project")/"
done
mkdir -p "$work/app"
cp "$root/examples/QuickStart/Program.cs" "$root/examples/QuickStart/QuickStart.csproj" "$work/app/"
cat >"$work/app/nuget.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources><add key="heed-local" value="$work/feed" /></packageSources>
  <config><add key="globalPackagesFolder" value="$work/packages" /></config>
</configuration>
EOF
quiet dotnet publish "$work/app" -c Release -r linux-x64 -nologo --self-contained true -o "$work/jit"
quiet dotnet publish "$work/app" -c Release -r linux-x64 -nologo -p:PublishAot=true -o "$work/aot"
[[ ! -f "$work/aot/QuickStart.dll" && -f "$work/jit/QuickStart.dll" ]] || { echo "the two publishes are not JIT and NativeAOT" >&2; exit 1; }

# One run: prints "STARTUP_MS TOTAL_MS"; a run that fails or does not answer stops the benchmark.
measure() {
  local start first="" line
  start=$(date +%s%N)
  while IFS= read -r line; do
    [[ -z "$first" ]] && first=$(date +%s%N)
    echo "$line" >>"$work/last.log"
  done < <("$1" "$model" 2>&1; echo "exit $?")
  grep -q '^exit 0$' "$work/last.log" && grep -q 'InfiniRetri read .*71432' "$work/last.log" ||
    { cat "$work/last.log" >&2; echo "$1 did not answer" >&2; exit 1; }
  : >"$work/last.log"
  echo $(((first - start) / 1000000)) $((($(date +%s%N) - start) / 1000000))
}
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
bytes() { find "$1" -type f "${@:2}" -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }

measure "$work/jit/QuickStart" >/dev/null  # warm the page cache for the model and libraries
measure "$work/aot/QuickStart" >/dev/null
for _ in $(seq "$runs"); do
  measure "$work/jit/QuickStart" >>"$work/jit.times"
  measure "$work/aot/QuickStart" >>"$work/aot.times"
done
jit_start=$(cut -d' ' -f1 "$work/jit.times" | median); aot_start=$(cut -d' ' -f1 "$work/aot.times" | median)
jit_total=$(cut -d' ' -f2 "$work/jit.times" | median); aot_total=$(cut -d' ' -f2 "$work/aot.times" | median)
# The app without the native libraries (the same files in both) and without debug symbols.
jit_app=$(bytes "$work/jit" ! -name '*.so' ! -name '*.pdb' ! -name '*.dbg'); aot_app=$(bytes "$work/aot" ! -name '*.so' ! -name '*.pdb' ! -name '*.dbg')
natives=$(bytes "$work/aot" -name '*.so')

echo "QuickStart on $(basename "$model"), linux-x64, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg); median of $runs runs each, alternating"
echo "command: tests/deploy/aot-startup.sh${1:+ $1}${2:+ $2}"
awk -v js="$jit_start" -v as="$aot_start" -v jt="$jit_total" -v at="$aot_total" -v jb="$jit_app" -v ab="$aot_app" -v nb="$natives" 'BEGIN {
  printf "| %-22s | %12s | %12s | %17s |\n", "app", "start-up ms", "full run ms", "app size MB"
  printf "|%s|%s|%s|%s|\n", "------------------------", "-------------:", "-------------:", "------------------:"
  printf "| %-22s | %12d | %12d | %17.1f |\n", "JIT, self-contained", js, jt, jb / 1048576
  printf "| %-22s | %12d | %12d | %17.1f |\n", "NativeAOT", as, at, ab / 1048576
  printf "| %-22s | %12.2f | %12.2f | %17.2f |\n", "ratio AOT / JIT", as / js, at / jt, ab / jb
  printf "app size: without the native libraries (%.1f MB, the same in both) and debug symbols\n", nb / 1048576 }'
# Every run, so that the spread under load is there to see.
echo "JIT runs (start-up/full ms): $(tr ' ' / <"$work/jit.times" | tr '\n' ' ')"
echo "AOT runs (start-up/full ms): $(tr ' ' / <"$work/aot.times" | tr '\n' ' ')"
