"""`masktax compare RUN_A RUN_B ... --out DIR`: several probe runs' curves in one plot and one table.

Reads each run dir's summary.json (any sweep probe: masks, unmask, filler, ...) and writes to
`--out`: `compare.png` (accuracy against x, one line per run / model / series, 95% CI bands),
`compare.csv` and `compare.md`. Per curve the relative degradation over the sweep

    RD = (max_x acc(x) − min_x acc(x)) / max_x acc(x)

([P1]'s metric for mask-agnostic fine-tuning); for unmask runs, also the probe's own RD averaged
over its `--steps` list per order (`relative_degradation.mean_over_steps` in summary.json; [P1]:
LLaDA-8B Base 15.5% -> 7.9% with CE+TV, random order, steps 2/4/6).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import typer

from masktax.errors import MasktaxError
from masktax.report.names import label as short_name


def relative_degradation(accuracies: list[float]) -> float | None:
    """(max − min) / max; None for fewer than 2 points or a zero maximum."""
    if len(accuracies) < 2 or max(accuracies) <= 0:
        return None
    return (max(accuracies) - min(accuracies)) / max(accuracies)


def read_summary(run_dir: Path) -> dict:
    file = run_dir / "summary.json"
    if not file.is_file():
        raise MasktaxError(f"'{run_dir}' has no summary.json; is it a finished probe run dir?")
    try:
        summary = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise MasktaxError(f"'{file}' is not valid JSON ({err.msg})") from err
    if not isinstance(summary.get("models"), dict):
        raise MasktaxError(f"'{file}' has no 'models' section")
    return summary


def collect(runs: list[tuple[str, dict]]) -> tuple[list[dict], list[dict]]:
    """Curves (label, points, rd) and the unmask probe's step-averaged RDs of every run."""
    curves, averaged = [], []
    for label, summary in runs:
        for model, points in summary["models"].items():
            for series in dict.fromkeys(p.get("series", "") for p in points):
                pts = [p for p in points if p.get("series", "") == series and p.get("accuracy") is not None]
                if not pts:
                    continue
                many = len(summary["models"]) > 1
                name = " / ".join(s for s in (label, model if many else "", series) if s)
                curves.append({"run": label, "model": model, "series": series, "label": name, "points": pts,
                               "rd": relative_degradation([p["accuracy"] for p in pts])})
        for model, rd in (summary.get("relative_degradation") or {}).items():
            for order, value in (rd.get("mean_over_steps") or {}).items():
                averaged.append({"run": label, "model": model, "order": order, "steps": rd.get("steps", []),
                                 "rd": value})
    return curves, averaged


def write_csv(curves: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["run", "model", "series", "x", "accuracy", "ci95_lo", "ci95_hi", "relative_degradation"])
    for c in curves:
        for p in c["points"]:
            lo, hi = p.get("ci95") or ("", "")
            w.writerow([c["run"], c["model"], c["series"], p["x"], f"{p['accuracy']:.6f}", lo, hi,
                        "" if c["rd"] is None else f"{c['rd']:.6f}"])
    return buf.getvalue()


