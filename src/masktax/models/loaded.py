"""One interface over every model family masktax probes, decodes and trains.

A loaded model hides how its family predicts: after `logits`, position i of the returned tensor
always predicts token i of the input. LLaDA-style MDLMs predict in place; Dream-style MDLMs and
causal AR models predict token i from the hidden state at i-1, so their raw logits are shifted
right by one here (position 0, which nothing predicts, repeats the raw position 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

Kind = Literal["mdlm", "ar", "uniform"]


def shift_logits(raw: torch.Tensor) -> torch.Tensor:
    """Align next-token logits so position i predicts token i: `cat([raw[:, :1], raw[:, :-1]])`."""
    return torch.cat([raw[:, :1], raw[:, :-1]], dim=1)  # [b, l, V]


def region_rows(b: int, length: int, start: int, shift: bool, device: torch.device) -> torch.Tensor:
    """The raw rows `[b, length - start]` (a 2-D `logits_to_keep`) whose logits are the aligned positions
    `start`..length-1: the same positions in place, one earlier when shifted (position 0 repeats raw 0)."""
    rows = (torch.arange(start, length, device=device) - int(shift)).clamp_min(0)  # [length - start]
    return rows.expand(b, -1)  # [b, length - start]


def forward_kept(model, keep: torch.Tensor, **inputs) -> torch.Tensor | None:
    """`model(**inputs, logits_to_keep=keep)`'s logits `[b, k, V]`, or None when its forward has no
    `logits_to_keep` or ignores or misreads the 2-D form (see `kept_logits`)."""
    try:
        out = model(logits_to_keep=keep, **inputs)
    except TypeError:  # a forward without logits_to_keep
        return None
    return kept_logits(out, keep)


def kept_logits(out, keep: torch.Tensor) -> torch.Tensor | None:
    """The logits `[b, k, V]` of a forward given `logits_to_keep=keep` `[b, k]`, or None when the model
    ignored the 2-D form (full logits `[b, l, V]`) or misread it (indexing with it: `[b, b, k, V]`)."""
    z = out.logits if hasattr(out, "logits") else out[0]
    return z if z.dim() == 3 and tuple(z.shape[:2]) == tuple(keep.shape) else None


@dataclass
class LoadedModel:
    """A loaded model plus what masktax needs to know about it.

    kind: "mdlm" (absorbing [MASK] noise, bidirectional), "ar" (causal baseline) or "uniform"
    (uniform-noise diffusion such as DiffusionGemma: noise is a random token, not a mask).
    shift: raw logits at position i predict token i+1 (Dream, AR); the lm undoes it.
    honours_attention_mask: False for models whose forward ignores padding (LLaDA's remote
    code); batching then groups equal lengths instead of padding.
    block_size: B for a block-causal model (LLaDA2, SDAR/TraDo, Fast-dLLM v2): positions fall in
    blocks of B counted from each row's first real token, and queries in block k see only the keys
    of blocks <= k (their own block bidirectionally, earlier blocks whole, later blocks not at all);
    what `load` reads from the native model's `block_size`. None: not block-causal (bidirectional
    MDLMs, causal AR models, uniform-noise models).
    """

    name: str
    model: nn.Module
    tokenizer: object | None
    kind: Kind
    mask_id: int | None
    shift: bool
    max_length: int
    honours_attention_mask: bool = True
    pad_id: int | None = None
    eos_id: int | None = None
    extra: dict = field(default_factory=dict)
    block_size: int | None = None

    def __post_init__(self) -> None:
        if self.block_size is not None and self.block_size < 1:
            raise ValueError(f"block_size must be positive or None (not block-causal), got {self.block_size!r}")

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def is_causal(self) -> bool:
        return self.kind == "ar"

    def _position_kwargs(self, attention_mask: torch.Tensor | None) -> dict:
        """HF models number positions 0..l-1 whatever the padding; count real tokens instead so a
        left-padded row scores like the unpadded one (what HF generate does). RoBERTa-style models
        count from `padding_idx + 1` (extra["position_offset"], set by `load`)."""
        if attention_mask is None or not self.extra.get("position_ids"):
            return {}
        offset = self.extra.get("position_offset", 0)
        return {"position_ids": (attention_mask.long().cumsum(-1) - 1).clamp_min(0) + offset}  # [b, l]

    def _forward(self, input_ids=None, inputs_embeds=None, attention_mask=None) -> torch.Tensor:
        out = self.model(input_ids=input_ids, inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                         **self._position_kwargs(attention_mask))
        raw = out.logits if hasattr(out, "logits") else out[0]  # [b, l, V]
        return shift_logits(raw) if self.shift else raw

    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Aligned logits `[b, l, V]`: position i predicts token i."""
        return self._forward(input_ids=ids, attention_mask=attention_mask)

    def logits_at(
        self,
        ids: torch.Tensor | None,
        positions: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Aligned logits at one position per row, `[b, V]` (`positions` `[b]`), equal to
        `logits(ids, attention_mask)[arange(b), positions]`.

        The vocabulary head runs only at those rows (transformers' `logits_to_keep` in its 2-D form,
        which the native families accept too): for the probes this saves the `[b, l, V]` tensor,
        0.65 GB per 1300-token row at LLaDA's vocabulary in fp32. Models without it fall back.
        With `embeds` `[b, l, d]` (and ids None) the pass starts from input embeddings (attribution).
        A uniform-noise model (kind "uniform") reads each row's canvas as running from `positions` to
        its last real token (the probes' layout: the scored position opens the canvas).
        """
        ref = ids if embeds is None else embeds
        rows = torch.arange(ref.shape[0], device=ref.device)  # [b]
        raw = (positions - 1).clamp_min(0) if self.shift else positions  # [b] raw positions
        canvas = {"canvas_start": positions} if self.kind == "uniform" else {}
        if self.extra.get("logits_to_keep", True) or canvas:
            z = self._kept(ids, embeds, attention_mask, raw[:, None], **canvas)  # [b, 1, V] or None
            if z is not None:
                return z[:, 0]  # [b, V]
        full = self.logits(ids, attention_mask) if embeds is None else self.logits_from_embeds(embeds, attention_mask)
        return full[rows, positions]  # [b, V]

    def _kept(self, ids: torch.Tensor | None, embeds: torch.Tensor | None, attention_mask: torch.Tensor | None,
              keep: torch.Tensor, **kwargs) -> torch.Tensor | None:
        """The logits `[b, k, V]` at the raw rows `keep` `[b, k]` (the 2-D `logits_to_keep`), or None
        when the model's forward lacks it, ignores it or misreads it (then remembered: never asked again)."""
        z = forward_kept(self.model, keep, input_ids=ids, inputs_embeds=embeds, attention_mask=attention_mask,
                         **self._position_kwargs(attention_mask), **kwargs)
        if z is None:
            self.extra["logits_to_keep"] = False  # it ignored the 2-D form: do not trust it again
        return z

    def logits_from(
        self,
        ids: torch.Tensor | None,
        start: int,
        attention_mask: torch.Tensor | None = None,
        *,
        embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Aligned logits of positions `start`..l-1, `[b, l - start, V]`, equal to
        `logits(ids, attention_mask)[:, start:]` (or `logits_from_embeds(embeds, ...)[:, start:]`).

        The vocabulary head runs only at those rows (the 2-D `logits_to_keep` of `logits_at`; a shifted
        model's raw rows start - 1 .. l - 2): the samplers read only the generated region, so a long
        prompt costs no `[b, l, V]` tensor. Models without it (or uniform-noise ones) fall back to the
        full logits, sliced. Equal bit for bit unless the rows are very few (on a CPU, a matmul of a
        handful of rows can take another kernel and round differently in the last bits, ~1e-7 relative).
        """
        ref = ids if embeds is None else embeds
        keep = region_rows(ref.shape[0], ref.shape[1], start, self.shift, ref.device)  # [b, l - start]
        if self.extra.get("logits_to_keep", True) and self.kind != "uniform":
            z = self._kept(ids, embeds, attention_mask, keep)  # [b, l - start, V] or None
            if z is not None:
                return z
        full = self.logits(ids, attention_mask) if embeds is None else self.logits_from_embeds(embeds, attention_mask)
        return full[:, start:]  # [b, l - start, V]

    def embedding_weight(self) -> torch.Tensor:
        """The input embedding matrix `[V, d]`."""
        return self.model.get_input_embeddings().weight

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings `[b, l, d]` exactly as the model's forward would compute them."""
        return self.model.get_input_embeddings()(ids)

    def logits_from_embeds(
        self, embeds: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Aligned logits `[b, l, V]` from input embeddings (soft-masking, attribution)."""
        return self._forward(inputs_embeds=embeds, attention_mask=attention_mask)

    def require_mask(self, what: str) -> int:
        """The mask id, or a clear error saying `what` needs one."""
        from masktax.errors import MasktaxError

        if self.mask_id is None:
            raise MasktaxError(
                f"{what} needs a mask token, but model '{self.name}' has none; "
                "pass --mask-token-id if it is an MDLM whose tokenizer does not declare one"
            )
        return self.mask_id
