"""Threshold sampler, EOS handling, the SAMPLERS dict and the text helpers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from tiny_mdlm import EOS_ID, MASK_ID, TinyMDLM, prompt
from torch import nn

from masktax.errors import MasktaxError
from masktax.samplers import (
    SAMPLERS,
    decode,
    generate_semi_ar,
    generate_threshold,
    get_sampler,
    strip_after_eos,
)


@pytest.mark.parametrize("threshold", [0.3, 0.9, 1.0])
def test_threshold_commits_at_least_one_and_stays_in_block(threshold):
    model = TinyMDLM(seed=31)
    ids = prompt(seed=32, b=3)
    lp, block = ids.shape[1], 4
    out, hist = generate_threshold(
        model, ids, gen_length=12, block_length=block, threshold=threshold, mask_id=MASK_ID, return_history=True
    )
    assert not (out[:, lp:] == MASK_ID).any()
    assert hist.forward_passes == hist.num_steps
    done = torch.zeros_like(out, dtype=torch.bool)
    for rec in hist.steps:
        counts = rec.committed.sum(dim=-1)
        blocks = {(int(j) - lp) // block for j in rec.committed.nonzero()[:, 1]}
        assert len(blocks) == 1  # one block per step
        blk = blocks.pop()
        unfinished = ~done[:, lp + blk * block: lp + (blk + 1) * block].all(dim=-1)
        assert (counts[unfinished] >= 1).all()
        # committed beyond the top-1 only with confidence >= threshold
        conf = rec.confidence[rec.committed]
        assert (conf >= threshold).sum() >= counts.sum() - counts.gt(0).sum()
        done |= rec.committed
    if threshold == 1.0:
        assert hist.num_steps == 12  # one token per step


def test_threshold_equals_semi_ar_one_token_per_step_when_threshold_is_one():
    model = TinyMDLM(seed=33)
    ids = prompt(seed=34)
    a = generate_threshold(model, ids, gen_length=8, block_length=4, threshold=1.0, mask_id=MASK_ID)
    b = generate_semi_ar(model, ids, steps=8, gen_length=8, block_length=4, mask_id=MASK_ID)
    assert torch.equal(a, b)


def test_max_steps_per_block_caps_steps():
    model = TinyMDLM(seed=35)
    _, hist = generate_threshold(
        model, prompt(seed=36), gen_length=8, block_length=4, threshold=1.0, mask_id=MASK_ID,
        max_steps_per_block=2, return_history=True,
    )
    assert hist.num_steps == 4 and hist.counts()[:, 0].tolist() == [1, 3, 1, 3]


@pytest.mark.parametrize("kwargs,match", [
    ({"threshold": 0.0}, r"\(0, 1\]"), ({"threshold": 1.5}, r"\(0, 1\]"),
    ({"block_length": 3}, "multiple"), ({"max_steps_per_block": 0}, "positive"),
])
def test_threshold_bad_inputs(kwargs, match):
    with pytest.raises(MasktaxError, match=match):
        generate_threshold(TinyMDLM(), prompt(), **{"gen_length": 8, "block_length": 4, "mask_id": MASK_ID, **kwargs})


class EosTail(nn.Module):
    """Predicts token 5 at the first 3 generated positions and EOS (confidently) after."""

    def __init__(self, lp: int, vocab: int = 12):
        super().__init__()
        self.lp, self.embed = lp, nn.Embedding(vocab, 4)

    def get_input_embeddings(self):
        return self.embed

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None):
        h = self.embed(input_ids) if inputs_embeds is None else inputs_embeds
        b, length, _ = h.shape
        logits = torch.zeros(b, length, self.embed.num_embeddings)
        logits[:, :, 7] = 1.0  # a weak runner-up everywhere
        logits[:, : self.lp + 3, 5] = 2.0
        logits[:, self.lp + 3:, EOS_ID] = 9.0
        return SimpleNamespace(logits=logits)


def test_eos_fills_the_tail_and_decode_cuts_it():
    lp, mask = 3, 11
    model = EosTail(lp)
    ids = torch.tensor([[2, 3, 4]])
    out = generate_semi_ar(model, ids, steps=8, gen_length=8, block_length=8, mask_id=mask)
    assert out[0, lp:].tolist() == [5, 5, 5] + [EOS_ID] * 5  # EOS is an ordinary token
    assert strip_after_eos(out[0, lp:].tolist(), [EOS_ID]) == [5, 5, 5]

    class Tok:
        eos_token_id = EOS_ID

        def decode(self, ids, skip_special_tokens=True):
            return " ".join(map(str, ids))

    assert decode(Tok(), out, lp) == ["5 5 5"]
    assert decode(Tok(), out, lp, stop_at_eos=False) == ["5 5 5" + " 1" * 5]


def test_eos_suppression_options():
    lp, mask = 3, 11
    model = EosTail(lp)
    ids = torch.tensor([[2, 3, 4]])
    no_eos = generate_semi_ar(
        model, ids, steps=8, gen_length=8, block_length=8, mask_id=mask, logits_eos_inf=True, eos_ids=[EOS_ID]
    )
    assert EOS_ID not in no_eos[0].tolist()
    _, hist = generate_semi_ar(
        model, ids, steps=8, gen_length=8, block_length=8, mask_id=mask, confidence_eos_inf=True,
        eos_ids=[EOS_ID], return_history=True,
    )
    order = hist.order()[0, lp:].tolist()
    assert max(order[:3]) < min(order[3:])  # EOS positions committed last despite higher confidence
    with pytest.raises(MasktaxError, match="eos_ids"):
        generate_semi_ar(model, ids, steps=8, gen_length=8, block_length=8, mask_id=mask, logits_eos_inf=True)


def test_samplers_dict_and_unknown_name():
    assert set(SAMPLERS) == {"semi_ar", "dream", "threshold", "block"}
    assert get_sampler("dream") is SAMPLERS["dream"]
    with pytest.raises(MasktaxError, match="semi_ar, dream, threshold, block"):
        get_sampler("beam")
