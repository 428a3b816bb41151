"""`masktax.tasks.export`: deterministic JSONL + manifest, byte-identical for a seed, verifiable."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from masktax import __version__
from masktax.errors import MasktaxError
from masktax.tasks.export import MANIFEST, export_suite, verify_export
from masktax.tasks.suite import DATASET_NAMES, N_DISTRACTOR_CONTEXT, N_RELEVANT_CONTEXT, build_suite

N_TEST = 30


def tree(root) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("suite")
    manifest = export_suite(root, seed=0, n_test=N_TEST)
    return root, manifest


def test_export_writes_one_test_and_one_context_file_per_dataset(exported):
    root, manifest = exported
    expected = {MANIFEST} | {f"{n}.jsonl" for n in DATASET_NAMES} | {f"{n}.context.jsonl" for n in DATASET_NAMES}
    assert set(tree(root)) == expected
    assert manifest == json.loads((root / MANIFEST).read_text())
    assert manifest["seed"] == 0 and manifest["n_test"] == N_TEST and manifest["masktax_version"] == __version__
    assert manifest["datasets"] == list(DATASET_NAMES)
    for name in DATASET_NAMES:
        assert manifest["files"][f"{name}.jsonl"]["count"] == N_TEST
        assert manifest["files"][f"{name}.context.jsonl"]["count"] == N_RELEVANT_CONTEXT + N_DISTRACTOR_CONTEXT


def test_records_match_the_suite(exported):
    root, _ = exported
    suite = {d.name: d for d in build_suite(seed=0, n_test=N_TEST)}
    for name, dataset in suite.items():
        tests = [json.loads(line) for line in (root / f"{name}.jsonl").read_text().splitlines()]
        assert [t["index"] for t in tests] == list(range(N_TEST))
        assert all(t["dataset"] == name and t["role"] == "test" for t in tests)
        assert [(tuple(t["options"]), t["answer"]) for t in tests] == [(e.options, e.answer) for e in dataset.tests]
        assert all(t["options"][ord(t["answer"]) - ord("A")] == t["answer_option"] for t in tests)
        context = [json.loads(line) for line in (root / f"{name}.context.jsonl").read_text().splitlines()]
        assert [(c["role"], tuple(c["options"]), c["answer"]) for c in context] == [
            (e.role, e.options, e.answer) for e in dataset.context
        ]


def test_lines_use_sorted_keys_fixed_separators_and_newlines(exported):
    root, _ = exported
    data = (root / "verb__largest.jsonl").read_bytes()
    assert b"\r" not in data and data.endswith(b"\n")
    first = data.split(b"\n")[0].decode()
    obj = json.loads(first)
    assert first == json.dumps(obj, sort_keys=True, separators=(",", ":"))
    assert list(obj) == sorted(obj) and {"dataset", "index", "options", "answer"} <= set(obj)


def test_same_seed_is_byte_identical_and_manifest_hashes_match(exported, tmp_path):
    root, manifest = exported
    again = export_suite(tmp_path / "again", seed=0, n_test=N_TEST)
    assert tree(tmp_path / "again") == tree(root)
    assert again == manifest
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == entry["sha256"]
    assert verify_export(root) == manifest


def test_other_seed_differs(exported, tmp_path):
    root, manifest = exported
    other = export_suite(tmp_path / "other", seed=1, n_test=N_TEST)
    assert other["seed"] == 1
    for name in manifest["files"]:
        assert other["files"][name]["sha256"] != manifest["files"][name]["sha256"], name


def test_verify_export_detects_changes(tmp_path):
    export_suite(tmp_path, seed=0, n_test=3)
    verify_export(tmp_path)
    path = tmp_path / "country__smallest.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"answer":"', b'"answer":"X', 1))
    with pytest.raises(MasktaxError, match="country__smallest.jsonl differs from the manifest"):
        verify_export(tmp_path)
    path.unlink()
    with pytest.raises(MasktaxError, match="listed in the manifest but missing"):
        verify_export(tmp_path)
    with pytest.raises(MasktaxError, match="no manifest.json"):
        verify_export(tmp_path / "nowhere")


def test_export_into_a_file_or_with_no_tests_fails(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(MasktaxError, match="exists and is not a directory"):
        export_suite(file)
    with pytest.raises(MasktaxError, match="n_test must be at least 1"):
        export_suite(tmp_path / "empty", n_test=0)


def test_seed0_suite_matches_the_golden_digests(tmp_path):
    """The paper-size suite (seed 0, 1000 tests) is pinned by sha256 in tests/golden/suite_seed0.json.

    A change of word lists or drawing rules fails here; if intended, rewrite and review with
    `MASKTAX_UPDATE_GOLDEN=1 python -m pytest tests/tasks/test_export.py`.
    """
    golden = Path(__file__).resolve().parents[1] / "golden" / "suite_seed0.json"
    files = export_suite(tmp_path, seed=0, n_test=1000)["files"]
    digests = {name: entry["sha256"] for name, entry in files.items()}
    if os.environ.get("MASKTAX_UPDATE_GOLDEN") == "1":
        golden.write_text(json.dumps(digests, sort_keys=True, indent=1) + "\n", encoding="utf-8", newline="\n")
    assert golden.is_file(), f"missing {golden}; run with MASKTAX_UPDATE_GOLDEN=1 to create it"
    assert digests == json.loads(golden.read_text(encoding="utf-8"))
