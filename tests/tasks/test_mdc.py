"""`masktax.tasks.mdc` and `masktax.tasks.appendix`: the generators against their definitions,
class balance, ranges, orderings by distance, and the export's bytes per seed."""

from __future__ import annotations

import hashlib
import json
import math
import random

import numpy as np
import pytest

from masktax.errors import MasktaxError
from masktax.tasks import mdc
from masktax.tasks.appendix import Item, TaskSet, balanced_order, distance, order_context
from masktax.tasks.export import export_suite, verify_export

# sha256 of the manifest's per-file digests of `masktax suite export --suite mdc --seed 0 --n-test 50`.
GOLDEN_SEED0 = "302676c8700157994700fd5faa328dde782204a9a4d00c927571542cf0b2e458"


@pytest.fixture(scope="module")
def suite():
    return mdc.build_suite(seed=0)


@pytest.mark.parametrize("n", [11, 200])
def test_generators_match_scikit_learn(n):
    datasets = pytest.importorskip("sklearn.datasets")
    for seed in (0, 7):
        X, y = mdc.make_moons(n, noise=0.1, rs=np.random.RandomState(seed))
        Xs, ys = datasets.make_moons(n, noise=0.1, random_state=seed)
        assert np.array_equal(X, Xs) and np.array_equal(y, ys)
        X, y = mdc.make_circles(n, noise=0.05, factor=0.5, rs=np.random.RandomState(seed))
        Xs, ys = datasets.make_circles(n, noise=0.05, factor=0.5, random_state=seed)
        assert np.array_equal(X, Xs) and np.array_equal(y, ys)
        X, t = mdc.make_swiss_roll(n, noise=0.3, rs=np.random.RandomState(seed))
        Xs, ts = datasets.make_swiss_roll(n, noise=0.3, random_state=seed)
        assert np.array_equal(X, Xs) and np.array_equal(t, ts)


def test_moons_and_circles_follow_their_definition_without_noise():
    X, y = mdc.make_moons(100, noise=0.0, rs=np.random.RandomState(0))
    upper, lower = X[y == 0], X[y == 1]
    assert np.allclose(np.hypot(upper[:, 0], upper[:, 1]), 1) and (upper[:, 1] >= -1e-12).all()
    assert np.allclose(np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1) and (lower[:, 1] <= 0.5 + 1e-12).all()
    X, y = mdc.make_circles(100, noise=0.0, factor=0.5, rs=np.random.RandomState(0))
    r = np.hypot(X[:, 0], X[:, 1])
    assert np.allclose(r[y == 0], 1) and np.allclose(r[y == 1], 0.5)
    X, t = mdc.make_swiss_roll(100, noise=0.0, rs=np.random.RandomState(0))
    assert np.allclose(X[:, 0], t * np.cos(t)) and np.allclose(X[:, 2], t * np.sin(t))
    assert (t >= 1.5 * np.pi).all() and (t <= 4.5 * np.pi).all() and (X[:, 1] >= 0).all() and (X[:, 1] <= 21).all()


def test_twenty_datasets_balanced_in_range(suite):
    assert [t.name for t in suite] == list(mdc.DATASET_NAMES) and len(suite) == 20
    for task in suite:
        assert task.labels == ("Above", "Below") and task.shots == 30
        assert len(task.pool) == 100 and len(task.tests) == 1000
        for items, half in ((task.pool, 50), (task.tests, 500)):
            assert sum(it.answer == 0 for it in items) == half
            for k in range(1, len(items) + 1, 7):  # every prefix balanced within one
                assert abs(2 * sum(it.answer == 0 for it in items[:k]) - k) <= 1
        points = np.array([it.point for it in task.pool + task.tests])
        assert points.shape == (1100, 3) and points.min() >= 1 and points.max() <= 100
        assert task.pool[0].text == "Input: " + " ".join(map(str, task.pool[0].point))
        if not task.name.startswith("nonlinear"):  # min-max scaled: both ends occur in each scaled column
            scaled = 3 if task.name.startswith("swiss_roll") else 2
            assert (points[:, :scaled].min(axis=0) == 1).all() and (points[:, :scaled].max(axis=0) == 100).all()


def test_nonlinear_labels_are_the_logistic_threshold():
    X, y = mdc.nonlinear(1100, np.random.RandomState(3))
    assert len({tuple(r) for r in X.tolist()}) == 1100 and (y == 0).sum() == 550
    w = np.random.RandomState(3).standard_normal(9)  # the generator's first draw
    z = (X - 50.5) / mdc.UNIFORM_STD
    s = np.hstack([z, z**2, z[:, [0]] * z[:, [1]], z[:, [0]] * z[:, [2]], z[:, [1]] * z[:, [2]]]) @ w
    above = s > np.median(s)
    assert np.array_equal(y == 0, above)


