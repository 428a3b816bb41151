"""lm-eval's `generate_until` through masktax's samplers, batched, with stop sequences.

Requests are grouped by their generation settings (a task's `until`, `max_gen_toks`, `temperature`)
and, inside a group, sorted by prompt length and left-padded into batches (`masktax.samplers.left_pad`;
a model that ignores attention masks only batches equal lengths). An MDLM decodes a canvas of
`gen_length + extra_masks` masks with the chosen sampler (`SAMPLERS`): the mask knob [P1] makes
the model see N more masks while it decodes; the canvas is one block unless `block_length` is given
(then it must divide the canvas). Causal models decode greedily with transformers' `generate`
(extra_masks must be 0). The text is cut at the first EOS, then at the first stop sequence.

`sampler=block` (block-causal models: LLaDA2, SDAR/TraDo, Fast-dLLM v2; `samplers.block_diffusion`)
lays blocks out from position 0 and so decodes rows of equal prompt length only, as the published
samplers do: its batches hold prompts of one length, never padded (a prompt of a length of its own
is decoded alone), so each text equals the block sampler's on that prompt by itself. Its canvas is
`gen_length + extra_masks` too, but masks past the block being decoded are invisible to the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from masktax.errors import MasktaxError
from masktax.lmeval.args import ModelArgs
from masktax.models.loaded import LoadedModel
from masktax.probes.engine import plan_batches
from masktax.samplers import BLOCK_SAMPLER, SAMPLERS, decode, left_pad
from masktax.samplers.generate import GenerateConfig, soft_mask_config

DEFAULT_GEN_LENGTH = 256  # when neither model_args gen_length nor the task's max_gen_toks says


def sampler_kwargs(args: ModelArgs, gen_length: int, temperature: float, block_size: int | None = None) -> dict:
    """The sampler's keyword arguments for a canvas of gen_length + extra_masks positions (`block_size`:
    the model's attention blocks, which the block sampler needs)."""
    canvas = gen_length + args.extra_masks
    sm = soft_mask_config(args.soft_mask, None if args.soft_mask_from is None else Path(args.soft_mask_from))
    if args.sampler == BLOCK_SAMPLER:
        cfg = GenerateConfig(model=args.model, prompt="-", sampler=args.sampler, gen_length=canvas,
                             steps_per_block=args.steps_per_block, temperature=temperature, threshold=args.threshold,
                             remasking=args.remasking, cfg_scale=args.cfg_scale, soft_mask=sm)
        return cfg.resolved(block_size).sampler_kwargs()
    block = args.block_length or canvas
    if canvas % block:
        raise MasktaxError(f"the generation canvas ({gen_length} + {args.extra_masks} extra masks = {canvas}) is not a "
                           f"multiple of block_length {block}; pick extra_masks that keep it one, or drop block_length")
    steps = args.steps or canvas
    if args.sampler == "semi_ar" and steps % (canvas // block):
        raise MasktaxError(f"steps {steps} must be a multiple of the number of blocks ({canvas // block})")
    cfg = GenerateConfig(model=args.model, prompt="-", sampler=args.sampler, steps=steps, gen_length=canvas,
                         block_length=block, temperature=temperature, remasking=args.remasking, alg=args.alg,
                         threshold=args.threshold, cfg_scale=args.cfg_scale, soft_mask=sm)
    return cfg.sampler_kwargs()


def cut_at_stops(text: str, until: Sequence[str]) -> str:
    """The text before the earliest stop sequence (all of it when none occurs)."""
    cut = len(text)
    for stop in until:
        if stop:
            at = text.find(stop)
            if at != -1:
                cut = min(cut, at)
    return text[:cut]


def settings(gen_kwargs: dict, args: ModelArgs) -> tuple[tuple[str, ...], int, float]:
    """(stop sequences, gen_length, temperature) of one request."""
    kw = dict(gen_kwargs or {})
    until = kw.pop("until", None) or ()
    until = (until,) if isinstance(until, str) else tuple(until)
    gen_length = args.gen_length or int(kw.pop("max_gen_toks", DEFAULT_GEN_LENGTH))
    temperature = float(kw.pop("temperature", 0.0) or 0.0)
    if not kw.pop("do_sample", temperature > 0):
        temperature = 0.0
    return until, gen_length, temperature


def generate_texts(lm: LoadedModel, requests: Sequence[tuple[str, dict]], args: ModelArgs) -> list[str]:
    """One generated text per (context, gen_kwargs) request, in request order."""
    eos = [i for i in (lm.eos_id,) if i is not None]
    groups: dict[tuple, list[int]] = {}
    for i, (_, gen_kwargs) in enumerate(requests):
        groups.setdefault(settings(gen_kwargs, args), []).append(i)
    prompts = [list(lm.tokenizer.encode(ctx)) for ctx, _ in requests]
    out = [""] * len(requests)
    rows = args.batch_size if isinstance(args.batch_size, int) else (args.max_batch_size or 8)
    for (until, gen_length, temperature), members in groups.items():
        kwargs = None if lm.kind == "ar" else sampler_kwargs(args, gen_length, temperature, lm.block_size)
        budget = lm.max_length - (gen_length + args.extra_masks)
        lengths = [len(prompts[i]) for i in members]
        pad = lm.honours_attention_mask and (lm.kind == "ar" or args.sampler != BLOCK_SAMPLER)
        for batch in plan_batches(lengths, max_rows=rows, max_tokens=None, pad=pad):
            idx = [members[b] for b in batch]
            batch_prompts = [prompts[i][-budget:] if budget > 0 else prompts[i] for i in idx]
            if budget <= 0:
                raise MasktaxError(f"gen_length {gen_length} + extra_masks {args.extra_masks} fills the "
                                   f"{lm.max_length}-token context of '{lm.name}'")
            ids, attn = left_pad(batch_prompts, lm.pad_id if lm.pad_id is not None else eos[0] if eos else 0)
            ids, attn = ids.to(lm.device), attn.to(lm.device)
            if lm.kind == "ar":
                seqs = ar_generate(lm, ids, attn, gen_length)
            else:
                generator = torch.Generator(device=lm.device).manual_seed(args.seed)
                seqs = SAMPLERS[args.sampler](lm, ids, attention_mask=attn if bool((attn == 0).any()) else None,
                                              generator=generator, **kwargs)
            texts = decode(lm.tokenizer, seqs, ids.shape[1], stop_at_eos=True, eos_ids=eos)
            for i, text in zip(idx, texts, strict=True):
                out[i] = cut_at_stops(text, until)
    return out


@torch.no_grad()
def ar_generate(lm: LoadedModel, ids: torch.Tensor, attn: torch.Tensor, gen_length: int) -> torch.Tensor:
    """Greedy decoding of a causal LM with transformers' generate; `[b, lp + new]`."""
    pad = lm.pad_id if lm.pad_id is not None else lm.eos_id
    return lm.model.generate(input_ids=ids, attention_mask=attn, max_new_tokens=gen_length, do_sample=False,
                             pad_token_id=pad)
