"""Summary, plot and report of the `unmask` probe, as pure functions of its stored records.

Per (model, series, x): accuracy = mean over datasets of each dataset's exact-match accuracy, with
the 95% t-interval over datasets, and the mean forward passes per item. Per series, the relative
degradation over the mask sweep RD = (max_x acc - min_x acc) / max_x acc ([P1] MA-loss), and per
order the mean of RD over the `--steps` list.
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
from masktax.report.plots import CHANCE, _save, label  # noqa: E402
from masktax.results.stats import mean  # noqa: E402
from masktax.results.summary import SCHEMA_VERSION  # noqa: E402

SINGLE = "single-step"
REFERENCE = "reference"
PLOT = "unmask.png"


def relative_degradation(accuracies: list[float]) -> float | None:
    """(max - min) / max over a sweep's accuracies; None for fewer than 2 points or max 0."""
    if len(accuracies) < 2 or max(accuracies) <= 0:
        return None
    return (max(accuracies) - min(accuracies)) / max(accuracies)


def summarize_unmask(config: dict, records: Iterable[dict], env: dict) -> dict:
    """The summary.json object of an unmask run (schema of every probe, plus relative_degradation)."""
    cells: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    for r in records:
        cells[r["model"]][r["series"]][r["x"]][r["dataset"]].append(r)
    options = config.get("options", {})
    models = [m for m in config.get("models", []) if m in cells] + sorted(set(cells) - set(config.get("models", [])))
    env_models = env.get("models", {})
    out: dict[str, list[dict]] = {}
    references: dict[str, dict] = {}
    degradation: dict[str, dict] = {}
    for model in models:
        order = env_models.get(model, {}).get("series") or sorted(cells[model])
        series = [s for s in order if s in cells[model]] + sorted(set(cells[model]) - set(order))
        points = []
        for s in series:
            for x in sorted(cells[model][s], key=lambda v: (isinstance(v, str), v)):
                by_dataset = cells[model][s][x]
                acc = dataset_stats(by_dataset, lambda r: float(r["correct"]))
                flat = [r for rs in by_dataset.values() for r in rs]
                first = flat[0]
                points.append({
                    "series": s, "x": x, "accuracy": acc["mean"], "ci95": acc["ci95"], "per_dataset": acc["per_dataset"],
                    "order": first.get("order"), "steps": _nominal_steps(s),
                    "forward_passes": mean([r["forward_passes"] for r in flat]),
                    "n_datasets": len(by_dataset), "n_items": len(flat),
                })
        refs = [p for p in points if p["series"] == REFERENCE]
        out[model] = [p for p in points if p["series"] != REFERENCE]
        if refs:
            references[model] = {"applicable": False, "reference": refs[0],
                                 "reason": "a causal model never sees tokens appended after the position it predicts"}
        elif out[model]:
            degradation[model] = _degradation(out[model], options)
    return {
        "schema_version": SCHEMA_VERSION, "probe": config["probe"], "grid": config.get("grid"),
        "options": options, "models": out, "references": references, "relative_degradation": degradation,
        "model_info": {m: {k: env_models[m].get(k) for k in ("kind", "format", "applicable", "dtype", "soft_mask")}
                       for m in models if m in env_models},
    }


def _nominal_steps(series: str) -> int | None:
    """The --steps value S of a series ("random-40" -> 40; "single-step" -> 1; the AR reference: None)."""
    if series == REFERENCE:
        return None
    return 1 if series == SINGLE else int(series.rsplit("-", 1)[1])


def _degradation(points: list[dict], options: dict) -> dict:
    per_series = {}
    for s in dict.fromkeys(p["series"] for p in points):
        per_series[s] = relative_degradation([p["accuracy"] for p in points if p["series"] == s])
    mean_over_steps = {}
    for order in options.get("order", []):
        values = [per_series.get(f"{order}-{n}") for n in options.get("steps", [])]
        values = [v for v in values if v is not None]
        mean_over_steps[order] = mean(values) if values else None
    return {"per_series": per_series, "mean_over_steps": mean_over_steps, "steps": options.get("steps", [])}


