#!/usr/bin/env bash
# Fashion-MNIST one-vs-rest with memory-bank models, every step by the engine (docs/RESULTS.md):
#   bash tools/results/fmnist_memory_bank.sh OUT_DIR [CLASSES] [-- extra fit options]
# For each class: writes the Folder dataset (tools/export/fmnist_folder.py), builds the model from the class's
# training images with `gpuanomaly fit --method memory-bank` (10% held out for the threshold), evaluates it on
# the whole test set with `gpuanomaly eval`, and leaves OUT_DIR/<class>.json. Summarize with fmnist_table.py.
set -euo pipefail
out=${1:?usage: fmnist_memory_bank.sh OUT_DIR [CLASSES] [-- fit options]}
classes=${2:-0 1 2 3 4 5 6 7 8 9}
shift $(( $# >= 2 ? 2 : 1 )) || true
[ "${1:-}" = "--" ] && shift
cd "$(dirname "$0")/../.."
mkdir -p "$out"
dotnet build src/Cli -c Release -v q -nologo >/dev/null
cli=(dotnet src/Cli/bin/Release/net10.0/gpuanomaly.dll)
for c in $classes; do
  data=$(mktemp -d)
  /usr/bin/python3 tools/export/fmnist_folder.py --normal-class "$c" --out "$data"
  start=$(date +%s)
  "${cli[@]}" fit --method memory-bank --data "$data" --out "$out/$c.safetensors" --device cpu --normal-class "$c" "$@" | tee "$out/$c.fit.txt"
  "${cli[@]}" eval --data "$data" --model "$out/$c.safetensors" --device cpu --json "$out/$c.json" > "$out/$c.eval.txt"
  echo "class $c: $(grep -o '"image_auroc": [0-9.]*' "$out/$c.json") ($(( $(date +%s) - start )) s fit + eval)"
  rm -rf "$data"
done
