"""Probes that are more than one greedy forward pass per item: unmask, attribution, uncertainty.

Each such probe is an `ExtendedProbeSpec`: a `ProbeSpec` (so it sits in `PROBES`, the CLI's
choices and `ProbeConfig` validation like any other) plus its own `run` and `rebuild`. The
probe-specific flags (`--steps`, `--order`, `--n-masks`, ...) arrive as `options`, a mapping of
flag name to value; each probe parses them into its own frozen dataclass and stores them in
config.json under "options", so they are part of the run's identity (resume, "another config").
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from masktax.errors import MasktaxError
from masktax.models.adapter import Adapter
from masktax.probes.config import ProbeConfig
from masktax.probes.spec import ProbeSpec
from masktax.results.env import environment, model_provenance
from masktax.results.store import RunStore, atomic_write_json, read_json


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


def each_adapter(cfg: ProbeConfig, adapters: dict[str, Adapter] | None) -> Iterator[tuple[str, Adapter]]:
    """(name, adapter) per model of cfg: given adapters as they are, others loaded one at a time."""
    from masktax.probes.run import load_adapter

    for name in cfg.models:
        given = adapters is not None and name in adapters
        adapter = adapters[name] if given else load_adapter(name, cfg)
        yield name, adapter
        if not given:
            del adapter
            gc.collect()


def record_model(store: RunStore, cfg: ProbeConfig, name: str, adapter: Adapter, info: dict) -> None:
    """Add `name` to config.json and its provenance (plus `info`) to env.json."""
    store.add_model(name)
    path = store.root / "env.json"
    old = read_json(path).get("models", {}) if path.exists() else {}
    env = environment(device=cfg.device, dtype=cfg.dtype, seed=cfg.seed)
    env["models"] = {**old, name: {**model_provenance(adapter), **info}}
    atomic_write_json(path, env)


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


def what_was_run(config: dict, env: dict, h: str) -> list[str]:
    """The report's closing section: models, config and versions (as in every probe report)."""
    import json

    out = [f"{h}# What was run", "", "| model | kind | format | dtype | device | parameters | source |",
           "|---|---|---|---|---|---|---|"]
    for m, info in env.get("models", {}).items():
        if m in config.get("models", []):
            out.append(f"| {m} | {info.get('kind')} | {info.get('format')} | {info.get('dtype')} | "
                       f"{info.get('device')} | {info.get('n_parameters')} | {info.get('source')} |")
    versions = {k: env.get(k) for k in ("python", "torch", "transformers", "masktax", "git_commit", "platform")}
    return out + ["", "Config:", "", "```json", json.dumps(config, indent=2), "```", "",
                  "Environment:", "", "```json", json.dumps(versions, indent=2), "```", ""]


def write_outputs(run_dir: Path, summary: dict, csv_text: str, report: str) -> None:
    """summary.json, summary.csv and report.md of a run dir, each written atomically."""
    from masktax.results.store import atomic_write_text

    atomic_write_json(run_dir / "summary.json", summary)
    atomic_write_text(run_dir / "summary.csv", csv_text)
    atomic_write_text(run_dir / "report.md", report)
