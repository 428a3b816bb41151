"""DiffusionGemma (google/diffusiongemma-26B-A4B-it) behind the LoadedModel interface, kind "uniform".

DiffusionGemma is a block-diffusion model with UNIFORM noise: a canvas of random vocabulary tokens
(no mask token) is refined by a decoder that attends bidirectionally to itself and, read-only, to
the KV cache an autoregressive encoder built over the prompt. The entropy-bound sampler in
`transformers` accepts low-entropy tokens and renoises the rest with fresh uniform tokens.

Single-step probe: `[prompt | canvas]` is one sequence; the canvas is the tail of each row from
`canvas_start` on (what `LoadedModel.logits_at` passes: the scored position opens the canvas, so
the probes' canvas length comes from each item's layout), else its last `canvas_length` tokens
(`set_canvas_length` / `canvas_span`). The prompt runs through the encoder, the canvas through the
decoder (the encoder's KV cache passed as `cache=`, transformers >= 5.24). Self-conditioning (the
decoder adds an MLP of the previous step's soft embeddings `softmax(logits) @ E * sqrt(d)`) receives
"no previous logits", i.e. a zero signal, exactly as the sampler's first denoising step does.
Canvas logits are in place (position i predicts token i) and soft-capped `30 * tanh(z / 30)` as the
model's own head does. Prompt positions get zero logits (a uniform prediction: the diffusion head
says nothing about the prompt). Rows may be padded on either side and differ in prompt and canvas
length: each batch is re-packed, prompts left-padded for the encoder, canvases right-padded for the
decoder, so a padded row scores as it does alone (tests/models/test_diffusion_gemma.py).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from transformers.modeling_outputs import MaskedLMOutput

from masktax.errors import MasktaxError
from masktax.models import checkpoint as ckpt
from masktax.models.loaded import LoadedModel

MIN_TRANSFORMERS = "5.24"  # the first release with DiffusionGemma's decoder taking `cache=` that masktax was checked on


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
        logits_to_keep: torch.Tensor | None = None,
        canvas_start: torch.Tensor | None = None,
    ) -> MaskedLMOutput:
        """Logits `[b, l, V]` (or `[b, k, V]` at the 2-D `logits_to_keep` positions `[b, k]`).

        Each row's real tokens (`attention_mask`, contiguous: left or right padding) split into its
        prompt and its canvas: the canvas opens at `canvas_start[row]` `[b]` when given, else it is
        the last `canvas_length` real tokens. Rows may differ in prompt and canvas length: prompts
        are re-packed left-padded for the encoder (its sliding-window cache keeps the last positions)
        and canvases right-padded for the decoder, with masks and positions counting real tokens only.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids and inputs_embeds")
        x = input_ids if input_ids is not None else inputs_embeds
        b, n = x.shape[:2]
        dev = x.device
        idx = torch.arange(n, device=dev)  # [l]
        mask = torch.ones(b, n, dtype=torch.bool, device=dev) if attention_mask is None else attention_mask.bool()
        first = mask.long().argmax(-1)  # [b] first real token
        end = first + mask.sum(-1)  # [b] one past the last real token
        if not torch.equal(mask, (idx >= first[:, None]) & (idx < end[:, None])):
            raise MasktaxError("a uniform-noise model's rows must be padded on one side only (left or right)")
        if canvas_start is not None:
            start = torch.as_tensor(canvas_start, device=dev).long().reshape(b)  # [b]
        elif self.canvas_length is not None:
            start = end - self.canvas_length  # [b]
        else:
            raise MasktaxError("a uniform-noise model needs the canvas length: call set_canvas_length(lm, n)")
        prompt_len, canvas_len = start - first, end - start  # [b], [b]
        if bool((prompt_len < 1).any()) or bool((canvas_len < 1).any()):
            raise MasktaxError(f"the canvas must hold at least 1 token and be shorter than the input "
                               f"(canvas {canvas_len.tolist()} of {(end - first).tolist()} tokens)")
        p, c = int(prompt_len.max()), int(canvas_len.max())
        k = torch.arange(p, device=dev)  # [P]
        p_mask = k[None] >= (p - prompt_len)[:, None]  # [b, P] left-padded prompts
        p_src = (start[:, None] - p + k).clamp(0, n - 1)  # [b, P]
        j = torch.arange(c, device=dev)  # [C]
        c_mask = j[None] < canvas_len[:, None]  # [b, C] right-padded canvases
        c_src = (start[:, None] + j).clamp(max=n - 1)  # [b, C]
        inner = self.model.model
        enc_pos = (p_mask.long().cumsum(-1) - 1).clamp_min(0)  # [b, P] real-token positions
        if input_ids is not None:
            enc_in = {"input_ids": input_ids.gather(1, p_src)}  # [b, P]
            canvas_ids = input_ids.gather(1, c_src)  # [b, C]
        else:
            d = inputs_embeds.shape[-1]
            enc_in = {"inputs_embeds": inputs_embeds.gather(1, p_src[..., None].expand(-1, -1, d))}  # [b, P, d]
            canvas_embeds = inputs_embeds.gather(1, c_src[..., None].expand(-1, -1, d))  # [b, C, d]
            canvas_ids = torch.zeros(b, c, dtype=torch.long, device=dev)
        enc = inner.encoder(**enc_in, attention_mask=p_mask.long(), position_ids=enc_pos, use_cache=True)
        hook = None
        if inputs_embeds is not None:  # feed the given canvas embeddings in place of embed_tokens(ids)
            hook = inner.decoder.embed_tokens.register_forward_hook(lambda _m, _i, _o: canvas_embeds)
        try:
            dec = inner.decoder(
                decoder_input_ids=canvas_ids,  # [b, C]
                cache=enc.cache,  # the encoder's KV cache, read-only
                self_conditioning_logits=None,  # first denoising step: zero self-conditioning signal
                decoder_attention_mask=torch.cat([p_mask, c_mask], dim=1).long(),  # [b, P + C]
                decoder_position_ids=prompt_len[:, None] + j,  # [b, C]
            )
        finally:
            if hook is not None:
                hook.remove()
        hidden = dec.last_hidden_state  # [b, C, d]
        if logits_to_keep is not None:  # only the requested positions; outside the canvas: zeros
            rel = logits_to_keep.to(dev).long() - start[:, None]  # [b, k]
            inside = (rel >= 0) & (rel < canvas_len[:, None])  # [b, k]
            picked = hidden.gather(1, rel.clamp(0, c - 1)[..., None].expand(-1, -1, hidden.shape[-1]))  # [b, k, d]
            return MaskedLMOutput(logits=self._head(picked) * inside[..., None])  # [b, k, V]
        canvas = self._head(hidden)  # [b, C, V]
        logits = canvas.new_zeros(b, n, canvas.shape[-1])  # [b, l, V]
        rows = torch.arange(b, device=dev)[:, None].expand(-1, c)  # [b, C]
        logits[rows[c_mask], c_src[c_mask]] = canvas[c_mask]
        return MaskedLMOutput(logits=logits)

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        """The model's own head: `cap * tanh(lm_head(h) / cap)` in float32."""
        z = self.model.lm_head(hidden).float()
        cap = self.model.final_logit_softcapping
        return torch.tanh(z / cap) * cap if cap else z


