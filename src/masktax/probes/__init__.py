"""Probes: each measures one facet of the mask tax with one greedy forward pass per item.

`PROBES` is the one registry (the CLI's choices are its keys). `run_probe(cfg)` runs one.
"""

from masktax.probes import accuracy, attribution, context_length, locality, masks, uncertainty, unmask
from masktax.probes.spec import ProbeSpec

PROBES: dict[str, ProbeSpec] = {
    "accuracy": accuracy.SPEC,
    "masks": masks.MASKS,
    "filler": masks.FILLER,
    "locality": locality.LOCALITY,
    "query-position": locality.QUERY_POSITION,
    "context-length": context_length.SPEC,
    "unmask": unmask.SPEC,
    "attribution": attribution.SPEC,
    "uncertainty": uncertainty.SPEC,
}


def run_probe(cfg, **kwargs):
    """Run a probe (see masktax.probes.run.run_probe)."""
    from masktax.probes.run import run_probe as _run

    return _run(cfg, **kwargs)


__all__ = ["PROBES", "ProbeSpec", "run_probe"]
