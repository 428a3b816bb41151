"""Soft-masking training [P2]: the trainable omega head and the two-pass step.

"Soft-Masked Diffusion Language Models" (arXiv 2510.17206). A still-masked position is fed as

    e = (1 - lambda) * E[mask] + lambda * sum_{i in topk(p)} pi_i * E[v_i],   pi_i = p_i / sum_topk p_j
    lambda(p) = omega_s * sigmoid(omega_a * (-H(p) - omega_b))

(H in nats over the full vocabulary, mask logit excluded) with three trained scalars

    omega_s = sigmoid(raw_s) in (0, 1),  omega_a = softplus(raw_a) + 1e-6,  omega_b = -softplus(raw_b) - 1e-6.

Initial values (the reference code's `init_scale` 0, centre -0.75, steepness 10 / 1.5):
raw_s = logit(1e-6) = -13.8155 (omega_s = 1e-6: soft-masking starts off), raw_a =
softplus^-1(6.66 - 1e-6) = 6.6587 (omega_a = 6.66), raw_b = softplus^-1(0.75 - 1e-6) = 0.1106
(omega_b = -0.75). At omega_s = 1e-6 every omega gradient is scaled by ~1e-6, so the omega
parameter group uses a tiny Adam epsilon (`param_groups(omega_eps=...)`), keeping its updates
scale-free; with the default eps 1e-8 the omegas would hardly move at the start.

Training step (two passes): x_t is drawn as the MDLM loss draws it; with probability p_sm
(default 0.8) pass 1 runs WITHOUT gradient on x_t, the mask token's own logit is set to -inf,
every still-masked position gets the blended embedding above (unmasked positions keep their
token embedding), and pass 2 runs on those embeddings WITH gradient and carries the ordinary
MDLM loss; otherwise one ordinary pass. The coin is tossed once per BATCH (a seeded
`random.Random` per step, so it never touches the torch generator that draws p and the
masks): p_sm = 0 is then exactly ordinary MDLM training, and a plain batch costs one pass.
Gradient reaches the omegas, the backbone through pass 2, and the embedding rows used in the
blend (E[mask] and the top-k tokens), as in a model that embeds its soft input itself; pass 1's
logits are constants (no gradient through the top-k choice, pi or the entropy).

Two losses use the two-pass forward unchanged: the embedded corpus's MDLM loss
(`pretrain.train.step_loss`, via `TwoPassModel`) and `instruction_loss` (LLaDA's SFT form of the MDLM
loss for prompt/response data: only response tokens are noised, CE / p summed over the masked
ones and divided by the number of response tokens), fed by `instruct_data` (the OpenOrca-layout
reader and tokenizer of mask-agnostic fine-tuning) and its `instruction_batch`.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from masktax.errors import MasktaxError
from masktax.models.loaded import LoadedModel, shift_logits
from masktax.samplers.soft_mask import SOFT_MASK_FILE, SoftMaskConfig, soft_mask_embeddings
from masktax.training.loop import write_json
from masktax.training.mdlm_loss import forward_mask, mdlm_loss, sample_p
from masktax.training.pretrain.build import raw_logits

EPS = 1e-6  # the offsets of omega_a and omega_b ([P2])
INIT_OMEGA_S = 1e-6  # omega_s after the sigmoid of the reference init (init_scale 0)


def _inv_softplus(y: float) -> float:
    """x with softplus(x) = y (y > 0), in float64."""
    return y + math.log(-math.expm1(-y))


class SoftMaskParams(nn.Module):
    """The three trained scalars of the soft-masking gate, kept unconstrained (raw_s, raw_a, raw_b)."""

    def __init__(self, *, k: int = 3, omega_s: float = INIT_OMEGA_S, omega_a: float = 6.66,
                 omega_b: float = -0.75) -> None:
        super().__init__()
        if not isinstance(k, int) or k < 1:
            raise MasktaxError(f"soft-mask k must be a positive integer, got {k!r}")
        if not 0.0 < omega_s < 1.0 or not omega_a > EPS or not omega_b < -EPS:
            raise MasktaxError("soft-mask init needs 0 < omega_s < 1, omega_a > 1e-6 and omega_b < -1e-6")
        self.k = k
        self.raw_s = nn.Parameter(torch.tensor(math.log(omega_s / (1.0 - omega_s))))
        self.raw_a = nn.Parameter(torch.tensor(_inv_softplus(omega_a - EPS)))
        self.raw_b = nn.Parameter(torch.tensor(_inv_softplus(-omega_b - EPS)))

    def omegas(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(omega_s, omega_a, omega_b) as 0-d tensors that carry gradient to the raw values."""
        return torch.sigmoid(self.raw_s), F.softplus(self.raw_a) + EPS, -F.softplus(self.raw_b) - EPS

    def lam(self, logits: torch.Tensor) -> torch.Tensor:
        """lambda(p) = omega_s * sigmoid(omega_a * (-H(p) - omega_b)) for logits `[n, V]` -> `[n]`.

        Pass the logits with the mask logit already at -inf (H is over the remaining vocabulary).
        """
        logp = F.log_softmax(logits.float(), dim=-1)  # [n, V]
        entropy = -(logp.exp() * logp).nan_to_num(nan=0.0).sum(dim=-1)  # [n] nats; -inf logits give 0 * -inf
        s, a, b = self.omegas()
        return s * torch.sigmoid(a * (-entropy - b))  # [n]

    def blend(self, logits: torch.Tensor, embedding_weight: torch.Tensor, mask_embedding: torch.Tensor) -> torch.Tensor:
        """Soft-mask embeddings `[n, d]` (the samplers' `soft_mask_embeddings` with trainable omegas)."""
        s, a, b = self.omegas()
        return soft_mask_embeddings(logits, embedding_weight, mask_embedding, k=self.k, omega_s=s, omega_a=a, omega_b=b)

    def values(self) -> dict[str, float]:
        """Current omegas, raw values and k as plain numbers (logging, soft_mask.json)."""
        with torch.no_grad():
            s, a, b = (float(t.detach()) for t in self.omegas())
            raw = {n: float(getattr(self, n).detach()) for n in ("raw_s", "raw_a", "raw_b")}
        return {"omega_s": s, "omega_a": a, "omega_b": b, "k": self.k, **raw}

    def to_config(self, fraction: float = 0.8) -> SoftMaskConfig:
        """The samplers' frozen config with the current omegas."""
        v = self.values()
        return SoftMaskConfig(k=self.k, omega_s=v["omega_s"], omega_a=v["omega_a"], omega_b=v["omega_b"],
                              fraction=fraction)

    def save(self, directory: str | Path, *, fraction: float = 0.8) -> Path:
        """Write `soft_mask.json` (omega_s, omega_a, omega_b, k, raw values, fraction) into `directory`.

        `SoftMaskConfig.from_checkpoint(directory)` reads it back for every sampler.
        """
        out = Path(directory) / SOFT_MASK_FILE
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json(out, {**self.values(), "fraction": fraction})
        return out

    @classmethod
    def load(cls, directory: str | Path) -> SoftMaskParams:
        """Rebuild the module from a `soft_mask.json` written by `save` (exact raw values)."""
        file = Path(directory) / SOFT_MASK_FILE
        if not file.is_file():
            raise MasktaxError(f"no {SOFT_MASK_FILE} in '{directory}'")
        try:
            data = json.loads(file.read_text())
            mod = cls(k=int(data.get("k", 3)))
            raws = [float(data[name]) for name in ("raw_s", "raw_a", "raw_b")]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise MasktaxError(f"'{file}' is not a soft_mask.json with raw_s, raw_a, raw_b ({err})") from err
        with torch.no_grad():
            for name, value in zip(("raw_s", "raw_a", "raw_b"), raws, strict=True):
                getattr(mod, name).fill_(value)
        return mod


