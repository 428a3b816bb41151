"""`masktax card`: the mask-sensitivity card of one or more models, by a fixed, versioned protocol.

[P1] recommends that MDLM authors report how sensitive their model is to the masks a sampler leaves
after the answer. The card runs a fixed set of probes (PROTOCOL, documented in docs/card.md: which
probes, grids, items and seeds, at two budgets) into one directory per probe under OUT, then writes

    OUT/card.json   the card's numbers (schema-versioned: protocol version, budget, model revisions,
                    masktax version, hardware)
    OUT/card.md     a short table per model, side by side
    OUT/card.png    one summary figure

Resumable: every probe run dir under OUT resumes item by item (the probes' own resume), so rerunning
the same command after an interrupt continues where it stopped, and adding a --model adds it to the
same runs. Before the bulk of the work it prints an estimated run time, from the items/s measured on
the first batches (the first step, `accuracy`, of each model), then each step as it starts.

    masktax card --model embedded-mdlm --out runs/card --budget quick
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from masktax.errors import MasktaxError
from masktax.probes import PROBES, RunConfig, run_probe, write_outputs
from masktax.probes import format as format_probe
from masktax.probes import masks as masks_probe
from masktax.probes.engine import shared_scores
from masktax.probes.run import select_datasets
from masktax.report.card_numbers import card_object, render_card, write_card_figure
from masktax.results.store import atomic_write_json, atomic_write_text, read_config, read_items

PROTOCOL_VERSION = 1  # bump when a step, grid, item count or seed below changes
BUDGETS = ("quick", "paper")
SEED = 0
QUICK_ITEMS = 4  # test points per dataset at the quick budget (16 datasets: 64 items per point)
PAPER_ITEMS = 1000  # [P1]: 1000 test points per dataset


@dataclass(frozen=True)
class Step:
    """One probe of the protocol: its options at each budget (fields of the probe's Options) and, when
    fewer, the test points per dataset at the quick budget."""

    probe: str
    quick: tuple[tuple[str, object], ...] = ()
    paper: tuple[tuple[str, object], ...] = ()
    quick_items: int = QUICK_ITEMS
    cost: float = 1.0  # forward-pass equivalents per item (attribution: forward + backward)
    skip_kinds: tuple[str, ...] = ()  # model kinds the probe does not take (their card rows are null)

    def options(self, budget: str) -> object:
        return PROBES[self.probe].Options(**dict(self.quick if budget == "quick" else self.paper))

    def n_items(self, budget: str) -> int:
        return self.quick_items if budget == "quick" else PAPER_ITEMS


UNMASK_STEPS = (2, 4, 6)  # [P1]'s relative-degradation budget: 2, 4, 6 steps, random order
PROTOCOL = (
    Step("accuracy"),
    Step("masks", quick=(("grid", (2, 200)),), paper=(("grid", masks_probe.GRID),)),
    Step("filler", quick=(("grid", (2, 200)),), paper=(("grid", masks_probe.GRID),)),
    Step("format", quick=(("grid", (0, 200)),), paper=(("grid", format_probe.GRID),), quick_items=2),
    Step("locality", quick=(("grid", (0, 40)),)),
    Step("context-length", quick=(("grid", (0, 30)),)),
    Step("unmask", quick=(("grid", (2, 200)), ("steps", UNMASK_STEPS), ("order", ("random",))),
         paper=(("grid", masks_probe.GRID), ("steps", UNMASK_STEPS), ("order", ("random",))), quick_items=2,
         skip_kinds=("uniform",)),  # decodes masks: a uniform-noise model has none
    Step("attribution", quick=(("orderings", 1), ("questions", 2)), quick_items=2, cost=3.0),
)


@dataclass(frozen=True)
class CardConfig:
    """What `masktax card` runs: models (side by side), the output directory and the budget."""

    models: tuple[str, ...]
    out: str
    budget: str = "quick"
    batch_size: int | str = "auto"
    device: str = "auto"
    progress: bool = True
    trust_remote_code: bool = False
    datasets: tuple[str, ...] | None = field(default=None)  # tests only: a subset of the suite (not the protocol)

    def __post_init__(self) -> None:
        models = (self.models,) if isinstance(self.models, str) else tuple(self.models)
        if not models:
            raise MasktaxError("give at least one --model")
        object.__setattr__(self, "models", models)
        if self.budget not in BUDGETS:
            raise MasktaxError(f"--budget must be one of {', '.join(BUDGETS)}, got '{self.budget}'")

    def run_config(self, step: Step, models: tuple[str, ...] | None = None) -> RunConfig:
        return RunConfig(models=models or self.models, out=str(Path(self.out) / step.probe), n_items=step.n_items(self.budget),
                         datasets=self.datasets, seed=SEED, batch_size=self.batch_size, device=self.device,
                         progress=self.progress, trust_remote_code=self.trust_remote_code)


def protocol_json(budget: str) -> list[dict]:
    """The protocol's steps as stored in card.json (probe, options, test points per dataset)."""
    from masktax.probes.options import to_json

    return [{"probe": s.probe, "n_items": s.n_items(budget), "options": to_json(s.options(budget))} for s in PROTOCOL]


def step_items(step: Step, cfg: CardConfig, kind: str, n_datasets: int) -> float:
    """Forward-pass equivalents of one step for one model of `kind` (the time estimate's unit)."""
    opts, n = step.options(cfg.budget), step.n_items(cfg.budget)
    probe = PROBES[step.probe]
    if step.probe == "format":
        cells = 1 if kind == "ar" else len(format_probe.series_names(opts, kind)) * len(opts.grid)
    elif step.probe == "unmask":
        cells = 0
        for x in opts.grid if kind != "ar" else (0,):
            cells += 1 + (0 if kind == "ar" else sum(min(s, 1 + x) for s in opts.steps) * len(opts.order))
    elif step.probe == "attribution":
        return step.cost * n_datasets * opts.orderings * min(opts.questions, n)
    else:
        cells = len(probe.cells(opts, kind))
    return step.cost * cells * n * n_datasets


def done_items(run_dir: Path, model: str) -> int:
    """Records already stored for `model` in a probe run dir (0 when it does not exist yet)."""
    if not (run_dir / "items.jsonl").is_file():
        return 0
    return sum(r.get("model") == model for r in read_items(run_dir))


class Rate:
    """Items per second of one model, measured on its first batches (the first batch, which pays for
    loading and warm-up, is left out when there are more)."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.items = 0
        self.first = 0
        self.t0 = time.perf_counter()

    def on_batch(self, _model: str, records: list[dict]) -> None:
        if self.start is None:
            self.start, self.first = time.perf_counter(), len(records)
        else:
            self.items += len(records)

    def per_second(self) -> float | None:
        if self.start is None:
            return None
        if self.items:
            return self.items / max(time.perf_counter() - self.start, 1e-9)
        return self.first / max(self.start - self.t0, 1e-9)


def say(text: str) -> None:
    print(f"masktax card: {text}", file=sys.stderr, flush=True)


def run_card(cfg: CardConfig, *, loaded: dict | None = None, say: Callable[[str], None] = say) -> Path:
    """Run the protocol for every model (resuming), then write card.json, card.md and card.png."""
    root = Path(cfg.out)
    if root.exists() and not root.is_dir():
        raise MasktaxError(f"--out {root} is a file, not a directory")
    n_datasets = len(select_datasets(cfg.run_config(PROTOCOL[0])))
    started = time.perf_counter()
    first, rest = PROTOCOL[0], PROTOCOL[1:]
    rates: dict[str, float | None] = {}
    say(f"protocol v{PROTOCOL_VERSION}, budget {cfg.budget}: {len(PROTOCOL)} probes x {len(cfg.models)} model(s) "
        f"into {root}/; measuring the speed on the first step ({first.probe})")
    with shared_scores():  # a batch the protocol scores twice is computed once
        for model in cfg.models:  # step 1 per model: its rate
            rate = Rate()
            one = RunConfig(**{**cfg.run_config(first).__dict__, "models": (model,)})
            run_probe(PROBES[first.probe], one, first.options(cfg.budget), loaded=loaded, on_batch=rate.on_batch,
                      report=False)
            rates[model] = rate.per_second()
        kinds = _kinds(root / first.probe)
        remaining = {step.probe: sum(_left(step, cfg, m, kinds.get(m, "mdlm"), n_datasets, root) / (rates[m] or 1e9)
                                     for m in cfg.models if kinds.get(m) not in step.skip_kinds) for step in rest}
        speeds = ", ".join(f"{m}: {rates[m]:.1f} items/s" if rates[m] else f"{m}: already scored" for m in cfg.models)
        say(f"measured {speeds}; estimated time for the remaining {len(rest)} probes: {_minutes(sum(remaining.values()))}")
        for i, step in enumerate(rest, 2):
            say(f"[{i}/{len(PROTOCOL)}] {step.probe} (estimated {_minutes(remaining[step.probe])}; "
                f"{_minutes(time.perf_counter() - started)} so far)")
            models = tuple(m for m in cfg.models if kinds.get(m) not in step.skip_kinds)
            if models:
                run_probe(PROBES[step.probe], cfg.run_config(step, models), step.options(cfg.budget), loaded=loaded,
                          report=False)
    summaries = {step.probe: write_outputs(PROBES[step.probe], root / step.probe)[0]
                 for step in PROTOCOL if (root / step.probe / "items.jsonl").is_file()}
    env = json.loads((root / first.probe / "env.json").read_text(encoding="utf-8"))
    card = card_object(summaries, env, models=list(cfg.models), budget=cfg.budget,
                       protocol_version=PROTOCOL_VERSION, protocol=protocol_json(cfg.budget))
    atomic_write_json(root / "card.json", card)
    figure = write_card_figure(card, root / "card.png")
    atomic_write_text(root / "card.md", render_card(card, figure))
    say(f"done in {_minutes(time.perf_counter() - started)}; card at {root / 'card.md'}")
    return root


def _kinds(run_dir: Path) -> dict[str, str]:
    env = json.loads((run_dir / "env.json").read_text(encoding="utf-8")) if (run_dir / "env.json").is_file() else {}
    return {m: info.get("kind", "mdlm") for m, info in env.get("models", {}).items()}


def _left(step: Step, cfg: CardConfig, model: str, kind: str, n_datasets: int, root: Path) -> float:
    """Forward-pass equivalents still to do for one model in one step (done records subtracted, approx.)."""
    total = step_items(step, cfg, kind, n_datasets)
    done = done_items(root / step.probe, model) if (root / step.probe / "config.json").is_file() else 0
    if done and read_config(root / step.probe).get("probe") == step.probe:
        total = max(0.0, total - done * step.cost)
    return total


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"
