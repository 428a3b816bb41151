"""`masktax generate`: decode text from an MDLM with any sampler, optionally with soft-masking.

    masktax generate --model GSAI-ML/LLaDA-8B-Instruct --prompt "What is 7 * 8?" --format chat \\
        --sampler semi_ar --steps 64 --gen-length 64 --block-length 32

On a terminal the block being decoded is redrawn after every step (masks shown as `_`); when
stdout is not a terminal only the final text is printed. Speed (tokens/s, forward passes per
token) goes to stderr, so `> out.txt` captures just the text.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import typer

from masktax.errors import MasktaxError

MASK_PLACEHOLDER = "_"
FORMATS = ("base", "chat")


@dataclass(frozen=True)
class GenerateConfig:
    """Everything `masktax generate` needs; the CLI builds it, `run` executes it."""

    model: str  # card name, embedded name or checkpoint directory
    prompt: str  # the user text (read from --prompt-file by the CLI)
    format: str | None = None  # "base" or "chat"; None = chat for instruct cards, else base
    sampler: str = "semi_ar"  # a key of masktax.samplers.SAMPLERS
    steps: int | None = None  # semi_ar / dream steps; None = gen_length
    gen_length: int = 128  # tokens to generate
    block_length: int | None = None  # semi_ar / threshold block; None = min(32, gen_length)
    temperature: float = 0.0
    remasking: str = "low_confidence"  # semi_ar only
    alg: str = "maskgit_plus"  # dream only
    threshold: float = 0.9  # threshold only
    cfg_scale: float = 0.0  # semi_ar only
    soft_mask: object | None = None  # a SoftMaskConfig, or None
    seed: int = 0
    device: str | None = None
    dtype: str | None = None
    trust_remote_code: bool = False
    mask_token_id: int | None = None
    stop_at_eos: bool = True

    def __post_init__(self) -> None:
        from masktax.samplers import SAMPLERS

        if self.sampler not in SAMPLERS:
            raise MasktaxError(f"unknown sampler '{self.sampler}'; choose one of {', '.join(SAMPLERS)}")
        if self.format is not None and self.format not in FORMATS:
            raise MasktaxError(f"unknown format '{self.format}'; choose base or chat")
        if not self.prompt.strip():
            raise MasktaxError("the prompt is empty")
        if self.cfg_scale > 0 and self.sampler != "semi_ar":
            raise MasktaxError("--cfg-scale is only supported by the semi_ar sampler")
        if self.remasking != "low_confidence" and self.sampler != "semi_ar":
            raise MasktaxError("--remasking is only supported by the semi_ar sampler")

    def sampler_kwargs(self) -> dict:
        """Keyword arguments of the chosen sampler function (beyond model and prompt ids)."""
        steps = self.steps if self.steps is not None else self.gen_length
        block = self.block_length if self.block_length is not None else min(32, self.gen_length)
        common = {"gen_length": self.gen_length, "temperature": self.temperature, "soft_mask": self.soft_mask}
        if self.sampler == "semi_ar":
            return {**common, "steps": steps, "block_length": block, "remasking": self.remasking,
                    "cfg_scale": self.cfg_scale}
        if self.sampler == "dream":
            return {**common, "steps": steps, "alg": self.alg}
        return {**common, "block_length": block, "threshold": self.threshold}


@dataclass(frozen=True)
class GenerateResult:
    text: str
    tokens: int  # generated positions decoded
    seconds: float
    forward_passes: int

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("inf")


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
    import torch

    from masktax.models import load
    from masktax.samplers import SAMPLERS, decode

    device = None if cfg.device in (None, "auto") else cfg.device
    lm = load(cfg.model, device=device, dtype=cfg.dtype, trust_remote_code=cfg.trust_remote_code,
                   mask_token_id=cfg.mask_token_id)
    mask_id = lm.require_mask("masktax generate")
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
        out, history = SAMPLERS[cfg.sampler](
            lm, prompt_ids, generator=generator, return_history=True, on_step=view, **cfg.sampler_kwargs()
        )
    finally:
        if view is not None:
            view.clear()
    seconds = time.perf_counter() - t0
    eos = [i for i in (lm.eos_id,) if i is not None]
    text = decode(lm.tokenizer, out, len(ids), stop_at_eos=cfg.stop_at_eos, eos_ids=eos)[0]
    return GenerateResult(text=text, tokens=cfg.gen_length, seconds=seconds, forward_passes=history.forward_passes)


def _soft_mask_config(enabled: bool, source: Path | None, omega_s, omega_a, omega_b, k, fraction):
    from masktax.samplers import SoftMaskConfig

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


def generate(
    model: str = typer.Option(..., "--model", help="Card name (see `masktax models`), embedded name or checkpoint dir."),
    prompt: str | None = typer.Option(None, "--prompt", help="The prompt text."),
    prompt_file: Path | None = typer.Option(None, "--prompt-file", help="Read the prompt from this file."),
    format: str | None = typer.Option(None, "--format", help="base or chat (default: chat for instruct models)."),
    sampler: str = typer.Option("semi_ar", "--sampler", help="semi_ar (LLaDA), dream or threshold (Fast-dLLM)."),
    steps: int | None = typer.Option(None, "--steps", help="Decoding steps for semi_ar / dream (default: gen length)."),
    gen_length: int = typer.Option(128, "--gen-length", help="Tokens to generate."),
    block_length: int | None = typer.Option(None, "--block-length", help="Block size, semi_ar / threshold (default 32)."),
    temperature: float = typer.Option(0.0, "--temperature", help="0 = greedy."),
    remasking: str = typer.Option("low_confidence", "--remasking", help="semi_ar: low_confidence or random."),
    alg: str = typer.Option("maskgit_plus", "--alg", help="dream: maskgit_plus, topk_margin, entropy or origin."),
    threshold: float = typer.Option(0.9, "--threshold", help="threshold: commit every position this confident."),
    cfg_scale: float = typer.Option(0.0, "--cfg-scale", help="semi_ar: classifier-free guidance scale."),
    soft_mask: bool = typer.Option(False, "--soft-mask", help="Soft-masking [P2] with --omega-* values."),
    omega_s: float | None = typer.Option(None, "--omega-s", help="Soft-masking scale in [0, 1]."),
    omega_a: float | None = typer.Option(None, "--omega-a", help="Soft-masking steepness > 0 (default 6.66)."),
    omega_b: float | None = typer.Option(None, "--omega-b", help="Soft-masking centre <= 0 (default -0.75)."),
    soft_k: int | None = typer.Option(None, "--soft-k", help="Soft-masking top-k (default 3)."),
    soft_fraction: float | None = typer.Option(None, "--soft-fraction", help="Soft-mask the first part (0.8)."),
    soft_mask_from: Path | None = typer.Option(None, "--soft-mask-from", help="Directory with soft_mask.json."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling noise."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1, ..."),
    dtype: str | None = typer.Option(None, "--dtype", help="float32, bfloat16 or float16 (default: bf16 on CUDA)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Allow the checkpoint's own code."),
    mask_token_id: int | None = typer.Option(None, "--mask-token-id", help="Mask id when the tokenizer has none."),
    stop_at_eos: bool = typer.Option(True, "--stop-at-eos/--keep-eos", help="Cut the text at the first EOS."),
) -> None:
    """Generate text with a masked diffusion LM (LLaDA, Dream, ...), optionally with soft-masking."""
    if (prompt is None) == (prompt_file is None):
        raise MasktaxError("pass exactly one of --prompt and --prompt-file")
    if prompt_file is not None:
        if not prompt_file.is_file():
            raise MasktaxError(f"prompt file '{prompt_file}' does not exist")
        prompt = prompt_file.read_text()
    sm = _soft_mask_config(soft_mask, soft_mask_from, omega_s, omega_a, omega_b, soft_k, soft_fraction)
    cfg = GenerateConfig(
        model=model, prompt=prompt, format=format, sampler=sampler, steps=steps, gen_length=gen_length,
        block_length=block_length, temperature=temperature, remasking=remasking, alg=alg, threshold=threshold,
        cfg_scale=cfg_scale, soft_mask=sm, seed=seed, device=device, dtype=dtype,
        trust_remote_code=trust_remote_code, mask_token_id=mask_token_id, stop_at_eos=stop_at_eos,
    )
    result = run(cfg, stream=sys.stdout if sys.stdout.isatty() else None)
    print(result.text)
    per_token = result.forward_passes / max(result.tokens, 1)
    print(
        f"{result.tokens} tokens in {result.seconds:.2f} s ({result.tokens_per_second:.1f} tokens/s), "
        f"{result.forward_passes} forward passes ({per_token:.2f} per token), sampler {cfg.sampler}",
        file=sys.stderr,
    )


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
