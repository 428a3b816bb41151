#!/usr/bin/env bash
# Controlled runs: which training choice controls the mask tax (docs/embedded.md).
#
#   bash scripts/controlled.sh mdlm_branch            # configs/embedded/cpu/mdlm_branch_*.json
#   bash scripts/controlled.sh mdlm_dream_cont default eostail   # only these variants
#
# Each variant config differs from `<prefix>_default.json` in one field (tests check it). The
# variants train one after another on one core (rerunning resumes or skips finished ones), then
# one masks probe scores every variant's final/ on the same items, and `masktax compare` plots
# them together: runs/controlled/<prefix>/{<variant>/, masks/, compare/}.
# Environment: N_ITEMS (6 test points per dataset), GRID (0,2,10,50,200), DEVICE (cpu), PROBE (1; 0
# trains only, e.g. two lanes of variants on two cores, then one run with PROBE=1 scores them all).
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:?usage: $0 PREFIX [VARIANT ...]}
shift
PY="${PYTHON:-.venv/bin/python}"
OUT="runs/controlled/$prefix"
N_ITEMS="${N_ITEMS:-6}"
GRID="${GRID:-0,2,10,50,200}"
DEVICE="${DEVICE:-cpu}"
variants=("$@")
if [ ${#variants[@]} -eq 0 ]; then
  for f in configs/embedded/cpu/"$prefix"_*.json; do
    v=$(basename "$f" .json)
    variants+=("${v#"$prefix"_}")
  done
fi
[ ${#variants[@]} -gt 0 ] || { echo "no configs/embedded/cpu/${prefix}_*.json" >&2; exit 2; }
mkdir -p "$OUT"
models=()
for v in "${variants[@]}"; do
  cfg="configs/embedded/cpu/${prefix}_$v.json"
  [ -f "$cfg" ] || { echo "missing $cfg" >&2; exit 2; }
  echo "== $prefix/$v: training ($(date -u +%H:%M:%S) UTC)"
  OMP_NUM_THREADS=1 "$PY" -m masktax.cli.pretrain --config "$cfg" --out "$OUT/$v" --device "$DEVICE" \
    --suite-items 4 --no-progress
  models+=(--model "$OUT/$v/final")
done
[ "${PROBE:-1}" = 1 ] || { echo "== trained (PROBE=0: no probe)"; exit 0; }
echo "== masks probe on ${#variants[@]} variants ($(date -u +%H:%M:%S) UTC)"
OMP_NUM_THREADS=1 "$PY" -m masktax.cli.main probe masks "${models[@]}" --n-items "$N_ITEMS" --grid "$GRID" \
  --out "$OUT/masks" --device "$DEVICE" --no-progress
echo "== done ($(date -u +%H:%M:%S) UTC): $OUT/masks/report.md"
