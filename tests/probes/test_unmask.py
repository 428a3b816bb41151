"""The unmask probe: step accounting, seeded random order, confidence order, single-step agreement,
relative degradation on hand numbers, and `masktax probe unmask` end to end plus bad input."""

from __future__ import annotations

import json

import pytest
import torch
from probe_helpers import DATASET, assert_one_line_error, assert_usage_error, probe_setup, tiny_adapter
from tiny import tiny_tokenizer

from masktax.cli.main import main
from masktax.errors import MasktaxError
from masktax.models.loaded import LoadedModel
from masktax.probes import run_probe
from masktax.probes.engine import ProbeItem
from masktax.probes.unmask import decode_batch, summarize
from masktax.results.stats import relative_degradation
from masktax.results.store import read_items

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def llada() -> LoadedModel:
    return tiny_adapter("mdlm")


def items(n_masks: int, lengths=(20, 24, 22), seed: int = 0) -> list[ProbeItem]:
    tok = tiny_tokenizer()
    g = torch.Generator().manual_seed(seed)
    out = []
    for i, n in enumerate(lengths):
        body = torch.randint(10, len(tok) - 10, (n,), generator=g).tolist()
        out.append(ProbeItem(model="llada", series="s", x=n_masks - 1, dataset="d", index=i,
                             ids=tuple(body + [tok.mask_token_id] * n_masks), answer_pos=n, answer_id=body[0],
                             letter_ids=(1, 2, 3), suffix="masks"))
    return out


@pytest.mark.parametrize(("n_masks", "steps", "expected"), [(6, 4, 4), (6, 10, 6), (1, 40, 1), (3, 3, 3)])
def test_steps_are_capped_by_the_masks_and_forward_passes_counted(llada, n_masks, steps, expected):
    records = decode_batch(llada, items(n_masks), steps=steps, order="confidence", soft_mask=None, seed=0)
    assert [r["steps"] for r in records] == [expected] * 3
    assert [r["forward_passes"] for r in records] == [expected] * 3
    assert all(0 <= r["answer_step"] < expected for r in records)
    assert all(r["pred_id"] != llada.mask_id for r in records)  # the sampler never commits the mask
    assert [r["series"] for r in records] == [f"confidence-{steps}"] * 3


def test_random_order_is_seeded(llada):
    batch = items(6)
    first = decode_batch(llada, batch, steps=6, order="random", soft_mask=None, seed=3)
    again = decode_batch(llada, batch, steps=6, order="random", soft_mask=None, seed=3)
    assert first == again
    patterns = {tuple(r["answer_step"] for r in decode_batch(llada, batch, steps=6, order="random", soft_mask=None,
                                                             seed=s)) for s in range(4)}
    assert len(patterns) > 1  # other seeds, other orders


def test_random_order_draws_do_not_depend_on_the_batch(llada):
    """Every item draws from its own generator: its commit order is the same alone or among others
    (before, one generator per batch made a row's draws depend on its batch mates and batch size)."""
    batch = items(6, lengths=(20, 20, 20))  # equal lengths: no padding, so the logits agree too
    together = decode_batch(llada, batch, steps=6, order="random", soft_mask=None, seed=3)
    alone = [decode_batch(llada, [it], steps=6, order="random", soft_mask=None, seed=3)[0] for it in batch]
    assert [r["answer_step"] for r in together] == [r["answer_step"] for r in alone]
    assert [r["pred_id"] for r in together] == [r["pred_id"] for r in alone]


def test_confidence_order_commits_the_most_confident_mask_first(llada):
    batch = items(5)
    records = decode_batch(llada, batch, steps=5, order="confidence", soft_mask=None, seed=0)
    for it, r in zip(batch, records, strict=True):
        ids = torch.tensor([it.ids])
        with torch.no_grad():
            logits = llada.logits(ids)[0, it.answer_pos:]  # [5, V]
        logits[:, llada.mask_id] = float("-inf")
        conf = torch.softmax(logits.double(), dim=-1).amax(dim=-1)  # [5]
        assert (r["answer_step"] == 0) == (int(conf.argmax()) == 0)


def test_single_decode_step_without_extra_masks_equals_the_single_step_probe(tmp_path, llada):
    run_probe(*probe_setup("unmask", tmp_path / "u", ("llada",), n_items=2, grid=(0,), datasets=(DATASET,),
                           steps="1", order="random,confidence"), loaded={"llada": llada})
    recs = list(read_items(tmp_path / "u"))
    single = {r["index"]: r for r in recs if r["series"] == "single-step"}
    assert len(single) == 2 and all(r["forward_passes"] == 1 for r in single.values())
    for series in ("random-1", "confidence-1"):
        decoded = {r["index"]: r for r in recs if r["series"] == series}
        assert decoded.keys() == single.keys()
        for i, r in decoded.items():
            if single[i]["pred_id"] != llada.mask_id:  # the sampler cannot commit the mask itself
                assert r["pred_id"] == single[i]["pred_id"] and r["correct"] == single[i]["correct"]
    summary = json.loads((tmp_path / "u" / "summary.json").read_text())
    by = {p["series"]: p for p in summary["models"]["llada"]}
    assert by["random-1"]["accuracy"] == by["single-step"]["accuracy"]


