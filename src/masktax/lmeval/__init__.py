"""masktax in EleutherAI's lm-evaluation-harness (lm-eval 0.4.x, the `eval` extra).

- `model.py`: `MasktaxLM`, registered as `--model masktax` (every family masktax loads).
- `scoring.py`: the log-likelihoods (exact AR; LLaDA's Monte Carlo mask bound for MDLMs).
- `generation.py`: `generate_until` through masktax's samplers.
- `args.py`: the `model_args` it accepts.
- `sweep.py`: `masktax eval`: lm-eval's evaluator over tasks x extra masks, written as a run dir.
- `tasks/`: the probe suite of [P1] as lm-eval tasks (YAML + documents from `masktax.tasks`).
- `__main__.py`: `python -m masktax.lmeval run ...` = lm-eval's CLI with `masktax` registered.

lm-eval is imported only by these modules (not by `import masktax.lmeval`). docs/eval.md has the commands.
"""
