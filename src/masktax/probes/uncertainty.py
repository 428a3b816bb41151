"""`uncertainty`: entropy and confidence at the answer position against appended masks and filler ([P1]).

For the answer position's full-vocabulary distribution p = softmax(z) (float32) the probe reports

    entropy     H = -sum_v p_v log p_v   (nats)
    confidence  max_v p_v                (the probability of the greedy answer token)

against x, the number of extra masks (series "masks") and of filler tokens " ." (series "filler")
after the answer position: the prompts of the `masks` and `filler` probes, one forward pass each.
Per point: the mean over datasets of each dataset's mean, with the 95% t-interval over datasets.

Reuse: the engine records entropy and confidence for every masks/filler item, so a masks or filler
run of the same suite, seed, format, dtype and device is aggregated instead of recomputed. Runs are
looked for in `--from DIR` and, without it, next to and under the output directory (the layout of
`masktax demo`: DIR/masks, DIR/filler, DIR/uncertainty); each place may be a run dir or a directory
of run dirs. Reused records are copied into this run's items.jsonl (with "reused_from"), so the run
stays self-contained; only items found nowhere are computed. AR models get one reference point
(tokens appended after the answer are invisible to a causal model).

    masktax probe uncertainty --model embedded-mdlm --grid 0,2,20,200 --out runs/demo/uncertainty
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from masktax.errors import MasktaxError
from masktax.models.loaded import LoadedModel
from masktax.probes import filler, masks
from masktax.probes.items import Cell, answer_slot_id
from masktax.probes.loading import resolve_format
from masktax.probes.options import flag, int_grid
from masktax.probes.run import ProbeRun, RunConfig
from masktax.render import figures, markdown
from masktax.render.names import label
from masktax.results.stats import dataset_stats
from masktax.results.store import CONFIG, item_key, read_items, read_json
from masktax.results.summary import REFERENCE, SCHEMA_VERSION, group_records, run_models

NAME = "uncertainty"
DESCRIPTION = "entropy and confidence at the answer position vs appended masks and filler tokens"
X_LABEL = "tokens appended after the answer position"
X_MEANING = "x = number of extra masks (series masks) or filler tokens ' .' (series filler) after the answer position"
SOURCES = (masks.NAME, filler.NAME)
SAME = ("seed", "format", "dtype", "device", "mask_token_id")  # config fields a reusable run must share
METRICS = ("entropy", "confidence", "p_answer")
PLOT = "uncertainty.png"
STYLE = {"masks": "-", "filler": "--"}


@dataclass(frozen=True)
class Options:
    grid: tuple[int, ...] = field(default=masks.GRID, metadata=flag("Comma-separated x values: tokens after the answer."))
    from_run: str | None = field(default=None, metadata=flag(
        "A masks/filler run dir (or a directory of them) to reuse.", name="--from"))

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", int_grid(self.grid, NAME))
        if self.from_run is not None:
            if not Path(str(self.from_run)).is_dir():
                raise MasktaxError(f"--from {self.from_run} is not a directory")
            object.__setattr__(self, "from_run", str(self.from_run))


def cells(options: Options, kind: str) -> list[Cell]:
    """The masks and filler sweeps' cells (AR: one reference cell)."""
    sweeps = masks.cells(masks.Options(grid=options.grid), kind) + filler.cells(filler.Options(grid=options.grid), kind)
    return list(dict.fromkeys(sweeps))


def _run_dirs(place: Path) -> list[Path]:
    if (place / CONFIG).is_file():
        return [place]
    if not place.is_dir():
        return []
    return sorted(p for p in place.iterdir() if p.is_dir() and (p / CONFIG).is_file())


def source_runs(cfg: RunConfig, options: Options) -> list[Path]:
    """masks/filler run dirs whose records this run may reuse (same suite and settings)."""
    out = Path(cfg.out).resolve()
    places = [Path(options.from_run)] if options.from_run is not None else [out, out.parent]
    found = []
    for run_dir in (d for place in places for d in _run_dirs(place)):
        if run_dir.resolve() == out or run_dir in found:
            continue
        try:
            config = read_json(run_dir / CONFIG)
        except MasktaxError:
            continue
        if config.get("probe") not in SOURCES:
            continue
        same = all(config.get(k) == getattr(cfg, k) for k in SAME)
        if same and max(1000, int(config.get("n_items", 0))) == max(1000, cfg.n_items):
            found.append(run_dir)
    if options.from_run is not None and not found:
        raise MasktaxError(
            f"--from {options.from_run} holds no masks or filler run with this seed, format, dtype, device and suite"
        )
    return found


