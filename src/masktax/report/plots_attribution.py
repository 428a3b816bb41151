"""Summary, plots and report of the `attribution` probe, as pure functions of its stored records.

Per model and group (masks / last50 / nonmask / answer): mean and standard deviation over examples
of the per-example group means of normalised scores (see masktax.probes.attribution), plus the 95%
t-interval over datasets of the per-dataset means. The position profile averages each example's
right-aligned binned scores over the examples that reach that far left.
"""

from __future__ import annotations

import csv
import io
import math
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

GROUPS = ("masks", "last50", "nonmask", "answer")
GROUP_TITLES = {"masks": "masks", "last50": "last 50 non-mask", "nonmask": "all non-mask", "answer": "answer position"}
EXAMPLE_TOKENS = 72  # tokens drawn as text in the heat strip (the right end of the prompt)
POSITION_PLOT, EXAMPLE_PLOT, GROUPS_PLOT = "attribution_position.png", "attribution_example.png", "attribution_groups.png"


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and (population) standard deviation; (None, None) for no values."""
    if not values:
        return None, None
    m = sum(values) / len(values)
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def summarize_attribution(config: dict, records: Iterable[dict], env: dict) -> dict:
    """The summary.json object: per model one point (x = --n-masks) with accuracy, groups and profile."""
    by_model: dict = defaultdict(lambda: defaultdict(list))
    examples: dict[str, dict] = {}
    for r in records:
        by_model[r["model"]][r["dataset"]].append(r)
        if "example" in r:
            examples[r["model"]] = {**r["example"], "answer_pos": r["answer_pos"], "dataset": r["dataset"],
                                    "index": r["index"], "pred_id": r["pred_id"], "answer_id": r["answer_id"]}
    options = config.get("options", {})
    models = [m for m in config.get("models", []) if m in by_model] + sorted(set(by_model) - set(config.get("models", [])))
    env_models = env.get("models", {})
    out: dict[str, list[dict]] = {}
    for model in models:
        by_dataset = by_model[model]
        flat = [r for rs in by_dataset.values() for r in rs]
        acc = dataset_stats(by_dataset, lambda r: float(r["correct"]))
        groups = {}
        for g in GROUPS:
            m, sd = mean_std([r["groups"][g] for r in flat if r["groups"].get(g) is not None])
            over = dataset_stats(by_dataset, lambda r, g=g: r["groups"].get(g))
            groups[g] = {"mean": m, "std": sd, "ci95": over["ci95"], "per_dataset": over["per_dataset"]}
        out[model] = [{
            "series": "attribution", "x": options.get("n_masks"), "accuracy": acc["mean"], "ci95": acc["ci95"],
            "per_dataset": acc["per_dataset"], "groups": groups, "profile": _profile(flat),
            "n_datasets": len(by_dataset), "n_items": len(flat),
        }]
    return {
        "schema_version": SCHEMA_VERSION, "probe": config["probe"], "grid": None, "options": options,
        "models": out, "references": {}, "examples": examples,
        "model_info": {m: {k: env_models[m].get(k) for k in ("kind", "format", "dtype")} for m in models if m in env_models},
    }


def _profile(records: list[dict]) -> dict:
    """Mean over examples of each right-aligned bin; `n` = how many examples reach each bin."""
    from masktax.probes.attribution import PROFILE_BIN

    sums: list[float] = []
    counts: list[int] = []
    for r in records:
        for i, v in enumerate(r["profile"]):
            if i == len(sums):
                sums.append(0.0)
                counts.append(0)
            sums[i] += v
            counts[i] += 1
    return {"bin": PROFILE_BIN, "mean": [s / c for s, c in zip(sums, counts, strict=True)], "n": counts}


def attribution_csv(summary: dict) -> str:
    """One row per model: accuracy and each group's mean and std."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model", "n_masks", "accuracy", *[f"{g}_{s}" for g in GROUPS for s in ("mean", "std")], "n_items"])
    for model, (p,) in ((m, pts) for m, pts in summary["models"].items() if pts):
        cells = [_f(p["groups"][g][s]) for g in GROUPS for s in ("mean", "std")]
        w.writerow([model, p["x"], _f(p["accuracy"]), *cells, p["n_items"]])
    return buf.getvalue()


def _f(v) -> str:
    return "" if v is None else f"{v:.6f}" if isinstance(v, float) else str(v)


def plot_files(summary: dict) -> list[tuple[str, str]]:
    """(file, caption) of the plots `plot_attribution` writes for this summary."""
    if not any(summary["models"].values()):
        return []
    n = summary.get("options", {}).get("n_masks")
    bin_size = next(pts[0]["profile"]["bin"] for pts in summary["models"].values() if pts)
    files = [
        (GROUPS_PLOT, "Mean normalised attribution per group (error bars: std over examples)."),
        (POSITION_PLOT, f"Mean normalised attribution vs position counted from the right end of the prompt "
         f"(bins of {bin_size} tokens); the dotted "
         f"line marks the answer position, the {n} masks lie to its right."),
    ]
    if summary.get("examples"):
        files.append((EXAMPLE_PLOT, "One example prompt per model: every position's normalised score as a strip "
                      f"(top) and the last {EXAMPLE_TOKENS} tokens coloured by score (bottom)."))
    return files


def plot_attribution(summary: dict, plots_dir: Path) -> list[tuple[str, str]]:
    files = plot_files(summary)
    if not files:
        return []
    plots_dir = Path(plots_dir)
    models = [m for m, pts in summary["models"].items() if pts]
    _plot_groups(summary, models, plots_dir / GROUPS_PLOT)
    _plot_position(summary, models, plots_dir / POSITION_PLOT)
    if summary.get("examples"):
        _plot_example(summary, plots_dir / EXAMPLE_PLOT)
    return files


