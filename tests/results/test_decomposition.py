"""The format / comprehension decomposition of an accuracy, on hand-made records.

Letter ids A=10, B=11, C=12; any other predicted id is out of format. An item is correct when the
argmax is the right letter, so correct = in format AND restricted choice right.
"""

from __future__ import annotations

import pytest

from masktax.render import markdown
from masktax.results.stats import mean_ci95, tax_split
from masktax.results.summary import in_format, letter_ids, summarize

IDS = {"A": 10, "B": 11, "C": 12}


def item(x, dataset, index, answer, pred, choice):
    """A record whose argmax is `pred` (a letter, or "other") and whose A/B/C choice is `choice`."""
    pred_id = IDS.get(pred, 99)
    return {"model": "m", "series": "masks", "x": x, "dataset": dataset, "index": index, "answer": answer,
            "answer_id": IDS[answer], "pred_id": pred_id, "correct": pred_id == IDS[answer],
            "choice": choice, "choice_correct": choice == answer, "p_answer": 0.5, "entropy": 1.0, "confidence": 0.5}


# Per dataset, 4 items at x = 2 and the same 4 items at x = 200: (answer, argmax, A/B/C choice).
ITEMS = {
    ("d1", 2): [("A", "A", "A"), ("B", "B", "B"), ("C", "C", "C"), ("A", "B", "B")],          # acc 3/4, fmt 1, abc 3/4
    ("d1", 200): [("A", "other", "A"), ("B", "other", "B"), ("C", "C", "C"), ("A", "B", "B")],  # acc 1/4, fmt 2/4, abc 3/4
    ("d2", 2): [("A", "A", "A"), ("B", "B", "B"), ("C", "other", "C"), ("C", "A", "A")],      # acc 2/4, fmt 3/4, abc 3/4
    ("d2", 200): [("A", "A", "A"), ("B", "C", "C"), ("C", "other", "B"), ("C", "A", "A")],    # acc 1/4, fmt 3/4, abc 1/4
    ("d3", 2): [("A", "A", "A"), ("B", "B", "B"), ("C", "C", "C"), ("B", "B", "B")],          # acc 1, fmt 1, abc 1
    ("d3", 200): [("A", "other", "A"), ("B", "other", "C"), ("C", "C", "C"), ("B", "B", "B")],  # acc 2/4, fmt 2/4, abc 3/4
}


def records():
    return [item(x, d, i, *row) for (d, x), rows in ITEMS.items() for i, row in enumerate(rows)]


def test_letter_ids_need_all_three_letters_and_stored_in_format_wins():
    assert letter_ids(records()) == frozenset(IDS.values())
    assert letter_ids([r for r in records() if r["answer"] != "C"]) is None
    r = item(2, "d1", 0, "A", "other", "A")
    assert in_format(r, frozenset(IDS.values())) is False and in_format(r, None) is None
    assert in_format({**r, "in_format": True}, None) is True


def test_points_carry_format_rate_restricted_and_full_accuracy_per_dataset():
    s = summarize({"probe": "masks", "models": ["m"], "grid": [2, 200], "datasets": ["d1", "d2", "d3"]}, records())
    first, last = s["models"]["m"]
    assert first["per_dataset"] == {"d1": 0.75, "d2": 0.5, "d3": 1.0}
    assert first["per_dataset_format"] == {"d1": 1.0, "d2": 0.75, "d3": 1.0}
    assert first["per_dataset_abc"] == {"d1": 0.75, "d2": 0.75, "d3": 1.0}
    assert last["per_dataset"] == {"d1": 0.25, "d2": 0.25, "d3": 0.5}
    assert last["per_dataset_format"] == {"d1": 0.5, "d2": 0.75, "d3": 0.5}
    assert last["per_dataset_abc"] == {"d1": 0.75, "d2": 0.25, "d3": 0.75}
    m, ci = mean_ci95([0.5, 0.75, 0.5], bounds=(0.0, 1.0))
    assert last["format_rate"] == pytest.approx(m) and last["ci95_format"] == pytest.approx(ci)
    # correct implies in format and restricted choice right, item by item
    for r in records():
        assert r["correct"] == (r["pred_id"] in IDS.values() and r["choice_correct"])


def test_tax_split_adds_up_per_dataset_with_paired_cis():
    s = summarize({"probe": "masks", "models": ["m"], "grid": [2, 200], "datasets": ["d1", "d2", "d3"]}, records())
    first, last = s["models"]["m"]
    split = tax_split(first, last)
    total = [0.75 - 0.25, 0.5 - 0.25, 1.0 - 0.5]
    comprehension = [0.75 - 0.75, 0.75 - 0.25, 1.0 - 0.75]
    fmt = [t - c for t, c in zip(total, comprehension, strict=True)]  # 0.5, -0.25, 0.25
    assert split["total"][0] == pytest.approx(sum(total) / 3)
    assert split["comprehension"][0] == pytest.approx(sum(comprehension) / 3)
    assert split["format"][0] == pytest.approx(sum(fmt) / 3)
    assert split["format"][0] + split["comprehension"][0] == pytest.approx(split["total"][0])
    assert split["format"][1] == pytest.approx(mean_ci95(fmt)[1])
    assert split["comprehension"][1] == pytest.approx(mean_ci95(comprehension)[1])


def test_a_model_without_all_letters_has_no_format_rate():
    recs = [r for r in records() if r["answer"] != "C"]
    s = summarize({"probe": "masks", "models": ["m"], "grid": [2, 200]}, recs)
    assert all(p["format_rate"] is None and p["per_dataset_format"] == {} for p in s["models"]["m"])


def test_report_and_glance_show_the_split():
    s = summarize({"probe": "masks", "models": ["m"], "grid": [2, 200], "datasets": ["d1", "d2", "d3"]}, records())
    change = markdown.Change(what="mask tax", baseline_x=2, glance="mask tax")
    lines = markdown.change_lines(s, change)
    row = next(line for line in lines if line.startswith("| m |"))
    split = tax_split(*s["models"]["m"])
    assert markdown.signed(*split["format"]) in row and markdown.signed(*split["comprehension"]) in row
    assert markdown.split_cell(s["models"]["m"], change).startswith(f"format {markdown.points_text(split['format'][0])} [")
    table = "\n".join(markdown.decomposition_table(s))
    assert "| m | masks | 200 | 33.3 [" in table and "| 58.3 [" in table  # full acc 1/3; format 7/12
