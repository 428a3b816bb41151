"""Statistics of the results: the 95% t-interval, paired differences, per-dataset means, mean and std."""

from __future__ import annotations

import math

import pytest

from masktax.results.stats import dataset_stats, mean_ci95, mean_std, paired_difference_ci, t_quantile_975


def test_ci_matches_hand_computation():
    # values 0.5, 0.6, 0.7, 0.8: mean 0.65, s = sqrt(0.05/3), t_{0.975,3} = 3.182
    m, (lo, hi) = mean_ci95([0.5, 0.6, 0.7, 0.8])
    half = 3.182 * math.sqrt(0.05 / 3) / 2
    assert m == pytest.approx(0.65)
    assert lo == pytest.approx(0.65 - half) and hi == pytest.approx(0.65 + half)
    assert mean_ci95([0.4]) == (0.4, None)
    assert mean_ci95([0.3, 0.3, 0.3])[1] == pytest.approx([0.3, 0.3])


def test_accuracy_ci_is_clipped_to_the_unit_interval():
    values = [1.0] * 14 + [0.5, 0.6]
    m, (lo, hi) = mean_ci95(values)
    assert hi > 1.0  # the plain t-interval leaves the range
    m2, (lo2, hi2) = mean_ci95(values, bounds=(0.0, 1.0))
    assert m2 == m and lo2 == pytest.approx(lo) and hi2 == 1.0
    assert mean_ci95([0.0, 0.0, 0.1], bounds=(0.0, 1.0))[1][0] == 0.0


def test_t_quantiles():
    assert t_quantile_975(15) == 2.131  # 16 datasets
    assert t_quantile_975(40) == pytest.approx(2.021, abs=1e-3)
    assert t_quantile_975(120) == pytest.approx(1.980, abs=1e-3)
    assert t_quantile_975(31) < t_quantile_975(30)


def test_paired_difference_ci_uses_datasets_in_both_points():
    first = {"per_dataset": {"d1": 1.0, "d2": 0.5, "d3": 0.75}}
    last = {"per_dataset": {"d1": 0.5, "d2": 0.5, "d3": 0.25, "d4": 0.0}}  # d4 only at one x: ignored
    m, ci = paired_difference_ci(first, last)  # differences 0.5, 0, 0.5
    half = 4.303 * (1 / 12) ** 0.5 / 3**0.5  # t_{0.975,2} * s / sqrt(n), s = sqrt(1/12)
    assert m == pytest.approx(1 / 3) and ci == pytest.approx([1 / 3 - half, 1 / 3 + half])
    assert paired_difference_ci({"per_dataset": {"d1": 1.0}}, {"per_dataset": {"d1": 0.0}})[1] is None


def test_dataset_stats_average_datasets_and_skip_missing_values():
    by_dataset = {"a": [{"v": 1.0}, {"v": 0.0}], "b": [{"v": 1.0}, {"v": None}], "c": [{"v": None}]}
    s = dataset_stats(by_dataset, lambda r: r["v"])
    assert s["per_dataset"] == {"a": 0.5, "b": 1.0}  # None left out; a dataset without values too
    assert s["mean"] == pytest.approx(0.75) and s["ci95"] == pytest.approx(list(mean_ci95([0.5, 1.0])[1]))
    assert dataset_stats({"a": [{"v": None}]}, lambda r: r["v"])["mean"] is None


def test_mean_std_is_the_population_std():
    m, sd = mean_std([0.2, 0.4, 0.6])
    assert m == pytest.approx(0.4) and sd == pytest.approx((0.08 / 3) ** 0.5)
    assert mean_std([]) == (None, None)
