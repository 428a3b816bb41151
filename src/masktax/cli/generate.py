"""`masktax generate`: decode text from an MDLM with any sampler, optionally with soft-masking and a cache
(`--cache prefix|dual`, Fast-dLLM; an AR model decodes left to right, `--cache prefix` exactly).

    masktax generate --model GSAI-ML/LLaDA-8B-Instruct --prompt "What is 7 * 8?" --format chat \\
        --sampler semi_ar --steps 64 --gen-length 64 --block-length 32
    masktax generate --model inclusionAI/LLaDA2.0-mini --prompt "What is 7 * 8?" --format chat \
        --sampler block --threshold 0.95 --steps-per-block 8 --cache prefix
    masktax generate --model inclusionAI/LLaDA2.1-mini --prompt "What is 7 * 8?" --threshold 0.7 --edit-threshold 0.5

`--sampler auto` (the default) runs block diffusion (`block`) on a block-causal model (LLaDA2,
SDAR/TraDo, Fast-dLLM v2) and semi_ar on any other MDLM.

On a terminal the block being decoded is redrawn after every step (masks shown as `_`); when
stdout is not a terminal only the final text is printed. Speed (tokens/s, forward passes per
token) goes to stderr, so `> out.txt` captures just the text. The work is
`masktax.samplers.generate`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from masktax.samplers.generate import GenerateConfig, read_prompt, run, soft_mask_config, speed_line


def generate(
    model: str = typer.Option(..., "--model", help="Card name (see `masktax models`), embedded name or checkpoint dir."),
    prompt: str | None = typer.Option(None, "--prompt", help="The prompt text."),
    prompt_file: Path | None = typer.Option(None, "--prompt-file", help="Read the prompt from this file."),
    format: str | None = typer.Option(None, "--format", help="base or chat (default: chat for instruct models)."),
    sampler: str = typer.Option("auto", "--sampler", help="semi_ar (LLaDA), dream, threshold (Fast-dLLM), block "
                                "(LLaDA2/SDAR block diffusion) or auto (block if block-causal, else semi_ar)."),
    steps: int | None = typer.Option(None, "--steps", help="Decoding steps for semi_ar / dream (default: gen length)."),
    steps_per_block: int | None = typer.Option(None, "--steps-per-block", help="block: at most this many steps "
                                               "per block (default: the block size)."),
    gen_length: int = typer.Option(128, "--gen-length", help="Tokens to generate."),
    block_length: int | None = typer.Option(None, "--block-length", help="Block size, semi_ar / threshold (default 32)."),
    temperature: float = typer.Option(0.0, "--temperature", help="0 = greedy."),
    remasking: str = typer.Option("low_confidence", "--remasking", help="semi_ar: low_confidence or random."),
    alg: str = typer.Option("maskgit_plus", "--alg", help="dream: maskgit_plus, topk_margin, entropy or origin."),
    threshold: float | None = typer.Option(None, "--threshold", help="threshold / block: commit every position "
                                           "this confident (default 0.9 / 0.95)."),
    edit_threshold: float | None = typer.Option(None, "--edit-threshold", help="block: LLaDA2.1 token editing, "
                                                "rewrite decoded tokens guessed anew above this (default: the "
                                                "card's, LLaDA2.1 0.9; 1 = off)."),
    max_post_steps: int | None = typer.Option(None, "--max-post-steps", help="block with editing: editing-only "
                                              "steps after a block's last mask (default 16)."),
    sub_block_size: int | None = typer.Option(None, "--sub-block-size", help="block: Fast-dLLM v2 sub-blocks of "
                                              "this size (default: the card's, Fast-dLLM v2 8; 0 = off)."),
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
    cache: str = typer.Option("none", "--cache", help="none, prefix or dual: Fast-dLLM's block KV caches "
                              "(approximate for MDLMs; exact for AR models and --sampler block)."),
) -> None:
    """Generate text with a masked diffusion LM (LLaDA, Dream, ...), optionally with soft-masking."""
    text = read_prompt(prompt, prompt_file)
    sm = soft_mask_config(soft_mask, soft_mask_from, omega_s=omega_s, omega_a=omega_a, omega_b=omega_b, k=soft_k,
                          fraction=soft_fraction)
    cfg = GenerateConfig(
        model=model, prompt=text, format=format, sampler=sampler, steps=steps, steps_per_block=steps_per_block,
        gen_length=gen_length, block_length=block_length, temperature=temperature, remasking=remasking, alg=alg,
        threshold=threshold, edit_threshold=edit_threshold, max_post_steps=max_post_steps,
        sub_block_size=sub_block_size, cfg_scale=cfg_scale, soft_mask=sm, seed=seed, device=device, dtype=dtype,
        trust_remote_code=trust_remote_code, mask_token_id=mask_token_id, stop_at_eos=stop_at_eos, cache=cache,
    )
    result = run(cfg, stream=sys.stdout if sys.stdout.isatty() else None)
    print(result.text)
    print(speed_line(result, cfg.sampler), file=sys.stderr)


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
