"""`masktax eval`'s outputs as pure functions of its records: summary.json, summary.csv, plots, report.md.

A record is one (model, task, N) with lm-eval's results of that task (and of its subtasks when it is a
group). Each task's headline metric is the first of METRIC_ORDER that lm-eval reported (else its
first metric); its interval is value +- 1.96 x lm-eval's stderr. Causal models have N = 0 only and
are drawn as dashed reference lines.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from masktax.render.figures import pyplot, save, symlog_axis
from masktax.render.markdown import what_was_run
from masktax.render.names import label
from masktax.results.store import atomic_write_json, atomic_write_text

SCHEMA_VERSION = 1
METRIC_ORDER = ("acc", "exact_match", "acc_norm", "f1", "mcc", "word_perplexity", "bits_per_byte")
Z95 = 1.96


def headline(results: dict) -> tuple[str, float | None, float | None] | None:
    """(metric key, value, stderr) of one task's lm-eval results (keys like "acc,none")."""
    metrics = [k for k, v in results.items() if "," in k and "_stderr" not in k and isinstance(v, (int, float))]
    if not metrics:
        return None
    rank = {m: i for i, m in enumerate(METRIC_ORDER)}
    key = min(metrics, key=lambda k: (rank.get(k.split(",")[0], len(rank)), metrics.index(k)))
    name, _, filt = key.partition(",")
    stderr = results.get(f"{name}_stderr,{filt}")
    return key, results[key], stderr if isinstance(stderr, (int, float)) else None


def summarize(config: dict, env: dict, records: list[dict]) -> dict:
    """{"schema_version", "probe": "eval", "models": {m: [point]}, "references": {m: [point]}}; a point is
    {"task", "x", "metric", "value", "stderr", "ci95", "n_samples"} for the task itself (a group: its
    aggregate)."""
    models: dict[str, list[dict]] = {}
    refs: dict[str, list[dict]] = {}
    for r in sorted(records, key=lambda r: (config["tasks"].index(r["task"]) if r["task"] in config["tasks"] else 0,
                                            r["extra_masks"])):
        res = r.get("groups", {}).get(r["task"]) or r.get("results", {}).get(r["task"], {})
        head = headline(res)
        if head is None:
            continue
        key, value, stderr = head
        ci = None if stderr is None else [value - Z95 * stderr, value + Z95 * stderr]
        counts = r.get("n_samples", {})  # per task; a group's is the sum over its subtasks
        n = [counts[r["task"]]] if r["task"] in counts else list(counts.values())
        effective = [c.get("effective") for c in n if isinstance(c, dict)]
        point = {"task": r["task"], "x": r["extra_masks"], "metric": key, "value": value, "stderr": stderr,
                 "ci95": ci, "n_samples": sum(effective) if effective and None not in effective else None,
                 "seconds": r.get("seconds")}
        kind = env.get("models", {}).get(r["model"], {}).get("kind")
        (refs if kind == "ar" else models).setdefault(r["model"], []).append(point)
    return {"schema_version": SCHEMA_VERSION, "probe": "eval", "models": models, "references": refs}


def to_csv(summary: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["model", "kind", "task", "metric", "extra_masks", "value", "stderr", "ci95_lo", "ci95_hi", "n_samples"])
    for kind, group in (("mdlm", summary["models"]), ("reference", summary["references"])):
        for m, pts in group.items():
            for p in pts:
                lo, hi = p["ci95"] or (None, None)
                w.writerow([m, kind, p["task"], p["metric"], p["x"], p["value"], p["stderr"], lo, hi, p["n_samples"]])
    return buf.getvalue()


def tasks_of(summary: dict) -> list[str]:
    pts = [p for group in (summary["models"], summary["references"]) for ps in group.values() for p in ps]
    return list(dict.fromkeys(p["task"] for p in pts))


def plot_task(summary: dict, task: str, path: Path) -> None:
    """The task's metric vs extra masks (symlog x), error bars = 1.96 x stderr; AR references dashed."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    metric = None
    shown = {"models": {}}
    for i, (m, pts) in enumerate(summary["models"].items()):
        pts = [p for p in pts if p["task"] == task]
        if not pts:
            continue
        shown["models"][m] = pts
        metric = pts[0]["metric"]
        err = [Z95 * (p["stderr"] or 0.0) for p in pts]
        ax.errorbar([p["x"] for p in pts], [p["value"] for p in pts], yerr=err, marker="o", capsize=3,
                    color=colors[i % len(colors)], label=label(m))
    for j, (m, pts) in enumerate(summary["references"].items()):
        pts = [p for p in pts if p["task"] == task]
        if pts:
            metric = metric or pts[0]["metric"]
            ax.axhline(pts[0]["value"], linestyle="--", color=colors[(len(summary["models"]) + j) % len(colors)],
                       label=f"{label(m)} (AR reference)")
    if shown["models"]:
        symlog_axis(ax, shown)
    ax.set_xlabel("extra masks appended (N)")
    ax.set_ylabel(f"{metric} (error bars: 95% from lm-eval's stderr)")
    ax.set_title(f"{task}: {metric} vs masks")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    save(fig, path)


def plot_name(task: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in task) + ".png"


def render(config: dict, env: dict, summary: dict) -> str:
    out = ["# masktax eval: lm-eval tasks vs extra masks", ""]
    out += ["Each task runs through lm-eval's own evaluator with `--model masktax`; N masks are appended after "
            "every loglikelihood continuation (and added to every generation canvas). MDLM log-likelihoods are "
            f"LLaDA's Monte Carlo mask bound ({_mc(config)}); causal models are exact and see no masks, so they are "
            "drawn as reference lines. Values are lm-eval's, with its stderr; the 95% interval is value +- 1.96 "
            "stderr.", ""]
    for task in tasks_of(summary):
        out += [f"## {task}", ""]
        rows = {m: {p["x"]: p for p in pts if p["task"] == task} for m, pts in summary["models"].items()}
        xs = sorted({x for r in rows.values() for x in r})
        names = [m for m in rows if rows[m]]
        refs = {m: next((p for p in pts if p["task"] == task), None) for m, pts in summary["references"].items()}
        metric = next((p["metric"] for r in rows.values() for p in r.values()), None) or next(
            (p["metric"] for p in refs.values() if p), "")
        out += [f"Metric: `{metric}`.", ""]
        if names:
            out += ["| extra masks | " + " | ".join(label(m) for m in names) + " |", "|---|" + "---|" * len(names)]
            for x in xs:
                out.append(f"| {x} | " + " | ".join(_cell(rows[m].get(x)) for m in names) + " |")
            out.append("")
        for m, p in refs.items():
            if p:
                out += [f"{label(m)} (AR reference, no masks): {_cell(p)}", ""]
        out += [f"![{task}](plots/{plot_name(task)})", ""]
    return "\n".join(out + what_was_run(config, env, "#"))


def _mc(config: dict) -> str:
    text = config.get("model_args") or ""
    return next((p for p in text.split(",") if p.startswith("mc_num=")), "mc_num=128")


def _cell(p: dict | None) -> str:
    if p is None:
        return ""
    return f"{p['value']:.4f}" + ("" if p["stderr"] is None else f" ± {p['stderr']:.4f}")


def write_outputs(root: Path, config: dict, env: dict, records: list[dict]) -> dict:
    """summary.json, summary.csv, plots/<task>.png, report.md of a run dir; returns the summary."""
    summary = summarize(config, env, records)
    atomic_write_json(root / "summary.json", summary)
    atomic_write_text(root / "summary.csv", to_csv(summary))
    for task in tasks_of(summary):
        plot_task(summary, task, root / "plots" / plot_name(task))
    atomic_write_text(root / "report.md", render(config, env, summary))
    return summary
