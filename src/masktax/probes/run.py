"""`run_probe(cfg)`: load each model, build the probe's items, score them, store and report.

Work is done in chunks of consecutive (cell, dataset) units of at most CHUNK_ITEMS items, so memory
stays small at the paper's scale (16 datasets x 1000 items x 9 grid points) while batches fill up
even with few items per dataset. Finished items are skipped on resume; the batch plan of a chunk
depends only on the plan, so a resumed run equals an uninterrupted one exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from masktax.errors import MasktaxError
from masktax.models.loaded import LoadedModel
from masktax.probes import PROBES
from masktax.probes.base import check_lengths, score_items
from masktax.probes.config import ProbeConfig
from masktax.probes.items import answer_slot_id, encode_cell
from masktax.probes.loading import each_model, item_bar, load_adapter, record_model, resolve_format
from masktax.probes.spec import Cell
from masktax.results.store import RunStore, item_key

OnBatch = Callable[[str, list[dict]], None]
CHUNK_ITEMS = 1024  # items encoded and batched together (memory: ~1k prompts of ids)
__all__ = ["load_adapter", "resolve_format", "run_probe", "score_model", "select_datasets"]  # loading's re-exported


def select_datasets(cfg: ProbeConfig) -> list:
    """The suite's datasets named in cfg.datasets (all 16 by default), each with its first n tests."""
    from masktax.tasks.suite import build_suite

    suite = build_suite(seed=cfg.seed, n_test=max(1000, cfg.n_items))
    if cfg.datasets is None:
        return suite
    by_name = {d.name: d for d in suite}
    unknown = [d for d in cfg.datasets if d not in by_name]
    if unknown:
        raise MasktaxError(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(by_name)}")
    return [by_name[d] for d in cfg.datasets]


def unit_keys(model: str, unit: tuple, n_items: int) -> list[str]:
    """The item keys of one (cell, dataset) unit."""
    cell, dataset = unit
    return [
        item_key({"model": model, "series": cell.series, "x": cell.x, "dataset": dataset.name, "index": i})
        for i in range(min(n_items, len(dataset.tests)))
    ]


def chunk_units(units: list, size: Callable[[object], int], max_items: int = CHUNK_ITEMS) -> list[list]:
    """Consecutive (cell, dataset) units grouped into chunks of at most max_items items.

    Batches are planned within a chunk, so small cells (few items per dataset) still fill large
    batches; the chunking depends only on the plan, never on what is finished, so resume is exact.
    """
    chunks: list[list] = []
    total = 0
    for unit in units:
        if chunks and total + size(unit) <= max_items:
            chunks[-1].append(unit)
            total += size(unit)
        else:
            chunks.append([unit])
            total = size(unit)
    return chunks


def preflight(lm: LoadedModel, cells: list[Cell], datasets: list, encode) -> None:
    """Before any forward: the mask check and the context length of each series' longest layout."""
    longest: dict[str, Cell] = {}
    for cell in cells:
        if cell.series not in longest or cell.size_hint > longest[cell.series].size_hint:
            longest[cell.series] = cell
    for cell in longest.values():
        for dataset in datasets:
            check_lengths(lm, encode(dataset, cell))


def score_model(
    store: RunStore, cfg: ProbeConfig, name: str, lm: LoadedModel, datasets: list, on_batch: OnBatch | None
) -> dict:
    """Score every pending item of one model (stored as `name`); returns its env.json fields beyond provenance."""
    spec = PROBES[cfg.probe]
    fmt = resolve_format(cfg.format, name, lm)
    n = cfg.n_items
    answer_slot_id(lm, cfg.probe)  # MDLM without a mask token: error before any compute
    cells = spec.cells(cfg.grid, lm.kind)

    def encode(dataset, cell: Cell):
        return encode_cell(lm, dataset, cell, model=name, probe=cfg.probe, seed=cfg.seed, fmt=fmt, n_items=n)

    units = [(cell, d) for cell in cells for d in datasets]
    chunks = chunk_units(units, lambda u: min(n, len(u[1].tests)))
    chunks = [c for c in chunks if not all(store.is_done(k) for u in c for k in unit_keys(name, u, n))]
    if chunks:
        preflight(lm, cells, datasets, encode)
    info = {
        "format": fmt,
        "applicable": not (spec.appends_after_answer and lm.kind == "ar"),
        "series": list(dict.fromkeys(c.series for c in cells)),
    }
    record_model(store, cfg, name, lm, info)
    pending = sum(not store.is_done(k) for c in chunks for u in c for k in unit_keys(name, u, n))
    with item_bar(cfg, name, pending) as bar:
        for chunk in chunks:
            items = [it for cell, dataset in chunk for it in encode(dataset, cell)]
            for records in score_items(lm, items, batch_size=cfg.batch_size, skip=_done(store)):
                store.append(records)
                bar.update(len(records))
                if on_batch is not None:
                    on_batch(name, records)
    return info


def _done(store: RunStore):
    return lambda item: store.is_done(item.key)


def run_probe(
    cfg: ProbeConfig,
    *,
    adapters: dict[str, LoadedModel] | None = None,
    on_batch: OnBatch | None = None,
    report: bool = True,
    options: dict | None = None,
) -> Path:
    """Run `cfg` into cfg.out (resuming whatever is there) and rebuild summary, plots and report.

    adapters: already-loaded models by name (library use, tests); other names are loaded with
    masktax.models.load one at a time; cfg.adapters' fine-tuning runs are applied to theirs
    (`loading.each_model`). on_batch(model, records) is called after each stored batch.
    options: probe-specific flags of an ExtendedProbeSpec probe (which then runs its own runner).
    """
    from masktax.probes.extended import check_option_names

    spec = PROBES[cfg.probe]
    if getattr(spec, "run", None) is not None:
        return spec.run(cfg, options=options, adapters=adapters, on_batch=on_batch, report=report)
    check_option_names(cfg.probe, options, ())
    datasets = select_datasets(cfg)
    store = RunStore.open(cfg.out, cfg.to_dict())
    for name, lm in each_model(cfg, adapters):
        score_model(store, cfg, name, lm, datasets, on_batch)
    if report:
        from masktax.report.build import rebuild

        rebuild(store.root)
    return store.root
