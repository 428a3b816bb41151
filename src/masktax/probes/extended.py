"""Probes that are more than one greedy forward pass per item: unmask, attribution, uncertainty.

Each such probe is an `ExtendedProbeSpec`: a `ProbeSpec` (so it sits in `PROBES`, the CLI's
choices and `ProbeConfig` validation like any other) plus its own `run` and `rebuild`. The
probe-specific flags (`--steps`, `--order`, `--n-masks`, ...) arrive as `options`, a mapping of
flag name to value; each probe parses them into its own frozen dataclass and stores them in
config.json under "options", so they are part of the run's identity (resume, "another config").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from masktax.errors import MasktaxError
from masktax.models.loaded import LoadedModel
from masktax.probes.config import ProbeConfig
from masktax.probes.loading import each_model, item_bar, record_model, resolve_format
from masktax.probes.spec import ProbeSpec
from masktax.results.store import RunStore, atomic_write_json, read_json

__all__ = [
    "ExtendedProbeSpec", "FLAGS", "ModelRunner", "check_option_names", "dataset_stats", "each_adapter",
    "each_model", "flag", "item_bar", "open_run", "parse_int", "parse_int_list", "probe_runner", "read_env", "rebuild_run",
    "record_model", "render_run", "report_hooks", "resolve_format", "run_models", "write_outputs",
]  # loading's names are re-exported for the probes


@dataclass(frozen=True)
class ExtendedProbeSpec(ProbeSpec):
    """A probe with its own runner and report.

    run(cfg, *, options, adapters, on_batch, report) -> run dir; rebuild(run_dir) -> summary
    (rewrites summary.json, plots and report.md from the stored records); render(run_dir, *, level,
    prefix) -> the report's Markdown (a section of a combined report with level 2 and a path
    prefix); options: the flag names (without "--", underscores) the probe accepts.
    """

    run: Callable[..., Path] | None = None
    rebuild: Callable[[Path], dict] | None = None
    render: Callable[..., str] | None = None
    options: tuple[str, ...] = ()


def check_option_names(probe: str, options: Mapping[str, object] | None, allowed: tuple[str, ...]) -> dict:
    """The given options (None values dropped); MasktaxError naming a flag this probe does not take."""
    given = {k: v for k, v in (options or {}).items() if v is not None}
    unknown = [k for k in given if k not in allowed]
    if unknown:
        flags = ", ".join(flag(k) for k in unknown)
        raise MasktaxError(f"the {probe} probe does not take {flags}")
    return given


def parse_int_list(value: object, flag: str, *, minimum: int) -> tuple[int, ...]:
    """"2,4,6" (or an int, or a sequence) -> (2, 4, 6); empty, repeated or too small values are errors."""
    if isinstance(value, int) and not isinstance(value, bool):
        pieces: list[object] = [value]
    elif isinstance(value, str):
        pieces = [p.strip() for p in value.split(",")] if value.strip() else []
    else:
        pieces = list(value)  # type: ignore[arg-type]
    if not pieces:
        raise MasktaxError(f"{flag} is empty; give comma-separated integers such as 2,4,6")
    out = []
    for p in pieces:
        try:
            n = int(p)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise MasktaxError(f"{flag} value '{p}' is not an integer") from None
        if n < minimum:
            raise MasktaxError(f"{flag} values must be at least {minimum}, got {n}")
        out.append(n)
    if len(set(out)) != len(out):
        raise MasktaxError(f"{flag} has repeated values: {','.join(map(str, out))}")
    return tuple(out)


def parse_int(value: object, flag: str, *, minimum: int) -> int:
    """One integer flag value at least `minimum`."""
    try:
        n = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MasktaxError(f"{flag} must be an integer, got '{value}'") from None
    if n < minimum:
        raise MasktaxError(f"{flag} must be at least {minimum}, got {n}")
    return n


def open_run(cfg: ProbeConfig, options: Mapping[str, object]) -> RunStore:
    """Open (or resume) cfg.out with the config plus this probe's parsed options."""
    return RunStore.open(cfg.out, {**cfg.to_dict(), "options": dict(options)})


def each_adapter(cfg: ProbeConfig, adapters: dict[str, LoadedModel] | None) -> Iterator[tuple[str, LoadedModel]]:
    """(results name, lm) per model of cfg, its --adapter applied (`loading.each_model`)."""
    return each_model(cfg, adapters)


ModelRunner = Callable[[RunStore, str, LoadedModel, list], None]


def run_models(cfg: ProbeConfig, options: Mapping[str, object], run_model: ModelRunner, *,
               adapters: dict[str, LoadedModel] | None, rebuild: Callable[[Path], dict], report: bool) -> Path:
    """The run scaffolding of every extended probe: select the datasets, open (or resume) cfg.out
    with `options` stored, `run_model(store, name, lm, datasets)` per model, then `rebuild`."""
    from masktax.probes.run import select_datasets

    datasets = select_datasets(cfg)
    store = open_run(cfg, options)
    for name, lm in each_model(cfg, adapters):
        run_model(store, name, lm, datasets)
    if report:
        rebuild(store.root)
    return store.root


