"""`unmask`: does multi-step decoding win back what the appended masks cost? ([P1] unmasking recovery)

The prompts are those of the mask-scaling sweep (`masks` probe: 10 relevant + 40 distractor
examples mixed, the prompt ends `Answer:[` + the answer mask + x extra masks). Instead of reading
the answer mask after one forward pass, the 1 + x masks are decoded with LLaDA's sampler
(`masktax.samplers.generate_semi_ar`, one block of gen_length = 1 + x) in

    S_eff = min(S, 1 + x) steps

choosing the positions to commit at random (`--order random`) or by highest confidence
(`--order confidence`, LLaDA's "low_confidence" remasking), and the token finally committed at the
answer position is scored (exact match, greedy). With at least as many masks as steps the masks
are split evenly over the S steps (the remainder to the first steps); with fewer masks than steps
one token is committed per step, so a decode never costs more forward passes than it has masks.
Forward passes per item are recorded (S_eff; 1 for the single-step numbers). The sampler never
commits the mask token itself (its logit is -inf), unlike the single-step argmax.

The single-step accuracy of the same items (series "single-step", exactly the `masks` probe) is
run in the same run dir, so every decoded series sits beside it. `--steps` takes a list (2,4,6
gives [P1]'s MA-loss metric): per series, the relative degradation over the mask sweep

    RD = (max_x acc(x) - min_x acc(x)) / max_x acc(x)

is reported, and per order its mean over the steps list ([P1]: averaged over 2, 4, 6 steps,
random order; LLaDA-8B Base 15.5%, Instruct 27.5%). `--soft-mask` decodes with soft-masking
([P2]) using the soft_mask.json in each model's directory, `--soft-mask-from DIR` one file for all.

Random order is seeded per batch (from the run seed and the batch's first item): the same seed
and `--batch-size` give identical results; another batch size gives another, equally valid draw.
AR models get the one-mask reference (the sweep appends tokens a causal model never sees).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from masktax.errors import MasktaxError
from masktax.models.loaded import LoadedModel
from masktax.probes import masks
from masktax.probes.base import ProbeItem, plan_batches, score_items, token_budget
from masktax.probes.config import ProbeConfig
from masktax.probes.extended import (
    ExtendedProbeSpec,
    ModelRunner,
    check_option_names,
    item_bar,
    parse_int_list,
    probe_runner,
    record_model,
    report_hooks,
    resolve_format,
)
from masktax.probes.items import encode_cell, item_seed
from masktax.probes.spec import REFERENCE, Cell
from masktax.results.store import RunStore

SINGLE = "single-step"
ORDERS = {"random": "random", "confidence": "low_confidence"}  # --order -> the sampler's remasking
OPTIONS = ("steps", "order", "soft_mask", "soft_mask_from")


@dataclass(frozen=True)
class UnmaskOptions:
    """The unmask probe's own flags (stored in config.json under "options")."""

    steps: tuple[int, ...] = (40,)  # decoding step budgets S ([P1]: 40; MA-loss metric: 2,4,6)
    order: tuple[str, ...] = ("random", "confidence")  # which positions each step commits
    soft_mask: bool = False  # soft-masking with each model's own soft_mask.json ([P2])
    soft_mask_from: str | None = None  # one soft_mask.json (or its directory) for every model

    def __post_init__(self) -> None:
        if not self.steps:
            raise MasktaxError("--steps is empty; give comma-separated integers such as 2,4,6")
        if not self.order:
            raise MasktaxError("--order is empty; choose random, confidence or both")
        for o in self.order:
            if o not in ORDERS:
                raise MasktaxError(f"--order '{o}' is unknown; choose one of {', '.join(ORDERS)}")
        if len(set(self.order)) != len(self.order):
            raise MasktaxError(f"--order has repeated values: {','.join(self.order)}")

    @classmethod
    def parse(cls, options: Mapping[str, object] | None) -> UnmaskOptions:
        given = check_option_names("unmask", options, OPTIONS)
        kw: dict = {}
        if "steps" in given:
            kw["steps"] = parse_int_list(given["steps"], "--steps", minimum=1)
        if "order" in given:
            value = given["order"]
            pieces = [p.strip() for p in value.split(",")] if isinstance(value, str) else list(value)
            if any(not p for p in pieces):
                raise MasktaxError(f"--order '{value}' has an empty entry; choose random, confidence or both")
            kw["order"] = tuple(pieces)
        if given.get("soft_mask"):
            kw["soft_mask"] = True
        if given.get("soft_mask_from") is not None:
            kw["soft_mask_from"] = str(given["soft_mask_from"])
        return cls(**kw)

    def to_dict(self) -> dict:
        d = asdict(self)
        return {**d, "steps": list(self.steps), "order": list(self.order)}

    def series(self) -> list[str]:
        """The decoded series, e.g. "random-40", in (order, steps) order."""
        return [series_name(o, s) for o in self.order for s in self.steps]


