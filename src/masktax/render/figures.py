"""Figures as pure functions of a summary (summary.json's object): same summary, same PNG.

The shared drawing of the probes' plots: one line (or bar group) per model with its 95% CI over
datasets; AR reference points of sweeps that do not apply to causal models are dashed horizontal
lines; chance (1/3) is a dotted grey line. `sweep_plots`, `line_plots` and `bar_plots` write a
probe's files and return their (file name, caption) pairs; a probe with plots of its own draws
them with `save`, `ci_band`, `symlog_axis` and `CHANCE` from here.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from masktax.render.names import label
from masktax.results.state import partial_text
from masktax.results.store import atomic_write_bytes

CHANCE = 1 / 3


@cache
def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend, imported on first use (it is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def titled(summary: dict, title: str) -> str:
    """A figure's title; a partial run's figure says so, with its counts, on a second line."""
    partial = partial_text(summary)
    return f"{title}\n{partial}" if partial else title


def save(fig, path: Path) -> None:
    """Write a figure as PNG atomically, without a timestamp or software tag (same figure, same bytes)."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def ci_band(ax, xs, points, color) -> None:
    """A shaded 95% CI band under a line, when every point has an interval."""
    cis = [p["ci95"] for p in points]
    if all(c is not None for c in cis):
        ax.fill_between(xs, [c[0] for c in cis], [c[1] for c in cis], color=color, alpha=0.15, linewidth=0)


def _finish(ax, xlabel: str, title: str) -> None:
    ax.axhline(CHANCE, color="grey", linestyle=":", linewidth=1, label="chance (1/3)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (mean over datasets, 95% CI)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def plot_sweep(summary: dict, path: Path, *, xlabel: str, title: str, metric: str = "accuracy") -> None:
    """Accuracy vs x on a symlog axis (x = 0 included); AR references dashed."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (model, points) in enumerate(summary["models"].items()):
        if not points:
            continue
        c = colors[i % len(colors)]
        xs = [p["x"] for p in points]
        ax.plot(xs, [p[metric] for p in points], marker="o", color=c, label=label(model))
        if metric == "accuracy":
            ci_band(ax, xs, points, c)
    for j, (model, ref) in enumerate(summary.get("references", {}).items()):
        c = colors[(len(summary["models"]) + j) % len(colors)]
        ax.axhline(ref["reference"][metric], color=c, linestyle="--", label=f"{label(model)} (AR reference)")
    symlog_axis(ax, summary)
    _finish(ax, xlabel, title)
    save(fig, path)


def symlog_axis(ax, summary: dict) -> None:
    """Symlog x axis from 0 to the largest x, ticks at the stored x values."""
    xs = sorted({p["x"] for pts in summary["models"].values() for p in pts} | {0})
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(-0.1, max(xs) * 1.1 if max(xs) > 0 else 1)
    ax.set_xticks(xs, [str(x) for x in xs])


def plot_confidence_entropy(summary: dict, path: Path, *, xlabel: str, title: str) -> None:
    """Confidence (max probability) and entropy (nats) at the answer position vs x."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for model, points in summary["models"].items():
        if not points:
            continue
        xs = [p["x"] for p in points]
        for ax, metric in zip(axes, ("confidence", "entropy"), strict=True):
            ax.plot(xs, [p[metric] for p in points], marker="o", label=label(model))
    for ax, name in zip(axes, ("confidence (max probability)", "entropy (nats)"), strict=True):
        symlog_axis(ax, summary)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    save(fig, path)


def plot_lines(summary: dict, path: Path, *, xlabel: str, title: str, styles: dict[str, str] | None = None) -> None:
    """Accuracy vs x on a linear axis; one line per (model, series), `styles` maps series to line styles
    (a styled series is always named in the legend)."""
    plt = pyplot()
    styles = styles or {}
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (model, points) in enumerate(summary["models"].items()):
        c = colors[i % len(colors)]
        series = list(dict.fromkeys(p["series"] for p in points))
        for s in series:
            pts = [p for p in points if p["series"] == s]
            xs = [p["x"] for p in pts]
            name = label(model) if len(series) == 1 and s not in styles else f"{label(model)}, {s}"
            ax.plot(xs, [p["accuracy"] for p in pts], marker="o", color=c, linestyle=styles.get(s, "-"),
                    label=name)
            ci_band(ax, xs, pts, c)
    _finish(ax, xlabel, title)
    save(fig, path)


def plot_bars(summary: dict, path: Path, *, xlabel: str, title: str) -> None:
    """Grouped bars: one group per x (or one bar per model for single-point probes), CI error bars."""
    plt = pyplot()
    models = [m for m, pts in summary["models"].items() if pts]
    xs = list(dict.fromkeys(p["x"] for m in models for p in summary["models"][m]))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(xs) * max(1, len(models)) / 2 + 2), 4.2))
    width = 0.8 / max(1, len(models))
    for i, model in enumerate(models):
        by_x = {p["x"]: p for p in summary["models"][model]}
        pos = [k + (i - (len(models) - 1) / 2) * width for k, x in enumerate(xs) if x in by_x]
        pts = [by_x[x] for x in xs if x in by_x]
        acc = [p["accuracy"] for p in pts]
        err = [
            [a - p["ci95"][0] for a, p in zip(acc, pts, strict=True)] if all(p["ci95"] for p in pts) else None,
            [p["ci95"][1] - a for a, p in zip(acc, pts, strict=True)] if all(p["ci95"] for p in pts) else None,
        ]
        ax.bar(pos, acc, width=width, label=label(model), yerr=err if err[0] is not None else None, capsize=3)
    ax.set_xticks(range(len(xs)), [str(x) for x in xs])
    _finish(ax, xlabel, title)
    save(fig, path)


