"""Model cards: what masktax knows about each published checkpoint it probes (one dict, MODEL_CARDS).

Facts come from the papers and the checkpoints' own config/tokenizer files (docs: PAPERS.md):
LLaDA-8B mask 126336, EOS 126081, context 4096 (`max_sequence_length`), predicts in place;
Dream-7B mask 151666, EOS/pad 151643, context 2048 (its config inherits 131072 positions from
Qwen2.5, but Dream was trained at 2048), logits shifted; AR baselines Llama-3-8B (context 8192)
and Qwen2.5-7B (context 131072 in config, 32768 without YaRN); DiffusionGemma uniform noise.
The embedded models are trained by masktax itself and shipped under `embedded/weights/<name>/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from masktax.errors import MasktaxError

Family = Literal["llada", "dream", "ar", "masked_lm", "diffusion_gemma", "remote", "mmada", "lladamoe", "llada2_moe",
                 "sdar", "sdar_moe", "fast_dllm_v2"]
FAMILIES: tuple[str, ...] = ("llada", "dream", "ar", "masked_lm", "diffusion_gemma", "remote", "mmada", "lladamoe",
                             "llada2_moe", "sdar", "sdar_moe", "fast_dllm_v2")


@dataclass(frozen=True)
class ModelCard:
    """One known model.

    family: how to load it (native "llada" / "dream", HF "ar" / "masked_lm" / "diffusion_gemma").
    mask_id: its mask token id (None for AR and uniform-noise models).
    shift: raw logits at i predict token i+1 (Dream, AR); the lm aligns them.
    chat: an instruct model; prompts use its chat template.
    dtype: the dtype it was published in (used on CUDA; CPU runs fp32).
    context_length: the longest input it was trained on (probes refuse longer prompts); None: what the
    checkpoint's config.json declares (`max_position_embeddings`), where no paper or card states it.
    hf_id: where to fetch it (None: shipped with masktax). notes: one line for `masktax models`.
    block_size: attention blocks of a block-causal checkpoint whose config.json does not state them
    (SDAR's `-b16`/`-b32`/`-b64` variants: the size is only in the name); `load` sets it on the model.
    None: the family's default (or the config's own field).
    block_threshold, edit_threshold, sub_block_size: the block sampler's defaults where the published
    generate of a block-causal checkpoint has its own (docs/samplers.md): LLaDA2.1's token editing
    (editing threshold 0.9 beside the threshold 0.95 of its `generate`), Fast-dLLM v2's sub-blocks
    of 8 with threshold 0.9 (its model card's example). None: the sampler's default.
    """

    family: Family
    mask_id: int | None
    shift: bool
    chat: bool
    dtype: str
    context_length: int | None
    hf_id: str | None
    notes: str
    eos_id: int | None = None
    block_size: int | None = None
    block_threshold: float | None = None
    edit_threshold: float | None = None
    sub_block_size: int | None = None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise MasktaxError(f"unknown model family '{self.family}'; choose one of {', '.join(FAMILIES)}")
        if self.context_length is not None and self.context_length <= 0:
            raise MasktaxError(f"context_length must be positive, got {self.context_length}")
        if self.block_size is not None and self.block_size <= 0:
            raise MasktaxError(f"block_size must be positive, got {self.block_size}")


def _sdar(hub_id: str, summary: str, *, family: str = "sdar", block_size: int | None = None) -> ModelCard:
    """An SDAR / TraDo card (Qwen3 vocabulary: mask 151669, EOS <|im_end|>; blocks of 4 unless named)."""
    return ModelCard(family, 151669, False, True, "bfloat16", None, hub_id,
                     f"{summary}, block-causal ({block_size or 4}), in-place logits", eos_id=151645,
                     block_size=block_size)


MODEL_CARDS: dict[str, ModelCard] = {
    "GSAI-ML/LLaDA-8B-Base": ModelCard(
        "llada", 126336, False, False, "bfloat16", 4096, "GSAI-ML/LLaDA-8B-Base",
        "LLaDA 8B base MDLM, in-place logits", eos_id=126081),
    "GSAI-ML/LLaDA-8B-Instruct": ModelCard(
        "llada", 126336, False, True, "bfloat16", 4096, "GSAI-ML/LLaDA-8B-Instruct",
        "LLaDA 8B instruct MDLM (chat template), in-place logits", eos_id=126081),
    "Dream-org/Dream-v0-Base-7B": ModelCard(
        "dream", 151666, True, False, "bfloat16", 2048, "Dream-org/Dream-v0-Base-7B",
        "Dream 7B base MDLM (from Qwen2.5-7B), shifted logits", eos_id=151643),
    "Dream-org/Dream-v0-Instruct-7B": ModelCard(
        "dream", 151666, True, True, "bfloat16", 2048, "Dream-org/Dream-v0-Instruct-7B",
        "Dream 7B instruct MDLM (chat template), shifted logits", eos_id=151643),
    "meta-llama/Meta-Llama-3-8B": ModelCard(
        "ar", None, True, False, "bfloat16", 8192, "meta-llama/Meta-Llama-3-8B",
        "Llama 3 8B base, AR baseline (gated on the Hub)"),
    "meta-llama/Meta-Llama-3-8B-Instruct": ModelCard(
        "ar", None, True, True, "bfloat16", 8192, "meta-llama/Meta-Llama-3-8B-Instruct",
        "Llama 3 8B instruct, AR baseline (gated on the Hub)"),
    "Qwen/Qwen2.5-7B": ModelCard(
        "ar", None, True, False, "bfloat16", 32768, "Qwen/Qwen2.5-7B",
        "Qwen2.5 7B base, AR baseline (Dream's initialisation)"),
    "Qwen/Qwen2.5-7B-Instruct": ModelCard(
        "ar", None, True, True, "bfloat16", 32768, "Qwen/Qwen2.5-7B-Instruct",
        "Qwen2.5 7B instruct, AR baseline"),
    "google/diffusiongemma-26B-A4B-it": ModelCard(
        "diffusion_gemma", None, False, True, "bfloat16", 131072, "google/diffusiongemma-26B-A4B-it",
        "DiffusionGemma 26B MoE (4B active), uniform-noise canvas, self-conditioning"),
    # The newer families (docs/models.md: sources, what was checked against the published code).
    "inclusionAI/LLaDA-MoE-7B-A1B-Base": ModelCard(
        "lladamoe", 156895, False, False, "bfloat16", None, "inclusionAI/LLaDA-MoE-7B-A1B-Base",
        "LLaDA-MoE 7B (1B active) base MDLM, in-place logits", eos_id=156892),
    "inclusionAI/LLaDA-MoE-7B-A1B-Instruct": ModelCard(
        "lladamoe", 156895, False, True, "bfloat16", None, "inclusionAI/LLaDA-MoE-7B-A1B-Instruct",
        "LLaDA-MoE 7B (1B active) instruct MDLM (chat template), in-place logits", eos_id=156892),
    "inclusionAI/LLaDA2.0-mini-preview": ModelCard(
        "llada2_moe", 156895, False, True, "bfloat16", None, "inclusionAI/LLaDA2.0-mini-preview",
        "LLaDA2.0 mini preview (16B MoE), block-causal (32), in-place logits", eos_id=156892),
    "inclusionAI/LLaDA2.0-mini": ModelCard(
        "llada2_moe", 156895, False, True, "bfloat16", None, "inclusionAI/LLaDA2.0-mini",
        "LLaDA2.0 mini (16B MoE), block-causal (32), in-place logits", eos_id=156892),
    "inclusionAI/LLaDA2.0-flash": ModelCard(
        "llada2_moe", 156895, False, True, "bfloat16", None, "inclusionAI/LLaDA2.0-flash",
        "LLaDA2.0 flash (100B MoE), block-causal (32), in-place logits", eos_id=156892),
    "inclusionAI/LLaDA2.1-mini": ModelCard(
        "llada2_moe", 156895, False, True, "bfloat16", None, "inclusionAI/LLaDA2.1-mini",
        "LLaDA2.1 mini (16B MoE), block-causal (32), in-place logits (its sampler also edits tokens)",
        eos_id=156892, edit_threshold=0.9),
    "inclusionAI/LLaDA2.1-flash": ModelCard(
        "llada2_moe", 156895, False, True, "bfloat16", None, "inclusionAI/LLaDA2.1-flash",
        "LLaDA2.1 flash (100B MoE), block-causal (32), in-place logits (its sampler also edits tokens)",
        eos_id=156892, edit_threshold=0.9),
    "Gen-Verse/MMaDA-8B-Base": ModelCard(
        "mmada", 126336, False, False, "bfloat16", None, "Gen-Verse/MMaDA-8B-Base",
        "MMaDA 8B base (LLaDA-8B + image tokens), text forward, in-place logits", eos_id=126081),
    "Gen-Verse/MMaDA-8B-MixCoT": ModelCard(
        "mmada", 126336, False, True, "bfloat16", None, "Gen-Verse/MMaDA-8B-MixCoT",
        "MMaDA 8B MixCoT (chat template), text forward, in-place logits", eos_id=126081),
    **{hub_id: _sdar(hub_id, summary) for hub_id, summary in (
        ("JetLM/SDAR-1.7B-Chat", "SDAR 1.7B (from Qwen3)"),
        ("JetLM/SDAR-4B-Chat", "SDAR 4B (from Qwen3)"),
        ("JetLM/SDAR-8B-Chat", "SDAR 8B (from Qwen3)"),
    )},
    # SDAR with larger blocks (JetAstra/SDAR README: continued pretraining with blocks of 4, SFT at 8 to 64;
    # the block size is only in the name, so the card carries it).
    **{f"JetLM/SDAR-{size}-Chat-b{block}": _sdar(f"JetLM/SDAR-{size}-Chat-b{block}",
                                                  f"SDAR {size}, SFT with blocks of {block}", block_size=block)
       for size, blocks in (("1.7B", (32,)), ("4B", (16, 32)), ("8B", (8, 16, 32, 64))) for block in blocks},
    "JetLM/SDAR-30B-A3B-Chat": _sdar("JetLM/SDAR-30B-A3B-Chat", "SDAR 30B MoE (3B active, from Qwen3-30B-A3B)",
                                     family="sdar_moe"),
    "JetLM/SDAR-30B-A3B-Sci": _sdar("JetLM/SDAR-30B-A3B-Sci",
                                    "SDAR 30B MoE (3B active) science reasoning, long chain of thought", family="sdar_moe"),
    "JetLM/SDAR-30B-A3B-Chat-b32": _sdar("JetLM/SDAR-30B-A3B-Chat-b32",
                                         "SDAR 30B MoE (3B active), SFT with blocks of 32", family="sdar_moe",
                                         block_size=32),
    **{hub_id: _sdar(hub_id, summary) for hub_id, summary in (
        ("Gen-Verse/TraDo-4B-Instruct", "TraDo 4B (SDAR after TraceRL)"),
        ("Gen-Verse/TraDo-8B-Instruct", "TraDo 8B (SDAR after TraceRL)"),
        ("Gen-Verse/TraDo-8B-Thinking", "TraDo 8B thinking (long chain of thought)"),
    )},
    "Efficient-Large-Model/Fast_dLLM_v2_7B": ModelCard(
        "fast_dllm_v2", 151665, True, True, "bfloat16", 32768, "Efficient-Large-Model/Fast_dLLM_v2_7B",
        "Fast-dLLM v2 7B (from Qwen2.5-7B-Instruct), block-causal (32), shifted logits", eos_id=151645,
        block_threshold=0.9, sub_block_size=8),
    "Efficient-Large-Model/Fast_dLLM_v2_1.5B": ModelCard(
        "fast_dllm_v2", 151665, True, True, "bfloat16", None, "Efficient-Large-Model/Fast_dLLM_v2_1.5B",
        "Fast-dLLM v2 1.5B (from Qwen2.5-1.5B-Instruct), block-causal (32), shifted logits", eos_id=151645,
        block_threshold=0.9, sub_block_size=8),
    "embedded-mdlm": ModelCard(
        "llada", None, False, False, "float32", 2048, None,
        "masktax's small MDLM on the suite's vocabulary (LLaDA layout), in place; mask from tokenizer"),
    "embedded-ar": ModelCard(
        "ar", None, True, False, "float32", 2048, None,
        "masktax's small AR twin of embedded-mdlm (Llama layout)"),
    "embedded-mdlm-dream": ModelCard(
        "dream", None, True, False, "float32", 2048, None,
        "masktax's small shifted-logit MDLM initialised from embedded-ar (Dream layout)"),
}


def card_for(name: str) -> ModelCard | None:
    """The card of a known model name (exact, then case-insensitive), or None."""
    if name in MODEL_CARDS:
        return MODEL_CARDS[name]
    lowered = {k.lower(): v for k, v in MODEL_CARDS.items()}
    return lowered.get(name.lower())


def canonical_name(name: str) -> str | None:
    """The MODEL_CARDS key matching `name` case-insensitively, or None."""
    return next((k for k in MODEL_CARDS if k.lower() == name.lower()), None)
