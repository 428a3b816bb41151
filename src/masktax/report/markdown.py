"""report.md as a pure function of config, env, summary and the plot list."""

from __future__ import annotations

import json

from masktax.report.names import label
from masktax.results.stats import mean_ci95

HOW_TO_READ = """\
Every item is a 3-way multiple choice whose answer is one letter token. The score is exact match of
the greedy full-vocabulary argmax at the answer position (one forward pass); "A/B/C acc" restricts the
choice to the three letters. Accuracy is computed per dataset and averaged over the datasets; the
interval is a 95% t-interval over the per-dataset accuracies (none with a single dataset).
p(answer), confidence (max probability) and entropy (nats) describe the full-vocabulary softmax at
the answer position. Chance is 1/3.
"""


def pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


def prob(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def cell(point: dict) -> str:
    ci = point["ci95"]
    return f"{pct(point['accuracy'])}" + (f" [{pct(ci[0])}, {pct(ci[1])}]" if ci else "")


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


# The masks / filler sweeps measure the tax from x = 2: the first x whose prompt has the length of the
# one-mask format `Answer:[<mask>].` (`]` and `.` are two tokens in the embedded tokenizer). At x = 0
# and 1 the text ends early, a format change that an in-place MDLM (trained on episodes that always
# close `].`) can suffer from more than from any number of masks; the curves still show those points.
FORMAT_X = 2
APPENDED = ("masks", "filler")


def sweep_ends(probe: str, points: list[dict]) -> tuple[dict, dict]:
    """(baseline, last) points of one series: x = FORMAT_X for masks / filler when the grid has it."""
    if probe in APPENDED and points[0]["x"] < FORMAT_X:
        base = next((p for p in points if p["x"] == FORMAT_X), None)
        if base is not None and base is not points[-1]:
            return base, points[-1]
    return points[0], points[-1]


def tax_lines(summary: dict, probe: str) -> list[str]:
    """Accuracy at the baseline x minus at the last x, per model and series (the mask tax for sweeps)."""
    names = {"masks": "mask tax", "filler": "filler tax", "context-length": "drop from d=first to d=last",
             "locality": "block far (x first) minus block near (x last)"}
    what = names.get(probe)
    if what is None:
        return []
    base_note = (f" For {probe} the baseline is x = {FORMAT_X} when the grid has it: the first prompt with the "
                 "length of the one-mask format `Answer:[<mask>].`; x = 0 and 1 end the text early."
                 if probe in APPENDED else "")
    lines = [f"Points of accuracy, {what}: accuracy at the baseline (first) x minus accuracy at the last x."
             f"{base_note} The paired 95% CI is over the per-dataset differences (the same items at both x), so it is "
             "much narrower than the two accuracies' CIs suggest; an interval that excludes 0 is a "
             "real change on these items.", ""]
    lines += ["| model | series | from x | to x | points | paired 95% CI |", "|---|---|---|---|---|---|"]
    for m, pts in summary["models"].items():
        for s in dict.fromkeys(p["series"] for p in pts):
            sp = [p for p in pts if p["series"] == s]
            if len(sp) >= 2:
                first, last = sweep_ends(probe, sp)
                _, ci = paired_difference_ci(first, last)
                cell = "n/a" if ci is None else f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"
                lines.append(f"| {label(m)} | {s} | {first['x']} | {last['x']} | "
                             f"{100 * (first['accuracy'] - last['accuracy']):+.1f} | {cell} |")
    for m in summary.get("references", {}):
        lines.append(f"| {label(m)} | reference | n/a | n/a | not applicable (AR) | |")
    return lines


def paired_difference_ci(first: dict, last: dict) -> tuple[float, list[float] | None]:
    """Mean and 95% t-CI over datasets of accuracy(first) - accuracy(last), datasets in both points."""
    a, b = first.get("per_dataset") or {}, last.get("per_dataset") or {}
    return mean_ci95([a[d] - b[d] for d in a if d in b])


def render(
    *, config: dict, env: dict, summary: dict, plots: list[tuple[str, str]], spec_text: dict,
    level: int = 1, prefix: str = "", notice: str | None = None,
) -> str:
    """The Markdown report of one probe run; `prefix` is prepended to plot paths (combined reports)."""
    h = "#" * level
    probe = summary["probe"]
    out = [f"{h} masktax probe: {probe}", ""]
    if notice:
        out += [f"> {line}" for line in notice.strip().splitlines()] + [""]
    desc = spec_text["description"]
    out += [desc[:1].upper() + desc[1:] + ".", ""]
    out += [f"{h}# How to read this", "", f"{spec_text['x_meaning']}.", "", HOW_TO_READ]
    out += [f"{h}# Results", ""] + results_table(summary) + [""]
    tax = tax_lines(summary, probe)
    if tax:
        out += [f"{h}# Mask tax" if probe in ("masks", "filler") else f"{h}# Change over the sweep", ""]
        out += tax + [""]
    out += [f"{h}# Plots", ""]
    for name, caption in plots:
        out += [f"![{caption}]({prefix}plots/{name})", "", f"*{caption}*", ""]
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


# The combined report's first table: (probe, row title, sign); sign +1 reports first x minus last x
# (a tax is positive), -1 reports last minus first (locality: block near the mask minus far).
GLANCE_SWEEPS = (
    ("masks", "mask tax: acc(x = 2) - acc(x last), points [paired 95% CI]", 1),
    ("filler", "filler tax: acc(x = 2) - acc(x last), points [paired 95% CI]", 1),
    ("locality", "locality: acc(block near the mask) - acc(far), points [paired 95% CI]", -1),
    ("context-length", "context length: acc(fewest distractors) - acc(most), points [paired 95% CI]", 1),
)


def points_text(v: float) -> str:
    """A signed difference of accuracies in points, never '-0.0'."""
    return f"{round(100 * v, 1) + 0.0:+.1f}"


def _first_series(points: list[dict]) -> list[dict]:
    series = points[0]["series"] if points else None
    return [p for p in points if p["series"] == series]


def _sweep_cell(probe: str, points: list[dict], sign: int) -> str:
    sp = _first_series(points)
    if len(sp) < 2:
        return "n/a"
    first, last = sweep_ends(probe, sp)
    d, ci = paired_difference_ci(first, last)
    base = "" if probe not in APPENDED or first["x"] == FORMAT_X else f" (from x = {first['x']})"
    lo, hi = (None, None) if ci is None else sorted((sign * ci[0], sign * ci[1]))
    text = points_text(sign * d) + ("" if lo is None else f" [{points_text(lo)}, {points_text(hi)}]")
    return text + base + (f" ({sp[0]['series']})" if len({p['series'] for p in points}) > 1 else "")


def glance_lines(summaries: dict[str, dict]) -> list[str]:
    """One table over the runs of a combined report: one column per model, one row per headline.

    `summaries` maps probe name -> summary.json object. Rows whose probe is absent are left out;
    a model a probe does not apply to (a causal model under appended masks) gets "n/a".
    """
    models = list(dict.fromkeys(m for s in summaries.values() for m in s.get("models", {})))
    if not models:
        return []
    rows: list[tuple[str, list[str]]] = []
    if "accuracy" in summaries:
        acc = summaries["accuracy"]["models"]
        rows.append(("accuracy with one mask (AR: next token), % [95% CI]",
                     [cell(acc[m][0]) if acc.get(m) else "n/a" for m in models]))
    for probe, title, sign in GLANCE_SWEEPS:
        if probe in summaries:
            pts = summaries[probe]["models"]
            rows.append((title, [_sweep_cell(probe, pts.get(m) or [], sign) for m in models]))
    if "unmask" in summaries:
        rd = summaries["unmask"].get("relative_degradation", {})
        rows.append(("relative degradation, random-order unmasking (mean over steps), %",
                     [pct(rd[m]["mean_over_steps"].get("random")) if m in rd else "n/a" for m in models]))
    if "attribution" in summaries:
        att = summaries["attribution"]["models"]

        def groups(m: str) -> str:
            if not att.get(m):
                return "n/a"
            g = att[m][0]["groups"]
            return " / ".join(prob(g[k]["mean"]) if k in g else "n/a" for k in ("masks", "last50", "nonmask"))

        rows.append(("attribution, normalised mean: masks / last 50 / all non-mask", [groups(m) for m in models]))
    lines = ["## At a glance", "", "Each cell is per model; the sections below have the curves, CIs and plots.", ""]
    lines.append("| | " + " | ".join(label(m) for m in models) + " |")
    lines.append("|---|" + "---|" * len(models))
    lines += [f"| {title} | " + " | ".join(cells) + " |" for title, cells in rows]
    return lines + [""]
