"""[P1] appendix A.3: does the mask tax hit the tasks that depend most on their context?

Per task (a dataset of an appendix suite) and model, from `masks` runs of that suite:

    gain = acc(many shots, x = low)  - acc(few shots, x = low)     context dependence
    drop = acc(many shots, x = low)  - acc(many shots, x = high)   mask damage

with [P1]'s few = 5, many = 25, low = 1, high = 200 (x = extra masks after the answer position).
Per model: Pearson's R between gain and drop over the tasks ([P1]: LLaDA about -0.15, a weak
negative correlation), a table, a CSV and a scatter plot. The runs are the masks probe with
`--suite` and `--shots` (read from each run's config.json), e.g.

    masktax probe masks --suite icl --shots 5 --grid 1 --model M --out runs/a3-5
    masktax probe masks --suite icl --shots 25 --grid 1,200 --model M --out runs/a3-25
    masktax a3 runs/a3-5 runs/a3-25 --out runs/a3

Several suites (icl and mdc) may be combined: give each suite's two runs; tasks are (suite, dataset).
Accuracies are the per-dataset exact-match accuracies of each run's summary.json.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

from masktax.errors import MasktaxError
from masktax.render.figures import pyplot, save
from masktax.render.names import label as short_name
from masktax.results.store import atomic_write_text, read_json
from masktax.tasks.registry import DEFAULT_SHOTS, MAIN


@dataclass(frozen=True)
class A3Config:
    """The runs and the four settings of the analysis ([P1]'s values by default)."""

    run_dirs: tuple[Path, ...]
    out: Path | None = None
    few: int = 5
    many: int = 25
    low_x: int = 1
    high_x: int = 200

    def __post_init__(self) -> None:
        if len(self.run_dirs) < 2:
            raise MasktaxError("a3 needs at least two masks runs: one with --shots FEW and one with --shots MANY")
        if not 0 <= self.few < self.many:
            raise MasktaxError(f"--few must be smaller than --many, got {self.few} and {self.many}")
        if not 0 <= self.low_x < self.high_x:
            raise MasktaxError(f"--low-x must be smaller than --high-x, got {self.low_x} and {self.high_x}")


def run_accuracies(run_dir: Path) -> tuple[str, int, dict]:
    """(suite, shots, {model: {x: {dataset: accuracy}}}) of one masks run of an appendix suite."""
    config, summary = read_json(run_dir / "config.json"), read_json(run_dir / "summary.json")
    options = config.get("options") or {}
    suite = options.get("suite", MAIN)
    if config.get("probe") != "masks" or suite == MAIN or options.get("shares") is not None:
        raise MasktaxError(f"{run_dir} is not a masks run of an appendix suite with --grid (extra masks); a3 needs "
                           "`masktax probe masks --suite SUITE --shots N`")
    shots = options.get("shots", DEFAULT_SHOTS.get(suite))
    acc = {model: {p["x"]: p["per_dataset"] for p in points if p["series"] == "masks"}
           for model, points in summary["models"].items()}
    return suite, int(shots), acc


def pearson(xs: list[float], ys: list[float]) -> float | None:
    """Pearson's correlation coefficient; None with fewer than 3 points or no spread."""
    if len(xs) < 3:
        return None
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    return None if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)


