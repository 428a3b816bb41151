"""DiffusionGemma (google/diffusiongemma-26B-A4B-it) behind the LoadedModel interface, kind "uniform".

DiffusionGemma is a block-diffusion model with UNIFORM noise: a canvas of random vocabulary tokens
(no mask token) is refined by a decoder that attends bidirectionally to itself and, read-only, to
the KV cache an autoregressive encoder built over the prompt. The entropy-bound sampler in
`transformers` accepts low-entropy tokens and renoises the rest with fresh uniform tokens.

Single-step probe: `[prompt | canvas]` is one sequence whose last `canvas_length` positions are the
canvas (set it with `set_canvas_length` or `canvas_span`; for a probe with x extra canvas tokens
after the answer position it is x + 1). The prompt runs through the encoder, the canvas through the
decoder. Self-conditioning (the decoder adds an MLP of the previous step's soft embeddings
`softmax(logits) @ E * sqrt(d)`) receives "no previous logits", i.e. a zero signal, exactly as
the sampler's first denoising step does. Canvas logits are in place (position i predicts token i)
and soft-capped `30 * tanh(z / 30)` as the model's own head does. Prompt positions get zero logits
(a uniform prediction: the diffusion head says nothing about the prompt). Batches must be
left-padded so the canvas is the same trailing span in every row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from transformers.modeling_outputs import MaskedLMOutput

from masktax.errors import MasktaxError
from masktax.models import checkpoint as ckpt
from masktax.models.loaded import LoadedModel


class DiffusionGemmaProbe(nn.Module):
    """Wraps `DiffusionGemmaForBlockDiffusion` so `forward(input_ids | inputs_embeds, attention_mask)`
    returns `[b, l, V]` logits with the canvas (last `canvas_length` positions) denoised in one step."""

    def __init__(self, model: nn.Module, canvas_length: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.config = model.config
        self.canvas_length = canvas_length

    def get_input_embeddings(self) -> nn.Module:
        """The scaled word embedding (`E[ids] * sqrt(d)`), shared by encoder and decoder."""
        return self.model.get_input_embeddings()

    def get_output_embeddings(self) -> nn.Module:
        return self.model.lm_head

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> MaskedLMOutput:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        x = input_ids if input_ids is not None else inputs_embeds
        b, n = x.shape[:2]
        c = self.canvas_length
        if c is None:
            raise MasktaxError("a uniform-noise model needs the canvas length: call set_canvas_length(lm, n)")
        if not 1 <= c < n:
            raise MasktaxError(f"canvas length {c} must be at least 1 and shorter than the input ({n} tokens)")
        p = n - c
        mask = torch.ones(b, n, dtype=torch.long, device=x.device) if attention_mask is None else attention_mask.long()
        if not bool(mask[:, p:].all()):
            raise MasktaxError("the canvas of a uniform-noise model must not contain padding; pad on the left")
        pos = (mask.cumsum(-1) - 1).clamp_min(0)  # [b, l]: real-token positions, as left padding needs
        inner = self.model.model
        enc_kwargs = {"input_ids": input_ids[:, :p]} if input_ids is not None else {"inputs_embeds": x[:, :p]}
        enc = inner.encoder(**enc_kwargs, attention_mask=mask[:, :p], position_ids=pos[:, :p], use_cache=True)
        canvas_ids = input_ids[:, p:] if input_ids is not None else torch.zeros(b, c, dtype=torch.long, device=x.device)
        hook = None
        if inputs_embeds is not None:  # feed the given canvas embeddings in place of embed_tokens(ids)
            canvas_embeds = inputs_embeds[:, p:]  # [b, c, d]
            hook = inner.decoder.embed_tokens.register_forward_hook(lambda _m, _i, _o: canvas_embeds)
        try:
            dec = inner.decoder(
                decoder_input_ids=canvas_ids,  # [b, c]
                past_key_values=enc.past_key_values,
                self_conditioning_logits=None,  # first denoising step: zero self-conditioning signal
                decoder_attention_mask=mask,  # [b, l]
                decoder_position_ids=pos[:, p:],
            )
        finally:
            if hook is not None:
                hook.remove()
        cap = self.model.final_logit_softcapping
        canvas = self.model.lm_head(dec.last_hidden_state).float()  # [b, c, V]
        if cap:
            canvas = torch.tanh(canvas / cap) * cap
        logits = canvas.new_zeros(b, n, canvas.shape[-1])  # [b, l, V]
        logits[:, p:] = canvas
        return MaskedLMOutput(logits=logits)


def load_diffusion_gemma(path: str | Path, *, device: torch.device, dtype: torch.dtype) -> DiffusionGemmaProbe:
    """Load `DiffusionGemmaForBlockDiffusion` from a checkpoint directory and wrap it for probing."""
    from transformers import DiffusionGemmaForBlockDiffusion

    model = ckpt.hf_from_pretrained(DiffusionGemmaForBlockDiffusion, path, "a DiffusionGemma model", dtype=dtype)
    return DiffusionGemmaProbe(model.to(device).eval()).eval()


def _probe(lm: LoadedModel) -> DiffusionGemmaProbe:
    if not isinstance(lm.model, DiffusionGemmaProbe):
        raise MasktaxError(f"model '{lm.name}' is not a DiffusionGemma (uniform-noise) model")
    return lm.model


def set_canvas_length(lm: LoadedModel, n: int) -> None:
    """Treat the last `n` input positions as the canvas in later `lm.logits(...)` calls."""
    if n < 1:
        raise MasktaxError(f"canvas length must be at least 1, got {n}")
    _probe(lm).canvas_length = n


@contextmanager
def canvas_span(lm: LoadedModel, n: int) -> Iterator[None]:
    """`with canvas_span(lm, x + 1): lm.logits(ids)` sets the canvas length for a block."""
    probe = _probe(lm)
    previous = probe.canvas_length
    set_canvas_length(lm, n)
    try:
        yield
    finally:
        probe.canvas_length = previous


def canvas_tokens(lm: LoadedModel, n: int, generator: torch.Generator) -> torch.Tensor:
    """`n` canvas tokens `[n]` drawn as the model's sampler draws its initial canvas.

    `EntropyBoundSampler.initialize_canvas` takes `torch.randint(0, text_config.vocab_size)`: uniform
    over the WHOLE vocabulary, special tokens included. Here the draw uses `generator` (on its own
    device; a CPU generator seeded s gives the same tokens as the sampler after `torch.manual_seed(s)`).
    """
    if n < 0:
        raise MasktaxError(f"number of canvas tokens must be non-negative, got {n}")
    vocab = _probe(lm).config.text_config.vocab_size
    return torch.randint(0, vocab, (n,), generator=generator, device=generator.device)  # [n]
