#!/usr/bin/env bash
# GPU readiness (issue 18 item 6): the LLaDA-8B-shape forward and probe benches in one command.
#
#     bash bench/gpu_bench.sh [OUT_DIR]          # default OUT_DIR: bench/gpu-results
#
# Needs a CUDA GPU with ~40 GB free and a Python with a CUDA torch and transformers (PYTHON=...,
# default .venv/bin/python, else python3); masktax is read from src/ (no install). Random weights in
# bf16 at LLaDA-8B's shape, SDPA restricted to the flash / memory-efficient kernels. Prints and writes:
#   forward.json   tokens/s, MFU vs the measured bf16 matmul ceiling, peak memory vs auto_batch_size
#   probes.json    items/s, tokens/s, model GFLOP/s and MFU of accuracy, masks, unmask, attribution
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/gpu-results}
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD/bench${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'gpu_bench: no CUDA GPU visible to torch ' + torch.__version__)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" bench/bench_llada_forward.py --shape 8b --batch-sizes 1,2,4,8,16,32 --json "$OUT/forward.json" 2>&1 | tee "$OUT/forward.log"
"$PY" bench/bench_ceiling.py --shape 8b --n-items 4 --json "$OUT/probes.json" 2>&1 | tee "$OUT/probes.log"
