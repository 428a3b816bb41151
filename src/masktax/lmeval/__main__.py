"""`python -m masktax.lmeval ...`: lm-eval's own command line with `--model masktax` registered.

    python -m masktax.lmeval run --model masktax --model_args model=embedded-mdlm --tasks masktax_suite_next
    accelerate launch -m masktax.lmeval run --model masktax --model_args model=GSAI-ML/LLaDA-8B-Base ...

lm-eval 0.4.13 finds third-party models only when their module is imported before it resolves
`--model` (entry-point discovery, `lm_eval.models`, is merged upstream but not released); this
module imports `masktax.lmeval.model`, adds the probe-suite tasks' directory as `--include_path`
when none is given, and hands the arguments to lm-eval. A MasktaxError (a bad model_args value,
an operation a model cannot do) is one line on stderr and exit status 2, as for `masktax`.
"""

from __future__ import annotations

import sys

from masktax.errors import MasktaxError
from masktax.lmeval.tasks import TASKS_DIR


def with_include_path(argv: list[str]) -> list[str]:
    """`argv` plus `--include_path TASKS_DIR` for `run` / `ls` / `validate` (or the legacy form without a
    sub-command) when it names no include path; lm-eval 0.4.13 takes one, so a user's own replaces ours."""
    command = argv[0] if argv and not argv[0].startswith("-") else "run"
    if not argv or command not in ("run", "ls", "validate") or any(a.split("=")[0] == "--include_path" for a in argv):
        return argv
    return [*argv, "--include_path", str(TASKS_DIR)]


def main(argv: list[str] | None = None) -> int:
    from lm_eval.__main__ import cli_evaluate

    import masktax.lmeval.model  # noqa: F401  registers --model masktax

    args = with_include_path(list(sys.argv[1:] if argv is None else argv))
    saved = sys.argv
    sys.argv = ["lm-eval", *args]
    try:
        cli_evaluate()
    except MasktaxError as err:
        print(f"masktax: error: {err}", file=sys.stderr)
        return 2
    except SystemExit as err:
        return err.code if isinstance(err.code, int) else (0 if err.code is None else 2)
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
