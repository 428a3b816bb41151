#!/usr/bin/env bash
# Train the embedded models on ONE GPU, several runs in parallel, inside one ~9-minute command.
#
#   OUT=/tmp/out bash scripts/train_embedded_gpu.sh                 # first command
#   RESUME_FROM=/dir/with/tars OUT=/tmp/out bash scripts/train_embedded_gpu.sh   # next command
#
# Runs (configs/embedded/*.json): mdlm, ar, mdlm_noinvp, mdlm_eostail, mdlm_nofocus in parallel;
# mdlm_dream starts from the AR twin's final/ as soon as the AR run ends (first command: the AR
# run gets AR_MINUTES; later commands resume every run, Dream-like included, for MINUTES).
# Each run checkpoints at exit; the script then packs each run dir (latest checkpoint incl.
# optimizer state, final/, metrics.csv) into "$OUT/<run>.tar.gz" (< 16 MB each) and prints a summary.
# Needs python3 with torch, transformers, safetensors, tokenizers, typer, tqdm; masktax need not be
# installed (PYTHONPATH=src).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"  # 16 cores shared by the parallel runs
OUT="${OUT:?set OUT to the directory that receives the packed runs}"
RUNS="${RUNS:-runs/pretrain}"
MINUTES="${MINUTES:-7.5}"        # training budget of every run in this command
AR_MINUTES="${AR_MINUTES:-3}"    # first command only: the AR twin, before the Dream-like run starts
PARALLEL="${PARALLEL:-mdlm ar mdlm_noinvp mdlm_eostail mdlm_nofocus}"
PY="${PYTHON:-python3}"
CONFIGS="${CONFIGS:-configs/embedded}"  # tests point this at tiny configs
DEVICE="${DEVICE:-auto}"
mkdir -p "$RUNS" "$OUT"
t0=$(date +%s)

if [ -n "${RESUME_FROM:-}" ]; then
  for f in "$RESUME_FROM"/*.tar.gz; do
    [ -e "$f" ] || continue
    "$PY" -m masktax.training.pretrain.pack --unpack "$f" "$RUNS"
  done
fi

nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader 2>/dev/null || true

declare -A PIDS
launch() {  # launch NAME MINUTES [ARGS...]: starts the run in the background (a child of this shell)
  local name=$1 mins=$2
  shift 2
  "$PY" -m masktax.cli.pretrain --config "$CONFIGS/$name.json" --device "$DEVICE" --out "$RUNS/$name" \
    --max-minutes "$mins" --no-progress "$@" >>"$RUNS/$name.log" 2>&1 &
  PIDS[$name]=$!
  echo "launched $name (pid $!, $mins min)"
}

first_command=1
[ -d "$RUNS/ar/final" ] && first_command=0
for name in $PARALLEL; do
  mins=$MINUTES
  if [ "$name" = ar ] && [ $first_command = 1 ]; then mins=$AR_MINUTES; fi
  launch "$name" "$mins"
done

if [ $first_command = 0 ] && [ -d "$RUNS/ar/final" ]; then
  launch mdlm_dream "$MINUTES" --init-from "$RUNS/ar/final"
elif [ -n "${PIDS[ar]:-}" ]; then
  wait "${PIDS[ar]}" || echo "ar exited with status $?"
  AR_WAITED=1
  left=$(awk -v m="$MINUTES" -v s="$(( $(date +%s) - t0 ))" 'BEGIN { r = m - s / 60; print (r > 0.5 ? r : 0.5) }')
  if [ -d "$RUNS/ar/final" ]; then
    launch mdlm_dream "$left" --init-from "$RUNS/ar/final"
  fi
fi

status=0
for name in "${!PIDS[@]}"; do
  if [ "$name" = ar ] && [ -n "${AR_WAITED:-}" ]; then continue; fi
  wait "${PIDS[$name]}" || { echo "$name exited with status $?; tail of its log:"; tail -5 "$RUNS/$name.log"; status=1; }
done

for name in "${!PIDS[@]}"; do
  [ -d "$RUNS/$name" ] && "$PY" -m masktax.training.pretrain.pack "$RUNS/$name" "$OUT/$name.tar.gz" || status=1
done

"$PY" - "$RUNS" ${!PIDS[@]} <<'EOF'
import csv, json, sys
from pathlib import Path
runs = Path(sys.argv[1])
print(f"{'run':<14}{'step':>7}{'stage':>7}{'gate':>7}{'tok/s':>10}{'wall_s':>8}  advances")
for name in sorted(sys.argv[2:]):
    st = runs / name / "final" / "training_state.json"
    if not st.is_file():
        print(f"{name:<14} (no final/)")
        continue
    s = json.loads(st.read_text())
    rows = list(csv.DictReader((runs / name / "metrics.csv").open()))
    tps = rows[-1]["tokens_per_s"] if rows else ""
    gate = s["curriculum"]["last_gate"]
    adv = " ".join(f"{a[1]}@{a[0]}" for a in s["curriculum"]["advances"])
    print(f"{name:<14}{s['step']:>7}{s['stage_name']:>7}{'' if gate is None else f'{gate:.3f}':>7}"
          f"{float(tps or 0):>10.0f}{s['elapsed_s']:>8.0f}  {adv}")
EOF
echo "total wall time: $(( $(date +%s) - t0 ))s"
exit $status
