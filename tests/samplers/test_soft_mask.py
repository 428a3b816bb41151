"""Soft-masking [P2]: the blend by hand, the config, and its use inside every sampler."""

from __future__ import annotations

import json
import math

import pytest
import torch
from tiny_mdlm import MASK_ID, TinyMDLM, prompt
from torch import nn

from masktax.errors import MasktaxError
from masktax.samplers import BLOCK_SAMPLER, SAMPLERS, SoftMaskConfig, soft_mask_embeddings

BIDIRECTIONAL = [name for name in SAMPLERS if name != BLOCK_SAMPLER]  # block needs a block-causal LoadedModel
KW = {
    "semi_ar": {"steps": 10, "gen_length": 10, "block_length": 10},
    "dream": {"steps": 10, "gen_length": 10},
    "threshold": {"gen_length": 10, "block_length": 10, "threshold": 0.5},
}


def test_blend_equals_hand_computation():
    # 4-token vocabulary, d = 2; token 3 is the mask, its logit already -inf.
    weight = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -2.0]])
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2, 0.0]]))
    out = soft_mask_embeddings(logits, weight, weight[3], k=2, omega_s=0.5, omega_a=2.0, omega_b=-1.0)
    entropy = -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2))  # 1.029653
    lam = 0.5 / (1.0 + math.exp(-2.0 * (-entropy + 1.0)))  # 0.242589
    mix = [0.625 * 1.0 + 0.375 * 0.0, 0.625 * 0.0 + 0.375 * 1.0]  # top-2 renormalised: 0.5/0.8, 0.3/0.8
    expected = torch.tensor([[(1 - lam) * 2.0 + lam * mix[0], (1 - lam) * -2.0 + lam * mix[1]]])
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    assert abs(lam - 0.242589) < 1e-5
    torch.testing.assert_close(out, torch.tensor([[1.66644, -1.42385]]), atol=1e-4, rtol=0)


def test_blend_limits():
    weight = torch.randn(6, 3)
    logits = torch.randn(4, 6)
    logits[:, 5] = float("-inf")
    off = soft_mask_embeddings(logits, weight, weight[5], k=3, omega_s=0.0, omega_a=6.66, omega_b=-0.75)
    assert torch.equal(off, weight[5].expand(4, 3))
    # a one-hot prediction (H = 0) with omega_s = 1 and a huge steepness gives that token's embedding
    sharp = torch.full((1, 6), -1e4)
    sharp[0, 2] = 0.0
    on = soft_mask_embeddings(sharp, weight, weight[5], k=1, omega_s=1.0, omega_a=1e3, omega_b=-0.75)
    torch.testing.assert_close(on[0], weight[2])


def test_config_validation_and_raw_parameters(tmp_path):
    with pytest.raises(MasktaxError, match="omega_s"):
        SoftMaskConfig(omega_s=1.5)
    with pytest.raises(MasktaxError, match="omega_a"):
        SoftMaskConfig(omega_a=0.0)
    with pytest.raises(MasktaxError, match="omega_b"):
        SoftMaskConfig(omega_b=0.5)
    with pytest.raises(MasktaxError, match="k must"):
        SoftMaskConfig(k=0)
    with pytest.raises(MasktaxError, match="fraction"):
        SoftMaskConfig(fraction=1.2)
    cfg = SoftMaskConfig.from_raw(0.0, 0.0, 0.0)
    assert cfg.omega_s == 0.5
    assert abs(cfg.omega_a - (math.log(2) + 1e-6)) < 1e-12 and abs(cfg.omega_b + math.log(2) + 1e-6) < 1e-12
    saved = SoftMaskConfig(k=1, omega_s=0.3, omega_a=5.0, omega_b=-0.5).save(tmp_path)
    assert SoftMaskConfig.from_checkpoint(tmp_path) == SoftMaskConfig(k=1, omega_s=0.3, omega_a=5.0, omega_b=-0.5)
    assert SoftMaskConfig.from_checkpoint(saved, fraction=0.5).fraction == 0.5
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "soft_mask.json").write_text(json.dumps({"raw_s": 0.0, "raw_a": 0.0, "raw_b": 0.0, "k": 3}))
    assert SoftMaskConfig.from_checkpoint(tmp_path / "raw").omega_s == 0.5
    with pytest.raises(MasktaxError, match="no soft_mask.json"):
        SoftMaskConfig.from_checkpoint(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "soft_mask.json").write_text(json.dumps({"omega_s": 0.1}))
    with pytest.raises(MasktaxError, match="lacks the field"):
        SoftMaskConfig.from_checkpoint(tmp_path / "bad")


