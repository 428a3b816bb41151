"""`attribution`: where does the predicted answer look? Gradient attribution with masks appended ([P1]).

For each item the prompt ends `Answer:[` + the answer position + n extra masks (`--n-masks`, default
49: 50 masks in all after `Answer:[`, the paper's "50 masks appended"; the masks probe's x). The
score of input token i is

    s_i = || d z_{a, y} / d e_i ||_2,    y = argmax_v z_{a, v}

the L2 norm of the gradient of the predicted answer token's (aligned) logit at the answer position
a with respect to token i's input embedding, computed with the weights frozen (see
masktax.probes.attribution_core). Normalisation, per example: n_i = s_i / max_j s_j over ALL its
positions (prompt, answer position and masks), so every n_i lies in [0, 1]. Groups, per example
the mean of n_i over: "masks" (the n appended masks after the answer position), "last50" (the 50
prompt tokens just before the answer position, i.e. the last 50 non-mask tokens), "nonmask" (every
prompt token), "answer" (the answer position itself). Reported per model as mean +- std over
examples ([P1] table layout: rows models, columns masks / last 50 / all non-mask; LLaDA-8B Base
0.234 / 0.005 / 0.005, Dream-7B Base 0.282 / 0.012 / 0.005).

Setup ([P1]: 10 relevant + 40 distractor examples mixed, 30 random orderings, 20 test questions
per task): per dataset, `--orderings` shuffles of the context (ordering 0 is the arrangement every
other probe uses, ordering k > 0 a shuffle seeded from (seed, k)) times its first `--questions`
test points (default 10, capped by `--n-items`). The 16 datasets pair each of the 8 relevant tasks
with 2 distractor tasks, so the default gives 20 questions per task: 8 x 20 x 30 = 4800 items.

For an AR model the answer logit comes from the hidden state before the answer position, so the
answer position and the appended masks get exactly zero attribution: they are invisible to it.
Uniform-noise models get canvas tokens in place of the masks. Batches are smaller than for
inference (a backward keeps activations): a quarter of the engine's token budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

import torch

from masktax.models.loaded import LoadedModel
from masktax.probes.attribution_core import LAST_N, attribution_scores, group_means, normalise, pad_batch
from masktax.probes.base import ProbeItem, check_lengths, plan_batches, token_budget
from masktax.probes.config import ProbeConfig
from masktax.probes.extended import (
    ExtendedProbeSpec,
    ModelRunner,
    check_option_names,
    item_bar,
    parse_int,
    probe_runner,
    record_model,
    report_hooks,
    resolve_format,
)
from masktax.probes.items import answer_slot_id, encode_cell
from masktax.probes.spec import Cell
from masktax.results.store import RunStore

SERIES = "attribution"
OPTIONS = ("n_masks", "orderings", "questions")
PROFILE_BIN = 8  # positions per bin of the stored right-aligned profile
BACKWARD_SHARE = 4  # a backward batch gets 1/4 of the inference token budget


@dataclass(frozen=True)
class AttributionOptions:
    """The attribution probe's own flags (stored in config.json under "options")."""

    n_masks: int = 49  # extra masks after the answer mask: 50 masks in all, as in [P1]
    orderings: int = 30  # random orderings of the 50 in-context examples ([P1]: 30)
    questions: int = 10  # test points per dataset (x 2 datasets per task = [P1]'s 20 per task)

    @classmethod
    def parse(cls, options: Mapping[str, object] | None) -> AttributionOptions:
        given = check_option_names("attribution", options, OPTIONS)
        kw = {}
        if "n_masks" in given:
            kw["n_masks"] = parse_int(given["n_masks"], "--n-masks", minimum=0)
        if "orderings" in given:
            kw["orderings"] = parse_int(given["orderings"], "--orderings", minimum=1)
        if "questions" in given:
            kw["questions"] = parse_int(given["questions"], "--questions", minimum=1)
        return cls(**kw)


def ordering_seed(seed: int, ordering: int) -> int:
    """The arrangement seed of ordering k: the run seed itself for k = 0 (every probe's arrangement)."""
    from masktax.tasks.suite import derived_seed

    return seed if ordering == 0 else derived_seed(seed, "attribution-ordering", ordering)


def attribution_cells(grid: tuple | None, kind: str) -> list[Cell]:
    """The prompt layout: the answer position plus the default 49 extra masks (canvas tokens if uniform)."""
    n = AttributionOptions().n_masks
    return [Cell(series=SERIES, x=n, suffix="masks", n_extra=n, size_hint=n)]


def build_items(lm: LoadedModel, cfg: ProbeConfig, opts: AttributionOptions, name: str, dataset, fmt: str) -> list:
    """One dataset's items: orderings x questions, index = ordering * questions + question."""
    n_q = min(opts.questions, cfg.n_items)
    cell = Cell(series=SERIES, x=opts.n_masks, suffix="masks", n_extra=opts.n_masks)
    items = []
    for k in range(opts.orderings):
        encoded = encode_cell(lm, dataset, cell, model=name, probe="attribution",
                              seed=ordering_seed(cfg.seed, k), fmt=fmt, n_items=n_q)
        items += [replace(it, index=k * n_q + it.index) for it in encoded]
    return items


