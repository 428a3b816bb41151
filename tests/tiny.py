"""Tiny assets shared by the tests: a word-level tokenizer and tiny random models over it.

Nothing here downloads. The models come from `masktax.models.tiny` (the builders the demo's
stand-ins and pretraining use) with seeded weights: 2 layers, hidden 32, 4 heads (2 KV heads),
SwiGLU 64, context 4096.
"""

from __future__ import annotations

from masktax.embedded.tokenizer import build_tokenizer
from masktax.models import tiny as builders
from masktax.models.tiny import save_checkpoint as save_tiny_checkpoint

__all__ = ["TINY_CONTEXT", "TINY_WORDS", "save_tiny_checkpoint", "tiny_checkpoint", "tiny_diffusion_gemma",
           "tiny_dream", "tiny_family_checkpoint", "tiny_llada", "tiny_llama_ar", "tiny_mask_id", "tiny_tokenizer"]

# A few real words per probe category; anything else maps to [UNK] (fine for random models).
TINY_WORDS = (
    "France", "Japan", "Peru", "Alice", "Bob", "Carol", "Garden", "Bridge", "table", "spoon",
    "run", "jump", "knit", "quirky", "happy", "under", "over", "cat", "dog", "apple", "tennis",
    "red", "blue", "joy", "anger", "persuade", "lamp",
)
TINY_CONTEXT = builders.Dims().context  # long enough for the suite's longest prompt plus 200 masks


def tiny_tokenizer():
    """Word-level tokenizer with a mask token, EOS/pad, chat template and numbers 0..1000."""
    return build_tokenizer(TINY_WORDS)


def tiny_mask_id() -> int:
    """The tiny tokenizer's mask token id (the mask id of every tiny MDLM)."""
    return tiny_tokenizer().mask_token_id


def tiny_llada(seed: int = 0, vocab_size: int | None = None, **overrides):
    """Native LLaDA, predicts in place; `overrides` set LLaDAConfig fields."""
    return builders.tiny_llada(tiny_tokenizer(), seed=seed, vocab_size=vocab_size, **overrides)


def tiny_dream(seed: int = 0, vocab_size: int | None = None, **overrides):
    """Native Dream, shifted logits; `overrides` set DreamConfig fields."""
    return builders.tiny_dream(tiny_tokenizer(), seed=seed, vocab_size=vocab_size, **overrides)


def tiny_llama_ar(seed: int = 0, vocab_size: int | None = None):
    """transformers `LlamaForCausalLM`, the AR baseline (init std 0.2, so its logits are far from uniform)."""
    return builders.tiny_llama(tiny_tokenizer(), seed=seed, vocab_size=vocab_size, initializer_range=0.2)


def tiny_diffusion_gemma(seed: int = 0, vocab_size: int | None = None, canvas_length: int = 8):
    """transformers `DiffusionGemmaForBlockDiffusion` (uniform noise), with a tiny unused vision tower."""
    return builders.tiny_diffusion_gemma(tiny_tokenizer(), seed=seed, vocab_size=vocab_size, canvas_length=canvas_length)


def tiny_checkpoint(family: str, path, seed: int = 0, with_tokenizer: bool = True):
    """A `masktax.models.load`-able directory for family "llada", "dream" or "ar"."""
    by_family = {"llada": tiny_llada, "dream": tiny_dream, "ar": tiny_llama_ar}
    return save_tiny_checkpoint(by_family[family](seed), tiny_tokenizer() if with_tokenizer else None, path)


def tiny_family_checkpoint(family: str, path, seed: int = 1):
    """A `load`-able directory of a newer native family ("mmada", "lladamoe", "llada2_moe", "sdar",
    "fast_dllm_v2"): the architecture of tests/models/fixtures/<family>/config.json (made by the
    published code; 2 layers, hidden 32, its block size) over the tiny tokenizer's vocabulary and
    mask, EOS and pad ids, with random weights, and the tokenizer."""
    import json
    from pathlib import Path

    from masktax.models.load import native_class

    tok = tiny_tokenizer()
    cfg = json.loads((Path(__file__).parent / "models" / "fixtures" / family / "config.json").read_text())
    for key in ("vocab_size", "embedding_size", "new_vocab_size", "llm_vocab_size"):
        if key in cfg:
            cfg[key] = len(tok)
    cfg.update(mask_token_id=tok.mask_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = native_class(family).from_config_dict(cfg)
    model.reset_parameters(seed=seed)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return Path(path)
