"""The mask-agnostic loss (MA-loss) of [P1] "Masks Can Be Distracting" (arXiv 2511.21338).

A prompt q and an answer a; the answer is noised ONCE (each token masked with probability p),
giving ã, and two views are built that differ only in the number of trailing masks:

    x1 = q ⊕ ã ⊕ [mask]·l1        x2 = q ⊕ ã ⊕ [mask]·l2

With A the answer positions and n_m the number of masked answer tokens of the example:

    L_CE = -1/(2·p·n_m) · Σ_{i=1,2} Σ_{j∈A} 1{x_i^j = mask} · log p_θ(a_j | x_i)
    L_TV =  p/n_m       · Σ_{j∈A} 1{x_1^j = mask} · ||p_θ(·|x1)_j − p_θ(·|x2)_j||_1
    L_MA = α·L_CE + β·L_TV

TV is the L1 distance between the two softmax distributions, without the 1/2 factor (as the
paper implements it). Both terms are computed per example and then averaged over the batch
(every example counts once in the mean). An example with n_m = 0 (no answer token was masked:
possible under i.i.d. Bernoulli noise) has nothing to predict; it contributes 0 to both terms
and still counts in the batch mean, so the loss of a global batch does not depend on how it is
split across devices. The gradient of L_TV flows through both views (no stop-gradient; the
paper states none).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mask_agnostic_loss(
    logits_1: torch.Tensor,
    logits_2: torch.Tensor,
    targets: torch.Tensor,
    masked: torch.Tensor,
    p: torch.Tensor,
    *,
    alpha: float = 0.1,
    beta: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`(total, ce, tv)` of the MA-loss (module docstring), each a scalar averaged over the batch.

    logits_1, logits_2: `[b, l, V]` ALIGNED logits of the two views (position i predicts token i);
    targets: `[b, l]` clean tokens (only answer positions that are masked are read);
    masked: `[b, l]` bool, answer positions holding a mask (identical in both views);
    p: `[b]` masking probability of each example. `total = alpha * ce + beta * tv`; with
    `beta == 0` the TV term is still returned (for logging) but not part of `total`'s graph.
    """
    if logits_1.shape != logits_2.shape:
        raise ValueError(f"the two views' logits differ in shape: {tuple(logits_1.shape)} vs {tuple(logits_2.shape)}")
    if targets.shape != masked.shape or targets.shape != logits_1.shape[:2]:
        raise ValueError("targets and masked must be [b, l], matching the logits")
    b = targets.shape[0]
    rows, cols = masked.nonzero(as_tuple=True)  # [N], [N]: every masked answer position
    tgt = targets[rows, cols]  # [N]
    logp_1 = F.log_softmax(logits_1[rows, cols].float(), dim=-1)  # [N, V]
    logp_2 = F.log_softmax(logits_2[rows, cols].float(), dim=-1)  # [N, V]
    nll = -(logp_1.gather(1, tgt[:, None]).squeeze(1) + logp_2.gather(1, tgt[:, None]).squeeze(1))  # [N]
    l1 = (logp_1.exp() - logp_2.exp()).abs().sum(-1)  # [N] ||softmax_1 - softmax_2||_1

    n_m = masked.sum(1).to(nll.dtype)  # [b]
    nll_ex = torch.zeros(b, dtype=nll.dtype, device=nll.device).index_add(0, rows, nll)  # [b]
    l1_ex = torch.zeros(b, dtype=l1.dtype, device=l1.device).index_add(0, rows, l1)  # [b]
    p = p.to(nll.dtype)  # [b]
    has = n_m > 0  # [b]
    safe_n = n_m.clamp_min(1.0)  # [b]; examples with n_m = 0 have zero sums and contribute 0
    ce_ex = torch.where(has, nll_ex / (2.0 * p * safe_n), torch.zeros_like(nll_ex))  # [b]
    tv_ex = torch.where(has, p * l1_ex / safe_n, torch.zeros_like(l1_ex))  # [b]
    ce, tv = ce_ex.mean(), tv_ex.mean()
    total = alpha * ce + (beta * tv if beta != 0 else 0.0 * ce)
    return total, ce, tv
