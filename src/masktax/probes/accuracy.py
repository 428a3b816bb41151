"""`accuracy`: the suite's plain few-shot accuracy, one mask ([P1]).

10 relevant + 40 distractor examples, randomly mixed (arrangement "mixed", seeded), the test
question at the right end ending `Answer:[<mask>].`. The answer is read at the mask; for an AR model
it is the next token after `Answer:[` (what sits at that position is invisible to it).
"""

from __future__ import annotations

from masktax.probes.spec import Cell, ProbeSpec


def accuracy_cells(grid: tuple | None, kind: str) -> list[Cell]:
    """One cell, x = 0, for every model kind."""
    return [Cell(series="one_mask", x=0)]


SPEC = ProbeSpec(
    name="accuracy",
    description="few-shot accuracy with one mask: `Answer:[<mask>].` (AR: next token)",
    x_label="",
    x_meaning="One point per model (x = 0): the prompt ends `Answer:[<mask>].` (10 relevant + 40 distractors, mixed)",
    default_grid=None,
    x_values=None,
    cells=accuracy_cells,
    plot="single",
)
