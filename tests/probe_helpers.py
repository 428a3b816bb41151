"""Helpers of the probe tests: a tiny in-memory lm, a probe's config from one set of flags, and the
one-line CLI error check."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import ModuleType

import torch
from tiny import tiny_llada, tiny_llama_ar, tiny_tokenizer

from masktax.cli.main import main
from masktax.models.loaded import LoadedModel
from masktax.probes import PROBES, RunConfig

DATASET = "country__smallest"


def tiny_adapter(kind: str = "mdlm", *, seed: int = 0, dtype: torch.dtype = torch.float32,
                 name: str | None = None) -> LoadedModel:
    """A tiny random native LLaDA ("mdlm", in place) or HF Llama ("ar", shifted) as a LoadedModel."""
    tok = tiny_tokenizer()
    if kind == "ar":
        model, shift, mask = tiny_llama_ar(seed), True, None
    else:
        model, shift, mask = tiny_llada(seed), False, tok.mask_token_id
    return LoadedModel(name=name or ("ar" if kind == "ar" else "llada"), model=model.to(dtype), tokenizer=tok,
                   kind="ar" if kind == "ar" else "mdlm", mask_id=mask, shift=shift, max_length=4096,
                   pad_id=tok.pad_token_id, eos_id=tok.eos_token_id, extra={"position_ids": kind == "ar"})


def probe_setup(probe: str, out: str | Path, models: tuple[str, ...], **flags) -> tuple[ModuleType, RunConfig, object]:
    """(probe module, RunConfig, its Options) from one set of flags, as `masktax probe PROBE` splits them:
    RunConfig's fields (progress off unless given) and the probe's Options fields; any other name is a TypeError."""
    module = PROBES[probe]
    common = {f.name for f in dataclasses.fields(RunConfig)}
    own = {f.name for f in dataclasses.fields(module.Options)}
    unknown = set(flags) - common - own
    if unknown:
        raise TypeError(f"neither RunConfig nor the {probe} Options has {sorted(unknown)}")
    cfg = RunConfig(models=tuple(models), out=str(out),
                    **{"progress": False, **{k: v for k, v in flags.items() if k in common}})
    return module, cfg, module.Options(**{k: v for k, v in flags.items() if k in own})


def assert_one_line_error(args: list[str], message: str, capsys) -> None:
    """`masktax ARGS` exits 2 with exactly `masktax: error: MESSAGE` on stderr."""
    assert main(args) == 2
    assert capsys.readouterr().err == f"masktax: error: {message}\n"


def assert_usage_error(args: list[str], flag: str, capsys) -> None:
    """`masktax ARGS` is a usage error (click's own, e.g. "No such option"): exit 2 and one line
    `masktax: error: ...` on stderr that names `flag`."""
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("masktax: error: ") and err.count("\n") == 1 and flag in err, err


def point(x, acc, series="masks") -> dict:
    """A summary.json point of accuracy `acc` at x (two datasets, both at acc; CI +- 0.05)."""
    return {"series": series, "x": x, "accuracy": acc, "ci95": [acc - 0.05, acc + 0.05],
            "per_dataset": {"d1": acc, "d2": acc}, "accuracy_abc": acc, "ci95_abc": None,
            "per_dataset_abc": {}, "n_datasets": 2, "n_items": 10, "p_answer": 0.4, "entropy": 1.2,
            "confidence": 0.5}


# A masks summary: an MDLM swept over x = 0, 10, 200 and an AR model with its one reference point.
SWEEP_SUMMARY = {
    "schema_version": 1, "probe": "masks", "grid": [0, 10, 200],
    "models": {"org/mdlm": [point(0, 0.8), point(10, 0.7), point(200, 0.55)], "org/ar": []},
    "references": {"org/ar": {"applicable": False, "reason": "causal", "reference": point(0, 0.75, "reference")}},
    "model_info": {},
}


def write_summary(path: Path, accs: dict[str, list[float]], probe: str = "masks", rd: dict | None = None) -> Path:
    """A run dir holding only summary.json: model embedded-mdlm, x = 0, 10, 100 per series."""
    path.mkdir(parents=True)
    points = [{"series": s, "x": x, "accuracy": a, "ci95": [a - 0.05, a + 0.05], "per_dataset": {}}
              for s, values in accs.items() for x, a in zip((0, 10, 100), values, strict=True)]
    summary = {"schema_version": 1, "probe": probe, "models": {"embedded-mdlm": points}}
    if rd is not None:
        summary["relative_degradation"] = rd
    (path / "summary.json").write_text(json.dumps(summary))
    return path
