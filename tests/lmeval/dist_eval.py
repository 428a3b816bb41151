"""Run by tests/lmeval/test_distributed.py, once alone and once under `accelerate launch --cpu --num_processes 2`:
lm-eval's evaluator on the tiny local tasks with `--model masktax`; rank 0 writes the results as JSON.

    python tests/lmeval/dist_eval.py MODEL_DIR TASKS_DIR OUT.json
"""

from __future__ import annotations

import json
import sys

import lm_eval
import torch
from lm_eval.tasks import TaskManager

from masktax.lmeval.model import MasktaxLM


def main(model: str, tasks_dir: str, out: str) -> None:
    torch.set_num_threads(1)
    lm = MasktaxLM(model=model, device="cpu", batch_size=4, mc_num=8)
    res = lm_eval.simple_evaluate(model=lm, tasks=["tiny_ll", "tiny_mc", "tiny_gen", "tiny_roll"],
                                  task_manager=TaskManager(include_path=tasks_dir, include_defaults=False),
                                  log_samples=False, bootstrap_iters=0)
    if res is not None:
        with open(out, "w") as f:
            json.dump({"world_size": lm.world_size, "results": res["results"]}, f, default=str)


if __name__ == "__main__":
    main(*sys.argv[1:4])
