"""summary.json and summary.csv from item records: per-dataset accuracies, means, CIs, AR references."""

from __future__ import annotations

import json
import math

import pytest

from masktax.results.summary import summarize, summary_csv


def rec(model="m", series="s", x=0, dataset="d", index=0, correct=True, **kw):
    base = dict(model=model, series=series, x=x, dataset=dataset, index=index, correct=correct,
                choice_correct=correct, p_answer=0.5, entropy=1.0, confidence=0.6)
    return {**base, **kw}


def test_summary_schema_and_aggregation():
    records = []
    for d, accs in (("d1", [1, 1, 0, 0]), ("d2", [1, 1, 1, 0])):
        records += [rec(dataset=d, index=i, correct=bool(c), x=5) for i, c in enumerate(accs)]
    records += [rec(model="ar", series="reference", dataset="d1", index=0)]
    cfg = {"probe": "masks", "models": ["m", "ar"], "grid": [0, 5], "datasets": ["d1", "d2"]}
    s = summarize(cfg, records)
    assert s["schema_version"] == 1 and s["probe"] == "masks"
    (p,) = s["models"]["m"]
    assert p["x"] == 5 and p["per_dataset"] == {"d1": 0.5, "d2": 0.75}
    assert p["accuracy"] == pytest.approx(0.625)
    half = 12.706 * math.sqrt(((0.5 - 0.625) ** 2 + (0.75 - 0.625) ** 2) / 1) / math.sqrt(2)
    assert half > 0.625  # two datasets: the t-interval spans more than [0, 1] and is clipped to it
    assert p["ci95"] == pytest.approx([max(0.0, 0.625 - half), min(1.0, 0.625 + half)]) == [0.0, 1.0]
    assert p["p_answer"] == 0.5 and p["n_items"] == 8
    assert s["models"]["ar"] == []
    assert s["references"]["ar"]["applicable"] is False
    assert s["references"]["ar"]["reference"]["accuracy"] == 1.0
    csv = summary_csv(s).splitlines()
    assert csv[0].startswith("model,series,x,applicable,accuracy")
    assert len(csv) == 3 and ",false," in csv[2]
    json.dumps(s, allow_nan=False)
