"""Rebuild summary.json, summary.csv, plots/*.png and report.md of a run dir from items.jsonl.

`masktax report DIR` calls `rebuild`; so does every probe run at its end. For a combined directory
(the demo: one sub-directory per probe run) `rebuild_combined` rebuilds each and writes one
top-level report.md linking each probe's section and plots.
"""

from __future__ import annotations

from pathlib import Path

from masktax.errors import MasktaxError
from masktax.report import markdown
from masktax.report.plots import make_plots
from masktax.results.store import CONFIG, atomic_write_json, atomic_write_text, read_items, read_json
from masktax.results.summary import summarize, summary_csv

NOTICE = "NOTICE.md"  # optional banner shown at the top of the report (the demo's stand-in warning)


def is_run_dir(path: Path) -> bool:
    return (Path(path) / CONFIG).is_file()


def rebuild(run_dir: str | Path) -> dict:
    """Recompute the outputs of one run dir; returns the summary."""
    return _rebuild(Path(run_dir))[0]


def _rebuild(run_dir: Path) -> tuple[dict, list[tuple[str, str]]]:
    from masktax.probes import PROBES

    config = read_json(run_dir / CONFIG)
    if config.get("probe") not in PROBES:
        raise MasktaxError(f"{run_dir / CONFIG} names no known probe ({config.get('probe')!r})")
    spec = PROBES[config["probe"]]
    if getattr(spec, "rebuild", None) is not None:  # an ExtendedProbeSpec writes its own outputs
        return spec.rebuild(run_dir), []
    env = read_json(run_dir / "env.json") if (run_dir / "env.json").is_file() else {}
    env_models = env.get("models", {})
    info = {
        m: {k: env_models[m].get(k) for k in ("kind", "format", "applicable", "dtype")}
        for m in config.get("models", []) if m in env_models
    }
    summary = summarize(
        config, read_items(run_dir), models=config.get("models"),
        series_order={m: env_models[m].get("series", []) for m in env_models}, model_info=info,
    )
    atomic_write_json(run_dir / "summary.json", summary)
    atomic_write_text(run_dir / "summary.csv", summary_csv(summary))
    plots = make_plots(summary, spec.plot, run_dir / "plots", xlabel=spec.x_label, name=spec.name)
    atomic_write_text(run_dir / "report.md", render_run(run_dir, summary=summary, plots=plots))
    return summary, plots


def render_run(run_dir: Path, *, summary: dict, plots: list, level: int = 1, prefix: str = "") -> str:
    from masktax.probes import PROBES

    config = read_json(run_dir / CONFIG)
    env = read_json(run_dir / "env.json") if (run_dir / "env.json").is_file() else {}
    spec = PROBES[config["probe"]]
    if getattr(spec, "render", None) is not None:
        return spec.render(run_dir, level=level, prefix=prefix)
    notice = (run_dir / NOTICE).read_text(encoding="utf-8") if (run_dir / NOTICE).is_file() else None
    return markdown.render(
        config=config, env=env, summary=summary, plots=plots, level=level, prefix=prefix, notice=notice,
        spec_text={"description": spec.description, "x_meaning": spec.x_meaning},
    )


def rebuild_combined(root: str | Path, *, title: str = "masktax demo") -> list[str]:
    """Rebuild every run sub-directory of `root` and write root/report.md; returns their names."""
    from masktax.probes import PROBES

    root = Path(root)
    order = {name: i for i, name in enumerate(PROBES)}
    runs = sorted(
        (p for p in root.iterdir() if p.is_dir() and is_run_dir(p)),
        key=lambda p: (order.get(read_json(p / CONFIG).get("probe"), 99), p.name),
    )
    if not runs:
        raise MasktaxError(f"{root} holds no masktax run (no config.json here or in a sub-directory)")
    sections, toc, summaries = [], [], {}
    for run in runs:
        summary, plots = _rebuild(run)
        summaries.setdefault(summary["probe"], summary)
        sections.append(render_run(run, summary=summary, plots=plots, level=2, prefix=f"{run.name}/"))
        anchor = f"masktax-probe-{summary['probe']}".lower()
        toc.append(f"- [{summary['probe']}](#{anchor}) ([report]({run.name}/report.md), "
                   f"[summary]({run.name}/summary.json))")
    notice = (root / NOTICE).read_text(encoding="utf-8") if (root / NOTICE).is_file() else None
    head = [f"# {title}", ""]
    if notice:
        head += [f"> {line}" for line in notice.strip().splitlines()] + [""]
    head += markdown.glance_lines(summaries)
    head += ["Sections:", "", *toc, ""]
    atomic_write_text(root / "report.md", "\n".join(head + sections))
    return [r.name for r in runs]
