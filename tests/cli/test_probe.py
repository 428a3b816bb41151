"""`masktax probe PROBE` / `masktax report` end to end on tiny checkpoints, every bad input, and each
probe's sub-command taking its own flags."""

from __future__ import annotations

import json

import pytest
import typer
from probe_helpers import assert_usage_error
from tiny import tiny_checkpoint, tiny_llada, tiny_tokenizer

from masktax.cli.main import main
from masktax.cli.probe import probe_app
from masktax.probes import PROBES

DATASETS = "country__smallest,verb__largest"


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    paths = {f: str(tiny_checkpoint(f, root / f)) for f in ("llada", "ar")}
    short = tiny_llada(max_sequence_length=64)
    short.save_pretrained(root / "short")
    tiny_tokenizer().save_pretrained(root / "short")
    paths["short"] = str(root / "short")
    nomask = tiny_llada(mask_token_id=None)
    nomask.save_pretrained(root / "nomask")
    tok = tiny_tokenizer()
    tok.mask_token = None
    tok.save_pretrained(root / "nomask")
    paths["nomask"] = str(root / "nomask")
    return paths


def probe_args(probe, out, *models, extra=()):
    args = ["probe", probe, "--out", str(out), "--n-items", "2", "--datasets", DATASETS, "--no-progress"]
    for m in models:
        args += ["--model", m]
    return args + list(extra)


def test_cli_commands_equal_probes_keys(capsys):
    assert tuple(typer.main.get_command(probe_app).commands) == tuple(PROBES)
    assert_usage_error(["probe", "nope", "--model", "x", "--out", "/tmp/unused-masktax"],
                       "No such command 'nope'; choose one of " + ", ".join(PROBES), capsys)
    assert main(["probe", "masks", "--steps", "2"]) == 2
    assert capsys.readouterr().err == "masktax: error: No such option: --steps (see 'masktax probe masks --help')\n"


def test_each_probe_lists_its_own_flags_in_help(capsys):
    assert main(["probe", "masks", "--help"]) == 0
    masks_help = capsys.readouterr().out
    assert "--grid" in masks_help and "--model" in masks_help and "--finetune" in masks_help
    assert "--steps" not in masks_help and "--adapter" not in masks_help  # the old name is hidden
    assert main(["probe", "unmask", "--help"]) == 0
    unmask_help = capsys.readouterr().out
    assert "--steps" in unmask_help and "--grid" in unmask_help and "--soft-mask-from" in unmask_help


def test_probe_end_to_end_and_report_rebuild(tmp_path, ckpts):
    out = tmp_path / "run"
    args = probe_args("masks", out, ckpts["llada"], ckpts["ar"], extra=["--grid", "0,1,10", "--batch-size", "3"])
    assert main(args) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["schema_version"] == 1 and s["probe"] == "masks"
    (point, *_) = s["models"][ckpts["llada"]]
    assert {"x", "accuracy", "ci95", "per_dataset", "series", "accuracy_abc", "p_answer", "entropy",
            "confidence"} <= set(point)
    assert len(point["ci95"]) == 2 and point["ci95"][0] <= point["accuracy"] <= point["ci95"][1]
    assert set(point["per_dataset"]) == set(DATASETS.split(","))
    assert s["references"][ckpts["ar"]]["applicable"] is False
    cfg = json.loads((out / "config.json").read_text())
    env = json.loads((out / "env.json").read_text())
    assert cfg["grid"] == [0, 1, 10] and cfg["models"] == [ckpts["llada"], ckpts["ar"]]
    assert {"python", "torch", "transformers", "masktax", "git_commit", "seed"} <= set(env)
    assert env["models"][ckpts["llada"]]["kind"] == "mdlm"
    assert {p.name for p in (out / "plots").iterdir()} == {"masks.png", "masks_uncertainty.png", "masks_format.png"}
    report = (out / "report.md").read_text()
    assert "Mask tax" in report and "plots/masks.png" in report and "How to read this" in report
    assert (out / "summary.csv").read_text().startswith("model,series,x")
    # rerunning is a no-op resume; `masktax report` rebuilds the same summary from items.jsonl
    assert main(args) == 0
    (out / "summary.json").unlink()
    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text()) == s
    assert (out / "report.md").read_text() == report


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "1,,x"], "empty entry"),
        (["--grid", "-1,2"], "out of range"),
        (["--grid", "0,x"], "not an integer"),
        (["--batch-size", "0"], "--batch-size"),
        (["--format", "fancy"], "--format"),
        (["--n-items", "0"], "--n-items"),
        (["--datasets", "nope__never"], "unknown dataset"),
    ],
)
def test_bad_flags_are_one_line_exit_2(tmp_path, ckpts, capsys, args, message):
    assert main(probe_args("masks", tmp_path / "r", ckpts["llada"], extra=args)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("masktax: error: ") and message in err and "\n" not in err


def test_bad_models_and_dirs(tmp_path, ckpts, capsys):
    cases = [
        (probe_args("accuracy", tmp_path / "a", str(tmp_path / "no-such-model")), "unknown model"),
        (probe_args("masks", tmp_path / "b", ckpts["short"]), "exceeds the 64-token context"),
        (probe_args("masks", tmp_path / "c", ckpts["nomask"]), "needs a mask token"),
        (probe_args("locality", tmp_path / "d", ckpts["llada"], extra=["--grid", "41"]), "out of range"),
    ]
    for args, message in cases:
        assert main(args) == 2, message
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err
    assert not (tmp_path / "b" / "items.jsonl").exists()  # refused before any compute
    assert main(probe_args("accuracy", tmp_path / "f", ckpts["llada"])) == 0
    assert main(probe_args("accuracy", tmp_path / "f", ckpts["llada"], extra=["--seed", "1"])) == 2
    err = capsys.readouterr().err
    assert "seed: 0 there vs 1 here" in err and "another --out" in err


def test_a_flag_the_probe_does_not_take_is_a_usage_error(tmp_path, ckpts, capsys):
    """Once `the accuracy probe has no --grid` (a masktax error, exit 2); now click's usage error naming it."""
    assert_usage_error(probe_args("accuracy", tmp_path / "e", ckpts["llada"], extra=["--grid", "1"]), "--grid",
                       capsys)
    assert_usage_error(probe_args("masks", tmp_path / "e", ckpts["llada"], extra=["--steps", "2"]), "--steps",
                       capsys)
    assert not (tmp_path / "e").exists()
