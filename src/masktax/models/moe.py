"""Mixture-of-experts MLPs of LLaDA-MoE, LLaDA2 and SDAR-MoE: the routers as published, and one batched expert pass.

A MoE layer replaces the SwiGLU MLP by E experts (each a SwiGLU MLP, parameters `experts.N.{gate,up,
down}_proj`); a router picks k of them per token and the output is their weighted sum,
`y = sum_j w_j * expert_{i_j}(x)`, plus shared experts that every token uses. The routers:

- `softmax_topk` (LLaDA-MoE, dllm `modeling_lladamoe.py`): `p = softmax(x W^T)` in fp32, plus the
  expert bias when the config enables it (added to the probabilities, and kept in the weights),
  then the k largest. The published block never renormalises them (`norm_topk_prob` is set to False
  whatever the config says) and ignores `moe_router_score_function` and `routed_scaling_factor`.
  SDAR-MoE (Qwen3-MoE's router, `modeling_sdar_moe.py`) is the same without a bias, and with
  `norm_topk_prob` the k chosen probabilities are renormalised to sum to 1 (in fp32, `norm=True`).
- `grouped_sigmoid_topk` (LLaDA2, dllm `modeling_llada2_moe.py`, DeepSeek-V3 style): scores
  `s = sigmoid(x W^T)` in fp32; for choosing only, `s + expert_bias`; the experts are split into
  `n_group` groups, each group scored by the sum of its two best, the best `topk_group` groups kept,
  and the k best experts among them chosen; the weights are the chosen `s` (without the bias),
  renormalised to sum to 1 when k > 1, times `routed_scaling_factor`.

`run_experts` computes every chosen (token, expert) pair without a Python loop over tokens: the
pairs are sorted by expert, each expert runs once on its contiguous slice (a loop over experts, as
the published inference path does), and the outputs go back to their pairs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SwiGLU(nn.Module):
    """`down(silu(gate(x)) * up(x))`, the MLP of every expert, shared expert and dense layer."""

    def __init__(self, hidden: int, intermediate: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def expert_bias(n_experts: int) -> nn.Parameter:
    """The router's per-expert bias (a buffer in the published code, stored in the checkpoint); a
    frozen parameter here so the checkpoint loader assigns it like any weight."""
    return nn.Parameter(torch.zeros(n_experts), requires_grad=False)


def softmax_topk(
    logits: torch.Tensor, k: int, bias: torch.Tensor | None, *, norm: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """LLaDA-MoE's router (SDAR-MoE's with `norm`): weights `[T, k]` (fp32) and expert ids `[T, k]` from
    router logits `[T, E]`; `norm` renormalises the k weights to sum to 1."""
    probs = F.softmax(logits.float(), dim=-1)  # [T, E]
    if bias is not None:
        probs = probs + bias.float()  # [T, E] the bias shifts the weights too, as published
    weights, ids = torch.topk(probs, k, dim=-1)  # 2 x [T, k]
    if norm:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights, ids


def grouped_sigmoid_topk(
    logits: torch.Tensor, k: int, bias: torch.Tensor, *, n_group: int, topk_group: int, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """LLaDA2's router: weights `[T, k]` (fp32) and expert ids `[T, k]` from router logits `[T, E]`."""
    n, e = logits.shape
    scores = torch.sigmoid(logits.float())  # [T, E]
    choice = scores + bias.float()  # [T, E] the bias only steers the choice
    group_score = choice.view(n, n_group, e // n_group).topk(2, dim=-1).values.sum(-1)  # [T, G]
    groups = torch.topk(group_score, topk_group, dim=-1, sorted=False).indices  # [T, g]
    keep = torch.zeros_like(group_score, dtype=torch.bool).scatter_(1, groups, True)  # [T, G]
    keep = keep[:, :, None].expand(n, n_group, e // n_group).reshape(n, e)  # [T, E]
    ids = torch.topk(choice.masked_fill(~keep, float("-inf")), k, dim=-1).indices  # [T, k]
    weights = scores.gather(1, ids)  # [T, k]
    if k > 1:
        weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
    return weights * scale, ids


def run_experts(x: torch.Tensor, ids: torch.Tensor, weights: torch.Tensor, experts: nn.ModuleList) -> torch.Tensor:
    """`y_t = sum_j weights[t, j] * experts[ids[t, j]](x_t)` for `x [T, d]`; the sum runs in weights' dtype."""
    n, k = ids.shape
    if n == 0:
        return x.clone()
    flat = ids.reshape(-1)  # [T*k] expert of each (token, slot) pair
    order = flat.argsort(stable=True)  # [T*k] pairs grouped by expert
    counts = torch.bincount(flat, minlength=len(experts)).tolist()  # one host sync per layer
    pieces = x[order // k].split(counts)  # per expert [n_e, d]
    out = torch.cat([experts[e](p) for e, p in enumerate(pieces) if p.shape[0]])  # [T*k, d] sorted by expert
    y = torch.empty_like(out).index_copy_(0, order, out)  # [T*k, d] back in (token, slot) order
    return (y.view(n, k, -1).to(weights.dtype) * weights[..., None]).sum(1).to(x.dtype)  # [T, d]
