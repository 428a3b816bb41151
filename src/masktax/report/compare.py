"""Several probe runs side by side, and a paired difference between two of their points.

    masktax compare runs/before runs/after --out runs/compare
    masktax compare --paired runs/acc:one_mask:0 runs/masks:masks:2

`compare_runs` reads each run dir's summary.json (any sweep probe: masks, unmask, filler, ...) and
writes `compare.png` (accuracy against x, one line per run / model / series, 95% CI bands),
`compare.csv` and `compare.md`. Per curve the relative degradation over the sweep

    RD = (max_x acc(x) − min_x acc(x)) / max_x acc(x)

([P1]'s metric for mask-agnostic fine-tuning, `results.stats.relative_degradation`); for unmask
runs, also the probe's own RD averaged over its `--steps` list per order
(`relative_degradation.mean_over_steps` in summary.json; [P1]: LLaDA-8B Base 15.5% -> 7.9% with
CE+TV, random order, steps 2/4/6).

`paired_points` takes two points RUN_DIR:SERIES:X of runs that scored the same items (same seed,
n_items and datasets: the suite is a pure function of them), so accuracy(A) - accuracy(B) is paired
per dataset and its 95% t-CI is over the per-dataset differences, as in the reports' tax tables.
Example: one mask followed by the real closing `].` against masks in place of it, at the same
prompt length (docs/embedded.md).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from masktax.errors import MasktaxError
from masktax.render.names import label as short_name
from masktax.results.state import is_partial, partial_text
from masktax.results.stats import paired_difference_ci, relative_degradation
from masktax.results.store import atomic_write_text, read_json

# config.json fields that decide which items a probe run scored; paired points need them equal.
SAME_ITEMS = ("seed", "n_items", "datasets")


def read_summary(run_dir: Path) -> dict:
    file = run_dir / "summary.json"
    if not file.is_file():
        raise MasktaxError(f"'{run_dir}' has no summary.json; is it a finished probe run dir?")
    try:
        summary = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MasktaxError(f"'{file}' is not valid JSON ({getattr(err, 'msg', err)})") from err
    if not isinstance(summary, dict) or not isinstance(summary.get("models"), dict):
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
                name += " (PARTIAL)" if is_partial(summary) else ""
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


def write_markdown(curves: list[dict], averaged: list[dict], probes: list[str], partial: dict[str, str] | None = None) -> str:
    """compare.md; `partial` maps a partial run's label to what it is missing."""
    partial = partial or {}
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}%"

    lines = [f"# Comparison of {len({c['run'] for c in curves})} runs ({', '.join(sorted(set(probes)))})", ""]
    lines += [f"> {run}: **{text}**; its curves are marked (PARTIAL)." for run, text in partial.items()]
    lines += [""] if partial else []
    lines += ["![accuracy against x](compare.png)", "",
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
    import matplotlib.pyplot as plt

    from masktax.render.figures import CHANCE, save  # imports matplotlib: only when a plot is drawn

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
        ax.axhline(CHANCE, color="grey", linestyle=":", linewidth=1)
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
    save(fig, path)


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
    if out.exists() and not out.is_dir():
        raise MasktaxError(f"--out {out} is a file, not a directory")
    out.mkdir(parents=True, exist_ok=True)
    probes = [str(s.get("probe", "?")) for s in summaries]
    partial = {n: partial_text(s) for n, s in zip(names, summaries, strict=True) if is_partial(s)}
    xlabel = "extra masks after the answer position" if set(probes) <= {"masks", "unmask"} else "x"
    plot(curves, out / "compare.png", xlabel, overlay=overlay)
    atomic_write_text(out / "compare.csv", write_csv(curves))
    atomic_write_text(out / "compare.md", write_markdown(curves, averaged, probes, partial))
    return {"curves": curves, "averaged": averaged}


@dataclass(frozen=True)
class PairedPoints:
    """Two points of probe runs on the same items and their paired difference A - B."""

    a: str  # RUN_DIR:SERIES:X as given
    b: str
    accuracy_a: float
    accuracy_b: float
    difference: float  # mean over datasets of accuracy(A) - accuracy(B)
    ci95: list[float] | None  # 95% t-CI over the per-dataset differences (None below 2 datasets)
    n_datasets: int  # datasets of point A


def parse_point(spec: str) -> tuple[str, str, int]:
    """(run dir, series, x) of RUN_DIR:SERIES:X; the run dir may itself hold colons."""
    try:
        run, series, x = spec.rsplit(":", 2)
        return run, series, int(x)
    except ValueError:
        raise MasktaxError(f"'{spec}' is not RUN_DIR:SERIES:X (e.g. runs/masks:masks:2)") from None


def load_point(spec: str, model: str | None) -> tuple[dict, dict]:
    """(point, run config) for RUN_DIR:SERIES:X; `model` is needed when the run has several."""
    run, series, x = parse_point(spec)
    run_dir = Path(run)
    summary = read_summary(run_dir)
    if is_partial(summary):
        raise MasktaxError(f"'{run_dir}' is a {partial_text(summary)}; finish it (rerun its command) before pairing its points")
    models = summary["models"]
    config = read_json(run_dir / "config.json")
    if model is None and len(models) != 1:
        raise MasktaxError(f"'{run_dir}' has several models; choose one with --model: {', '.join(models)}")
    name = model if model is not None else next(iter(models))
    if name not in models:
        raise MasktaxError(f"no model '{name}' in '{run_dir}': {', '.join(models)}")
    for point in models[name]:
        if point.get("series", "") == series and point["x"] == x:
            return point, config
    have = ", ".join(f"{p.get('series', '')}:{p['x']}" for p in models[name])
    raise MasktaxError(f"no point {series}:{x} in '{run_dir}' (has {have})")


def paired_points(a: str, b: str, model: str | None = None) -> PairedPoints:
    """accuracy(A) - accuracy(B) paired per dataset, for two points RUN_DIR:SERIES:X on the same items."""
    (pa, ca), (pb, cb) = load_point(a, model), load_point(b, model)
    differ = [k for k in SAME_ITEMS if ca.get(k) != cb.get(k)]
    if differ:
        raise MasktaxError(f"the runs scored different items ({', '.join(differ)} differ); pairing needs the same")
    diff, ci = paired_difference_ci(pa, pb)
    return PairedPoints(a=a, b=b, accuracy_a=pa["accuracy"], accuracy_b=pb["accuracy"], difference=diff, ci95=ci,
                        n_datasets=len(pa["per_dataset"]))


def paired_line(p: PairedPoints) -> str:
    """One line: both accuracies, A - B in points and its paired 95% CI."""
    ci_text = "n/a" if p.ci95 is None else f"[{100 * p.ci95[0]:+.1f}, {100 * p.ci95[1]:+.1f}]"
    return (f"A {p.a}: {100 * p.accuracy_a:.1f}%  B {p.b}: {100 * p.accuracy_b:.1f}%  "
            f"A - B: {100 * p.difference:+.1f} points, paired 95% CI {ci_text} over {p.n_datasets} datasets")


def curve_line(curve: dict) -> str:
    """The line `masktax compare` prints per curve: its name and relative degradation."""
    rd = "n/a" if curve["rd"] is None else f"{100 * curve['rd']:.1f}%"
    return f"{curve['label']}: relative degradation {rd}"


@dataclass(frozen=True)
class CompareConfig:
    """What `masktax compare` does: compare run dirs into `out`, pair two points, or both."""

    run_dirs: tuple[Path, ...] = ()  # probe run dirs to compare; empty with `paired`: the points' runs
    out: Path | None = None  # where compare.png / .csv / .md go; None: write nothing
    labels: tuple[str, ...] = ()  # names for the run dirs, in order (default: their dir names)
    overlay: bool = False  # one panel per series with every run's curves in it
    paired: tuple[str, str] | None = None  # two points RUN_DIR:SERIES:X to difference, A - B
    model: str | None = None  # the model of the paired points (needed when a run has several)

    def __post_init__(self) -> None:
        if self.paired is None:
            if not self.run_dirs:
                raise MasktaxError("give run dirs and --out DIR, or two points with --paired")
            if self.model is not None:
                raise MasktaxError("--model chooses the model of --paired points; give --paired")
        if self.run_dirs and self.out is None:
            raise MasktaxError("give --out DIR for the comparison of the run dirs")

    def runs(self) -> list[Path]:
        """The run dirs to compare: as given, else the runs of the paired points (each once)."""
        if self.run_dirs or self.paired is None:
            return list(self.run_dirs)
        return [Path(run) for run in dict.fromkeys(parse_point(spec)[0] for spec in self.paired)]


def compare(cfg: CompareConfig) -> list[str]:
    """Run `cfg` (the pairing first, so a bad point writes nothing); returns the lines to print."""
    lines = []
    if cfg.paired is not None:
        lines.append(paired_line(paired_points(*cfg.paired, cfg.model)))
    if cfg.out is not None:
        result = compare_runs(cfg.runs(), cfg.out, list(cfg.labels) or None, overlay=cfg.overlay)
        lines += [curve_line(c) for c in result["curves"]]
        lines.append(f"masktax: comparison at {cfg.out / 'compare.md'}")
    return lines
