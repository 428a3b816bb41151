"""Write the suite to disk as deterministic JSONL, with a manifest of counts and sha256 digests.

Layout of `out_dir`:
    <relevant>__<distractor>.jsonl          one test point per line
    <relevant>__<distractor>.context.jsonl  the fixed in-context examples, in stored order
    manifest.json                           seed, n_test, masktax version, dataset order,
                                            per-file line count and sha256

JSON is written with sorted keys, fixed separators and "\\n" line endings, so the same seed gives
byte-identical files on every platform. `verify_export` re-hashes a tree against its manifest.

    masktax suite export suite/ --seed 0 --n-test 1000
    masktax suite export mdc/ --suite mdc --seed 0       (the 20 multi-dimensional classification sets)

For `--suite mdc` each dataset's `<name>.jsonl` holds its tests and `<name>.context.jsonl` its 100
training points in pool order (role "train"; a prompt's context is the first `shots` of them), each
record with the point's coordinates, its label and the label's index; the manifest says `"suite": "mdc"`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from masktax.errors import MasktaxError
from masktax.results.store import atomic_write_bytes
from masktax.tasks import mdc
from masktax.tasks.appendix import Item, TaskSet
from masktax.tasks.suite import Dataset, Example, build_suite, dataset_names

MANIFEST = "manifest.json"
FORMAT = "masktax-suite/1"


def _line(obj: dict) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def _record(dataset: Dataset, index: int, example: Example) -> dict:
    return {
        "dataset": dataset.name,
        "index": index,
        "role": example.role,
        "options": list(example.options),
        "answer": example.answer,
        "answer_option": example.answer_option,
    }


def _write(path: Path, text: str) -> str:
    """Write atomically (temp file + rename); returns the sha256 of the bytes written."""
    data = text.encode("utf-8")
    if path.is_dir():
        raise MasktaxError(f"{path} is a directory; cannot write the export file there")
    atomic_write_bytes(path, data)  # no temporary file is left behind, whatever fails
    return hashlib.sha256(data).hexdigest()


def dataset_files(dataset: Dataset) -> dict[str, str]:
    """File name -> JSONL text for one dataset (tests, then its context file)."""
    tests = "".join(_line(_record(dataset, i, e)) for i, e in enumerate(dataset.tests))
    context = "".join(_line(_record(dataset, i, e)) for i, e in enumerate(dataset.context))
    return {f"{dataset.name}.jsonl": tests, f"{dataset.name}.context.jsonl": context}


def _task_record(task: TaskSet, index: int, item: Item, role: str) -> dict:
    return {"dataset": task.name, "index": index, "role": role, "point": list(item.point),
            "label": task.labels[item.answer], "answer": item.answer}


def task_files(task: TaskSet, n_test: int) -> dict[str, str]:
    """File name -> JSONL text for one mdc dataset (its first n_test tests, then its training points)."""
    tests = "".join(_line(_task_record(task, i, e, "test")) for i, e in enumerate(task.tests[:n_test]))
    context = "".join(_line(_task_record(task, i, e, "train")) for i, e in enumerate(task.pool))
    return {f"{task.name}.jsonl": tests, f"{task.name}.context.jsonl": context}


def export_suite(out_dir: str | os.PathLike, *, seed: int = 0, n_test: int = 1000, suite: str = "main") -> dict:
    """Write the 16 datasets (or, with suite="mdc", the 20 mdc sets) and `manifest.json` under
    `out_dir` (created if needed); returns the manifest."""
    from masktax import __version__

    if suite not in ("main", mdc.SUITE):
        raise MasktaxError(f"--suite for export must be main or mdc (hotpotqa and icl come from their own files), "
                           f"got '{suite}'")
    if suite == mdc.SUITE and not 1 <= n_test <= mdc.N_TEST:
        raise MasktaxError(f"the mdc sets have {mdc.N_TEST} test points; --n-test must be in 1..{mdc.N_TEST}, got {n_test}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise MasktaxError(f"{out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    if suite == mdc.SUITE:
        texts = [task_files(task, n_test) for task in mdc.build_suite(seed)]
    else:
        texts = [dataset_files(dataset) for dataset in build_suite(seed=seed, n_test=n_test)]
    for named in texts:
        for name, text in named.items():
            files[name] = {"count": text.count("\n"), "sha256": _write(out / name, text)}
    manifest = {
        "format": FORMAT,
        "seed": seed,
        "n_test": n_test,
        "datasets": list(mdc.DATASET_NAMES if suite == mdc.SUITE else dataset_names()),
        "masktax_version": __version__,
        "files": files,
        **({"suite": suite} if suite != "main" else {}),
    }
    _write(out / MANIFEST, json.dumps(manifest, sort_keys=True, indent=2, separators=(",", ": ")) + "\n")
    return manifest


def verify_export(out_dir: str | os.PathLike) -> dict:
    """The manifest of an exported suite after checking every listed file's line count and sha256.

    Raises MasktaxError naming the first missing or altered file.
    """
    root = Path(out_dir)
    try:
        manifest = json.loads((root / MANIFEST).read_text("utf-8"))
    except FileNotFoundError as err:
        raise MasktaxError(f"no {MANIFEST} in {root}; is it a `masktax suite export` directory?") from err
    except json.JSONDecodeError as err:
        raise MasktaxError(f"{root / MANIFEST} is not valid JSON ({err.msg} at line {err.lineno})") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise MasktaxError(f"{root / MANIFEST} is not a {FORMAT} manifest")
    for name, entry in sorted(manifest.get("files", {}).items()):
        path = root / name
        if not path.is_file():
            raise MasktaxError(f"{path} is listed in the manifest but missing")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry.get("sha256") or data.count(b"\n") != entry.get("count"):
            raise MasktaxError(f"{path} differs from the manifest (sha256 or line count)")
    return manifest
