"""Dream's diffusion sampler (`DreamGenerationMixin._sample` of Dream-org/Dream), batched.

Timesteps t_0..t_steps = linspace(1, eps, steps + 1). At step i (t = t_i, s = t_{i+1}) every
masked position gets a token and a confidence from the (temperature / top-p / top-k filtered)
distribution p:
  - "maskgit_plus": confidence = p(x0) (max probability when greedy);
  - "topk_margin":  confidence = p_top1 - p_top2;
  - "entropy":      confidence = sum_v p_v log(p_v + 1e-10), the negative entropy;
then int(n_masked * (1 - s / t)) positions are committed (all remaining ones at the last step):
the highest-confidence ones, or, with `alg_temp > 0`, positions sampled without replacement from
softmax(confidence / alg_temp). "origin" instead commits each masked position independently
with probability 1 - s / t (1 at the last step) with a token sampled from p.

The logit shift (Dream predicts token i from hidden state i-1) is the lm's business: pass
a LoadedModel, or a bare module with `shift=True`. Decoding stops early once nothing is masked
(the output is the same; the reference keeps calling the model).

`cache` "prefix" (or "dual", the same here): the generated region is one block, so the prompt's
keys are cached from the first step's full forward and every later step runs the generated region
only (Fast-dLLM's prefix cache with a single refresh; approximate for a bidirectional model).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from masktax.errors import MasktaxError
from masktax.models.loaded import LoadedModel
from masktax.samplers.common import NEG_INF, ModelRunner, check_positive, check_prompt, select_top
from masktax.samplers.decode_state import DecodeHistory, DecodeState, OnStep
from masktax.samplers.soft_mask import SoftMaskConfig

DREAM_ALGS = ("maskgit_plus", "topk_margin", "entropy", "origin")


def filter_logits(logits: torch.Tensor, temperature: float, top_p: float | None, top_k: int | None) -> torch.Tensor:
    """Dream's temperature, nucleus (top-p) and top-k filtering of logits `[n, V]` (float32)."""
    logits = logits.float()  # [n, V]
    if temperature > 0.0:
        logits = logits / temperature
    low = torch.finfo(logits.dtype).min
    if top_p is not None and top_p < 1.0:
        sorted_logits, sorted_ids = logits.sort(dim=-1, descending=True)  # [n, V]
        cum = F.softmax(sorted_logits, dim=-1).cumsum(dim=-1)  # [n, V]
        drop = cum > top_p
        drop[..., 1:] = drop[..., :-1].clone()  # keep the first token over the threshold
        drop[..., 0] = False
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(-1, sorted_ids, drop), low)
    if top_k is not None:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]  # [n, 1]
        logits = logits.masked_fill(logits < kth, low)
    return logits


