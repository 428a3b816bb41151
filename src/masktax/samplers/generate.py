"""Decode text from an MDLM with any sampler, optionally with soft-masking: `masktax generate`'s work.

    from masktax.samplers.generate import GenerateConfig, run
    result = run(GenerateConfig(model="GSAI-ML/LLaDA-8B-Instruct", prompt="What is 7 * 8?", format="chat",
                                steps=64, gen_length=64, block_length=32))
    print(result.text, result.tokens_per_second)

`run` loads the model, encodes the prompt (raw text, or the tokenizer's chat template), seeds the
sampling noise and calls the sampler of `SAMPLERS` (a causal (AR) model: `generate_ar`, left to
right; its `cache="prefix"` is an exact KV cache). `sampler="auto"` (the default) picks "block"
(block diffusion) for a block-causal model (LLaDA2, SDAR/TraDo, Fast-dLLM v2), else "semi_ar"; the
block sampler takes the model card's rule where its published generate has one (LLaDA2.1's token
editing, Fast-dLLM v2's sub-blocks; `GenerateConfig.block_defaults`).
With a `stream`, `BlockView` redraws the block being decoded on one line after every step (masks
shown as `_`).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import torch

from masktax.errors import MasktaxError
from masktax.models import load
from masktax.models.cards import card_for
from masktax.models.load import split_revision
from masktax.prompts.render import FORMATS
from masktax.samplers import BLOCK_SAMPLER, CACHES, SAMPLERS, SoftMaskConfig, decode, generate_ar

MASK_PLACEHOLDER = "_"
AUTO = "auto"  # block for a block-causal model, else semi_ar



@dataclass(frozen=True)
class GenerateConfig:
    """Everything `masktax generate` needs; the CLI builds it, `run` executes it."""

    model: str  # card name, embedded name or checkpoint directory
    prompt: str  # the user text (read from --prompt-file by the CLI)
    format: str | None = None  # "base" or "chat"; None = chat for instruct cards, else base
    sampler: str = AUTO  # a key of masktax.samplers.SAMPLERS, or "auto" (block if block-causal, else semi_ar)
    steps: int | None = None  # semi_ar / dream steps; None = gen_length
    steps_per_block: int | None = None  # block only; None = the block size
    gen_length: int = 128  # tokens to generate
    block_length: int | None = None  # semi_ar / threshold block; None = min(32, gen_length)
    temperature: float = 0.0
    remasking: str = "low_confidence"  # semi_ar only
    alg: str = "maskgit_plus"  # dream only
    threshold: float | None = None  # threshold (None = 0.9) / block (None = the card's, else 0.95)
    edit_threshold: float | None = None  # block: LLaDA2.1 token editing; None = the card's rule; 1 = off
    max_post_steps: int | None = None  # block with editing: edit-only steps after a block's masks; None = 16
    sub_block_size: int | None = None  # block: Fast-dLLM v2 sub-blocks; None = the card's rule; 0 = off
    cfg_scale: float = 0.0  # semi_ar only
    soft_mask: SoftMaskConfig | None = None  # soft-masking [P2]; None = off
    seed: int = 0
    device: str | None = None
    dtype: str | None = None
    trust_remote_code: bool = False
    mask_token_id: int | None = None
    stop_at_eos: bool = True
    cache: str = "none"  # "prefix" / "dual": Fast-dLLM's block caches (approximate); AR models: exact KV cache

    def __post_init__(self) -> None:
        if self.cache not in CACHES:
            raise MasktaxError(f"unknown --cache '{self.cache}'; choose one of {', '.join(CACHES)}")
        if self.sampler not in SAMPLERS and self.sampler != AUTO:
            raise MasktaxError(f"unknown sampler '{self.sampler}'; choose one of {', '.join(SAMPLERS)} or {AUTO}")
        if self.format is not None and self.format not in FORMATS:
            raise MasktaxError(f"unknown format '{self.format}'; choose base or chat")
        if not self.prompt.strip():
            raise MasktaxError("the prompt is empty")
        if self.gen_length < 1:
            raise MasktaxError(f"--gen-length must be at least 1, got {self.gen_length}")
        sampler = self.sampler if self.sampler != AUTO else None  # checked again once auto is resolved
        if self.cfg_scale > 0 and sampler not in (None, "semi_ar"):
            raise MasktaxError(f"--cfg-scale is only supported by the semi_ar sampler, not {sampler}")
        if self.remasking != "low_confidence" and sampler not in (None, "semi_ar"):
            raise MasktaxError(f"--remasking is only supported by the semi_ar sampler, not {sampler}")
        if self.steps_per_block is not None and sampler not in (None, BLOCK_SAMPLER):
            raise MasktaxError(f"--steps-per-block is only supported by the block sampler, not {sampler}")
        if sampler == BLOCK_SAMPLER and self.steps is not None:
            raise MasktaxError("the block sampler takes --steps-per-block, not --steps")
        for flag, value in (("--edit-threshold", self.edit_threshold), ("--max-post-steps", self.max_post_steps),
                            ("--sub-block-size", self.sub_block_size)):
            if value is not None and sampler not in (None, BLOCK_SAMPLER):
                raise MasktaxError(f"{flag} is only supported by the block sampler, not {sampler}")
        if self.edit_threshold is not None and not 0 <= self.edit_threshold <= 1:
            raise MasktaxError(f"--edit-threshold must be in [0, 1] (1 = no editing), got {self.edit_threshold}")
        if (self.sub_block_size or 0) < 0 or (self.max_post_steps or 0) < 0:
            raise MasktaxError("--sub-block-size (0 = off) and --max-post-steps must be >= 0")

    def resolved(self, block_size: int | None) -> GenerateConfig:
        """This config with "auto" replaced by the sampler for a model with attention blocks of `block_size`
        (None: bidirectional); the block sampler on a bidirectional model is a MasktaxError. For the block
        sampler, the model card's defaults fill what is not set (`block_defaults`)."""
        if self.sampler == AUTO:
            cfg = dataclasses.replace(self, sampler=BLOCK_SAMPLER if block_size else "semi_ar")
            return cfg.block_defaults() if block_size else cfg
        if self.sampler == BLOCK_SAMPLER and not block_size:
            raise MasktaxError(f"--sampler {BLOCK_SAMPLER} needs a block-causal model (LLaDA2, SDAR/TraDo, "
                               f"Fast-dLLM v2); '{self.model}' attends bidirectionally: use semi_ar, dream or threshold")
        if self.sampler == BLOCK_SAMPLER and self.block_length not in (None, block_size):
            raise MasktaxError(f"the block sampler decodes the model's attention blocks of {block_size}; "
                               f"drop --block-length {self.block_length}")
        if self.sampler == BLOCK_SAMPLER:
            return self.block_defaults()
        return self

    def block_defaults(self) -> GenerateConfig:
        """The block sampler's settings with the model card's defaults (docs/samplers.md): its threshold
        unless --threshold is given; its rule (LLaDA2.1 editing, Fast-dLLM v2 sub-blocks) unless one of
        --steps-per-block, --edit-threshold, --sub-block-size is."""
        card = card_for(split_revision(self.model)[0])
        if card is None:
            return self
        own_rule = any(v is not None for v in (self.steps_per_block, self.edit_threshold, self.sub_block_size))
        return dataclasses.replace(
            self, threshold=card.block_threshold if self.threshold is None else self.threshold,
            edit_threshold=self.edit_threshold if own_rule else card.edit_threshold,
            sub_block_size=self.sub_block_size if own_rule else card.sub_block_size)

    def sampler_kwargs(self) -> dict:
        """Keyword arguments of the chosen sampler function (beyond model and prompt ids)."""
        steps = self.steps if self.steps is not None else self.gen_length
        block = self.block_length if self.block_length is not None else min(32, self.gen_length)
        common = {"gen_length": self.gen_length, "temperature": self.temperature, "soft_mask": self.soft_mask,
                  "cache": self.cache}
        if self.sampler == "semi_ar":
            return {**common, "steps": steps, "block_length": block, "remasking": self.remasking,
                    "cfg_scale": self.cfg_scale}
        if self.sampler == "dream":
            return {**common, "steps": steps, "alg": self.alg}
        if self.sampler == BLOCK_SAMPLER:
            edit = self.edit_threshold if self.edit_threshold is not None and self.edit_threshold < 1 else None
            if self.max_post_steps is not None and edit is None:
                raise MasktaxError("--max-post-steps needs token editing (--edit-threshold below 1)")
            return {**common, "steps_per_block": self.steps_per_block,
                    "threshold": 0.95 if self.threshold is None else self.threshold, "edit_threshold": edit,
                    "max_post_steps": 16 if self.max_post_steps is None else self.max_post_steps,
                    "sub_block_size": self.sub_block_size or None}
        if self.sampler == AUTO:
            raise MasktaxError("sampler 'auto' is resolved against the model first (GenerateConfig.resolved)")
        return {**common, "block_length": block, "threshold": 0.9 if self.threshold is None else self.threshold}


