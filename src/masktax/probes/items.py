"""What a single-pass probe scores: `Cell`s (prompt layouts) turned into `ProbeItem`s.

A `Cell` is one prompt layout; applied to the first n test points of every dataset it gives the
probe's items at one (series, x). What fills the answer position depends on the model kind: the
mask (MDLM), a canvas token (uniform-noise model: noise is a random token, seeded per item) or a
placeholder (AR: the position after `Answer:[` is invisible to a causal model).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import torch

from masktax.errors import MasktaxError
from masktax.models.diffusion_gemma import DiffusionGemmaProbe, canvas_tokens, model_canvas_length
from masktax.models.loaded import LoadedModel
from masktax.probes.engine import ProbeItem
from masktax.prompts.appendix import encode_suite_item
from masktax.prompts.encode import EncodedItem, encode_item
from masktax.prompts.render import arrange
from masktax.tasks.appendix import TaskSet, order_context
from masktax.tasks.suite import N_DISTRACTOR_CONTEXT, N_RELEVANT_CONTEXT


@dataclass(frozen=True)
class Cell:
    """One prompt layout (see masktax.prompts.encode.encode_item for the suffix kinds).

    suffix: "one_mask" (`Answer:[<mask>].`), "masks" (answer mask + n_extra masks, canvas tokens for
    uniform-noise models) or "filler" (answer mask + n_extra filler tokens " .").
    mask_fraction: when set, the prompt gets max(1, round(f * input length)) masks in all
    (n_extra = that - 1), the input length being the tokens before the answer position.
    block_offset: for a block-causal model (LLaDA2, SDAR, Fast-dLLM v2), newlines are prepended so
    that the scoring position (the answer's, or the one before it when shifted) sits at this offset
    in its block; ignored for other models (`place_in_block`).
    """

    series: str
    x: int | str
    suffix: str = "one_mask"
    n_extra: int = 0
    mask_fraction: float | None = None
    arrangement: str = "mixed"
    block_position: int | None = None
    n_distractor: int = N_DISTRACTOR_CONTEXT
    query_position: str = "right"
    size_hint: int = 0  # larger = longer prompts; the preflight length check encodes the largest
    block_offset: int | None = None


def item_seed(seed: int, *parts: object) -> int:
    """A stable 63-bit seed from the run seed and an item's key (same on every machine)."""
    return (seed * 1_000_003 + zlib.crc32(repr(parts).encode())) % (2**63)


def answer_slot_id(lm: LoadedModel, probe: str) -> int:
    """The id placed at the answer position (and used for appended masks): the mask for MDLMs."""
    if lm.kind == "mdlm":
        return lm.require_mask(f"the {probe} probe")
    if lm.mask_id is not None:
        return lm.mask_id
    for candidate in (lm.pad_id, lm.eos_id):
        if candidate is not None:
            return candidate
    return 0


def canvas_ids(lm: LoadedModel, n: int, generator: torch.Generator) -> list[int]:
    """n canvas tokens of a uniform-noise model: DiffusionGemma's own draw (uniform over its text
    vocabulary, as its sampler does); any other uniform-noise model: uniform over its embedding rows."""
    if isinstance(lm.model, DiffusionGemmaProbe):
        return canvas_tokens(lm, n, generator).tolist()
    vocab = lm.embedding_weight().shape[0]
    return torch.randint(0, vocab, (n,), generator=generator).tolist()  # [n]


def uniform_layout(lm: LoadedModel, cell: Cell) -> tuple[str, int]:
    """(suffix, n_extra) of a uniform-noise model's cell. Its canvas is the tail of the prompt from the
    answer position on (the block its decoder denoises after the encoded prompt), so nothing may follow
    it: one-mask layouts get the model's own canvas (config `canvas_length` tokens of noise, the answer
    first) instead of `<mask>].`; masks become canvas tokens; filler keeps its dots inside the canvas."""
    if cell.query_position != "right":
        raise MasktaxError(f"'{lm.name}' is a uniform-noise model whose canvas ends the prompt, so the test "
                           f"question cannot sit at the {cell.query_position}; use --grid right")
    if cell.suffix == "one_mask":
        return "canvas", model_canvas_length(lm) - 1
    return ("canvas" if cell.suffix == "masks" else cell.suffix), cell.n_extra


def place_in_block(lm: LoadedModel, ids: list[int], answer_pos: int, offset: int | None) -> tuple[list[int], int]:
    """(ids, answer_pos) with k newline tokens prepended, k the fewest (0 .. B-1) that put the scoring
    position at `offset` in its block of B (blocks count from the first token); unchanged when the
    model is not block-causal or no offset is asked for."""
    block = lm.block_size
    if offset is None or not block:
        return ids, answer_pos
    if offset >= block:
        raise MasktaxError(f"--block-offset {offset} is not below the block size {block} of '{lm.name}'")
    k = (offset - (answer_pos - int(lm.shift))) % block
    newline = lm.tokenizer.encode("\n", add_special_tokens=False) if lm.tokenizer is not None else []
    fill = newline[-1] if newline else answer_slot_id(lm, "block placement")
    return [fill] * k + ids, answer_pos + k


def round_half_up(v: float) -> int:
    return int(math.floor(v + 0.5))


def encode_cell(
    lm: LoadedModel, dataset, cell: Cell, *, model: str, probe: str, seed: int, fmt: str, n_items: int
) -> list[ProbeItem]:
    """The items of one cell for one dataset: its first `n_items` test points."""
    if isinstance(dataset, TaskSet):  # an appendix suite (masktax.tasks.registry): its own prompts
        def encode(query, **kw) -> EncodedItem:
            context = order_context(dataset, query, cell.arrangement, cell.query_position, seed=seed)
            return encode_suite_item(lm.tokenizer, dataset, context, query, **kw)
    else:
        context = arrange(
            dataset, cell.arrangement, seed=seed, n_relevant=N_RELEVANT_CONTEXT, n_distractor=cell.n_distractor,
            block_position=cell.block_position,
        )

        def encode(query, **kw) -> EncodedItem:
            return encode_item(lm.tokenizer, context, query, **kw)

    slot = answer_slot_id(lm, probe)
    uniform = lm.kind == "uniform"
    suffix, cell_extra = uniform_layout(lm, cell) if uniform else (cell.suffix, cell.n_extra)
    items = []
    for index, query in enumerate(dataset.tests[:n_items]):
        common = dict(fmt=fmt, query_position=cell.query_position, mask_id=slot)
        n_extra = cell_extra
        if cell.mask_fraction is not None:
            base = encode(query, suffix="masks", n_extra=0, **common)
            n_extra = max(1, round_half_up(cell.mask_fraction * base.answer_pos)) - 1
        gen = None
        if uniform:
            gen = torch.Generator().manual_seed(item_seed(seed, dataset.name, index, cell.series, cell.x))
        canvas = canvas_ids(lm, n_extra + 1, gen) if suffix == "canvas" else None
        enc = encode(query, suffix=suffix, n_extra=n_extra, canvas_ids=canvas, **common)
        ids = list(enc.ids)
        if uniform and suffix != "canvas":
            ids[enc.answer_pos] = canvas_ids(lm, 1, gen)[0]  # noise, not a mask, at the answer
        ids, answer_pos = place_in_block(lm, ids, enc.answer_pos, cell.block_offset)
        items.append(ProbeItem(
            model=model, series=cell.series, x=cell.x, dataset=dataset.name, index=index, ids=tuple(ids),
            answer_pos=answer_pos, answer_id=enc.answer_id, letter_ids=tuple(enc.letter_ids),
            suffix=suffix,
        ))
    return items
