"""Training losses for the embedded models: masked diffusion (MDLM) and its autoregressive twin.

Forward process (absorbing noise, LLaDA / MDLM): per sequence draw p ~ U(eps, 1), then mask every
maskable token independently with probability p:

    move = rand < p;  x_t = where(move, [MASK], x)

LLaDA's pretraining loss is the negative ELBO estimate

    L = (1 / N) * sum_{i masked} CE(x_i, f(x_t)_i) / p

with N the number of tokens in the batch (LLaDA divides by b * l; with padding we divide by the
number of maskable tokens). `weighting="none"` drops the 1/p factor and averages CE over the
masked tokens instead (a common simplification that up-weights heavily masked sequences).

Answer-focused masking (our addition for the few-shot format): mask only the answer letters, each
with q ~ U(q_lo, q_hi) per sequence, at least one per sequence, and take the plain mean CE over the
masked letters.

AR loss: next-token CE over real tokens, plus optionally `answer_weight` times the mean CE of the
answer letters (the same model family with a causal mask: Llama blocks = LLaDA blocks).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Weighting = Literal["inv_p", "none"]


def sample_p(batch: int, *, p_min: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Masking probability per sequence, p ~ U(p_min, 1): `[b]`."""
    return p_min + (1.0 - p_min) * torch.rand(batch, generator=generator, device=device)  # [b]


def forward_mask(
    x: torch.Tensor,
    maskable: torch.Tensor,
    p: torch.Tensor,
    *,
    mask_id: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Absorbing forward process: returns `(x_t [b, l], masked [b, l] bool)`.

    `move = rand < p; x_t = where(move, mask, x)`, restricted to `maskable` positions.
    """
    u = torch.rand(x.shape, generator=generator, device=x.device)  # [b, l]
    masked = (u < p[:, None]) & maskable  # [b, l]
    xt = torch.where(masked, torch.full_like(x, mask_id), x)  # [b, l]
    return xt, masked


def answer_focused_mask(
    answer_pos: torch.Tensor,
    *,
    generator: torch.Generator,
    q_lo: float = 0.2,
    q_hi: float = 0.8,
) -> torch.Tensor:
    """Mask answer letters only: each with q ~ U(q_lo, q_hi) per sequence, at least one per sequence.

    answer_pos: `[b, l]` bool, True at answer-letter positions. Returns `masked [b, l]` bool.
    Rows without any answer position stay unmasked.
    """
    b, length = answer_pos.shape
    q = q_lo + (q_hi - q_lo) * torch.rand(b, generator=generator, device=answer_pos.device)  # [b]
    u = torch.rand((b, length), generator=generator, device=answer_pos.device)  # [b, l]
    masked = (u < q[:, None]) & answer_pos  # [b, l]
    # Force one: among answer positions, the one with the smallest u (a uniform choice).
    score = torch.where(answer_pos, u, torch.full_like(u, 2.0))  # [b, l]
    first = F.one_hot(score.argmin(dim=1), length).bool() & answer_pos  # [b, l]
    return masked | first


def token_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-token cross-entropy in fp32: logits `[b, l, V]`, targets `[b, l]` -> `[b, l]`."""
    ce = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none")  # [b*l]
    return ce.view_as(targets)  # [b, l]


def mdlm_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    masked: torch.Tensor,
    p: torch.Tensor,
    *,
    weighting: Weighting = "inv_p",
    n_tokens: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """Masked-diffusion loss on ALIGNED logits (position i predicts token i).

    weighting "inv_p": `sum_{masked} CE / p / n_tokens` (LLaDA; `n_tokens` defaults to b * l).
    weighting "none": mean CE over masked positions. Unmasked positions never contribute.
    logits `[b, l, V]`, targets `[b, l]`, masked `[b, l]` bool, p `[b]`.
    """
    ce = token_ce(logits, targets)  # [b, l]
    m = masked.float()  # [b, l]
    if weighting == "inv_p":
        denom = targets.numel() if n_tokens is None else n_tokens
        return (ce * m / p[:, None]).sum() / denom
    if weighting == "none":
        return (ce * m).sum() / m.sum().clamp_min(1.0)
    raise ValueError(f"unknown weighting {weighting!r}")


def masked_mean_ce(logits: torch.Tensor, targets: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Plain mean CE over `masked` positions (answer-focused batches). Shapes as `mdlm_loss`."""
    ce = token_ce(logits, targets)  # [b, l]
    m = masked.float()  # [b, l]
    return (ce * m).sum() / m.sum().clamp_min(1.0)


def ar_loss(
    raw_logits: torch.Tensor,
    ids: torch.Tensor,
    real: torch.Tensor,
    *,
    answer_pos: torch.Tensor | None = None,
    answer_weight: float = 0.0,
) -> torch.Tensor:
    """Next-token CE on RAW causal logits (position i predicts token i+1) over real target tokens.

    raw_logits `[b, l, V]`, ids `[b, l]`, real `[b, l]` bool (False = padding). With `answer_pos`
    (`[b, l]` bool at answer letters) adds `answer_weight * mean CE(answer letters)`.
    """
    ce = token_ce(raw_logits[:, :-1], ids[:, 1:])  # [b, l-1]
    tgt = real[:, 1:].float()  # [b, l-1]
    loss = (ce * tgt).sum() / tgt.sum().clamp_min(1.0)
    if answer_pos is not None and answer_weight > 0:
        a = answer_pos[:, 1:].float()  # [b, l-1]
        loss = loss + answer_weight * (ce * a).sum() / a.sum().clamp_min(1.0)
    return loss
