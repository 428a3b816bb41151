"""`context-length`: the mask-induced drop against context length ([P1]).

10 relevant + d distractor examples (d = 0..30, mixed), two series: "2-masks" (the answer mask plus
one: the model can recover `].`) and "20%-masks" (max(1, round(0.2 * L)) masks in all, L = tokens
before the answer position). The paper finds the drop grows with context length. AR models see no
appended token, so they get one series, "next-token" (the one-mask accuracy), per d.
"""

from __future__ import annotations

from masktax.probes.spec import N_DISTRACTOR, Cell, ProbeSpec

GRID = (0, 5, 10, 15, 20, 25, 30)
MASK_FRACTION = 0.2


def context_length_cells(grid: tuple, kind: str) -> list[Cell]:
    if kind == "ar":
        return [Cell(series="next-token", x=d, n_distractor=d, size_hint=d) for d in grid]
    two = [Cell(series="2-masks", x=d, suffix="masks", n_extra=1, n_distractor=d, size_hint=d) for d in grid]
    frac = [
        Cell(series="20%-masks", x=d, suffix="masks", mask_fraction=MASK_FRACTION, n_distractor=d, size_hint=d)
        for d in grid
    ]
    return two + frac


SPEC = ProbeSpec(
    name="context-length",
    description="accuracy vs number of distractors, with 2 masks or masks = 20% of the input",
    x_label="distractor examples in context (plus 10 relevant)",
    x_meaning=(
        "x = number of distractor examples mixed with the 10 relevant ones; series: 2 masks (answer + 1) "
        "or masks equal to 20% of the input length"
    ),
    default_grid=GRID,
    x_values="int",
    cells=context_length_cells,
    plot="line",
    x_max=N_DISTRACTOR,
)
