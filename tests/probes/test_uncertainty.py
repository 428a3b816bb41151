"""The uncertainty probe: entropy of a uniform distribution, reuse of a masks run without any forward
pass, `--from` checks, and `masktax probe uncertainty` end to end plus bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch
from probe_helpers import DATASET, assert_one_line_error, assert_usage_error, probe_setup
from tiny import tiny_tokenizer
from torch import nn

from masktax.cli.main import main
from masktax.errors import MasktaxError
from masktax.models.loaded import LoadedModel
from masktax.probes import run_probe
from masktax.probes.engine import ProbeItem, score_logits
from masktax.results.store import read_items

pytestmark = pytest.mark.usefixtures("one_thread")


class ConstantLM(nn.Module):
    """Logits all zero whatever the input: the uniform distribution over the vocabulary."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, 4)
        self.vocab = vocab

    def get_input_embeddings(self) -> nn.Embedding:
        return self.emb

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None):
        x = self.emb(input_ids) if inputs_embeds is None else inputs_embeds  # [b, l, d]
        return (torch.zeros(*x.shape[:2], self.vocab),)  # [b, l, V]


class Counting(LoadedModel):
    calls = 0

    def logits(self, ids, attention_mask=None):
        type(self).calls += 1
        return super().logits(ids, attention_mask)


def constant_adapter() -> Counting:
    tok = tiny_tokenizer()
    return Counting(name="const", model=ConstantLM(len(tok)), tokenizer=tok, kind="mdlm", mask_id=tok.mask_token_id,
                    shift=False, max_length=4096, pad_id=tok.pad_token_id, eos_id=tok.eos_token_id)


def test_entropy_of_a_uniform_distribution_is_log_v():
    item = ProbeItem(model="m", series="s", x=0, dataset="d", index=0, ids=(1, 2), answer_pos=1, answer_id=5,
                     letter_ids=(5, 6, 7))
    (r,) = score_logits([item], torch.zeros(1, 1000))
    assert r["entropy"] == pytest.approx(math.log(1000), rel=1e-6)
    assert r["confidence"] == pytest.approx(1e-3, rel=1e-5)


def cfg(out, probe, **kw) -> tuple:
    """(probe module, RunConfig, Options) of the constant model: 2 items of one dataset, grid 0,3."""
    return probe_setup(probe, out, ("const",), n_items=2, grid=(0, 3), datasets=(DATASET,), **kw)


def test_constant_model_gives_log_v_and_a_masks_run_is_reused_without_forward(tmp_path):
    a = constant_adapter()
    vocab = len(tiny_tokenizer())
    Counting.calls = 0
    run_probe(*cfg(tmp_path / "masks", "masks"), loaded={"const": a})
    assert Counting.calls > 0
    Counting.calls = 0
    out = run_probe(*cfg(tmp_path / "uncertainty", "uncertainty"), loaded={"const": a})
    s = json.loads((out / "summary.json").read_text())
    masks_points = [p for p in s["models"]["const"] if p["series"] == "masks"]
    assert [p["x"] for p in masks_points] == [0, 3]
    for p in s["models"]["const"]:
        assert p["entropy"] == pytest.approx(math.log(vocab), rel=1e-5)
        assert p["confidence"] == pytest.approx(1 / vocab, rel=1e-4)
    reused = [r for r in read_items(out) if "reused_from" in r]
    assert len(reused) == 4 and s["reused_items"]["const"] == 4  # the masks items; filler was computed
    assert Counting.calls > 0
    Counting.calls = 0
    run_probe(*cfg(tmp_path / "filler", "filler"), loaded={"const": a})
    Counting.calls = 0
    again = run_probe(*cfg(tmp_path / "both", "uncertainty", from_run=str(tmp_path)), loaded={"const": a})
    assert Counting.calls == 0  # every item found in the masks and filler runs
    assert len([r for r in read_items(again) if "reused_from" in r]) == 8


def test_from_a_run_of_another_config_is_an_error(tmp_path):
    a = constant_adapter()
    run_probe(*cfg(tmp_path / "masks", "masks", seed=1), loaded={"const": a})
    with pytest.raises(MasktaxError, match="holds no masks or filler run"):
        run_probe(*cfg(tmp_path / "u", "uncertainty", from_run=str(tmp_path / "masks")), loaded={"const": a})


def test_cli_end_to_end(tmp_path, tiny_ckpts):
    out = tmp_path / "run"
    args = ["probe", "uncertainty", "--model", tiny_ckpts["llada"], "--model", tiny_ckpts["ar"], "--out", str(out),
            "--n-items", "1", "--datasets", DATASET, "--grid", "0,2", "--no-progress"]
    assert main(args) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["schema_version"] == 1 and s["probe"] == "uncertainty"
    points = s["models"][tiny_ckpts["llada"]]
    assert [(p["series"], p["x"]) for p in points] == [("masks", 0), ("masks", 2), ("filler", 0), ("filler", 2)]
    assert all(p["entropy"] > 0 and 0 < p["confidence"] <= 1 for p in points)
    assert s["references"][tiny_ckpts["ar"]]["applicable"] is False
    assert (out / "plots" / "uncertainty.png").stat().st_size > 0
    assert "entropy (nats)" in (out / "report.md").read_text()


@pytest.mark.parametrize(("extra", "message"), [
    (["--from", "/nonexistent/masktax-run"], "--from /nonexistent/masktax-run is not a directory"),
])
def test_cli_bad_input_is_one_line(tmp_path, capsys, extra, message):
    args = ["probe", "uncertainty", "--model", "unused", "--out", str(tmp_path / "x"), "--no-progress", *extra]
    assert_one_line_error(args, message, capsys)


def test_cli_a_flag_of_another_probe_is_a_usage_error(tmp_path, capsys):
    """Once `the uncertainty probe does not take --order` (a masktax error); now click's usage error naming it."""
    args = ["probe", "uncertainty", "--model", "unused", "--out", str(tmp_path / "x"), "--no-progress",
            "--order", "random"]
    assert_usage_error(args, "--order", capsys)


def test_from_is_checked_when_the_options_are_made(tmp_path):
    with pytest.raises(MasktaxError, match="--from /nonexistent/masktax-run is not a directory"):
        cfg(tmp_path / "u", "uncertainty", from_run="/nonexistent/masktax-run")
    assert not (tmp_path / "u").exists()
