"""Bad input to `probe`, `report`, `compare` and `demo`: exit 2, one line, no traceback, nothing
half-written that looks complete. Each row: argv (with {M} a tiny MDLM checkpoint, {OUT} a fresh
run dir, {DIR} a prepared dir), an optional setup of {DIR}, and a piece of the expected line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from masktax.cli.main import main

P = ["probe", "masks", "--model", "{M}", "--out", "{OUT}", "--no-progress", "--n-items", "1",
     "--datasets", "country__smallest"]


def with_items(d: Path, model: str) -> None:
    """A finished run dir of another config (grid 0 only)."""
    assert main([*P[:3], model, P[4], str(d), *P[6:], "--grid", "0"]) == 0


def corrupt_items(d: Path, model: str) -> None:
    with_items(d, model)
    text = (d / "items.jsonl").read_text()
    (d / "items.jsonl").write_text("not json\n" + text)


def a_file(d: Path, model: str) -> None:
    d.write_text("mine")


# Directories given as {file name: content}
CONFIG_ONLY = {"config.json": json.dumps({"probe": "masks", "models": []})}
CONFIG_LIST = {"config.json": "[1, 2]"}
UNKNOWN_PROBE = {"config.json": json.dumps({"probe": "telepathy", "models": []}), "items.jsonl": '{"model": "m"}\n'}
FOREIGN_DIR = {"notes.txt": "mine"}
EMPTY_DIR: dict[str, str] = {}


CASES = [
    (["probe", "masks", "--bogus"], None, "No such option: --bogus"),
    (["probe", "masks", "--out", "{OUT}"], None, "Missing option '--model'"),
    (["probe", "masks", "--model", "{M}"], None, "Missing option '--out'"),
    ([*P, "--n-items", "two"], None, "Invalid value for '--n-items'"),
    ([*P[:8], "0", *P[9:]], None, "--n-items must be at least 1"),
    ([*P[:8], "100000000", *P[9:]], None, "--n-items must be at most 10000"),
    ([*P, "--grid", "0,,2"], None, "has an empty entry"),
    ([*P, "--grid", "a"], None, "--grid value 'a' is not an integer"),
    ([*P, "--grid", "0,0"], None, "--grid has repeated values"),
    ([*P, "--grid", "-1"], None, "out of range for masks"),
    (["probe", "locality", *P[2:], "--grid", "41"], None, "at most 40"),
    (["probe", "query-position", *P[2:], "--grid", "top"], None, "is not valid for query-position"),
    ([*P[:9], "--datasets", "nope"], None, "unknown dataset(s) nope"),
    ([*P[:9], "--datasets", "country__smallest,country__smallest"], None, "names a dataset twice"),
    ([*P, "--format", "xml"], None, "--format must be one of"),
    ([*P, "--dtype", "int8"], None, "--dtype must be one of"),
    ([*P, "--device", "tpu"], None, "--device must be one of"),
    ([*P, "--batch-size", "0"], None, "--batch-size must be 'auto' or a positive integer"),
    ([*P, "--batch-size", "many"], None, "--batch-size must be 'auto' or a positive integer"),
    ([*P, "--mask-token-id", "-1"], None, "--mask-token-id must be non-negative"),
    (["probe", "unmask", *P[2:], "--steps", "0"], None, "--steps values must be at least 1"),
    (["probe", "unmask", *P[2:], "--order", "sideways"], None, "--order 'sideways' is unknown"),
    (["probe", "attribution", *P[2:], "--orderings", "0"], None, "--orderings must be at least 1"),
    (["probe", "uncertainty", *P[2:], "--from", "/nonexistent/masktax"], None, "is not a directory"),
    (["probe", "masks", "--model", "no-such-model-xyz", *P[4:]], None, "no-such-model-xyz"),
    ([*P[:5], "{DIR}", *P[6:]], a_file, "is a file, not a directory"),
    ([*P[:5], "{DIR}", *P[6:]], FOREIGN_DIR, "is not empty and holds no masktax run"),
    ([*P[:5], "{DIR}", *P[6:], "--grid", "0,2"], with_items, "holds a run with another config"),
    ([*P[:5], "{DIR}", *P[6:], "--batch-size", "3", "--grid", "0"], with_items, "batch_size: 'auto' there vs 3 here"),
    ([*P, "--finetune", "/nonexistent/run"], None, "does not exist"),
    ([*P, "--finetune", "none", "--finetune", "none"], None, "2 --finetune values for 1 --model values"),
    ([*P, "--model", "{M}"], None, "the same --model is given twice"),
    ([*P[:5], "/dev/null/run", *P[6:]], None, "/dev/null/run"),
    ([*P, "--grid", "0,100000"], None, "exceeds the"),
    (["probe", "nope"], None, "No such command 'nope'"),
    (["report", "/nonexistent/masktax"], None, "is not a directory"),
    (["report", "{DIR}"], CONFIG_ONLY, "holds no scored items yet"),
    (["report", "{DIR}"], corrupt_items, "line 1 is corrupt"),
    (["report", "{DIR}"], CONFIG_LIST, "is not a masktax run config"),
    (["report", "{DIR}"], UNKNOWN_PROBE, "names no known probe ('telepathy')"),
    (["report", "{DIR}"], EMPTY_DIR, "holds no masktax run"),
    (["compare", "{DIR}", "--out", "{OUT}"], EMPTY_DIR, "has no summary.json"),
    (["compare", "{DIR}", "--out", "{DIR}/config.json"], with_items, "is a file, not a directory"),
    (["compare", "--paired", "a:b", "c:d:1"], None, "is not RUN_DIR:SERIES:X"),
    (["compare", "{DIR}", "--out", "{OUT}", "--label", "a", "--label", "b"], with_items, "--label given 2 times"),
    (["demo", "--n-items", "0", "--out", "{OUT}"], None, "--n-items must be at least 1"),
    (["demo", "--datasets", "nope", "--out", "{OUT}"], None, "unknown dataset(s) nope"),
    (["nosuch"], None, "No such command 'nosuch'"),
]


@pytest.mark.parametrize("args,setup,expected", CASES, ids=[f"{i:02d}-{c[0][0]}" for i, c in enumerate(CASES)])
def test_bad_input_is_one_line_and_exit_2(tiny_ckpts, tmp_path, capsys, args, setup, expected):
    d, out = tmp_path / "dir", tmp_path / "out"
    if isinstance(setup, dict):
        d.mkdir()
        for name, text in setup.items():
            (d / name).write_text(text)
    elif setup is not None:
        setup(d, tiny_ckpts["llada"])
        capsys.readouterr()
    argv = [a.format(M=tiny_ckpts["llada"], OUT=out, DIR=d) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("masktax: error: "), err
    assert expected in err, err
    assert not (out / "summary.json").exists() and not (out / "report.md").exists()


def test_a_failed_start_does_not_block_the_corrected_command(tiny_ckpts, tmp_path, capsys):
    out = tmp_path / "run"
    bad = [a.format(M=tiny_ckpts["llada"], OUT=out) for a in P] + ["--grid", "0,100000"]
    assert main(bad) == 2 and "exceeds the" in capsys.readouterr().err
    assert main(bad[:-1] + ["0,2"]) == 0
    assert json.loads((out / "summary.json").read_text())["run"]["state"] == "complete"
