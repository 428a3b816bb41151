"""The probe suite's one-mask accuracy of a model while it trains (what the embedded models target).

The curriculum's gates measure the training distribution (all rule families, shorter contexts in
early stages); the goal is the suite's accuracy ([P1]: 10 relevant + 40 distractor examples, mixed,
`Answer:[<mask>].`). This scores the first `n_items` test points of each of the 16 datasets with the
same code path as `masktax probe accuracy` (items.encode_cell + engine.score_items), on a model that
is still a bare module in the training loop.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn

from masktax.models.loaded import LoadedModel


@lru_cache(maxsize=4)
def _suite(seed: int, n_items: int) -> tuple:
    from masktax.tasks.suite import build_suite

    return tuple(build_suite(seed=seed, n_test=n_items))


@torch.no_grad()
def suite_accuracy(
    model: nn.Module,
    tokenizer,
    *,
    causal: bool,
    shift: bool,
    mask_id: int,
    eos_id: int,
    max_length: int,
    n_items: int = 3,
    seed: int = 0,
) -> float:
    """Mean over the 16 datasets of the greedy full-vocabulary accuracy with one mask (AR: next token)."""
    from masktax.probes import accuracy
    from masktax.probes.engine import score_items
    from masktax.probes.items import encode_cell

    kind = "ar" if causal else "mdlm"
    lm = LoadedModel(
        name="training", model=model, tokenizer=tokenizer, kind=kind, mask_id=mask_id, shift=causal or shift,
        max_length=max_length, pad_id=eos_id, eos_id=eos_id, extra={"position_ids": causal},
    )
    was_training = model.training
    model.eval()
    try:
        items = [
            item
            for dataset in _suite(seed, n_items)
            for cell in accuracy.cells(accuracy.Options(), kind)
            for item in encode_cell(lm, dataset, cell, model="training", probe="accuracy", seed=seed,
                                    fmt="base", n_items=n_items)
        ]
        per: dict[str, list[bool]] = {}
        for batch in score_items(lm, items):
            for record in batch:
                per.setdefault(record["dataset"], []).append(bool(record["correct"]))
    finally:
        model.train(was_training)
    return sum(sum(v) / len(v) for v in per.values()) / len(per)
