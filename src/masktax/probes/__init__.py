"""Probes: each measures one facet of the mask tax. A probe is ONE module; `PROBES` maps names to them.

A probe module holds, top to bottom in reading order:

    NAME, DESCRIPTION, X_LABEL, X_MEANING    what it is called and what its x means
    Options                                  its own flags: a frozen dataclass, one field per flag
                                             (`masktax probe NAME --help` lists them)
    cells(options, kind) -> [Cell]           single-pass probes: the prompt layouts it scores
    score(run, name, lm)                     scores one model's pending items into run.store
                                             (single pass: `score_cells(run, ...)`; or its own loop)
    summarize(config, records, env) -> dict  summary.json from the stored records
    to_csv(summary) -> str                   summary.csv
    plot(summary, plots_dir) -> [(file, caption)]
    render(config, env, summary, plots, *, level, prefix, notice) -> str   report.md
    glance(summary, models) -> [(row, cells)]  its rows of the demo's At-a-glance table ([] for none)
    refuses(options, kind) -> str | None     optional: why it cannot score a model of that kind
                                             ("mdlm", "ar", "uniform") with these options; run_probe
                                             asks for every model before any is scored

`run_probe(probe, cfg, options)` (masktax.probes.run) drives every probe the same way. Adding a
probe = one new module + one line in PROBES (docs/probes.md walks through an example).
"""

from __future__ import annotations

from types import ModuleType

from masktax.errors import MasktaxError
from masktax.probes import (
    accuracy,
    attribution,
    context_length,
    filler,
    format,
    locality,
    masks,
    query_position,
    uncertainty,
    unmask,
)
from masktax.probes.run import RunConfig, run_probe, write_outputs

PROBES: dict[str, ModuleType] = {
    accuracy.NAME: accuracy,
    masks.NAME: masks,
    filler.NAME: filler,
    format.NAME: format,
    locality.NAME: locality,
    query_position.NAME: query_position,
    context_length.NAME: context_length,
    unmask.NAME: unmask,
    attribution.NAME: attribution,
    uncertainty.NAME: uncertainty,
}


def probe_named(name: str) -> ModuleType:
    """The probe module called `name`; a clear error for an unknown name."""
    if name not in PROBES:
        raise MasktaxError(f"unknown probe '{name}'; choose one of {', '.join(PROBES)}")
    return PROBES[name]


__all__ = ["PROBES", "RunConfig", "probe_named", "run_probe", "write_outputs"]
