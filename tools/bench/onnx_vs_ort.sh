#!/usr/bin/env bash
# Whole models on the cpu, ours against ONNX Runtime 1.32 (C#, bench/ only), side by side, in one command:
#
#   bash tools/bench/onnx_vs_ort.sh            # ROUNDS=5 REPEAT=20 ONLY=us_default (a name filter) THREADS="1 2"
#   MANIFEST=manifest_models.json bash tools/bench/onnx_vs_ort.sh   # the ONNX models users bring (issue 13): ResNet-18,
#       Wide-ResNet-50-2, PatchCore-style, a transformer block, run by our engine from the ONNX file itself
#       (tools/export/export_onnx_models.py writes them and that manifest)
#
# Exports the bundled models to ONNX (tools/export/export_onnx.py --all $DATA, default /tmp/onnx_models: opset 17,
# fixed shapes, from the PyTorch reference modules), builds the bench (Release), then for each thread count runs
# `GpuAnomaly.Bench onnx` (bench/GpuAnomaly.Bench/OnnxSideBySide.cs): both runtimes in one process, the same random
# images, outputs checked to agree (relative L2 <= 1e-4) before timing, interleaved rounds, medians. The ratio is
# ONNX Runtime's time over ours: above 1 means ours is faster. One process per thread count, pinned with taskset to
# cores 0..T-1 (DOTNET_PROCESSOR_COUNT alone does not keep .NET's pool on T cores), DOTNET_PROCESSOR_COUNT=T for our
# worker count, IntraOpNumThreads=T for ONNX Runtime. Set ORT_PROFILE=DIR to also write ONNX Runtime's own profiles.
# Before and after, the FMA peak the cores deliver at that moment (`gpuanomaly bench --filter peak`): neighbours on the
# host can take half of it (measured 109 instead of ~230 GFLOP/s on 2 threads); rows measured then are not valid.
set -euo pipefail
cd "$(dirname "$0")/../.."

data=${DATA:-/tmp/onnx_models}
py=${PYTHON:-/usr/bin/python3}
bench=bench/GpuAnomaly.Bench/bin/Release/net10.0/GpuAnomaly.Bench.dll
manifest=${MANIFEST:-manifest.json}
args=(--manifest "$data/$manifest" --rounds "${ROUNDS:-5}" --repeat "${REPEAT:-20}")
[ -n "${ONLY:-}" ] && args+=(--only "$ONLY")
[ -n "${ORT_PROFILE:-}" ] && args+=(--ort-profile "$ORT_PROFILE")

if ! "$py" -c "import torch, onnx" 2>/dev/null; then
    echo "torch or onnx missing: apt-get install -y python3-torch python3-onnx python3-numpy" >&2
    exit 1
fi
if [ "$manifest" = manifest_models.json ]; then
    [ -f "$data/$manifest" ] || "$py" tools/export/export_onnx_models.py "$data" > "$data.export_models.log" 2>&1
else
    [ -f "$data/manifest.json" ] || "$py" tools/export/export_onnx.py --all "$data" > "$data.export.log"
fi
dotnet build bench/GpuAnomaly.Bench -c Release 2>&1 | grep -E " error " && exit 1
# The VM's cores are shared with neighbours: print what they deliver now (an idle machine gives about 2x on 2 threads).
dotnet build src/Cli -c Release 2>&1 | grep -E " error " && exit 1
peaks() {
    for t in ${THREADS:-1 2}; do
        echo -n "  $t thread(s): "
        DOTNET_PROCESSOR_COUNT=$t taskset -c "$(seq -s, 0 $((t - 1)))" dotnet src/Cli/bin/Release/net10.0/gpuanomaly.dll bench --device cpu --filter peak \
            | sed -n 's/^measured peak: //p'
    done
}
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg); peaks before:"
peaks
fail=0
for t in ${THREADS:-1 2}; do
    cores=$(seq -s, 0 $((t - 1)))
    DOTNET_PROCESSOR_COUNT=$t taskset -c "$cores" dotnet "$bench" onnx "${args[@]}" || fail=1
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); peaks after:"
peaks
exit $fail
