"""`context-length`: the mask-induced drop against context length ([P1]).

10 relevant + d distractor examples (d = 0..30, mixed), two series: "2-masks" (the answer mask plus
one: the model can recover `].`) and "20%-masks" (max(1, round(0.2 * L)) masks in all, L = tokens
before the answer position). The paper finds the drop grows with context length. AR models see no
appended token, so they get one series, "next-token" (the one-mask accuracy), per d.

    masktax probe context-length --model embedded-mdlm --grid 0,15,30 --n-items 8 --out runs/context
"""

from __future__ import annotations

from dataclasses import dataclass, field

from masktax.models.loaded import LoadedModel
from masktax.probes.items import Cell
from masktax.probes.options import flag, int_grid
from masktax.probes.run import ProbeRun, score_cells
from masktax.render import markdown
from masktax.render.accuracy_report import AccuracyReport
from masktax.tasks.suite import N_DISTRACTOR_CONTEXT

NAME = "context-length"
DESCRIPTION = "accuracy vs number of distractors, with 2 masks or masks = 20% of the input"
X_LABEL = "distractor examples in context (plus 10 relevant)"
X_MEANING = (
    "x = number of distractor examples mixed with the 10 relevant ones; series: 2 masks (answer + 1) "
    "or masks equal to 20% of the input length"
)
GRID = (0, 5, 10, 15, 20, 25, 30)
MASK_FRACTION = 0.2
STYLES = {"2-masks": "-", "20%-masks": "--", "next-token": ":"}
CHANGE = markdown.Change(
    what="drop from d=first to d=last",
    glance="context length: acc(fewest distractors) - acc(most), points [paired 95% CI]",
)


@dataclass(frozen=True)
class Options:
    grid: tuple[int, ...] = field(default=GRID, metadata=flag("Comma-separated distractor counts d (0..40)."))

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", int_grid(self.grid, NAME, maximum=N_DISTRACTOR_CONTEXT))


def cells(options: Options, kind: str) -> list[Cell]:
    if kind == "ar":
        return [Cell(series="next-token", x=d, n_distractor=d, size_hint=d) for d in options.grid]
    two = [Cell(series="2-masks", x=d, suffix="masks", n_extra=1, n_distractor=d, size_hint=d) for d in options.grid]
    frac = [
        Cell(series="20%-masks", x=d, suffix="masks", mask_fraction=MASK_FRACTION, n_distractor=d, size_hint=d)
        for d in options.grid
    ]
    return two + frac


def score(run: ProbeRun, name: str, lm: LoadedModel) -> None:
    score_cells(run, name, lm, cells(run.options, lm.kind))


REPORT = AccuracyReport(NAME, DESCRIPTION, X_LABEL, X_MEANING, plots="line", change=CHANGE, styles=STYLES)
summarize, to_csv, plot, render, glance = REPORT.summarize, REPORT.to_csv, REPORT.plot, REPORT.render, REPORT.glance