def write_markdown(curves: list[dict], averaged: list[dict], probes: list[str]) -> str:
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}%"

    lines = [f"# Comparison of {len({c['run'] for c in curves})} runs ({', '.join(sorted(set(probes)))})", "",
             "![accuracy against x](compare.png)", "",
             "| run | model | series | points | first x | acc(first) | acc(last) | max | min | relative degradation |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for c in curves:
        acc = [p["accuracy"] for p in c["points"]]
        lines.append(f"| {c['run']} | {short_name(c['model'])} | {c['series']} | {len(acc)} | {c['points'][0]['x']} | "
                     f"{pct(acc[0])} | {pct(acc[-1])} | {pct(max(acc))} | {pct(min(acc))} | {pct(c['rd'])} |")
    if averaged:
        lines += ["", "Relative degradation averaged over the unmask probe's steps list:", "",
                  "| run | model | order | steps | mean RD |", "|---|---|---|---|---|"]
        for a in averaged:
            lines.append(f"| {a['run']} | {short_name(a['model'])} | {a['order']} | {','.join(map(str, a['steps']))} | {pct(a['rd'])} |")
    lines += ["", "RD = (max_x acc − min_x acc) / max_x acc over each curve's sweep ([P1]): any change with x "
              "counts, a rise as much as a fall. Models are named as in the plots (`.../final` by its run); "
              "compare.csv keeps the full model ids."]
    return "\n".join(lines) + "\n"


def curve_names(curves: list[dict], *, overlay: bool) -> list[str]:
    """Legend keys: the model's short name; with --overlay, prefixed by the run when a model would
    appear twice in one panel (one series)."""
    names = [short_name(c["model"]) for c in curves]
    if overlay and len({(c["series"], n) for c, n in zip(curves, names, strict=True)}) < len(curves):
        names = [f"{c['run']}: {n}" for c, n in zip(curves, names, strict=True)]
    return names


def plot(curves: list[dict], path: Path, xlabel: str, *, overlay: bool = False) -> None:
    """One panel per (run, series), one colour per model across panels, 95% CI bands.

    overlay: one panel per series with every run's curves in it (runs of one probe and grid).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def panel(c: dict) -> tuple[str, str]:
        return ("", c["series"]) if overlay else (c["run"], c["series"])

    keys = curve_names(curves, overlay=overlay)
    panels = list(dict.fromkeys(panel(c) for c in curves))
    models = list(dict.fromkeys(keys))
    colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(models)}
    ncols = min(4, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.9 * nrows), squeeze=False, sharey=True)
    numeric = all(isinstance(p["x"], (int, float)) for c in curves for p in c["points"])
    for ax, (run, series) in zip(axes.flat, panels, strict=False):
        for c, key in ((c, k) for c, k in zip(curves, keys, strict=True) if panel(c) == (run, series)):
            xs = [p["x"] for p in c["points"]] if numeric else [str(p["x"]) for p in c["points"]]
            ys = [p["accuracy"] for p in c["points"]]
            colour = colours[key]
            ax.plot(xs, ys, marker="o", markersize=3, color=colour, label=key)
            cis = [p.get("ci95") for p in c["points"]]
            if all(ci for ci in cis):
                ax.fill_between(xs, [ci[0] for ci in cis], [ci[1] for ci in cis], color=colour, alpha=0.10,
                                linewidth=0)
        if numeric:
            ax.set_xscale("symlog", linthresh=1)
        ax.axhline(1 / 3, color="grey", linestyle=":", linewidth=1)
        ax.set_title(" / ".join(s for s in (run, series) if s), fontsize=8)
        ax.set(ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy (95% CI)", fontsize=8)
    for ax in axes.flat[max(0, len(panels) - ncols):len(panels)]:  # the lowest panel of each column
        ax.set_xlabel(xlabel, fontsize=8)
    handles = [plt.Line2D([], [], color=colours[m], marker="o", markersize=3) for m in models]
    handles.append(plt.Line2D([], [], color="grey", linestyle=":"))
    fig.legend(handles, models + ["chance (1/3)"], loc="lower center",
               ncol=min(4, len(models) + 1), fontsize=8, bbox_to_anchor=(0.5, -0.02 - 0.03 * (len(models) // 4)))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def compare_runs(run_dirs: list[Path], out: Path, labels: list[str] | None = None, *, overlay: bool = False) -> dict:
    """Write compare.png / .csv / .md for `run_dirs` into `out`; returns {"curves", "averaged"}."""
    if len(run_dirs) < 1:
        raise MasktaxError("give at least one run dir")
    if labels and len(labels) != len(run_dirs):
        raise MasktaxError(f"--label given {len(labels)} times for {len(run_dirs)} run dirs")
    names = labels or [Path(r).resolve().name for r in run_dirs]
    if len(set(names)) != len(names):
        raise MasktaxError("two run dirs have the same name; tell them apart with --label")
    summaries = [read_summary(Path(r)) for r in run_dirs]
    curves, averaged = collect(list(zip(names, summaries, strict=True)))
    if not curves:
        raise MasktaxError("the run dirs hold no sweep points to compare")
    out.mkdir(parents=True, exist_ok=True)
    probes = [str(s.get("probe", "?")) for s in summaries]
    xlabel = "extra masks after the answer position" if set(probes) <= {"masks", "unmask"} else "x"
    plot(curves, out / "compare.png", xlabel, overlay=overlay)
    (out / "compare.csv").write_text(write_csv(curves))
    (out / "compare.md").write_text(write_markdown(curves, averaged, probes))
    return {"curves": curves, "averaged": averaged}


def compare(
    run_dirs: list[Path] = typer.Argument(..., metavar="RUN_DIR...", help="Probe run dirs holding summary.json."),
    out: Path = typer.Option(..., "--out", help="Where to write compare.png, compare.csv, compare.md."),
    label: list[str] = typer.Option(None, "--label", help="Names for the runs, in order (default: dir names)."),
    overlay: bool = typer.Option(False, "--overlay", help="One panel per series with every run's curves in it."),
) -> None:
    """Put several probe runs' curves in one plot and one table, with each curve's relative degradation."""
    result = compare_runs(list(run_dirs), out, list(label) if label else None, overlay=overlay)
    for c in result["curves"]:
        rd = "n/a" if c["rd"] is None else f"{100 * c['rd']:.1f}%"
        typer.echo(f"{c['label']}: relative degradation {rd}")
    typer.echo(f"masktax: comparison at {out / 'compare.md'}")


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