def reusable_records(runs: list[Path], model: str) -> dict[str, dict]:
    """item key -> stored record of `model` from the source runs (the first run wins)."""
    out: dict[str, dict] = {}
    for run_dir in runs:
        for r in read_items(run_dir):
            if r["model"] == model and r.get("entropy", "missing") != "missing":
                out.setdefault(item_key(r), {**r, "reused_from": str(run_dir)})
    return out


def score(run: ProbeRun, name: str, lm: LoadedModel) -> None:
    """Copy reusable records of one model, then score its remaining items."""
    answer_slot_id(lm, NAME)
    reuse = source_runs(run.cfg, run.options)
    fmt = resolve_format(run.cfg.format, name, lm)
    the_cells = cells(run.options, lm.kind)
    found = reusable_records(reuse, name)
    run.record_model(name, lm, {
        "format": fmt, "applicable": lm.kind != "ar", "series": list(dict.fromkeys(c.series for c in the_cells)),
        "reused_from": [str(r) for r in reuse],
    }, expected_items=len(the_cells) * sum(min(run.cfg.n_items, len(d.tests)) for d in run.datasets))
    checked = False
    with run.bar(name, len(the_cells) * len(run.datasets) * run.cfg.n_items) as bar:
        for cell in the_cells:
            for dataset in run.datasets:
                items = run.encode(lm, name, fmt, dataset, cell)
                run.store.append([found[it.key] for it in items if not run.is_done(it.key) and it.key in found])
                bar.update(sum(run.is_done(it.key) for it in items))
                if all(run.is_done(it.key) for it in items):
                    continue
                if not checked:
                    run.preflight(lm, name, fmt, the_cells)
                    checked = True
                for records in run.scored(lm, items):
                    run.store_records(name, records)
                    bar.update(len(records))


def summarize(config: dict, records: Iterable[dict], env: dict) -> dict:
    """The summary.json object: points carry accuracy plus entropy / confidence / p_answer with CIs."""
    records = list(records)
    cells = group_records(records)
    reused = defaultdict(int)
    for r in records:
        reused[r["model"]] += "reused_from" in r
    models = run_models(config, cells)
    env_models = env.get("models", {})
    out: dict[str, list[dict]] = {}
    references: dict[str, dict] = {}
    for model in models:
        points = []
        for series in [s for s in ("masks", "filler", REFERENCE) if s in cells[model]] + sorted(
            set(cells[model]) - {"masks", "filler", REFERENCE}
        ):
            for x in sorted(cells[model][series], key=lambda v: (isinstance(v, str), v)):
                by_dataset = cells[model][series][x]
                acc = dataset_stats(by_dataset, lambda r: float(r["correct"]))
                point = {"series": series, "x": x, "accuracy": acc["mean"], "ci95": acc["ci95"],
                         "per_dataset": acc["per_dataset"], "n_datasets": len(by_dataset),
                         "n_items": sum(len(v) for v in by_dataset.values())}
                for m in METRICS:
                    s = dataset_stats(by_dataset, lambda r, m=m: r.get(m))
                    point.update({m: s["mean"], f"{m}_ci95": s["ci95"], f"{m}_per_dataset": s["per_dataset"]})
                points.append(point)
        refs = [p for p in points if p["series"] == REFERENCE]
        out[model] = [p for p in points if p["series"] != REFERENCE]
        if refs:
            references[model] = {"applicable": False, "reference": refs[0],
                                 "reason": "a causal model never sees tokens appended after the position it predicts"}
    return {
        "schema_version": SCHEMA_VERSION, "probe": config["probe"], "grid": config.get("grid"),
        "options": config.get("options", {}), "models": out, "references": references,
        "reused_items": {m: reused[m] for m in models},
        "model_info": {m: {k: env_models[m].get(k) for k in ("kind", "format", "dtype", "reused_from")}
                       for m in models if m in env_models},
    }