def test_relative_degradation_on_hand_numbers():
    assert relative_degradation([0.8, 0.6, 0.4]) == pytest.approx(0.5)
    assert relative_degradation([0.5]) is None and relative_degradation([0.0, 0.0]) is None
    acc = {"random-2": [1, 1, 0, 0], "random-4": [1, 1, 1, 1]}  # per x, 4 items: correct flags
    records = []
    for series, flags in acc.items():
        for x, n_correct in zip((0, 5), (4, 2 if series == "random-2" else 3), strict=True):
            records += [{"model": "m", "series": series, "x": x, "dataset": "d", "index": i, "correct": i < n_correct,
                         "order": "random", "forward_passes": 2} for i in range(len(flags))]
    config = {"probe": "unmask", "models": ["m"], "grid": [0, 5], "options": {"steps": [2, 4], "order": ["random"]}}
    rd = summarize(config, records, {})["relative_degradation"]["m"]
    assert rd["per_series"] == pytest.approx({"random-2": 0.5, "random-4": 0.25})
    assert rd["mean_over_steps"]["random"] == pytest.approx(0.375)


def test_cli_end_to_end(tmp_path, tiny_ckpts):
    out = tmp_path / "run"
    args = ["probe", "unmask", "--model", tiny_ckpts["llada"], "--model", tiny_ckpts["ar"], "--out", str(out), "--n-items", "1",
            "--datasets", DATASET, "--grid", "0,3", "--steps", "1,2", "--order", "random", "--no-progress"]
    assert main(args) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["schema_version"] == 1 and s["probe"] == "unmask"
    points = s["models"][tiny_ckpts["llada"]]
    assert [(p["series"], p["x"]) for p in points] == [
        ("single-step", 0), ("single-step", 3), ("random-1", 0), ("random-1", 3), ("random-2", 0), ("random-2", 3)]
    assert {p["forward_passes"] for p in points if p["series"] == "random-2"} == {1, 2}  # min(S, 1 + x)
    assert s["references"][tiny_ckpts["ar"]]["applicable"] is False
    assert set(s["relative_degradation"][tiny_ckpts["llada"]]["mean_over_steps"]) == {"random"}
    assert (out / "plots" / "unmask.png").stat().st_size > 0
    report = (out / "report.md").read_text()
    assert "Relative degradation" in report and "plots/unmask.png" in report
    assert main(args) == 0  # resume: nothing left, same summary
    assert json.loads((out / "summary.json").read_text()) == s
    assert main(["report", str(out)]) == 0 and (out / "report.md").read_text() == report


@pytest.mark.parametrize(("extra", "message"), [
    (["--steps", ""], "--steps is empty; give comma-separated integers such as 2,4,6"),
    (["--steps", "0"], "--steps values must be at least 1, got 0"),
    (["--order", "sideways"], "--order 'sideways' is unknown; choose one of random, confidence"),
])
def test_cli_bad_input_is_one_line(tmp_path, capsys, extra, message):
    args = ["probe", "unmask", "--model", "unused", "--out", str(tmp_path / "x"), "--no-progress", *extra]
    assert_one_line_error(args, message, capsys)


def test_cli_a_flag_of_another_probe_is_a_usage_error(tmp_path, capsys):
    """Once `the unmask probe does not take --n-masks` (a masktax error); now click's usage error naming it."""
    args = ["probe", "unmask", "--model", "unused", "--out", str(tmp_path / "x"), "--no-progress", "--n-masks", "3"]
    assert_usage_error(args, "--n-masks", capsys)


def test_soft_mask_from_a_directory_is_used_and_recorded(tmp_path, llada):
    from masktax.samplers import SoftMaskConfig

    SoftMaskConfig(omega_s=0.9, k=2).save(tmp_path / "sm")
    base = dict(n_items=1, grid=(4,), datasets=(DATASET,), steps="5", order="confidence")
    run_probe(*probe_setup("unmask", tmp_path / "plain", ("llada",), **base), loaded={"llada": llada})
    run_probe(*probe_setup("unmask", tmp_path / "soft", ("llada",), **base, soft_mask_from=str(tmp_path / "sm")),
              loaded={"llada": llada})
    env = json.loads((tmp_path / "soft" / "env.json").read_text())
    assert env["models"]["llada"]["soft_mask"]["omega_s"] == 0.9
    assert json.loads((tmp_path / "soft" / "config.json").read_text())["options"]["soft_mask_from"] == str(tmp_path / "sm")
    plain = [r for r in read_items(tmp_path / "plain") if r["series"] == "confidence-5"]
    soft = [r for r in read_items(tmp_path / "soft") if r["series"] == "confidence-5"]
    assert len(plain) == len(soft) == 1 and soft[0]["forward_passes"] == 5
    with pytest.raises(MasktaxError, match="not a directory"):
        run_probe(*probe_setup("unmask", tmp_path / "bad", ("llada",), **{**base, "soft_mask": True}),
                  loaded={"llada": llada})
