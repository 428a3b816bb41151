"""Paired difference between two points of two probe runs on the same test items.

    python scripts/paired_points.py runs/acc:one_mask:0 runs/masks:masks:2 [--model NAME]

Each point is RUN_DIR:SERIES:X. Both runs must have scored the same items (same seed, n_items and
datasets: the suite is a pure function of them), so the difference of accuracy(A) - accuracy(B) is
paired per dataset and its 95% t-CI is over the per-dataset differences, as in the reports' tax
tables. Example: one mask followed by the real closing `].` against masks in place of it, at the
same prompt length (docs/embedded.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from masktax.report.markdown import paired_difference_ci

SAME_ITEMS = ("seed", "n_items", "datasets")


def load_point(spec: str, model: str | None) -> tuple[dict, dict]:
    """(point, run config) for RUN_DIR:SERIES:X."""
    try:
        run, series, x = spec.rsplit(":", 2)
        x_val = int(x)
    except ValueError:
        raise SystemExit(f"error: '{spec}' is not RUN_DIR:SERIES:X (e.g. runs/masks:masks:2)") from None
    run_dir = Path(run)
    if not (run_dir / "summary.json").is_file():
        raise SystemExit(f"error: '{run_dir}' holds no summary.json (a masktax probe run)")
    summary = json.loads((run_dir / "summary.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    models = summary["models"]
    if model is None and len(models) != 1:
        raise SystemExit(f"error: '{run_dir}' has several models; choose one with --model: {', '.join(models)}")
    name = model if model is not None else next(iter(models))
    if name not in models:
        raise SystemExit(f"error: no model '{name}' in '{run_dir}': {', '.join(models)}")
    for point in models[name]:
        if point["series"] == series and point["x"] == x_val:
            return point, config
    have = ", ".join(f"{p['series']}:{p['x']}" for p in models[name])
    raise SystemExit(f"error: no point {series}:{x_val} in '{run_dir}' (has {have})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", help="RUN_DIR:SERIES:X")
    ap.add_argument("b", help="RUN_DIR:SERIES:X")
    ap.add_argument("--model", default=None, help="the model name in both runs (needed when a run has several)")
    args = ap.parse_args(argv)
    (pa, ca), (pb, cb) = load_point(args.a, args.model), load_point(args.b, args.model)
    differ = [k for k in SAME_ITEMS if ca.get(k) != cb.get(k)]
    if differ:
        raise SystemExit(f"error: the runs scored different items ({', '.join(differ)} differ); pairing needs the same")
    diff, ci = paired_difference_ci(pa, pb)
    ci_text = "n/a" if ci is None else f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"
    print(f"A {args.a}: {100 * pa['accuracy']:.1f}%  B {args.b}: {100 * pb['accuracy']:.1f}%  "
          f"A - B: {100 * diff:+.1f} points, paired 95% CI {ci_text} over {len(pa['per_dataset'])} datasets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
