"""Small random models of the families masktax runs, built in one place: the embedded models that
`masktax pretrain` trains, the demo's stand-ins and the tests' tiny models all come from here.

    llada(dims, ...)   native LLaDA (masktax.models.llada): logits in place
    dream(dims, ...)   native Dream (masktax.models.dream): shifted logits
    llama(dims, ...)   transformers' LlamaForCausalLM: the AR baseline

`Dims` holds the sizes the families share (Llama-style blocks with SwiGLU); each builder maps them
onto its family's config fields, and `**fields` sets any other field of that config. Building a
module draws from torch's global RNG as any module does; the weights then come from one of three
seeded inits: `reset` (a native model's own `reset_parameters`), `seeded` (a transformers model
built under a forked, seeded torch RNG) or `normal_init` (N(0, std^2), pretraining's init).

Around a tokenizer (its mask, EOS and pad ids): `tiny_llada`, `tiny_dream`, `tiny_llama` and
`tiny_diffusion_gemma` give seeded models, `save_checkpoint` a directory `masktax.models.load`
reads, and `build_stand_ins` the demo's three stand-ins over the suite's word-level tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from masktax.models.blocks import RMSNorm
from masktax.models.dream import DreamConfig, DreamModel
from masktax.models.llada import LLaDAConfig, LLaDAModelLM
from masktax.models.native import NativeModel

M = TypeVar("M", bound=nn.Module)
N = TypeVar("N", bound=NativeModel)

# The architecture switches of LLaDA's published config that the native LLaDA implements.
LLADA_ARCH = {"block_type": "llama", "layer_norm_type": "rms", "activation_type": "silu", "rope": True}


@dataclass(frozen=True)
class Dims:
    """Sizes shared by the families; the defaults are the tests' tiny models (2 layers, hidden 32)."""

    hidden: int = 32
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2  # grouped-query attention: heads share key/value heads
    ffn: int = 64  # SwiGLU hidden size
    context: int = 4096  # long enough for the suite's longest prompt plus 200 masks
    rope_theta: float = 10000.0
    tie: bool = False  # output projection = input embedding


def llada(dims: Dims, *, vocab: int, mask_id: int | None, extra: dict[str, Any], **fields: Any) -> LLaDAModelLM:
    """Native LLaDA; `extra` holds the published config's other keys (LLADA_ARCH, token ids)."""
    config = dict(
        d_model=dims.hidden, n_heads=dims.heads, n_kv_heads=dims.kv_heads, n_layers=dims.layers,
        mlp_hidden_size=dims.ffn, vocab_size=vocab, embedding_size=vocab, max_sequence_length=dims.context,
        rope_theta=dims.rope_theta, weight_tying=dims.tie, mask_token_id=mask_id, extra=extra,
    )
    config.update(fields)
    return LLaDAModelLM(LLaDAConfig(**config))


def dream(dims: Dims, *, vocab: int, mask_id: int | None, extra: dict[str, Any], **fields: Any) -> DreamModel:
    """Native Dream; `extra` holds the published config's other keys (token ids)."""
    config = dict(
        hidden_size=dims.hidden, intermediate_size=dims.ffn, num_hidden_layers=dims.layers,
        num_attention_heads=dims.heads, num_key_value_heads=dims.kv_heads, vocab_size=vocab,
        max_position_embeddings=dims.context, rope_theta=dims.rope_theta, tie_word_embeddings=dims.tie,
        mask_token_id=mask_id, extra=extra,
    )
    config.update(fields)
    return DreamModel(DreamConfig(**config))


def llama(dims: Dims, *, vocab: int, eos_id: int, pad_id: int, **fields: Any) -> nn.Module:
    """transformers' `LlamaForCausalLM` (EOS doubles as BOS), built with transformers' own init."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = dict(
        vocab_size=vocab, hidden_size=dims.hidden, intermediate_size=dims.ffn, num_hidden_layers=dims.layers,
        num_attention_heads=dims.heads, num_key_value_heads=dims.kv_heads, max_position_embeddings=dims.context,
        rope_parameters={"rope_type": "default", "rope_theta": dims.rope_theta}, tie_word_embeddings=dims.tie,
        bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=pad_id,
    )
    config.update(fields)
    return LlamaForCausalLM(LlamaConfig(**config))


def reset(model: N, seed: int) -> N:
    """A native model's seeded weights (`NativeModel.reset_parameters`), in eval mode."""
    model.reset_parameters(seed)
    return model.eval()


