"""`unmask`: does multi-step decoding win back what the appended masks cost? ([P1] unmasking recovery)

The prompts are those of the mask-scaling sweep (`masks` probe: 10 relevant + 40 distractor
examples mixed, the prompt ends `Answer:[` + the answer mask + x extra masks). Instead of reading
the answer mask after one forward pass, the 1 + x masks are decoded with LLaDA's sampler
(`masktax.samplers.generate_semi_ar`, one block of gen_length = 1 + x) in

    S_eff = min(S, 1 + x) steps

choosing the positions to commit at random (`--order random`) or by highest confidence
(`--order confidence`, LLaDA's "low_confidence" remasking), and the token finally committed at the
answer position is scored (exact match, greedy). With at least as many masks as steps the masks
are split evenly over the S steps (the remainder to the first steps); with fewer masks than steps
one token is committed per step, so a decode never costs more forward passes than it has masks.
Forward passes per item are recorded (S_eff; 1 for the single-step numbers). The sampler never
commits the mask token itself (its logit is -inf), unlike the single-step argmax.

The single-step accuracy of the same items (series "single-step", exactly the `masks` probe) is
run in the same run dir, so every decoded series sits beside it. `--steps` takes a list (2,4,6
gives [P1]'s MA-loss metric): per series, the relative degradation over the mask sweep

    RD = (max_x acc(x) - min_x acc(x)) / max_x acc(x)

is reported, and per order its mean over the steps list ([P1]: averaged over 2, 4, 6 steps,
random order; LLaDA-8B Base 15.5%, Instruct 27.5%). `--soft-mask` decodes with soft-masking
([P2]) using the soft_mask.json in each model's directory, `--soft-mask-from DIR` one file for all.

`--cache prefix` (or `dual`, the same for one block) decodes with Fast-dLLM's prefix cache: the first
step runs the whole prompt and caches its keys and values, every later step runs only the 1 + x
masks. For a bidirectional model that is an approximation (the prompt's keys saw the masks as they
were at the first step): the first step, and so every single-step answer, is unchanged.

Random order is seeded per item (from the run seed and the item's key), so its draws do not depend
on which items share a batch: the same seed gives the same choices at any `--batch-size`.
AR models get the one-mask reference (the sweep appends tokens a causal model never sees).

    masktax probe unmask --model embedded-mdlm --steps 2,4,6 --order random --grid 0,10,50 --out runs/unmask
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from masktax.errors import MasktaxError
from masktax.models.loaded import LoadedModel
from masktax.probes import masks
from masktax.probes.engine import ProbeItem, plan_batches, token_budget
from masktax.probes.items import Cell, item_seed
from masktax.probes.loading import resolve_format
from masktax.probes.options import flag, int_grid, int_list, name_list
from masktax.probes.run import ProbeRun
from masktax.render import figures, markdown
from masktax.render.names import label
from masktax.results.stats import dataset_stats, mean, relative_degradation
from masktax.results.summary import REFERENCE, SCHEMA_VERSION, group_records, run_models
from masktax.samplers import CACHES, SoftMaskConfig, generate_semi_ar, left_pad
from masktax.samplers.soft_mask import SOFT_MASK_FILE

NAME = "unmask"
DESCRIPTION = "accuracy vs extra masks when the masks are decoded in S steps (random or confidence order)"
X_LABEL = "extra masks after the answer position"
X_MEANING = (
    "x = number of EXTRA masks after the answer mask, as in the masks probe; the 1 + x masks are decoded "
    "in min(S, 1 + x) steps and the token committed at the answer position is scored"
)
SINGLE = "single-step"
ORDERS = {"random": "random", "confidence": "low_confidence"}  # --order -> the sampler's remasking
PLOT = "unmask.png"


@dataclass(frozen=True)
class Options:
    grid: tuple[int, ...] = field(default=masks.GRID, metadata=flag("Comma-separated x values: extra masks after the answer."))
    steps: tuple[int, ...] = field(default=(40,), metadata=flag(
        "Decoding steps S, a list such as 2,4,6 ([P1]: 40; the MA-loss metric: 2,4,6)."))
    order: tuple[str, ...] = field(default=("random", "confidence"), metadata=flag(
        "Which positions each step commits: random, confidence or both."))
    soft_mask: bool = field(default=False, metadata=flag("Soft-masking ([P2]) with each model dir's soft_mask.json."))
    soft_mask_from: str | None = field(default=None, metadata=flag("One soft_mask.json (or its directory) for every model."))
    cache: str = field(default="none", metadata=flag(
        "KV cache of the decode: none, prefix or dual (Fast-dLLM; approximate for MDLMs).", stored_if_set=True))

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", int_grid(self.grid, NAME))
        object.__setattr__(self, "steps", int_list(self.steps, "--steps", minimum=1))
        object.__setattr__(self, "order", name_list(self.order, "--order", tuple(ORDERS)))
        if self.soft_mask_from is not None:
            object.__setattr__(self, "soft_mask_from", str(self.soft_mask_from))
        if self.cache not in CACHES:
            raise MasktaxError(f"--cache '{self.cache}' is unknown; choose one of {', '.join(CACHES)}")

    def series(self) -> list[str]:
        """The decoded series, e.g. "random-40", in (order, steps) order."""
        return [series_name(o, s) for o in self.order for s in self.steps]


def series_name(order: str, steps: int) -> str:
    return f"{order}-{steps}"


def soft_mask_config(options: Options, model_dir: str) -> SoftMaskConfig | None:
    """The SoftMaskConfig for a model whose soft_mask.json would sit in `model_dir` (None without soft-masking)."""
    if options.soft_mask_from is not None:
        return SoftMaskConfig.from_checkpoint(options.soft_mask_from)
    if not options.soft_mask:
        return None
    if not Path(model_dir).is_dir():
        raise MasktaxError(
            f"--soft-mask reads soft_mask.json from the model's directory, but '{model_dir}' is not a "
            "directory; pass --soft-mask-from DIR"
        )
    return SoftMaskConfig.from_checkpoint(model_dir)


def soft_mask_dir(name: str, lm: LoadedModel) -> str:
    """Where --soft-mask looks for soft_mask.json: a fine-tuned model's run dir when it has one
    (a `masktax train-sm` run), else the (base) model's directory."""
    tuned = lm.extra.get("adapter_dir")
    if tuned is not None and (Path(tuned) / SOFT_MASK_FILE).is_file():
        return str(tuned)
    return str(lm.extra.get("base_name", name))


