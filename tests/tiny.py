"""Tiny assets shared by the tests: a word-level tokenizer and tiny random models.

Nothing here downloads. Model builders return modules with random but seeded weights.
"""

from __future__ import annotations

from masktax.embedded.tokenizer import build_tokenizer

# A few real words per probe category; anything else maps to [UNK] (fine for random models).
TINY_WORDS = (
    "France", "Japan", "Peru", "Alice", "Bob", "Carol", "Garden", "Bridge", "table", "spoon",
    "run", "jump", "knit", "quirky", "happy", "under", "over", "cat", "dog", "apple", "tennis",
    "red", "blue", "joy", "anger", "persuade", "lamp",
)


def tiny_tokenizer():
    """Word-level tokenizer with a mask token, EOS/pad, chat template and numbers 0..1000."""
    return build_tokenizer(TINY_WORDS)


# --- tiny random models (2 layers, hidden 32) ------------------------------------------------

TINY_CONTEXT = 4096  # long enough for the suite's longest prompt plus 200 masks


def tiny_mask_id() -> int:
    """The tiny tokenizer's mask token id (the mask id of every tiny MDLM)."""
    return tiny_tokenizer().mask_token_id


def tiny_llada(seed: int = 0, vocab_size: int | None = None, **overrides):
    """Native LLaDA, predicts in place: d_model 32, 4 heads (2 KV heads), 2 layers, SwiGLU 64."""
    from masktax.models.llada import LLaDAConfig, LLaDAModelLM

    tok = tiny_tokenizer()
    vocab_size = len(tok) if vocab_size is None else vocab_size
    fields = dict(
        d_model=32, n_heads=4, n_kv_heads=2, n_layers=2, mlp_hidden_size=64, vocab_size=vocab_size,
        embedding_size=vocab_size, max_sequence_length=TINY_CONTEXT, rope_theta=10000.0,
        mask_token_id=tok.mask_token_id,
        extra={"eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id, "block_type": "llama",
               "layer_norm_type": "rms", "activation_type": "silu", "rope": True, "alibi": False},
    )
    fields.update(overrides)
    model = LLaDAModelLM(LLaDAConfig(**fields))
    model.reset_parameters(seed)
    return model.eval()


def tiny_dream(seed: int = 0, vocab_size: int | None = None, **overrides):
    """Native Dream, shifted logits: hidden 32, 4 heads (2 KV heads), 2 layers, SwiGLU 64."""
    from masktax.models.dream import DreamConfig, DreamModel

    tok = tiny_tokenizer()
    vocab_size = len(tok) if vocab_size is None else vocab_size
    fields = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=vocab_size, max_position_embeddings=TINY_CONTEXT,
        rope_theta=10000.0, mask_token_id=tok.mask_token_id,
        extra={"eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id,
               "bos_token_id": tok.eos_token_id},
    )
    fields.update(overrides)
    model = DreamModel(DreamConfig(**fields))
    model.reset_parameters(seed)
    return model.eval()


def tiny_llama_ar(seed: int = 0, vocab_size: int | None = None):
    """transformers `LlamaForCausalLM`: hidden 32, 4 heads (2 KV heads), 2 layers; the AR baseline."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tok) if vocab_size is None else vocab_size, hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=TINY_CONTEXT, initializer_range=0.2, tie_word_embeddings=False,
        bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model.eval()


def save_tiny_checkpoint(model, tokenizer, path):
    """Write `model` in its family's published layout plus the tokenizer files; returns the path.

    Pass `tokenizer=None` for a checkpoint without tokenizer files.
    """
    from pathlib import Path

    path = Path(path)
    model.save_pretrained(path)
    if tokenizer is not None:
        tokenizer.save_pretrained(path)
    return path


def tiny_checkpoint(family: str, path, seed: int = 0, with_tokenizer: bool = True):
    """A `masktax.models.load`-able directory for family "llada", "dream" or "ar"."""
    builders = {"llada": tiny_llada, "dream": tiny_dream, "ar": tiny_llama_ar}
    return save_tiny_checkpoint(builders[family](seed), tiny_tokenizer() if with_tokenizer else None, path)


def tiny_diffusion_gemma(seed: int = 0, vocab_size: int | None = None, canvas_length: int = 8):
    """transformers `DiffusionGemmaForBlockDiffusion` (uniform noise): hidden 32, 2 layers (one sliding,
    one global), MoE with 4 experts, a 1-layer vision tower of width 16 that text probes never use."""
    import torch
    from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion

    tok = tiny_tokenizer()
    text = dict(
        vocab_size=len(tok) if vocab_size is None else vocab_size, hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8, global_head_dim=8,
        max_position_embeddings=TINY_CONTEXT, sliding_window=16, layer_types=["sliding_attention", "full_attention"],
        num_experts=4, top_k_experts=2, moe_intermediate_size=16, pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id, initializer_range=0.2,
    )
    vision = dict(model_type="gemma4_vision", hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                  num_attention_heads=2, num_key_value_heads=2, head_dim=8, position_embedding_size=64)
    config = DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=canvas_length)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DiffusionGemmaForBlockDiffusion(config)
    return model.eval()
