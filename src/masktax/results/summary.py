"""From item records to `summary.json` / `summary.csv`: per-dataset accuracies, means and CIs.

For each (model, series, x): accuracy_d = mean of `correct` over dataset d's items; the point's
accuracy is the mean over datasets with a 95% t-interval over them (masktax.results.stats). The
same aggregation gives the A/B/C-restricted accuracy, and dataset-averaged p(answer), entropy and
confidence. Series named "reference" (an AR model on a sweep that only appends tokens after the
answer) are not sweep points: they go to `references[model]` with `"applicable": false`.

Format and comprehension. The full accuracy (P1's score: the full-vocabulary argmax is the right
letter) splits into two rates of the same items, each with its CI over datasets:

    format_rate   = mean [argmax is one of the option letters A, B, C]     ("answered in format")
    accuracy_abc  = mean [the A/B/C-restricted choice is right]            ("chose right among them")

An in-format argmax is also the restricted choice, so correct = in_format AND choice_correct, and
accuracy = accuracy_abc - mean [choice right but argmax not a letter] exactly
(masktax.results.stats.tax_split splits a change of accuracy that way). The letter ids are not
stored per record; they are the model's three answer ids (`answer` -> `answer_id`, the same for every
item of a tokenizer), so the format rate is None (null) for a model whose records show fewer than
three answer letters, unless the probe stored `in_format` in each record (the `format` probe does).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence

from masktax.results.stats import mean, mean_ci95

SCHEMA_VERSION = 1
REFERENCE = "reference"
METRICS = ("p_answer", "entropy", "confidence")


def letter_ids(records: Iterable[dict]) -> frozenset[int] | None:
    """The ids of the three option letters, read from the records' (answer, answer_id) pairs; None
    unless all three letters occur (the records alone cannot tell the missing letters' ids)."""
    by_letter = {r["answer"]: r["answer_id"] for r in records if "answer" in r and "answer_id" in r}
    return frozenset(by_letter.values()) if len(by_letter) == 3 else None


def in_format(record: dict, letters: frozenset[int] | None) -> bool | None:
    """Whether the item's full argmax is an option letter: its `in_format` field when the probe stored one,
    else `pred_id` among the model's letter ids (None when those are unknown)."""
    if "in_format" in record:
        return bool(record["in_format"])
    return None if letters is None else record["pred_id"] in letters


def _point(series: str, x, by_dataset: dict[str, list[dict]], datasets_order: Sequence[str],
           letters: frozenset[int] | None = None) -> dict:
    names = [d for d in datasets_order if d in by_dataset] + sorted(set(by_dataset) - set(datasets_order))
    acc = {d: mean([float(r["correct"]) for r in by_dataset[d]]) for d in names}
    abc = {d: mean([float(r["choice_correct"]) for r in by_dataset[d]]) for d in names}
    accuracy, ci = mean_ci95([acc[d] for d in names], bounds=(0.0, 1.0))
    accuracy_abc, ci_abc = mean_ci95([abc[d] for d in names], bounds=(0.0, 1.0))
    flags = {d: [in_format(r, letters) for r in by_dataset[d]] for d in names}
    fmt = {} if any(None in f for f in flags.values()) else {d: mean([float(v) for v in f]) for d, f in flags.items()}
    format_rate, ci_format = mean_ci95(list(fmt.values()), bounds=(0.0, 1.0)) if fmt else (None, None)
    point = {
        "series": series, "x": x, "accuracy": accuracy, "ci95": ci, "per_dataset": acc,
        "accuracy_abc": accuracy_abc, "ci95_abc": ci_abc, "per_dataset_abc": abc,
        "format_rate": format_rate, "ci95_format": ci_format, "per_dataset_format": fmt,
        "n_datasets": len(names), "n_items": sum(len(v) for v in by_dataset.values()),
    }
    for m in METRICS:
        per = [mean([r[m] for r in by_dataset[d] if r.get(m) is not None]) for d in names]
        value = mean([v for v in per if v == v])
        point[m] = value if value == value else None  # NaN (no finite values) -> null
    return point


def group_records(records: Iterable[dict]) -> dict:
    """Records as cells[model][series][x][dataset] -> [record, ...], in the order stored."""
    cells: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    for r in records:
        cells[r["model"]][r["series"]][r["x"]][r["dataset"]].append(r)
    return cells


def run_models(config: dict, present: Iterable[str]) -> list[str]:
    """The models with records: config.json's order first, then any others by name."""
    listed = config.get("models", [])
    present = set(present)
    return [m for m in listed if m in present] + sorted(present - set(listed))


def _order(values: Iterable, preferred: Sequence | None) -> list:
    values = list(dict.fromkeys(values))
    pref = list(preferred or [])
    known = [v for v in pref if v in values]
    rest = sorted((v for v in values if v not in pref), key=lambda v: (isinstance(v, str), v))
    return known + rest


def summarize(
    config: dict,
    records: Iterable[dict],
    *,
    models: Sequence[str] | None = None,
    series_order: dict[str, Sequence[str]] | None = None,
    model_info: dict | None = None,
) -> dict:
    """The summary.json object. `series_order[model]` fixes the series order (default: by name)."""
    cells = group_records(records)
    datasets_order = list(config.get("datasets") or [])
    out_models: dict[str, list[dict]] = {}
    references: dict[str, dict] = {}
    for model in _order(cells, models or config.get("models")):
        by_series = cells[model]
        letters = letter_ids(r for xs in by_series.values() for ds in xs.values() for rs in ds.values() for r in rs)
        points = []
        for series in _order(by_series, (series_order or {}).get(model)):
            for x in _order(by_series[series], config.get("grid")):
                points.append(_point(series, x, by_series[series][x], datasets_order, letters))
        refs = [p for p in points if p["series"] == REFERENCE]
        out_models[model] = [p for p in points if p["series"] != REFERENCE]
        if refs:
            references[model] = {
                "applicable": False,
                "reason": "a causal model never sees tokens appended after the position it predicts",
                "reference": refs[0],
            }
    return {
        "schema_version": SCHEMA_VERSION,
        "probe": config["probe"],
        "grid": config.get("grid"),
        "models": out_models,
        "references": references,
        "model_info": model_info or {},
    }


def summarize_run(config: dict, records: Iterable[dict], env: dict) -> dict:
    """`summarize` for a run dir's stored config, records and env.json: its models in config order,
    each model's series in the order its probe recorded them, and the model facts the report shows."""
    env_models = env.get("models", {})
    info = {
        m: {k: env_models[m].get(k) for k in ("kind", "format", "applicable", "dtype")}
        for m in config.get("models", []) if m in env_models
    }
    return summarize(
        config, records, models=config.get("models"),
        series_order={m: env_models[m].get("series", []) for m in env_models}, model_info=info,
    )


def summary_csv(summary: dict) -> str:
    """One row per (model, series, x), references included (applicable = false)."""
    rows = []
    for model, points in summary["models"].items():
        rows += [(model, True, p) for p in points]
    for model, ref in summary.get("references", {}).items():
        rows.append((model, False, ref["reference"]))
    datasets = list(dict.fromkeys(d for _, _, p in rows for d in p["per_dataset"]))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ["model", "series", "x", "applicable", "accuracy", "ci95_lo", "ci95_hi", "accuracy_abc", "format_rate",
         "p_answer", "entropy", "confidence", "n_datasets", "n_items", *[f"acc:{d}" for d in datasets]]
    )
    for model, applicable, p in rows:
        lo, hi = p["ci95"] if p["ci95"] else ("", "")
        writer.writerow(
            [model, p["series"], p["x"], str(applicable).lower(), _f(p["accuracy"]), _f(lo), _f(hi),
             _f(p["accuracy_abc"]), _f(p.get("format_rate")), _f(p["p_answer"]), _f(p["entropy"]), _f(p["confidence"]),
             p["n_datasets"], p["n_items"], *[_f(p["per_dataset"].get(d, "")) for d in datasets]]
        )
    return buf.getvalue()


def _f(v) -> str:
    return f"{v:.6f}" if isinstance(v, float) else str(v)
