"""`format`: what follows the answer position, taken apart: a factorial probe of the mask tax.

[P1] appends N masks after the answer mask and reads the loss as the masks' doing. Appending masks
also removes the closing `].` that every in-context example has right after its answer letter. This
probe separates the two on the items of the `masks` probe (10 relevant + 40 distractor examples
mixed, the first n test points of each dataset), every condition on the same items (paired):

    closure  none          Answer:[ <slot> <extra>*n
             after-answer  Answer:[ <slot> ] . <extra>*n
             after-extra   Answer:[ <slot> <extra>*n ] .
    n        extra tokens after the answer position: --grid (default 0, 1, 10, 50, 200)
    kind     masks   the mask token (uniform-noise models such as DiffusionGemma: canvas tokens,
                     random tokens drawn once per item, the first n of them; kind "canvas")
             filler  " ." repeated ([P1]'s dots control)
             text    the next in-context example's real text: the tokens that follow a closed answer
                     in the prompt's own format (`\\n\\nOptions: (A) ...` of the context's examples in
                     order, as rendered after a query at the left end), the first n of them

`<slot>` is the answer position (the mask; a canvas token for uniform-noise models); `] .` stands for
the closing tokens exactly as the one-mask prompt `Answer:[<mask>].` has them. Series are named
"kind/closure" (e.g. "masks/after-extra"), x = n. At n = 0 the layouts of a closure do not depend on
the kind or the placement (they are scored anyway, so every series is a full curve).

Main effects and interactions (rows of the effects table), each a contrast of per-dataset
accuracies of the same items, with a 95% t-interval over datasets; also computed for the format rate
and the A/B/C-restricted accuracy (masktax.results.summary):

    closure after answer - none    mean over kinds and every n of acc(k, after-answer, n) - acc(k, none, n)
    closure after extras - none    the same with after-extra, over n > 0
    after answer - after extras    acc(after-answer) - acc(after-extra), over kinds and n > 0
    count: first n - last n        acc(k, c, n_first) - acc(k, c, n_last), over kinds and closures (a tax is > 0)
    kind: K - K'                   acc(K, c, n) - acc(K', c, n), over closures and n > 0 (first kind vs each other)
    closure x count                (after answer - none) at n_last minus the same at n_first
    closure x kind K - K'          (after answer - none) with K minus with K', over n > 0
    count x kind K - K'            (n_first - n_last) with K minus with K', over closures

AR models get one reference point (the one-mask accuracy): a causal model never sees what follows
the answer position, so no condition applies.

    masktax probe format --model embedded-mdlm --n-items 8 --out runs/format
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from masktax.models.loaded import LoadedModel
from masktax.probes.engine import ProbeItem, check_lengths
from masktax.probes.items import Cell, answer_slot_id, canvas_ids, item_seed
from masktax.probes.loading import resolve_format
from masktax.probes.options import flag, int_grid, name_list
from masktax.probes.run import CHUNK_ITEMS, ProbeRun, score_cells
from masktax.prompts.encode import filler_token_id
from masktax.prompts.render import arrange, prompt_text
from masktax.render import figures, markdown
from masktax.render.names import label
from masktax.results.stats import mean_ci95
from masktax.results.store import item_key
from masktax.results.summary import REFERENCE, summarize_run, summary_csv
from masktax.tasks.suite import ANSWER_CLOSE, N_DISTRACTOR_CONTEXT, N_RELEVANT_CONTEXT

NAME = "format"
DESCRIPTION = "factorial: closing `].` (none / after the answer / after the extras) x extra tokens x their kind"
X_LABEL = "extra tokens after the answer position"
X_MEANING = (
    "x = number of extra tokens after the answer position; series = kind/closure: kind masks (canvas for "
    "uniform-noise models), filler ' .' or the next in-context example's text; closure `].` none, right after "
    "the answer, or after the extra tokens"
)
GRID = (0, 1, 10, 50, 200)
KINDS = ("masks", "filler", "text")
CLOSURES = ("none", "after-answer", "after-extra")
CANVAS = "canvas"  # the kind "masks" of a uniform-noise model
METRICS = {"accuracy": "per_dataset", "format_rate": "per_dataset_format", "accuracy_abc": "per_dataset_abc"}


@dataclass(frozen=True)
class Options:
    grid: tuple[int, ...] = field(default=GRID, metadata=flag("Comma-separated n: extra tokens after the answer."))
    kinds: tuple[str, ...] = field(default=KINDS, metadata=flag("Extra-token kinds: masks, filler, text (masks: canvas "
                                                                "tokens for uniform-noise models)."))
    closures: tuple[str, ...] = field(default=CLOSURES, metadata=flag("Where the closing `].` goes: none, after-answer, "
                                                                      "after-extra."))

    def __post_init__(self) -> None:
        object.__setattr__(self, "grid", int_grid(self.grid, NAME))
        object.__setattr__(self, "kinds", name_list(self.kinds, "--kinds", KINDS))
        object.__setattr__(self, "closures", name_list(self.closures, "--closures", CLOSURES))


def kind_name(kind: str, model_kind: str) -> str:
    """The series' kind label: "masks" is "canvas" for a uniform-noise model."""
    return CANVAS if kind == "masks" and model_kind == "uniform" else kind


