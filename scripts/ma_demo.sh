#!/usr/bin/env bash
# Mask-agnostic fine-tuning demo ([P1]) on the embedded MDLM, CPU-minutes budget (docs/finetune.md).
#
#   scripts/ma_demo.sh [OUT_DIR]        # default runs/ma_demo; N_ITEMS=100 by default
#   BASE=runs/pretrain-cpu/mdlm_dream/final scripts/ma_demo.sh runs/ma_demo_dream   # any MDLM checkpoint
#
# 1. writes the synthetic instruction set (embedded vocabulary, OpenOrca layout);
# 2. fully fine-tunes embedded-mdlm twice on it: CE+TV (beta 1) and the CE-only ablation (beta 0),
#    configs/finetune/embedded_ce_tv.json and embedded_ce.json (200 steps each, about a minute each on CPU);
# 3. probes the base model and both fine-tuned models: `masks` (single-step accuracy against the
#    number of extra masks) and `unmask` (steps 2,4,6, random order: [P1]'s relative-degradation metric);
# 4. `masktax compare` puts the curves in one plot and one table with each curve's relative degradation.
# Every step resumes: rerun the script after an interruption.
set -euo pipefail

OUT=${1:-runs/ma_demo}
N_ITEMS=${N_ITEMS:-100}
GRID=${GRID:-0,1,2,5,10,20,50,100,200}
MASKTAX=${MASKTAX:-masktax}
if [ -z "${BASE:-}" ]; then  # the LLaDA-like embedded-mdlm once shipped, else the Dream-like one
  BASE=embedded-mdlm
  $MASKTAX models | grep -E "^embedded-mdlm +" | grep -q "not installed" && BASE=embedded-mdlm-dream
fi
FT_STEPS=${FT_STEPS:-}   # e.g. FT_STEPS=2 for a smoke run of the whole pipeline
STEPS_FLAG=()
[ -n "$FT_STEPS" ] && STEPS_FLAG=(--max-steps "$FT_STEPS")

$MASKTAX finetune make-data "$OUT/instruct.jsonl" --n 4000 --seed 0
for loss in ce_tv ce; do
  $MASKTAX finetune --config "configs/finetune/embedded_${loss}.json" --data "$OUT/instruct.jsonl" \
    --model "$BASE" --out "$OUT/ft_${loss}" --device cpu "${STEPS_FLAG[@]}"
done

# --full runs keep a complete checkpoint in final/, loadable as a --model (LoRA runs: `masktax finetune merge`).
MODELS=(--model "$BASE" --model "$OUT/ft_ce_tv/final" --model "$OUT/ft_ce/final")
$MASKTAX probe masks "${MODELS[@]}" --n-items "$N_ITEMS" --grid "$GRID" --out "$OUT/masks" --device cpu
$MASKTAX probe unmask "${MODELS[@]}" --n-items "$N_ITEMS" --grid "$GRID" --steps 2,4,6 --order random \
  --out "$OUT/unmask" --device cpu

$MASKTAX compare "$OUT/masks" "$OUT/unmask" --label single-step --label unmask --out "$OUT/compare"
echo "demo done: $OUT/compare/compare.md"