def load_diffusion_gemma(path: str | Path, *, device: torch.device, dtype: torch.dtype) -> DiffusionGemmaProbe:
    """Load `DiffusionGemmaForBlockDiffusion` from a checkpoint directory and wrap it for probing."""
    try:
        from transformers import DiffusionGemmaForBlockDiffusion
        from transformers.models.diffusion_gemma.modeling_diffusion_gemma import DiffusionGemmaDecoderModel
    except ImportError as err:
        raise MasktaxError(f"DiffusionGemma needs transformers {MIN_TRANSFORMERS} or newer ({ckpt.reason(err)})") from err
    if "cache" not in inspect.signature(DiffusionGemmaDecoderModel.forward).parameters:
        import transformers

        raise MasktaxError(f"DiffusionGemma needs transformers {MIN_TRANSFORMERS} or newer (its decoder reads the "
                           f"encoder's KV cache as `cache=`); found {transformers.__version__}")
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


def model_canvas_length(lm: LoadedModel) -> int:
    """The canvas its sampler denoises per block (config `canvas_length`); 1 for a uniform-noise
    model that declares none."""
    length = getattr(getattr(lm.model, "config", None), "canvas_length", None)
    if length is not None and not (isinstance(length, int) and length >= 1):
        raise MasktaxError(f"model '{lm.name}' declares canvas_length {length!r}; it should be a positive integer")
    return length or 1


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
