"""Multi-dimensional classification suite of [P1] (appendix A.8): 4 generators x 5 seeds = 20 datasets.

Binary classification of points with 3 integer coordinates in 1..100, rendered

    Input: 23 71 5
    Answer:[Above].

with labels "Above" / "Below". Each dataset has 100 training points (the in-context pool, 50 per
label) and 1000 test points (500 per label); a prompt shows 30 of the training points (15 per
label) in one of the orders of `masktax.tasks.appendix` (random, nearest next to the question,
nearest far from it). Datasets are named `<type>_<k>`, k = 0..4 ([P1]'s 5 seeds); the suite seed
(`--seed`) derives each dataset's own seed, so a dataset is byte-identical for a seed.

The generators (all draws from one `numpy.random.RandomState` per dataset, seeded from
sha256(suite seed, name)):
- nonlinear ([P1]: random integer features, squares and interactions, logistic of a random weighted
  sum, threshold 0.5): distinct points uniform in 1..100^3; z = (x - 50.5) / 28.866 per coordinate
  (the uniform's mean and std); features z1..z3, z1^2..z3^2, z1z2, z1z3, z2z3; weights w ~ N(0, 1) (drawn before the points);
  s = w . f; bias b = minus the midpoint of the two middle scores, so p = sigmoid(s + b) > 0.5
  ("Above") holds for exactly half of the points.
- swiss_roll, moons, circles: scikit-learn's `make_swiss_roll`, `make_moons`, `make_circles`,
  implemented here from their published definitions (same draws from the same RandomState:
  tests/tasks/test_mdc.py checks equality with scikit-learn when it is installed, the `dev` extra),
  so the suite needs no scikit-learn and cannot change with its releases. Parameters (not stated by
  [P1]; ours): moons noise 0.1; circles noise 0.05, factor 0.5; swiss roll noise 0.
  Labels: moons "Above" = the upper moon (class 0); circles "Above" = the outer circle (class 0);
  swiss roll "Above" = the half with the larger roll position t (its generator has no classes).
- Scaling: each coordinate min-max scaled over the dataset's 1100 points to 1 + round(99 u)
  (round half up), so both ends 1 and 100 occur; moons and circles (2-D) get a third coordinate of
  random integers 1..100 (drawn after the generator's own draws).
- Split: in generator order, the first 50 points of each label are the training points, the rest
  the tests; both are then put in label-balanced order (`appendix.balanced_order`).

    masktax suite export mdc/ --suite mdc --seed 0
"""

from __future__ import annotations

import random

import numpy as np

from masktax.errors import MasktaxError
from masktax.tasks.appendix import Item, TaskSet, balanced_order
from masktax.tasks.suite import derived_seed

SUITE = "mdc"
TYPES = ("nonlinear", "swiss_roll", "moons", "circles")
N_SEEDS = 5
N_TRAIN, N_TEST = 100, 1000  # per dataset, balanced
SHOTS = 30  # in-context examples of the mask sweep ([P1])
LABELS = ("Above", "Below")
LOW, HIGH = 1, 100
MOONS_NOISE, CIRCLES_NOISE, CIRCLES_FACTOR, SWISS_ROLL_NOISE = 0.1, 0.05, 0.5, 0.0
UNIFORM_STD = 28.866  # std of the uniform distribution on 1..100: sqrt((100^2 - 1) / 12)
DATASET_NAMES: tuple[str, ...] = tuple(f"{t}_{k}" for t in TYPES for k in range(N_SEEDS))