def _plot_groups(summary: dict, models: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(models) + 3), 3.8))
    width = 0.8 / len(GROUPS)
    for j, g in enumerate(GROUPS):
        stats = [summary["models"][m][0]["groups"][g] for m in models]
        xs = [i + (j - (len(GROUPS) - 1) / 2) * width for i in range(len(models))]
        ax.bar(xs, [s["mean"] or 0.0 for s in stats], width=width, yerr=[s["std"] or 0.0 for s in stats],
               capsize=2, label=GROUP_TITLES[g])
    ax.set_xticks(range(len(models)), [label(m) for m in models])
    ax.set_ylabel("normalised attribution (mean, std)")
    ax.set_title("attribution by group")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    _save(fig, path)


def _plot_position(summary: dict, models: list[str], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7.0, 3.8))
    for m in models:
        prof = summary["models"][m][0]["profile"]
        xs = [-(i * prof["bin"] + (prof["bin"] - 1) / 2) for i in range(len(prof["mean"]))]
        ax.plot(xs, prof["mean"], label=label(m), linewidth=1.2)
    n = summary.get("options", {}).get("n_masks")
    if n is not None:
        ax.axvline(-n, color="grey", linestyle=":", linewidth=1, label="answer position")
    ax.set_xlabel("position from the right end of the prompt (tokens)")
    ax.set_ylabel("mean normalised attribution")
    ax.set_title("attribution vs position")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def _plot_example(summary: dict, path: Path) -> None:
    examples = summary["examples"]
    fig, axes = plt.subplots(2 * len(examples), 1, figsize=(11, 2.6 * len(examples)), squeeze=False,
                             gridspec_kw={"height_ratios": [1, 3] * len(examples)})
    cmap = plt.get_cmap("viridis")
    for k, (model, ex) in enumerate(examples.items()):
        strip, text = axes[2 * k][0], axes[2 * k + 1][0]
        scores = ex["scores"]
        strip.imshow([scores], aspect="auto", cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
        strip.axvline(ex["answer_pos"], color="red", linewidth=0.8)
        strip.set_yticks([])
        strip.set_title(f"{label(model)}: {ex['dataset']} item {ex['index']} ({len(scores)} tokens; red: answer)",
                        fontsize=9)
        start = max(0, len(scores) - EXAMPLE_TOKENS)
        tokens = ex["tokens"] or [str(i) for i in range(len(scores))]
        text.set_axis_off()
        per_row = 16
        for i in range(start, len(scores)):
            col, row = (i - start) % per_row, (i - start) // per_row
            tok = tokens[i].replace("\n", "\\n")[:8].replace("$", r"\$")
            colour = cmap(scores[i])
            text.text(col / per_row, 1 - (row + 0.5) / ((EXAMPLE_TOKENS + per_row - 1) // per_row), tok,
                      fontsize=7, ha="left", va="center", transform=text.transAxes,
                      color="white" if scores[i] < 0.6 else "black",
                      bbox={"facecolor": colour, "edgecolor": "red" if i == ex["answer_pos"] else "none", "pad": 1.5})
    _save(fig, path)


def render_attribution(run_dir: Path, summary: dict, plots: list, *, level: int = 1, prefix: str = "") -> str:
    """report.md of an attribution run (see masktax.probes.attribution for the method)."""
    from masktax.results.store import read_json

    h = "#" * level
    config = read_json(Path(run_dir) / "config.json")
    env = read_json(Path(run_dir) / "env.json") if (Path(run_dir) / "env.json").is_file() else {}
    opts = summary.get("options", {})
    out = [f"{h} masktax probe: attribution", "",
           "Score of token i: the L2 norm of the gradient of the predicted answer token's logit (the argmax at "
           "the answer position) with respect to token i's input embedding. Each example's scores are divided "
           "by their maximum over all its positions, so they lie in [0, 1]; a group's value is the mean over its "
           "positions, then mean +- std over examples. "
           f"Prompts: 10 relevant + 40 distractor examples mixed, {opts.get('orderings')} orderings x "
           f"{opts.get('questions')} questions per dataset, `Answer:[` + the answer position + "
           f"{opts.get('n_masks')} masks.", "",
           f"{h}# Results", "",
           "| model | masks | last 50 non-mask | all non-mask | answer position | accuracy % | items |",
           "|---|---|---|---|---|---|---|"]
    kinds = {}
    for m, pts in summary["models"].items():
        if not pts:
            continue
        p = pts[0]
        kinds[m] = summary.get("model_info", {}).get(m, {}).get("kind")
        cells = []
        for g in GROUPS:
            s = p["groups"][g]
            cells.append("n/a" if s["mean"] is None else f"{s['mean']:.3f} +- {s['std']:.3f}")
        out.append(f"| {label(m)} | " + " | ".join(cells) + f" | {pct(p['accuracy'])} | {p['n_items']} |")
    if any(k == "ar" for k in kinds.values()):
        out += ["", "AR models: the answer logit is computed from the tokens before the answer position, so the "
                "answer position and the appended masks get exactly zero attribution (invisible to a causal model)."]
    out += ["", "[P1] for reference (50 masks; masks / last 50 / all non-mask): LLaDA-8B Base 0.234 / 0.005 / 0.005, "
            "Instruct 0.220 / 0.057 / 0.017; Dream-7B Base 0.282 / 0.012 / 0.005, Instruct 0.144 / 0.030 / 0.018.",
            "", f"{h}# Plots", ""]
    for name, caption in plots:
        out += [f"![{caption}]({prefix}plots/{name})", "", f"*{caption}*", ""]
    return "\n".join(out + what_was_run(config, env, h))
