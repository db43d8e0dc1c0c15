#!/usr/bin/env bash
# examples/QuickStart as a linux-arm64 app, run under qemu-aarch64 on this x86-64 machine:
# Heed, Heed.Interop and Heed.Runtime.Cpu are packed into a local feed (the runtime package
# carrying the cross-compiled linux-arm64 libraries), the app restores from it and is published
# with `dotnet publish -r linux-arm64 --self-contained` (the arm64 runtime pack comes through
# NuGet), then runs ICR and InfiniRetri on the shipped model under emulation.
#   ./build.sh arm64-app        builds and stages the arm64 libraries, then runs this
#   tests/deploy/arm64-quickstart.sh [MODEL]   when artifacts/native/linux-arm64 is staged
# Manual, not in CI: emulating .NET's JIT and the model takes minutes (the README says how long).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
model="$(realpath "${1:-$root/models/heed-tiny.gguf}")"
natives="$root/artifacts/native/linux-arm64"
sysroot=/usr/aarch64-linux-gnu  # Debian's arm64 libc, libstdc++ and libgomp (the cross compiler's)
[[ -f "$natives/libheed.so" ]] || { echo "no linux-arm64 libraries in ${natives#$root/}; run ./build.sh arm64-app" >&2; exit 1; }
command -v qemu-aarch64-static >/dev/null || { echo "qemu-aarch64-static is needed (apt-get install qemu-user-static)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
step() { printf '==> %s\n' "$*" >&2; }
quiet() { "$@" >"$work/step.log" 2>&1 || { tail -n 40 "$work/step.log" >&2; echo "failed: $*" >&2; exit 1; }; }

step "packing Heed, Heed.Interop and Heed.Runtime.Cpu (linux-arm64 only) into a local feed"
# The runtime package from a folder that holds only linux-arm64, so the app cannot pick up x64 files.
mkdir -p "$work/native" && cp -r "$natives" "$work/native/linux-arm64"
for project in bindings/Heed.Interop src/Heed bindings/Heed.Runtime.Cpu; do
  # Its own obj folder: packing must not disturb the repository's build.
  quiet dotnet pack "$root/$project" -c Release -nologo -o "$work/feed" -p:HeedRuntimeNativeRoot="$work/native/" \
    -p:IntermediateOutputPath="$work/obj/$(basename "$project")/"
done
unzip -l "$work/feed"/Heed.Runtime.Cpu.*.nupkg | grep -o 'runtimes/[^ ]*' | sed 's/^/   /' >&2

mkdir -p "$work/app"
cp "$root/examples/QuickStart/Program.cs" "$root/examples/QuickStart/QuickStart.csproj" "$work/app/"
cat >"$work/app/nuget.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources><add key="heed-local" value="$work/feed" /></packageSources>
  <config><add key="globalPackagesFolder" value="$work/packages" /></config>
</configuration>
EOF
step "dotnet publish -r linux-arm64 --self-contained (restored from the local feed)"
start=$(date +%s)
quiet dotnet publish "$work/app" -c Release -r linux-arm64 --self-contained true -nologo -o "$work/arm64"
echo "   published in $(($(date +%s) - start)) s: $(file -b "$work/arm64/QuickStart" | cut -d, -f1-2)" >&2
ls "$work/arm64"/*.so | xargs -n1 basename | sed 's/^/   /' >&2

step "QuickStart under qemu-aarch64-static on $(basename "$model")"
# No arm64 ICU here: invariant globalization (the QuickStart needs no culture data).
start=$(date +%s)
set +e
DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 qemu-aarch64-static -L "$sysroot" "$work/arm64/QuickStart" "$model" 2>&1 | tee "$work/run.log"
rc=${PIPESTATUS[0]}
set -e
seconds=$(($(date +%s) - start))
[[ $rc -eq 0 ]] || { echo "the arm64 QuickStart exited $rc under qemu-aarch64" >&2; exit 1; }
grep -q 'loaded CPU backend from .*libheed-ggml-cpu[^ ]*\.so' "$work/run.log" || { echo "no CPU backend line in the arm64 run" >&2; exit 1; }
grep -q 'top passage \[2\] The pass key of the staging server is 48213' "$work/run.log" || { echo "ICR under qemu-aarch64 did not rank the pass-key passage first" >&2; exit 1; }
grep -Eq 'InfiniRetri read [0-9]+ tokens in [0-9]+ chunks; best evidence: .*71432' "$work/run.log" || { echo "InfiniRetri under qemu-aarch64 did not find the pass key" >&2; exit 1; }
echo "linux-arm64 QuickStart under qemu-aarch64: ICR and InfiniRetri answered, $seconds s"
