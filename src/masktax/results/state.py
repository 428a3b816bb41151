"""Is a run complete? The one notion of complete / partial used by summaries, reports, plots and compare.

A probe run records, when it starts, how many models the command asked for (env.json
"planned_model_count") and, per model when it starts scoring it, how many items that model's run
holds when finished (env.json models[m]["expected_items"]). The state compares those with the
records stored:

    complete  every planned model is recorded and has all its expected items
    partial   a planned model was not reached yet, or has fewer items (killed or interrupted)
    unknown   a run dir written before masktax recorded its plan

A partial run says so wherever its numbers are shown, with the counts, so a number from one item
of one dataset is never mistaken for a result.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

COMPLETE, PARTIAL, UNKNOWN = "complete", "partial", "unknown"


def run_state(config: dict, env: dict, records: Iterable[dict]) -> dict:
    """{"state", "items_done", "items_expected", "models_missing", "models": {m: {"done", "expected"}}}."""
    done = Counter(r["model"] for r in records)
    env_models = env.get("models", {})
    models = {m: {"done": done.get(m, 0), "expected": env_models.get(m, {}).get("expected_items")}
              for m in config.get("models", [])}
    planned = env.get("planned_model_count")
    missing = 0 if planned is None else max(0, planned - len(models))
    known = all(v["expected"] is not None for v in models.values())
    if planned is None or not known:
        state = UNKNOWN  # written before masktax recorded what a run plans
    elif missing or any(v["done"] < v["expected"] for v in models.values()):
        state = PARTIAL
    else:
        state = COMPLETE
    return {
        "state": state,
        "items_done": sum(v["done"] for v in models.values()),
        "items_expected": sum(v["expected"] for v in models.values()) if known and not missing else None,
        "models_missing": missing,
        "models": models,
    }


def is_partial(summary: dict) -> bool:
    return (summary.get("run") or {}).get("state") == PARTIAL


def partial_text(summary: dict) -> str:
    """"" for a complete (or unknown) run, else e.g. "PARTIAL RUN: 52 of 128 items scored (m1 20/64, m2 32/64)"."""
    run = summary.get("run") or {}
    if run.get("state") != PARTIAL:
        return ""
    per = [f"{m} {v['done']}/{v['expected']}" for m, v in run.get("models", {}).items()]
    if run.get("models_missing"):
        per.append(f"{run['models_missing']} model(s) not started")
    of = f" of {run['items_expected']}" if run.get("items_expected") is not None else ""
    return f"PARTIAL RUN: {run.get('items_done', 0)}{of} items scored ({', '.join(per)})"
