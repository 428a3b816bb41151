"""The two views of the mask-agnostic loss ([P1]) and the trailing-mask curriculum.

For one (prompt q, answer a) pair: draw p ~ U(p_lo, p_hi), noise the answer ONCE (each answer
token becomes the mask with probability p, i.i.d.), draw

    l1, l2 ~ U{0, ..., min(L − len(q ⊕ a), max_masks_now)}

and build `x1 = q ⊕ ã ⊕ [mask]·l1`, `x2 = q ⊕ ã ⊕ [mask]·l2`, the shorter padded with EOS to the
length of the longer (the padding EOS is a real, attended token, as in the paper). So the views
agree on every position except the trailing region, where one has masks and the other masks or
EOS. Labels are the clean answer tokens; the prompt and the trailing tokens carry no loss.

`max_masks_now` follows a linear curriculum from `min_masks` to `max_masks` (600 in [P1]) over
`curriculum_steps` optimiser steps (5000 in [P1]; the minimum is not stated, ours is a config
field). A batch stacks the x1 rows then the x2 rows (`[2b, l]`) for ONE forward pass; rows are
padded to the batch's longest row with EOS under attention 0 (batch padding is invisible, unlike
the pair padding above, so a loss does not depend on which examples share a batch).

Every random draw of an example comes from a generator seeded by (seed, global example index),
so a run resumes exactly and gives the same views however the global batch is split over
devices or accumulation steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch


class Views(NamedTuple):
    """One example's two views (1-D, equal length) and what the loss reads."""

    x1: torch.Tensor  # [n] q ⊕ ã ⊕ mask·l1 ⊕ EOS·(max(l1, l2) − l1)
    x2: torch.Tensor  # [n] q ⊕ ã ⊕ mask·l2 ⊕ EOS·(max(l1, l2) − l2)
    targets: torch.Tensor  # [n] clean tokens q ⊕ a ⊕ EOS fill
    masked: torch.Tensor  # [n] bool: answer positions holding a mask (same in both views)
    p: float  # the example's masking probability


class ViewBatch(NamedTuple):
    ids: torch.Tensor  # [2b, l] x1 rows then x2 rows
    attention: torch.Tensor  # [2b, l] 1 = real (pair padding included), 0 = batch padding
    targets: torch.Tensor  # [b, l]
    masked: torch.Tensor  # [b, l] bool
    p: torch.Tensor  # [b]


def max_masks_at(step: int, *, min_masks: int, max_masks: int, curriculum_steps: int) -> int:
    """Curriculum: `min_masks + (max_masks − min_masks) · min(1, step / curriculum_steps)`, floored."""
    if curriculum_steps <= 0:
        return max_masks
    frac = min(1.0, max(0, step) / curriculum_steps)
    return int(min_masks + (max_masks - min_masks) * frac)


def sample_view_lengths(
    n_prompt: int, n_answer: int, *, max_context: int, max_masks_now: int, generator: torch.Generator
) -> tuple[int, int]:
    """l1, l2 ~ U{0, ..., min(L − len(q ⊕ a), max_masks_now)}, independently."""
    hi = max(0, min(max_context - n_prompt - n_answer, max_masks_now))
    l1, l2 = torch.randint(0, hi + 1, (2,), generator=generator).tolist()
    return int(l1), int(l2)


def make_views(
    prompt_ids: Sequence[int] | torch.Tensor,
    answer_ids: Sequence[int] | torch.Tensor,
    *,
    p: float,
    l1: int,
    l2: int,
    mask_id: int,
    eos_id: int,
    generator: torch.Generator,
) -> Views:
    """Noise the answer once with Bernoulli(p) and build the two views (module docstring)."""
    q = torch.as_tensor(prompt_ids, dtype=torch.long)  # [n_q]
    a = torch.as_tensor(answer_ids, dtype=torch.long)  # [n_a]
    if q.numel() == 0 or a.numel() == 0:
        raise ValueError("make_views needs a non-empty prompt and answer")
    if l1 < 0 or l2 < 0:
        raise ValueError("l1 and l2 must be non-negative")
    hit = torch.rand(a.shape, generator=generator) < p  # [n_a]
    a_noised = torch.where(hit, torch.full_like(a, mask_id), a)  # [n_a]
    tail = max(l1, l2)
    n = q.numel() + a.numel() + tail

    def view(k: int) -> torch.Tensor:
        trail = torch.cat([torch.full((k,), mask_id), torch.full((tail - k,), eos_id)]).long()  # [tail]
        return torch.cat([q, a_noised, trail])  # [n]

    targets = torch.cat([q, a, torch.full((tail,), eos_id, dtype=torch.long)])  # [n]
    masked = torch.zeros(n, dtype=torch.bool)  # [n]
    masked[q.numel() : q.numel() + a.numel()] = hit
    return Views(view(l1), view(l2), targets, masked, float(p))


def collate_views(views: Sequence[Views], *, eos_id: int) -> ViewBatch:
    """Stack examples into one `[2b, l]` batch (x1 rows, then x2 rows), padded with EOS under attention 0."""
    b = len(views)
    length = max(v.x1.numel() for v in views)
    ids = torch.full((2 * b, length), eos_id, dtype=torch.long)  # [2b, l]
    attention = torch.zeros((2 * b, length), dtype=torch.long)  # [2b, l]
    targets = torch.full((b, length), eos_id, dtype=torch.long)  # [b, l]
    masked = torch.zeros((b, length), dtype=torch.bool)  # [b, l]
    for i, v in enumerate(views):
        n = v.x1.numel()
        ids[i, :n], ids[b + i, :n] = v.x1, v.x2
        attention[i, :n] = attention[b + i, :n] = 1
        targets[i, :n], masked[i, :n] = v.targets, v.masked
    p = torch.tensor([v.p for v in views], dtype=torch.float32)  # [b]
    return ViewBatch(ids, attention, targets, masked, p)


def example_generator(seed: int, index: int) -> torch.Generator:
    """The generator of global example `index` (its p, noise and view lengths)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + index) % (2**63 - 1))


def build_example_views(
    prompt_ids: Sequence[int],
    answer_ids: Sequence[int],
    *,
    index: int,
    seed: int,
    p_range: tuple[float, float],
    max_context: int,
    max_masks_now: int,
    mask_id: int,
    eos_id: int,
) -> Views:
    """p ~ U(p_range), then l1, l2 and the views, all from the example's own generator."""
    g = example_generator(seed, index)
    lo, hi = p_range
    p = lo + (hi - lo) * float(torch.rand((), generator=g))
    l1, l2 = sample_view_lengths(len(prompt_ids), len(answer_ids), max_context=max_context,
                                 max_masks_now=max_masks_now, generator=g)
    return make_views(prompt_ids, answer_ids, p=p, l1=l1, l2=l2, mask_id=mask_id, eos_id=eos_id, generator=g)