def profile(norm: list[float], bin_size: int = PROFILE_BIN) -> list[float]:
    """Mean normalised score per bin of positions counted from the right end (bin 0 = the last tokens)."""
    rev = norm[::-1]
    return [round(sum(rev[i:i + bin_size]) / len(rev[i:i + bin_size]), 6) for i in range(0, len(rev), bin_size)]


def score_batch(lm: LoadedModel, items: list[ProbeItem], n_masks: int, n_questions: int, example: bool) -> list[dict]:
    """Attribution records of one batch (the first one carries the full example when `example`)."""
    pad_id = lm.pad_id if lm.pad_id is not None else (lm.eos_id or 0)
    ids, mask = pad_batch([it.ids for it in items], pad_id)  # [b, l], [b, l] or None
    pos = torch.tensor([it.answer_pos for it in items], device=lm.device)  # [b]
    scores, pred = attribution_scores(
        lm, ids.to(lm.device), pos, None if mask is None else mask.to(lm.device)
    )  # [b, l], [b]
    records = []
    for row, it in enumerate(items):
        raw = scores[row, : len(it.ids)]  # [l]
        norm = normalise(raw).tolist()
        groups = group_means(norm, it.answer_pos, n_masks)
        record = {
            "model": it.model, "series": it.series, "x": it.x, "dataset": it.dataset, "index": it.index,
            "ordering": it.index // n_questions, "question": it.index % n_questions, "suffix": it.suffix,
            "n_tokens": len(it.ids), "answer_pos": it.answer_pos, "answer_id": it.answer_id,
            "pred_id": int(pred[row]), "correct": bool(int(pred[row]) == it.answer_id),
            "max_score": float(raw.max()), "groups": groups, "profile": profile(norm),
        }
        if example and row == 0:
            tokens = lm.tokenizer.convert_ids_to_tokens(list(it.ids)) if lm.tokenizer is not None else None
            record["example"] = {"tokens": tokens, "scores": [round(v, 6) for v in norm]}
        records.append(record)
    return records


def run_model(store: RunStore, cfg: ProbeConfig, opts: AttributionOptions, name: str, lm: LoadedModel,
              datasets: list, on_batch) -> None:
    """Score every pending item of one model (items of one dataset batched together)."""
    answer_slot_id(lm, "attribution")  # an MDLM without a mask token: error before any compute
    fmt = resolve_format(cfg.format, name, lm)
    per_dataset = [build_items(lm, cfg, opts, name, d, fmt) for d in datasets]
    for items in per_dataset:
        check_lengths(lm, items)
    record_model(store, cfg, name, lm, {"format": fmt, "applicable": True, "series": [SERIES]})
    n_q = min(opts.questions, cfg.n_items)
    first_key = per_dataset[0][0].key if per_dataset and per_dataset[0] else None
    with item_bar(cfg, name, sum(len(items) for items in per_dataset)) as bar:
        for items in per_dataset:
            for batch in _plan(lm, items, cfg.batch_size):
                batch_items = [items[i] for i in batch]
                pending = [it for it in batch_items if not store.is_done(it.key)]
                if pending:
                    example = pending[0].key == first_key
                    records = score_batch(lm, pending, opts.n_masks, n_q, example)
                    store.append(records)
                    if on_batch is not None:
                        on_batch(name, records)
                bar.update(len(batch_items))


def _plan(lm: LoadedModel, items: list[ProbeItem], batch_size: int | str) -> list[list[int]]:
    """Batches (a function of the items only, so resume is exact): the sorting puts the example first."""
    lengths = [len(it.ids) for it in items]
    if batch_size == "auto" and lm.device.type == "cuda":
        from masktax.models.batching import auto_batch_size

        rows, tokens = auto_batch_size(lm, max(lengths), backward=True, full_logits=False), None  # from free memory
    elif batch_size == "auto":
        rows, tokens = None, max(max(lengths), token_budget(lm, max(lengths)) // BACKWARD_SHARE)
    else:
        rows, tokens = int(batch_size), None
    batches = plan_batches(lengths, max_rows=rows, max_tokens=tokens, pad=lm.honours_attention_mask)
    return [sorted(b) for b in sorted(batches, key=min)]


def _prepare(cfg: ProbeConfig, options: Mapping[str, object] | None, on_batch) -> tuple[dict, ModelRunner]:
    opts = AttributionOptions.parse(options)

    def one(store: RunStore, name: str, lm: LoadedModel, datasets: list) -> None:
        run_model(store, cfg, opts, name, lm, datasets, on_batch)

    return asdict(opts), one


rebuild, render = report_hooks("attribution")
run = probe_runner("attribution", _prepare, rebuild)

SPEC = ExtendedProbeSpec(
    name="attribution",
    description="gradient attribution of the predicted answer logit to every input token, masks appended",
    x_label="",
    x_meaning=f"x = --n-masks, the extra masks after the answer mask; groups: masks, last {LAST_N} non-mask, all non-mask",
    default_grid=None,
    x_values=None,
    cells=attribution_cells,
    plot="single",
    run=run,
    rebuild=rebuild,
    render=render,
    options=OPTIONS,
)
