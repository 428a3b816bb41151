"""The mask-sensitivity card's numbers, page and figure, as pure functions of the probes' summaries.

Every number is read from a probe run's summary.json (masktax.report.card runs them); a change is
paired (the same items at both ends: the t-interval over the per-dataset differences):

    one_mask_accuracy      accuracy probe: `Answer:[<mask>].` (AR: next token), with its format rate
    mask_tax               masks probe: acc(x = 2) - acc(x last), split into format + comprehension parts
    filler_tax             filler probe: the same with " ." instead of masks
    format_closure         format probe: closure `].` right after the answer - none (main effect)
    format_count           format probe: fewest - most extra tokens (main effect)
    locality_gap           locality probe: acc(block next to the mask) - acc(block farthest)
    context_length_drop    context-length probe, per series: acc(fewest distractors) - acc(most)
    unmask_recovery        unmask probe, per S: acc(random-S) - acc(single step), at the largest x
    relative_degradation   unmask probe: RD of random-S over the sweep, per S and its mean over S
    attribution_masks      attribution probe: mean normalised attribution on the appended masks

A number that does not apply (a causal model under appended tokens) is null with `"applicable": false`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from masktax.render import figures, markdown
from masktax.render.names import label
from masktax.results.stats import paired_difference_ci, tax_split

CARD_SCHEMA_VERSION = 1
NOT_APPLICABLE = {"applicable": False, "reason": "a causal model never sees tokens after the position it predicts"}
MAX_HASHED_BYTES = 2**30  # weights files up to 1 GiB get a sha256 as their revision


def _value(mean: float | None, ci: list[float] | None) -> dict:
    return {"value": mean, "ci95": ci}


def _change(first: dict, last: dict) -> dict:
    """first - last, paired, with its format / comprehension split."""
    split = tax_split(first, last)
    m, ci = paired_difference_ci(first, last)
    return {"from_x": first["x"], "to_x": last["x"], **_value(m, ci),
            "format_part": _value(*split["format"]), "comprehension_part": _value(*split["comprehension"])}


def _sweep_change(summary: dict | None, model: str, baseline_x: int | None, sign: int = 1) -> dict | None:
    if summary is None:
        return None
    if model in summary.get("references", {}):
        return dict(NOT_APPLICABLE)
    points = summary["models"].get(model) or []
    series = points[0]["series"] if points else None
    sp = [p for p in points if p["series"] == series]
    if len(sp) < 2:
        return None
    first, last = markdown.sweep_ends(sp, baseline_x)
    return {"series": series, **(_change(first, last) if sign > 0 else _change(last, first))}


def _per_series_change(summary: dict | None, model: str) -> dict | None:
    if summary is None:
        return None
    points = summary["models"].get(model) or []
    out = {}
    for s in dict.fromkeys(p["series"] for p in points):
        sp = [p for p in points if p["series"] == s]
        if len(sp) >= 2:
            out[s] = _change(sp[0], sp[-1])
    return out or None


def _effect(summary: dict | None, model: str, prefix: str) -> dict | None:
    if summary is None:
        return None
    if model in summary.get("references", {}):
        return dict(NOT_APPLICABLE)
    e = next((e for e in summary.get("effects", {}).get(model, []) if e["effect"].startswith(prefix)), None)
    if e is None:
        return None
    return {"effect": e["effect"], **_value(e["accuracy"]["mean"], e["accuracy"]["ci95"]),
            "format_rate": _value(e["format_rate"]["mean"], e["format_rate"]["ci95"]),
            "accuracy_abc": _value(e["accuracy_abc"]["mean"], e["accuracy_abc"]["ci95"])}


def _unmask(summary: dict | None, model: str) -> tuple[dict | None, dict | None]:
    if summary is None:
        return None, None
    if model in summary.get("references", {}):
        return dict(NOT_APPLICABLE), dict(NOT_APPLICABLE)
    points = summary["models"].get(model) or []
    if not points:
        return None, None
    last_x = max(p["x"] for p in points)
    at = {p["series"]: p for p in points if p["x"] == last_x}
    single = at.get("single-step")
    recovery = {}
    for s, p in at.items():
        if s != "single-step" and single is not None:
            m, ci = paired_difference_ci(p, single)
            recovery[str(p.get("steps") or s)] = {"series": s, "x": last_x, **_value(m, ci)}
    rd = summary.get("relative_degradation", {}).get(model, {})
    return recovery, {"per_series": rd.get("per_series"), "mean_over_steps": rd.get("mean_over_steps"),
                      "steps": rd.get("steps")}


def weights_revision(source: str | None) -> str | None:
    """sha256 (first 16 hex digits) of a local checkpoint's model.safetensors when it is at most 1 GiB."""
    path = Path(source) / "model.safetensors" if source else None
    if path is None or not path.is_file() or path.stat().st_size > MAX_HASHED_BYTES:
        return None
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def model_numbers(summaries: dict[str, dict], model: str, env_model: dict) -> dict:
    """One model's card entry (see the module docstring)."""
    acc = (summaries.get("accuracy") or {}).get("models", {}).get(model) or []
    one = acc[0] if acc else None
    recovery, rd = _unmask(summaries.get("unmask"), model)
    att = (summaries.get("attribution") or {}).get("models", {}).get(model) or []
    groups = att[0]["groups"] if att else {}
    return {
        "kind": env_model.get("kind"), "source": env_model.get("source"),
        "revision": env_model.get("revision") or weights_revision(env_model.get("source")),
        "n_parameters": env_model.get("n_parameters"), "dtype": env_model.get("dtype"),
        "one_mask_accuracy": None if one is None else {
            **_value(one["accuracy"], one["ci95"]), "format_rate": _value(one.get("format_rate"), one.get("ci95_format")),
            "accuracy_abc": _value(one["accuracy_abc"], one.get("ci95_abc"))},
        "mask_tax": _sweep_change(summaries.get("masks"), model, 2),
        "filler_tax": _sweep_change(summaries.get("filler"), model, 2),
        "format_closure": _effect(summaries.get("format"), model, "closure `].` right after the answer - none"),
        "format_count": _effect(summaries.get("format"), model, "count:"),
        "locality_gap": _sweep_change(summaries.get("locality"), model, None, sign=-1),
        "context_length_drop": _per_series_change(summaries.get("context-length"), model),
        "unmask_recovery": recovery,
        "relative_degradation": rd,
        "attribution_masks": None if not groups else {
            g: {"mean": groups[g]["mean"], "ci95": groups[g]["ci95"]} for g in ("masks", "last50", "nonmask")},
    }