def cells(options: Options, kind: str) -> list[Cell]:
    """The single-step cells (the masks sweep, series "single-step"); AR models: the reference."""
    if kind == "ar":
        return [Cell(series=REFERENCE, x=0)]
    return [Cell(series=SINGLE, x=x, suffix="masks", n_extra=x, size_hint=x) for x in options.grid]


def decode_batch(
    lm: LoadedModel, items: list[ProbeItem], *, steps: int, order: str, soft_mask, seed: int, cache: str = "none"
) -> list[dict]:
    """Decode the 1 + x masks of equally long suffixes in min(steps, 1 + x) steps; one record per item."""
    gen_length = len(items[0].ids) - items[0].answer_pos
    if any(len(it.ids) - it.answer_pos != gen_length for it in items):
        raise ValueError("a decode batch must share its number of masks")
    pad_id = lm.pad_id if lm.pad_id is not None else (lm.eos_id or 0)
    ids, attention = left_pad([it.ids[: it.answer_pos] for it in items], pad_id)  # [b, lp], [b, lp]
    mask = None if bool(attention.all()) else attention
    s_eff = min(steps, gen_length)
    generators = [torch.Generator(device=lm.device).manual_seed(item_seed(seed, "unmask", it.key)) for it in items]
    out, history = generate_semi_ar(
        lm, ids.to(lm.device), steps=s_eff, gen_length=gen_length, block_length=gen_length,
        remasking=ORDERS[order], mask_id=lm.mask_id, attention_mask=None if mask is None else mask.to(lm.device),
        soft_mask=soft_mask, generator=generators, return_history=True, cache=cache,
    )  # [b, lp + gen_length]
    lp = ids.shape[1]
    answer = out[:, lp].tolist()  # [b] the token committed at the answer position
    when = history.order()[:, lp].tolist()  # [b] the step that committed it
    return [{
        "model": it.model, "series": series_name(order, steps), "x": it.x, "dataset": it.dataset,
        "index": it.index, "suffix": "masks", "n_tokens": len(it.ids), "answer_pos": it.answer_pos,
        "answer_id": it.answer_id, "pred_id": int(answer[row]), "correct": bool(int(answer[row]) == it.answer_id),
        "order": order, "steps": s_eff, "forward_passes": history.forward_passes, "answer_step": int(when[row]),
    } for row, it in enumerate(items)]