def test_labels_are_the_generators_classes():
    X, y = mdc.points("moons", 1100, np.random.RandomState(5))
    # the upper moon (label 0, "Above") sits higher on average in the scaled second coordinate
    assert X[y == 0, 1].mean() > X[y == 1, 1].mean()
    X, y = mdc.points("circles", 1100, np.random.RandomState(5))
    centre = np.array([50.5, 50.5])
    assert np.hypot(*(X[y == 0, :2] - centre).T).mean() > np.hypot(*(X[y == 1, :2] - centre).T).mean()


def distances(task, query, order, end) -> list[float]:
    """Each in-context example's distance to the test point, in reading order."""
    return [distance(it.point, query.point) for it in order_context(task, query, order, end, seed=0)]


def test_orders_by_distance(suite):
    task = suite[10]
    for query in task.tests[:5]:
        for end in ("right", "left"):
            nxt, far = distances(task, query, "nearest-next", end), distances(task, query, "nearest-far", end)
            # reading order: the nearest examples next to the question, or far from it
            toward_question = nxt if end == "right" else nxt[::-1]
            assert toward_question == sorted(toward_question, reverse=True)
            assert far == nxt[::-1] and sorted(nxt) == sorted(distances(task, query, "mixed", end))
    a = order_context(task, task.tests[0], "mixed", "right", seed=0)
    assert a == order_context(task, task.tests[1], "mixed", "right", seed=0)  # one fixed shuffle per dataset
    assert set(a) == set(task.pool[:30]) and a != list(task.pool[:30])


def test_orders_without_points_are_refused():
    task = TaskSet("icl", "x", ("no", "yes"), (Item("a", 0), Item("b", 1)), (Item("c", 0),), 2)
    with pytest.raises(MasktaxError, match="needs points"):
        order_context(task, task.tests[0], "nearest-next", "right", seed=0)
    with pytest.raises(MasktaxError, match="--shots must be in 0..2"):
        TaskSet("icl", "x", ("no", "yes"), task.pool, task.tests, 3)


def test_balanced_order_is_a_permutation():
    items = [Item(str(i), i % 3) for i in range(40)]
    out = balanced_order(items, 3, random.Random(0))
    assert sorted(out, key=lambda it: int(it.text)) == items
    for k in range(1, 31):
        counts = [sum(it.answer == a for it in out[:k]) for a in range(3)]
        assert max(counts) - min(counts) <= 1


def test_seeds_give_the_same_or_other_datasets():
    a, b, c = (mdc.build_dataset("circles_2", seed=s) for s in (0, 0, 1))
    assert a == b and a.tests != c.tests
    with pytest.raises(MasktaxError, match="unknown mdc dataset"):
        mdc.build_dataset("spiral_0")


def test_export_is_byte_identical_per_seed(tmp_path):
    first = export_suite(tmp_path / "a", seed=0, n_test=50, suite="mdc")
    second = export_suite(tmp_path / "b", seed=0, n_test=50, suite="mdc")
    assert first == second and first["suite"] == "mdc" and len(first["datasets"]) == 20
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert hashlib.sha256(json.dumps(first["files"], sort_keys=True).encode()).hexdigest() == GOLDEN_SEED0
    verify_export(tmp_path / "a")
    record = json.loads((tmp_path / "a" / "moons_0.jsonl").read_text().splitlines()[0])
    assert set(record) == {"dataset", "index", "role", "point", "label", "answer"} and record["role"] == "test"
    other = export_suite(tmp_path / "c", seed=1, n_test=50, suite="mdc")
    assert other["files"]["moons_0.jsonl"] != first["files"]["moons_0.jsonl"]
    with pytest.raises(MasktaxError, match="main or mdc"):
        export_suite(tmp_path / "d", suite="icl")
    assert math.isclose(mdc.UNIFORM_STD, math.sqrt((100**2 - 1) / 12), abs_tol=1e-3)


def test_cli_export_mdc(tmp_path, capsys):
    from masktax.cli.main import main

    assert main(["suite", "export", str(tmp_path / "m"), "--suite", "mdc", "--n-test", "50"]) == 0
    assert "wrote 20 datasets x 50 tests (seed 0)" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert hashlib.sha256(json.dumps(manifest["files"], sort_keys=True).encode()).hexdigest() == GOLDEN_SEED0
    assert main(["suite", "export", str(tmp_path / "x"), "--suite", "icl"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("masktax: error: --suite for export must be main or mdc") and err.count("\n") == 1
