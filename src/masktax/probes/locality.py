"""`locality`: does the distance between the relevant examples and the mask matter? ([P1])

The 10 relevant examples form one block (fixed inner order) placed after x of the 40 distractors
(arrangement "block", x = 0..40); the test question at the right end ends `Answer:[<mask>].`.
Larger x = the block sits closer to the mask. The paper finds MDLMs lose accuracy monotonically as
the block moves away from the mask (recency without primacy).

    masktax probe locality --model embedded-mdlm --grid 0,20,40 --n-items 8 --out runs/locality
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

NAME = "locality"
DESCRIPTION = "accuracy vs position of the block of 10 relevant examples among 40 distractors"
X_LABEL = "start of the relevant block (distractors before it; larger = closer to the mask)"
X_MEANING = (
    "x = start position of the 10-example relevant block, i.e. how many of the 40 distractors "
    "precede it; larger x = the block is closer to the masked question at the right end"
)
GRID = tuple(range(0, N_DISTRACTOR_CONTEXT + 1, 5))
CHANGE = markdown.Change(
    what="block far (x first) minus block near (x last)",
    glance="locality: acc(block near the mask) - acc(far), points [paired 95% CI]", glance_sign=-1,
)


@dataclass(frozen=True)
class Options:
    grid: tuple[int, ...] = field(default=GRID, metadata=flag("Comma-separated block starts x (0..40)."))

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", int_grid(self.grid, NAME, maximum=N_DISTRACTOR_CONTEXT))


def cells(options: Options, kind: str) -> list[Cell]:
    return [Cell(series="block", x=x, arrangement="block", block_position=x) for x in options.grid]


def score(run: ProbeRun, name: str, lm: LoadedModel) -> None:
    score_cells(run, name, lm, cells(run.options, lm.kind))


REPORT = AccuracyReport(NAME, DESCRIPTION, X_LABEL, X_MEANING, plots="line", change=CHANGE,
                        note=" Larger x = the relevant block is closer to the mask.")
summarize, to_csv, plot, render, glance = REPORT.summarize, REPORT.to_csv, REPORT.plot, REPORT.render, REPORT.glance

