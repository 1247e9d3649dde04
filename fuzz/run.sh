#!/usr/bin/env bash
# fuzz/run.sh TARGET [EXECS] [SEED]
#
# Publishes the harness, instruments the assemblies that hold TARGET's code with SharpFuzz, and runs AFL++ on
# fuzz/corpus/TARGET for about EXECS executions (default 1000000) with a fixed RNG seed (default 1). Prints one
# line from fuzz/findings/TARGET/default/fuzzer_stats and exits non-zero when AFL++ saved a crash or a hang.
#
# Needs: afl-fuzz (Debian: apt-get install 'afl++'), the SharpFuzz tool
#   dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path /tmp/sharpfuzz-tool
# (SHARPFUZZ=path overrides where it is looked for). TARGET: safetensors | image | config | onnx.
set -euo pipefail

target=${1:?usage: fuzz/run.sh safetensors|image|config|onnx [EXECS] [SEED]}
execs=${2:-1000000}
seed=${3:-1}
here=$(cd "$(dirname "$0")" && pwd)
out=$here/out/$target
findings=$here/findings/$target
sharpfuzz=${SHARPFUZZ:-$(command -v sharpfuzz || echo /tmp/sharpfuzz-tool/sharpfuzz)}

case $target in
  safetensors) dlls="GpuAnomaly.Engine.dll GpuAnomaly.Kernels.dll" ;;
  image) dlls="gpuanomaly.dll StbImageSharp.dll" ;;
  config) dlls="GpuAnomaly.Models.dll" ;;
  onnx) dlls="GpuAnomaly.Engine.dll Google.Protobuf.dll" ;;
  *) echo "unknown target '$target' (safetensors, image, config, onnx)" >&2; exit 2 ;;
esac

rm -rf "$out"
dotnet publish "$here/GpuAnomaly.Fuzz/GpuAnomaly.Fuzz.csproj" -c Release -o "$out" --nologo -v quiet
for dll in $dlls; do "$sharpfuzz" "$out/$dll"; done

rm -rf "$findings"
mkdir -p "$(dirname "$findings")"
# The harness is a .NET apphost, not an afl-instrumented ELF (SharpFuzz instruments the IL): skip afl's binary
# check. Shared machine: no CPU pinning, no cpufreq or core_pattern requirements.
GPUANOMALY_FUZZ_LAST_INPUT=$findings.last-input \
AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 \
  afl-fuzz -i "$here/corpus/$target" -o "$findings" -x "$here/dict/$target.dict" -E "$execs" -s "$seed" -t 5000 -m none \
  -- "$out/GpuAnomaly.Fuzz" "$target" > "$findings.log" 2>&1 || { tail -30 "$findings.log" >&2; exit 1; }

stats=$findings/default/fuzzer_stats
get() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
crashes=$(get saved_crashes); hangs=$(get saved_hangs)
echo "$target: execs_done $(get execs_done), execs_per_sec $(get execs_per_sec), run_time $(get run_time) s," \
  "corpus_count $(get corpus_count), saved_crashes $crashes, saved_hangs $hangs, seed $seed"
[ "$crashes" = 0 ] && [ "$hangs" = 0 ]