def analyse(cfg: A3Config) -> dict:
    """{"points": [{model, suite, dataset, gain, drop}], "r": {model: R or None}, settings}."""
    by: dict[tuple[str, int], dict] = {}
    for run in cfg.run_dirs:
        suite, shots, acc = run_accuracies(Path(run))
        for model, xs in acc.items():
            for x, per in xs.items():
                by.setdefault((suite, shots), {}).setdefault(model, {}).setdefault(x, {}).update(per)
    points = []
    for suite in sorted({s for s, _ in by}):
        few, many = by.get((suite, cfg.few), {}), by.get((suite, cfg.many), {})
        if not few or not many:
            raise MasktaxError(f"suite {suite}: a3 needs runs with --shots {cfg.few} and --shots {cfg.many}; "
                               f"got shots {sorted(s for t, s in by if t == suite)}")
        for model in [m for m in many if m in few]:
            low_few, low_many = few[model].get(cfg.low_x), many[model].get(cfg.low_x)
            high_many = many[model].get(cfg.high_x)
            if low_few is None or low_many is None or high_many is None:
                raise MasktaxError(f"suite {suite}, model {model}: the {cfg.few}-shot run needs x = {cfg.low_x} and the "
                                   f"{cfg.many}-shot run x = {cfg.low_x} and {cfg.high_x} in --grid")
            for dataset in [d for d in low_many if d in low_few and d in high_many]:
                points.append({"model": model, "suite": suite, "dataset": dataset,
                               "gain": low_many[dataset] - low_few[dataset],
                               "drop": low_many[dataset] - high_many[dataset]})
    if not points:
        raise MasktaxError("the runs share no model and dataset; a3 needs the same models and datasets in both runs")
    models = list(dict.fromkeys(p["model"] for p in points))
    r = {m: pearson([p["gain"] for p in points if p["model"] == m], [p["drop"] for p in points if p["model"] == m])
         for m in models}
    return {"few": cfg.few, "many": cfg.many, "low_x": cfg.low_x, "high_x": cfg.high_x, "points": points, "r": r}


def to_csv(result: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model", "suite", "dataset", "gain", "drop"])
    for p in result["points"]:
        w.writerow([p["model"], p["suite"], p["dataset"], f"{p['gain']:.6f}", f"{p['drop']:.6f}"])
    return buf.getvalue()


def to_markdown(result: dict) -> str:
    few, many, lo, hi = result["few"], result["many"], result["low_x"], result["high_x"]
    lines = ["# Mask damage vs context dependence ([P1] A.3)", "",
             f"Per task: gain = acc({many} shots) - acc({few} shots), both at x = {lo}; drop = acc(x = {lo}) - "
             f"acc(x = {hi}) at {many} shots (x = extra masks after the answer position). Points of accuracy. "
             "[P1]: LLaDA R about -0.15.", "", "| model | tasks | Pearson R |", "|---|---|---|"]
    for model, r in result["r"].items():
        n = sum(p["model"] == model for p in result["points"])
        lines.append(f"| {short_name(model)} | {n} | {'n/a' if r is None else f'{r:+.2f}'} |")
    lines += ["", "| model | suite | task | gain | drop |", "|---|---|---|---|---|"]
    lines += [f"| {short_name(p['model'])} | {p['suite']} | {p['dataset']} | {100 * p['gain']:+.1f} | "
              f"{100 * p['drop']:+.1f} |" for p in result["points"]]
    return "\n".join(lines + ["", "![gain vs drop](a3.png)", ""])


def plot(result: dict, path: Path) -> None:
    """Scatter of drop against gain, one colour per model, R in the legend."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for model, r in result["r"].items():
        pts = [p for p in result["points"] if p["model"] == model]
        rtext = "n/a" if r is None else f"{r:+.2f}"
        ax.scatter([100 * p["gain"] for p in pts], [100 * p["drop"] for p in pts], s=18,
                   label=f"{short_name(model)} (R = {rtext})")
        for p in pts:
            ax.annotate(p["dataset"], (100 * p["gain"], 100 * p["drop"]), fontsize=6, alpha=0.7)
    ax.axhline(0, color="grey", lw=0.5)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel(f"gain from {result['few']} to {result['many']} shots (points)")
    ax.set_ylabel(f"drop from {result['low_x']} to {result['high_x']} extra masks (points)")
    ax.set_title("Mask damage vs context dependence ([P1] A.3)", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    save(fig, path)


def run_a3(cfg: A3Config) -> list[str]:
    """Analyse; with `out`, write a3.json, a3.csv, a3.md and a3.png there. Returns the lines to print."""
    result = analyse(cfg)
    lines = [f"{short_name(m)}: R = {'n/a' if r is None else f'{r:+.3f}'} over "
             f"{sum(p['model'] == m for p in result['points'])} tasks" for m, r in result["r"].items()]
    if cfg.out is not None:
        out = Path(cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "a3.json", json.dumps(result, indent=2) + "\n")
        atomic_write_text(out / "a3.csv", to_csv(result))
        atomic_write_text(out / "a3.md", to_markdown(result))
        plot(result, out / "a3.png")
        lines.append(f"masktax: a3 report at {out / 'a3.md'}")
    return lines