def series_name(order: str, steps: int) -> str:
    return f"{order}-{steps}"


def soft_mask_config(opts: UnmaskOptions, model: str):
    """The SoftMaskConfig for `model` (None without soft-masking)."""
    from masktax.samplers import SoftMaskConfig

    if opts.soft_mask_from is not None:
        return SoftMaskConfig.from_checkpoint(opts.soft_mask_from)
    if not opts.soft_mask:
        return None
    if not Path(model).is_dir():
        raise MasktaxError(
            f"--soft-mask reads soft_mask.json from the model's directory, but '{model}' is not a "
            "directory; pass --soft-mask-from DIR"
        )
    return SoftMaskConfig.from_checkpoint(model)


def soft_mask_dir(name: str, lm: LoadedModel) -> str:
    """Where --soft-mask looks for soft_mask.json: a fine-tuned model's adapter dir when it has one
    (a `masktax train-sm` run), else the (base) model's directory."""
    from masktax.samplers.soft_mask import SOFT_MASK_FILE

    tuned = lm.extra.get("adapter_dir")
    if tuned is not None and (Path(tuned) / SOFT_MASK_FILE).is_file():
        return str(tuned)
    return str(lm.extra.get("base_name", name))


def unmask_cells(grid: tuple, kind: str) -> list[Cell]:
    """The single-step cells (the masks sweep, series "single-step"); AR models: the reference."""
    if kind == "ar":
        return [Cell(series=REFERENCE, x=0)]
    return [Cell(series=SINGLE, x=x, suffix="masks", n_extra=x, size_hint=x) for x in grid]


def decode_batch(
    lm: LoadedModel, items: list[ProbeItem], *, steps: int, order: str, soft_mask, seed: int
) -> list[dict]:
    """Decode the 1 + x masks of equally long suffixes in min(steps, 1 + x) steps; one record per item."""
    from masktax.samplers import generate_semi_ar, left_pad

    gen_length = len(items[0].ids) - items[0].answer_pos
    if any(len(it.ids) - it.answer_pos != gen_length for it in items):
        raise ValueError("a decode batch must share its number of masks")
    pad_id = lm.pad_id if lm.pad_id is not None else (lm.eos_id or 0)
    ids, attention = left_pad([it.ids[: it.answer_pos] for it in items], pad_id)  # [b, lp], [b, lp]
    mask = None if bool(attention.all()) else attention
    s_eff = min(steps, gen_length)
    generator = torch.Generator(device=lm.device).manual_seed(item_seed(seed, "unmask", items[0].key))
    out, history = generate_semi_ar(
        lm, ids.to(lm.device), steps=s_eff, gen_length=gen_length, block_length=gen_length,
        remasking=ORDERS[order], mask_id=lm.mask_id, attention_mask=None if mask is None else mask.to(lm.device),
        soft_mask=soft_mask, generator=generator, return_history=True,
    )  # [b, lp + gen_length]
    lp = ids.shape[1]
    answer = out[:, lp].tolist()  # [b] the token committed at the answer position
    when = history.order()[:, lp].tolist()  # [b] the step that committed it
    return [{
        "model": it.model, "series": series_name(order, steps), "x": it.x, "dataset": it.dataset,
        "index": it.index, "suffix": "masks", "n_tokens": len(it.ids), "answer_pos": it.answer_pos,
        "answer_id": it.answer_id, "pred_id": int(answer[row]), "correct": bool(int(answer[row]) == it.answer_id),
        "order": order, "steps": s_eff, "forward_passes": history.forward_passes, "answer_step": int(when[row]),
    } for row, it in enumerate(items)]


def _batch_plan(lm: LoadedModel, items: list[ProbeItem], batch_size: int | str) -> list[list[int]]:
    lengths = [it.answer_pos for it in items]  # prompt lengths (the suffix is equal within a cell)
    if batch_size == "auto":
        rows, tokens = None, token_budget(lm, max(len(it.ids) for it in items))
    else:
        rows, tokens = int(batch_size), None
    return plan_batches(lengths, max_rows=rows, max_tokens=tokens, pad=lm.honours_attention_mask)


