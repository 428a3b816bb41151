"""Summary, plot and report of the `uncertainty` probe, as pure functions of its stored records.

Per (model, series, x): entropy (nats) and confidence (max probability) at the answer position,
each the mean over datasets of the per-dataset means with a 95% t-interval over datasets; also the
accuracy and p(answer) of the same items.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from masktax.probes.extended import dataset_stats  # noqa: E402
from masktax.report.markdown import pct, what_was_run  # noqa: E402
from masktax.report.plots import _save, label  # noqa: E402
from masktax.results.summary import SCHEMA_VERSION  # noqa: E402

REFERENCE = "reference"
METRICS = ("entropy", "confidence", "p_answer")
PLOT = "uncertainty.png"
STYLE = {"masks": "-", "filler": "--"}


def summarize_uncertainty(config: dict, records: Iterable[dict], env: dict) -> dict:
    """The summary.json object: points carry accuracy plus entropy / confidence / p_answer with CIs."""
    cells: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    reused = defaultdict(int)
    for r in records:
        cells[r["model"]][r["series"]][r["x"]][r["dataset"]].append(r)
        reused[r["model"]] += "reused_from" in r
    models = [m for m in config.get("models", []) if m in cells] + sorted(set(cells) - set(config.get("models", [])))
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


def uncertainty_csv(summary: dict) -> str:
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


def plot_files(summary: dict) -> list[tuple[str, str]]:
    if not any(summary["models"].values()) and not summary.get("references"):
        return []
    return [(PLOT, "Entropy (nats, full vocabulary) and confidence (probability of the greedy token) at the answer "
             "position vs tokens appended after it (symlog x axis); solid: masks, dashed: filler ' .'; bands: 95% "
             "CI over datasets; dotted horizontal: AR reference (x does not apply to causal models).")]


def plot_uncertainty(summary: dict, plots_dir: Path) -> list[tuple[str, str]]:
    """Two panels (entropy, confidence) vs x: a line per (model, series), CI bands."""
    files = plot_files(summary)
    if not files:
        return []
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
    fig.suptitle("uncertainty at the answer position")
    _save(fig, Path(plots_dir) / PLOT)
    return files


def render_uncertainty(run_dir: Path, summary: dict, plots: list, *, level: int = 1, prefix: str = "") -> str:
    """report.md of an uncertainty run (see masktax.probes.uncertainty for the method)."""
    from masktax.results.store import read_json

    h = "#" * level
    config = read_json(Path(run_dir) / "config.json")
    env = read_json(Path(run_dir) / "env.json") if (Path(run_dir) / "env.json").is_file() else {}
    out = [f"{h} masktax probe: uncertainty", "",
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
                   f"{_num(p['p_answer'])} | {pct(p['accuracy'])} | {p['n_items']} |")
    if summary.get("references"):
        out += ["", "AR models (series reference): one point, the one-mask prompt; appended tokens are invisible "
                "to a causal model, so the sweep does not apply."]
    out += ["", f"{h}# Plots", ""]
    for name, caption in plots:
        out += [f"![{caption}]({prefix}plots/{name})", "", f"*{caption}*", ""]
    return "\n".join(out + what_was_run(config, env, h))


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _ci(point: dict, metric: str) -> str:
    ci = point.get(f"{metric}_ci95")
    return _num(point[metric]) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
