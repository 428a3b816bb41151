"""Gradient attribution ([P1]): how much each input token moves the predicted answer logit.

For an item with input embeddings e_1..e_l and aligned logits z(e) `[l, V]`, the predicted answer
token is y = argmax_v z_{a, v} at the answer position a, and token i's score is

    s_i = || d z_{a, y} / d e_i ||_2        (L2 norm over the embedding dimension d)

Items of a batch are independent (each row attends only to itself), so one backward from
sum_b z_{b, a_b, y_b} gives every row's own gradients. The model's weights are frozen during the
probe (requires_grad False, restored after), so autograd builds only the path to the embeddings.

Per example the scores are normalised by their maximum over ALL positions (prompt, answer
position and appended masks): n_i = s_i / max_j s_j, so every n_i is in [0, 1] (all zeros if the
gradient vanishes everywhere). Groups, each the mean of n_i over its positions:
  masks    the appended masks after the answer position (not the answer position itself)
  last50   the last 50 non-mask tokens, i.e. the 50 prompt tokens just before the answer position
  nonmask  every prompt token before the answer position
  answer   the answer position's own score
For a causal (AR) model the answer logit is read from the hidden state before the answer position,
so the answer position and everything after it get exactly zero gradient.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from masktax.models.loaded import LoadedModel

LAST_N = 50  # the "last 50 non-mask tokens" group of [P1]
GROUPS = ("masks", "last50", "nonmask", "answer")


@contextmanager
def frozen_weights(model: torch.nn.Module) -> Iterator[None]:
    """Set requires_grad False on every parameter (and eval mode) for the block; restore after."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    training = model.training
    for p, _ in flags:
        p.requires_grad_(False)
    model.eval()
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(training)


def embedding_gradients(
    lm: LoadedModel,
    ids: torch.Tensor,
    answer_pos: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(d z_{a, y} / d e `[b, l, d]`, predicted token y `[b]`) for ids `[b, l]`, answer_pos `[b]`.

    Only the embedding output requires grad; the weights are frozen for the call.
    """
    with frozen_weights(lm.model), torch.enable_grad():
        embeds = lm.embed(ids).detach().requires_grad_(True)  # [b, l, d]
        answer = lm.logits_at(None, answer_pos, attention_mask, embeds=embeds)  # [b, V], head at a_b only
        pred = answer.detach().argmax(dim=-1)  # [b]
        answer.gather(1, pred[:, None]).sum().backward()
    return embeds.grad.detach(), pred


def attribution_scores(
    lm: LoadedModel,
    ids: torch.Tensor,
    answer_pos: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(s `[b, l]` = L2 norm of each token's embedding gradient, predicted token `[b]`).

    Norms are taken in float32 (float64 for a float64 model); padded positions are zero.
    """
    grads, pred = embedding_gradients(lm, ids, answer_pos, attention_mask)  # [b, l, d], [b]
    dtype = torch.float64 if grads.dtype == torch.float64 else torch.float32
    scores = grads.to(dtype).norm(dim=-1)  # [b, l]
    if attention_mask is not None:
        scores = scores * attention_mask.to(dtype)  # [b, l]
    return scores, pred


def normalise(scores: torch.Tensor) -> torch.Tensor:
    """Per example `[l]` (or rows `[b, l]`): s / max s over the positions, in [0, 1]; zeros stay zeros."""
    top = scores.amax(dim=-1, keepdim=True)  # [..., 1]
    return torch.where(top > 0, scores / top.clamp_min(torch.finfo(scores.dtype).tiny), torch.zeros_like(scores))


def group_means(norm: Sequence[float], answer_pos: int, n_masks: int, last_n: int = LAST_N) -> dict:
    """The four group means (see the module docstring) of one example's normalised scores.

    `norm` covers the prompt, the answer position and the n_masks appended masks (nothing after).
    A group without positions (n_masks = 0) is None.
    """
    prompt = list(norm[:answer_pos])
    masks = list(norm[answer_pos + 1: answer_pos + 1 + n_masks])
    last = prompt[-last_n:]

    def avg(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    return {"masks": avg(masks), "last50": avg(last), "nonmask": avg(prompt), "answer": float(norm[answer_pos])}


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Right-padded ids `[b, l]` and an attention mask `[b, l]` (None when all lengths are equal)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)  # [b, l]
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = torch.tensor(list(s), dtype=torch.long)
    if all(len(s) == width for s in seqs):
        return ids, None
    lengths = torch.tensor([len(s) for s in seqs])  # [b]
    return ids, (torch.arange(width)[None, :] < lengths[:, None]).long()  # [b, l]
