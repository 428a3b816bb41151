"""`accuracy`: the suite's plain few-shot accuracy, one mask ([P1]).

10 relevant + 40 distractor examples, randomly mixed (arrangement "mixed", seeded), the test
question at the right end ending `Answer:[<mask>].`. The answer is read at the mask; for an AR model
it is the next token after `Answer:[` (what sits at that position is invisible to it).

    masktax probe accuracy --model embedded-mdlm --model embedded-ar --n-items 8 --out runs/acc
"""

from __future__ import annotations

from dataclasses import dataclass

from masktax.models.loaded import LoadedModel
from masktax.probes.items import Cell
from masktax.probes.run import ProbeRun, score_cells
from masktax.render import markdown
from masktax.render.accuracy_report import AccuracyReport

NAME = "accuracy"
DESCRIPTION = "few-shot accuracy with one mask: `Answer:[<mask>].` (AR: next token)"
X_LABEL = ""
X_MEANING = "One point per model (x = 0): the prompt ends `Answer:[<mask>].` (10 relevant + 40 distractors, mixed)"


@dataclass(frozen=True)
class Options:
    """The accuracy probe takes only the flags every probe takes."""


def cells(options: Options, kind: str) -> list[Cell]:
    """One cell, x = 0, for every model kind."""
    return [Cell(series="one_mask", x=0)]


def score(run: ProbeRun, name: str, lm: LoadedModel) -> None:
    score_cells(run, name, lm, cells(run.options, lm.kind))


REPORT = AccuracyReport(NAME, DESCRIPTION, X_LABEL, X_MEANING, plots="bars")
summarize, to_csv, plot, render = REPORT.summarize, REPORT.to_csv, REPORT.plot, REPORT.render


def glance(summary: dict, models: list[str]) -> list[tuple[str, list[str]]]:
    """The At-a-glance row: each model's one-mask accuracy."""
    acc = summary["models"]
    return [("accuracy with one mask (AR: next token), % [95% CI]",
             [markdown.cell(acc[m][0]) if acc.get(m) else "n/a" for m in models])]
