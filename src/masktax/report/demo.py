"""The demo: every probe on the embedded models, one combined report (`masktax demo`, `make demo`).

The models come from `demo_models` alone: the shipped embedded checkpoints (`embedded-mdlm`,
`embedded-ar`, and `embedded-mdlm-dream` when installed). While they are not installed, the demo
says so and builds untrained tiny RANDOM stand-ins instead (LLaDA-like in place, Dream-like
shifted, Llama AR) over the suite's word-level tokenizer, saved under OUT/models/; the report
then carries a banner saying so. Once the embedded weights exist the demo uses them by itself.

The quick demo (the default) runs every probe on 5 test points per dataset with short sweeps that
keep each curve's ends and its bend, in about 5 minutes on 2 CPU cores; `--full` runs every probe's
own grid on the whole suite (1000 test points per dataset).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from masktax.errors import MasktaxError
from masktax.probes import PROBES, RunConfig, run_probe
from masktax.probes.engine import shared_scores
from masktax.probes.run import select_datasets
from masktax.report.build import rebuild_combined
from masktax.results.store import NOTICE, atomic_write_text

EMBEDDED = ("embedded-mdlm", "embedded-ar", "embedded-mdlm-dream")
DEMO_N_ITEMS = 5  # per dataset (80 test points): every probe on the embedded models in ~5 minutes on 2 CPU cores


@dataclass(frozen=True)
class DemoStep:
    """One probe of the demo; `quick_*` shrink the multi-pass probes in the default (non --full) demo."""

    probe: str
    quick_options: tuple[tuple[str, object], ...] = ()  # Options fields of the probe
    quick_items: int | None = None  # test points per dataset, if fewer than the demo's


# The quick demo's sweeps keep each curve's ends and its bend (the --full demo: every probe's own grid).
QUICK_MASKS_GRID = (0, 2, 20, 200)  # the baseline x = 2 and the last x give the headline change
DEMO_STEPS = (
    DemoStep("accuracy"),
    DemoStep("masks", (("grid", QUICK_MASKS_GRID),)),
    DemoStep("filler", (("grid", QUICK_MASKS_GRID),)),  # the same x as masks: paired per x
    DemoStep("format", (("grid", (0, 200)), ("kinds", ("masks", "text")), ("closures", ("none", "after-answer"))),
             quick_items=2),  # 6 distinct prompts per item (n = 0 shared)
    DemoStep("uncertainty", (("grid", QUICK_MASKS_GRID),)),  # after masks and filler: reuses their passes
    DemoStep("locality", (("grid", (0, 20, 40)),)),  # block far, middle, next to the masks
    DemoStep("query-position"),
    DemoStep("context-length", (("grid", (0, 15, 30)),)),
    DemoStep("unmask", (("steps", (4,)), ("grid", (0, 50))), quick_items=2),  # 4 steps: one of [P1]'s 2, 4, 6
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
    from masktax.models import load  # looked up at call time (tests replace it)
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





def run_demo(root: Path, *, n_items: int, full: bool, datasets: str | None, seed: int, progress: bool,
             device: str = "auto") -> Path:
    """Run every step of DEMO_STEPS into root/<probe> and write root/report.md; returns the report's path."""
    RunConfig(models=("check",), out=str(root), n_items=n_items, datasets=datasets, seed=seed)  # bad flags: fail now
    select_datasets(RunConfig(models=("check",), out=str(root), datasets=datasets, seed=seed))
    models = demo_models(root, seed=seed)
    with shared_scores():  # filler x = 0 repeats masks x = 0, query-position right repeats accuracy
        for step in DEMO_STEPS:
            probe = PROBES[step.probe]
            items = 1000 if full else min(n_items, step.quick_items or n_items)
            cfg = RunConfig(models=models.names, out=str(root / step.probe), n_items=items, datasets=datasets,
                            seed=seed, device=device, progress=progress)
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
    return root / "report.md"
