"""`query-position`: the masked test question at the left, middle or right of the context ([P1]).

10 relevant + 40 distractors mixed; the masked test question sits at the left end, in the middle
or at the right end (the rest of the context follows its `].`).

    masktax probe query-position --model embedded-mdlm --n-items 8 --out runs/query-position
"""

from __future__ import annotations

from dataclasses import dataclass, field

from masktax.models.loaded import LoadedModel
from masktax.probes.items import Cell
from masktax.probes.options import flag, name_grid
from masktax.probes.run import ProbeRun, score_cells
from masktax.render.accuracy_report import AccuracyReport

NAME = "query-position"
DESCRIPTION = "accuracy with the masked test question at the left, middle or right of the context"
X_LABEL = "position of the masked test question"
X_MEANING = "x = where the masked test question sits in the context of 50 mixed examples"
POSITIONS = ("left", "middle", "right")


@dataclass(frozen=True)
class Options:
    grid: tuple[str, ...] = field(default=POSITIONS, metadata=flag("Comma-separated positions: left, middle, right."))

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", name_grid(self.grid, NAME, POSITIONS))


def refuses(options: Options, kind: str) -> str | None:
    """Why a model of `kind` cannot be scored with `options` (None: it can); run_probe asks before any
    model is scored. A uniform-noise model's canvas ends the prompt: its test question sits at the right only."""
    away = [x for x in options.grid if x != "right"]
    if kind == "uniform" and away:
        return (f"it is a uniform-noise model whose canvas ends the prompt, so the test question "
                f"cannot sit at the {' or '.join(away)}; use --grid right")
    return None


def cells(options: Options, kind: str) -> list[Cell]:
    return [Cell(series="query", x=x, query_position=x) for x in options.grid]


def score(run: ProbeRun, name: str, lm: LoadedModel) -> None:
    score_cells(run, name, lm, cells(run.options, lm.kind))


REPORT = AccuracyReport(NAME, DESCRIPTION, X_LABEL, X_MEANING, plots="bars")
summarize, to_csv, plot, render, glance = REPORT.summarize, REPORT.to_csv, REPORT.plot, REPORT.render, REPORT.glance