@dataclass(frozen=True)
class SoftPassStats:
    """What one soft-masked pass did: how many positions were blended and their mean lambda."""

    n_soft: int
    mean_lambda: float


def soft_mask_inputs(
    lm: LoadedModel,
    xt: torch.Tensor,
    attention_mask: torch.Tensor | None,
    params: SoftMaskParams,
    *,
    mask_id: int,
) -> tuple[torch.Tensor, SoftPassStats]:
    """Pass 1 (no gradient) and the soft-masked input embeddings `[b, l, d]` of pass 2.

    Still-masked positions are those holding `mask_id` (padding excluded); their aligned pass-1
    logits, with the mask logit at -inf, feed the blend. Every other position keeps `embed(xt)`.
    """
    with torch.no_grad():
        logits = lm.logits(xt, attention_mask=attention_mask)  # [b, l, V] aligned
    still = xt == mask_id  # [b, l]
    if attention_mask is not None:
        still &= attention_mask.bool()
    embeds = lm.embed(xt)  # [b, l, d]
    rows, cols = still.nonzero(as_tuple=True)  # [n], [n]
    if rows.numel() == 0:
        return embeds, SoftPassStats(0, 0.0)
    at = logits[rows, cols].float()  # [n, V]
    at[:, mask_id] = float("-inf")
    weight = lm.embedding_weight()  # [V, d]
    mask_emb = lm.embed(torch.tensor([mask_id], device=xt.device))[0]  # [d]
    soft = params.blend(at, weight, mask_emb)  # [n, d]
    embeds = embeds.index_put((rows, cols), soft.to(embeds.dtype))  # [b, l, d]
    with torch.no_grad():
        mean_lam = float(params.lam(at).mean())
    return embeds, SoftPassStats(int(rows.numel()), mean_lam)


