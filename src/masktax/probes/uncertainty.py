"""`uncertainty`: entropy and confidence at the answer position against appended masks and filler ([P1]).

For the answer position's full-vocabulary distribution p = softmax(z) (float32) the probe reports

    entropy     H = -sum_v p_v log p_v   (nats)
    confidence  max_v p_v                (the probability of the greedy answer token)

against x, the number of extra masks (series "masks") and of filler tokens " ." (series "filler")
after the answer position: the prompts of the `masks` and `filler` probes, one forward pass each.
Per point: the mean over datasets of each dataset's mean, with the 95% t-interval over datasets.

Reuse: the engine records entropy and confidence for every masks/filler item, so a masks or filler
run of the same suite, seed, format, dtype and device is aggregated instead of recomputed. Runs are
looked for in `--from DIR` and, without it, next to and under the output directory (the layout of
`masktax demo`: DIR/masks, DIR/filler, DIR/uncertainty); each place may be a run dir or a directory
of run dirs. Reused records are copied into this run's items.jsonl (with "reused_from"), so the run
stays self-contained; only items found nowhere are computed. AR models get one reference point
(tokens appended after the answer are invisible to a causal model).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from masktax.errors import MasktaxError
from masktax.models.loaded import LoadedModel
from masktax.probes import masks
from masktax.probes.base import score_items
from masktax.probes.config import ProbeConfig
from masktax.probes.extended import (
    ExtendedProbeSpec,
    ModelRunner,
    check_option_names,
    item_bar,
    probe_runner,
    record_model,
    report_hooks,
    resolve_format,
)
from masktax.probes.items import answer_slot_id, encode_cell
from masktax.probes.spec import REFERENCE, Cell
from masktax.results.store import CONFIG, RunStore, item_key, read_items, read_json

OPTIONS = ("from_run",)
SOURCES = ("masks", "filler")
SAME = ("seed", "format", "dtype", "device", "mask_token_id")  # config fields a reusable run must share


@dataclass(frozen=True)
class UncertaintyOptions:
    """The uncertainty probe's own flags (stored in config.json under "options")."""

    from_run: str | None = None  # a masks/filler run dir (or a directory of them) to reuse

    @classmethod
    def parse(cls, options: Mapping[str, object] | None) -> UncertaintyOptions:
        given = check_option_names("uncertainty", options, OPTIONS)
        if "from_run" in given:
            path = Path(str(given["from_run"]))
            if not path.is_dir():
                raise MasktaxError(f"--from {path} is not a directory")
            return cls(from_run=str(path))
        return cls()


def uncertainty_cells(grid: tuple, kind: str) -> list[Cell]:
    """The masks and filler sweeps' cells (AR: one reference cell)."""
    cells = masks.masks_cells(grid, kind) + masks.filler_cells(grid, kind)
    return list(dict.fromkeys(cells))


def _run_dirs(place: Path) -> list[Path]:
    if (place / CONFIG).is_file():
        return [place]
    if not place.is_dir():
        return []
    return sorted(p for p in place.iterdir() if p.is_dir() and (p / CONFIG).is_file())


def source_runs(cfg: ProbeConfig, opts: UncertaintyOptions) -> list[Path]:
    """masks/filler run dirs whose records this run may reuse (same suite and settings)."""
    out = Path(cfg.out).resolve()
    places = [Path(opts.from_run)] if opts.from_run is not None else [out, out.parent]
    found = []
    for run_dir in (d for place in places for d in _run_dirs(place)):
        if run_dir.resolve() == out or run_dir in found:
            continue
        try:
            config = read_json(run_dir / CONFIG)
        except MasktaxError:
            continue
        if config.get("probe") not in SOURCES:
            continue
        same = all(config.get(k) == getattr(cfg, k) for k in SAME)
        if same and max(1000, int(config.get("n_items", 0))) == max(1000, cfg.n_items):
            found.append(run_dir)
    if opts.from_run is not None and not found:
        raise MasktaxError(
            f"--from {opts.from_run} holds no masks or filler run with this seed, format, dtype, device and suite"
        )
    return found


def reusable_records(runs: list[Path], model: str) -> dict[str, dict]:
    """item key -> stored record of `model` from the source runs (the first run wins)."""
    out: dict[str, dict] = {}
    for run_dir in runs:
        for r in read_items(run_dir):
            if r["model"] == model and r.get("entropy", "missing") != "missing":
                out.setdefault(item_key(r), {**r, "reused_from": str(run_dir)})
    return out


def run_model(
    store: RunStore, cfg: ProbeConfig, name: str, lm: LoadedModel, datasets: list, reuse: list[Path], on_batch
) -> None:
    """Copy reusable records of one model, then score its remaining items."""
    from masktax.probes.run import preflight

    answer_slot_id(lm, "uncertainty")
    fmt = resolve_format(cfg.format, name, lm)
    cells = uncertainty_cells(cfg.grid, lm.kind)
    found = reusable_records(reuse, name)
    record_model(store, cfg, name, lm, {
        "format": fmt, "applicable": lm.kind != "ar", "series": list(dict.fromkeys(c.series for c in cells)),
        "reused_from": [str(r) for r in reuse],
    })

    def encode(dataset, cell: Cell):
        return encode_cell(lm, dataset, cell, model=name, probe="uncertainty", seed=cfg.seed, fmt=fmt,
                           n_items=cfg.n_items)

    checked = False
    with item_bar(cfg, name, len(cells) * len(datasets) * cfg.n_items) as bar:
        for cell in cells:
            for dataset in datasets:
                items = encode(dataset, cell)
                copied = [found[it.key] for it in items if not store.is_done(it.key) and it.key in found]
                store.append(copied)
                bar.update(sum(store.is_done(it.key) for it in items))
                if all(store.is_done(it.key) for it in items):
                    continue
                if not checked:
                    preflight(lm, cells, datasets, encode)
                    checked = True
                for records in score_items(lm, items, batch_size=cfg.batch_size, skip=lambda it: store.is_done(it.key)):
                    store.append(records)
                    bar.update(len(records))
                    if on_batch is not None:
                        on_batch(name, records)


def _prepare(cfg: ProbeConfig, options: Mapping[str, object] | None, on_batch) -> tuple[dict, ModelRunner]:
    opts = UncertaintyOptions.parse(options)
    reuse = source_runs(cfg, opts)

    def one(store: RunStore, name: str, lm: LoadedModel, datasets: list) -> None:
        run_model(store, cfg, name, lm, datasets, reuse, on_batch)

    return {"from_run": opts.from_run}, one


rebuild, render = report_hooks("uncertainty")
run = probe_runner("uncertainty", _prepare, rebuild)

SPEC = ExtendedProbeSpec(
    name="uncertainty",
    description="entropy and confidence at the answer position vs appended masks and filler tokens",
    x_label="tokens appended after the answer position",
    x_meaning="x = number of extra masks (series masks) or filler tokens ' .' (series filler) after the answer position",
    default_grid=masks.GRID,
    x_values="int",
    cells=uncertainty_cells,
    plot="sweep",
    appends_after_answer=True,
    run=run,
    rebuild=rebuild,
    render=render,
    options=OPTIONS,
)

__all__ = ["REFERENCE", "SPEC", "UncertaintyOptions", "reusable_records", "run", "source_runs"]
