"""The appendix suites through the probes on tiny models: `masks --suite mdc` (counts and shares),
`locality --suite mdc`, HotPotQA and an ICL set, the CLI end to end, the one-line errors, the
default runs' config.json untouched, and the A.3 analysis (`masktax a3`) on real runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from probe_helpers import assert_one_line_error, tiny_adapter

from masktax.cli.main import main
from masktax.probes import PROBES, RunConfig, run_probe
from masktax.probes.options import to_json
from masktax.report.a3 import A3Config, pearson, run_a3
from masktax.results.store import read_items
from masktax.tasks.mdc import DATASET_NAMES

FIXTURES = Path(__file__).resolve().parent / "fixtures"
masks, locality = PROBES["masks"], PROBES["locality"]


@pytest.fixture(scope="module")
def lm(one_thread):
    return tiny_adapter("mdlm")


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    """The `datasets` cache of local files in a temporary directory (nothing is written to ~/.cache)."""
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))


def run(lm, out: Path, probe, options, **flags) -> list[dict]:
    cfg = RunConfig(models=("llada",), out=str(out), progress=False, device="cpu", **flags)
    run_probe(probe, cfg, options, loaded={"llada": lm})
    return list(read_items(out))


def test_default_runs_store_no_new_option():
    assert to_json(masks.Options()) == {"grid": list(masks.GRID)}
    assert to_json(locality.Options()) == {"grid": list(locality.GRID)}


def test_masks_shares_on_mdc(lm, tmp_path):
    options = masks.Options(suite="mdc", labels="letters", shares="0,0.2")
    records = run(lm, tmp_path / "mdc", masks, options, n_items=3, datasets="moons_0,nonlinear_1")
    assert len(records) == 2 * 3 * 2 and {r["series"] for r in records} == {"share"}
    for r in records:
        n_masks = r["n_tokens"] - r["answer_pos"]
        assert n_masks == max(1, int(r["x"] * r["answer_pos"] + 0.5)) and r["answer"] in ("A", "B")
    config = json.loads((tmp_path / "mdc" / "config.json").read_text())
    assert config["options"] == {"shares": [0.0, 0.2], "suite": "mdc", "labels": "letters"}
    report = (tmp_path / "mdc" / "report.md").read_text()
    assert "share s of the input length" in report


def test_masks_counts_on_mdc_with_thirty_shots(lm, tmp_path):
    records = run(lm, tmp_path / "m", masks, masks.Options(grid="0,2", suite="mdc", labels="letters"), n_items=2,
                  datasets="circles_4")
    short, long = sorted({r["n_tokens"] for r in records})
    assert long - short == 2  # x = extra masks after the answer position, as for the main suite
    # 30 examples of `Input: a b c \n Answer : [ X ] .` plus separators before the question
    assert records[0]["answer_pos"] > 30 * 12


def test_locality_orders_on_mdc(lm, tmp_path):
    records = run(lm, tmp_path / "loc", locality, locality.Options(suite="mdc", labels="letters"), n_items=2,
                  datasets="swiss_roll_0")
    cells = {(r["series"], r["x"]) for r in records}
    assert cells == {(end, order) for end in ("right", "left") for order in ("mixed", "nearest-next", "nearest-far")}
    left = [r for r in records if r["series"] == "left"]
    assert all(r["n_tokens"] - r["answer_pos"] > 100 for r in left)  # the context follows the question
    assert (tmp_path / "loc" / "plots").is_dir()


def test_hotpotqa_and_icl_probes(lm, tmp_path):
    records = run(lm, tmp_path / "hp", masks, masks.Options(suite="hotpotqa", data=str(FIXTURES), shares="0,0.05"),
                  n_items=4)
    assert len(records) == 8 and {r["dataset"] for r in records} == {"hotpotqa"}
    first = sorted((r for r in records if r["x"] == 0), key=lambda r: r["index"])
    assert [r["answer"] for r in first] == ["B", "A", "B", "A"]  # the fixture's first usable tests
    records = run(lm, tmp_path / "icl", masks, masks.Options(grid="1", suite="icl", shots=4, labels="letters",
                                                             data=str(FIXTURES)), n_items=2, datasets="ag_news,qnli")
    assert {r["dataset"] for r in records} == {"ag_news", "qnli"} and len(records) == 4


def test_cli_end_to_end_and_one_line_errors(tiny_ckpts, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["probe", "masks", "--model", tiny_ckpts["llada"], "--out", str(out), "--n-items", "2", "--device", "cpu",
            "--no-progress", "--suite", "mdc", "--labels", "letters", "--datasets", DATASET_NAMES[0], "--grid", "0,1"]
    assert main(args) == 0
    assert "masks done" in capsys.readouterr().out
    assert len(list(read_items(out))) == 4
    base = ["probe", "masks", "--model", tiny_ckpts["llada"], "--n-items", "2", "--device", "cpu", "--no-progress",
            "--grid", "1", "--suite", "icl", "--datasets", "sst2"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*base, "--out", str(tmp_path / "x"), "--data", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the sst2 set needs sst2.jsonl" in err and "nyu-mll/glue" in err
    words = [*base, "--out", str(tmp_path / "w"), "--data", str(FIXTURES), "--shots", "2"]
    assert main(words) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot tell the labels negative, positive of sst2 apart" in err
    assert "--labels letters" in err
    assert_one_line_error([*base[:-4], "--suite", "icl", "--out", str(tmp_path / "y"), "--shots", "-1"],
                          "--shots must be at least 0, got -1", capsys)
    assert_one_line_error(["probe", "locality", "--model", "m", "--out", str(tmp_path / "z"), "--suite", "icl"],
                          "the locality probe applies to the main and mdc suites, not 'icl'", capsys)
    assert_one_line_error(["probe", "masks", "--model", "m", "--out", str(tmp_path / "z"), "--grid", "1",
                           "--shares", "0.1"], "give --grid (extra masks) or --shares (shares of the input length), "
                          "not both", capsys)
    assert_one_line_error(["probe", "masks", "--model", "m", "--out", str(tmp_path / "z"), "--shares", "0.1,2"],
                          "--shares values are shares of the input length in 0..1, got 2", capsys)


def test_a3_on_runs(lm, tmp_path):
    common = dict(suite="icl", labels="letters", data=str(FIXTURES))
    for shots, grid in ((2, "1"), (4, "1,6")):
        run(lm, tmp_path / f"s{shots}", masks, masks.Options(grid=grid, shots=shots, **common), n_items=3,
            datasets="sst2,mrpc,rte")
    lines = run_a3(A3Config(run_dirs=(tmp_path / "s2", tmp_path / "s4"), out=tmp_path / "a3", few=2, many=4, high_x=6))
    result = json.loads((tmp_path / "a3" / "a3.json").read_text())
    assert [p["dataset"] for p in result["points"]] == ["sst2", "mrpc", "rte"]
    for p in result["points"]:
        assert -1 <= p["gain"] <= 1 and -1 <= p["drop"] <= 1
    assert all((tmp_path / "a3" / f).is_file() for f in ("a3.md", "a3.csv", "a3.png"))
    assert lines[0].startswith("llada: R = ")
    assert pearson([0.0, 1.0, 2.0], [2.0, 1.0, 0.0]) == pytest.approx(-1.0)
    assert pearson([0.0, 1.0], [1.0, 0.0]) is None


def test_prompt_texts_base_and_chat_at_both_ends():
    from tiny import tiny_tokenizer

    from masktax.prompts.appendix import encode_suite_item, prompt_text
    from masktax.tasks.appendix import Item, TaskSet

    task = TaskSet("icl", "t", ("no", "yes"), (Item("Q: a", 0), Item("Q: b", 1)), (Item("Q: c", 1),), 2, system="Sys.")
    query = task.tests[0]
    text = prompt_text(task, task.pool, query)
    assert text.head + text.query + "|" + text.rest == "Sys.\n\nQ: a\nAnswer:[no].\n\nQ: b\nAnswer:[yes].\n\nQ: c\nAnswer:[|]."
    text = prompt_text(task, task.pool, query, query_position="left")
    assert text.head + text.query + "|" + text.rest == "Sys.\n\nQ: c\nAnswer:[|].\n\nQ: a\nAnswer:[no].\n\nQ: b\nAnswer:[yes]."
    tok = tiny_tokenizer()
    text = prompt_text(task, task.pool, query, fmt="chat", query_position="left", tokenizer=tok)
    assert text.head + text.query + "|" + text.rest == (
        "<|system|>\nSys.<|end|>\n<|user|>\nQ: c<|end|>\n<|assistant|>\nAnswer:[|].<|end|>\n<|user|>\nQ: a<|end|>\n"
        "<|assistant|>\nAnswer:[no].<|end|>\n<|user|>\nQ: b<|end|>\n<|assistant|>\nAnswer:[yes].<|end|>\n")
    letters = task.with_labels("letters")
    enc = encode_suite_item(tok, letters, letters.pool, query, suffix="masks", n_extra=3, mask_id=tok.mask_token_id)
    a, b = (tok.convert_tokens_to_ids(x) for x in ("A", "B"))
    assert enc.ids[enc.answer_pos:] == [tok.mask_token_id] * 4 and enc.letter_ids == (a, b, a) and enc.answer_id == b