def batch_plan(lm: LoadedModel, items: list[ProbeItem], batch_size: int | str) -> list[list[int]]:
    """Decode batches: prompts of similar length (the suffix is equal within a cell)."""
    lengths = [it.answer_pos for it in items]
    if batch_size == "auto":
        rows, tokens = None, token_budget(lm, max(len(it.ids) for it in items))
    else:
        rows, tokens = int(batch_size), None
    return plan_batches(lengths, max_rows=rows, max_tokens=tokens, pad=lm.honours_attention_mask)


def refuses(options: Options, kind: str) -> str | None:
    """Why a model of `kind` cannot be scored (None: it can); run_probe asks before any model is scored."""
    return "it is a uniform-noise model, without masks to decode" if kind == "uniform" else None


def score(run: ProbeRun, name: str, lm: LoadedModel) -> None:
    """Single-step scores, then every (order, steps) decode, of one model's pending items."""
    if lm.kind == "uniform":
        raise MasktaxError(f"the unmask probe decodes masks, but '{name}' is a uniform-noise model without them")
    if lm.kind == "mdlm":
        lm.require_mask("the unmask probe")
    opts: Options = run.options
    fmt = resolve_format(run.cfg.format, name, lm)
    sm = soft_mask_config(opts, soft_mask_dir(name, lm)) if lm.kind == "mdlm" else None
    the_cells = cells(opts, lm.kind)
    decoded = opts.series() if lm.kind == "mdlm" else []
    run.preflight(lm, name, fmt, the_cells)
    total = len(the_cells) * sum(min(run.cfg.n_items, len(d.tests)) for d in run.datasets) * (1 + len(decoded))
    run.record_model(name, lm, {
        "format": fmt, "applicable": lm.kind == "mdlm", "series": [the_cells[0].series, *decoded],
        "soft_mask": None if sm is None else asdict(sm),
    }, expected_items=total)
    with run.bar(name, len(the_cells) * len(run.datasets) * run.cfg.n_items * (1 + len(decoded))) as bar:
        for cell in the_cells:  # a cell's items over every dataset: equal suffixes, so large decode batches
            items = [it for dataset in run.datasets for it in run.encode(lm, name, fmt, dataset, cell)]
            bar.update(sum(run.is_done(it.key) for it in items))
            for records in run.scored(lm, items):
                run.store_records(name, [{**r, "steps": 1, "forward_passes": 1} for r in records])
                bar.update(len(records))
            for order in opts.order if decoded else ():
                for steps in opts.steps:
                    renamed = [replace(it, series=series_name(order, steps)) for it in items]
                    decode_items(run, name, lm, renamed, order, steps, sm, bar)


def decode_items(run: ProbeRun, name: str, lm: LoadedModel, items: list[ProbeItem], order: str, steps: int,
                 sm, bar) -> None:
    """Decode the pending items of one (cell, dataset, order, steps) batch by batch."""
    for batch in batch_plan(lm, items, run.cfg.batch_size):
        batch_items = [items[i] for i in batch]
        pending = {it.key for it in batch_items if not run.is_done(it.key)}
        if pending:
            records = decode_batch(lm, batch_items, steps=steps, order=order, soft_mask=sm, seed=run.cfg.seed,
                                   cache=run.options.cache)
            run.store_records(name, [r for r, it in zip(records, batch_items, strict=True) if it.key in pending])
        bar.update(len(batch_items))


def summarize(config: dict, records: Iterable[dict], env: dict) -> dict:
    """The summary.json object of an unmask run (schema of every probe, plus relative_degradation)."""
    records = list(records)
    cells = group_records(records)
    options = config.get("options", {})
    models = run_models(config, cells)
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


def to_csv(summary: dict) -> str:
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



