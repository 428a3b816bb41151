"""`masktax probe PROBE ... --finetune RUN_DIR`: a LoRA fine-tuning run applied to the paired --model, for the
single-pass probes and the multi-pass ones; its scores equal the merged checkpoint's and differ from the base.
`--adapter`, the flag's old name, still works for one release with a notice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from probe_helpers import DATASET, assert_one_line_error, probe_setup, tiny_adapter

from masktax.cli.main import main
from masktax.errors import MasktaxError
from masktax.probes import run_probe
from masktax.results.store import read_items

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def merged(lora_run: Path, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("merged") / "ckpt"
    assert main(["finetune", "merge", str(lora_run), str(out)]) == 0
    return str(out)


def by_item(records: list[dict], model: str) -> dict[tuple, dict]:
    return {(r["series"], r["x"], r["dataset"], r["index"]): r for r in records if r["model"] == model}


def args(probe: str, out: Path, models: list[str], finetunes: list[str], *extra: str,
         flag: str = "--finetune") -> list[str]:
    a = ["probe", probe, "--out", str(out), "--n-items", "2", "--datasets", DATASET, "--no-progress", *extra]
    for m in models:
        a += ["--model", m]
    for d in finetunes:
        a += [flag, d]
    return a


@pytest.mark.parametrize(("probe", "extra", "fields"), [
    ("masks", ("--grid", "0,2"), ("p_answer", "entropy", "confidence")),
    ("uncertainty", ("--grid", "0,2"), ("entropy", "confidence")),
])
def test_finetuned_scores_equal_the_merged_checkpoint_and_differ_from_the_base(
    tmp_path, tiny_ckpts, lora_run, merged, probe, extra, fields
):
    base = tiny_ckpts["llada"]
    out = tmp_path / probe
    assert main(args(probe, out, [base, base, merged], ["none", str(lora_run)], *extra)) == 0
    tuned_name = f"{base}+{lora_run.name}"
    config = json.loads((out / "config.json").read_text())
    assert config["adapters"] == [None, str(lora_run)]
    assert config["models"] == [base, tuned_name, merged]
    env = json.loads((out / "env.json").read_text())["models"]
    assert env[tuned_name]["adapter_dir"] == str(lora_run / "final") and env[tuned_name]["base_name"] == base
    records = list(read_items(out))
    plain, tuned, ref = by_item(records, base), by_item(records, tuned_name), by_item(records, merged)
    assert plain.keys() == tuned.keys() == ref.keys() and len(tuned) == (4 if probe == "masks" else 8)
    for key, r in tuned.items():
        for f in fields:
            assert r[f] == pytest.approx(ref[key][f], rel=1e-4, abs=1e-6), (key, f)
    assert any(abs(r["entropy"] - plain[k]["entropy"]) > 1e-6 for k, r in tuned.items())
    assert set(json.loads((out / "summary.json").read_text())["models"]) == {base, tuned_name, merged}
    assert main(args(probe, out, [base, base, merged], ["none", str(lora_run)], *extra)) == 0  # resumes


@pytest.mark.parametrize(("probe", "extra"), [
    ("unmask", ("--grid", "0,2", "--steps", "2", "--order", "random")),
    ("attribution", ("--n-masks", "2", "--orderings", "1")),
])
def test_multi_pass_probes_take_a_finetune(tmp_path, tiny_ckpts, lora_run, probe, extra):
    base = tiny_ckpts["llada"]
    out = tmp_path / probe
    assert main(args(probe, out, [base], [str(lora_run)], *extra)) == 0
    tuned_name = f"{base}+{lora_run.name}"
    assert {r["model"] for r in read_items(out)} == {tuned_name}
    assert list(json.loads((out / "summary.json").read_text())["models"]) == [tuned_name]


def test_library_use_leaves_a_given_base_model_untouched(tmp_path, lora_run):
    base = tiny_adapter("mdlm")
    before = {k: v.clone() for k, v in base.model.state_dict().items()}
    run_probe(*probe_setup("masks", tmp_path / "r", ("llada", "llada"), finetunes=(None, str(lora_run)), n_items=1,
                           datasets=(DATASET,), grid=(0,)), loaded={"llada": base})
    after = base.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert {r["model"] for r in read_items(tmp_path / "r")} == {"llada", f"llada+{lora_run.name}"}


def test_bad_finetunes_are_one_line_errors(tmp_path, tiny_ckpts, lora_run, capsys):
    base = tiny_ckpts["llada"]
    missing = tmp_path / "nope"
    assert_one_line_error(args("masks", tmp_path / "a", [base], [str(missing)]),
                          f"fine-tuning run dir '{missing}' does not exist", capsys)
    assert_one_line_error(args("masks", tmp_path / "b", [base], [str(tmp_path)]),
                          f"'{tmp_path}' is not a fine-tuning run (no final/ with an adapter or model)", capsys)
    assert_one_line_error(args("masks", tmp_path / "c", [base], ["none", str(lora_run)]),
                          "2 --finetune values for 1 --model values; give at most one per model", capsys)
    assert_one_line_error(args("masks", tmp_path / "d", [base, base], [str(lora_run), str(lora_run)]),
                          "the same --model is given twice (with the same --finetune)", capsys)
    with pytest.raises(MasktaxError, match="stored as"):  # two run dirs with the same name
        other = tmp_path / "x" / lora_run.name
        other.parent.mkdir()
        other.symlink_to(lora_run, target_is_directory=True)
        run_probe(*probe_setup("masks", tmp_path / "e", ("llada", "llada"), finetunes=(str(lora_run), str(other)),
                               n_items=1, datasets=(DATASET,), grid=(0,)), loaded={"llada": tiny_adapter("mdlm")})


def test_the_old_adapter_flag_still_works_with_a_notice(tmp_path, tiny_ckpts, lora_run, capsys):
    base = tiny_ckpts["llada"]
    old, new = tmp_path / "old", tmp_path / "new"
    assert main(args("masks", old, [base], [str(lora_run)], "--grid", "0", flag="--adapter")) == 0
    err = capsys.readouterr().err
    assert "masktax: --adapter is now --finetune; --adapter goes away in the next release\n" in err
    assert main(args("masks", new, [base], [str(lora_run)], "--grid", "0")) == 0
    assert "--adapter" not in capsys.readouterr().err
    for run in (old, new):
        assert json.loads((run / "config.json").read_text())["adapters"] == [str(lora_run)]
    assert list(read_items(old)) == list(read_items(new))
    a = args("masks", tmp_path / "both", [base], [str(lora_run)], "--grid", "0") + ["--adapter", str(lora_run)]
    assert main(a) == 2
    err = capsys.readouterr().err
    assert err.endswith("masktax: error: give --finetune only (--adapter is its old name)\n") and err.count("\n") == 1
