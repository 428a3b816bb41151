"""`masktax demo`: every probe on the embedded models, one combined report (runs/demo/report.md).

The models come from `demo_models` alone: the shipped embedded checkpoints (`embedded-mdlm`,
`embedded-ar`, and `embedded-mdlm-dream` when installed). While they are not installed, the demo
says so and builds untrained tiny RANDOM stand-ins instead (LLaDA-like in place, Dream-like
shifted, Llama AR) over the suite's word-level tokenizer, saved under OUT/models/; the report
then carries a banner saying so. Once the embedded weights exist the demo uses them by itself.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import typer

EMBEDDED = ("embedded-mdlm", "embedded-ar", "embedded-mdlm-dream")
DEMO_N_ITEMS = 8  # per dataset (128 test points): every probe on the embedded models in minutes on 2 CPU cores


@dataclass(frozen=True)
class DemoStep:
    """One probe of the demo; `quick_*` shrink the multi-pass probes in the default (non --full) demo."""

    probe: str
    quick_options: tuple[tuple[str, object], ...] = ()  # Options fields of the probe
    quick_items: int | None = None  # test points per dataset, if fewer than the demo's


# The quick demo's sweeps keep each curve's ends and its bend (the --full demo: every probe's own grid).
QUICK_MASKS_GRID = (0, 2, 10, 50, 200)  # the baseline x = 2 and the last x give the headline change
DEMO_STEPS = (
    DemoStep("accuracy"),
    DemoStep("masks", (("grid", QUICK_MASKS_GRID),)),
    DemoStep("filler", (("grid", QUICK_MASKS_GRID),)),  # the same x as masks: paired per x
    DemoStep("format", (("grid", (0, 200)), ("kinds", ("masks", "text")), ("closures", ("none", "after-answer"))),
             quick_items=2),  # 6 distinct prompts per item (n = 0 shared)
    DemoStep("uncertainty", (("grid", QUICK_MASKS_GRID),)),  # reuses the masks and filler runs' forward passes
    DemoStep("locality", (("grid", (0, 20, 40)),)),  # block far, middle, next to the masks
    DemoStep("query-position"),
    DemoStep("context-length", (("grid", (0, 10, 20, 30)),)),
    DemoStep("unmask", (("steps", (8,)), ("grid", (0, 10, 50))), quick_items=2),
    DemoStep("attribution", (("orderings", 3), ("questions", 1))),
)
DEMO_PROBES = tuple(step.probe for step in DEMO_STEPS)
STAND_IN_NOTICE = (
    "**Untrained stand-ins.** The embedded models are not installed ({reason}), so this demo ran on tiny "
    "RANDOM models built on the spot (LLaDA-like in place, Dream-like shifted, Llama AR; 2 layers, hidden "
    "{hidden}). Their accuracies sit near chance and say nothing about the mask tax; the report shows what "
    "the pipeline produces. Install or train the embedded models (`masktax pretrain`) for real numbers."
)


@dataclass(frozen=True)
class DemoModels:
    names: tuple[str, ...]
    notice: str | None  # None for real (embedded) models


def demo_models(out: Path, *, seed: int = 0) -> DemoModels:
    """The demo's models: every installed embedded checkpoint (in EMBEDDED order), else stand-ins."""
    from masktax.errors import MasktaxError
    from masktax.models import load
    from masktax.models.tiny import build_stand_ins

    names, reasons = [], []
    for name in EMBEDDED:
        try:
            load(name)
        except MasktaxError as err:
            reasons.append(f"{name}: {err}")
            continue
        names.append(name)
    if not names:
        reason = "; ".join(reasons)
        print(f"masktax demo: no embedded model is installed ({reason}); using tiny random stand-ins", file=sys.stderr)
        return DemoModels(build_stand_ins(out / "models", seed=seed), STAND_IN_NOTICE.format(reason=reason, hidden=32))
    missing = [n for n in EMBEDDED if n not in names]
    if missing:
        print(f"masktax demo: not installed yet: {', '.join(missing)}", file=sys.stderr)
    return DemoModels(tuple(names), None)


def demo(
    out: str = typer.Option("runs/demo", "--out", help="Directory for the runs and the combined report."),
    n_items: int = typer.Option(DEMO_N_ITEMS, "--n-items", help="Test points per dataset."),
    full: bool = typer.Option(False, "--full", help="The whole suite: 1000 items per dataset (slow on CPU)."),
    datasets: str = typer.Option(None, "--datasets", help="Comma-separated dataset names (default: all 16)."),
    seed: int = typer.Option(0, "--seed"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Run every probe on the embedded models (a subset of the suite unless --full); write one report."""
    from masktax.probes import PROBES, RunConfig, run_probe
    from masktax.probes.run import select_datasets
    from masktax.report.build import rebuild_combined
    from masktax.results.store import NOTICE, atomic_write_text

    root = Path(out)
    RunConfig(models=("check",), out=str(root), n_items=n_items, datasets=datasets, seed=seed)  # bad flags: fail now
    select_datasets(RunConfig(models=("check",), out=str(root), datasets=datasets, seed=seed))
    models = demo_models(root, seed=seed)
    for step in DEMO_STEPS:
        probe = PROBES[step.probe]
        items = 1000 if full else min(n_items, step.quick_items or n_items)
        cfg = RunConfig(models=models.names, out=str(root / step.probe), n_items=items, datasets=datasets,
                        seed=seed, progress=progress)
        options = probe.Options() if full else probe.Options(**dict(step.quick_options))
        print(f"masktax demo: {step.probe} on {', '.join(Path(m).name for m in models.names)}", file=sys.stderr)
        run_probe(probe, cfg, options, report=False)
        if models.notice:
            atomic_write_text(root / step.probe / NOTICE, models.notice + "\n")
    if models.notice:
        atomic_write_text(root / NOTICE, models.notice + "\n")
    elif (root / NOTICE).exists():
        (root / NOTICE).unlink()
    rebuild_combined(root)
    print(f"masktax demo: report at {root / 'report.md'}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