def two_pass_logits(
    lm: LoadedModel,
    xt: torch.Tensor,
    attention_mask: torch.Tensor | None,
    params: SoftMaskParams,
    *,
    mask_id: int,
) -> tuple[torch.Tensor, SoftPassStats]:
    """Aligned pass-2 logits `[b, l, V]` on soft-masked inputs (see `soft_mask_inputs`)."""
    embeds, stats = soft_mask_inputs(lm, xt, attention_mask, params, mask_id=mask_id)  # [b, l, d]
    return lm.logits_from_embeds(embeds, attention_mask=attention_mask), stats


def soft_mask_coin(seed: int, step: int, p_sm: float) -> bool:
    """The per-batch coin of step `step`: soft-mask with probability `p_sm` (own seeded stream)."""
    return p_sm > 0.0 and random.Random(f"{seed}/soft-mask/{step}").random() < p_sm


class TwoPassModel(nn.Module):
    """A forward that a plain MDLM loss can call: RAW logits of pass 2 when `soft` is set, else one plain pass.

    Lets the MDLM training step of `training.pretrain` (`step_loss`) train with soft-masking
    unchanged: it draws x_t, calls `model(input_ids=x_t, attention_mask=...)`, shifts if needed
    and applies its loss. Set `soft` before each step (`soft_mask_coin`); `last` holds the stats.
    """

    def __init__(self, lm: LoadedModel, params: SoftMaskParams) -> None:
        super().__init__()
        self.backbone = lm.model
        self.soft_mask = params
        self.lm = lm
        self.soft = False
        self.last: SoftPassStats | None = None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        if not self.soft:  # exactly the plain model: p_sm = 0 is ordinary MDLM training
            self.last = None
            return self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        mask_id = self.lm.require_mask("soft-masking training")
        embeds, self.last = soft_mask_inputs(self.lm, input_ids, attention_mask, self.soft_mask, mask_id=mask_id)
        return self.backbone(inputs_embeds=embeds, attention_mask=attention_mask)


def param_groups(backbone: nn.Module, params: SoftMaskParams, *, lr: float, omega_lr: float,
                 weight_decay: float = 0.0, omega_eps: float = 1e-15) -> list[dict]:
    """Optimizer groups: trainable backbone (or adapter) weights at `lr`, the omegas at `omega_lr`.

    [P2]: backbone 3e-4 from scratch / 1e-5 for adapters; omega 1e-2 (code) or 1e-3 (language).
    Matrices get `weight_decay`; vectors, norms and the omegas none. The omega group's Adam
    epsilon is `omega_eps` (see the module docstring).
    """
    train = [(n, p) for n, p in backbone.named_parameters() if p.requires_grad]
    if not train:
        raise MasktaxError("the backbone has no trainable parameters")
    return [
        {"params": [p for _, p in train if p.ndim >= 2], "lr": lr, "weight_decay": weight_decay, "name": "backbone"},
        {"params": [p for _, p in train if p.ndim < 2], "lr": lr, "weight_decay": 0.0, "name": "backbone_vec"},
        {"params": list(params.parameters()), "lr": omega_lr, "weight_decay": 0.0, "eps": omega_eps, "name": "omega"},
    ]


def instruction_loss(
    model: nn.Module,
    ids: torch.Tensor,
    maskable: torch.Tensor,
    *,
    mask_id: int,
    shift: bool,
    p_min: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """LLaDA's SFT form of the MDLM loss: `sum_{masked response i} CE_i / p / n_response`.

    ids `[b, l]` (prompt, response, EOS padding that counts as response), maskable `[b, l]` bool
    (the response positions). p ~ U(p_min, 1) per row, drawn as `pretrain.train.step_loss` draws it.
    `model` is the plain backbone or a `TwoPassModel` (raw logits; shifted here when `shift`).
    """
    p = sample_p(ids.shape[0], p_min=p_min, generator=generator, device=ids.device)  # [b]
    xt, masked = forward_mask(ids, maskable, p, mask_id=mask_id, generator=generator)  # [b, l]
    logits = raw_logits(model, xt, None)  # [b, l, V]
    if shift:
        logits = shift_logits(logits)  # [b, l, V] aligned
    return mdlm_loss(logits, ids, masked, p, n_tokens=maskable.sum().clamp_min(1))
