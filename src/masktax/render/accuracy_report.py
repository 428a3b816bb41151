"""The outputs of a single-pass probe: accuracy per (series, x), as one declared `AccuracyReport`.

Every single-pass probe (accuracy, masks, filler, locality, query-position, context-length)
stores the engine's records and reports the same things: summary.json / summary.csv of accuracy
points with CIs over datasets (masktax.results.summary), one kind of figure (`plots`: "sweep" on
a symlog axis with the confidence / entropy panel, "line" or "bars"), the Markdown page of
masktax.render.markdown.render, and, when it declares a `change`, that change in the report and in
the At-a-glance table. A probe module declares its report once and exposes the bound methods:

    REPORT = AccuracyReport(NAME, description=..., x_label=..., x_meaning=..., plots="sweep", change=CHANGE)
    summarize, to_csv, plot, render, glance = REPORT.summarize, REPORT.to_csv, REPORT.plot, REPORT.render, REPORT.glance

A probe with more than one report (masks, locality) exposes those of a `ReportChoice` instead:

    CHOICE = ReportChoice(report_of)  # report_of(summary) -> the AccuracyReport that summary is for
    plot, render, glance = CHOICE.plot, CHOICE.render, CHOICE.glance
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from masktax.render import figures, markdown
from masktax.results.summary import summarize_run, summary_csv

PLOT_KINDS = ("sweep", "line", "bars")


@dataclass(frozen=True)
class AccuracyReport:
    """What a single-pass probe's outputs say.

    plots: "sweep" (accuracy vs x on a symlog axis, plus confidence / entropy), "line" (linear x, one
    line per series; `styles` maps series to line styles, `note` ends the caption) or "bars".
    change: how the report states the change over the sweep (None: no such section or glance row).
    """

    name: str
    description: str
    x_label: str
    x_meaning: str
    plots: str
    change: markdown.Change | None = None
    note: str = ""
    styles: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.plots not in PLOT_KINDS:
            raise ValueError(f"plots must be one of {PLOT_KINDS}, got {self.plots!r}")

    def summarize(self, config: dict, records: Iterable[dict], env: dict) -> dict:
        return summarize_run(config, records, env)

    def to_csv(self, summary: dict) -> str:
        return summary_csv(summary)

    def plot(self, summary: dict, plots_dir: Path) -> list[tuple[str, str]]:
        """Write the figures; returns (file name, caption) pairs in display order."""
        if self.plots == "sweep":
            plots = figures.sweep_plots(summary, plots_dir, name=self.name, xlabel=self.x_label)
        elif self.plots == "line":
            plots = figures.line_plots(summary, plots_dir, name=self.name, xlabel=self.x_label, note=self.note,
                                       styles=self.styles)
        else:
            return figures.bar_plots(summary, plots_dir, name=self.name, xlabel=self.x_label)
        return plots + figures.decomposition_plots(summary, plots_dir, name=self.name, xlabel=self.x_label,
                                                   symlog=self.plots == "sweep")

    def render(self, config: dict, env: dict, summary: dict, plots: list, *, level: int = 1, prefix: str = "",
               notice: str | None = None) -> str:
        return markdown.render(config=config, env=env, summary=summary, plots=plots, description=self.description,
                               x_meaning=self.x_meaning, change=self.change, level=level, prefix=prefix,
                               notice=notice)

    def glance(self, summary: dict, models: list[str]) -> list[tuple[str, list[str]]]:
        """The At-a-glance rows of the change and of its format / comprehension split (none without a
        change that names one)."""
        if self.change is None or self.change.glance is None:
            return []
        points = summary["models"]
        return [
            (self.change.glance, [markdown.change_cell(points.get(m) or [], self.change) for m in models]),
            (f"{self.change.what}: format part; comprehension part (A/B/C choice), points [paired 95% CI]",
             [markdown.split_cell(points.get(m) or [], self.change) for m in models]),
        ]


@dataclass(frozen=True)
class ReportChoice:
    """The figures, page and At-a-glance rows of a probe with more than one report: each from the
    report `choose(summary)` picks for the summary at hand."""

    choose: Callable[[dict], AccuracyReport]

    def plot(self, summary: dict, plots_dir: Path) -> list[tuple[str, str]]:
        return self.choose(summary).plot(summary, plots_dir)

    def render(self, config: dict, env: dict, summary: dict, plots: list, **kw) -> str:
        return self.choose(summary).render(config, env, summary, plots, **kw)

    def glance(self, summary: dict, models: list[str]) -> list[tuple[str, list[str]]]:
        return self.choose(summary).glance(summary, models)
