"""Golden probe runs: a small run of every probe on the three shipped models, through the CLI.

The fixture (tests/golden/probe_runs.json) holds every file those runs write, normalised (machine
facts removed from env.json and report.md, PNGs as SHA-256). `tests/probes/test_golden_runs.py`
reruns them and compares: discrete fields exactly, floats to 1e-5 (another CPU may round the last
bits differently), report text exactly. With MASKTAX_GOLDEN_EXACT=1 it also compares the raw bytes
of every file and the PNG hashes (use it on the machine that wrote the fixture, e.g. while
refactoring). Regenerate (only when a change of numbers is intended, and say so in the commit):

    .venv/bin/python tests/golden_runs.py tests/golden/probe_runs.json
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

MODELS = ("embedded-mdlm", "embedded-ar", "embedded-mdlm-dream")
DATASETS = "country__smallest,verb__largest,colour__smallest"
COMMON = ("--n-items", "2", "--datasets", DATASETS, "--no-progress", "--batch-size", "auto")
# probe -> extra flags; run in this order (uncertainty reuses the masks and filler runs beside it)
RUNS = {
    "accuracy": (),
    "masks": ("--grid", "0,2,20"),
    "filler": ("--grid", "0,2,20"),
    "locality": ("--grid", "0,20,40"),
    "query-position": (),
    "context-length": ("--grid", "0,15"),
    "unmask": ("--grid", "0,2,10", "--steps", "2,4"),
    "attribution": ("--n-masks", "9", "--orderings", "2", "--questions", "1"),
    "uncertainty": ("--grid", "0,2,20"),
}
VOLATILE_ENV = ("python", "platform", "torch", "transformers", "masktax", "git_commit", "threads", "cuda")


def probe_argv(probe: str) -> list[str]:
    models = [a for m in MODELS for a in ("--model", m)]
    return ["probe", probe, *models, "--out", probe, *COMMON, *RUNS[probe]]


def run_all(root: Path) -> None:
    """Run every probe into root/<probe>, then rebuild the combined report of root."""
    from masktax.cli.main import main

    cwd = os.getcwd()
    os.chdir(root)
    try:
        for probe in RUNS:
            assert main(probe_argv(probe)) == 0, probe
        assert main(["report", "."]) == 0
    finally:
        os.chdir(cwd)


def _env(text: str) -> str:
    env = json.loads(text)
    for k in VOLATILE_ENV:
        env.pop(k, None)
    return json.dumps(env, indent=2, sort_keys=True)


ENV_BLOCK = re.compile(r"Environment:\n\n```json\n.*?```", re.S)


def normalise(path: Path, root: Path) -> str:
    """A file's comparable text: env facts, the run's absolute root, the installed package's directory
    (where the shipped weights are read from) and PNG bytes replaced by stand-ins."""
    import masktax

    if path.suffix == ".png":
        return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    package = str(Path(masktax.__file__).resolve().parent)
    text = path.read_text(encoding="utf-8").replace(str(root.resolve()), "<root>").replace(package, "<masktax>")
    if path.name == "env.json":
        return _env(text)
    if path.suffix == ".md":
        return ENV_BLOCK.sub("Environment: (machine facts)", text)
    return text


def collect(root: Path) -> dict[str, str]:
    """relative path -> normalised content of every file under root (hidden temporaries excluded)."""
    return {
        str(p.relative_to(root)): normalise(p, root)
        for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith(".")
    }


def close(a: object, b: object, tol: float = 1e-5) -> bool:
    """Structural equality with floats compared to an absolute tolerance."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and abs(a - b) <= tol
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b, strict=True))
    return a == b


def _cells(text: str) -> list[object]:
    out: list[object] = []
    for line in text.splitlines():
        for cell in line.split(","):
            try:
                out.append(float(cell) if "." in cell else cell)
            except ValueError:
                out.append(cell)
    return out


def same_file(name: str, got: str, want: str) -> bool:
    """Whether one normalised file matches its golden content (floats within tolerance)."""
    if name.endswith(".png"):
        return True  # compared only in exact mode: PNG bytes depend on matplotlib's version
    if name.endswith(".jsonl"):
        rows_got, rows_want = got.splitlines(), want.splitlines()
        return len(rows_got) == len(rows_want) and all(
            close(json.loads(a), json.loads(b)) for a, b in zip(rows_got, rows_want, strict=True)
        )
    if name.endswith(".json"):
        return close(json.loads(got), json.loads(want))
    if name.endswith(".csv"):
        return close(_cells(got), _cells(want))
    return got == want


if __name__ == "__main__":
    import tempfile

    out_file = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        run_all(Path(tmp))
        files = collect(Path(tmp))
    out_file.write_text(json.dumps(files, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {out_file}: {len(files)} files")
