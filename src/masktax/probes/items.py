"""Turning (lm, dataset, cell) into `ProbeItem`s via masktax.prompts.

What fills the answer position depends on the model kind: the mask (MDLM), a canvas token
(uniform-noise model: noise is a random token, seeded per item) or a placeholder (AR: invisible).
"""

from __future__ import annotations

import math
import zlib

import torch

from masktax.models.loaded import LoadedModel
from masktax.probes.base import ProbeItem
from masktax.probes.spec import N_RELEVANT, Cell


def item_seed(seed: int, *parts: object) -> int:
    """A stable 63-bit seed from the run seed and an item's key (same on every machine)."""
    return (seed * 1_000_003 + zlib.crc32(repr(parts).encode())) % (2**63)


def canvas_ids(lm: LoadedModel, n: int, generator: torch.Generator) -> list[int]:
    """n canvas tokens for a uniform-noise model: masktax.models.canvas_tokens when available,
    else tokens drawn uniformly from the vocabulary."""
    try:
        from masktax.models import canvas_tokens
    except ImportError:
        canvas_tokens = None
    if canvas_tokens is not None:
        return [int(t) for t in canvas_tokens(lm, n, generator)]
    vocab = lm.embedding_weight().shape[0]
    return torch.randint(0, vocab, (n,), generator=generator).tolist()  # [n]


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


def round_half_up(v: float) -> int:
    return int(math.floor(v + 0.5))


def encode_cell(
    lm: LoadedModel,
    dataset,
    cell: Cell,
    *,
    model: str,
    probe: str,
    seed: int,
    fmt: str,
    n_items: int,
) -> list[ProbeItem]:
    """The items of one cell for one dataset: its first `n_items` test points."""
    from masktax.prompts.encode import encode_item
    from masktax.prompts.render import arrange

    context = arrange(
        dataset, cell.arrangement, seed=seed, n_relevant=N_RELEVANT, n_distractor=cell.n_distractor,
        block_position=cell.block_position,
    )
    slot = answer_slot_id(lm, probe)
    uniform = lm.kind == "uniform"
    suffix = "canvas" if uniform and cell.suffix == "masks" else cell.suffix
    items = []
    for index, query in enumerate(dataset.tests[:n_items]):
        common = dict(fmt=fmt, query_position=cell.query_position, mask_id=slot)
        n_extra = cell.n_extra
        if cell.mask_fraction is not None:
            base = encode_item(lm.tokenizer, context, query, suffix="masks", n_extra=0, **common)
            n_extra = max(1, round_half_up(cell.mask_fraction * base.answer_pos)) - 1
        gen = None
        if uniform:
            gen = torch.Generator().manual_seed(item_seed(seed, dataset.name, index, cell.series, cell.x))
        canvas = canvas_ids(lm, n_extra + 1, gen) if suffix == "canvas" else None
        enc = encode_item(
            lm.tokenizer, context, query, suffix=suffix, n_extra=n_extra, canvas_ids=canvas, **common
        )
        ids = list(enc.ids)
        if uniform and suffix != "canvas":
            ids[enc.answer_pos] = canvas_ids(lm, 1, gen)[0]  # noise, not a mask, at the answer
        items.append(ProbeItem(
            model=model, series=cell.series, x=cell.x, dataset=dataset.name, index=index, ids=tuple(ids),
            answer_pos=enc.answer_pos, answer_id=enc.answer_id, letter_ids=tuple(enc.letter_ids),
            suffix=suffix,
        ))
    return items
