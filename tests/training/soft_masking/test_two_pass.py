"""Soft-masking training [P2]: omega module, blend, two-pass forward, gradients, p_sm = 0 exactness."""

from __future__ import annotations

import math

import pytest
import torch
from tiny import tiny_checkpoint, tiny_tokenizer

from masktax.errors import MasktaxError
from masktax.samplers.soft_mask import SoftMaskConfig
from masktax.training.soft_masking.two_pass import (
    SoftMaskParams,
    TwoPassModel,
    param_groups,
    soft_mask_coin,
    two_pass_logits,
)


def test_initial_omegas_match_the_paper():
    p = SoftMaskParams()
    v = p.values()
    assert v["omega_s"] == pytest.approx(1e-6, rel=1e-4)  # raw_s = logit(1e-6)
    assert v["raw_s"] == pytest.approx(math.log(1e-6 / (1 - 1e-6)), abs=1e-5)
    assert v["omega_a"] == pytest.approx(6.66, abs=1e-5)
    assert v["omega_b"] == pytest.approx(-0.75, abs=1e-6)
    assert v["k"] == 3
    with pytest.raises(MasktaxError):
        SoftMaskParams(k=0)
    with pytest.raises(MasktaxError):
        SoftMaskParams(omega_b=0.5)


def test_lambda_and_blend_on_hand_checked_numbers():
    params = SoftMaskParams(k=2, omega_s=0.5, omega_a=2.0, omega_b=-0.5)
    # p = (0.5, 0.3, 0.2) over tokens 0..2; token 3 is the mask, its logit excluded (-inf).
    logits = torch.tensor([[math.log(0.5), math.log(0.3), math.log(0.2), float("-inf")]])
    h = -(0.5 * math.log(0.5) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2))  # 1.029653 nats
    lam = 0.5 / (1.0 + math.exp(-2.0 * (-h + 0.5)))  # 0.128718
    assert float(params.lam(logits).detach()[0]) == pytest.approx(lam, rel=1e-5)
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 2.0]])  # [V, d]; row 3 = E[mask]
    out = params.blend(logits, emb, emb[3])  # [1, d]
    pi0, pi1 = 0.5 / 0.8, 0.3 / 0.8  # top-2 renormalised
    expect = [(1 - lam) * 2.0 + lam * pi0, (1 - lam) * 2.0 + lam * pi1]
    assert out[0].tolist() == pytest.approx(expect, rel=1e-5)


def test_save_load_round_trip_and_sampler_config(tmp_path):
    p = SoftMaskParams(k=1, omega_s=0.3, omega_a=4.0, omega_b=-1.2)
    p.save(tmp_path, fraction=0.7)
    q = SoftMaskParams.load(tmp_path)
    for name in ("raw_s", "raw_a", "raw_b"):
        assert torch.equal(getattr(p, name), getattr(q, name))
    cfg = SoftMaskConfig.from_checkpoint(tmp_path)
    assert (cfg.k, cfg.fraction) == (1, 0.7)
    assert (cfg.omega_s, cfg.omega_a, cfg.omega_b) == pytest.approx((0.3, 4.0, -1.2), rel=1e-6)
    with pytest.raises(MasktaxError):
        SoftMaskParams.load(tmp_path / "missing")


@pytest.fixture(scope="module", params=["llada", "dream"])
def lm(request, tmp_path_factory):
    from masktax.models import load

    path = tiny_checkpoint(request.param, tmp_path_factory.mktemp(request.param))
    return load(path, device="cpu")


def _noised(lm, seed=0):
    tok = tiny_tokenizer()
    ids = torch.tensor([tok("Options: (A) cat, (B) red, (C) run\nAnswer:[A].")["input_ids"]] * 2)  # [2, l]
    g = torch.Generator().manual_seed(seed)
    masked = torch.rand(ids.shape, generator=g) < 0.5  # [2, l]
    masked[:, 0] = False
    return torch.where(masked, torch.full_like(ids, lm.mask_id), ids)  # [2, l]


def test_second_pass_at_initial_omega_equals_plain_pass(lm):
    xt = _noised(lm)
    with torch.no_grad():
        plain = lm.logits(xt)  # [2, l, V]
        soft, stats = two_pass_logits(lm, xt, None, SoftMaskParams(), mask_id=lm.mask_id)
    assert stats.n_soft == int((xt == lm.mask_id).sum()) > 0
    assert stats.mean_lambda < 1e-6
    torch.testing.assert_close(soft, plain, atol=1e-4, rtol=1e-4)
    # and a large omega_s does change the logits (the comparison above can fail)
    with torch.no_grad():
        other, _ = two_pass_logits(lm, xt, None, SoftMaskParams(omega_s=0.9, omega_b=-9.0), mask_id=lm.mask_id)
    assert (other - plain).abs().max() > 1e-3


def test_gradients_reach_the_omegas(lm):
    params = SoftMaskParams(omega_s=0.5, omega_b=-8.0)
    two = TwoPassModel(lm, params)
    two.soft = True
    xt = _noised(lm, seed=1)
    raw = two(input_ids=xt).logits  # [2, l, V]
    raw.logsumexp(-1).mean().backward()
    for name in ("raw_s", "raw_a", "raw_b"):
        g = getattr(params, name).grad
        assert g is not None and torch.isfinite(g) and float(g) != 0.0, name
    lm.model.zero_grad(set_to_none=True)


def test_coin_is_seeded_and_p_sm_extremes():
    assert not any(soft_mask_coin(0, s, 0.0) for s in range(200))
    assert all(soft_mask_coin(0, s, 1.0) for s in range(200))
    coins = [soft_mask_coin(3, s, 0.8) for s in range(500)]
    assert coins == [soft_mask_coin(3, s, 0.8) for s in range(500)]
    assert 0.74 < sum(coins) / 500 < 0.86


def test_param_groups_separate_learning_rates(lm):
    params = SoftMaskParams()
    groups = param_groups(lm.model, params, lr=3e-4, omega_lr=1e-2)
    by = {g["name"]: g for g in groups}
    assert by["omega"]["lr"] == 1e-2 and by["backbone"]["lr"] == 3e-4
    assert len(by["omega"]["params"]) == 3
    n_model = sum(1 for p in lm.model.parameters() if p.requires_grad)
    assert len(by["backbone"]["params"]) + len(by["backbone_vec"]["params"]) == n_model