def plot(summary: dict, plots_dir: Path) -> list[tuple[str, str]]:
    """One panel per MDLM: a line per series with its CI band; AR references dashed in every panel."""
    if not any(summary["models"].values()):
        return []
    files = [(PLOT, "Accuracy vs extra masks after the answer position (symlog x axis): single forward pass vs "
             "S-step decoding (random / confidence order), 95% CI bands over datasets; dashed: AR reference; "
             "dotted: chance.")]
    models = [m for m, pts in summary["models"].items() if pts]
    plt = figures.pyplot()
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
        ax.axhline(figures.CHANCE, color="grey", linestyle=":", linewidth=1, label="chance (1/3)")
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
    fig.suptitle(figures.titled(summary, "unmask: single step vs multi-step decoding"))
    figures.save(fig, Path(plots_dir) / PLOT)
    return files


def render(config: dict, env: dict, summary: dict, plots: list, *, level: int = 1, prefix: str = "",
           notice: str | None = None) -> str:
    """report.md of an unmask run (the method: this module's docstring)."""
    h = "#" * level
    opts = summary.get("options", {})
    out = markdown.heading(summary, level, notice)
    out += [
        "The mask-scaling prompts (`Answer:[` + the answer mask + x extra masks) decoded in S steps with "
        f"LLaDA's sampler (one block), order {', '.join(opts.get('order', []))}, S in "
        f"{', '.join(map(str, opts.get('steps', [])))}; the token committed at the answer position is scored. "
        "A decode of 1 + x masks takes min(S, 1 + x) steps (one token per step when there are fewer masks than "
        "steps), so it costs that many forward passes per item; single-step is one forward pass (the masks "
        "probe). Soft-masking: " + ("on" if opts.get("soft_mask") or opts.get("soft_mask_from") else "off") + "."
        + ("" if opts.get("cache", "none") == "none" else f" KV cache: {opts['cache']} (Fast-dLLM; approximate: "
           "later steps reuse the prompt's keys from the first step)."),
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
            ci = f" [{markdown.pct(p['ci95'][0])}, {markdown.pct(p['ci95'][1])}]" if p and p["ci95"] else ""
            row.append(f"{markdown.pct(p['accuracy'])}{ci} ({p['forward_passes']:.1f})" if p else "")
        out.append(f"| {s} | {x} | " + " | ".join(row) + " |")
    for m, ref in summary.get("references", {}).items():
        out += ["", f"{label(m)}: NOT APPLICABLE (causal model; tokens after the answer are invisible). "
                f"Reference accuracy with one mask: {markdown.pct(ref['reference']['accuracy'])}%."]
    out += ["", f"{h}# Relative degradation over the mask sweep", "",
            "RD = (max_x acc - min_x acc) / max_x acc, in %; the last columns average RD over the steps list "
            "([P1]: steps 2, 4, 6, random order; LLaDA-8B Base 15.5%, Instruct 27.5% before MA fine-tuning).", ""]
    rd = summary.get("relative_degradation", {})
    series = list(dict.fromkeys(s for m in rd for s in rd[m]["per_series"]))
    orders = list(dict.fromkeys(o for m in rd for o in rd[m]["mean_over_steps"]))
    out += ["| model | " + " | ".join(series + [f"{o}, mean over steps" for o in orders]) + " |",
            "|---|" + "---|" * (len(series) + len(orders))]
    for m, d in rd.items():
        cells = [markdown.pct(d["per_series"].get(s)) for s in series] + [markdown.pct(d["mean_over_steps"].get(o)) for o in orders]
        out.append(f"| {label(m)} | " + " | ".join(cells) + " |")
    out += ["", f"{h}# Plots", ""]
    out += markdown.image_lines(plots, prefix)
    return "\n".join(out + markdown.what_was_run(config, env, h))


def glance(summary: dict, models: list[str]) -> list[tuple[str, list[str]]]:
    """The At-a-glance row: relative degradation of random-order unmasking, mean over the steps list."""
    rd = summary.get("relative_degradation", {})
    return [("relative degradation, random-order unmasking (mean over steps), %",
             [markdown.pct(rd[m]["mean_over_steps"].get("random")) if m in rd else "n/a" for m in models])]