@dataclass(frozen=True)
class GenerateResult:
    text: str
    tokens: int  # generated positions decoded
    seconds: float
    forward_passes: int
    sampler: str = ""  # the sampler that ran ("ar" for a causal model)
    cache: str = "none"

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("inf")


def read_prompt(prompt: str | None, prompt_file: Path | None) -> str:
    """The prompt text: `prompt`, or the UTF-8 text of `prompt_file` (exactly one of them given)."""
    if (prompt is None) == (prompt_file is None):
        raise MasktaxError("pass exactly one of --prompt and --prompt-file")
    if prompt is not None:
        return prompt
    assert prompt_file is not None
    if not prompt_file.exists():
        raise MasktaxError(f"prompt file '{prompt_file}' does not exist")
    if not prompt_file.is_file():
        raise MasktaxError(f"prompt file '{prompt_file}' is not a file")
    try:
        return prompt_file.read_text("utf-8")
    except UnicodeDecodeError as err:
        raise MasktaxError(f"prompt file '{prompt_file}' is not UTF-8 text ({err.reason} at byte {err.start})") from err


def encode_prompt(tokenizer, text: str, fmt: str) -> list[int]:
    """Token ids of the prompt: raw text for "base", the tokenizer's chat template for "chat"."""
    if fmt == "chat":
        if not getattr(tokenizer, "chat_template", None):
            raise MasktaxError("--format chat needs a tokenizer with a chat template; this one has none")
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
        )
        return list(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    return list(tokenizer(text)["input_ids"])


def render_block(tokenizer, ids: list[int], mask_id: int) -> str:
    """Text of `ids` with every mask shown as a placeholder (runs of real tokens decoded together)."""
    parts, run = [], []
    for tok in ids:
        if tok == mask_id:
            if run:
                parts.append(tokenizer.decode(run, skip_special_tokens=False))
                run = []
            parts.append(MASK_PLACEHOLDER)
        else:
            run.append(tok)
    if run:
        parts.append(tokenizer.decode(run, skip_special_tokens=False))
    return "".join(parts)


class BlockView:
    """`on_step` callback redrawing the block being decoded on one terminal line."""

    def __init__(self, tokenizer, mask_id: int, stream: TextIO) -> None:
        self.tokenizer, self.mask_id, self.stream = tokenizer, mask_id, stream
        self.width = max(20, shutil.get_terminal_size((100, 20)).columns - 1)

    def __call__(self, event) -> None:
        start, end = event.block
        text = render_block(self.tokenizer, event.x[0, start:end].tolist(), self.mask_id)
        line = f"[step {event.step + 1}] " + text.replace("\n", "⏎ ")
        self.stream.write("\r\x1b[K" + line[: self.width])
        self.stream.flush()

    def clear(self) -> None:
        self.stream.write("\r\x1b[K")
        self.stream.flush()


def run(cfg: GenerateConfig, *, stream: TextIO | None = None) -> GenerateResult:
    """Load the model, encode the prompt, decode with the chosen sampler; returns the text and speed."""
    lm = load(cfg.model, device=cfg.device, dtype=cfg.dtype, trust_remote_code=cfg.trust_remote_code,
              mask_token_id=cfg.mask_token_id)
    ar = lm.kind == "ar"
    if not ar:
        cfg = cfg.resolved(lm.block_size)
    if ar and cfg.soft_mask is not None:
        raise MasktaxError(f"soft-masking needs masks to feed back; '{lm.name}' is a causal (AR) model")
    mask_id = None if ar else lm.require_mask("masktax generate")
    if lm.tokenizer is None:
        raise MasktaxError(f"model '{lm.name}' ships no tokenizer; generate needs one to encode the prompt")
    fmt = cfg.format or ("chat" if lm.extra.get("chat") else "base")
    ids = encode_prompt(lm.tokenizer, cfg.prompt, fmt)
    if len(ids) + cfg.gen_length > lm.max_length:
        raise MasktaxError(
            f"prompt ({len(ids)} tokens) plus --gen-length {cfg.gen_length} exceeds the model's "
            f"context of {lm.max_length}"
        )
    torch.manual_seed(cfg.seed)
    generator = torch.Generator(device=lm.device).manual_seed(cfg.seed)
    view = BlockView(lm.tokenizer, mask_id, stream) if stream is not None else None
    prompt_ids = torch.tensor([ids], device=lm.device)  # [1, lp]
    t0 = time.perf_counter()
    try:
        if ar:  # left to right; the MDLM samplers' options do not apply
            out, history = generate_ar(lm, prompt_ids, gen_length=cfg.gen_length, temperature=cfg.temperature,
                                       cache=cfg.cache, generator=generator, return_history=True, on_step=view)
        else:
            out, history = SAMPLERS[cfg.sampler](
                lm, prompt_ids, generator=generator, return_history=True, on_step=view, **cfg.sampler_kwargs()
            )
    finally:
        if view is not None:
            view.clear()
    seconds = time.perf_counter() - t0
    eos = [i for i in (lm.eos_id,) if i is not None]
    text = decode(lm.tokenizer, out, len(ids), stop_at_eos=cfg.stop_at_eos, eos_ids=eos)[0]
    return GenerateResult(text=text, tokens=cfg.gen_length, seconds=seconds, forward_passes=history.forward_passes,
                          sampler="ar" if ar else cfg.sampler, cache=cfg.cache)


def soft_mask_config(
    enabled: bool, source: Path | None, *, omega_s: float | None = None, omega_a: float | None = None,
    omega_b: float | None = None, k: int | None = None, fraction: float | None = None,
) -> SoftMaskConfig | None:
    """The soft-masking [P2] of `masktax generate`: None when off, else the weights of `source`
    (a directory with soft_mask.json) or the defaults, each overridden by a value given here."""
    if not enabled and source is None:
        if any(v is not None for v in (omega_s, omega_a, omega_b, k, fraction)):
            raise MasktaxError("--omega-s/-a/-b, --soft-k and --soft-fraction need --soft-mask or --soft-mask-from")
        return None
    base = SoftMaskConfig.from_checkpoint(source) if source is not None else None
    if base is None and omega_s is None:
        raise MasktaxError(
            "--soft-mask needs trained weights: pass --soft-mask-from DIR (holding soft_mask.json) or "
            "--omega-s VALUE (an untrained model's omega_s is ~0, i.e. off)"
        )
    base = base or SoftMaskConfig()
    return SoftMaskConfig(
        k=base.k if k is None else k,
        omega_s=base.omega_s if omega_s is None else omega_s,
        omega_a=base.omega_a if omega_a is None else omega_a,
        omega_b=base.omega_b if omega_b is None else omega_b,
        fraction=base.fraction if fraction is None else fraction,
    )


def speed_line(result: GenerateResult, sampler: str) -> str:
    """Tokens per second and forward passes per token (what `masktax generate` writes to stderr)."""
    per_token = result.forward_passes / max(result.tokens, 1)
    cache = "" if result.cache == "none" else f", cache {result.cache}"
    return (f"{result.tokens} tokens in {result.seconds:.2f} s ({result.tokens_per_second:.1f} tokens/s), "
            f"{result.forward_passes} forward passes ({per_token:.2f} per token), sampler {result.sampler or sampler}"
            f"{cache}")
