"""The MDLM / AR losses on hand-computed tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch

from masktax.training import mdlm_loss as losses


def _ce(logits: list[float], target: int) -> float:
    return -logits[target] + math.log(sum(math.exp(v) for v in logits))


LOGITS = torch.tensor(
    [[[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [0.0, 1.0, 3.0]],
     [[1.0, 1.0, 1.0], [0.0, -2.0, 2.0], [3.0, 0.0, 0.0]]]
)  # [2, 3, 3]
TARGETS = torch.tensor([[0, 1, 2], [1, 2, 0]])
MASKED = torch.tensor([[True, False, True], [False, True, False]])
P = torch.tensor([0.5, 0.25])


def test_mdlm_loss_inv_p_hand_computed():
    expected = (_ce([2.0, 0.0, -1.0], 0) / 0.5 + _ce([0.0, 1.0, 3.0], 2) / 0.5 + _ce([0.0, -2.0, 2.0], 2) / 0.25) / 6
    got = losses.mdlm_loss(LOGITS, TARGETS, MASKED, P, weighting="inv_p")
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # n_tokens overrides the normaliser (e.g. real tokens only)
    assert losses.mdlm_loss(LOGITS, TARGETS, MASKED, P, n_tokens=4).item() == pytest.approx(expected * 6 / 4, rel=1e-6)


def test_mdlm_loss_none_is_mean_over_masked():
    expected = (_ce([2.0, 0.0, -1.0], 0) + _ce([0.0, 1.0, 3.0], 2) + _ce([0.0, -2.0, 2.0], 2)) / 3
    assert losses.mdlm_loss(LOGITS, TARGETS, MASKED, P, weighting="none").item() == pytest.approx(expected, rel=1e-6)
    assert losses.masked_mean_ce(LOGITS, TARGETS, MASKED).item() == pytest.approx(expected, rel=1e-6)


def test_unmasked_positions_do_not_count():
    changed = LOGITS.clone()
    changed[~MASKED] = torch.randn(int((~MASKED).sum()), 3) * 10
    assert losses.mdlm_loss(changed, TARGETS, MASKED, P).item() == pytest.approx(losses.mdlm_loss(LOGITS, TARGETS, MASKED, P).item())
    with pytest.raises(ValueError):
        losses.mdlm_loss(LOGITS, TARGETS, MASKED, P, weighting="bogus")  # type: ignore[arg-type]


def test_forward_mask_respects_maskable_and_p():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2000).view(4, 500) % 50 + 1
    maskable = torch.ones_like(x, dtype=torch.bool)
    maskable[:, :10] = False
    p = torch.tensor([1.0, 0.0, 0.5, 0.1])
    xt, masked = losses.forward_mask(x, maskable, p, mask_id=0, generator=g)
    assert not masked[:, :10].any()
    assert masked[0, 10:].all() and not masked[1].any()
    assert abs(masked[2, 10:].float().mean().item() - 0.5) < 0.08
    assert torch.equal(xt[masked], torch.zeros(int(masked.sum()), dtype=x.dtype))
    assert torch.equal(xt[~masked], x[~masked])


def test_sample_p_range_and_seed():
    a = losses.sample_p(1000, p_min=0.3, generator=torch.Generator().manual_seed(1), device=torch.device("cpu"))
    b = losses.sample_p(1000, p_min=0.3, generator=torch.Generator().manual_seed(1), device=torch.device("cpu"))
    assert torch.equal(a, b) and a.min() >= 0.3 and a.max() <= 1.0


def test_answer_focused_mask_only_answers_at_least_one():
    g = torch.Generator().manual_seed(0)
    ans = torch.zeros(64, 30, dtype=torch.bool)
    ans[:, [5, 12, 20]] = True
    ans[63] = False  # a row without answers stays unmasked
    m = losses.answer_focused_mask(ans, generator=g)
    assert not (m & ~ans).any()
    assert (m[:63].sum(1) >= 1).all() and not m[63].any()
    assert m[:63].sum(1).float().mean() > 1.0  # q ~ U(0.2, 0.8) masks more than one on average


def test_ar_loss_next_token_and_padding():
    raw = LOGITS  # position i predicts token i+1
    ids = TARGETS
    real = torch.tensor([[True, True, True], [True, True, False]])
    # targets: row0 -> ids[0,1]=1 from logits[0,0], ids[0,2]=2 from logits[0,1]; row1 -> ids[1,1]=2 from logits[1,0]
    ce = [_ce([2.0, 0.0, -1.0], 1), _ce([0.5, 0.5, 0.0], 2), _ce([1.0, 1.0, 1.0], 2)]
    assert losses.ar_loss(raw, ids, real).item() == pytest.approx(sum(ce) / 3, rel=1e-6)
    ans = torch.zeros_like(real)
    ans[0, 2] = True
    got = losses.ar_loss(raw, ids, real, answer_pos=ans, answer_weight=0.5).item()
    assert got == pytest.approx(sum(ce) / 3 + 0.5 * ce[1], rel=1e-6)