def series_names(options: Options, model_kind: str) -> list[str]:
    return [f"{kind_name(k, model_kind)}/{c}" for k in options.kinds for c in options.closures]


def layout(prefix: list[int], slot: int, closure: list[int], extra: list[int], where: str) -> tuple[list[int], int]:
    """(ids, answer position) of one condition: `prefix` ends `Answer:[`; `where` places the closure ids."""
    if where == "none":
        tail = [slot, *extra]
    elif where == "after-answer":
        tail = [slot, *closure, *extra]
    elif where == "after-extra":
        tail = [slot, *extra, *closure]
    else:
        raise ValueError(f"unknown closure placement {where!r}")
    return [*prefix, *tail], len(prefix)


def text_ids(lm: LoadedModel, context: list, query, fmt: str, n: int) -> list[int]:
    """The first n tokens of the text that follows a closed answer in this format: the context's examples
    in order, as they follow a query at the left end (without its `].`); repeated if shorter than n."""
    rest = prompt_text(context, query, fmt=fmt, query_position="left", tokenizer=lm.tokenizer).rest
    text = rest[len(ANSWER_CLOSE):] if rest.startswith(ANSWER_CLOSE) else rest
    ids = list(lm.tokenizer.encode(text, add_special_tokens=False))
    while 0 < len(ids) < n:
        ids = ids + ids
    return ids[:n]


@dataclass
class Extras:
    """The extra-token sources of one model (`mask`: the answer slot id, also the appended mask)."""

    lm: LoadedModel
    mask: int
    seed: int
    longest: int

    def ids(self, kind: str, n: int, dataset, base: ProbeItem, text: list[int]) -> list[int]:
        if kind == "masks" and self.lm.kind == "uniform":
            gen = torch.Generator().manual_seed(item_seed(self.seed, dataset.name, base.index, NAME, CANVAS))
            return canvas_ids(self.lm, self.longest, gen)[:n]  # the same draw for every closure and n (nested)
        if kind == "masks":
            return [self.mask] * n
        if kind == "filler":
            return [filler_token_id(self.lm.tokenizer)] * n
        return text[:n]


def base_items(run: ProbeRun, lm: LoadedModel, name: str, fmt: str, dataset) -> tuple[list[ProbeItem], list[int]]:
    """A dataset's one-mask items (the masks probe's prompts, `Answer:[<slot>].`) and the next-example text."""
    items = run.encode(lm, name, fmt, dataset, Cell(series="one_mask", x=0))
    text: list[int] = []
    if "text" in run.options.kinds:
        context = arrange(dataset, "mixed", seed=run.cfg.seed, n_relevant=N_RELEVANT_CONTEXT,
                          n_distractor=N_DISTRACTOR_CONTEXT)
        text = text_ids(lm, context, dataset.tests[0], fmt, max(run.options.grid))
    return items, text


def condition_items(bases: list[ProbeItem], series: str, grid: tuple[int, ...], text: list[int], extras: Extras,
                    dataset) -> list[ProbeItem]:
    """The items of one series for the given one-mask items: every n of the grid."""
    kind_label, where = series.split("/")
    kind = "masks" if kind_label == CANVAS else kind_label
    items = []
    for n in grid:
        for base in bases:
            prefix, slot, closure = list(base.ids[: base.answer_pos]), base.ids[base.answer_pos], list(base.ids[base.answer_pos + 1:])
            ids, pos = layout(prefix, slot, closure, extras.ids(kind, n, dataset, base, text), where)
            items.append(ProbeItem(model=base.model, series=series, x=n, dataset=dataset.name, index=base.index,
                                   ids=tuple(ids), answer_pos=pos, answer_id=base.answer_id,
                                   letter_ids=base.letter_ids, suffix=kind_label))
    return items


