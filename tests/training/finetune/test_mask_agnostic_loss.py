"""The MA-loss on hand-computed tensors: both terms, their scalings, n_m, label positions, beta = 0."""

from __future__ import annotations

import math

import pytest
import torch

from masktax.training.finetune.mask_agnostic_loss import mask_agnostic_loss


def _softmax(row: list[float]) -> list[float]:
    z = sum(math.exp(v) for v in row)
    return [math.exp(v) / z for v in row]


def test_hand_computed_terms_and_scalings() -> None:
    # b = 1, l = 3, V = 2; positions 1 and 2 are masked answer tokens (n_m = 2), position 0 is prompt.
    l1 = [[[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]]
    l2 = [[[5.0, 5.0], [0.0, 1.0], [0.0, 2.0]]]
    targets = torch.tensor([[1, 0, 1]])
    masked = torch.tensor([[False, True, True]])
    p = torch.tensor([0.4])
    total, ce, tv = mask_agnostic_loss(torch.tensor(l1), torch.tensor(l2), targets, masked, p, alpha=0.1, beta=1.0)
    nll = 0.0
    dist = 0.0
    for j, t in ((1, 0), (2, 1)):
        s1, s2 = _softmax(l1[0][j]), _softmax(l2[0][j])
        nll += -math.log(s1[t]) - math.log(s2[t])
        dist += abs(s1[0] - s2[0]) + abs(s1[1] - s2[1])  # L1, no 1/2
    exp_ce = nll / (2 * 0.4 * 2)
    exp_tv = 0.4 * dist / 2
    assert ce.item() == pytest.approx(exp_ce, rel=1e-6)
    assert tv.item() == pytest.approx(exp_tv, rel=1e-6)
    assert total.item() == pytest.approx(0.1 * exp_ce + exp_tv, rel=1e-6)


def test_per_example_then_batch_mean_and_zero_masked_example() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 5, 7, generator=g), torch.randn(2, 5, 7, generator=g)
    targets = torch.randint(0, 7, (2, 5), generator=g)
    masked = torch.tensor([[False, True, True, False, True], [False] * 5])  # example 2: n_m = 0
    p = torch.tensor([0.3, 0.7])
    total, ce, tv = mask_agnostic_loss(a, b, targets, masked, p, alpha=0.5, beta=2.0)
    t1, c1, v1 = mask_agnostic_loss(a[:1], b[:1], targets[:1], masked[:1], p[:1], alpha=0.5, beta=2.0)
    # the n_m = 0 example contributes 0 but still counts in the batch mean
    assert ce.item() == pytest.approx(c1.item() / 2, rel=1e-6)
    assert tv.item() == pytest.approx(v1.item() / 2, rel=1e-6)
    assert total.item() == pytest.approx(t1.item() / 2, rel=1e-6)
    # n_m counts only this example's masked tokens: doubling p halves CE and doubles TV
    _, c2, v2 = mask_agnostic_loss(a[:1], b[:1], targets[:1], masked[:1], p[:1] * 2)
    assert c2.item() == pytest.approx(c1.item() / 2, rel=1e-6)
    assert v2.item() == pytest.approx(v1.item() * 2, rel=1e-6)


def test_labels_only_on_masked_answer_positions() -> None:
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(1, 6, 9, generator=g), torch.randn(1, 6, 9, generator=g)
    masked = torch.tensor([[False, False, True, False, True, False]])
    t1 = torch.randint(0, 9, (1, 6), generator=g)
    t2 = t1.clone()
    t2[0, [0, 1, 3, 5]] = (t2[0, [0, 1, 3, 5]] + 1) % 9  # change every unmasked label
    out1 = mask_agnostic_loss(a, b, t1, masked, torch.tensor([0.5]))
    out2 = mask_agnostic_loss(a, b, t2, masked, torch.tensor([0.5]))
    assert all(x.item() == y.item() for x, y in zip(out1, out2, strict=True))
    # logits at unmasked positions do not matter either
    a2 = a.clone()
    a2[0, 3] += 10.0
    assert mask_agnostic_loss(a2, b, t1, masked, torch.tensor([0.5]))[0].item() == out1[0].item()


def test_tv_zero_for_identical_views_and_beta_zero_ignores_tv() -> None:
    g = torch.Generator().manual_seed(2)
    a = torch.randn(2, 4, 5, generator=g)
    targets = torch.randint(0, 5, (2, 4), generator=g)
    masked = torch.tensor([[True, False, True, True], [False, True, False, False]])
    p = torch.tensor([0.25, 0.8])
    total, ce, tv = mask_agnostic_loss(a, a.clone(), targets, masked, p, alpha=0.1, beta=1.0)
    assert tv.item() == pytest.approx(0.0, abs=1e-7)
    assert total.item() == pytest.approx(0.1 * ce.item(), rel=1e-6)

    b = torch.randn(2, 4, 5, generator=g)
    x1, x2 = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    total0, ce0, tv0 = mask_agnostic_loss(x1, x2, targets, masked, p, alpha=0.1, beta=0.0)
    assert tv0.item() > 0  # still reported for logging
    assert total0.item() == pytest.approx(0.1 * ce0.item(), rel=1e-6)
    total0.backward()
    y1, y2 = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    (0.1 * mask_agnostic_loss(y1, y2, targets, masked, p)[1]).backward()
    assert torch.allclose(x1.grad, y1.grad) and torch.allclose(x2.grad, y2.grad)


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError):
        mask_agnostic_loss(torch.zeros(1, 3, 4), torch.zeros(1, 4, 4), torch.zeros(1, 3).long(),
                           torch.zeros(1, 3, dtype=torch.bool), torch.ones(1))
