"""`locality` and `query-position`: does the distance to the mask matter? ([P1])

locality: the 10 relevant examples form one block (fixed inner order) placed after x of the 40
distractors (arrangement "block", x = 0..40); the test question at the right end ends
`Answer:[<mask>].`. Larger x = the block sits closer to the mask. The paper finds MDLMs lose
accuracy monotonically as the block moves away from the mask (recency without primacy).

query-position: 10 relevant + 40 distractors mixed, the masked test question at the left, middle or
right of the context (the rest of the context follows its `].`).
"""

from __future__ import annotations

from masktax.probes.spec import N_DISTRACTOR, Cell, ProbeSpec

BLOCK_GRID = tuple(range(0, N_DISTRACTOR + 1, 5))
QUERY_POSITIONS = ("left", "middle", "right")


def locality_cells(grid: tuple, kind: str) -> list[Cell]:
    return [Cell(series="block", x=x, arrangement="block", block_position=x) for x in grid]


def query_position_cells(grid: tuple, kind: str) -> list[Cell]:
    return [Cell(series="query", x=x, query_position=x) for x in grid]


LOCALITY = ProbeSpec(
    name="locality",
    description="accuracy vs position of the block of 10 relevant examples among 40 distractors",
    x_label="start of the relevant block (distractors before it; larger = closer to the mask)",
    x_meaning=(
        "x = start position of the 10-example relevant block, i.e. how many of the 40 distractors "
        "precede it; larger x = the block is closer to the masked question at the right end"
    ),
    default_grid=BLOCK_GRID,
    x_values="int",
    cells=locality_cells,
    plot="line",
    x_max=N_DISTRACTOR,
)

QUERY_POSITION = ProbeSpec(
    name="query-position",
    description="accuracy with the masked test question at the left, middle or right of the context",
    x_label="position of the masked test question",
    x_meaning="x = where the masked test question sits in the context of 50 mixed examples",
    default_grid=QUERY_POSITIONS,
    x_values=QUERY_POSITIONS,
    cells=query_position_cells,
    plot="bars",
)
