#!/usr/bin/env bash
# The GPU measurements docs/PERFORMANCE.md still marks "not measured", ours and PyTorch's side by side, in device
# calls that each fit the device tool's 10-minute limit. On the build machine first:
#
#   dotnet publish src/Cli -c Release -r linux-x64 --self-contained -p:PublishSingleFile=true \
#       -p:EnableCompressionInSingleFile=true -o .gpu/bin          # .gpu/ in .git/info/exclude
#
# then one device call per part, carrying .gpu:
#
#   bash tools/bench/device_run.sh check     # every kernel on cuda against its float64 reference (exit 1 on a failure)
#   bash tools/bench/device_run.sh kernels   # ternary GEMV/GEMM, window attention, ViM: gpuanomaly bench + PyTorch
#   bash tools/bench/device_run.sh models    # whole window_vit model, batch 1 and 64: ours and PyTorch eager
#
# Each part writes its raw output under $OUT (what the device tool brings back), else ./device-out, one file per
# step, and ends with "part P: N steps, N failed". A part starts no step after PART_LIMIT seconds (540); those are
# reported skipped, and STEPS="name ..." reruns only them in another call. GPUANOMALY (the binary), DEVICE (cuda) and
# SMALL=1 (tiny shapes, to smoke-test this script without a GPU: DEVICE=ilgpu-cpu SMALL=1 ... kernels) override the
# defaults.
set -uo pipefail
cd "$(dirname "$0")/../.."

part=${1:?usage: device_run.sh check|kernels|models}
out=${OUT:-device-out}
bin=${GPUANOMALY:-.gpu/bin/gpuanomaly}
dev=${DEVICE:-cuda}
small=${SMALL:-0}
py=${PYTHON:-python3}
torch_dev=$([ "$dev" = cuda ] && echo cuda || echo cpu)
mkdir -p "$out"
steps=0 failed=0

# step NAME COMMAND...: runs it with a time limit, output in $out/NAME.txt, the exit code on the last line. A part
# stops starting steps once PART_LIMIT seconds (default 540, under the device tool's 600) are spent: the rest are
# reported as skipped, for a second call.
step() {
  local name=$1; shift
  # STEPS="a b": run only those steps of the part (the ones a previous call skipped).
  if [ -n "${STEPS:-}" ] && [[ " $STEPS " != *" $name "* ]]; then return; fi
  steps=$((steps + 1))
  local left=$(( ${PART_LIMIT:-540} - SECONDS ))
  if [ "$left" -lt 30 ]; then
    echo "== $name: skipped, the part's time is spent ($SECONDS s)"
    failed=$((failed + 1))
    return
  fi
  local limit=$(( ${STEP_LIMIT:-300} < left ? ${STEP_LIMIT:-300} : left ))
  echo "== $name: $*"
  local t0=$SECONDS
  timeout "$limit" "$@" > "$out/$name.txt" 2>&1
  local rc=$?
  echo "exit $rc after $((SECONDS - t0)) s" >> "$out/$name.txt"
  [ "$rc" -eq 0 ] || failed=$((failed + 1))
  echo "   exit $rc, $((SECONDS - t0)) s"
}


# $bin is word-split on purpose: elsewhere it may be "dotnet path/gpuanomaly.dll".
small_flag=$([ "$small" = 1 ] && echo --small || true)
case "$part" in
  check)
    command -v nvidia-smi > /dev/null && step nvidia_smi nvidia-smi
    step check $bin check --device "$dev" --cases "$([ "$small" = 1 ] && echo 2 || echo 20)" --seed 11
    ;;
  kernels)
    # Ours: ternary A32/A8 (weights cycled past L2), the fp32 Linear GEMVs, attention, ViM; peaks measured first.
    step bench_ternary $bin bench --device "$dev" $small_flag --filter ternary --json "$out/bench_ternary.json"
    step bench_linear $bin bench --device "$dev" $small_flag --filter "linear gemv" --json "$out/bench_linear.json"
    step bench_attention $bin bench --device "$dev" $small_flag --filter window_attention --json "$out/bench_attention.json"
    step bench_vim $bin bench --device "$dev" $small_flag --filter vim_score --json "$out/bench_vim.json"
    # PyTorch: fp16 and fp32 linear on the same shapes, eager windowed attention, eager ViM.
    step torch_ternary_attention "$py" tools/bench/torch_ternary_attention.py --device "$torch_dev" $small_flag
    step torch_vim "$py" tools/bench/torch_vim.py --device "$torch_dev" $small_flag --json "$out/torch_vim.json"
    ;;
  models)
    model=src/Models/Default/window_vit_fmnist.safetensors
    for b in 1 64; do
      [ "$small" = 1 ] && [ "$b" = 64 ] && continue
      step "model_ours_b$b" $bin bench --device "$dev" --model "$model" --batch "$b" --repeat "$([ "$small" = 1 ] && echo 2 || echo 50)"
      step "model_torch_b$b" "$py" tools/bench/window_vit_model.py --device "$torch_dev" --model "$model" --batch "$b" \
        --repeat "$([ "$small" = 1 ] && echo 2 || echo 50)"
    done
    ;;
  *)
    echo "unknown part '$part' (check, kernels, models)" >&2
    exit 2
    ;;
esac
echo "part $part: $steps steps, $failed failed (raw output in $out)"
[ "$failed" -eq 0 ]
