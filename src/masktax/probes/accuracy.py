"""`accuracy`: the suite's plain few-shot accuracy, one mask ([P1]).

10 relevant + 40 distractor examples, randomly mixed (arrangement "mixed", seeded), the test
question at the right end ending `Answer:[<mask>].`. The answer is read at the mask; for an AR model
it is the next token after `Answer:[` (what sits at that position is invisible to it).

    masktax probe accuracy --model embedded-mdlm --model embedded-ar --n-items 8 --out runs/acc
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from masktax.models.loaded import LoadedModel
from masktax.probes.items import Cell
from masktax.probes.run import ProbeRun, score_cells
from masktax.render import figures, markdown
from masktax.results.summary import summarize_run, summary_csv

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


summarize = summarize_run
to_csv = summary_csv


def plot(summary: dict, plots_dir: Path) -> list[tuple[str, str]]:
    return figures.bar_plots(summary, plots_dir, name=NAME, xlabel=X_LABEL)


def render(config: dict, env: dict, summary: dict, plots: list, *, level: int = 1, prefix: str = "",
           notice: str | None = None) -> str:
    return markdown.render(config=config, env=env, summary=summary, plots=plots, description=DESCRIPTION,
                           x_meaning=X_MEANING, level=level, prefix=prefix, notice=notice)


def glance(summary: dict, models: list[str]) -> list[tuple[str, list[str]]]:
    """The At-a-glance row: each model's one-mask accuracy."""
    acc = summary["models"]
    return [("accuracy with one mask (AR: next token), % [95% CI]",
             [markdown.cell(acc[m][0]) if acc.get(m) else "n/a" for m in models])]