def seeded(build: Callable[[], M], seed: int) -> M:
    """`build()` under a forked torch RNG seeded with `seed` (transformers models init themselves), in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build().eval()


def normal_init(model: nn.Module, std: float, generator: torch.Generator) -> None:
    """GPT-style init: linears and embeddings N(0, std^2), biases 0, norm weights 1."""
    with torch.no_grad():
        for sub in model.modules():
            if isinstance(sub, (nn.Linear, nn.Embedding)):
                sub.weight.copy_(torch.randn(sub.weight.shape, generator=generator) * std)
                if getattr(sub, "bias", None) is not None:
                    sub.bias.zero_()
            elif isinstance(sub, RMSNorm) or type(sub).__name__.endswith("RMSNorm"):
                sub.weight.fill_(1.0)


# --- seeded models around a tokenizer ------------------------------------------------------------


def _ids(tokenizer) -> dict[str, int]:
    return {"eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}


def _vocab(tokenizer, vocab_size: int | None) -> int:
    return len(tokenizer) if vocab_size is None else vocab_size


def tiny_llada(tokenizer, *, seed: int = 0, dims: Dims = Dims(), vocab_size: int | None = None,
               **fields: Any) -> LLaDAModelLM:
    """Native LLaDA over `tokenizer`, seeded by `seed`."""
    extra = {**_ids(tokenizer), **LLADA_ARCH, "alibi": False}
    model = llada(dims, vocab=_vocab(tokenizer, vocab_size), mask_id=tokenizer.mask_token_id, extra=extra, **fields)
    return reset(model, seed)


def tiny_dream(tokenizer, *, seed: int = 0, dims: Dims = Dims(), vocab_size: int | None = None,
               **fields: Any) -> DreamModel:
    """Native Dream over `tokenizer`, seeded by `seed`."""
    extra = {**_ids(tokenizer), "bos_token_id": tokenizer.eos_token_id}
    model = dream(dims, vocab=_vocab(tokenizer, vocab_size), mask_id=tokenizer.mask_token_id, extra=extra, **fields)
    return reset(model, seed)


def tiny_llama(tokenizer, *, seed: int = 0, dims: Dims = Dims(), vocab_size: int | None = None,
               **fields: Any) -> nn.Module:
    """transformers' `LlamaForCausalLM` over `tokenizer`, seeded by `seed`."""
    vocab = _vocab(tokenizer, vocab_size)
    return seeded(lambda: llama(dims, vocab=vocab, eos_id=tokenizer.eos_token_id, pad_id=tokenizer.pad_token_id,
                                **fields), seed)


def tiny_diffusion_gemma(tokenizer, *, seed: int = 0, dims: Dims = Dims(), vocab_size: int | None = None,
                         canvas_length: int = 8) -> nn.Module:
    """transformers' `DiffusionGemmaForBlockDiffusion` (uniform noise) over `tokenizer`: 2 layers (one
    sliding, one global), MoE with 4 experts, a 1-layer vision tower of width 16 that text never uses."""
    from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion

    text = dict(
        vocab_size=_vocab(tokenizer, vocab_size), hidden_size=dims.hidden, intermediate_size=dims.ffn,
        num_hidden_layers=dims.layers, num_attention_heads=dims.heads, num_key_value_heads=dims.kv_heads,
        head_dim=8, global_head_dim=8, max_position_embeddings=dims.context, sliding_window=16,
        layer_types=["sliding_attention", "full_attention"], num_experts=4, top_k_experts=2,
        moe_intermediate_size=16, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id, initializer_range=0.2,
    )
    vision = dict(model_type="gemma4_vision", hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                  num_attention_heads=2, num_key_value_heads=2, head_dim=8, position_embedding_size=64)
    config = DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=canvas_length)
    return seeded(lambda: DiffusionGemmaForBlockDiffusion(config), seed)


def save_checkpoint(model: nn.Module, tokenizer, path: str | Path) -> Path:
    """Write `model` in its family's published layout plus the tokenizer files (none for
    `tokenizer=None`); returns the path."""
    path = Path(path)
    model.save_pretrained(path)
    if tokenizer is not None:
        tokenizer.save_pretrained(path)
    return path


def build_stand_ins(root: Path, *, seed: int = 0, hidden: int = 32, context: int = 4096) -> tuple[str, ...]:
    """Save tiny random LLaDA-like, Dream-like and Llama checkpoints over the suite's words under `root`
    (kept if already there); returns their paths. The demo runs on them when no embedded model is installed."""
    from masktax.embedded.tokenizer import build_tokenizer
    from masktax.tasks.words import load_words

    tok = build_tokenizer(sorted({w for words in load_words().values() for w in words}))
    dims = Dims(hidden=hidden, ffn=2 * hidden, context=context)
    builds = {
        "random-llada": lambda: tiny_llada(tok, seed=seed, dims=dims, rope_theta=500000.0),  # LLaDA's default
        "random-dream": lambda: tiny_dream(tok, seed=seed + 1, dims=dims),
        "random-llama-ar": lambda: tiny_llama(tok, seed=seed + 2, dims=dims),
    }
    out = []
    for name, build in builds.items():
        path = root / name
        if not (path / "config.json").is_file():
            save_checkpoint(build(), tok, path)
        out.append(str(path))
    return tuple(out)