Prepare = Callable[[ProbeConfig, Mapping[str, object] | None, Callable | None], tuple[dict, ModelRunner]]


def probe_runner(probe: str, prepare: Prepare, rebuild: Callable[[Path], dict]) -> Callable[..., Path]:
    """An extended probe's `run(cfg, *, options, adapters, on_batch, report) -> run dir`.

    prepare(cfg, options, on_batch) parses the probe's options (errors before any work) and returns
    (the options to store in config.json, `run_model(store, name, lm, datasets)`); the rest is
    `run_models`.
    """

    def run(cfg: ProbeConfig, *, options: Mapping[str, object] | None = None,
            adapters: dict[str, LoadedModel] | None = None, on_batch: Callable | None = None, report: bool = True) -> Path:
        stored, run_model = prepare(cfg, options, on_batch)
        return run_models(cfg, stored, run_model, adapters=adapters, rebuild=rebuild, report=report)

    run.__doc__ = f"Run (or resume) the {probe} probe into cfg.out; rebuilds summary, plots and report."
    return run


def rebuild_run(run_dir: str | Path, summarize: Callable, plot: Callable, to_csv: Callable, render: Callable) -> dict:
    """summary.json, summary.csv, plots and report.md from the stored records; returns the summary.

    summarize(config, records, env) -> summary; plot(summary, plots_dir) -> [(file, caption)];
    to_csv(summary) -> text; render(run_dir, summary, plots) -> Markdown.
    """
    from masktax.results.store import read_items

    run_dir = Path(run_dir)
    summary = summarize(read_json(run_dir / "config.json"), read_items(run_dir), read_env(run_dir))
    plots = plot(summary, run_dir / "plots")
    write_outputs(run_dir, summary, to_csv(summary), render(run_dir, summary, plots))
    return summary


def render_run(run_dir: str | Path, plot_files: Callable, render: Callable, *, level: int, prefix: str) -> str:
    """A finished run's report Markdown from its summary.json (level 2: a section of a combined report)."""
    summary = read_json(Path(run_dir) / "summary.json")
    return render(Path(run_dir), summary, plot_files(summary), level=level, prefix=prefix)


def report_hooks(probe: str) -> tuple[Callable[[str | Path], dict], Callable[..., str]]:
    """`rebuild(run_dir) -> summary` and `render(run_dir, *, level=1, prefix="") -> Markdown` of an
    extended probe whose report module is `masktax.report.plots_<probe>`, with `summarize_<probe>`,
    `plot_<probe>`, `<probe>_csv`, `render_<probe>` and `plot_files` (imported on first use: matplotlib)."""
    import importlib

    def part(name: str) -> Callable:
        return getattr(importlib.import_module(f"masktax.report.plots_{probe}"), name.format(probe))

    def rebuild(run_dir: str | Path) -> dict:
        return rebuild_run(run_dir, part("summarize_{}"), part("plot_{}"), part("{}_csv"), part("render_{}"))

    def render(run_dir: str | Path, *, level: int = 1, prefix: str = "") -> str:
        return render_run(run_dir, part("plot_files"), part("render_{}"), level=level, prefix=prefix)

    rebuild.__doc__ = f"summary.json, summary.csv, plots and report.md of a {probe} run from its records."
    render.__doc__ = f"The {probe} report's Markdown from summary.json (level 2: a section of a combined report)."
    return rebuild, render


def read_env(run_dir: Path) -> dict:
    path = Path(run_dir) / "env.json"
    return read_json(path) if path.is_file() else {}


FLAGS = {"from_run": "--from"}  # option names whose flag is not "--" + name with dashes


def flag(option: str) -> str:
    """The command-line flag of an option name ("n_masks" -> "--n-masks")."""
    return FLAGS.get(option, "--" + option.replace("_", "-"))


def dataset_stats(by_dataset: Mapping[str, list[dict]], value: Callable[[dict], float | None]) -> dict:
    """Mean over datasets of each dataset's mean `value`, with the 95% t-interval over datasets.

    Records whose value is None (a non-finite number) are left out; a dataset without values too.
    Returns {"mean", "ci95", "per_dataset"} ("mean" None when no dataset has a value).
    """
    from masktax.results.stats import mean, mean_ci95

    per = {}
    for name, records in by_dataset.items():
        values = [v for v in (value(r) for r in records) if v is not None]
        if values:
            per[name] = mean(values)
    m, ci = mean_ci95(list(per.values()))
    return {"mean": m if per else None, "ci95": ci, "per_dataset": per}


def write_outputs(run_dir: Path, summary: dict, csv_text: str, report: str) -> None:
    """summary.json, summary.csv and report.md of a run dir, each written atomically."""
    from masktax.results.store import atomic_write_text

    atomic_write_json(run_dir / "summary.json", summary)
    atomic_write_text(run_dir / "summary.csv", csv_text)
    atomic_write_text(run_dir / "report.md", report)
