"""The `format` probe: the factorial conditions' exact token layouts (golden), pairing with the masks
probe's items, canvas tokens for uniform-noise models, the AR reference, and the effects table."""

from __future__ import annotations

import dataclasses
import json

import pytest
from probe_helpers import DATASET, probe_setup, tiny_adapter

from masktax.probes import format as fmt_probe
from masktax.probes import masks, run_probe
from masktax.probes.run import ProbeRun, RunConfig, select_datasets

M = "<|mask|>"
# The tokens after `Answer:[` of every condition at n = 0, 1, 3 on the tiny word-level tokenizer (base
# format); `\n\n Options :` is the start of the next in-context example's text.
GOLDEN = {
    "masks/none": {0: [M], 1: [M, M], 3: [M, M, M, M]},
    "masks/after-answer": {0: [M, "]", "."], 1: [M, "]", ".", M], 3: [M, "]", ".", M, M, M]},
    "masks/after-extra": {0: [M, "]", "."], 1: [M, M, "]", "."], 3: [M, M, M, M, "]", "."]},
    "filler/none": {0: [M], 1: [M, "."], 3: [M, ".", ".", "."]},
    "filler/after-answer": {0: [M, "]", "."], 1: [M, "]", ".", "."], 3: [M, "]", ".", ".", ".", "."]},
    "filler/after-extra": {0: [M, "]", "."], 1: [M, ".", "]", "."], 3: [M, ".", ".", ".", "]", "."]},
    "text/none": {0: [M], 1: [M, "\n\n"], 3: [M, "\n\n", "Options", ":"]},
    "text/after-answer": {0: [M, "]", "."], 1: [M, "]", ".", "\n\n"], 3: [M, "]", ".", "\n\n", "Options", ":"]},
    "text/after-extra": {0: [M, "]", "."], 1: [M, "\n\n", "]", "."], 3: [M, "\n\n", "Options", ":", "]", "."]},
}


def probe_run(lm, grid=(0, 1, 3), n_items=2):
    cfg = RunConfig(models=(lm.name,), out="unused", n_items=n_items, datasets=(DATASET,))
    opts = fmt_probe.Options(grid=grid)
    return ProbeRun(probe=fmt_probe.NAME, cfg=cfg, options=opts, store=None, datasets=select_datasets(cfg)), opts


def items_of(lm, series, grid=(0, 1, 3)):
    run, opts = probe_run(lm, grid)
    extras = fmt_probe.Extras(lm, fmt_probe.answer_slot_id(lm, fmt_probe.NAME), 0, max(grid))
    bases, text = fmt_probe.base_items(run, lm, lm.name, "base", run.datasets[0])
    return run, fmt_probe.condition_items(bases, series, grid, text, extras, run.datasets[0])


def test_golden_token_layouts_of_every_condition():
    lm = tiny_adapter("mdlm")
    assert fmt_probe.series_names(fmt_probe.Options(), "mdlm") == list(GOLDEN)
    for series, by_n in GOLDEN.items():
        _, items = items_of(lm, series)
        for it in items:
            tokens = lm.tokenizer.convert_ids_to_tokens(list(it.ids))
            assert tokens[it.answer_pos - 3 : it.answer_pos] == ["Answer", ":", "["]
            assert tokens[it.answer_pos:] == by_n[it.x], (series, it.x)
            assert it.ids[it.answer_pos] == lm.mask_id and it.series == series


def test_same_items_as_the_masks_probe():
    """Every condition's prompt before the answer position, answer and letters are the masks probe's."""
    lm = tiny_adapter("mdlm")
    run, _ = probe_run(lm)
    (cell,) = [c for c in masks.cells(masks.Options(grid=(0,)), "mdlm")]
    reference = run.encode(lm, lm.name, "base", run.datasets[0], cell)
    for series in GOLDEN:
        _, items = items_of(lm, series)
        for it in items:
            ref = reference[it.index]
            assert it.ids[: it.answer_pos] == ref.ids[: ref.answer_pos]
            assert (it.answer_id, it.letter_ids, it.dataset) == (ref.answer_id, ref.letter_ids, ref.dataset)


