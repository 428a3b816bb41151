"""Rebuild a run dir's outputs, or a directory of runs with one combined report.

`masktax report DIR` calls `rebuild` for a probe run dir (summary.json, summary.csv, plots/*.png and
report.md from items.jsonl, through its probe module) and `rebuild_combined` for a directory of
runs (the demo: one sub-directory per probe run), which also writes a top-level report.md: the
At-a-glance table (each probe's `glance` rows) and each probe's report as a section.
"""

from __future__ import annotations

from pathlib import Path

from masktax.errors import MasktaxError
from masktax.probes import PROBES, write_outputs
from masktax.render.markdown import glance_table
from masktax.results.store import CONFIG, NOTICE, atomic_write_text, read_config


def is_run_dir(path: Path) -> bool:
    return (Path(path) / CONFIG).is_file()


def probe_of(run_dir: Path):
    """The probe module that wrote a run dir (from its config.json)."""
    config = read_config(run_dir)
    if config.get("probe") not in PROBES:
        raise MasktaxError(f"{Path(run_dir) / CONFIG} names no known probe ({config.get('probe')!r})")
    return PROBES[config["probe"]]


def rebuild(run_dir: str | Path) -> dict:
    """Recompute the outputs of one run dir; returns the summary."""
    return write_outputs(probe_of(Path(run_dir)), run_dir)[0]


def rebuild_combined(root: str | Path, *, title: str = "masktax demo") -> list[str]:
    """Rebuild every run sub-directory of `root` and write root/report.md; returns their names."""
    root = Path(root)
    order = {name: i for i, name in enumerate(PROBES)}
    runs = sorted(
        (p for p in root.iterdir() if p.is_dir() and is_run_dir(p)),
        key=lambda p: (order.get(read_config(p).get("probe"), 99), p.name),
    )
    if not runs:
        raise MasktaxError(f"{root} holds no masktax run (no config.json here or in a sub-directory)")
    sections, toc, summaries = [], [], {}
    for run in runs:
        summary, _, section = write_outputs(probe_of(run), run, level=2, prefix=f"{run.name}/")
        summaries.setdefault(summary["probe"], summary)
        sections.append(section)
        anchor = f"masktax-probe-{summary['probe']}".lower()
        toc.append(f"- [{summary['probe']}](#{anchor}) ([report]({run.name}/report.md), "
                   f"[summary]({run.name}/summary.json))")
    notice = (root / NOTICE).read_text(encoding="utf-8") if (root / NOTICE).is_file() else None
    head = [f"# {title}", ""]
    if notice:
        head += [f"> {line}" for line in notice.strip().splitlines()] + [""]
    head += glance_lines(summaries)
    head += ["Sections:", "", *toc, ""]
    atomic_write_text(root / "report.md", "\n".join(head + sections))
    return [r.name for r in runs]


def glance_lines(summaries: dict[str, dict]) -> list[str]:
    """The At-a-glance table over the runs' summaries (probe name -> summary.json object), rows in
    PROBES order from each probe's `glance`; a model a probe does not apply to gets "n/a"."""
    models = list(dict.fromkeys(m for s in summaries.values() for m in s.get("models", {})))
    rows = [row for name, probe in PROBES.items() if name in summaries
            for row in probe.glance(summaries[name], models)]
    return glance_table(rows, models)
