"""Markdown as a pure function of config, env, summary and the plot list.

`render` writes the report of a single-pass probe (the accuracy table, its change over the sweep,
plots, details, what was run); probes with reports of their own build them from `pct`, `prob`,
`cell`, `image_lines` and `what_was_run`. `glance_table` is the combined report's first table, whose
rows each probe contributes (`glance` in its module).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from masktax.render.names import label
from masktax.results.state import partial_text
from masktax.results.stats import paired_difference_ci, tax_split

HOW_TO_READ = """\
Every item is a 3-way multiple choice whose answer is one letter token. The score is exact match of
the greedy full-vocabulary argmax at the answer position (one forward pass); "A/B/C acc" restricts the
choice to the three letters. Accuracy is computed per dataset and averaged over the datasets; the
interval is a 95% t-interval over the per-dataset accuracies (none with a single dataset).
p(answer), confidence (max probability) and entropy (nats) describe the full-vocabulary softmax at
the answer position. Chance is 1/3. "Format" is the share of items whose full argmax is one of the three
letters at all; a full-accuracy change splits exactly into a format part (the right letter still
preferred among A/B/C, but the argmax left the format) and a comprehension part (the A/B/C choice got
worse): change = format part + comprehension part, dataset by dataset.
"""


def pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


def prob(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def cell(point: dict, key: str = "accuracy", ci_key: str = "ci95") -> str:
    """A rate of a point in % with its 95% CI (`key` "format_rate" / "accuracy_abc" for the decomposition)."""
    ci = point.get(ci_key)
    return f"{pct(point.get(key))}" + (f" [{pct(ci[0])}, {pct(ci[1])}]" if ci else "")


def decomposition_table(summary: dict) -> list[str]:
    """Per model and point: full accuracy, format rate and A/B/C-restricted accuracy, each [95% CI]."""
    lines = ["Full accuracy = the argmax is the right letter; format = the argmax is one of A/B/C; A/B/C acc = "
             "the restricted choice is right. In %, [95% CI over datasets].", "",
             "| model | series | x | full acc | format | A/B/C acc |", "|---|---|---|---|---|---|"]
    rows = [(m, p) for m, pts in summary["models"].items() for p in pts]
    rows += [(m, ref["reference"]) for m, ref in summary.get("references", {}).items()]
    for m, p in rows:
        lines.append(f"| {label(m)} | {p['series']} | {p['x']} | {cell(p)} | "
                     f"{cell(p, 'format_rate', 'ci95_format')} | {cell(p, 'accuracy_abc', 'ci95_abc')} |")
    return lines


def results_table(summary: dict) -> list[str]:
    """Rows (series, x), one column per model: accuracy % [95% CI]."""
    models = [m for m, pts in summary["models"].items() if pts]
    keys = list(dict.fromkeys((p["series"], p["x"]) for m in models for p in summary["models"][m]))
    many = len({s for s, _ in keys}) > 1
    lines = ["Accuracy in %, [95% CI over datasets].", ""]
    lines.append("| " + ("series | " if many else "") + "x | " + " | ".join(label(m) for m in models) + " |")
    lines.append("|" + "---|" * (len(models) + 1 + many))
    for s, x in keys:
        row = []
        for m in models:
            p = next((p for p in summary["models"][m] if (p["series"], p["x"]) == (s, x)), None)
            row.append(cell(p) if p else "")
        lines.append("| " + (f"{s} | " if many else "") + f"{x} | " + " | ".join(row) + " |")
    for m, ref in summary.get("references", {}).items():
        lines.append("")
        lines.append(
            f"{label(m)}: NOT APPLICABLE (causal model; tokens after the answer are invisible). "
            f"Reference accuracy with one mask: {cell(ref['reference'])}, drawn dashed."
        )
    return lines


def detail_table(summary: dict) -> list[str]:
    lines = ["| model | series | x | acc % | A/B/C acc % | p(answer) | confidence | entropy (nats) | items |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m, pts in summary["models"].items():
        for p in pts:
            ent = "n/a" if p["entropy"] is None else f"{p['entropy']:.3f}"
            lines.append(
                f"| {label(m)} | {p['series']} | {p['x']} | {pct(p['accuracy'])} | {pct(p['accuracy_abc'])} | "
                f"{prob(p['p_answer'])} | {prob(p['confidence'])} | {ent} | {p['n_items']} |"
            )
    return lines


@dataclass(frozen=True)
class Change:
    """How a sweep reports its change from the baseline (first) x to the last x.

    what: the quantity ("mask tax"); heading: its report section's title; baseline_x: the x the change
    is measured from when the grid has it (None: the first x); base_note: a sentence saying why.
    glance: its row title in the combined report's At-a-glance table (None: no row); glance_sign: +1
    reports first minus last (a tax is positive), -1 last minus first (locality: near minus far).
    """

    what: str
    heading: str = "Change over the sweep"
    baseline_x: int | None = None
    base_note: str = ""
    glance: str | None = None
    glance_sign: int = 1


def sweep_ends(points: list[dict], baseline_x: int | None = None) -> tuple[dict, dict]:
    """(baseline, last) points of one series: x = baseline_x when the grid has it and it is not the last."""
    if baseline_x is not None and points[0]["x"] < baseline_x:
        base = next((p for p in points if p["x"] == baseline_x), None)
        if base is not None and base is not points[-1]:
            return base, points[-1]
    return points[0], points[-1]


def change_lines(summary: dict, change: Change) -> list[str]:
    """Accuracy at the baseline x minus at the last x, per model and series, with paired CIs."""
    lines = [f"Points of accuracy, {change.what}: accuracy at the baseline (first) x minus accuracy at the last x."
             f"{change.base_note} The paired 95% CI is over the per-dataset differences (the same items at both x), "
             "so it is much narrower than the two accuracies' CIs suggest; an interval that excludes 0 is a "
             "real change on these items.", ""]
    lines += ["| model | series | from x | to x | points | paired 95% CI | format part | comprehension part |",
              "|---|---|---|---|---|---|---|---|"]
    for m, pts in summary["models"].items():
        for s in dict.fromkeys(p["series"] for p in pts):
            sp = [p for p in pts if p["series"] == s]
            if len(sp) >= 2:
                first, last = sweep_ends(sp, change.baseline_x)
                _, ci = paired_difference_ci(first, last)
                ci_text = "n/a" if ci is None else f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"
                split = tax_split(first, last)
                lines.append(f"| {label(m)} | {s} | {first['x']} | {last['x']} | "
                             f"{100 * (first['accuracy'] - last['accuracy']):+.1f} | {ci_text} | "
                             f"{signed(*split['format'])} | {signed(*split['comprehension'])} |")
    for m in summary.get("references", {}):
        lines.append(f"| {label(m)} | reference | n/a | n/a | not applicable (AR) | | | |")
    return lines


def signed(value: float, ci: list[float] | None, sign: int = 1) -> str:
    """A difference in points with its 95% CI, e.g. '+1.2 [-0.3, +2.7]' (`sign` -1 flips it)."""
    if value != value:  # NaN: no dataset in common
        return "n/a"
    lo, hi = (None, None) if ci is None else sorted((sign * ci[0], sign * ci[1]))
    return points_text(sign * value) + ("" if lo is None else f" [{points_text(lo)}, {points_text(hi)}]")


def image_lines(plots: list[tuple[str, str]], prefix: str) -> list[str]:
    """Markdown images with their captions below (`prefix` for a section of a combined report)."""
    out: list[str] = []
    for name, caption in plots:
        out += [f"![{caption}]({prefix}plots/{name})", "", f"*{caption}*", ""]
    return out


def heading(summary: dict, level: int, notice: str | None) -> list[str]:
    """A probe report's title, then the run's notice (the demo's stand-in warning) and, for a partial
    run, what is missing, each quoted below it."""
    out = [f"{'#' * level} masktax probe: {summary['probe']}", ""]
    if notice:
        out += [f"> {line}" for line in notice.strip().splitlines()] + [""]
    partial = partial_text(summary)
    if partial:
        out += [f"> **{partial}.** The numbers below are from the items scored so far; rerun the same "
                "command to finish (it resumes).", ""]
    return out


def render(
    *, config: dict, env: dict, summary: dict, plots: list[tuple[str, str]], description: str, x_meaning: str,
    change: Change | None = None, level: int = 1, prefix: str = "", notice: str | None = None,
) -> str:
    """The Markdown report of a single-pass probe run; `prefix` is prepended to plot paths (combined reports)."""
    h = "#" * level
    out = heading(summary, level, notice)
    out += [description[:1].upper() + description[1:] + ".", ""]
    out += [f"{h}# How to read this", "", f"{x_meaning}.", "", HOW_TO_READ]
    out += [f"{h}# Results", ""] + results_table(summary) + [""]
    if change is not None:
        out += [f"{h}# {change.heading}", ""] + change_lines(summary, change) + [""]
    out += [f"{h}# Format and comprehension", ""] + decomposition_table(summary) + [""]
    out += [f"{h}# Plots", ""] + image_lines(plots, prefix)
    out += [f"{h}# Details", ""] + detail_table(summary) + [""]
    out += what_was_run(config, env, h)
    return "\n".join(out)


def what_was_run(config: dict, env: dict, h: str) -> list[str]:
    """The report's closing section: models, config and versions (as in every probe report)."""
    out = [f"{h}# What was run", "", "| model | kind | format | dtype | device | parameters | source |",
           "|---|---|---|---|---|---|---|"]
    for m, info in env.get("models", {}).items():
        if m in config.get("models", []):
            out.append(f"| {m} | {info.get('kind')} | {info.get('format')} | {info.get('dtype')} | "
                       f"{info.get('device')} | {info.get('n_parameters')} | {info.get('source')} |")
    versions = {k: env.get(k) for k in ("python", "torch", "transformers", "masktax", "git_commit", "platform")}
    return out + ["", "Config:", "", "```json", json.dumps(config, indent=2), "```", "",
                  "Environment:", "", "```json", json.dumps(versions, indent=2), "```", ""]


def points_text(v: float) -> str:
    """A signed difference of accuracies in points, never '-0.0'."""
    return f"{round(100 * v, 1) + 0.0:+.1f}"


def change_cell(points: list[dict], change: Change) -> str:
    """One model's At-a-glance cell of a sweep: its first series' change [paired 95% CI], in points."""
    series = points[0]["series"] if points else None
    sp = [p for p in points if p["series"] == series]
    if len(sp) < 2:
        return "n/a"
    first, last = sweep_ends(sp, change.baseline_x)
    d, ci = paired_difference_ci(first, last)
    base = "" if change.baseline_x is None or first["x"] == change.baseline_x else f" (from x = {first['x']})"
    text = signed(d, ci, change.glance_sign)
    return text + base + (f" ({sp[0]['series']})" if len({p['series'] for p in points}) > 1 else "")


def split_cell(points: list[dict], change: Change) -> str:
    """One model's At-a-glance cell of the change's split: 'format +x [CI]; compr. +y [CI]' (first series)."""
    series = points[0]["series"] if points else None
    sp = [p for p in points if p["series"] == series]
    if len(sp) < 2:
        return "n/a"
    split = tax_split(*sweep_ends(sp, change.baseline_x))
    sign = change.glance_sign
    return f"format {signed(*split['format'], sign)}; compr. {signed(*split['comprehension'], sign)}"


def glance_table(rows: list[tuple[str, list[str]]], models: list[str]) -> list[str]:
    """The combined report's first table: one row per headline, one column per model."""
    if not models:
        return []
    lines = ["## At a glance", "", "Each cell is per model; the sections below have the curves, CIs and plots.", ""]
    lines.append("| | " + " | ".join(label(m) for m in models) + " |")
    lines.append("|---|" + "---|" * len(models))
    lines += [f"| {title} | " + " | ".join(cells) + " |" for title, cells in rows]
    return lines + [""]