def sweep_plots(summary: dict, plots_dir: Path, *, name: str, xlabel: str) -> list[tuple[str, str]]:
    """A sweep's accuracy (symlog x) and its confidence / entropy; returns (file, caption) pairs."""
    plot_sweep(summary, Path(plots_dir) / f"{name}.png", xlabel=xlabel, title=titled(summary, name))
    plot_confidence_entropy(summary, Path(plots_dir) / f"{name}_uncertainty.png", xlabel=xlabel, title=titled(summary, name))
    return [
        (f"{name}.png", f"Accuracy vs {xlabel} (symlog x axis), 95% CI bands over datasets; "
         "dashed: AR reference (the sweep does not apply to causal models); dotted: chance."),
        (f"{name}_uncertainty.png", "Confidence (max probability) and entropy (nats) of the "
         "full-vocabulary distribution at the answer position."),
    ]


def line_plots(
    summary: dict, plots_dir: Path, *, name: str, xlabel: str, note: str = "", styles: dict[str, str] | None = None
) -> list[tuple[str, str]]:
    """Accuracy vs x on a linear axis, one line per (model, series); `note` ends the caption."""
    plot_lines(summary, Path(plots_dir) / f"{name}.png", xlabel=xlabel, title=titled(summary, name), styles=styles)
    return [(f"{name}.png", f"Accuracy vs {xlabel}, 95% CI bands over datasets.{note}")]


def bar_plots(summary: dict, plots_dir: Path, *, name: str, xlabel: str) -> list[tuple[str, str]]:
    """Grouped accuracy bars with CI error bars (one bar per model for single-point probes)."""
    plot_bars(summary, Path(plots_dir) / f"{name}.png", xlabel=xlabel or "model", title=titled(summary, name))
    return [(f"{name}.png", "Accuracy with 95% CI error bars over datasets; dotted: chance.")]


def plot_decomposition(summary: dict, path: Path, *, xlabel: str, title: str, symlog: bool) -> None:
    """Two panels vs x, a colour per (model, series): the format rate (argmax is A/B/C), and the full
    accuracy (solid) beside the A/B/C-restricted accuracy (dashed); 95% CI bands; AR references as
    horizontal lines (dash-dot)."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    k = 0
    for model, points in summary["models"].items():
        series = list(dict.fromkeys(p["series"] for p in points))
        for s in series:
            pts = [p for p in points if p["series"] == s]
            c = colors[k % len(colors)]
            k += 1
            name = label(model) if len(series) == 1 else f"{label(model)}, {s}"
            xs = [p["x"] for p in pts]
            fmt = [p.get("format_rate") for p in pts]
            if all(v is not None for v in fmt):
                left.plot(xs, fmt, marker="o", color=c, label=name)
                ci_band(left, xs, [{"ci95": p.get("ci95_format")} for p in pts], c)
            right.plot(xs, [p["accuracy"] for p in pts], marker="o", color=c, label=f"{name}: full")
            right.plot(xs, [p["accuracy_abc"] for p in pts], marker="s", color=c, linestyle="--", label=f"{name}: A/B/C")
            ci_band(right, xs, [{"ci95": p.get("ci95_abc")} for p in pts], c)
    for model, ref in summary.get("references", {}).items():
        c = colors[k % len(colors)]
        k += 1
        point = ref["reference"]
        if point.get("format_rate") is not None:
            left.axhline(point["format_rate"], color=c, linestyle="-.", label=f"{label(model)} (AR reference)")
        right.axhline(point["accuracy_abc"], color=c, linestyle="-.", label=f"{label(model)} (AR reference): A/B/C")
    for ax, ylabel in ((left, "format rate: argmax is A, B or C"), (right, "accuracy: full (solid), A/B/C (dashed)")):
        if symlog:
            symlog_axis(ax, summary)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    right.axhline(CHANCE, color="grey", linestyle=":", linewidth=1)
    fig.suptitle(title)
    save(fig, path)


def decomposition_plots(summary: dict, plots_dir: Path, *, name: str, xlabel: str, symlog: bool) -> list[tuple[str, str]]:
    """The format / comprehension figure of a single-pass probe; returns its (file, caption) pair."""
    file = f"{name}_format.png"
    plot_decomposition(summary, Path(plots_dir) / file, xlabel=xlabel, title=titled(summary, f"{name}: format and comprehension"),
                       symlog=symlog)
    return [(file, "Left: share of items whose full-vocabulary argmax is one of the letters A/B/C (format rate). "
             "Right: full accuracy (solid) and the A/B/C-restricted accuracy (dashed); the gap between them is "
             "the accuracy lost to the format. 95% CI bands over datasets.")]
