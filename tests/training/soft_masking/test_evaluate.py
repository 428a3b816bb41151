"""`masktax train-sm eval` on a tiny model: validation bound, few-step decoding, outputs, bad input."""

from __future__ import annotations

import json

import pytest
from tiny import tiny_checkpoint

from masktax.cli.main import main
from masktax.errors import MasktaxError
from masktax.training.soft_masking.evaluate import EvalConfig, markdown
from masktax.training.soft_masking.two_pass import SoftMaskParams


def test_train_sm_eval_runs_on_a_tiny_model(tmp_path, capsys):
    ckpt = tiny_checkpoint("llada", tmp_path / "llada")
    weights = tmp_path / "sm"
    SoftMaskParams(omega_s=0.9, omega_b=-9.0).save(weights)  # strong soft-masking: must change the bound
    out = tmp_path / "eval"
    code = main(["train-sm", "eval", "--model", f"tiny={ckpt}", "--out", str(out), "--soft-mask-from", str(weights),
                 "--stage", "S0", "--episodes", "2", "--t-samples", "2", "--queries", "3", "--gen-length", "2"])
    assert code == 0
    stored = json.loads((out / "sm_eval.json").read_text())
    assert stored["schema_version"] == 1 and stored["settings"]["model"] == [f"tiny={ckpt}"]
    res = stored["models"]["tiny"]
    assert res["soft_mask"]["omega_s"] > 0.89 and res["soft_mask"]["source"].endswith("soft_mask.json")
    assert res["val_loss"]["off"] > 0 and abs(res["val_loss"]["on"] - res["val_loss"]["off"]) > 1e-4
    assert set(res["few_step"]) == {"1/off", "1/on", "2/off", "2/on"}
    assert res["few_step"]["1/off"]["agreement"] == 1.0  # the reference decode itself
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in res["few_step"].values())
    assert "mask_scaling" not in res  # the mask tax with feedback is `masktax probe unmask --soft-mask`
    assert (out / "sm_eval.png").stat().st_size > 0
    md = (out / "sm_eval.md").read_text()
    assert md == markdown(stored) and md.startswith("## Soft-masking evaluation")
    assert md in capsys.readouterr().out


def test_bad_input_is_a_one_line_error(tmp_path, capsys):
    assert main(["train-sm", "eval", "--model", str(tmp_path), "--out", str(tmp_path / "o"), "--gen-length", "0"]) == 2
    assert main(["train-sm", "eval", "--model", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("masktax: error: ") for line in err)
    with pytest.raises(MasktaxError, match="at least one --model"):
        EvalConfig(model=(), out=str(tmp_path))