def shuffle_rows(X: np.ndarray, y: np.ndarray, rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """X and y permuted together (scikit-learn's `shuffle`: a permutation of arange(n) in place)."""
    index = np.arange(len(y))
    rs.shuffle(index)
    return X[index], y[index]


def make_moons(n: int, *, noise: float, rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles: X [n, 2], y [n] (0 = upper moon, 1 = lower), shuffled, noised."""
    n_out, n_in = n // 2, n - n // 2
    upper = np.linspace(0, np.pi, n_out)
    lower = np.linspace(0, np.pi, n_in)
    X = np.vstack([np.append(np.cos(upper), 1 - np.cos(lower)),
                   np.append(np.sin(upper), 1 - np.sin(lower) - 0.5)]).T  # [n, 2]
    y = np.hstack([np.zeros(n_out, dtype=np.intp), np.ones(n_in, dtype=np.intp)])  # [n]
    X, y = shuffle_rows(X, y, rs)
    if noise:
        X = X + rs.normal(scale=noise, size=X.shape)
    return X, y


def make_circles(n: int, *, noise: float, factor: float, rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """A circle inside a larger one: X [n, 2], y [n] (0 = outer, 1 = inner, radius `factor`)."""
    n_out, n_in = n // 2, n - n // 2
    outer = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    inner = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    X = np.vstack([np.append(np.cos(outer), np.cos(inner) * factor),
                   np.append(np.sin(outer), np.sin(inner) * factor)]).T  # [n, 2]
    y = np.hstack([np.zeros(n_out, dtype=np.intp), np.ones(n_in, dtype=np.intp)])  # [n]
    X, y = shuffle_rows(X, y, rs)
    if noise:
        X = X + rs.normal(scale=noise, size=X.shape)
    return X, y


def make_swiss_roll(n: int, *, noise: float, rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """Points on a rolled sheet: X [n, 3] = (t cos t, 21 u, t sin t) + noise, and the roll position t [n]."""
    t = 1.5 * np.pi * (1 + 2 * rs.uniform(size=n))  # [n]
    height = 21 * rs.uniform(size=n)  # [n]
    X = np.vstack((t * np.cos(t), height, t * np.sin(t)))  # [3, n]
    X = X + noise * rs.standard_normal(size=(3, n))
    return X.T, t


def scale_to_grid(X: np.ndarray) -> np.ndarray:
    """Each column min-max scaled to the integers 1..100 (round half up)."""
    lo, hi = X.min(axis=0), X.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (LOW + np.floor((HIGH - LOW) * (X - lo) / span + 0.5)).astype(np.int64)


def nonlinear(n: int, rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """Distinct integer points [n, 3] and labels [n] (0 = Above: sigmoid(s + b) > 0.5), half each."""
    w = rs.standard_normal(9)  # drawn first: the points' draws depend on repeats
    seen: set[tuple[int, ...]] = set()
    rows: list[tuple[int, ...]] = []
    while len(rows) < n:
        for row in map(tuple, rs.randint(LOW, HIGH + 1, size=(n, 3)).tolist()):
            if row not in seen and len(rows) < n:
                seen.add(row)
                rows.append(row)
    X = np.array(rows, dtype=np.int64)  # [n, 3]
    z = (X - 50.5) / UNIFORM_STD  # [n, 3]
    f = np.hstack([z, z**2, z[:, [0]] * z[:, [1]], z[:, [0]] * z[:, [2]], z[:, [1]] * z[:, [2]]])  # [n, 9]
    s = f @ w  # [n]
    mid = np.sort(s)[n // 2 - 1 : n // 2 + 1].mean()
    p = 1 / (1 + np.exp(-(s - mid)))  # [n]
    return X, np.where(p > 0.5, 0, 1)


def points(kind: str, n: int, rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """Integer points [n, 3] in 1..100 and label indices [n] (0 = Above, 1 = Below) of one generator."""
    if kind == "nonlinear":
        return nonlinear(n, rs)
    if kind == "swiss_roll":
        X, t = make_swiss_roll(n, noise=SWISS_ROLL_NOISE, rs=rs)
        upper = np.argsort(-t, kind="stable")[: n // 2]
        y = np.ones(n, dtype=np.intp)
        y[upper] = 0
        return scale_to_grid(X), y
    if kind == "moons":
        X, y = make_moons(n, noise=MOONS_NOISE, rs=rs)
    elif kind == "circles":
        X, y = make_circles(n, noise=CIRCLES_NOISE, factor=CIRCLES_FACTOR, rs=rs)
    else:
        raise MasktaxError(f"unknown generator '{kind}'; choose from {', '.join(TYPES)}")
    third = rs.randint(LOW, HIGH + 1, size=(n, 1))
    return np.hstack([scale_to_grid(X), third]), y


def item_text(point: tuple[int, ...]) -> str:
    """`Input: 23 71 5` (the coordinates as a space-separated string)."""
    return "Input: " + " ".join(map(str, point))


def build_dataset(name: str, *, seed: int = 0, shots: int = SHOTS) -> TaskSet:
    """One dataset `<type>_<k>` (see the module docstring); byte-identical for the same seed."""
    kind, _, k = name.rpartition("_")
    if name not in DATASET_NAMES:
        raise MasktaxError(f"unknown mdc dataset '{name}'; choose from {', '.join(DATASET_NAMES)}")
    rs = np.random.RandomState(derived_seed(seed, SUITE, kind, k) % 2**32)
    X, y = points(kind, N_TRAIN + N_TEST, rs)
    items = [Item(item_text(tuple(row)), int(label), tuple(row)) for row, label in zip(X.tolist(), y.tolist(), strict=True)]
    train: list[Item] = []
    tests: list[Item] = []
    for item in items:
        (train if sum(t.answer == item.answer for t in train) < N_TRAIN // 2 else tests).append(item)
    rng = random.Random(derived_seed(seed, SUITE, name, "order"))
    pool = balanced_order(train, len(LABELS), rng)
    return TaskSet(SUITE, name, LABELS, tuple(pool), tuple(balanced_order(tests, len(LABELS), rng)), shots)


def build_suite(seed: int = 0, *, shots: int = SHOTS, names: tuple[str, ...] | None = None) -> list[TaskSet]:
    """The 20 datasets (or those named) in `DATASET_NAMES` order."""
    return [build_dataset(n, seed=seed, shots=shots) for n in (names or DATASET_NAMES)]