def run_model(
    store: RunStore, cfg: ProbeConfig, opts: UnmaskOptions, name: str, lm: LoadedModel, datasets: list, on_batch
) -> None:
    """Single-step scores, then every (order, steps) decode, of one model's pending items."""
    from masktax.probes.run import preflight

    if lm.kind == "uniform":
        raise MasktaxError(f"the unmask probe decodes masks, but '{name}' is a uniform-noise model without them")
    if lm.kind == "mdlm":
        lm.require_mask("the unmask probe")
    fmt = resolve_format(cfg.format, name, lm)
    sm = soft_mask_config(opts, soft_mask_dir(name, lm)) if lm.kind == "mdlm" else None
    cells = unmask_cells(cfg.grid, lm.kind)
    decoded = opts.series() if lm.kind == "mdlm" else []

    def encode(dataset, cell: Cell) -> list[ProbeItem]:
        return encode_cell(lm, dataset, cell, model=name, probe="unmask", seed=cfg.seed, fmt=fmt, n_items=cfg.n_items)

    preflight(lm, cells, datasets, encode)
    record_model(store, cfg, name, lm, {
        "format": fmt, "applicable": lm.kind == "mdlm", "series": [cells[0].series, *decoded],
        "soft_mask": None if sm is None else asdict(sm),
    })
    with item_bar(cfg, name, len(cells) * len(datasets) * cfg.n_items * (1 + len(decoded))) as bar:
        for cell in cells:
            for dataset in datasets:
                items = encode(dataset, cell)
                _single_step(store, cfg, lm, items, on_batch, bar)
                for order in opts.order if decoded else ():
                    for steps in opts.steps:
                        series = series_name(order, steps)
                        renamed = [_rename(it, series) for it in items]
                        _decode(store, cfg, lm, renamed, order, steps, sm, on_batch, bar)


def _rename(item: ProbeItem, series: str) -> ProbeItem:
    from dataclasses import replace

    return replace(item, series=series)


def _single_step(store: RunStore, cfg: ProbeConfig, lm: LoadedModel, items, on_batch, bar) -> None:
    bar.update(sum(store.is_done(it.key) for it in items))
    for records in score_items(lm, items, batch_size=cfg.batch_size, skip=lambda it: store.is_done(it.key)):
        records = [{**r, "steps": 1, "forward_passes": 1} for r in records]
        store.append(records)
        bar.update(len(records))
        if on_batch is not None:
            on_batch(items[0].model, records)


def _decode(store, cfg, lm, items, order, steps, sm, on_batch, bar) -> None:
    for batch in _batch_plan(lm, items, cfg.batch_size):
        batch_items = [items[i] for i in batch]
        pending = {it.key for it in batch_items if not store.is_done(it.key)}
        if pending:
            records = decode_batch(lm, batch_items, steps=steps, order=order, soft_mask=sm, seed=cfg.seed)
            records = [r for r, it in zip(records, batch_items, strict=True) if it.key in pending]
            store.append(records)
            if on_batch is not None:
                on_batch(batch_items[0].model, records)
        bar.update(len(batch_items))


def _prepare(cfg: ProbeConfig, options: Mapping[str, object] | None, on_batch) -> tuple[dict, ModelRunner]:
    opts = UnmaskOptions.parse(options)

    def one(store: RunStore, name: str, lm: LoadedModel, datasets: list) -> None:
        run_model(store, cfg, opts, name, lm, datasets, on_batch)

    return opts.to_dict(), one


rebuild, render = report_hooks("unmask")
run = probe_runner("unmask", _prepare, rebuild)

SPEC = ExtendedProbeSpec(
    name="unmask",
    description="accuracy vs extra masks when the masks are decoded in S steps (random or confidence order)",
    x_label="extra masks after the answer position",
    x_meaning=(
        "x = number of EXTRA masks after the answer mask, as in the masks probe; the 1 + x masks are decoded "
        "in min(S, 1 + x) steps and the token committed at the answer position is scored"
    ),
    default_grid=masks.GRID,
    x_values="int",
    cells=unmask_cells,
    plot="sweep",
    appends_after_answer=True,
    run=run,
    rebuild=rebuild,
    render=render,
    options=OPTIONS,
)