def card_object(summaries: dict[str, dict], env: dict, *, models: list[str], budget: str, protocol_version: int,
                protocol: list[dict]) -> dict:
    """card.json: versions, hardware, the protocol and every model's numbers."""
    env_models = env.get("models", {})
    devices = sorted({str(env_models[m].get("device")) for m in models if m in env_models})
    return {
        "schema_version": CARD_SCHEMA_VERSION,
        "protocol_version": protocol_version,
        "budget": budget,
        "masktax_version": env.get("masktax"),
        "git_commit": env.get("git_commit"),
        "software": {k: env.get(k) for k in ("python", "torch", "transformers")},
        "hardware": {"platform": env.get("platform"), "cpu_count": os.cpu_count(), "torch_threads": env.get("threads"),
                     "cuda": env.get("cuda"), "devices": devices},
        "protocol": protocol,
        "models": {m: model_numbers(summaries, m, env_models.get(m, {})) for m in models},
    }


# --- card.md


def _pts(entry: dict | None, key: str | None = None) -> str:
    """A change in points with its CI; 'n/a' (not applicable / not measured)."""
    if entry is None or entry.get("applicable") is False:
        return "n/a"
    e = entry if key is None else entry.get(key)
    if e is None or e.get("value") is None:
        return "n/a"
    return markdown.signed(e["value"], e["ci95"])


def _pct(entry: dict | None) -> str:
    if entry is None or entry.get("value") is None:
        return "n/a"
    ci = entry.get("ci95")
    return markdown.pct(entry["value"]) + (f" [{markdown.pct(ci[0])}, {markdown.pct(ci[1])}]" if ci else "")


def card_rows(card: dict) -> list[tuple[str, list[str]]]:
    """(row title, one cell per model) of the card's table."""
    ms = list(card["models"].values())
    first = next((m["mask_tax"] for m in ms if m.get("mask_tax") and "to_x" in m["mask_tax"]), None)
    to_x = first["to_x"] if first else "last"
    rows = [
        ("kind / revision", [f"{m['kind']} / {m['revision'] or 'n/a'}" for m in ms]),
        ("one-mask accuracy, %", [_pct(m["one_mask_accuracy"]) for m in ms]),
        ("one-mask format rate (argmax is A/B/C), %", [_pct((m["one_mask_accuracy"] or {}).get("format_rate")) for m in ms]),
        (f"mask tax: acc(x = 2) - acc(x = {to_x}), points", [_pts(m["mask_tax"]) for m in ms]),
        ("... of which format (argmax left A/B/C)", [_pts(m["mask_tax"], "format_part") for m in ms]),
        ("... of which comprehension (A/B/C choice)", [_pts(m["mask_tax"], "comprehension_part") for m in ms]),
        ("filler tax (' .' instead of masks), points", [_pts(m["filler_tax"]) for m in ms]),
        ("format probe: closure `].` after the answer - none, points", [_pts(m["format_closure"]) for m in ms]),
        ("format probe: fewest - most extra tokens, points", [_pts(m["format_count"]) for m in ms]),
        ("locality gap: block next to the mask - farthest, points", [_pts(m["locality_gap"]) for m in ms]),
    ]
    series = list(dict.fromkeys(s for m in ms for s in (m["context_length_drop"] or {})))
    for s in series:
        rows.append((f"context-length drop ({s}): fewest - most distractors, points",
                     [_pts((m["context_length_drop"] or {}).get(s)) for m in ms]))
    steps = list(dict.fromkeys(k for m in ms for k in (m["unmask_recovery"] or {}) if k != "applicable" and k != "reason"))
    for k in steps:
        rows.append((f"unmasking recovery, {k} steps (random): acc(decoded) - acc(1 step) at the largest x, points",
                     [_pts((m["unmask_recovery"] or {}).get(k)) if (m["unmask_recovery"] or {}).get("applicable") is not False
                      else "n/a" for m in ms]))
    rows.append(("relative degradation, random order, mean over steps, %",
                 [markdown.pct(((m["relative_degradation"] or {}).get("mean_over_steps") or {}).get("random"))
                  for m in ms]))
    rows.append(("attribution on masks / last 50 / all non-mask tokens (normalised mean)",
                 [" / ".join(markdown.prob(m["attribution_masks"][g]["mean"]) for g in ("masks", "last50", "nonmask"))
                  if m["attribution_masks"] else "n/a" for m in ms]))
    return rows


