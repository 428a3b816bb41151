"""`masks` and `filler`: accuracy against tokens appended after the answer position ([P1]).

10 relevant + 40 distractor examples, randomly mixed; the prompt ends `Answer:[` + the answer
position + x extra tokens. `masks` appends x masks (one decoding step; only the first mask is
scored); for uniform-noise models (DiffusionGemma) the answer position and the x extras are canvas
tokens (random tokens, seeded per item), recorded with suffix "canvas". `filler` appends x
filler tokens " ." instead: the paper's control showing that the damage comes from the mask token
(LLaDA-8B loses 23 / 27 points with masks, at most 3 / 10 with dots, Base / Instruct).

A causal model never sees tokens after the position it predicts, so these sweeps do not apply to
AR models: they get a single reference point (the one-mask accuracy), drawn as a dashed line.
"""

from __future__ import annotations

from collections.abc import Callable

from masktax.probes.spec import REFERENCE, Cell, ProbeSpec

GRID = (0, 1, 2, 5, 10, 20, 50, 100, 200)


def _sweep(suffix: str) -> Callable[[tuple, str], list[Cell]]:
    def cells(grid: tuple, kind: str) -> list[Cell]:
        if kind == "ar":
            return [Cell(series=REFERENCE, x=0)]
        return [Cell(series=suffix, x=x, suffix=suffix, n_extra=x, size_hint=x) for x in grid]

    return cells


masks_cells = _sweep("masks")
filler_cells = _sweep("filler")

MASKS = ProbeSpec(
    name="masks",
    description="accuracy vs number of extra masks appended after the answer mask",
    x_label="extra masks after the answer position",
    x_meaning="x = number of EXTRA mask tokens after the answer position (x = 0: prompt ends `Answer:[<mask>`)",
    default_grid=GRID,
    x_values="int",
    cells=masks_cells,
    plot="sweep",
    appends_after_answer=True,
)

FILLER = ProbeSpec(
    name="filler",
    description="control: accuracy vs number of filler tokens ' .' appended after the answer mask",
    x_label="filler tokens ' .' after the answer position",
    x_meaning="x = number of filler tokens \" .\" after the answer position (the masks probe with dots)",
    default_grid=GRID,
    x_values="int",
    cells=filler_cells,
    plot="sweep",
    appends_after_answer=True,
)