def sample_tokens(
    logits: torch.Tensor,
    *,
    alg: str,
    temperature: float,
    top_p: float | None,
    top_k: int | None,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(confidence `[n]`, tokens `[n]`) for masked positions' logits `[n, V]`, as Dream scores them."""
    probs = F.softmax(filter_logits(logits, temperature, top_p, top_k), dim=-1)  # [n, V]
    if temperature > 0.0:
        x0 = torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # [n]
        confidence = probs.gather(-1, x0.unsqueeze(-1)).squeeze(-1)  # [n]
    else:
        confidence, x0 = probs.max(dim=-1)  # [n]
    if alg == "topk_margin":
        top2 = probs.topk(2, dim=-1).values  # [n, 2]
        confidence = top2[:, 0] - top2[:, 1]
    elif alg == "entropy":
        confidence = (probs * torch.log(probs + 1e-10)).sum(dim=-1)  # [n]
    return confidence, x0


@torch.no_grad()
def generate_dream(
    model: LoadedModel | nn.Module,
    prompt_ids: torch.Tensor,
    *,
    steps: int,
    gen_length: int,
    mask_id: int | None = None,
    eps: float = 1e-3,
    alg: str = "maskgit_plus",
    temperature: float = 0.0,
    top_p: float | None = None,
    top_k: int | None = None,
    alg_temp: float | None = None,
    attention_mask: torch.Tensor | None = None,
    soft_mask: SoftMaskConfig | None = None,
    generator: torch.Generator | None = None,
    return_history: bool = False,
    shift: bool | None = None,
    on_step: OnStep | None = None,
    cache: str = "none",
) -> torch.Tensor | tuple[torch.Tensor, DecodeHistory]:
    """Decode `gen_length` tokens after `prompt_ids` `[b, lp]` with Dream's schedule; `[b, lp + gen_length]`."""
    runner = ModelRunner(model, shift=shift)
    check_prompt(prompt_ids, attention_mask, runner)
    check_positive(steps=steps, gen_length=gen_length)
    if alg not in DREAM_ALGS:
        raise MasktaxError(f"unknown Dream alg '{alg}'; choose one of {', '.join(DREAM_ALGS)}")
    if not 0.0 < eps < 1.0:
        raise MasktaxError(f"eps must be in (0, 1), got {eps}")
    if temperature < 0.0 or (top_p is not None and not 0.0 < top_p <= 1.0) or (top_k is not None and top_k < 1):
        raise MasktaxError("temperature must be >= 0, top_p in (0, 1] and top_k >= 1")
    state = DecodeState(
        runner, prompt_ids, gen_length=gen_length, mask_id=runner.resolve_mask_id(mask_id),
        attention_mask=attention_mask, soft_mask=soft_mask, record=return_history, on_step=on_step, cache=cache,
    )
    device = state.x.device
    timesteps = torch.linspace(1, eps, steps + 1, device=device)  # [steps + 1] float32, as Dream
    block = (state.prompt_length, state.x.shape[1])
    state.begin_block(*block)
    for i in range(steps):
        masked = state.masked()  # [b, l]
        if not bool(masked.any()):
            break
        logits = state.logits()  # [b, g, V] the generated region, from column lp
        mask_logits = logits[masked[:, state.prompt_length:]]  # [n, V] (the prompt holds no masks)
        t, s = timesteps[i], timesteps[i + 1]
        last = i == steps - 1
        tokens = state.x.clone()  # [b, l]
        confidence = torch.zeros(masked.shape, dtype=torch.float32, device=device)  # [b, l]
        transfer = torch.zeros_like(masked)  # [b, l]
        if alg == "origin":
            p_transfer = 1.0 if last else float(1 - s / t)
            move = torch.rand(mask_logits.shape[0], device=device, generator=generator) < p_transfer  # [n]
            conf_m = torch.zeros(mask_logits.shape[0], device=device)  # [n]
            x0_m = torch.full((mask_logits.shape[0],), state.mask_id, dtype=torch.long, device=device)  # [n]
            if bool(move.any()):
                conf_m[move], x0_m[move] = sample_tokens(
                    mask_logits[move], alg="maskgit_plus", temperature=temperature, top_p=top_p,
                    top_k=top_k, generator=generator,
                )
            transfer[masked] = move
        else:
            conf_m, x0_m = sample_tokens(
                mask_logits, alg=alg, temperature=temperature, top_p=top_p, top_k=top_k, generator=generator
            )  # [n], [n]
            counts = masked.sum(dim=-1)  # [b]
            k = counts if last else (counts.float() * (1 - s / t)).long()  # [b] int() truncation
            full_conf = torch.full(masked.shape, NEG_INF, dtype=torch.float32, device=device)  # [b, l]
            full_conf[masked] = conf_m.float()
            if alg_temp is None or alg_temp == 0:
                transfer = select_top(full_conf, masked, k)
            else:
                transfer = _sample_positions(full_conf / alg_temp, masked, k, generator)
        tokens[masked] = x0_m
        confidence[masked] = conf_m.float()
        state.commit(transfer, tokens, confidence, logits, block)
    return state.result(return_history)


def _sample_positions(
    scores: torch.Tensor, candidates: torch.Tensor, k: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """Per row, `k[r]` candidate positions drawn without replacement from softmax(scores) `[b, l]`."""
    out = torch.zeros_like(candidates)  # [b, l]
    probs = F.softmax(scores.masked_fill(~candidates, NEG_INF), dim=-1)  # [b, l]
    # A candidate whose probability underflowed must stay drawable, or multinomial runs short.
    probs = torch.where(candidates, probs.clamp_min(1e-30), torch.zeros_like(probs))
    for row in range(candidates.shape[0]):
        n = int(k[row])
        if n > 0:
            idx = torch.multinomial(probs[row], n, replacement=False, generator=generator)  # [n]
            out[row, idx] = True
    return out
