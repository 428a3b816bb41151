"""`filler`: the control of the masks probe: filler tokens " ." appended instead of masks ([P1]).

The prompts of the `masks` probe with x filler tokens " ." after the answer position: the paper's
control showing that the damage comes from the mask token (LLaDA-8B loses 23 / 27 points with
masks, at most 3 / 10 with dots, Base / Instruct). AR models get the one-point reference.

    masktax probe filler --model embedded-mdlm --grid 0,2,20,200 --n-items 8 --out runs/filler
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from masktax.errors import MasktaxError
from masktax.models.loaded import LoadedModel
from masktax.probes import masks
from masktax.probes.items import Cell
from masktax.probes.options import flag, int_grid
from masktax.probes.run import ProbeRun, score_cells
from masktax.render.accuracy_report import AccuracyReport

NAME = "filler"
DESCRIPTION = "control: accuracy vs number of filler tokens ' .' appended after the answer mask"
X_LABEL = "filler tokens ' .' after the answer position"
X_MEANING = "x = number of filler tokens \" .\" after the answer position (the masks probe with dots)"
CHANGE = masks.change(NAME, "filler tax")


@dataclass(frozen=True)
class Options:
    grid: tuple[int, ...] = field(default=masks.GRID, metadata=flag("Comma-separated x values: filler tokens after the answer."))
    block_offset: int | None = field(default=None, metadata=flag(
        "Block-causal models: prepend newlines so the answer sits at this offset (0 .. B-1) in its attention "
        "block (as for masks).", stored_if_set=True))

    def __post_init__(self) -> None:
        if self.block_offset is not None and self.block_offset < 0:
            raise MasktaxError(f"--block-offset must be 0 or more, got {self.block_offset}")
        object.__setattr__(self, "grid", int_grid(self.grid, NAME))


def cells(options: Options, kind: str) -> list[Cell]:
    made = masks.appended_cells("filler", options.grid, kind)
    return [dataclasses.replace(c, block_offset=options.block_offset) for c in made]


def score(run: ProbeRun, name: str, lm: LoadedModel) -> None:
    score_cells(run, name, lm, cells(run.options, lm.kind), applicable=lm.kind != "ar")


REPORT = AccuracyReport(NAME, DESCRIPTION, X_LABEL, X_MEANING, plots="sweep", change=CHANGE)
summarize, to_csv, plot, render, glance = REPORT.summarize, REPORT.to_csv, REPORT.plot, REPORT.render, REPORT.glance

