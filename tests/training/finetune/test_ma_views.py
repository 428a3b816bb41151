"""The two MA-loss views, their batching and the trailing-mask curriculum."""

from __future__ import annotations

import torch

from masktax.training.finetune.ma_views import (
    build_example_views,
    collate_views,
    make_views,
    max_masks_at,
    sample_view_lengths,
)

MASK, EOS = 99, 98


def test_views_share_the_noised_answer_and_differ_only_in_trailing_masks() -> None:
    q, a = [1, 2, 3], [10, 11, 12, 13, 14, 15]
    v = make_views(q, a, p=0.5, l1=2, l2=5, mask_id=MASK, eos_id=EOS, generator=torch.Generator().manual_seed(3))
    n = len(q) + len(a)
    assert v.x1.numel() == v.x2.numel() == n + 5
    assert torch.equal(v.x1[:n], v.x2[:n])  # same prompt and the SAME noised answer
    assert v.x1[:3].tolist() == q
    assert v.x1[n:].tolist() == [MASK] * 2 + [EOS] * 3  # padded with EOS to the longer view
    assert v.x2[n:].tolist() == [MASK] * 5
    ans = v.x1[3:n]
    assert v.masked[3:n].tolist() == (ans == MASK).tolist()  # masked = answer positions holding a mask
    assert not v.masked[:3].any() and not v.masked[n:].any()  # no loss on prompt or trailing tokens
    assert v.targets[:n].tolist() == q + a
    kept = ~v.masked[3:n]
    assert ans[kept].tolist() == torch.tensor(a)[kept].tolist()


def test_noise_rate_follows_p() -> None:
    a = list(range(10, 4010))
    v0 = make_views([1], a, p=0.0, l1=0, l2=0, mask_id=MASK, eos_id=EOS, generator=torch.Generator().manual_seed(0))
    v3 = make_views([1], a, p=0.3, l1=0, l2=0, mask_id=MASK, eos_id=EOS, generator=torch.Generator().manual_seed(0))
    assert int(v0.masked.sum()) == 0
    assert 0.27 < v3.masked.float().sum().item() / len(a) < 0.33


def test_curriculum_schedule_values() -> None:
    kw = dict(min_masks=32, max_masks=600, curriculum_steps=5000)
    assert max_masks_at(0, **kw) == 32
    assert max_masks_at(2500, **kw) == 316
    assert max_masks_at(4999, **kw) == 599
    assert max_masks_at(5000, **kw) == 600
    assert max_masks_at(20000, **kw) == 600
    assert max_masks_at(7, min_masks=5, max_masks=9, curriculum_steps=0) == 9


def test_view_lengths_respect_context_and_curriculum() -> None:
    g = torch.Generator().manual_seed(0)
    seen = {v for _ in range(200) for v in sample_view_lengths(10, 7, max_context=20, max_masks_now=100, generator=g)}
    assert seen == {0, 1, 2, 3}  # U{0, ..., min(L - len(q+a), max_masks)}
    seen = {v for _ in range(200) for v in sample_view_lengths(10, 7, max_context=999, max_masks_now=2, generator=g)}
    assert seen == {0, 1, 2}


def test_collate_stacks_x1_then_x2_with_invisible_batch_padding() -> None:
    g = torch.Generator().manual_seed(1)
    va = make_views([1, 2], [5, 6, 7], p=0.5, l1=1, l2=0, mask_id=MASK, eos_id=EOS, generator=g)
    vb = make_views([1, 2, 3, 4], [5, 6, 7, 8], p=0.5, l1=0, l2=3, mask_id=MASK, eos_id=EOS, generator=g)
    batch = collate_views([va, vb], eos_id=EOS)
    assert batch.ids.shape == (4, 11) and batch.targets.shape == (2, 11)
    assert torch.equal(batch.ids[0, :6], va.x1) and torch.equal(batch.ids[2, :6], va.x2)
    assert torch.equal(batch.ids[1], vb.x1) and torch.equal(batch.ids[3], vb.x2)
    assert batch.attention[0].tolist() == [1] * 6 + [0] * 5 and bool(batch.attention[1].all())
    assert batch.ids[0, 6:].tolist() == [EOS] * 5
    assert batch.p.tolist() == [va.p, vb.p]


def test_example_views_are_a_function_of_seed_and_index() -> None:
    kw = dict(seed=4, p_range=(0.2, 0.8), max_context=64, max_masks_now=20, mask_id=MASK, eos_id=EOS)
    q, a = list(range(1, 9)), list(range(20, 40))
    v1 = build_example_views(q, a, index=17, **kw)
    v2 = build_example_views(q, a, index=17, **kw)
    v3 = build_example_views(q, a, index=18, **kw)
    assert torch.equal(v1.x1, v2.x1) and torch.equal(v1.x2, v2.x2) and v1.p == v2.p
    assert 0.2 <= v1.p <= 0.8
    assert not (torch.equal(v1.x1, v3.x1) and v1.p == v3.p)