class Spy(nn.Module):
    """Wraps a model and records, per call, the input embeddings (None for ids) and the logits."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.calls = inner, []

    def get_input_embeddings(self):
        return self.inner.get_input_embeddings()

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None):
        out = self.inner(input_ids=input_ids, inputs_embeds=inputs_embeds, attention_mask=attention_mask)
        self.calls.append((None if inputs_embeds is None else inputs_embeds.clone(), out.logits.clone()))
        return out


@pytest.mark.parametrize("name", BIDIRECTIONAL)
def test_zero_lambda_equals_plain_decoding(name):
    spy = Spy(TinyMDLM(seed=41))
    ids = prompt(seed=42)
    plain = SAMPLERS[name](spy, ids, mask_id=MASK_ID, **KW[name])
    spy.calls.clear()
    soft = SAMPLERS[name](spy, ids, mask_id=MASK_ID, soft_mask=SoftMaskConfig(omega_s=0.0, fraction=1.0), **KW[name])
    assert torch.equal(plain, soft)
    assert sum(e is not None for e, _ in spy.calls) >= 1  # the embedding path was really used


@pytest.mark.parametrize("name", BIDIRECTIONAL)
def test_soft_inputs_are_the_blend_of_the_previous_step(name):
    spy = Spy(TinyMDLM(seed=43))
    ids = prompt(seed=44)
    states = []
    cfg = SoftMaskConfig(k=3, omega_s=0.9, omega_a=2.0, omega_b=-0.5, fraction=1.0)
    SAMPLERS[name](spy, ids, mask_id=MASK_ID, soft_mask=cfg, shift=(name == "dream"),
                   on_step=lambda ev: states.append(ev.x.clone()), **KW[name])
    weight = spy.get_input_embeddings().weight
    assert spy.calls[0][0] is None  # step 0 uses plain ids
    checked = 0
    for i, (embeds, _) in enumerate(spy.calls[1:]):
        x, prev_logits = states[i], spy.calls[i][1]  # the sequence and logits of the step before
        assert embeds is not None
        masked = x == MASK_ID  # [b, l]
        torch.testing.assert_close(embeds[~masked], weight[x[~masked]])  # real tokens keep their embedding
        aligned = torch.cat([prev_logits[:, :1], prev_logits[:, :-1]], 1) if name == "dream" else prev_logits
        aligned = aligned.clone()
        aligned[..., MASK_ID] = float("-inf")
        expected = soft_mask_embeddings(aligned[masked], weight, weight[MASK_ID], k=3, omega_s=0.9,
                                        omega_a=2.0, omega_b=-0.5)
        torch.testing.assert_close(embeds[masked], expected)
        checked += int(masked.sum())
    assert checked > 0


def test_fraction_limits_soft_steps():
    spy = Spy(TinyMDLM(seed=45))
    cfg = SoftMaskConfig(omega_s=0.5, fraction=0.8)
    SAMPLERS["semi_ar"](spy, prompt(seed=46), mask_id=MASK_ID, soft_mask=cfg, **KW["semi_ar"])
    soft_steps = [i for i, (e, _) in enumerate(spy.calls) if e is not None]
    assert soft_steps == list(range(1, 8))  # steps 1..7 of 10: the first 80%


def test_soft_mask_changes_decoding_when_on():
    model = TinyMDLM(seed=47, scale=1.0)
    ids = prompt(seed=48, b=4)
    _, plain = SAMPLERS["semi_ar"](model, ids, mask_id=MASK_ID, return_history=True, **KW["semi_ar"])
    _, soft = SAMPLERS["semi_ar"](model, ids, mask_id=MASK_ID, soft_mask=SoftMaskConfig(omega_s=1.0, omega_b=-3.0),
                                  return_history=True, **KW["semi_ar"])
    first = torch.nan_to_num(plain.steps[0].confidence)
    assert torch.equal(first, torch.nan_to_num(soft.steps[0].confidence))  # step 0: plain ids in both
    later = [torch.nan_to_num(h.steps[1].confidence) for h in (plain, soft)]
    assert not torch.allclose(later[0], later[1])


@pytest.mark.parametrize("data", [{"omega_s": "x", "omega_a": 1, "omega_b": 0, "k": 3},
                                  {"omega_s": 1, "omega_a": 1, "omega_b": 0, "k": "three"},
                                  {"omega_s": 1, "omega_a": 1, "omega_b": 0, "fraction": [1]}])
def test_soft_mask_file_with_a_value_that_is_not_a_number_is_one_error(tmp_path, data):
    (tmp_path / "soft_mask.json").write_text(json.dumps(data))
    with pytest.raises(MasktaxError, match="not a number"):
        SoftMaskConfig.from_checkpoint(tmp_path)
