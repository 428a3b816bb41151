"""What a probe is: a grid of cells (series, x, prompt layout) plus how to read and plot it.

A `Cell` is one prompt layout; applied to every test point of every dataset it gives the probe's
items at one (series, x). A `ProbeSpec` turns the grid into cells for a model kind, so AR models
can get a different (or reference-only) set of cells than MDLMs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from masktax.errors import MasktaxError

N_RELEVANT = 10
N_DISTRACTOR = 40
REFERENCE = "reference"  # the series of an AR model's one-point reference on a mask sweep


@dataclass(frozen=True)
class Cell:
    """One prompt layout (see masktax.prompts.encode.encode_item for the suffix kinds).

    suffix: "one_mask" (`Answer:[<mask>].`), "masks" (answer mask + n_extra masks, canvas tokens for
    uniform-noise models) or "filler" (answer mask + n_extra filler tokens " .").
    mask_fraction: when set, the prompt gets max(1, round(f * input length)) masks in all
    (n_extra = that - 1), the input length being the tokens before the answer position.
    """

    series: str
    x: int | str
    suffix: str = "one_mask"
    n_extra: int = 0
    mask_fraction: float | None = None
    arrangement: str = "mixed"
    block_position: int | None = None
    n_distractor: int = N_DISTRACTOR
    query_position: str = "right"
    size_hint: int = 0  # larger = longer prompts; the preflight length check encodes the largest


@dataclass(frozen=True)
class ProbeSpec:
    """One entry of PROBES.

    cells(grid, kind) -> the cells to score for a model of that kind ("mdlm", "ar", "uniform").
    x_values: "int" (non-negative integers within [x_min, x_max]), a tuple of allowed names, or
    None (no grid). plot: "sweep" (log-x lines), "line", "bars" or "single".
    appends_after_answer: the sweep only adds tokens after the answer; for a causal model they are
    invisible, so AR models get a one-point reference instead of faked sweep points.
    """

    name: str
    description: str
    x_label: str
    x_meaning: str
    default_grid: tuple[int | str, ...] | None
    x_values: str | tuple[str, ...] | None
    cells: Callable[[tuple, str], list[Cell]]
    plot: str
    appends_after_answer: bool = False
    x_min: int = 0
    x_max: int | None = None

    def check_grid(self, grid: tuple | None) -> tuple | None:
        """The validated grid (default if None) with ints parsed; MasktaxError on bad values."""
        if self.x_values is None:
            if grid is not None:
                raise MasktaxError(f"the {self.name} probe has no --grid")
            return None
        if grid is None:
            return self.default_grid
        if not grid:
            raise MasktaxError(f"--grid is empty for the {self.name} probe")
        out: list[int | str] = []
        for value in grid:
            if isinstance(self.x_values, tuple):
                if str(value) not in self.x_values:
                    raise MasktaxError(
                        f"--grid value '{value}' is not valid for {self.name}; use {','.join(self.x_values)}"
                    )
                out.append(str(value))
                continue
            try:
                n = int(value)
            except (TypeError, ValueError):
                raise MasktaxError(f"--grid value '{value}' is not an integer") from None
            hi = "" if self.x_max is None else f" and at most {self.x_max}"
            if n < self.x_min or (self.x_max is not None and n > self.x_max):
                raise MasktaxError(f"--grid value {n} is out of range for {self.name}: at least {self.x_min}{hi}")
            out.append(n)
        if len(set(out)) != len(out):
            raise MasktaxError(f"--grid has repeated values: {','.join(map(str, grid))}")
        return tuple(out)