def to_csv(summary: dict) -> str:
    """One row per (model, series, x), AR references included."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model", "series", "x", "applicable", "entropy", "entropy_ci95_lo", "entropy_ci95_hi", "confidence",
                "confidence_ci95_lo", "confidence_ci95_hi", "p_answer", "accuracy", "n_datasets", "n_items"])
    rows = [(m, True, p) for m, pts in summary["models"].items() for p in pts]
    rows += [(m, False, ref["reference"]) for m, ref in summary.get("references", {}).items()]
    for m, ok, p in rows:
        e_lo, e_hi = p["entropy_ci95"] or ("", "")
        c_lo, c_hi = p["confidence_ci95"] or ("", "")
        w.writerow([m, p["series"], p["x"], str(ok).lower(), *map(_f, (p["entropy"], e_lo, e_hi, p["confidence"], c_lo,
                    c_hi, p["p_answer"], p["accuracy"])), p["n_datasets"], p["n_items"]])
    return buf.getvalue()


def _f(v) -> str:
    return "" if v is None else f"{v:.6f}" if isinstance(v, float) else str(v)



def plot(summary: dict, plots_dir: Path) -> list[tuple[str, str]]:
    """Two panels (entropy, confidence) vs x: a line per (model, series), CI bands."""
    if not any(summary["models"].values()) and not summary.get("references"):
        return []
    files = [(PLOT, "Entropy (nats, full vocabulary) and confidence (probability of the greedy token) at the answer "
             "position vs tokens appended after it (symlog x axis); solid: masks, dashed: filler ' .'; bands: 95% "
             "CI over datasets; dotted horizontal: AR reference (x does not apply to causal models).")]
    plt = figures.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    names = list(summary["models"]) + [m for m in summary.get("references", {}) if m not in summary["models"]]
    xs_all = sorted({p["x"] for pts in summary["models"].values() for p in pts} | {0})
    for ax, metric, title in zip(axes, ("entropy", "confidence"), ("entropy (nats)", "confidence (max probability)"),
                                 strict=True):
        for i, model in enumerate(names):
            c = colors[i % len(colors)]
            points = summary["models"].get(model, [])
            for series in dict.fromkeys(p["series"] for p in points):
                pts = [p for p in points if p["series"] == series and p[metric] is not None]
                xs = [p["x"] for p in pts]
                ax.plot(xs, [p[metric] for p in pts], marker="o", color=c, linestyle=STYLE.get(series, ":"),
                        label=f"{label(model)}, {series}")
                if pts and all(p[f"{metric}_ci95"] for p in pts):
                    ax.fill_between(xs, [p[f"{metric}_ci95"][0] for p in pts], [p[f"{metric}_ci95"][1] for p in pts],
                                    color=c, alpha=0.12, linewidth=0)
            ref = summary.get("references", {}).get(model)
            if ref is not None and ref["reference"][metric] is not None:
                ax.axhline(ref["reference"][metric], color=c, linestyle=":", label=f"{label(model)} (AR reference)")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(-0.1, max(xs_all) * 1.1 if max(xs_all) > 0 else 1)
        ax.set_xticks(xs_all, [str(x) for x in xs_all])
        ax.set_xlabel("tokens appended after the answer position")
        ax.set_ylabel(title)
        if metric == "confidence":
            ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(figures.titled(summary, "uncertainty at the answer position"))
    figures.save(fig, Path(plots_dir) / PLOT)
    return files


def render(config: dict, env: dict, summary: dict, plots: list, *, level: int = 1, prefix: str = "",
           notice: str | None = None) -> str:
    """report.md of an uncertainty run (the method: this module's docstring)."""
    h = "#" * level
    out = markdown.heading(summary, level, notice)
    out += [
           "Entropy H = -sum_v p_v log p_v (nats, full vocabulary, float32) and confidence max_v p_v of the answer "
           "position's distribution, against x extra masks (masks) or filler tokens ' .' (filler) after the "
           "answer position; mean over datasets [95% CI over datasets].", ""]
    reused = summary.get("reused_items", {})
    if any(reused.values()):
        out += ["Reused from masks/filler runs (no forward pass): " + ", ".join(
            f"{label(m)} {n} items" for m, n in reused.items()) + ".", ""]
    out += [f"{h}# Results", "", "| model | series | x | entropy (nats) | confidence | p(answer) | accuracy % | items |",
            "|---|---|---|---|---|---|---|---|"]
    rows = [(m, p) for m, pts in summary["models"].items() for p in pts]
    rows += [(m, ref["reference"]) for m, ref in summary.get("references", {}).items()]
    for m, p in rows:
        out.append(f"| {label(m)} | {p['series']} | {p['x']} | {_ci(p, 'entropy')} | {_ci(p, 'confidence')} | "
                   f"{_num(p['p_answer'])} | {markdown.pct(p['accuracy'])} | {p['n_items']} |")
    if summary.get("references"):
        out += ["", "AR models (series reference): one point, the one-mask prompt; appended tokens are invisible "
                "to a causal model, so the sweep does not apply."]
    out += ["", f"{h}# Plots", ""]
    out += markdown.image_lines(plots, prefix)
    return "\n".join(out + markdown.what_was_run(config, env, h))


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _ci(point: dict, metric: str) -> str:
    ci = point.get(f"{metric}_ci95")
    return _num(point[metric]) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def glance(summary: dict, models: list[str]) -> list[tuple[str, list[str]]]:
    """No At-a-glance row: the masks and filler rows already state the change of these items' accuracy."""
    return []
