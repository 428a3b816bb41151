#!/usr/bin/env bash
# Train (or resume) the embedded models on a CPU-only machine, in the background, one core each.
#
#   bash scripts/train_embedded_cpu.sh            # start or resume ar, mdlm and (once ar/final exists) mdlm_dream
#   bash scripts/train_embedded_cpu.sh start mdlm mdlm_dream   # only these (2 cores: two runs at a time)
#   bash scripts/train_embedded_cpu.sh status     # the latest gate of each run
#   bash scripts/train_embedded_cpu.sh stop       # SIGTERM: every run checkpoints and writes final/
#   PRETRAIN_ARGS="--decay-start 3421 --decay-steps 600" bash scripts/train_embedded_cpu.sh start ar
#                                                  # end a plateaued run with a learning-rate anneal (kept on resume)
#
# Runs live in runs/pretrain-cpu/<name>/ (configs/embedded/cpu/<name>.json: d128, 4 layers, the size
# EMBEDDED_NOTES measured to learn the task on 2 cores). In the final curriculum stage every gate
# also scores the probe suite (SUITE_ITEMS test points per dataset, runs/.../suite_eval.csv); a run
# stops by itself once that accuracy reaches STOP_GATE three times in a row, or after MINUTES.
# Rerunning the same command resumes every run from its latest checkpoint (exact resume); a solved
# run just rewrites its final/ and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-runs/pretrain-cpu}"
MINUTES="${MINUTES:-600}"
STOP_GATE="${STOP_GATE:-0.9}"
SUITE_ITEMS="${SUITE_ITEMS:-4}"   # probe-suite test points per dataset scored at each final-stage gate
PY="${PYTHON:-.venv/bin/python}"
mkdir -p "$RUNS"

running() { pgrep -f -- "--out $RUNS/$1 --device" >/dev/null 2>&1; }

launch() {  # launch NAME [ARGS...]
  local name=$1
  shift
  if running "$name"; then echo "$name: already running"; return; fi
  OMP_NUM_THREADS=1 setsid nohup "$PY" -m masktax.cli.pretrain --config "configs/embedded/cpu/$name.json" \
    --out "$RUNS/$name" --device cpu --max-minutes "$MINUTES" --stop-gate "$STOP_GATE" \
    --suite-items "$SUITE_ITEMS" --stop-on suite --no-progress ${PRETRAIN_ARGS:-} "$@" \
    >>"$RUNS/$name.log" 2>&1 &
  echo "$name: launched (pid $!)"
}

case "${1:-start}" in
  start)
    shift || true
    names=("$@")
    [ ${#names[@]} -eq 0 ] && names=(ar mdlm mdlm_dream)
    for name in "${names[@]}"; do
      if [ "$name" = mdlm_dream ]; then
        # initialised from the AR twin's final/ on its first start (ignored when resuming)
        if [ -d "$RUNS/mdlm_dream" ] || [ -d "$RUNS/ar/final" ]; then
          launch mdlm_dream --init-from "$RUNS/ar/final"
        else
          echo "mdlm_dream: waits for $RUNS/ar/final"
        fi
      else
        launch "$name"
      fi
    done
    ;;
  status)
    for f in "$RUNS"/*/metrics.csv; do
      name=$(basename "$(dirname "$f")")
      last=$(grep -v ',,' "$f" | tail -1)
      echo "$name: step,loss,lr,tokens,stage,gate_acc,tokens_per_s,elapsed_s = $last $(running "$name" && echo '(running)')"
    done
    ;;
  stop)
    pkill -TERM -f -- "masktax.cli.pretrain --config configs/embedded/cpu/" || true
    ;;
  *) echo "usage: $0 [start|status|stop]" >&2; exit 2 ;;
esac
