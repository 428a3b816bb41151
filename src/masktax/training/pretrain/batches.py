"""Training and gate batches drawn from the curriculum (pure functions of seed, step and state).

Each batch is seeded by `(seed, step)` alone, so resuming at step s regenerates exactly the batch
an uninterrupted run would have seen: the data generator's whole state is the step counter.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from masktax.training.pretrain.corpus import EncodedEpisode, Encoder, sample_episode
from masktax.training.pretrain.curriculum import CurriculumState, Stage, pick_stage


@dataclass
class Batch:
    ids: torch.Tensor  # [b, l] clean tokens
    real: torch.Tensor  # [b, l] bool: attended (and, for the MDLM, maskable)
    answer_pos: torch.Tensor  # [b, l] bool: every answer letter
    tail: torch.Tensor  # [b, l] bool: EOS tail after the episode (real only with eos_tail)
    focus: torch.Tensor  # [b] bool: answer-focused masking for this row
    stages: list[int]  # stage of each row (replay shows up here)
    repeat: torch.Tensor | None = None  # [b, l] bool: the repeated word after a letter (S0/S1 stepping stone)

    def to(self, device: torch.device) -> Batch:
        tensors = (self.ids, self.real, self.answer_pos, self.tail, self.focus)
        repeat = None if self.repeat is None else self.repeat.to(device)
        return Batch(*(t.to(device) for t in tensors), self.stages, repeat)


def _pad(encoded: Sequence[EncodedEpisode], tails: Sequence[int], eos_id: int, eos_tail: bool) -> tuple:
    lengths = [len(e.ids) + t for e, t in zip(encoded, tails, strict=True)]
    width = max(lengths)
    b = len(encoded)
    ids = torch.full((b, width), eos_id, dtype=torch.long)  # [b, l]
    real = torch.zeros((b, width), dtype=torch.bool)  # [b, l]
    answer_pos = torch.zeros((b, width), dtype=torch.bool)  # [b, l]
    repeat = torch.zeros((b, width), dtype=torch.bool)  # [b, l]
    tail = torch.zeros((b, width), dtype=torch.bool)  # [b, l]
    for r, e in enumerate(encoded):
        n = len(e.ids)
        ids[r, :n] = torch.tensor(e.ids)
        answer_pos[r, e.answer_positions] = True
        repeat[r, list(e.repeat_positions)] = True
        tail[r, n:] = True
        # With eos_tail, the EOS run up to the batch width is text (LLaDA SFT pads with EOS that
        # the model must predict); without it, everything after the episode is padding.
        real[r, : (width if eos_tail else n)] = True
    return ids, real, answer_pos, tail, repeat


def train_batch(
    *,
    seed: int,
    step: int,
    batch_size: int,
    words: Mapping[str, Sequence[str]],
    encoder: Encoder,
    stages: tuple[Stage, ...],
    state: CurriculumState,
    replay: float,
    focus_share: float,
    eos_tail: bool,
) -> Batch:
    """The batch of training step `step` (deterministic in its arguments)."""
    rng = random.Random(f"{seed}/batch/{step}")
    encoded, tails, which, focus = [], [], [], []
    for _ in range(batch_size):
        k = pick_stage(rng, state, replay)
        spec = stages[k].spec
        ep = sample_episode(rng, words, spec)
        encoded.append(encoder.episode(ep, spec.max_tokens))
        tails.append(rng.randint(0, spec.max_tail) if eos_tail else 0)
        which.append(k)
        focus.append(rng.random() < focus_share)
    ids, real, answer_pos, tail, repeat = _pad(encoded, tails, encoder.eos_id, eos_tail)
    return Batch(ids, real, answer_pos, tail, torch.tensor(focus, dtype=torch.bool), which, repeat)


@dataclass
class GateBatch:
    ids: torch.Tensor  # [n, l]: the query's answer letter replaced by a mask (MDLM) or cut (AR)
    attention: torch.Tensor  # [n, l] long
    pos: torch.Tensor  # [n]: position whose aligned logits predict the answer
    answer: torch.Tensor  # [n]: 0, 1, 2


def gate_batch(
    *, seed: int, step: int, size: int, words: Mapping[str, Sequence[str]], encoder: Encoder, stage: Stage, causal: bool
) -> GateBatch:
    """Fresh held-out queries of `stage` (a seed stream disjoint from training batches).

    MDLM: `... Answer:[<mask>].` (one mask at the answer). AR: the prompt ends at `Answer:[`.
    The query never carries the repeat stepping stone.
    """
    rng = random.Random(f"{seed}/gate/{step}")
    rows, pos, ans = [], [], []
    for _ in range(size):
        e = encoder.episode(sample_episode(rng, words, stage.spec, query_repeat=False), stage.spec.max_tokens)
        q, end = e.query_pos, e.query_end  # the prompt ends with the query's item, as in the suite
        rows.append(e.ids[:q] if causal else e.ids[:q] + [encoder.mask_id] + e.ids[q + 1 : end])
        pos.append(q)
        ans.append(e.query_answer)
    width = max(len(r) for r in rows)
    ids = torch.full((size, width), encoder.eos_id, dtype=torch.long)  # [n, l]
    att = torch.zeros((size, width), dtype=torch.long)  # [n, l]
    for r, row in enumerate(rows):
        ids[r, : len(row)] = torch.tensor(row)
        att[r, : len(row)] = 1
    return GateBatch(ids, att, torch.tensor(pos), torch.tensor(ans))
