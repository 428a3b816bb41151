"""Samplers for masked diffusion LMs, all with optional soft-masking [P2].

`SAMPLERS` maps a name to its function: "semi_ar" (LLaDA's semi-autoregressive blocks),
"dream" (Dream's timestep schedule), "threshold" (Fast-dLLM confidence threshold) and "block" (LLaDA2/SDAR
block diffusion, block-causal models only, `block_diffusion.generate_block`). Each
takes an `LoadedModel` (or a bare module plus `shift=`), prompt ids `[b, lp]` (left-padded, with
`attention_mask`, when lengths differ) and returns `[b, lp + gen_length]`, plus a
`DecodeHistory` with `return_history=True`. Each takes `cache` ("none", "prefix", "dual": Fast-dLLM's
approximate block caches, see `decode_state`). `generate_ar` decodes a causal (AR) baseline left
to right, with an exact KV cache under `cache="prefix"`.
"""

from __future__ import annotations

from collections.abc import Callable

from masktax.errors import MasktaxError
from masktax.samplers.ar import generate_ar
from masktax.samplers.block_diffusion import generate_block
from masktax.samplers.common import CACHES, decode, left_pad, strip_after_eos
from masktax.samplers.decode_state import DecodeHistory, StepEvent, StepRecord
from masktax.samplers.dream import DREAM_ALGS, generate_dream
from masktax.samplers.semi_ar import REMASKING, generate_semi_ar
from masktax.samplers.soft_mask import SoftMaskConfig, soft_mask_embeddings
from masktax.samplers.threshold import generate_threshold

SAMPLERS: dict[str, Callable] = {
    "semi_ar": generate_semi_ar,
    "dream": generate_dream,
    "threshold": generate_threshold,
    "block": generate_block,  # block-causal models (LLaDA2, SDAR/TraDo, Fast-dLLM v2); needs a LoadedModel
}
BLOCK_SAMPLER = "block"


def get_sampler(name: str) -> Callable:
    """The sampler function called `name`, or a MasktaxError listing the valid names."""
    try:
        return SAMPLERS[name]
    except KeyError:
        raise MasktaxError(f"unknown sampler '{name}'; choose one of {', '.join(SAMPLERS)}") from None


__all__ = [
    "CACHES",
    "DREAM_ALGS",
    "REMASKING",
    "BLOCK_SAMPLER",
    "SAMPLERS",
    "DecodeHistory",
    "SoftMaskConfig",
    "StepEvent",
    "StepRecord",
    "decode",
    "generate_ar",
    "generate_block",
    "generate_dream",
    "generate_semi_ar",
    "generate_threshold",
    "get_sampler",
    "left_pad",
    "soft_mask_embeddings",
    "strip_after_eos",
]