def unmask_csv(summary: dict) -> str:
    """One row per (model, series, x), AR references included."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model", "series", "x", "applicable", "accuracy", "ci95_lo", "ci95_hi", "forward_passes",
                "n_datasets", "n_items"])
    rows = [(m, True, p) for m, pts in summary["models"].items() for p in pts]
    rows += [(m, False, ref["reference"]) for m, ref in summary.get("references", {}).items()]
    for m, ok, p in rows:
        lo, hi = p["ci95"] or ("", "")
        w.writerow([m, p["series"], p["x"], str(ok).lower(), _f(p["accuracy"]), _f(lo), _f(hi),
                    _f(p["forward_passes"]), p["n_datasets"], p["n_items"]])
    return buf.getvalue()


def _f(v) -> str:
    return f"{v:.6f}" if isinstance(v, float) else str(v)


def plot_files(summary: dict) -> list[tuple[str, str]]:
    """(file, caption) of the plots `plot_unmask` writes for this summary."""
    if not any(summary["models"].values()):
        return []
    return [(PLOT, "Accuracy vs extra masks after the answer position (symlog x axis): single forward pass vs "
             "S-step decoding (random / confidence order), 95% CI bands over datasets; dashed: AR reference; "
             "dotted: chance.")]


def plot_unmask(summary: dict, plots_dir: Path) -> list[tuple[str, str]]:
    """One panel per MDLM: a line per series with its CI band; AR references dashed in every panel."""
    files = plot_files(summary)
    if not files:
        return []
    models = [m for m, pts in summary["models"].items() if pts]
    fig, axes = plt.subplots(1, len(models), figsize=(6.0 * len(models), 4.2), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, model in zip(axes[0], models, strict=True):
        points = summary["models"][model]
        for i, s in enumerate(dict.fromkeys(p["series"] for p in points)):
            pts = [p for p in points if p["series"] == s]
            xs, c = [p["x"] for p in pts], colors[i % len(colors)]
            style = "-" if s == SINGLE else ("--" if s.startswith("random") else "-.")
            fwd = pts[-1]["forward_passes"]
            ax.plot(xs, [p["accuracy"] for p in pts], marker="o", color=c, linestyle=style,
                    label=f"{s} (<= {fwd:.0f} fwd/item)" if s != SINGLE else f"{s} (1 fwd/item)")
            if all(p["ci95"] for p in pts):
                ax.fill_between(xs, [p["ci95"][0] for p in pts], [p["ci95"][1] for p in pts], color=c, alpha=0.12,
                                linewidth=0)
        for j, (ref_model, ref) in enumerate(summary.get("references", {}).items()):
            ax.axhline(ref["reference"]["accuracy"], color="black", alpha=0.5 + 0.1 * j, linestyle="--",
                       label=f"{label(ref_model)} (AR reference)")
        ax.axhline(CHANCE, color="grey", linestyle=":", linewidth=1, label="chance (1/3)")
        grid = sorted({p["x"] for p in points} | {0})
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(-0.1, max(grid) * 1.1 if max(grid) > 0 else 1)
        ax.set_xticks(grid, [str(x) for x in grid])
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("extra masks after the answer position")
        ax.set_ylabel("accuracy (mean over datasets, 95% CI)")
        ax.set_title(label(model))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle("unmask: single step vs multi-step decoding")
    _save(fig, Path(plots_dir) / PLOT)
    return files


def render_unmask(run_dir: Path, summary: dict, plots: list, *, level: int = 1, prefix: str = "") -> str:
    """report.md of an unmask run (see masktax.probes.unmask for the method)."""
    from masktax.results.store import read_json

    h = "#" * level
    config = read_json(Path(run_dir) / "config.json")
    env = read_json(Path(run_dir) / "env.json") if (Path(run_dir) / "env.json").is_file() else {}
    opts = summary.get("options", {})
    out = [f"{h} masktax probe: unmask", ""]
    out += [
        "The mask-scaling prompts (`Answer:[` + the answer mask + x extra masks) decoded in S steps with "
        f"LLaDA's sampler (one block), order {', '.join(opts.get('order', []))}, S in "
        f"{', '.join(map(str, opts.get('steps', [])))}; the token committed at the answer position is scored. "
        "A decode of 1 + x masks takes min(S, 1 + x) steps (one token per step when there are fewer masks than "
        "steps), so it costs that many forward passes per item; single-step is one forward pass (the masks "
        "probe). Soft-masking: " + ("on" if opts.get("soft_mask") or opts.get("soft_mask_from") else "off") + ".",
        "",
    ]
    models = [m for m, pts in summary["models"].items() if pts]
    out += [f"{h}# Results", "", "Accuracy in % [95% CI over datasets] (forward passes per item).", ""]
    keys = list(dict.fromkeys((p["series"], p["x"]) for m in models for p in summary["models"][m]))
    out += ["| series | x | " + " | ".join(label(m) for m in models) + " |", "|---|---|" + "---|" * len(models)]
    for s, x in keys:
        row = []
        for m in models:
            p = next((p for p in summary["models"][m] if (p["series"], p["x"]) == (s, x)), None)
            ci = f" [{pct(p['ci95'][0])}, {pct(p['ci95'][1])}]" if p and p["ci95"] else ""
            row.append(f"{pct(p['accuracy'])}{ci} ({p['forward_passes']:.1f})" if p else "")
        out.append(f"| {s} | {x} | " + " | ".join(row) + " |")
    for m, ref in summary.get("references", {}).items():
        out += ["", f"{label(m)}: NOT APPLICABLE (causal model; tokens after the answer are invisible). "
                f"Reference accuracy with one mask: {pct(ref['reference']['accuracy'])}%."]
    out += ["", f"{h}# Relative degradation over the mask sweep", "",
            "RD = (max_x acc - min_x acc) / max_x acc, in %; the last columns average RD over the steps list "
            "([P1]: steps 2, 4, 6, random order; LLaDA-8B Base 15.5%, Instruct 27.5% before MA fine-tuning).", ""]
    rd = summary.get("relative_degradation", {})
    series = list(dict.fromkeys(s for m in rd for s in rd[m]["per_series"]))
    orders = list(dict.fromkeys(o for m in rd for o in rd[m]["mean_over_steps"]))
    out += ["| model | " + " | ".join(series + [f"{o}, mean over steps" for o in orders]) + " |",
            "|---|" + "---|" * (len(series) + len(orders))]
    for m, d in rd.items():
        cells = [pct(d["per_series"].get(s)) for s in series] + [pct(d["mean_over_steps"].get(o)) for o in orders]
        out.append(f"| {label(m)} | " + " | ".join(cells) + " |")
    out += ["", f"{h}# Plots", ""]
    for name, caption in plots:
        out += [f"![{caption}]({prefix}plots/{name})", "", f"*{caption}*", ""]
    return "\n".join(out + what_was_run(config, env, h))
