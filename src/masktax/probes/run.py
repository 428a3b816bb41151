"""`run_probe(probe, cfg, options)`: the one driver of every probe.

    flags -> RunConfig + the probe's Options -> the suite's datasets -> the run dir (config.json)
          -> per model: load, probe.score(run, name, lm) -> items.jsonl
          -> probe.summarize -> summary.json / summary.csv -> probe.plot -> plots/ -> probe.render -> report.md

`probe` is a probe module (see masktax.probes for what one holds). `RunConfig` holds the flags
every probe takes; the probe's own flags are its `Options`. Single-pass probes score their cells
with `score_cells`: work is done in chunks of consecutive (cell, dataset) units of at most
CHUNK_ITEMS items, so memory stays small at the paper's scale (16 datasets x 1000 items x 9 grid
points) while batches fill up even with few items per dataset. Finished items are skipped on
resume; the batch plan of a chunk depends only on the plan, so a resumed run equals an
uninterrupted one exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

from masktax.errors import MasktaxError
from masktax.models.finetuned import finetune_dir
from masktax.models.load import peek_kind
from masktax.models.loaded import LoadedModel
from masktax.probes.engine import check_lengths, score_items
from masktax.probes.items import Cell, answer_slot_id, encode_cell
from masktax.probes.loading import each_model, item_bar, record_model, resolve_format, write_env
from masktax.probes.options import flag, pieces, suite_choice, to_json
from masktax.probes.shard import Processes, Shard, processes
from masktax.prompts.render import FORMATS as PROMPT_FORMATS
from masktax.results.shards import ShardStore, merge_shards, refuse_other_worlds
from masktax.results.state import run_state
from masktax.results.store import (
    NOTICE,
    RunStore,
    atomic_write_json,
    atomic_write_text,
    item_key,
    read_config,
    read_env,
    read_items,
)
from masktax.tasks.registry import SuiteChoice, suite_datasets
from masktax.tasks.suite import MAX_TEST_POINTS, build_suite

OnBatch = Callable[[str, list[dict]], None]
CHUNK_ITEMS = 1024  # items encoded and batched together (memory: ~1k prompts of ids)
FORMATS = ("auto", *PROMPT_FORMATS)
DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda")


def parse_batch_size(value: int | str) -> int | str:
    """"auto" or a positive integer."""
    if isinstance(value, int) or str(value).strip().lstrip("-").isdigit():
        n = int(value)
        if n < 1:
            raise MasktaxError(f"--batch-size must be 'auto' or a positive integer, got {value}")
        return n
    if str(value).strip().lower() == "auto":
        return "auto"
    raise MasktaxError(f"--batch-size must be 'auto' or a positive integer, got '{value}'")


def normalise_finetunes(runs: object, n_models: int) -> tuple[str | None, ...] | None:
    """"none" -> None, trailing Nones dropped (None when nothing is left); each dir must be a fine-tuning run."""
    if runs is None:
        return None
    given = (runs,) if isinstance(runs, str) else tuple(runs)  # type: ignore[arg-type]
    if len(given) > n_models:
        raise MasktaxError(f"{len(given)} --finetune values for {n_models} --model values; give at most one per model")
    out: list[str | None] = [None if r is None or str(r).strip().lower() in ("", "none") else str(r) for r in given]
    for path in out:
        if path is not None:
            finetune_dir(path)  # MasktaxError naming the path when it holds no adapter or fine-tuned model
    while out and out[-1] is None:
        out.pop()
    return tuple(out) or None


@dataclass(frozen=True)
class RunConfig:
    """The flags every probe takes; with the probe's own `Options` they define a run.

    finetunes: fine-tuning run dirs (`masktax finetune`, `masktax train-sm`, or any dir with a peft
    adapter) paired with `models` in order; None (or "none") = none for that model, and models past
    the end get none. Stored without trailing Nones (so adding a model without one resumes the run);
    the same model may appear with different runs. config.json keeps its 0.1 key "adapters" for it,
    so run dirs of earlier versions resume.
    """

    models: tuple[str, ...] = field(metadata=flag(
        "Model name, card name or checkpoint dir; repeatable.", name="--model", repeat=True))
    out: str = field(metadata=flag("Run directory (resumed if it holds the same config)."))
    n_items: int = field(default=1000, metadata=flag("Test points per dataset (the first N; paper: 1000)."))
    datasets: tuple[str, ...] | None = field(default=None, metadata=flag("Comma-separated dataset names (default: all 16)."))
    seed: int = field(default=0, metadata=flag("Suite, arrangement and canvas seed."))
    batch_size: int | str = field(default="auto", metadata=flag("'auto' (from free memory) or a number."))
    prefix_cache: bool = field(default=True, metadata=flag(
        "Causal models: run a prompt prefix shared by many items once (exact up to the last bits)."))
    device: str = field(default="auto", metadata=flag("auto, cpu, cuda or cuda:N."))
    dtype: str = field(default="auto", metadata=flag("auto (bf16 on cuda, fp32 on cpu), float32, bfloat16."))
    format: str = field(default="auto", metadata=flag("auto (chat for instruct models), base or chat."))
    trust_remote_code: bool = field(default=False, metadata=flag("Run a checkpoint's own code."))
    mask_token_id: int | None = field(default=None, metadata=flag("Mask id for MDLMs whose tokenizer has none."))
    progress: bool = field(default=True, metadata=flag("Show a progress bar."))  # not part of the run's identity
    finetunes: tuple[str | None, ...] | None = field(default=None, metadata=flag(
        "Fine-tuning run dir applied to the --model in the same place; repeatable; 'none' skips.", name="--finetune",
        repeat=True))

    def __post_init__(self) -> None:
        models = (self.models,) if isinstance(self.models, str) else tuple(self.models)
        if not models:
            raise MasktaxError("give at least one --model")
        object.__setattr__(self, "models", models)
        object.__setattr__(self, "finetunes", normalise_finetunes(self.finetunes, len(models)))
        pairs = list(zip(models, self.finetune_dirs(), strict=True))
        if len(set(pairs)) != len(pairs):
            raise MasktaxError("the same --model is given twice (with the same --finetune)")
        if self.n_items < 1:
            raise MasktaxError(f"--n-items must be at least 1, got {self.n_items}")
        if self.n_items > MAX_TEST_POINTS:
            raise MasktaxError(f"--n-items must be at most {MAX_TEST_POINTS} (test points per dataset; the paper "
                               f"uses 1000), got {self.n_items}")
        if self.format not in FORMATS:
            raise MasktaxError(f"--format must be one of {', '.join(FORMATS)}, got '{self.format}'")
        if self.dtype not in DTYPES:
            raise MasktaxError(f"--dtype must be one of {', '.join(DTYPES)}, got '{self.dtype}'")
        if self.device not in DEVICES and not str(self.device).startswith("cuda:"):
            raise MasktaxError(f"--device must be one of {', '.join(DEVICES)} or cuda:N, got '{self.device}'")
        if self.mask_token_id is not None and self.mask_token_id < 0:
            raise MasktaxError(f"--mask-token-id must be non-negative, got {self.mask_token_id}")
        object.__setattr__(self, "batch_size", parse_batch_size(self.batch_size))
        if isinstance(self.datasets, str) and not self.datasets.strip():
            object.__setattr__(self, "datasets", None)  # "" = all, as when the flag is left out
        if self.datasets is not None:
            names = tuple(pieces(self.datasets, "--datasets", "country__smallest,verb__largest"))
            if not names:
                raise MasktaxError("--datasets is empty")
            if len(set(names)) != len(names):
                raise MasktaxError(f"--datasets names a dataset twice: {','.join(names)}")
            object.__setattr__(self, "datasets", names)

    def finetune_dirs(self) -> tuple[str | None, ...]:
        """One entry per model: its fine-tuning run dir, or None."""
        given = self.finetunes or ()
        return tuple(given) + (None,) * (len(self.models) - len(given))


def stored_config(probe: ModuleType, cfg: RunConfig, options: object) -> dict:
    """config.json of a run: the probe, the common flags, its grid, and its other options (if any)."""
    opts = to_json(options)
    grid = opts.pop("grid", None)
    listed = {k: None if v is None else list(v) for k, v in
              (("models", cfg.models), ("datasets", cfg.datasets), ("adapters", cfg.finetunes))}
    stored = {
        "probe": probe.NAME, "models": listed["models"], "out": cfg.out, "n_items": cfg.n_items, "grid": grid,
        "datasets": listed["datasets"], "seed": cfg.seed, "batch_size": cfg.batch_size,
        "prefix_cache": cfg.prefix_cache, "device": cfg.device,
        "dtype": cfg.dtype, "format": cfg.format, "trust_remote_code": cfg.trust_remote_code,
        "mask_token_id": cfg.mask_token_id, "progress": cfg.progress, "adapters": listed["adapters"],
    }
    return {**stored, "options": opts} if opts else stored


@functools.lru_cache(maxsize=4)
def main_suite(seed: int, n_test: int) -> tuple:
    """`build_suite` once per process and (seed, n_test): its datasets are frozen, and drawing them is
    pure Python (0.4 s on an idle 2-core CPU), which every probe of `masktax demo` paid again."""
    return tuple(build_suite(seed=seed, n_test=n_test))


def select_datasets(cfg: RunConfig, choice: SuiteChoice | None = None) -> list:
    """The suite's datasets named in cfg.datasets (all 16 by default), each with its first n tests;
    with an appendix suite (`choice`, a probe's --suite) that suite's datasets instead."""
    if choice is not None and not choice.is_main:
        return suite_datasets(choice, seed=cfg.seed, names=cfg.datasets)
    suite = list(main_suite(cfg.seed, max(1000, cfg.n_items)))
    if cfg.datasets is None:
        return suite
    by_name = {d.name: d for d in suite}
    unknown = [d for d in cfg.datasets if d not in by_name]
    if unknown:
        raise MasktaxError(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(by_name)}")
    return [by_name[d] for d in cfg.datasets]


@dataclass
class ProbeRun:
    """What a probe's `score(run, name, lm)` works with: the run's config and options, its store
    and datasets, and the calls that record a model, show progress and store records."""

    probe: str
    cfg: RunConfig
    options: object
    store: RunStore
    datasets: list
    on_batch: OnBatch | None = None
    shard: Shard | None = None  # this process's share of a sharded run (probes/shard.py); None: every item

    def record_model(self, name: str, lm: LoadedModel, info: dict, *, expected_items: int) -> None:
        """Add the model to config.json and its provenance plus `info` to env.json, with the number
        of items its run holds when finished (what tells a complete run from a partial one)."""
        if self.shard is not None and self.shard.rank != 0:
            return  # process 0 alone writes config.json and env.json
        record_model(self.store, self.cfg, name, lm, {**info, "expected_items": expected_items})

    def bar(self, name: str, total: int):
        return item_bar(self.cfg.progress, self.probe, name, total)

    def is_done(self, key: str) -> bool:
        """Finished, or (in a sharded run) another process's item."""
        if self.shard is not None and not self.shard.owns(key):
            return True
        return self.store.is_done(key)

    def plan(self, name: str, groups: list[list[str]]) -> None:
        """Declare a model's item keys in the groups batched together (a sharded run hands out whole groups)."""
        if self.shard is not None:
            self.shard.plan(name, groups)

    def scored(self, lm: LoadedModel, items: list, skip: Callable[[object], bool] | None = None) -> Iterator[list[dict]]:
        """`engine.score_items` under this run's --batch-size and --prefix-cache: each batch's records,
        finished items (or those `skip` names) left out."""
        return score_items(lm, items, batch_size=self.cfg.batch_size, prefix_cache=self.cfg.prefix_cache,
                           skip=skip if skip is not None else lambda it: self.is_done(it.key))

    def store_records(self, name: str, records: list[dict]) -> None:
        """Append one batch's records durably, then tell `on_batch`."""
        self.store.append(records)
        if self.on_batch is not None:
            self.on_batch(name, records)

    def encode(self, lm: LoadedModel, name: str, fmt: str, dataset, cell: Cell, n_items: int | None = None,
               seed: int | None = None) -> list:
        """The items of one (cell, dataset) for model `name` (the first n_items test points)."""
        return encode_cell(lm, dataset, cell, model=name, probe=self.probe, seed=self.cfg.seed if seed is None else seed,
                           fmt=fmt, n_items=self.cfg.n_items if n_items is None else n_items)

    def preflight(self, lm: LoadedModel, name: str, fmt: str, cells: list[Cell]) -> None:
        """Before any forward: the context length of each series' longest layout on every dataset."""
        longest: dict[str, Cell] = {}
        for cell in cells:
            if cell.series not in longest or cell.size_hint > longest[cell.series].size_hint:
                longest[cell.series] = cell
        for cell in longest.values():
            for dataset in self.datasets:
                check_lengths(lm, self.encode(lm, name, fmt, dataset, cell))


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


def unit_keys(model: str, unit: tuple, n_items: int) -> list[str]:
    """The item keys of one (cell, dataset) unit."""
    cell, dataset = unit
    return [
        item_key({"model": model, "series": cell.series, "x": cell.x, "dataset": dataset.name, "index": i})
        for i in range(min(n_items, len(dataset.tests)))
    ]


def score_cells(run: ProbeRun, name: str, lm: LoadedModel, cells: list[Cell], *, applicable: bool = True) -> None:
    """Score every pending item of `cells` for one model, one greedy forward pass each.

    applicable: False when the probe's x does not apply to this model (a causal model under tokens
    appended after the answer: its cells are the one-point reference); recorded in env.json.
    """
    fmt = resolve_format(run.cfg.format, name, lm)
    n = run.cfg.n_items
    answer_slot_id(lm, run.probe)  # MDLM without a mask token: error before any compute
    units = [(cell, d) for cell in cells for d in run.datasets]
    chunks = chunk_units(units, lambda u: min(n, len(u[1].tests)), CHUNK_ITEMS)
    run.plan(name, [[k for u in c for k in unit_keys(name, u, n)] for c in chunks])
    chunks = [c for c in chunks if not all(run.is_done(k) for u in c for k in unit_keys(name, u, n))]
    if chunks:
        run.preflight(lm, name, fmt, cells)
    run.record_model(name, lm, {
        "format": fmt, "applicable": applicable, "series": list(dict.fromkeys(c.series for c in cells)),
    }, expected_items=sum(len(unit_keys(name, u, n)) for u in units))
    pending = sum(not run.is_done(k) for c in chunks for u in c for k in unit_keys(name, u, n))
    with run.bar(name, pending) as bar:
        for chunk in chunks:
            items = [it for cell, dataset in chunk for it in run.encode(lm, name, fmt, dataset, cell)]
            for records in run.scored(lm, items):
                run.store_records(name, records)
                bar.update(len(records))


def refuse_models(probe: ModuleType, cfg: RunConfig, options: object, loaded: dict[str, LoadedModel] | None) -> None:
    """Before any model is loaded or scored: the first model of cfg that the probe's optional
    `refuses(options, kind)` turns down is an error naming it and why. Kinds come from the given
    models, else from each model's card or config.json (`peek_kind`); an unknown kind is left to `load`."""
    refuses = getattr(probe, "refuses", None)
    if refuses is None:
        return
    for name in cfg.models:
        kind = loaded[name].kind if loaded is not None and name in loaded else peek_kind(name)
        why = refuses(options, kind) if kind is not None else None
        if why:
            raise MasktaxError(f"the {probe.NAME} probe cannot score '{name}': {why}")


def run_probe(
    probe: ModuleType,
    cfg: RunConfig,
    options: object | None = None,
    *,
    loaded: dict[str, LoadedModel] | None = None,
    on_batch: OnBatch | None = None,
    report: bool = True,
) -> Path:
    """Run `probe` (a probe module) into cfg.out, resuming whatever is there; then write its outputs.

    options: the probe's `Options` (default: its defaults). loaded: already-loaded models by name
    (library use, tests); other names are loaded with masktax.models.load one at a time, their
    `--finetune` runs applied. on_batch(model, records) is called after each stored batch.
    """
    options = probe.Options() if options is None else options
    if not isinstance(options, probe.Options):
        got = f"{type(options).__module__}.{type(options).__qualname__}"
        raise MasktaxError(f"the {probe.NAME} probe takes {probe.Options.__module__}.Options, got {got}")
    refuse_models(probe, cfg, options, loaded)
    datasets = select_datasets(cfg, suite_choice(options))
    group = processes()  # torchrun / accelerate launch with WORLD_SIZE > 1: split the run
    if group is not None:
        return run_sharded(probe, cfg, options, group, datasets, loaded=loaded, on_batch=on_batch, report=report)
    store = RunStore.open(cfg.out, stored_config(probe, cfg, options))
    refuse_other_worlds(store.root, 1)
    run = ProbeRun(probe=probe.NAME, cfg=cfg, options=options, store=store, datasets=datasets, on_batch=on_batch)
    write_env(store, cfg, plan=len(cfg.models))
    for name, lm in each_model(cfg, loaded):
        probe.score(run, name, lm)
    if report:
        write_outputs(probe, store.root)
    return store.root


def run_sharded(probe: ModuleType, cfg: RunConfig, options: object, group: Processes, datasets: list, *,
                loaded: dict[str, LoadedModel] | None, on_batch: OnBatch | None, report: bool) -> Path:
    """`run_probe` as one of `group`'s processes (docs/distributed.md): process 0 opens the run dir,
    every process scores its share of the plan into its own shard file (resumed by itself), then
    process 0 merges the shards into items.jsonl in the one-process order and writes the outputs."""
    def open_run() -> None:
        store = RunStore.open(cfg.out, stored_config(probe, cfg, options))
        refuse_other_worlds(store.root, group.world)
        write_env(store, cfg, plan=len(cfg.models))

    group.first(open_run)
    store = ShardStore(Path(cfg.out), group.rank, group.world)
    mine = replace(cfg, progress=cfg.progress and group.main)  # one progress bar: process 0's
    run = ProbeRun(probe=probe.NAME, cfg=mine, options=options, store=store, datasets=datasets, on_batch=on_batch,
                   shard=Shard(group.rank, group.world, tuple(d.name for d in datasets)))
    for name, lm in each_model(replace(mine, device=group.device(cfg.device)), loaded):
        probe.score(run, name, lm)
    group.barrier()
    if group.main:
        merge_shards(store.root, group.world, read_config(store.root)["models"])
        if report:
            write_outputs(probe, store.root)
    group.barrier()  # no process returns before the run dir is whole
    return store.root


def write_outputs(probe: ModuleType, run_dir: str | Path, *, level: int = 1, prefix: str = "") -> tuple[dict, list, str]:
    """summary.json, summary.csv, plots/ and report.md of a run dir from its stored records.

    Returns (summary, plots, report) where `report` is rendered at `level` with `prefix` on plot paths
    (a section of a combined report); report.md itself is always the level-1 page. summary.json
    carries the run's state ("run": complete, partial with its counts, or unknown), which the
    report, the plots and `masktax compare` show.
    """
    run_dir = Path(run_dir)
    config, env = read_config(run_dir), read_env(run_dir)
    notice = (run_dir / NOTICE).read_text(encoding="utf-8") if (run_dir / NOTICE).is_file() else None
    records = list(read_items(run_dir))
    if not records:
        raise MasktaxError(f"{run_dir} holds no scored items yet; run the probe command (it resumes) before a report")
    summary = {**probe.summarize(config, records, env), "run": run_state(config, env, records)}
    plots = probe.plot(summary, run_dir / "plots")
    page = probe.render(config, env, summary, plots, notice=notice)
    atomic_write_json(run_dir / "summary.json", summary)
    atomic_write_text(run_dir / "summary.csv", probe.to_csv(summary))
    atomic_write_text(run_dir / "report.md", page)
    if level != 1 or prefix:
        page = probe.render(config, env, summary, plots, level=level, prefix=prefix, notice=notice)
    return summary, plots, page

