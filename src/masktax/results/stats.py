"""Confidence intervals over datasets, as in [P1]: a 95% CI over the 16 per-dataset accuracies.

With per-dataset accuracies a_1..a_n (n >= 2), mean m = (1/n) sum a_i, sample standard deviation
s = sqrt(sum (a_i - m)^2 / (n - 1)), the interval is

    m +- t_{0.975, n-1} * s / sqrt(n)

t_{0.975, df} comes from a table for df <= 30 and a Cornish-Fisher expansion of the normal
quantile beyond (error < 1e-4 there), so no scipy is needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

# Two-sided 95% quantiles of Student's t, t_{0.975, df}, df = 1..30.
T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)
Z_975 = 1.959964


def t_quantile_975(df: int) -> float:
    """t_{0.975, df}: the table for df <= 30, a Cornish-Fisher expansion of z beyond."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(T_975):
        return T_975[df - 1]
    z = Z_975
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean; NaN for an empty sequence."""
    return sum(values) / len(values) if values else math.nan


def mean_ci95(values: Sequence[float], bounds: tuple[float, float] | None = None) -> tuple[float, list[float] | None]:
    """(mean, [lo, hi]) with the t-interval above; the interval is None for fewer than 2 values.

    `bounds` clips the interval to the quantity's range (accuracies: (0, 1)); with a few datasets
    near 100% the symmetric t-interval would otherwise claim accuracies above 100%.
    """
    n = len(values)
    m = mean(values)
    if n < 2:
        return m, None
    var = sum((v - m) ** 2 for v in values) / (n - 1)
    half = t_quantile_975(n - 1) * math.sqrt(var / n)
    lo, hi = m - half, m + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return m, [lo, hi]


def relative_degradation(accuracies: Sequence[float]) -> float | None:
    """[P1]'s metric for mask-agnostic (MA) fine-tuning: how much accuracy moves over a sweep,

        RD = (max_x acc(x) - min_x acc(x)) / max_x acc(x)

    so a rise counts as much as a fall. None for fewer than 2 points or a maximum <= 0.
    """
    if len(accuracies) < 2 or max(accuracies) <= 0:
        return None
    return (max(accuracies) - min(accuracies)) / max(accuracies)


def paired_difference_ci(first: dict, last: dict) -> tuple[float, list[float] | None]:
    """Mean and 95% t-CI over datasets of accuracy(first) - accuracy(last), for two summary points.

    Paired: the difference is taken per dataset (datasets in both points' `per_dataset`), so the
    interval is over the per-dataset differences of the same items, not the two accuracies' CIs.
    """
    a, b = first.get("per_dataset") or {}, last.get("per_dataset") or {}
    return mean_ci95([a[d] - b[d] for d in a if d in b])


def dataset_stats(by_dataset: Mapping[str, list[dict]], value: Callable[[dict], float | None]) -> dict:
    """Mean over datasets of each dataset's mean `value`, with the 95% t-interval over datasets.

    Records whose value is None (a non-finite number) are left out; a dataset without values too.
    Returns {"mean", "ci95", "per_dataset"} ("mean" None when no dataset has a value).
    """
    per = {}
    for name, records in by_dataset.items():
        values = [v for v in (value(r) for r in records) if v is not None]
        if values:
            per[name] = mean(values)
    m, ci = mean_ci95(list(per.values()))
    return {"mean": m if per else None, "ci95": ci, "per_dataset": per}


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and (population) standard deviation; (None, None) for no values."""
    if not values:
        return None, None
    m = sum(values) / len(values)
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def tax_split(first: dict, last: dict) -> dict[str, tuple[float, list[float] | None]]:
    """A change of accuracy between two summary points, split into a format and a comprehension part.

    Per dataset d, with acc the full accuracy and abc the A/B/C-restricted accuracy of the same items:

        total_d         = acc_d(first) - acc_d(last)
        comprehension_d = abc_d(first) - abc_d(last)      (chose worse among the letters)
        format_d        = total_d - comprehension_d        (right letter preferred, argmax not a letter)

    so the two parts add up to the total, dataset by dataset (correct = in format AND restricted
    choice right, masktax.results.summary). Each entry is (mean, 95% t-CI) over the datasets present
    in both points' accuracies and restricted accuracies (paired, as `paired_difference_ci`).
    """
    acc_a, acc_b = first.get("per_dataset") or {}, last.get("per_dataset") or {}
    abc_a, abc_b = first.get("per_dataset_abc") or {}, last.get("per_dataset_abc") or {}
    names = [d for d in acc_a if d in acc_b and d in abc_a and d in abc_b]
    total = [acc_a[d] - acc_b[d] for d in names]
    comprehension = [abc_a[d] - abc_b[d] for d in names]
    return {
        "total": mean_ci95(total),
        "format": mean_ci95([t - c for t, c in zip(total, comprehension, strict=True)]),
        "comprehension": mean_ci95(comprehension),
    }
