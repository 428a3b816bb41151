"""Soft-masking [P2]: feed still-masked positions back as a blend of [MASK] and the top-k guesses.

"Soft-Masked Diffusion Language Models" (arXiv 2510.17206). After every decoding step, a
position that stays masked is not fed back as the bare mask embedding but as

    e = (1 - lambda) * E[mask] + lambda * sum_{i in topk(p)} pi_i * E[v_i],   pi_i = p_i / sum_topk p_j
    lambda(p) = omega_s * sigmoid(omega_a * (-H(p) - omega_b))

with H the entropy (nats, full vocabulary, temperature 1) of the step's prediction p at that
position, and the mask token's own logit excluded from p. The three scalars are trained:
omega_s = sigmoid(raw_s) in (0, 1), omega_a = softplus(raw_a) + 1e-6 > 0,
omega_b = -softplus(raw_b) - 1e-6 < 0; their initial values are omega_s ~ 0 (soft-masking off),
omega_a = 6.66, omega_b = -0.75. Decoding applies it in the first 80% of steps only.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from masktax.errors import MasktaxError

SOFT_MASK_FILE = "soft_mask.json"


def soft_mask_embeddings(
    logits: torch.Tensor,
    embedding_weight: torch.Tensor,
    mask_embedding: torch.Tensor,
    *,
    k: int,
    omega_s: float,
    omega_a: float,
    omega_b: float,
) -> torch.Tensor:
    """Soft-mask input embeddings `[n, d]` for `n` still-masked positions.

    `logits` `[n, V]` are the step's (aligned) logits at those positions, with the mask token's
    own logit already set to -inf by the caller. Computed in float32 and returned in the
    embedding's dtype: e = (1 - lambda) E[mask] + lambda * sum_topk pi_i E[v_i].
    """
    if logits.dim() != 2:
        raise MasktaxError(f"soft-masking expects logits of shape [n, V], got {tuple(logits.shape)}")
    logits = logits.float()  # [n, V]
    p = F.softmax(logits, dim=-1)  # [n, V]
    top_p, top_ids = p.topk(min(k, p.shape[-1]), dim=-1)  # [n, k]
    # With z = logits - max: H = -sum p log p = log sum exp z - sum p z = -log p_max - sum p z.
    # (logsumexp / log p would be exact too but are several times slower on CPU for peaked logits;
    # excluded tokens have z = -inf and p = 0, whose nan product is dropped.)
    z = logits - logits.amax(dim=-1, keepdim=True)  # [n, V]
    entropy = -torch.log(top_p[:, 0]) - (p * z).nan_to_num(nan=0.0).sum(dim=-1)  # [n] nats
    lam = omega_s * torch.sigmoid(omega_a * (-entropy - omega_b))  # [n]
    pi = top_p / top_p.sum(dim=-1, keepdim=True)  # [n, k]
    top_emb = embedding_weight[top_ids].float()  # [n, k, d]
    mix = (pi.unsqueeze(-1) * top_emb).sum(dim=1)  # [n, d]
    lam = lam.unsqueeze(-1)  # [n, 1]
    out = (1.0 - lam) * mask_embedding.float().unsqueeze(0) + lam * mix  # [n, d]
    return out.to(embedding_weight.dtype)


@dataclass(frozen=True)
class SoftMaskConfig:
    """Soft-masking settings for the samplers ([P2]); defaults are the paper's initial values."""

    k: int = 3  # top-k tokens blended into a masked position (paper: 3 for text, 1 for code)
    omega_s: float = 1e-6  # scale in [0, 1]; ~0 = off (sigmoid of the untrained raw value)
    omega_a: float = 6.66  # steepness > 0 of the entropy gate (10 / 1.5 in the reference code)
    omega_b: float = -0.75  # centre <= 0 of the gate on -H
    fraction: float = 0.8  # apply while under this fraction of the generated tokens is committed

    def __post_init__(self) -> None:
        if not isinstance(self.k, int) or self.k < 1:
            raise MasktaxError(f"soft-mask k must be a positive integer, got {self.k!r}")
        if not 0.0 <= self.omega_s <= 1.0:
            raise MasktaxError(f"soft-mask omega_s must be in [0, 1], got {self.omega_s}")
        if not self.omega_a > 0.0 or math.isinf(self.omega_a):
            raise MasktaxError(f"soft-mask omega_a must be a positive number, got {self.omega_a}")
        if not self.omega_b <= 0.0 or math.isinf(self.omega_b):
            raise MasktaxError(f"soft-mask omega_b must be a number <= 0, got {self.omega_b}")
        if not 0.0 <= self.fraction <= 1.0:
            raise MasktaxError(f"soft-mask fraction must be in [0, 1], got {self.fraction}")

    @classmethod
    def from_raw(cls, raw_s: float, raw_a: float, raw_b: float, *, k: int = 3, fraction: float = 0.8):
        """From the trained unconstrained parameters: omega_s = sigmoid(raw_s),
        omega_a = softplus(raw_a) + 1e-6, omega_b = -softplus(raw_b) - 1e-6."""
        s = 1.0 / (1.0 + math.exp(-raw_s))
        a = F.softplus(torch.tensor(float(raw_a), dtype=torch.float64)).item() + 1e-6
        b = -F.softplus(torch.tensor(float(raw_b), dtype=torch.float64)).item() - 1e-6
        return cls(k=k, omega_s=s, omega_a=a, omega_b=b, fraction=fraction)

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, fraction: float | None = None) -> SoftMaskConfig:
        """Read `soft_mask.json` (omega_s, omega_a, omega_b, k) from a trained model's directory.

        `path` is the directory or the JSON file itself. Raw values (raw_s, raw_a, raw_b) are
        accepted too. `fraction` overrides the file's value (default 0.8).
        """
        p = Path(path)
        file = p / SOFT_MASK_FILE if p.is_dir() else p
        if not file.is_file():
            raise MasktaxError(f"no {SOFT_MASK_FILE} found at '{path}'; train with soft-masking first")
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
            raise MasktaxError(f"cannot read soft-mask weights from '{file}': {err}") from err
        if not isinstance(data, dict):
            raise MasktaxError(f"'{file}' must hold a JSON object with omega_s, omega_a, omega_b, k")
        try:
            frac = fraction if fraction is not None else float(data.get("fraction", 0.8))
            k = int(data.get("k", 3))
            if "omega_s" in data:
                return cls(k=k, omega_s=float(data["omega_s"]), omega_a=float(data["omega_a"]),
                           omega_b=float(data["omega_b"]), fraction=frac)
            return cls.from_raw(float(data["raw_s"]), float(data["raw_a"]), float(data["raw_b"]),
                                k=k, fraction=frac)
        except KeyError as err:
            raise MasktaxError(f"'{file}' lacks the field {err}; expected omega_s, omega_a, omega_b, k") from err
        except (TypeError, ValueError) as err:
            raise MasktaxError(f"'{file}' holds a value that is not a number ({err})") from err

    def save(self, directory: str | Path) -> Path:
        """Write `soft_mask.json` into `directory` (what `from_checkpoint` reads back)."""
        out = Path(directory) / SOFT_MASK_FILE
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return out

    def active(self, committed_fraction: torch.Tensor) -> torch.Tensor:
        """Rows `[b]` whose next input is soft-masked: less than `fraction` of the generation is committed.

        With an even schedule of n steps this is the paper's "first 80% of steps" (step i's input
        is soft iff 1 <= i < fraction * n); measuring progress also covers adaptive samplers.
        """
        return committed_fraction < self.fraction  # [b]
