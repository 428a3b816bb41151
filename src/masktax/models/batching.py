"""Choosing a batch size for scoring passes (no gradients) from the memory a device has free.

Estimated peak bytes per token of one forward pass without gradients, with `s` bytes per element:

    s * (6 d + 3 f)        hidden state, norm, q/k/v, attention output, SwiGLU's gate/up/product
  + (s + 4) * V            the logits, plus the fp32 copy a softmax / log-softmax makes (only with
                           full_logits; single-step probes use `LoadedModel.logits_at`, one row per sequence)
  + 4 * h * l              one fp32 attention-score row per head (SDPA's math fallback; an upper bound)

d = hidden size, f = MLP width, V = vocabulary rows, h = heads, l = sequence length. Only one layer's
activations are alive at a time in inference, so the layer count does not enter. The batch is
`headroom * free_bytes / (l * per_token)`, clipped to [1, max_batch]. On CPU there is no free-memory
counter worth trusting and batching buys little on few cores: a fixed default is returned.
"""

from __future__ import annotations

import torch

from masktax.models.loaded import LoadedModel

CPU_BATCH_SIZE = 4


def _config_value(config: object, *names: str, default: int) -> int:
    for name in names:
        value = config.get(name) if isinstance(config, dict) else getattr(config, name, None)
        if value:
            return int(value)
    return default


def _dims(lm: LoadedModel) -> tuple[int, int, int, int, int, int]:
    """(vocabulary rows, hidden size, MLP width, heads, layers, bytes per element) of a model."""
    rows, d = lm.embedding_weight().shape
    config = getattr(lm.model, "config", None)
    ff = _config_value(config, "mlp_hidden_size", "intermediate_size", default=4 * d)
    heads = _config_value(config, "n_heads", "num_attention_heads", default=max(1, d // 128))
    layers = _config_value(config, "n_layers", "num_hidden_layers", default=1)
    s = lm.dtype.itemsize if hasattr(lm.dtype, "itemsize") else torch.finfo(lm.dtype).bits // 8
    return rows, d, ff, heads, layers, s


def bytes_per_token(lm: LoadedModel, seq_len: int, *, full_logits: bool = True) -> int:
    """Estimated peak activation bytes per token of a no-grad forward at length `seq_len` (formula above);
    `full_logits=False` when only one position per sequence gets logits (`LoadedModel.logits_at`)."""
    rows, d, ff, heads, _, s = _dims(lm)
    logits = (s + 4) * rows if full_logits else -(-(s + 4) * rows // seq_len)
    return s * (6 * d + 3 * ff) + logits + 4 * heads * seq_len


def backward_bytes_per_token(lm: LoadedModel, seq_len: int, *, full_logits: bool = True) -> int:
    """Estimated peak bytes per token of a forward + backward to the input embeddings with frozen
    weights (gradient attribution): every layer keeps what its backward needs,

        n_layers * s * (10 d + 4 f)   norm inputs/outputs, q/k/v, attention output, residuals, and
                                      SwiGLU's gate, up, activation and product
      + n_layers * (4 - s) * 12 d     the fp32 copies that RMSNorm and RoPE make of half-precision
                                      inputs (two norms' inputs and outputs, q and k)
      + 2 * (s + 4) * V               the logits and their gradient in fp32 (every position with
                                      full_logits; one row per sequence with `LoadedModel.logits_at`)
      + 4 * h * l                     one fp32 attention-score row per head (math fallback; bound)

    Checked against measured peaks by bench/bench_attribution_memory.py.
    """
    rows, d, ff, heads, layers, s = _dims(lm)
    logits = 2 * (s + 4) * rows
    if not full_logits:
        logits = -(-logits // seq_len)
    return layers * (s * (10 * d + 4 * ff) + max(0, 4 - s) * 12 * d) + logits + 4 * heads * seq_len


def auto_batch_size(
    lm: LoadedModel,
    seq_len: int,
    *,
    max_batch: int = 64,
    headroom: float = 0.8,
    full_logits: bool = True,
    backward: bool = False,
) -> int:
    """A batch size for `seq_len`-token scoring passes (`backward`: attribution passes) that fits the free
    memory of the lm's device."""
    if seq_len <= 0:
        from masktax.errors import MasktaxError

        raise MasktaxError(f"sequence length must be positive, got {seq_len}")
    device = lm.device
    if device.type != "cuda":
        return min(CPU_BATCH_SIZE, max_batch)
    free, _total = torch.cuda.mem_get_info(device)
    per_token = (
        backward_bytes_per_token(lm, seq_len, full_logits=full_logits)
        if backward
        else bytes_per_token(lm, seq_len, full_logits=full_logits)
    )
    per_seq = seq_len * per_token
    return max(1, min(max_batch, int(headroom * free // per_seq)))