def score(run: ProbeRun, name: str, lm: LoadedModel) -> None:
    """AR: the one reference point. Otherwise, dataset by dataset and in blocks of test points (every
    condition of an item in the same block), the pending items; identical layouts (at n = 0 the kind and
    the placement do not matter) are computed once and stored under each condition."""
    if lm.kind == "ar":
        score_cells(run, name, lm, [Cell(series=REFERENCE, x=0)], applicable=False)
        return
    opts: Options = run.options
    fmt = resolve_format(run.cfg.format, name, lm)
    extras = Extras(lm, answer_slot_id(lm, NAME), run.cfg.seed, max(opts.grid))
    series = series_names(opts, lm.kind)
    block = max(1, CHUNK_ITEMS // (len(series) * len(opts.grid)))

    def keys(dataset, indices) -> list[str]:
        return [item_key({"model": name, "series": s, "x": x, "dataset": dataset.name, "index": i})
                for s in series for x in opts.grid for i in indices]

    counts = {d.name: range(min(run.cfg.n_items, len(d.tests))) for d in run.datasets}
    todo = [d for d in run.datasets if not all(run.is_done(k) for k in keys(d, counts[d.name]))]
    bases = {}
    for d in todo:  # the longest layout of every dataset fits the context (before any forward)
        bases[d.name] = base_items(run, lm, name, fmt, d)
        check_lengths(lm, condition_items(bases[d.name][0], series[0].split("/")[0] + "/after-answer",
                                          (max(opts.grid),), bases[d.name][1], extras, d))
    run.record_model(name, lm, {"format": fmt, "applicable": True, "series": series},
                     expected_items=sum(len(keys(d, counts[d.name])) for d in run.datasets))
    with run.bar(name, sum(not run.is_done(k) for d in todo for k in keys(d, counts[d.name]))) as bar:
        for d in todo:
            items_all, text = bases.pop(d.name)
            for start in range(0, len(items_all), block):
                items = [it for s in series for it in condition_items(items_all[start:start + block], s, opts.grid,
                                                                       text, extras, d)]
                for records in score_once(run, lm, items):
                    run.store_records(name, records)
                    bar.update(len(records))


def score_once(run: ProbeRun, lm: LoadedModel, items: list[ProbeItem]):
    """Score the pending `items`, each distinct prompt once; yields each batch's records of every pending
    item (with its kind, closure and `in_format`: the argmax is one of the option letters)."""
    copies: dict[tuple[int, ...], list[ProbeItem]] = {}
    for it in items:
        copies.setdefault(it.ids, []).append(it)
    unique = [same[0] for same in copies.values()]
    by_key = {it.key: it for it in unique}
    pending = lambda it: any(not run.is_done(c.key) for c in copies[it.ids])  # noqa: E731
    for records in run.scored(lm, unique, skip=lambda it: not pending(it)):
        out = []
        for r in records:
            rep = by_key[item_key(r)]
            for c in copies[rep.ids]:
                if not run.is_done(c.key):
                    kind, closure = c.series.split("/")
                    out.append({**r, "series": c.series, "x": c.x, "suffix": c.suffix, "kind": kind, "closure": closure,
                                "in_format": r["pred_id"] in c.letter_ids})
        yield out


# --- summary: the points of every condition (with the format / comprehension split) and the effects


def _terms_value(by_key: dict, terms: list[tuple[float, str, int]], metric: str) -> dict:
    """Mean and 95% CI over datasets of sum_t w_t * metric(series_t, x_t), per dataset (paired)."""
    dicts = []
    for _, s, x in terms:
        point = by_key.get((s, x))
        if point is None or not point.get(metric):
            return {"mean": None, "ci95": None}
        dicts.append(point[metric])
    names = [d for d in dicts[0] if all(d in dd for dd in dicts)]
    values = [sum(w * dd[d] for (w, _, _), dd in zip(terms, dicts, strict=True)) for d in names]
    m, ci = mean_ci95(values)
    return {"mean": m if values else None, "ci95": ci}


def _avg(terms_list: list[list[tuple[float, str, int]]]) -> list[tuple[float, str, int]]:
    """The average of several contrasts as one list of weighted terms."""
    k = len(terms_list)
    return [(w / k, s, x) for terms in terms_list for (w, s, x) in terms]


def effect_terms(kinds: list[str], closures: list[str], xs: list) -> list[tuple[str, str, list]]:
    """(effect name, "main" | "interaction", weighted terms) of the factorial table (see the module docstring)."""
    pos = [x for x in xs if x > 0]
    first, last = xs[0], xs[-1]

    def contrast(a: str, b: str, over_k, over_x) -> list:
        return _avg([[(1.0, f"{k}/{a}", x), (-1.0, f"{k}/{b}", x)] for k in over_k for x in over_x])

    out: list[tuple[str, str, list]] = []
    has = set(closures).__contains__
    if has("after-answer") and has("none"):
        out.append(("closure `].` right after the answer - none", "main", contrast("after-answer", "none", kinds, xs)))
    if has("after-extra") and has("none") and pos:
        out.append(("closure `].` after the extra tokens - none", "main", contrast("after-extra", "none", kinds, pos)))
    if has("after-answer") and has("after-extra") and pos:
        out.append(("closure right after the answer - after the extra tokens", "main",
                    contrast("after-answer", "after-extra", kinds, pos)))
    if len(xs) > 1:
        out.append((f"count: n = {first} - n = {last}", "main",
                    _avg([[(1.0, f"{k}/{c}", first), (-1.0, f"{k}/{c}", last)] for k in kinds for c in closures])))
    for other in kinds[1:] if pos else []:
        out.append((f"kind: {kinds[0]} - {other}", "main",
                    _avg([[(1.0, f"{kinds[0]}/{c}", x), (-1.0, f"{other}/{c}", x)] for c in closures for x in pos])))
    if has("after-answer") and has("none") and len(xs) > 1:
        out.append((f"closure (after answer - none) x count: at n = {last} - at n = {first}", "interaction",
                    contrast("after-answer", "none", kinds, [last]) + [(-w, s, x) for w, s, x in
                                                                        contrast("after-answer", "none", kinds, [first])]))
    for other in kinds[1:] if pos else []:
        if has("after-answer") and has("none"):
            out.append((f"closure (after answer - none) x kind: {kinds[0]} - {other}", "interaction",
                        contrast("after-answer", "none", [kinds[0]], pos)
                        + [(-w, s, x) for w, s, x in contrast("after-answer", "none", [other], pos)]))
        if len(xs) > 1:
            count = {k: _avg([[(1.0, f"{k}/{c}", first), (-1.0, f"{k}/{c}", last)] for c in closures]) for k in kinds}
            out.append((f"count (n = {first} - n = {last}) x kind: {kinds[0]} - {other}", "interaction",
                        count[kinds[0]] + [(-w, s, x) for w, s, x in count[other]]))
    return out


def effects(points: list[dict]) -> list[dict]:
    """The effects table of one model's points (empty without the factorial series)."""
    by_key = {(p["series"], p["x"]): p for p in points}
    split = [p["series"].split("/") for p in points if "/" in str(p["series"])]
    kinds = list(dict.fromkeys(k for k, _ in split))
    closures = list(dict.fromkeys(c for _, c in split))
    xs = sorted({p["x"] for p in points})
    if not kinds or not xs:
        return []
    return [{"effect": name, "type": typ, "terms": [[w, s, x] for w, s, x in terms],
             **{metric: _terms_value(by_key, terms, key) for metric, key in METRICS.items()}}
            for name, typ, terms in effect_terms(kinds, closures, xs)]


def summarize(config: dict, records: Iterable[dict], env: dict) -> dict:
    """summary.json: the points of every (series, x) as for every single-pass probe, plus `effects[model]`."""
    summary = summarize_run(config, records, env)
    summary["effects"] = {m: effects(pts) for m, pts in summary["models"].items() if pts}
    return summary


def to_csv(summary: dict) -> str:
    """summary.csv: one row per (model, series, x) as for every single-pass probe (the effects are in
    summary.json and the report)."""
    return summary_csv(summary)


# --- figure and report


def plot(summary: dict, plots_dir: Path) -> list[tuple[str, str]]:
    """One column per kind: accuracy (top) and format rate (bottom) vs n, a line per (model, closure)."""
    plt = figures.pyplot()
    models = [m for m, pts in summary["models"].items() if pts]
    kinds = list(dict.fromkeys(str(p["series"]).split("/")[0] for m in models for p in summary["models"][m]))
    fig, axes = plt.subplots(2, max(1, len(kinds)), figsize=(4.6 * max(1, len(kinds)), 7.4), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = {"none": ":", "after-answer": "-", "after-extra": "--"}
    for j, kind in enumerate(kinds):
        top, bottom = axes[0][j], axes[1][j]
        for i, model in enumerate(models):
            for s in dict.fromkeys(p["series"] for p in summary["models"][model]):
                if not s.startswith(f"{kind}/"):
                    continue
                pts = [p for p in summary["models"][model] if p["series"] == s]
                xs, closure = [p["x"] for p in pts], s.split("/")[1]
                style = dict(marker="o", color=colors[i % len(colors)], linestyle=styles.get(closure, "-"),
                             label=f"{label(model)}, `].` {closure}")
                top.plot(xs, [p["accuracy"] for p in pts], **style)
                figures.ci_band(top, xs, pts, colors[i % len(colors)])
                if all(p.get("format_rate") is not None for p in pts):
                    bottom.plot(xs, [p["format_rate"] for p in pts], **style)
        for ax, ylabel in ((top, "accuracy (95% CI)"), (bottom, "format rate: argmax is A/B/C")):
            for k, (model, ref) in enumerate(summary.get("references", {}).items()):
                value = ref["reference"]["accuracy" if ax is top else "format_rate"]
                if value is not None:
                    ax.axhline(value, color=colors[(len(models) + k) % len(colors)], linestyle="-.",
                               label=f"{label(model)} (AR reference)")
            figures.symlog_axis(ax, summary)
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel(X_LABEL)
            ax.set_ylabel(ylabel)
            ax.set_title(f"kind: {kind}")
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=6, loc="best")
        top.axhline(figures.CHANCE, color="grey", linestyle=":", linewidth=1)
    fig.suptitle(figures.titled(summary, NAME))
    figures.save(fig, Path(plots_dir) / "format.png")
    return [("format.png", "Top: accuracy vs extra tokens after the answer, one column per kind of extra token; "
             "line style = where the closing `].` is (solid right after the answer, dashed after the extra "
             "tokens, dotted none); 95% CI bands over datasets. Bottom: the format rate (argmax is A/B/C). "
             "Dash-dot: AR reference; dotted grey: chance.")]


def effects_lines(summary: dict) -> list[str]:
    lines = ["Contrasts of the same items in points, mean over datasets [95% CI over the per-dataset contrasts]; "
             "for the full accuracy, the format rate and the A/B/C-restricted accuracy. A main effect averages "
             "over the other factors; an interaction is a difference of two effects.", "",
             "| model | effect | type | full accuracy | format rate | A/B/C acc |", "|---|---|---|---|---|---|"]
    for model, rows in summary.get("effects", {}).items():
        for e in rows:
            cells = [markdown.signed(e[m]["mean"], e[m]["ci95"]) if e[m]["mean"] is not None else "n/a" for m in METRICS]
            lines.append(f"| {label(model)} | {e['effect']} | {e['type']} | " + " | ".join(cells) + " |")
    for model in summary.get("references", {}):
        lines.append(f"| {label(model)} | (AR: one reference point) | | not applicable | | |")
    return lines


def render(config: dict, env: dict, summary: dict, plots: list, *, level: int = 1, prefix: str = "",
           notice: str | None = None) -> str:
    h = "#" * level
    out = markdown.heading(summary, level, notice)
    out += [DESCRIPTION[:1].upper() + DESCRIPTION[1:] + ".", "", f"{h}# How to read this", "", f"{X_MEANING}.", "",
            "The closing tokens are those of the one-mask prompt `Answer:[<mask>].`; `text` is the tokens that follow "
            "a closed answer in the prompt's own format (the context's examples in order). Every condition is "
            "scored on the same items, so the contrasts below are paired.", "", markdown.HOW_TO_READ]
    out += [f"{h}# Effects", ""] + effects_lines(summary) + [""]
    out += [f"{h}# Results", ""] + markdown.results_table(summary) + [""]
    out += [f"{h}# Format and comprehension", ""] + markdown.decomposition_table(summary) + [""]
    out += [f"{h}# Plots", ""] + markdown.image_lines(plots, prefix)
    out += [f"{h}# Details", ""] + markdown.detail_table(summary) + [""]
    return "\n".join(out + markdown.what_was_run(config, env, h))


def glance(summary: dict, models: list[str]) -> list[tuple[str, list[str]]]:
    """At-a-glance rows: the closure's and the count's main effects on full accuracy, per model."""
    rows = []
    for prefix, title in (("closure `].` right after the answer - none", "format probe: closure `].` after the "
                           "answer - none (mean over kinds, n), points [95% CI]"),
                          ("count:", "format probe: fewest - most extra tokens (mean over kinds, closures), points "
                           "[95% CI]")):
        cells = []
        for m in models:
            e = next((e for e in summary.get("effects", {}).get(m, []) if e["effect"].startswith(prefix)), None)
            ok = e is not None and e["accuracy"]["mean"] is not None
            cells.append(markdown.signed(e["accuracy"]["mean"], e["accuracy"]["ci95"]) if ok else "n/a")
        rows.append((title, cells))
    return rows
