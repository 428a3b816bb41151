"""`locality`: does the distance between the relevant examples and the mask matter? ([P1])

The 10 relevant examples form one block (fixed inner order) placed after x of the 40 distractors
(arrangement "block", x = 0..40); the test question at the right end ends `Answer:[<mask>].`.
Larger x = the block sits closer to the mask. The paper finds MDLMs lose accuracy monotonically as
the block moves away from the mask (recency without primacy).

    masktax probe locality --model embedded-mdlm --grid 0,20,40 --n-items 8 --out runs/locality

`--suite mdc` ([P1] A.8): the 30 in-context examples of the multi-dimensional classification sets in
three orders (x: "mixed", "nearest-next" = nearest examples next to the masked question,
"nearest-far" = nearest examples far from it), with the question at the right or left end (series).
Locality does not apply to HotPotQA or the ICL sets (no relevant block, no distances).

    masktax probe locality --suite mdc --model embedded-mdlm --labels letters --n-items 8 --out runs/mdc-locality
"""

from __future__ import annotations

from dataclasses import dataclass, field

from masktax.errors import MasktaxError
from masktax.models.loaded import LoadedModel
from masktax.probes.items import Cell
from masktax.probes.options import flag, int_grid, suite_choice
from masktax.probes.run import ProbeRun, score_cells
from masktax.render import markdown
from masktax.render.accuracy_report import AccuracyReport, ReportChoice
from masktax.tasks.appendix import ORDERS
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
    suite: str = field(default="main", metadata=flag(
        "main (the 16 datasets) or mdc (in-context orders by distance; docs/suites.md).", stored_if_set=True))
    shots: int | None = field(default=None, metadata=flag("mdc: in-context examples (default 30).", stored_if_set=True))
    labels: str = field(default="words", metadata=flag(
        "mdc: 'words' (Above/Below) or 'letters' (A/B: word-level tokenizers).", stored_if_set=True))

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", int_grid(self.grid, NAME, maximum=N_DISTRACTOR_CONTEXT))
        if suite_choice(self).name not in ("main", "mdc"):
            raise MasktaxError(f"the locality probe applies to the main and mdc suites, not '{self.suite}'")
        if self.suite == "mdc" and self.grid != GRID:
            raise MasktaxError("--grid is the main suite's block position; with --suite mdc locality sweeps the "
                               "in-context orders at both ends")


def cells(options: Options, kind: str) -> list[Cell]:
    if options.suite == "mdc":
        return [Cell(series=end, x=order, arrangement=order, query_position=end)
                for end in ("right", "left") for order in ORDERS]
    return [Cell(series="block", x=x, arrangement="block", block_position=x) for x in options.grid]


def score(run: ProbeRun, name: str, lm: LoadedModel) -> None:
    score_cells(run, name, lm, cells(run.options, lm.kind))


REPORT = AccuracyReport(NAME, DESCRIPTION, X_LABEL, X_MEANING, plots="line", change=CHANGE,
                        note=" Larger x = the relevant block is closer to the mask.")
ORDER_REPORT = AccuracyReport(
    NAME, "accuracy vs order of the in-context examples by distance to the test point (mdc)",
    "order of the 30 in-context examples", "x = in-context order: mixed (random), nearest-next (the nearest examples "
    "next to the masked question), nearest-far (the nearest examples far from it); series: the question at the "
    "right or left end", plots="bars")
summarize, to_csv = REPORT.summarize, REPORT.to_csv


def report_of(summary: dict) -> AccuracyReport:
    """The in-context order report for an mdc run (its x are order names), else the block report."""
    orders = any(isinstance(p["x"], str) for points in summary["models"].values() for p in points)
    return ORDER_REPORT if orders else REPORT


CHOICE = ReportChoice(report_of)
plot, render, glance = CHOICE.plot, CHOICE.render, CHOICE.glance