def render_card(card: dict, figure: str | None) -> str:
    """card.md: the table (models side by side), the figure, the protocol and what it ran on."""
    models = list(card["models"])
    out = [f"# Mask-sensitivity card (masktax protocol v{card['protocol_version']}, budget {card['budget']})", "",
           "Points of accuracy unless marked; [95% CI over the datasets]. Every change is paired (the same items at "
           "both ends, t-interval over per-dataset differences), so an interval that excludes 0 is a real change on "
           "these items. A tax splits exactly into a format part (the right letter still wins among A/B/C but the "
           "full argmax is not a letter) and a comprehension part (the A/B/C choice got worse). n/a: does not apply "
           "(a causal model never sees tokens after its answer) or not measured.", "",
           "| | " + " | ".join(label(m) for m in models) + " |", "|---|" + "---|" * len(models)]
    out += [f"| {title} | " + " | ".join(cells) + " |" for title, cells in card_rows(card)]
    out += [""]
    if figure:
        out += [f"![card]({figure})", "", "*Headline changes per model with paired 95% CIs; the mask tax is also "
                "shown as its format and comprehension parts.*", ""]
    out += ["## Protocol", "", "| probe | test points per dataset | options |", "|---|---|---|"]
    out += [f"| {s['probe']} | {s['n_items']} | `{_options_text(s['options'])}` |" for s in card["protocol"]]
    hw = card["hardware"]
    out += ["", "## Versions and hardware", "",
            f"masktax {card['masktax_version']} (git {card['git_commit']}), card schema {card['schema_version']}, "
            f"python {card['software']['python']}, torch {card['software']['torch']}, transformers "
            f"{card['software']['transformers']}; {hw['platform']}, {hw['cpu_count']} CPUs, {hw['torch_threads']} torch "
            f"threads, device(s) {', '.join(hw['devices']) or 'n/a'}{', ' + hw['cuda'] if hw['cuda'] else ''}.", "",
            "Models: " + "; ".join(f"{m} ({v['source']}, {v['n_parameters']} parameters, {v['dtype']})"
                                   for m, v in card["models"].items()) + ".", ""]
    return "\n".join(out)


def _options_text(options: dict) -> str:
    return ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in options.items()) or "-"


# --- card.png


FIGURE_ROWS = (("mask tax", "mask_tax", None), ("  format part", "mask_tax", "format_part"),
               ("  comprehension part", "mask_tax", "comprehension_part"), ("filler tax", "filler_tax", None),
               ("closure `].` effect", "format_closure", None), ("count effect (format probe)", "format_count", None),
               ("locality gap", "locality_gap", None))


def write_card_figure(card: dict, path: Path) -> str | None:
    """Horizontal bars of the headline changes (points, paired 95% CI), one colour per model; returns its
    file name (None when no model has any change to show)."""
    models = list(card["models"])
    rows = []
    for title, key, part in FIGURE_ROWS:
        entries = [card["models"][m].get(key) for m in models]
        values = [(e if part is None else e.get(part)) if e and e.get("applicable") is not False else None
                  for e in entries]
        if any(v and v.get("value") is not None for v in values):
            rows.append((title, values))
    if not rows:
        return None
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(rows) * max(1, len(models)) + 1.5))
    height = 0.8 / max(1, len(models))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, m in enumerate(models):
        ys, xs, err = [], [], [[], []]
        for r, (_, values) in enumerate(rows):
            v = values[i]
            if v and v.get("value") is not None:
                ys.append(r + (i - (len(models) - 1) / 2) * height)
                xs.append(100 * v["value"])
                ci = v.get("ci95") or [v["value"], v["value"]]
                err[0].append(100 * (v["value"] - ci[0]))
                err[1].append(100 * (ci[1] - v["value"]))
        ax.barh(ys, xs, height=height, xerr=err, capsize=3, color=colors[i % len(colors)], label=label(m))
    ax.set_yticks(range(len(rows)), [t for t, _ in rows])
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("points of accuracy (paired 95% CI)")
    ax.set_title(f"mask-sensitivity card (protocol v{card['protocol_version']}, {card['budget']})")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    figures.save(fig, path)
    return path.name
