"""`masktax probe unmask --cache`: the flag is validated, stored in config.json only when set (so
default runs and earlier run dirs are unchanged), and a cached decode keeps the first step's answer."""

from __future__ import annotations

import json

import pytest
import torch
from probe_helpers import DATASET, assert_one_line_error, probe_setup, tiny_adapter
from tiny import tiny_tokenizer

from masktax.errors import MasktaxError
from masktax.probes import run_probe
from masktax.probes.engine import ProbeItem
from masktax.probes.options import to_json
from masktax.probes.unmask import Options, decode_batch

pytestmark = pytest.mark.usefixtures("one_thread")


def _items(n_masks: int = 6) -> list[ProbeItem]:
    tok = tiny_tokenizer()
    g = torch.Generator().manual_seed(0)
    out = []
    for i, n in enumerate((20, 24, 22)):
        body = torch.randint(10, len(tok) - 10, (n,), generator=g).tolist()
        out.append(ProbeItem(model="llada", series="s", x=n_masks - 1, dataset="d", index=i,
                             ids=tuple(body + [tok.mask_token_id] * n_masks), answer_pos=n, answer_id=body[0],
                             letter_ids=(1, 2, 3), suffix="masks"))
    return out


def test_cache_option_is_validated_and_stored_only_when_set():
    assert "cache" not in to_json(Options())
    assert to_json(Options(cache="prefix"))["cache"] == "prefix"
    with pytest.raises(MasktaxError, match="--cache 'full' is unknown; choose one of none, prefix, dual"):
        Options(cache="full")


def test_bad_cache_flag_is_one_line(capsys):
    assert_one_line_error(["probe", "unmask", "--model", "embedded-mdlm", "--cache", "full", "--out", "x"],
                          "--cache 'full' is unknown; choose one of none, prefix, dual", capsys)


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_cached_decode_keeps_answers_committed_in_the_first_step(cache):
    lm, batch = tiny_adapter("mdlm"), _items()
    plain = decode_batch(lm, batch, steps=6, order="confidence", soft_mask=None, seed=0)
    cached = decode_batch(lm, batch, steps=6, order="confidence", soft_mask=None, seed=0, cache=cache)
    assert [r["forward_passes"] for r in cached] == [6] * 3
    assert any(a["answer_step"] == 0 for a in plain)
    for a, b in zip(plain, cached, strict=True):
        if a["answer_step"] == 0:  # the first step is a full forward: the same as without a cache
            assert b["answer_step"] == 0 and b["pred_id"] == a["pred_id"]
    one = decode_batch(lm, batch, steps=1, order="confidence", soft_mask=None, seed=0)
    assert decode_batch(lm, batch, steps=1, order="confidence", soft_mask=None, seed=0, cache=cache) == one


def test_cached_run_records_its_cache(tmp_path):
    run_probe(*probe_setup("unmask", tmp_path / "u", ("llada",), n_items=1, grid=(2,), datasets=(DATASET,),
                           steps="3", order="confidence", cache="prefix"), loaded={"llada": tiny_adapter("mdlm")})
    config = json.loads((tmp_path / "u" / "config.json").read_text())
    assert config["options"]["cache"] == "prefix"
    assert "KV cache: prefix" in (tmp_path / "u" / "report.md").read_text()
