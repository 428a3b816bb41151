"""The probe suite of [P1] as lm-eval tasks: YAML shipped here, documents built by `suite_data.py`.

    python -m masktax.lmeval run --model masktax --model_args model=embedded-mdlm --tasks masktax_suite_next
    lm_eval run --model hf --model_args pretrained=gpt2 --include_path "$(python -c 'import masktax.lmeval.tasks as t; print(t.TASKS_DIR)')" --tasks masktax_suite_mc

Two groups over the 16 datasets (`masktax_suite_next_<dataset>`, `masktax_suite_mc_<dataset>`):
- `masktax_suite_next`: exact match of the next token. The prompt (10 relevant + 40 distractor
  examples, seeded mix, then the test question) ends `Answer:[`; the target is the answer letter,
  scored as lm-eval's `acc` of a loglikelihood request = is_greedy (the full-vocabulary argmax is the
  letter): the probes' primary score. With `extra_masks=N` it is [P1]'s mask-scaling probe.
- `masktax_suite_mc`: multiple choice over the letters A/B/C (the highest log-likelihood wins).
Group scores are the unweighted mean over the 16 datasets, as [P1] reports. Documents come from
`masktax.tasks` (the same records `masktax suite export` writes), or from an export directory given
with `--metadata '{"suite_dir": "suite/"}'` (checked against its manifest); `suite_seed` and
`suite_n_test` choose the suite. Nothing is downloaded: the include path works offline.
"""

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent
