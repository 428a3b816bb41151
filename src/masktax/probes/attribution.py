"""`attribution`: where does the predicted answer look? Gradient attribution with masks appended ([P1]).

For each item the prompt ends `Answer:[` + the answer position + n extra masks (`--n-masks`, default
49: 50 masks in all after `Answer:[`, the paper's "50 masks appended"; the masks probe's x). The
score of input token i is

    s_i = || d z_{a, y} / d e_i ||_2,    y = argmax_v z_{a, v}

the L2 norm of the gradient of the predicted answer token's (aligned) logit at the answer position
a with respect to token i's input embedding, computed with the weights frozen (see
masktax.probes.gradients). Normalisation, per example: n_i = s_i / max_j s_j over ALL its
positions (prompt, answer position and masks), so every n_i lies in [0, 1]. Groups, per example
the mean of n_i over: "masks" (the n appended masks after the answer position), "last50" (the 50
prompt tokens just before the answer position, i.e. the last 50 non-mask tokens), "nonmask" (every
prompt token), "answer" (the answer position itself). Reported per model as mean +- std over
examples ([P1] table layout: rows models, columns masks / last 50 / all non-mask; LLaDA-8B Base
0.234 / 0.005 / 0.005, Dream-7B Base 0.282 / 0.012 / 0.005).

Setup ([P1]: 10 relevant + 40 distractor examples mixed, 30 random orderings, 20 test questions
per task): per dataset, `--orderings` shuffles of the context (ordering 0 is the arrangement every
other probe uses, ordering k > 0 a shuffle seeded from (seed, k)) times its first `--questions`
test points (default 10, capped by `--n-items`). The 16 datasets pair each of the 8 relevant tasks
with 2 distractor tasks, so the default gives 20 questions per task: 8 x 20 x 30 = 4800 items.

For an AR model the answer logit comes from the hidden state before the answer position, so the
answer position and the appended masks get exactly zero attribution: they are invisible to it.
Uniform-noise models get canvas tokens in place of the masks. Batches are smaller than for
inference (a backward keeps activations): a quarter of the engine's token budget.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from masktax.models.batching import auto_batch_size
from masktax.models.loaded import LoadedModel
from masktax.probes.engine import ProbeItem, check_lengths, plan_batches, token_budget
from masktax.probes.gradients import GROUPS, LAST_N, attribution_scores, group_means, normalise, pad_batch
from masktax.probes.items import Cell, answer_slot_id
from masktax.probes.loading import resolve_format
from masktax.probes.options import flag, one_int
from masktax.probes.run import ProbeRun
from masktax.render import figures, markdown
from masktax.render.names import label
from masktax.results.stats import dataset_stats, mean_std
from masktax.results.summary import SCHEMA_VERSION, run_models
from masktax.tasks.suite import derived_seed

NAME = "attribution"
DESCRIPTION = "gradient attribution of the predicted answer logit to every input token, masks appended"
X_LABEL = ""
X_MEANING = f"x = --n-masks, the extra masks after the answer mask; groups: masks, last {LAST_N} non-mask, all non-mask"
SERIES = "attribution"
PROFILE_BIN = 8  # positions per bin of the stored right-aligned profile
BACKWARD_SHARE = 4  # a backward batch gets 1/4 of the inference token budget
GROUP_TITLES = {"masks": "masks", "last50": "last 50 non-mask", "nonmask": "all non-mask", "answer": "answer position"}
EXAMPLE_TOKENS = 72  # tokens drawn as text in the heat strip (the right end of the prompt)
POSITION_PLOT, EXAMPLE_PLOT, GROUPS_PLOT = "attribution_position.png", "attribution_example.png", "attribution_groups.png"


@dataclass(frozen=True)
class Options:
    n_masks: int = field(default=49, metadata=flag("Extra masks after the answer mask: 50 masks in all, as in [P1]."))
    orderings: int = field(default=30, metadata=flag("Random orderings of the 50 in-context examples ([P1]: 30)."))
    questions: int = field(default=10, metadata=flag(
        "Test points per dataset (x 2 datasets per task = [P1]'s 20 per task); capped by --n-items."))

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_masks", one_int(self.n_masks, "--n-masks", minimum=0))
        object.__setattr__(self, "orderings", one_int(self.orderings, "--orderings", minimum=1))
        object.__setattr__(self, "questions", one_int(self.questions, "--questions", minimum=1))


def ordering_seed(seed: int, ordering: int) -> int:
    """The arrangement seed of ordering k: the run seed itself for k = 0 (every probe's arrangement)."""
    return seed if ordering == 0 else derived_seed(seed, "attribution-ordering", ordering)


def build_items(run: ProbeRun, lm: LoadedModel, name: str, dataset, fmt: str) -> list[ProbeItem]:
    """One dataset's items: orderings x questions, index = ordering * questions + question."""
    opts: Options = run.options
    n_q = min(opts.questions, run.cfg.n_items)
    cell = Cell(series=SERIES, x=opts.n_masks, suffix="masks", n_extra=opts.n_masks)
    items = []
    for k in range(opts.orderings):
        encoded = run.encode(lm, name, fmt, dataset, cell, n_items=n_q, seed=ordering_seed(run.cfg.seed, k))
        items += [replace(it, index=k * n_q + it.index) for it in encoded]
    return items


def profile(norm: list[float], bin_size: int = PROFILE_BIN) -> list[float]:
    """Mean normalised score per bin of positions counted from the right end (bin 0 = the last tokens)."""
    rev = norm[::-1]
    return [round(sum(rev[i:i + bin_size]) / len(rev[i:i + bin_size]), 6) for i in range(0, len(rev), bin_size)]


def score_batch(lm: LoadedModel, items: list[ProbeItem], n_masks: int, n_questions: int, example: bool) -> list[dict]:
    """Attribution records of one batch (the first one carries the full example when `example`)."""
    pad_id = lm.pad_id if lm.pad_id is not None else (lm.eos_id or 0)
    ids, mask = pad_batch([it.ids for it in items], pad_id)  # [b, l], [b, l] or None
    pos = torch.tensor([it.answer_pos for it in items], device=lm.device)  # [b]
    scores, pred = attribution_scores(
        lm, ids.to(lm.device), pos, None if mask is None else mask.to(lm.device)
    )  # [b, l], [b]
    records = []
    for row, it in enumerate(items):
        raw = scores[row, : len(it.ids)]  # [l]
        norm = normalise(raw).tolist()
        groups = group_means(norm, it.answer_pos, n_masks)
        record = {
            "model": it.model, "series": it.series, "x": it.x, "dataset": it.dataset, "index": it.index,
            "ordering": it.index // n_questions, "question": it.index % n_questions, "suffix": it.suffix,
            "n_tokens": len(it.ids), "answer_pos": it.answer_pos, "answer_id": it.answer_id,
            "pred_id": int(pred[row]), "correct": bool(int(pred[row]) == it.answer_id),
            "max_score": float(raw.max()), "groups": groups, "profile": profile(norm),
        }
        if example and row == 0:
            tokens = lm.tokenizer.convert_ids_to_tokens(list(it.ids)) if lm.tokenizer is not None else None
            record["example"] = {"tokens": tokens, "scores": [round(v, 6) for v in norm]}
        records.append(record)
    return records


def batch_plan(lm: LoadedModel, items: list[ProbeItem], batch_size: int | str) -> list[list[int]]:
    """Batches (a function of the items only, so resume is exact): the sorting puts the example first."""
    lengths = [len(it.ids) for it in items]
    if batch_size == "auto" and lm.device.type == "cuda":
        rows, tokens = auto_batch_size(lm, max(lengths), backward=True, full_logits=False), None  # from free memory
    elif batch_size == "auto":
        rows, tokens = None, max(max(lengths), token_budget(lm, max(lengths)) // BACKWARD_SHARE)
    else:
        rows, tokens = int(batch_size), None
    batches = plan_batches(lengths, max_rows=rows, max_tokens=tokens, pad=lm.honours_attention_mask)
    return [sorted(b) for b in sorted(batches, key=min)]


def score(run: ProbeRun, name: str, lm: LoadedModel) -> None:
    """Score every pending item of one model (items of one dataset batched together)."""
    opts: Options = run.options
    answer_slot_id(lm, NAME)  # an MDLM without a mask token: error before any compute
    fmt = resolve_format(run.cfg.format, name, lm)
    per_dataset = [build_items(run, lm, name, d, fmt) for d in run.datasets]
    for items in per_dataset:
        check_lengths(lm, items)
    run.record_model(name, lm, {"format": fmt, "applicable": True, "series": [SERIES]},
                     expected_items=sum(len(items) for items in per_dataset))
    n_q = min(opts.questions, run.cfg.n_items)
    first_key = per_dataset[0][0].key if per_dataset and per_dataset[0] else None
    with run.bar(name, sum(len(items) for items in per_dataset)) as bar:
        for items in per_dataset:
            for batch in batch_plan(lm, items, run.cfg.batch_size):
                batch_items = [items[i] for i in batch]
                pending = [it for it in batch_items if not run.is_done(it.key)]
                if pending:
                    example = pending[0].key == first_key
                    run.store_records(name, score_batch(lm, pending, opts.n_masks, n_q, example))
                bar.update(len(batch_items))


def summarize(config: dict, records: Iterable[dict], env: dict) -> dict:
    """The summary.json object: per model one point (x = --n-masks) with accuracy, groups and profile."""
    by_model: dict = defaultdict(lambda: defaultdict(list))
    examples: dict[str, dict] = {}
    for r in records:
        by_model[r["model"]][r["dataset"]].append(r)
        if "example" in r:
            examples[r["model"]] = {**r["example"], "answer_pos": r["answer_pos"], "dataset": r["dataset"],
                                    "index": r["index"], "pred_id": r["pred_id"], "answer_id": r["answer_id"]}
    options = config.get("options", {})
    models = run_models(config, by_model)
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


def to_csv(summary: dict) -> str:
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


def plot(summary: dict, plots_dir: Path) -> list[tuple[str, str]]:
    """The group bars, the position profile and one example per model; returns (file, caption) pairs."""
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
    plots_dir = Path(plots_dir)
    models = [m for m, pts in summary["models"].items() if pts]
    _plot_groups(summary, models, plots_dir / GROUPS_PLOT)
    _plot_position(summary, models, plots_dir / POSITION_PLOT)
    if summary.get("examples"):
        _plot_example(summary, plots_dir / EXAMPLE_PLOT)
    return files


def _plot_groups(summary: dict, models: list[str], path: Path) -> None:
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(models) + 3), 3.8))
    width = 0.8 / len(GROUPS)
    for j, g in enumerate(GROUPS):
        stats = [summary["models"][m][0]["groups"][g] for m in models]
        xs = [i + (j - (len(GROUPS) - 1) / 2) * width for i in range(len(models))]
        ax.bar(xs, [s["mean"] or 0.0 for s in stats], width=width, yerr=[s["std"] or 0.0 for s in stats],
               capsize=2, label=GROUP_TITLES[g])
    ax.set_xticks(range(len(models)), [label(m) for m in models])
    ax.set_ylabel("normalised attribution (mean, std)")
    ax.set_title(figures.titled(summary, "attribution by group"))
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    figures.save(fig, path)


def _plot_position(summary: dict, models: list[str], path: Path) -> None:
    plt = figures.pyplot()
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
    ax.set_title(figures.titled(summary, "attribution vs position"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figures.save(fig, path)


def _plot_example(summary: dict, path: Path) -> None:
    plt = figures.pyplot()
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
    figures.save(fig, path)


def render(config: dict, env: dict, summary: dict, plots: list, *, level: int = 1, prefix: str = "",
           notice: str | None = None) -> str:
    """report.md of an attribution run (the method: this module's docstring)."""
    h = "#" * level
    opts = summary.get("options", {})
    out = markdown.heading(summary, level, notice)
    out += [
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
        out.append(f"| {label(m)} | " + " | ".join(cells) + f" | {markdown.pct(p['accuracy'])} | {p['n_items']} |")
    if any(k == "ar" for k in kinds.values()):
        out += ["", "AR models: the answer logit is computed from the tokens before the answer position, so the "
                "answer position and the appended masks get exactly zero attribution (invisible to a causal model)."]
    out += ["", "[P1] for reference (50 masks; masks / last 50 / all non-mask): LLaDA-8B Base 0.234 / 0.005 / 0.005, "
            "Instruct 0.220 / 0.057 / 0.017; Dream-7B Base 0.282 / 0.012 / 0.005, Instruct 0.144 / 0.030 / 0.018.",
            "", f"{h}# Plots", ""]
    out += markdown.image_lines(plots, prefix)
    return "\n".join(out + markdown.what_was_run(config, env, h))


def glance(summary: dict, models: list[str]) -> list[tuple[str, list[str]]]:
    """The At-a-glance row: mean normalised attribution to masks / last 50 / all non-mask tokens."""
    att = summary["models"]

    def groups(m: str) -> str:
        if not att.get(m):
            return "n/a"
        g = att[m][0]["groups"]
        return " / ".join(markdown.prob(g[k]["mean"]) if k in g else "n/a" for k in ("masks", "last50", "nonmask"))

    return [("attribution, normalised mean: masks / last 50 / all non-mask", [groups(m) for m in models])]