def test_text_is_the_next_examples_real_text():
    lm = tiny_adapter("mdlm")
    _, items = items_of(lm, "text/none", grid=(60,))
    tail = lm.tokenizer.decode(list(items[0].ids[items[0].answer_pos + 1:]))
    assert tail.lstrip().startswith("Options") and "Answer" in tail and "]" in tail


def test_uniform_noise_models_get_canvas_tokens_nested_and_paired():
    lm = dataclasses.replace(tiny_adapter("mdlm"), kind="uniform", mask_id=None)
    assert fmt_probe.series_names(fmt_probe.Options(kinds=("masks",)), "uniform")[0] == "canvas/none"
    _, none = items_of(lm, "canvas/none")
    _, after = items_of(lm, "canvas/after-extra")
    by_key = {(it.x, it.index): it for it in none}
    for it in after:
        same = by_key[(it.x, it.index)]
        assert it.ids[: it.answer_pos + 1 + it.x] == same.ids  # same slot and the same canvas draw, then `].`
    long = by_key[(3, 0)].ids
    assert by_key[(1, 0)].ids == long[: len(long) - 2]  # n = 1 is the first canvas token of n = 3
    assert lm.tokenizer.mask_token_id not in long[by_key[(3, 0)].answer_pos:]


def test_run_on_tiny_models_effects_and_ar_reference(tmp_path):
    mdlm, ar = tiny_adapter("mdlm"), tiny_adapter("ar")
    probe, cfg, opts = probe_setup("format", tmp_path / "f", ("llada", "ar"), n_items=1, datasets=(DATASET, "verb__largest"),
                                   grid=(0, 2), kinds=("masks", "filler"))
    root = run_probe(probe, cfg, opts, loaded={"llada": mdlm, "ar": ar})
    summary = json.loads((root / "summary.json").read_text())
    assert len(summary["models"]["llada"]) == 2 * 3 * 2  # kinds x closures x n
    assert summary["references"]["ar"]["reference"]["series"] == "reference"
    effects = {e["effect"]: e for e in summary["effects"]["llada"]}
    assert {"closure `].` right after the answer - none", "count: n = 0 - n = 2", "kind: masks - filler"} <= set(effects)
    by = {(p["series"], p["x"]): p for p in summary["models"]["llada"]}
    want = sum(by[(f"{k}/after-answer", x)]["accuracy"] - by[(f"{k}/none", x)]["accuracy"]
               for k in ("masks", "filler") for x in (0, 2)) / 4
    assert effects["closure `].` right after the answer - none"]["accuracy"]["mean"] == pytest.approx(want)
    assert all(p["format_rate"] is not None for p in summary["models"]["llada"])  # stored in_format
    records = [json.loads(line) for line in (root / "items.jsonl").read_text().splitlines()]
    assert len(records) == 2 * 12 + 2 and all("in_format" in r for r in records if r["model"] == "llada")
    at0 = {(r["dataset"], r["closure"] != "none"): r["p_answer"] for r in records if r["model"] == "llada" and r["x"] == 0}
    for r in records:  # at n = 0 every kind and placement of a closure is one prompt, computed once
        if r["model"] == "llada" and r["x"] == 0:
            assert r["p_answer"] == at0[(r["dataset"], r["closure"] != "none")]
    report = (root / "report.md").read_text()
    assert "## Effects" in report and "## Format and comprehension" in report and (root / "plots" / "format.png").is_file()
    again = run_probe(probe, cfg, opts, loaded={"llada": mdlm, "ar": ar})  # resume: nothing new
    assert len((again / "items.jsonl").read_text().splitlines()) == len(records)


def test_bad_options_are_one_line_errors():
    from masktax.errors import MasktaxError

    with pytest.raises(MasktaxError, match="--kinds 'dots' is unknown"):
        fmt_probe.Options(kinds=("dots",))
    with pytest.raises(MasktaxError, match="--closures"):
        fmt_probe.Options(closures="")
