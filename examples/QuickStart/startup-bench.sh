#!/usr/bin/env bash
# Start-up time and size of this QuickStart as a JIT app and as a NativeAOT binary, both
# published in one run from the packages that ./build.sh pack wrote to artifacts/packages.
#   examples/QuickStart/startup-bench.sh [MODEL] [RUNS]     (HEED_FEED: packages from elsewhere)
# Start-up: from process start to the first line (printed once the native backend is loaded and
# checked). Full run: to exit (ICR and InfiniRetri on MODEL). Medians over RUNS runs, alternating.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
model="$(realpath "${1:-$root/models/heed-tiny.gguf}")"
runs="${2:-5}"
feed="${HEED_FEED:-$root/artifacts/packages}"  # HEED_FEED: another folder of Heed packages
ls "$feed"/Heed.Runtime.Cpu.*.nupkg >/dev/null 2>&1 || { echo "no packages in $feed; run ./build.sh pack first" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/app"
cp "$root/examples/QuickStart/Program.cs" "$root/examples/QuickStart/QuickStart.csproj" "$work/app/"
cat >"$work/app/nuget.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources><add key="heed-local" value="$feed" /></packageSources>
  <config><add key="globalPackagesFolder" value="$work/packages" /></config>
</configuration>
EOF
publish() { dotnet publish "$work/app" -c Release -r linux-x64 -nologo -v quiet "$@" >"$work/publish.log" 2>&1 || {
  cat "$work/publish.log" >&2; exit 1; }; }
publish --self-contained true -o "$work/jit"
publish -p:PublishAot=true -o "$work/aot"

# One run: prints "STARTUP_MS TOTAL_MS".
measure() {
  local start first="" line
  start=$(date +%s%N)
  while IFS= read -r line; do
    [[ -z "$first" ]] && first=$(date +%s%N)
  done < <("$@" "$model")
  echo $(((first - start) / 1000000)) $((($(date +%s%N) - start) / 1000000))
}
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
# Bytes of the app itself: the native libraries are the same files in both and left out.
app_bytes() { find "$1" -type f ! -name '*.so' ! -name '*.pdb' ! -name '*.dbg' -printf '%s\n' | awk '{s+=$1} END {print s}'; }

for _ in $(seq "$runs"); do
  measure "$work/jit/QuickStart" >>"$work/jit.times"
  measure "$work/aot/QuickStart" >>"$work/aot.times"
done
jit_start=$(cut -d' ' -f1 "$work/jit.times" | median); aot_start=$(cut -d' ' -f1 "$work/aot.times" | median)
jit_total=$(cut -d' ' -f2 "$work/jit.times" | median); aot_total=$(cut -d' ' -f2 "$work/aot.times" | median)
jit_size=$(app_bytes "$work/jit"); aot_size=$(app_bytes "$work/aot")

echo "QuickStart on $(basename "$model"), linux-x64, median of $runs runs each (command: $0 $*)"
awk -v js="$jit_start" -v as="$aot_start" -v jt="$jit_total" -v at="$aot_total" -v jb="$jit_size" -v ab="$aot_size" 'BEGIN {
  printf "%-22s %12s %12s %22s\n", "app", "start-up ms", "full run ms", "app size MB (no .so)"
  printf "%-22s %12d %12d %22.1f\n", "JIT, self-contained", js, jt, jb / 1048576
  printf "%-22s %12d %12d %22.1f\n", "NativeAOT", as, at, ab / 1048576
  printf "%-22s %12.2f %12.2f %22.2f\n", "ratio AOT / JIT", as / js, at / jt, ab / jb }'
